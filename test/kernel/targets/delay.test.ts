import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { Table, targets, type DelayOptions, type DelayStatus } from '../../../ts/index';
import { TestContext, devName, dmsetup, eventually, readAt } from '../helpers';

/** One jiffy of the sandbox kernel (CONFIG_HZ=100): a timer of n jiffies fires after more than n − 1 of them. */
const JIFFY_MS = 10;

function writeAt(path: string, data: Buffer, offset: number): void {
  const fd = openSync(path, constants.O_WRONLY | constants.O_SYNC);
  try {
    writeSync(fd, data, 0, data.length, offset);
  } finally {
    closeSync(fd);
  }
}

describe('delay in the kernel', () => {
  const t = TestContext.perTest();

  async function make(o: DelayOptions, length = 8192): Promise<{ name: string; path: string; table: Table }> {
    const table = new Table([{ start: 0, length, target: targets.delay(o) }]);
    const name = devName('delay');
    const info = await t.dm.create(name, { table });
    return { name, path: info.path, table };
  }

  async function statusOf(name: string): Promise<DelayStatus> {
    const [row] = await t.dm.status(name);
    if (row === undefined || !row.status.known || row.status.type !== 'delay') throw new Error('no typed delay status');
    return row.status;
  }

  it('one, two and three triplets load and read back equal; dmsetup agrees on table and status', async () => {
    const [a, b, c] = [await t.fx.loop(8192), await t.fx.loop(8192), await t.fx.loop(8192)];
    const variants: DelayOptions[] = [
      { read: { device: a.dev, offset: 0, delay: 200 } },
      { read: { device: a.dev, offset: 0, delay: 0 }, write: { device: b.dev, offset: 2048, delay: 500 } },
      { read: { device: a.dev, offset: 0, delay: 50 }, write: { device: b.dev, offset: 0, delay: 100 }, flush: { device: c.dev, offset: 0, delay: 0xffffffff } },
    ];
    for (const v of variants) {
      const { name, table } = await make(v, 4096);
      const back = await t.dm.table(name);
      expect(back?.equals(table), table.toString()).to.equal(true);
      expect(back?.rows[0]?.target).to.deep.equal(table.rows[0]?.target);
      expect(dmsetup('table', name).trimEnd()).to.equal(table.toString());
      const s = await statusOf(name);
      expect(s).to.deep.include({ reads: 0, writes: 0, flushes: 0, extra: [] });
      expect(dmsetup('status', name).trimEnd()).to.equal(`0 4096 delay ${s.raw}`);
      await t.dm.remove(name);
    }
  });

  it('a read with a 200 ms read delay takes at least the delay, and is counted as held back while it waits', async () => {
    const a = await t.fx.loop(8192);
    const data = randomBytes(4096);
    writeAt(a.file, data, 0);
    const { name, path } = await make({ read: { device: a.dev, offset: 0, delay: 200 } });
    const start = process.hrtime.bigint();
    expect(readAt(path, 4096, 0).equals(data)).to.equal(true);
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    expect(ms).to.be.at.least(200 - JIFFY_MS);
    // A longer read delay, to see the held-back read in the status.
    const slow = new Table([{ start: 0, length: 8192, target: targets.delay({ read: { device: a.dev, offset: 0, delay: 3000 } }) }]);
    await t.dm.reload(name, slow);
    const fh = await open(path, 'r');
    try {
      const pending = fh.read(Buffer.alloc(4096), 0, 4096, 4096);
      expect(await eventually(async () => (await statusOf(name)).reads === 1)).to.equal(true);
      await pending;
    } finally {
      await fh.close();
    }
    expect(await statusOf(name)).to.deep.include({ reads: 0, writes: 0, flushes: 0 });
  });

  it('a write triplet sends writes to another device: they land there, reads still come from the first', async () => {
    const [a, b] = [await t.fx.loop(8192), await t.fx.loop(8192)];
    const onA = randomBytes(4096);
    writeAt(a.file, onA, 4096 * 3);
    const { name, path } = await make({ read: { device: a.dev, offset: 0, delay: 0 }, write: { device: b.dev, offset: 1024, delay: 1000 } }, 4096);
    const data = randomBytes(4096);
    const fh = await open(path, constants.O_WRONLY | constants.O_SYNC);
    try {
      const pending = fh.write(data, 0, 4096, 4096 * 3);
      expect(await eventually(async () => (await statusOf(name)).writes === 1)).to.equal(true);
      await pending;
    } finally {
      await fh.close();
    }
    // Sector 24 of the device is sector 1024 + 24 of b.
    expect(readAt(b.file, 4096, (1024 + 24) * 512).equals(data)).to.equal(true);
    expect(readAt(a.file, 4096, 4096 * 3).equals(onA)).to.equal(true);
    expect(readAt(path, 4096, 4096 * 3).equals(onA)).to.equal(true);
  });

  it('a flush triplet holds flushes back on their own: an fsync waits, counted as a flush', async () => {
    const [a, b, c] = [await t.fx.loop(8192), await t.fx.loop(8192), await t.fx.loop(8192)];
    const { name, path } = await make({ read: { device: a.dev, offset: 0, delay: 0 }, write: { device: b.dev, offset: 0, delay: 0 }, flush: { device: c.dev, offset: 0, delay: 1000 } });
    const fh = await open(path, 'r+');
    try {
      const pending = fh.sync();
      expect(await eventually(async () => (await statusOf(name)).flushes === 1)).to.equal(true);
      await pending;
    } finally {
      await fh.close();
    }
    expect(await statusOf(name)).to.deep.include({ reads: 0, writes: 0, flushes: 0 });
  });
});
