import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { truncateSync } from 'node:fs';
import { Table, targets, thinPoolMessages, type ThinPoolOptions } from '../../../ts/index';
import { TestContext, devName, dmsetup, rejection } from '../helpers';
import { makePool, poolStatus, readAt, thinStatus, thinTool, writeAt, writeError, zeroSuperblock } from './thin-fixture';

const BLOCK = 128 * 512;

describe('thin-pool in the kernel', () => {
  const t = TestContext.perTest();

  it('a pool built with targets.thinPool reads back equal and dmsetup agrees; its status follows create_thin, writes, set_transaction_id and a held metadata snapshot; thin_check passes', async () => {
    const pool = await makePool(t, 131072, { lowWaterMark: 16 });
    const back = await t.dm.table(pool.name);
    expect(back?.equals(pool.table)).to.equal(true);
    expect(back?.rows[0]?.target).to.deep.equal(pool.target);
    // The kernel ends the table with a blank after the feature count.
    expect(dmsetup('table', pool.name)).to.equal(`${pool.table.toString()} \n`);

    const s0 = await poolStatus(t, pool.name);
    expect(dmsetup('status', pool.name).trimEnd()).to.equal(`0 131072 thin-pool ${s0.raw}`.trimEnd());
    expect(s0).to.deep.include({ transactionId: 0n, heldMetadataRoot: null, mode: 'rw', discard: 'discard_passdown', discardPassdown: true, noSpace: 'queue', needsCheck: false });
    expect(s0.data).to.deep.equal({ used: 0, total: 131072 / 128 });
    // 4 MiB of metadata: 1024 blocks of 4 KiB; the kernel's watermark is a quarter of them, at most 1024.
    expect(s0.metadata.total).to.equal(1024);
    expect(s0.metadataLowWatermark).to.equal(256);

    await t.dm.message(pool.name, thinPoolMessages.createThin(0));
    const thin = devName('thin');
    const info = await t.dm.create(thin, { table: new Table([{ start: 0, length: 65536, target: targets.thin({ poolDevice: pool.dev, deviceId: 0 }) }]) });
    const data = randomBytes(40 * BLOCK);
    writeAt(info.path, data, 0);
    expect(readAt(info.path, data.length, 0).equals(data)).to.equal(true);
    const s1 = await poolStatus(t, pool.name);
    expect(s1.data.used).to.equal(40);
    expect(s1.metadata.used).to.be.greaterThan(s0.metadata.used);
    expect(await thinStatus(t, thin)).to.deep.include({ mappedSectors: 40 * 128, highestMappedSector: 40 * 128 - 1 });

    await t.dm.message(pool.name, thinPoolMessages.setTransactionId(0, 7));
    expect((await poolStatus(t, pool.name)).transactionId).to.equal(7n);
    // The current id must be given right.
    expect((await rejection(t.dm.message(pool.name, thinPoolMessages.setTransactionId(0, 8)))).code).to.equal('EINVAL');
    const max = 2n ** 64n - 1n;
    await t.dm.message(pool.name, thinPoolMessages.setTransactionId(7n, max));
    expect((await poolStatus(t, pool.name)).transactionId).to.equal(max);

    await t.dm.message(pool.name, thinPoolMessages.reserveMetadataSnap());
    const held = (await poolStatus(t, pool.name)).heldMetadataRoot;
    expect(held).to.be.a('number').and.greaterThan(0);
    // One metadata snapshot at a time.
    expect((await rejection(t.dm.message(pool.name, thinPoolMessages.reserveMetadataSnap()))).code).to.equal('EBUSY');
    // The held snapshot is readable while the pool is live: it has the device, its 40 blocks and the transaction id.
    thinTool('thin_check', '--metadata-snap', pool.meta.path);
    const dump = thinTool('thin_dump', `--metadata-snap=${held}`, pool.meta.path);
    expect(dump).to.match(new RegExp(`transaction="${max}"`));
    expect(dump).to.match(/<device dev_id="0" mapped_blocks="40"/);
    await t.dm.message(pool.name, thinPoolMessages.releaseMetadataSnap());
    expect((await poolStatus(t, pool.name)).heldMetadataRoot).to.equal(null);

    await t.dm.remove(thin);
    await t.dm.message(pool.name, thinPoolMessages.createThin(5));
    await t.dm.message(pool.name, thinPoolMessages.delete(5));
    // Deleting a device that is not there fails.
    expect((await rejection(t.dm.message(pool.name, thinPoolMessages.delete(5)))).code).to.equal('ENODATA');
    await t.dm.remove(pool.name);
    thinTool('thin_check', pool.meta.path);
    const after = thinTool('thin_dump', pool.meta.path);
    expect(after).to.match(/<device dev_id="0" mapped_blocks="40"/);
    expect(after).to.not.match(/dev_id="5"/);
  });

  it('every feature arg the builder writes is taken by the kernel, printed back in its order and seen in the status; five features are refused as the builder refuses them', async () => {
    const data = await t.fx.loop(65536);
    const cases: { options: Partial<ThinPoolOptions>; discard: string; noSpace: string }[] = [
      { options: { skipBlockZeroing: true, blockSize: 256 }, discard: 'discard_passdown', noSpace: 'queue' },
      { options: { noDiscardPassdown: true }, discard: 'no_discard_passdown', noSpace: 'queue' },
      { options: { ignoreDiscard: true, errorIfNoSpace: true, blockSize: 1024, lowWaterMark: 8 }, discard: 'ignore_discard', noSpace: 'error' },
      { options: { skipBlockZeroing: true, ignoreDiscard: true, noDiscardPassdown: true, errorIfNoSpace: true }, discard: 'ignore_discard', noSpace: 'error' },
    ];
    for (const c of cases) {
      const meta = await t.fx.loop(8192);
      zeroSuperblock(meta.path);
      const target = targets.thinPool({ metadataDevice: meta.dev, dataDevice: data.dev, blockSize: 128, lowWaterMark: 0, ...c.options });
      const table = new Table([{ start: 0, length: 65536, target }]);
      const name = devName('pool-f');
      await t.dm.create(name, { table });
      const back = await t.dm.table(name);
      expect(back?.equals(table), target.params).to.equal(true);
      expect(back?.rows[0]?.target).to.deep.equal(target);
      expect(dmsetup('table', name).trimEnd()).to.equal(table.toString());
      const s = await poolStatus(t, name);
      expect(s, target.params).to.deep.include({ discard: c.discard, noSpace: c.noSpace, mode: 'rw' });
      expect(s.data.total).to.equal(Math.floor(65536 / target.blockSize));
      await t.dm.remove(name);
    }
    const meta = await t.fx.loop(8192);
    zeroSuperblock(meta.path);
    const five = new Table([{ start: 0, length: 65536, type: 'thin-pool', params: `${meta.devString} ${data.devString} 128 0 5 skip_block_zeroing ignore_discard no_discard_passdown read_only error_if_no_space` }]);
    expect((await rejection(t.dm.create(devName('pool-5'), { table: five }))).code).to.equal('EINVAL');
  });

  it('reloaded read_only, the pool is ro: messages are refused (EOPNOTSUPP, named ENOTSUP), provisioned blocks still read, new blocks cannot be written (EIO); a read-write reload brings it back', async () => {
    const pool = await makePool(t, 65536);
    await t.dm.message(pool.name, thinPoolMessages.createThin(0));
    const thin = devName('thin');
    const info = await t.dm.create(thin, { table: new Table([{ start: 0, length: 65536, target: targets.thin({ poolDevice: pool.dev, deviceId: 0 }) }]) });
    const block = randomBytes(BLOCK);
    writeAt(info.path, block, 0);

    const ro = new Table([{ start: 0, length: 65536, target: targets.thinPool({ ...optionsOf(pool.target), readOnly: true }) }]);
    await t.dm.reload(pool.name, ro);
    expect((await t.dm.table(pool.name))?.equals(ro)).to.equal(true);
    expect(dmsetup('table', pool.name).trimEnd()).to.equal(ro.toString());
    expect(await poolStatus(t, pool.name)).to.deep.include({ mode: 'ro' });
    expect((await rejection(t.dm.message(pool.name, thinPoolMessages.createThin(1)))).code).to.equal('ENOTSUP');
    expect(readAt(info.path, BLOCK, 0).equals(block)).to.equal(true);
    expect(writeError(info.path, randomBytes(4096), 10 * BLOCK)).to.match(/Input\/output error/);
    expect((await poolStatus(t, pool.name)).data.used).to.equal(1);

    await t.dm.reload(pool.name, pool.table);
    expect(await poolStatus(t, pool.name)).to.deep.include({ mode: 'rw' });
    await t.dm.message(pool.name, thinPoolMessages.createThin(1));
    writeAt(info.path, randomBytes(4096), 10 * BLOCK);
    expect((await poolStatus(t, pool.name)).data.used).to.equal(2);
  });

  it('with error_if_no_space, writes past the last free block fail at once (ENOSPC) and the pool is out_of_data_space, with a device event (low water mark and out of space); a grown data device brings it back to rw', async () => {
    const pool = await makePool(t, 16 * 128, { errorIfNoSpace: true, lowWaterMark: 4 });
    await t.dm.message(pool.name, thinPoolMessages.createThin(0));
    const thin = devName('thin');
    const info = await t.dm.create(thin, { table: new Table([{ start: 0, length: 64 * 128, target: targets.thin({ poolDevice: pool.dev, deviceId: 0 }) }]) });
    const first = randomBytes(8 * BLOCK);
    writeAt(info.path, first, 0);
    const events = (await t.dm.info(pool.name)).eventNr;
    expect(await poolStatus(t, pool.name)).to.deep.include({ mode: 'rw', noSpace: 'error' });
    expect(writeError(info.path, randomBytes(16 * BLOCK), 8 * BLOCK)).to.match(/No space left on device/);
    const s = await poolStatus(t, pool.name);
    expect(s).to.deep.include({ mode: 'out_of_data_space', noSpace: 'error' });
    expect(s.data).to.deep.equal({ used: 16, total: 16 });
    expect((await t.dm.info(pool.name)).eventNr).to.be.greaterThan(events);
    expect(readAt(info.path, first.length, 0).equals(first)).to.equal(true);

    truncateSync(pool.data.file, 32 * BLOCK);
    await pool.data.refreshCapacity();
    const grown = new Table([{ start: 0, length: 32 * 128, target: pool.target }]);
    await t.dm.reload(pool.name, grown);
    const g = await poolStatus(t, pool.name);
    expect(g).to.deep.include({ mode: 'rw' });
    expect(g.data.total).to.equal(32);
    const more = randomBytes(4 * BLOCK);
    writeAt(info.path, more, 40 * BLOCK);
    expect(readAt(info.path, more.length, 40 * BLOCK).equals(more)).to.equal(true);
  });
});

/** The builder's options of a built pool. */
function optionsOf(p: ReturnType<typeof targets.thinPool>): ThinPoolOptions {
  return { metadataDevice: p.metadataDevice, dataDevice: p.dataDevice, blockSize: p.blockSize, lowWaterMark: p.lowWaterMark, skipBlockZeroing: p.skipBlockZeroing, ignoreDiscard: p.ignoreDiscard, noDiscardPassdown: p.noDiscardPassdown, readOnly: p.readOnly, errorIfNoSpace: p.errorIfNoSpace };
}
