import { expect } from 'chai';
import { closeSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { Table, formatDev, targets } from '../../../ts/index';
import { TestContext, devName, dmsetup, expectReadBack } from '../helpers';

const SECTOR = 512;

/** All of `path`, `sectors` long. */
function readAll(path: string, sectors: number): Buffer {
  const buf = Buffer.alloc(sectors * SECTOR);
  const fd = openSync(path, 'r');
  try {
    let done = 0;
    while (done < buf.length) {
      const n = readSync(fd, buf, done, buf.length - done, done);
      if (n === 0) break;
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return buf;
}

describe('unstriped in the kernel', () => {
  const t = TestContext.perTest();

  it('each stripe of a striped device built with our builders reads back exactly that stripe\'s chunks', async () => {
    const chunk = 128;
    const [a, b] = [await t.fx.loop(16384), await t.fx.loop(16384)];
    const raid0 = devName('unstriped-raid0');
    const info = await t.dm.create(raid0, { table: new Table([{ start: 0, length: 32768, target: targets.striped({ chunkSize: chunk, stripes: [{ device: a.dev, offset: 0 }, { device: b.dev, offset: 0 }] }) }]) });
    // Every chunk of the striped device carries its own index in every sector.
    const chunks = 32768 / chunk;
    const data = Buffer.alloc(32768 * SECTOR);
    for (let c = 0; c < chunks; c++) for (let s = 0; s < chunk; s++) data.fill(`chunk ${c} sector ${s};`, (c * chunk + s) * SECTOR, (c * chunk + s + 1) * SECTOR);
    const fd = openSync(info.path, 'r+');
    try {
      writeSync(fd, data, 0, data.length, 0);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }

    for (const [stripe, leg] of [[0, a], [1, b]] as const) {
      const target = targets.unstriped({ stripes: 2, chunkSize: chunk, stripe, device: info.dev, offset: 0 });
      expect(target.params).to.equal(`2 ${chunk} ${stripe} ${formatDev(info.dev)} 0`);
      const table = new Table([{ start: 0, length: 16384, target }]);
      const name = devName(`unstriped-${stripe}`);
      const u = await t.dm.create(name, { table });
      await expectReadBack(t.dm, name, table);
      const [row] = await t.dm.status(name);
      expect(row?.status).to.deep.include({ type: 'unstriped', known: true, raw: '' });
      expect(dmsetup('status', name).trimEnd()).to.equal('0 16384 unstriped');

      const got = readAll(u.path, 16384);
      const want = Buffer.concat(Array.from({ length: chunks / 2 }, (_, i) => data.subarray((2 * i + stripe) * chunk * SECTOR, (2 * i + stripe + 1) * chunk * SECTOR)));
      expect(got.equals(want), `stripe ${stripe} is chunks ${stripe}, ${stripe + 2}, ...`).to.equal(true);
      expect(got.equals(readAll(leg.path, 16384)), `stripe ${stripe} is its leg`).to.equal(true);
    }
  });

  it('a Table refuses a length the kernel would refuse, before any ioctl', async () => {
    const a = await t.fx.loop(4096);
    const target = targets.unstriped({ stripes: 4, chunkSize: 8, stripe: 3, device: a.dev, offset: 0 });
    expect(() => new Table([{ start: 0, length: 4097, target }])).to.throw(RangeError, /rows\[0\]\.length/);
    const name = devName('unstriped-4');
    await t.dm.create(name, { table: new Table([{ start: 0, length: 1024, target }]) });
    expect(dmsetup('table', name).trimEnd()).to.equal(`0 1024 unstriped 4 8 3 ${a.devString} 0`);
  });
});
