import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { Table, cloneMessages, targets, type CloneRunningStatus } from '../../../ts/index';
import { TestContext, devName, dmsetup, eventually, expectReadBack } from '../helpers';

/** The typed status of a working clone, the device's only row. */
async function statusOf(t: TestContext, name: string): Promise<CloneRunningStatus> {
  const [row] = await t.dm.status(name);
  if (row === undefined || !row.status.known || row.status.type !== 'clone' || row.status.failed !== false) throw new Error(`no typed clone status for ${name}`);
  return row.status;
}

function readAll(path: string, bytes: number): Buffer {
  const buf = Buffer.alloc(bytes);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buf, 0, bytes, 0);
  } finally {
    closeSync(fd);
  }
  return buf;
}

describe('clone in the kernel', () => {
  const t = TestContext.perTest();

  it('a clone built with targets.clone reads back equal, dmsetup agrees, and hydration completes on message', async () => {
    const sectors = 8192;
    const [meta, source, dest] = [await t.fx.loop(2048), await t.fx.loop(sectors), await t.fx.loop(sectors)];
    const data = randomBytes(sectors * 512);
    const fd = openSync(source.path, 'r+');
    try {
      writeSync(fd, data, 0, data.length, 0);
    } finally {
      closeSync(fd);
    }
    const target = targets.clone({ metadataDevice: meta.dev, destinationDevice: dest.dev, sourceDevice: source.dev, regionSize: 8, noHydration: true, hydrationBatchSize: 4 });
    const table = new Table([{ start: 0, length: sectors, target }]);
    const name = devName('clone');
    await t.dm.create(name, { table });
    await expectReadBack(t.dm, name, table);

    const s0 = await statusOf(t, name);
    expect(dmsetup('status', name).trimEnd()).to.equal(`0 ${sectors} clone ${s0.raw}`);
    expect(s0).to.deep.include({ regionSize: 8, noHydration: true, hydrationThreshold: 1, hydrationBatchSize: 4, metadataMode: 'rw', hydrating: 0 });
    expect(s0.regions).to.deep.equal({ used: 0, total: sectors / 8 });
    expect(s0.metadataBlocks.used).to.be.greaterThan(0);

    // A write through the clone hydrates the regions it covers, with hydration still off.
    const path = (await t.dm.info(name)).path;
    const wfd = openSync(path, 'r+');
    try {
      writeSync(wfd, data, 0, 8 * 4096, 0);
    } finally {
      closeSync(wfd);
    }
    await t.dm.suspend(name);
    await t.dm.resume(name);
    expect((await statusOf(t, name)).regions.used).to.equal(8);

    await t.dm.message(name, cloneMessages.hydrationThreshold(32));
    expect((await statusOf(t, name)).hydrationThreshold).to.equal(32);
    await t.dm.message(name, cloneMessages.enableHydration());
    expect(await eventually(async () => {
      const s = await statusOf(t, name);
      return s.regions.used === s.regions.total && s.hydrating === 0;
    }, 20000)).to.equal(true);
    const done = await statusOf(t, name);
    expect(done.noHydration).to.equal(false);
    await t.dm.message(name, cloneMessages.disableHydration());
    expect((await statusOf(t, name)).noHydration).to.equal(true);
    // Every region of the destination now holds the source's data.
    await t.dm.remove(name);
    expect(readAll(dest.path, data.length).equals(data)).to.equal(true);
  });

  it('the kernel echoes a clone table as given, empty groups too, and our parse keeps it', async () => {
    const [meta, source, dest] = [await t.fx.loop(2048), await t.fx.loop(2048), await t.fx.loop(2048)];
    const table = Table.parse(`0 2048 clone ${meta.devString} ${dest.devString} ${source.devString} 64 0 2 hydration_batch_size 2`);
    const name = devName('clone-echo');
    await t.dm.create(name, { table });
    expect(dmsetup('table', name).trimEnd()).to.equal(table.toString());
    expect((await t.dm.table(name))?.equals(table)).to.equal(true);
    const bare = Table.parse(`0 2048 clone ${meta.devString} ${dest.devString} ${source.devString} 64 0`);
    await t.dm.reload(name, bare);
    expect(dmsetup('table', name).trimEnd()).to.equal(bare.toString());
  });

  it('the kernel refuses a message it does not know', async () => {
    const [meta, source, dest] = [await t.fx.loop(2048), await t.fx.loop(2048), await t.fx.loop(2048)];
    const name = devName('clone-msg');
    await t.dm.create(name, { table: new Table([{ start: 0, length: 2048, target: targets.clone({ metadataDevice: meta.dev, destinationDevice: dest.dev, sourceDevice: source.dev, regionSize: 64 }) }]) });
    let failed = false;
    try {
      await t.dm.message(name, 'hydrate_faster');
    } catch {
      failed = true;
    }
    expect(failed).to.equal(true);
  });
});
