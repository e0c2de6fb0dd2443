import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { Table, targets, type FlakeyOptions, type FlakeyStatus, type LoopDevice } from '../../../ts/index';
import { TestContext, devName, dmsetup, readAt } from '../helpers';

/** Writes synchronously (O_SYNC: the write returns once the data reached the device); the error, or null. */
function writeAt(path: string, data: Buffer, offset: number): NodeJS.ErrnoException | null {
  const fd = openSync(path, constants.O_WRONLY | constants.O_SYNC);
  try {
    writeSync(fd, data, 0, data.length, offset);
    return null;
  } catch (e) {
    return e as NodeJS.ErrnoException;
  } finally {
    closeSync(fd);
  }
}

describe('flakey in the kernel', () => {
  const t = TestContext.perTest();

  async function make(loop: LoopDevice, o: Omit<FlakeyOptions, 'device' | 'offset'>, length = 8192): Promise<{ name: string; path: string; table: Table }> {
    const table = new Table([{ start: 0, length, target: targets.flakey({ device: loop.dev, offset: 0, ...o }) }]);
    const name = devName('flakey');
    const info = await t.dm.create(name, { table });
    return { name, path: info.path, table };
  }

  async function statusOf(name: string): Promise<FlakeyStatus> {
    const [row] = await t.dm.status(name);
    if (row === undefined || !row.status.known || row.status.type !== 'flakey') throw new Error('no typed flakey status');
    return row.status;
  }

  it('every feature 6.1 knows loads; the table reads back equal to the one built, and dmsetup agrees on table and (empty) status', async () => {
    const loop = await t.fx.loop(8192);
    const variants: Omit<FlakeyOptions, 'device' | 'offset'>[] = [
      { upInterval: 0, downInterval: 5 },
      { upInterval: 3, downInterval: 0 },
      { upInterval: 30, downInterval: 60, dropWrites: true },
      { upInterval: 1, downInterval: 1, errorWrites: true },
      { upInterval: 0, downInterval: 1, corruptBioByte: { nthByte: 4096, direction: 'w', value: 0, flags: 2048 } },
      { upInterval: 7, downInterval: 3, errorWrites: true, corruptBioByte: { nthByte: 512, direction: 'r', value: 7 } },
    ];
    for (const v of variants) {
      const { name, table } = await make(loop, v);
      const back = await t.dm.table(name);
      expect(back?.equals(table), table.toString()).to.equal(true);
      expect(back?.rows[0]?.target).to.deep.equal(table.rows[0]?.target);
      expect(dmsetup('table', name).trimEnd()).to.equal(table.toString());
      const s = await statusOf(name);
      expect(s).to.deep.include({ raw: '', extra: [] });
      expect(dmsetup('status', name).trimEnd()).to.equal(`0 8192 flakey ${s.raw}`.trimEnd());
      await t.dm.remove(name);
    }
  });

  it('the 6.1 kernel refuses the newer kernels’ features (error_reads, random_read_corrupt), which the builder still makes', async () => {
    const loop = await t.fx.loop(8192);
    for (const o of [{ errorReads: true }, { randomReadCorrupt: 1000 }, { randomWriteCorrupt: 1000 }]) {
      const table = new Table([{ start: 0, length: 8192, target: targets.flakey({ device: loop.dev, offset: 0, upInterval: 0, downInterval: 1, ...o }) }]);
      let err: unknown;
      try {
        await t.dm.create(devName('flakey-new'), { table });
      } catch (e) {
        err = e;
      }
      expect(err, table.toString()).to.have.property('code', 'EINVAL');
    }
  });

  it('error_writes: always down (0 s up) writes fail with EIO and reads work; reloaded always up (0 s down) the same write lands', async () => {
    const loop = await t.fx.loop(8192);
    const old = randomBytes(4096);
    expect(writeAt(loop.file, old, 8192)).to.equal(null);
    const { name, path } = await make(loop, { upInterval: 0, downInterval: 3600, errorWrites: true });
    const data = randomBytes(4096);
    expect(writeAt(path, data, 8192)?.code).to.equal('EIO');
    expect(readAt(path, 4096, 8192).equals(old)).to.equal(true);
    expect(readAt(loop.file, 4096, 8192).equals(old)).to.equal(true);
    const up = new Table([{ start: 0, length: 8192, target: targets.flakey({ device: loop.dev, offset: 0, upInterval: 3600, downInterval: 0, errorWrites: true }) }]);
    await t.dm.reload(name, up);
    expect((await t.dm.table(name))?.equals(up)).to.equal(true);
    expect(writeAt(path, data, 8192)).to.equal(null);
    expect(readAt(loop.file, 4096, 8192).equals(data)).to.equal(true);
  });

  it('no features: while down both reads and writes fail with EIO', async () => {
    const loop = await t.fx.loop(8192);
    const { path } = await make(loop, { upInterval: 0, downInterval: 3600 });
    expect(writeAt(path, randomBytes(4096), 0)?.code).to.equal('EIO');
    expect(() => readAt(path, 4096, 0)).to.throw(/EIO/);
  });

  it('1 s up, 1 s down: a write in the first second lands, one in the next fails, one in the third lands again', async () => {
    const loop = await t.fx.loop(8192);
    const before = Date.now();
    const { path } = await make(loop, { upInterval: 1, downInterval: 1, errorWrites: true });
    const after = Date.now();
    const outcomes: { ok: boolean; phase: string }[] = [];
    for (const at of [200, 1400, 2400]) {
      const wait = after + at - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const start = Date.now();
      const err = writeAt(path, randomBytes(4096), 0);
      const end = Date.now();
      // The kernel's clock starts in the constructor, between `before` and `after`: the write
      // was mapped between start − after and end − before seconds into the cycle.
      const [lo, hi] = [(start - after) / 1000, (end - before) / 1000];
      expect(Math.floor(lo), `write at ${lo}..${hi} s fell in one window`).to.equal(Math.floor(hi));
      outcomes.push({ ok: err === null, phase: Math.floor(lo) % 2 === 0 ? 'up' : 'down' });
      if (err !== null) expect(err.code).to.equal('EIO');
    }
    expect(outcomes).to.deep.equal([
      { ok: true, phase: 'up' },
      { ok: false, phase: 'down' },
      { ok: true, phase: 'up' },
    ]);
  });

  it('drop_writes: while down a write succeeds but is dropped, the device keeps the old data', async () => {
    const loop = await t.fx.loop(8192);
    const old = randomBytes(8192);
    expect(writeAt(loop.file, old, 0)).to.equal(null);
    const { path } = await make(loop, { upInterval: 0, downInterval: 3600, dropWrites: true });
    expect(writeAt(path, randomBytes(8192), 0)).to.equal(null);
    expect(readAt(path, 8192, 0).equals(old)).to.equal(true);
    expect(readAt(loop.file, 8192, 0).equals(old)).to.equal(true);
  });

  it('corrupt_bio_byte r loads and reads back, but 6.1 leaves reads intact (it looks for the byte after the bio completed)', async () => {
    // 6.1 walks the read bio's remaining segments in end_io, when none remain; later kernels
    // save the bio's position at map time and do corrupt the byte.
    const loop = await t.fx.loop(8192);
    const data = randomBytes(8192);
    expect(writeAt(loop.file, data, 0)).to.equal(null);
    const { name, path, table } = await make(loop, { upInterval: 0, downInterval: 3600, corruptBioByte: { nthByte: 100, direction: 'r', value: 0xee } });
    expect(table.toString()).to.match(/ 5 corrupt_bio_byte 100 r 238 0$/);
    expect((await t.dm.table(name))?.equals(table)).to.equal(true);
    expect(readAt(path, 8192, 0).equals(data)).to.equal(true);
    expect(readAt(loop.file, 8192, 0).equals(data)).to.equal(true);
  });

  it('corrupt_bio_byte w: while down, the chosen byte of a write reaches the device as the value', async () => {
    const loop = await t.fx.loop(8192);
    const { path } = await make(loop, { upInterval: 0, downInterval: 3600, corruptBioByte: { nthByte: 1, direction: 'w', value: 0x5a } });
    const data = Buffer.alloc(4096, 0x22);
    expect(writeAt(path, data, 0)).to.equal(null);
    const onDisk = readAt(loop.file, 4096, 0);
    expect(onDisk[0]).to.equal(0x5a);
    expect(onDisk.subarray(1).equals(data.subarray(1))).to.equal(true);
  });
});
