import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { closeSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { Table, eraMessages, targets, type EraRunningStatus } from '../../../ts/index';
import { TestContext, devName, dmsetup, expectReadBack, rejection } from '../helpers';

/** The typed status of a working era target, the device's only row. */
async function statusOf(t: TestContext, name: string): Promise<EraRunningStatus> {
  const [row] = await t.dm.status(name);
  if (row === undefined || !row.status.known || row.status.type !== 'era' || row.status.failed !== false) throw new Error(`no typed era status for ${name}`);
  return row.status;
}

/** Writes `count` 64 KiB blocks of `fill` at block `first` of `path`, synchronously to the device. */
function writeBlocks(path: string, first: number, count: number, fill: number): void {
  const fd = openSync(path, 'r+');
  try {
    for (let i = 0; i < count; i++) writeSync(fd, Buffer.alloc(65536, fill), 0, 65536, (first + i) * 65536);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The block ranges era_invalidate lists, from its XML: [begin, end) pairs. */
function invalidated(xml: string): [number, number][] {
  const out: [number, number][] = [];
  for (const m of xml.matchAll(/<range begin="(\d+)" end\s*=\s*"(\d+)"\/>/g)) out.push([Number(m[1]), Number(m[2])]);
  for (const m of xml.matchAll(/<block block="(\d+)"\/>/g)) out.push([Number(m[1]), Number(m[1]) + 1]);
  return out.sort((a, b) => a[0] - b[0]);
}

describe('era in the kernel', () => {
  const t = TestContext.perTest();

  it('an era built with targets.era reads back equal, dmsetup agrees, and data lands on the origin', async () => {
    const [meta, origin] = [await t.fx.loop(8192), await t.fx.loop(16384)];
    const target = targets.era({ metadataDevice: meta.dev, originDevice: origin.dev, blockSize: 128 });
    const table = new Table([{ start: 0, length: 16384, target }]);
    const name = devName('era');
    const info = await t.dm.create(name, { table });
    await expectReadBack(t.dm, name, table);
    const s = await statusOf(t, name);
    expect(s).to.deep.include({ metadataBlockSize: 8, currentEra: 1, heldMetadataRoot: null });
    expect(s.metadataBlocks.used).to.be.greaterThan(0);
    expect(s.metadataBlocks.total).to.equal(8192 / 8);
    expect(dmsetup('status', name).trimEnd()).to.equal(`0 16384 era ${s.raw}`);
    writeBlocks(info.path, 5, 1, 0xa5);
    const got = Buffer.alloc(65536);
    const fd = openSync(origin.path, 'r');
    try {
      readSync(fd, got, 0, 65536, 5 * 65536);
    } finally {
      closeSync(fd);
    }
    expect(got.every((x) => x === 0xa5)).to.equal(true);
  });

  it('checkpoint moves the era on; a metadata snapshot is held, read by era_invalidate, and dropped; resume moves the era on', async () => {
    const [meta, origin] = [await t.fx.loop(8192), await t.fx.loop(16384)];
    const name = devName('era-snap');
    const info = await t.dm.create(name, { table: new Table([{ start: 0, length: 16384, target: targets.era({ metadataDevice: meta.dev, originDevice: origin.dev, blockSize: 128 }) }]) });
    const era0 = (await statusOf(t, name)).currentEra;
    writeBlocks(info.path, 0, 4, 1);
    expect(await t.dm.message(name, eraMessages.checkpoint())).to.equal(undefined);
    const era1 = (await statusOf(t, name)).currentEra;
    expect(era1).to.be.greaterThan(era0);
    writeBlocks(info.path, 10, 2, 2);

    await t.dm.message(name, eraMessages.takeMetadataSnap());
    const held = await statusOf(t, name);
    expect(held.heldMetadataRoot).to.be.a('number');
    expect(held.heldMetadataRoot).to.be.greaterThan(0);
    // Only one snapshot is held at a time.
    expect((await rejection(t.dm.message(name, eraMessages.takeMetadataSnap()))).code).to.equal('EINVAL');

    // The snapshot says which blocks were written in which era: since era0 all six, since era1 only 10 and 11.
    const since = (e: number): [number, number][] => invalidated(execFileSync('era_invalidate', ['--metadata-snapshot', '--written-since', String(e), meta.path], { encoding: 'utf8' }));
    const blocks = (ranges: [number, number][]): number[] => ranges.flatMap(([b, e]) => Array.from({ length: e - b }, (_, i) => b + i));
    expect(blocks(since(era0))).to.deep.equal([0, 1, 2, 3, 10, 11]);
    expect(blocks(since(era1))).to.deep.equal([10, 11]);

    await t.dm.message(name, eraMessages.dropMetadataSnap());
    expect((await statusOf(t, name)).heldMetadataRoot).to.equal(null);
    expect((await rejection(t.dm.message(name, eraMessages.dropMetadataSnap()))).code).to.equal('EINVAL');

    const before = (await statusOf(t, name)).currentEra;
    await t.dm.suspend(name);
    await t.dm.resume(name);
    expect((await statusOf(t, name)).currentEra).to.be.greaterThan(before);
  });

  it('the kernel refuses a block size that is not a multiple of 8 sectors, as the builder does first', async () => {
    const [meta, origin] = [await t.fx.loop(8192), await t.fx.loop(16384)];
    expect(() => targets.era({ metadataDevice: meta.dev, originDevice: origin.dev, blockSize: 12 })).to.throw(RangeError, /era\.blockSize/);
    const name = devName('era-bad');
    expect(() => execFileSync('dmsetup', ['create', name], { input: `0 16384 era ${meta.devString} ${origin.devString} 12\n`, stdio: ['pipe', 'ignore', 'pipe'] })).to.throw(/Invalid argument/);
  });
});
