import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { DmError, Table, targets, thinPoolMessages } from '../../../ts/index';
import { TestContext, devName, dmsetup, eventually, expectReadBack } from '../helpers';
import { makePool, poolStatus, readAt, thinStatus, writeAt, zeroSuperblock } from './thin-fixture';

const BLOCK = 128 * 512;

describe('thin in the kernel', () => {
  const t = TestContext.perTest();

  it('a thin device built with targets.thin reads back equal and dmsetup agrees; new, it maps nothing and reads zeros; written, it reads back and counts whole blocks', async () => {
    const pool = await makePool(t, 65536);
    await t.dm.message(pool.name, thinPoolMessages.createThin(0));
    const target = targets.thin({ poolDevice: pool.dev, deviceId: 0 });
    const table = new Table([{ start: 0, length: 131072, target }]);
    const name = devName('thin');
    const info = await t.dm.create(name, { table });
    await expectReadBack(t.dm, name, table);

    const s0 = await thinStatus(t, name);
    expect(dmsetup('status', name).trimEnd()).to.equal(`0 131072 thin ${s0.raw}`.trimEnd());
    expect(s0).to.deep.include({ mappedSectors: 0, highestMappedSector: null });
    expect(readAt(info.path, BLOCK, 0).equals(Buffer.alloc(BLOCK))).to.equal(true);

    // 4 KiB into block 100 (the device is larger than the pool: thin provisioning).
    const data = randomBytes(4096);
    writeAt(info.path, data, 100 * BLOCK + 4096);
    expect(readAt(info.path, 4096, 100 * BLOCK + 4096).equals(data)).to.equal(true);
    // The rest of the new block was zeroed.
    expect(readAt(info.path, 4096, 100 * BLOCK).equals(Buffer.alloc(4096))).to.equal(true);
    expect(await thinStatus(t, name)).to.deep.include({ mappedSectors: 128, highestMappedSector: 101 * 128 - 1 });
    writeAt(info.path, randomBytes(2 * BLOCK), 0);
    expect(await thinStatus(t, name)).to.deep.include({ mappedSectors: 3 * 128, highestMappedSector: 101 * 128 - 1 });
    expect((await poolStatus(t, pool.name)).data.used).to.equal(3);
  });

  it('create_snap on the suspended origin: the snapshot reads the origin, shares its blocks, and writes to either stay apart; delete frees what only the snapshot held', async () => {
    const pool = await makePool(t, 65536);
    await t.dm.message(pool.name, thinPoolMessages.createThin(0));
    const origin = devName('origin');
    const o = await t.dm.create(origin, { table: new Table([{ start: 0, length: 32768, target: targets.thin({ poolDevice: pool.dev, deviceId: 0 }) }]) });
    const a = randomBytes(2 * BLOCK);
    writeAt(o.path, a, 0);

    await t.dm.suspend(origin);
    try {
      await t.dm.message(pool.name, thinPoolMessages.createSnap(1, 0));
    } finally {
      await t.dm.resume(origin);
    }
    const snap = devName('snap');
    const snapTable = new Table([{ start: 0, length: 32768, target: targets.thin({ poolDevice: pool.dev, deviceId: 1 }) }]);
    const s = await t.dm.create(snap, { table: snapTable });
    expect((await t.dm.table(snap))?.equals(snapTable)).to.equal(true);
    expect(readAt(s.path, a.length, 0).equals(a)).to.equal(true);
    expect(await thinStatus(t, snap)).to.deep.include({ mappedSectors: 256, highestMappedSector: 255 });
    expect((await poolStatus(t, pool.name)).data.used).to.equal(2);

    // A write to a shared block breaks the sharing: the snapshot gets a block of its own.
    const b = randomBytes(BLOCK);
    writeAt(s.path, b, 0);
    expect(readAt(s.path, BLOCK, 0).equals(b)).to.equal(true);
    expect(readAt(o.path, BLOCK, 0).equals(a.subarray(0, BLOCK))).to.equal(true);
    expect((await poolStatus(t, pool.name)).data.used).to.equal(3);
    const c = randomBytes(BLOCK);
    writeAt(o.path, c, BLOCK);
    expect(readAt(s.path, BLOCK, BLOCK).equals(a.subarray(BLOCK))).to.equal(true);
    expect((await poolStatus(t, pool.name)).data.used).to.equal(4);
    expect(await thinStatus(t, snap)).to.deep.include({ mappedSectors: 256 });

    await t.dm.remove(snap);
    await t.dm.message(pool.name, thinPoolMessages.delete(1));
    expect((await poolStatus(t, pool.name)).data.used).to.equal(2);
    expect(readAt(o.path, BLOCK, BLOCK).equals(c)).to.equal(true);
  });

  it('an external origin: unprovisioned reads come from it, a write provisions one whole block copied from it, and it is never written', async () => {
    const pool = await makePool(t, 65536);
    const ext = await t.fx.loop(2048);
    const r = randomBytes(2048 * 512);
    writeAt(ext.path, r, 0);
    await t.dm.message(pool.name, thinPoolMessages.createThin(2));
    const target = targets.thin({ poolDevice: pool.dev, deviceId: 2, externalOriginDevice: ext.dev });
    const table = new Table([{ start: 0, length: 2048, target }]);
    const name = devName('thin-ext');
    const info = await t.dm.create(name, { table });
    const back = await t.dm.table(name);
    expect(back?.equals(table)).to.equal(true);
    expect(back?.rows[0]?.target).to.deep.include({ externalOriginDevice: ext.devString });
    expect(dmsetup('table', name).trimEnd()).to.equal(table.toString());
    expect(await thinStatus(t, name)).to.deep.include({ mappedSectors: 0, highestMappedSector: null });
    expect(readAt(info.path, r.length, 0).equals(r)).to.equal(true);

    const w = randomBytes(4096);
    writeAt(info.path, w, 8192);
    const expected = Buffer.from(r);
    w.copy(expected, 8192);
    expect(readAt(info.path, r.length, 0).equals(expected)).to.equal(true);
    expect(await thinStatus(t, name)).to.deep.include({ mappedSectors: 128, highestMappedSector: 127 });
    expect(readAt(ext.path, r.length, 0).equals(r)).to.equal(true);
  });

  it('when the pool fails (its metadata device gives I/O errors), the thin status and even its table read Fail, typed; the pool refuses messages and new thin devices', async () => {
    const metaLoop = await t.fx.loop(8192);
    zeroSuperblock(metaLoop.path);
    const data = await t.fx.loop(16384);
    const metaName = devName('meta');
    const linear = new Table([{ start: 0, length: 8192, target: targets.linear({ device: metaLoop.dev, offset: 0 }) }]);
    const meta = await t.dm.create(metaName, { table: linear });
    const poolTable = new Table([{ start: 0, length: 16384, target: targets.thinPool({ metadataDevice: meta.dev, dataDevice: data.dev, blockSize: 128, lowWaterMark: 0 }) }]);
    const poolName = devName('pool');
    const pool = await t.dm.create(poolName, { table: poolTable });
    await t.dm.message(poolName, thinPoolMessages.createThin(0));
    const name = devName('thin');
    const thinTable = new Table([{ start: 0, length: 16384, target: targets.thin({ poolDevice: pool.dev, deviceId: 0 }) }]);
    const info = await t.dm.create(name, { table: thinTable });

    await t.dm.reload(metaName, new Table([{ start: 0, length: 8192, target: targets.error() }]));
    // The write may fail at once (EIO, metadata read) or later in the commit that follows it.
    try {
      writeAt(info.path, randomBytes(BLOCK), 0);
    } catch {
      // either way the pool fails
    }
    // A status read may itself make the failing commit and answer Error; then the mode is Fail.
    expect(await eventually(async () => {
      const [row] = await t.dm.status(poolName);
      return row?.status.type === 'thin-pool' && row.status.known && row.status.failed === 'Fail';
    }, 10000)).to.equal(true);
    const [s] = await t.dm.status(name);
    expect(s?.status).to.deep.include({ type: 'thin', known: true, failed: 'Fail', extra: [] });
    const back = await t.dm.table(name);
    expect(back?.rows[0]?.target).to.deep.equal({ type: 'thin', params: 'Fail', failed: true });
    expect(dmsetup('table', name).trimEnd()).to.equal('0 16384 thin Fail');
    expect(back?.toString()).to.equal('0 16384 thin Fail');
    // The pool's own table is still what was loaded.
    expect((await t.dm.table(poolName))?.equals(poolTable)).to.equal(true);

    let code: string | undefined;
    try {
      await t.dm.message(poolName, thinPoolMessages.createThin(1));
    } catch (e) {
      if (e instanceof DmError) code = e.code;
    }
    expect(code).to.equal('ENOTSUP');
    code = undefined;
    try {
      await t.dm.create(devName('thin2'), { table: thinTable });
    } catch (e) {
      if (e instanceof DmError) code = e.code;
    }
    expect(code).to.equal('EINVAL');
  });
});
