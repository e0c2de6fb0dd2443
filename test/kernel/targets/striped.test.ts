import { expect } from 'chai';
import { openSync, closeSync, writeSync, readSync } from 'node:fs';
import { Table, targets, type StripedStatus } from '../../../ts/index';
import { TestContext, devName, dmsetup } from '../helpers';

/** The typed status of a device's only row, checked to be of `type`. */
async function statusOf(t: TestContext, name: string): Promise<StripedStatus> {
  const [row] = await t.dm.status(name);
  if (row === undefined || !row.status.known || row.status.type !== 'striped') throw new Error(`no typed striped status for ${name}`);
  return row.status;
}

describe('striped in the kernel', () => {
  const t = TestContext.perTest();

  it('a table built with targets.striped is what the kernel reads back, dmsetup agrees, and data lands chunk by chunk', async () => {
    const [a, b] = [await t.fx.loop(4096), await t.fx.loop(4096)];
    const table = new Table([{ start: 0, length: 4096, target: targets.striped({ chunkSize: 8, stripes: [{ device: a.dev, offset: 0 }, { device: b.dev, offset: 2048 }] }) }]);
    const name = devName('striped');
    await t.dm.create(name, { table });
    const back = await t.dm.table(name);
    expect(back?.equals(table)).to.equal(true);
    expect(back?.rows[0]?.target).to.deep.equal(table.rows[0]?.target);
    expect(dmsetup('table', name).trimEnd()).to.equal(table.toString());
    // Chunk 1 (sectors 8..15 of the device) is the first chunk of the second stripe, at its offset.
    const info = await t.dm.info(name);
    const fd = openSync(info.path, 'r+');
    try {
      const chunk = Buffer.alloc(4096, 0x5a);
      writeSync(fd, chunk, 0, 4096, 8 * 512);
    } finally {
      closeSync(fd);
    }
    await t.dm.suspend(name);
    await t.dm.resume(name);
    const got = Buffer.alloc(4096);
    const bfd = openSync(b.path, 'r');
    try {
      readSync(bfd, got, 0, 4096, 2048 * 512);
    } finally {
      closeSync(bfd);
    }
    expect(got.every((x) => x === 0x5a)).to.equal(true);
    const s = await statusOf(t, name);
    expect(s.stripes.map((x) => x.health)).to.deep.equal(['alive', 'alive']);
    expect(dmsetup('status', name).trimEnd()).to.equal(`0 4096 striped ${s.raw}`);
  });

  it('a stripe over a failing device is reported dead after a failed write', async () => {
    const a = await t.fx.loop(2048);
    const bad = devName('striped-err');
    await t.dm.create(bad, { table: new Table([{ start: 0, length: 2048, target: targets.error() }]) });
    const badDev = (await t.dm.info(bad)).dev;
    const name = devName('striped-dead');
    await t.dm.create(name, { table: new Table([{ start: 0, length: 2048, target: targets.striped({ chunkSize: 8, stripes: [{ device: a.dev, offset: 0 }, { device: badDev, offset: 0 }] }) }]) });
    expect((await statusOf(t, name)).stripes.map((x) => x.health)).to.deep.equal(['alive', 'alive']);
    const fd = openSync((await t.dm.info(name)).path, 'r+');
    try {
      expect(() => writeSync(fd, Buffer.alloc(4096 * 4), 0, 4096 * 4, 0)).to.throw();
    } catch {
      // a buffered write may report the failure at close instead
    } finally {
      try {
        closeSync(fd);
      } catch {
        // the failed write's error
      }
    }
    const s = await statusOf(t, name);
    expect(s.stripes.map((x) => x.health)).to.deep.equal(['alive', 'dead']);
  });
});
