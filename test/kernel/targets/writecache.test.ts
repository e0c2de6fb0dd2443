import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Table, targets, writecacheMessages, type WritecacheStatus } from '../../../ts/index';
import { TestContext, devName, dmsetup, expectReadBack, readAt, scratchDir } from '../helpers';

/** The typed status of a writecache, the device's only row. */
async function statusOf(t: TestContext, name: string): Promise<WritecacheStatus> {
  const [row] = await t.dm.status(name);
  if (row === undefined || !row.status.known || row.status.type !== 'writecache') throw new Error(`no typed writecache status for ${name}`);
  return row.status;
}

describe('writecache in the kernel', () => {
  const t = TestContext.perTest();

  it('an ssd writecache built with targets.writecache reads back equal, dmsetup agrees, caches writes, and flushes them to the origin on message', async () => {
    const [origin, fast] = [await t.fx.loop(32768), await t.fx.loop(8192)];
    const target = targets.writecache({ mode: 'ssd', originDevice: origin.dev, cacheDevice: fast.dev, blockSize: 4096, highWatermark: 90, lowWatermark: 80, autocommitTime: 1000, pauseWriteback: 5000, maxAge: 600000 });
    const table = new Table([{ start: 0, length: 32768, target }]);
    const name = devName('writecache');
    await t.dm.create(name, { table });
    await expectReadBack(t.dm, name, table);
    const s0 = await statusOf(t, name);
    expect(dmsetup('status', name).trimEnd()).to.equal(`0 32768 writecache ${s0.raw}`.trimEnd());
    expect(s0).to.deep.include({ error: 0, writebackBlocks: 0 });
    expect(s0.freeBlocks).to.equal(s0.blocks);
    expect(s0.stats?.writes).to.equal(0);

    // 40 blocks written directly: they sit in the cache (writeback is held above the low watermark).
    const dir = scratchDir();
    const file = join(dir, 'data');
    const data = randomBytes(40 * 4096);
    writeFileSync(file, data);
    const path = (await t.dm.info(name)).path;
    execFileSync('dd', [`if=${file}`, `of=${path}`, 'bs=4096', 'oflag=direct', 'status=none']);
    const s1 = await statusOf(t, name);
    expect(s1.blocks - s1.freeBlocks).to.equal(40);
    expect(s1.stats?.writes).to.be.greaterThan(0);
    expect(s1.stats?.writesAllocate).to.equal(40);

    await t.dm.message(name, writecacheMessages.flush());
    const s2 = await statusOf(t, name);
    expect(s2.freeBlocks).to.equal(s2.blocks);
    expect(readAt(origin.path, data.length, 0).equals(data)).to.equal(true);

    await t.dm.message(name, writecacheMessages.clearStats());
    expect((await statusOf(t, name)).stats?.writes).to.equal(0);
    await t.dm.message(name, writecacheMessages.flushOnSuspend());
    await t.dm.message(name, writecacheMessages.cleaner());
    execFileSync('dd', [`if=${file}`, `of=${path}`, 'bs=4096', 'count=4', 'oflag=direct', 'status=none']);
    rmSync(dir, { recursive: true, force: true });
    // In cleaner mode new writes go around the cache.
    const s3 = await statusOf(t, name);
    expect(s3.stats?.writesAround).to.be.greaterThan(0);
    expect(s3.freeBlocks).to.equal(s3.blocks);
  });

  it("a writecache's read and write counters count cache blocks, not requests", async () => {
    const [origin, fast] = [await t.fx.loop(32768), await t.fx.loop(8192)];
    const target = targets.writecache({ mode: 'ssd', originDevice: origin.dev, cacheDevice: fast.dev, blockSize: 4096, highWatermark: 90, lowWatermark: 80 });
    const name = devName('writecache-units');
    await t.dm.create(name, { table: new Table([{ start: 0, length: 32768, target }]) });
    const path = (await t.dm.info(name)).path;
    const dir = scratchDir();
    const file = join(dir, 'data');
    writeFileSync(file, randomBytes(3 * 65536));
    // Three 64 KiB writes: 48 blocks of 4 KiB, all new to the cache (well under the watermarks).
    execFileSync('dd', [`if=${file}`, `of=${path}`, 'bs=65536', 'oflag=direct', 'status=none']);
    rmSync(dir, { recursive: true, force: true });
    const w = (await statusOf(t, name)).stats;
    expect(w).to.deep.include({ writes: 48, writesAllocate: 48, writeHitsUncommitted: 0, writeHitsCommitted: 0, reads: 0 });
    // Read back in 64 KiB requests: every block counts, and every block is in the cache.
    execFileSync('dd', [`if=${path}`, 'of=/dev/null', 'bs=65536', 'count=3', 'iflag=direct', 'status=none']);
    expect((await statusOf(t, name)).stats).to.deep.include({ reads: 48, readHits: 48 });
  });

  it('a writecache with start_sector, writeback_jobs, autocommit_blocks, metadata_only reads back equal', async () => {
    const [origin, fast] = [await t.fx.loop(16384), await t.fx.loop(4096)];
    const target = targets.writecache({ mode: 'ssd', originDevice: origin.dev, cacheDevice: fast.dev, blockSize: 512, startSector: 8, writebackJobs: 64, autocommitBlocks: 16, metadataOnly: true, cleaner: true });
    const table = new Table([{ start: 0, length: 16384, target }]);
    const name = devName('writecache-opts');
    await t.dm.create(name, { table });
    expect((await t.dm.table(name))?.equals(table)).to.equal(true);
    expect(dmsetup('table', name).trimEnd()).to.equal(table.toString());
  });
});
