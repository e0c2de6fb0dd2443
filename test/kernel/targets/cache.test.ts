import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { Table, cacheMessages, targets, type CacheRunningStatus } from '../../../ts/index';
import { TestContext, devName, dmsetup, eventually, expectReadBack } from '../helpers';

/** The typed status of a working cache, the device's only row. */
async function statusOf(t: TestContext, name: string): Promise<CacheRunningStatus> {
  const [row] = await t.dm.status(name);
  if (row === undefined || !row.status.known || row.status.type !== 'cache' || row.status.failed !== false) throw new Error(`no typed cache status for ${name}`);
  return row.status;
}

/** Direct I/O with dd, so every request reaches the target (no page cache). */
function dd(args: string[]): void {
  execFileSync('dd', [...args, 'status=none'], { stdio: 'ignore' });
}

describe('cache in the kernel', () => {
  const t = TestContext.perTest();

  it('a writeback smq cache built with targets.cache reads back equal, dmsetup agrees, and its counters move with I/O', async () => {
    const [meta, fast, origin] = [await t.fx.loop(8192), await t.fx.loop(16384), await t.fx.loop(32768)];
    const target = targets.cache({ metadataDevice: meta.dev, cacheDevice: fast.dev, originDevice: origin.dev, blockSize: 128, mode: 'writeback', policy: 'smq', policyArgs: { migration_threshold: 1024 } });
    const table = new Table([{ start: 0, length: 32768, target }]);
    const name = devName('cache');
    await t.dm.create(name, { table });
    await expectReadBack(t.dm, name, table);

    const s0 = await statusOf(t, name);
    expect(dmsetup('status', name).trimEnd()).to.equal(`0 32768 cache ${s0.raw}`.trimEnd());
    expect(s0).to.deep.include({ cacheBlockSize: 128, mode: 'writeback', policy: 'smq', migrationThreshold: 1024, metadataMode: 'rw', needsCheck: false, readHits: 0, readMisses: 0 });
    expect(s0.cacheBlocks.total).to.equal(16384 / 128);

    const path = (await t.dm.info(name)).path;
    for (let pass = 0; pass < 4; pass++) dd(['if=' + path, 'of=/dev/null', 'bs=64k', 'count=64', 'iflag=direct']);
    dd(['if=/dev/urandom', 'of=' + path, 'bs=64k', 'count=32', 'oflag=direct']);
    const s1 = await statusOf(t, name);
    expect(s1.readMisses).to.be.greaterThan(0);
    // Repeated reads of the same blocks earn promotions, and reads of promoted blocks are hits.
    expect(await eventually(async () => {
      dd(['if=' + path, 'of=/dev/null', 'bs=64k', 'count=64', 'iflag=direct']);
      const s = await statusOf(t, name);
      return s.promotions > 0 && s.cacheBlocks.used > 0 && s.readHits > 0;
    }, 20000)).to.equal(true);

    // Writes through the cache are counted as hits or misses, and leave dirty blocks behind (writeback).
    expect(await eventually(async () => {
      dd(['if=/dev/urandom', 'of=' + path, 'bs=4k', 'count=64', 'oflag=direct']);
      const s = await statusOf(t, name);
      return s.writeHits + s.writeMisses > s1.writeHits + s1.writeMisses && s.dirty > 0;
    }, 20000)).to.equal(true);

    await t.dm.message(name, cacheMessages.migrationThreshold(4096));
    expect((await statusOf(t, name)).migrationThreshold).to.equal(4096);
    // smq has no tunables of its own: the old mq keys are refused.
    let refused = false;
    try {
      await t.dm.message(name, cacheMessages.policyArg('sequential_threshold', 64));
    } catch {
      refused = true;
    }
    expect(refused).to.equal(true);
  });

  it('a passthrough cache takes invalidate_cblocks; metadata2, no_discard_passdown and the cleaner policy read back', async () => {
    const [meta, fast, origin] = [await t.fx.loop(8192), await t.fx.loop(8192), await t.fx.loop(16384)];
    const pt = targets.cache({ metadataDevice: meta.dev, cacheDevice: fast.dev, originDevice: origin.dev, blockSize: 64, mode: 'passthrough' });
    const name = devName('cache-pt');
    await t.dm.create(name, { table: new Table([{ start: 0, length: 16384, target: pt }]) });
    expect((await statusOf(t, name)).mode).to.equal('passthrough');
    await t.dm.message(name, cacheMessages.invalidateCblocks([0, { begin: 2, end: 5 }]));
    await t.dm.remove(name);

    const [meta2] = [await t.fx.loop(8192)];
    const cl = targets.cache({ metadataDevice: meta2.dev, cacheDevice: fast.dev, originDevice: origin.dev, blockSize: 64, metadata2: true, discardPassdown: false, policy: 'cleaner' });
    const table = new Table([{ start: 0, length: 16384, target: cl }]);
    const name2 = devName('cache-cl');
    await t.dm.create(name2, { table });
    expect((await t.dm.table(name2))?.equals(table)).to.equal(true);
    expect(dmsetup('table', name2).trimEnd()).to.equal(table.toString());
    const s = await statusOf(t, name2);
    expect(s).to.deep.include({ mode: 'writeback', metadata2: true, discardPassdown: false, policy: 'cleaner', dirty: 0 });
    expect(s.features).to.deep.equal(['metadata2', 'writeback', 'no_discard_passdown']);
    await t.dm.remove(name2);

    // mq takes the old mq tunables, in the table and by message, and reports them (as 0: ignored).
    const meta3 = await t.fx.loop(8192);
    const mq = targets.cache({ metadataDevice: meta3.dev, cacheDevice: fast.dev, originDevice: origin.dev, blockSize: 64, policy: 'mq', policyArgs: { sequential_threshold: 100, migration_threshold: 512 } });
    const name3 = devName('cache-mq');
    await t.dm.create(name3, { table: new Table([{ start: 0, length: 16384, target: mq }]) });
    expect(dmsetup('table', name3).trimEnd()).to.equal(`0 16384 cache ${mq.params}`);
    await t.dm.message(name3, cacheMessages.policyArg('random_threshold', 4));
    const s3 = await statusOf(t, name3);
    expect(s3).to.deep.include({ policy: 'mq', migrationThreshold: 512 });
    expect(Object.keys(s3.policyArgs)).to.include.members(['random_threshold', 'sequential_threshold']);
  });
});
