import { expect } from 'chai';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { Table, compressRegionMappings, switchMessages, targets } from '../../../ts/index';
import { TestContext, devName, dmsetup } from '../helpers';

function fill(path: string, byte: number, sectors: number): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, Buffer.alloc(sectors * 512, byte), 0, sectors * 512, 0);
  } finally {
    closeSync(fd);
  }
}

function firstByteOfRegions(path: string, regions: number, regionSize: number): number[] {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(1);
    return Array.from({ length: regions }, (_, r) => {
      readSync(fd, b, 0, 1, r * regionSize * 512);
      return b[0] ?? -1;
    });
  } finally {
    closeSync(fd);
  }
}

describe('switch in the kernel', () => {
  const t = TestContext.perTest();

  it('regions go to the paths set_region_mappings names, compressed with : and R forms', async () => {
    const [a, b, c] = [await t.fx.loop(1024), await t.fx.loop(1024), await t.fx.loop(1024)];
    fill(a.path, 0xa0, 1024);
    fill(b.path, 0xb0, 1024);
    fill(c.path, 0xc0, 1024);
    const target = targets.switch({ regionSize: 8, paths: [{ device: a.dev, offset: 0 }, { device: b.dev, offset: 0 }, { device: c.dev, offset: 0 }] });
    const table = new Table([{ start: 0, length: 1024, target }]);
    const name = devName('switch');
    const info = await t.dm.create(name, { table });
    expect((await t.dm.table(name))?.equals(table)).to.equal(true);
    expect(dmsetup('table', name).trimEnd()).to.equal(table.toString());
    // A fresh switch deals the regions out to the paths in turn.
    expect(firstByteOfRegions(info.path, 4, 8)).to.deep.equal([0xa0, 0xb0, 0xc0, 0xa0]);
    const paths = [2, 1, 0, 2, 1, 0, 2, 1, 0, 2, 1, 0, 1, 1];
    const message = switchMessages.setRegionMappings(compressRegionMappings(2, paths));
    expect(message).to.match(/ R3,/);
    await t.dm.message(name, message);
    // Reads go around the page cache's copy of the old mapping.
    await t.dm.suspend(name);
    await t.dm.resume(name);
    const bytes = [0xa0, 0xb0, 0xc0];
    // Regions 0 and 1 and those after the mapped ones keep their first path (region % 3).
    const expectedBytes = [0xa0, 0xb0, ...paths.map((p) => bytes[p] ?? -1), 0xb0];
    expect(firstByteOfRegions(info.path, expectedBytes.length, 8)).to.deep.equal(expectedBytes);
    const [row] = await t.dm.status(name);
    expect(row?.status).to.deep.include({ type: 'switch', known: true, extra: [] });
  });

  it('a repeat may reach back over regions an earlier repeat wrote, as the kernel counts regions, not words', async () => {
    const [a, b, c] = [await t.fx.loop(1024), await t.fx.loop(1024), await t.fx.loop(1024)];
    fill(a.path, 0xa0, 1024);
    fill(b.path, 0xb0, 1024);
    fill(c.path, 0xc0, 1024);
    const target = targets.switch({ regionSize: 8, paths: [{ device: a.dev, offset: 0 }, { device: b.dev, offset: 0 }, { device: c.dev, offset: 0 }] });
    const name = devName('switch-reach');
    const info = await t.dm.create(name, { table: new Table([{ start: 0, length: 1024, target }]) });
    const paths = [2, 2, 2, 2, 0, 2, 2, 2, 0];
    const message = switchMessages.setRegionMappings(compressRegionMappings(0, paths));
    expect(message).to.equal('set_region_mappings 0:2 R1,3 :0 R4,4'); // R4 after three words
    await t.dm.message(name, message);
    await t.dm.suspend(name);
    await t.dm.resume(name);
    const bytes = [0xa0, 0xb0, 0xc0];
    expect(firstByteOfRegions(info.path, paths.length, 8)).to.deep.equal(paths.map((p) => bytes[p] ?? -1));
  });

  it('a mapping to a path the switch does not have is refused by the kernel (EINVAL)', async () => {
    const a = await t.fx.loop(64);
    const name = devName('switch-bad');
    await t.dm.create(name, { table: new Table([{ start: 0, length: 64, target: targets.switch({ regionSize: 8, paths: [{ device: a.dev, offset: 0 }] }) }]) });
    const e: unknown = await t.dm.message(name, switchMessages.setRegionMappings([{ region: 0, path: 1 }])).catch((x: unknown) => x);
    expect(e).to.include({ code: 'EINVAL', command: 'DM_TARGET_MSG' });
  });
});
