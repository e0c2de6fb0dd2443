import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DeviceMapper, DmError, Era, Table, eraMessages, targets, type EraBlockRange, type EraRunningStatus } from '../../../ts/index';
import { PREFIX, TestContext, devName, dmsetup, expectReadBack, readAt, rejection } from '../helpers';

// Compiled tests run from build/js/test/kernel/workflows; the examples stay in the source tree.
const root = resolve(__dirname, '..', '..', '..', '..', '..');

const BLOCK = 128; // sectors: 64 KiB era blocks
const BLOCK_BYTES = BLOCK * 512;

/** Writes `count` era blocks of `fill` from block `first`, straight to the device (fsync). */
function writeBlocks(path: string, first: number, count: number, fill: number): void {
  const fd = openSync(path, 'r+');
  try {
    for (let i = 0; i < count; i++) writeSync(fd, Buffer.alloc(BLOCK_BYTES, fill), 0, BLOCK_BYTES, (first + i) * BLOCK_BYTES);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The block ranges era_invalidate lists for a held metadata snapshot, [begin, end) in era blocks. */
function eraInvalidate(metadataPath: string, since: number): EraBlockRange[] {
  const xml = execFileSync('era_invalidate', ['--metadata-snapshot', '--written-since', String(since), metadataPath], { encoding: 'utf8' });
  const out: EraBlockRange[] = [];
  for (const m of xml.matchAll(/<range begin="(\d+)" end\s*=\s*"(\d+)"\/>/g)) out.push({ begin: Number(m[1]), end: Number(m[2]) });
  for (const m of xml.matchAll(/<block block="(\d+)"\/>/g)) out.push({ begin: Number(m[1]), end: Number(m[1]) + 1 });
  return out.sort((a, b) => a.begin - b.begin);
}

/** What era_invalidate says of the blocks written since `since`, through a snapshot this test takes and drops. */
async function peerSays(dm: DeviceMapper, era: Era, metadataPath: string, since: number): Promise<EraBlockRange[]> {
  await dm.message(era.id, eraMessages.takeMetadataSnap());
  try {
    return eraInvalidate(metadataPath, since);
  } finally {
    await dm.message(era.id, eraMessages.dropMetadataSnap());
  }
}

async function running(era: Era): Promise<EraRunningStatus> {
  return era.runningStatus();
}

/** No device of ours is left but those named. */
async function ourDevices(dm: DeviceMapper): Promise<string[]> {
  return (await dm.listDevices()).map((d) => d.name).filter((n) => n.startsWith(PREFIX)).sort();
}

describe('Era recipe in the kernel', () => {
  const t = TestContext.perTest();

  it('a full backup point, writes, a checkpoint, more writes: writtenSince lists the blocks written since each era (era blocks and sector ranges), as era_invalidate does, and the data reads back from the device and the origin', async () => {
    const [meta, origin] = [await t.fx.loop(8192), await t.fx.loop(16384)];
    // A metadata device with old data on it: create must zero its superblock first.
    writeBlocks(meta.path, 0, 1, 0x5a);
    // 127.5 era blocks: the last block is half a block, and its sector range is cut there.
    const sectors = 16384 - 64;
    const name = devName('era');
    const era = await Era.create(t.dm, name, { metadataDevice: meta.path, originDevice: origin.dev, blockSize: BLOCK, sectors });
    expect(era.blocks).to.equal(128);
    expect(era.target.params).to.equal(`${meta.devString} ${origin.devString} ${BLOCK}`);
    await expectReadBack(t.dm, name, new Table([{ start: 0, length: sectors, target: targets.era({ metadataDevice: meta.dev, originDevice: origin.dev, blockSize: BLOCK }) }]));
    const s0 = await running(era);
    expect(s0).to.deep.include({ metadataBlockSize: 8, heldMetadataRoot: null });
    expect(dmsetup('status', name).trimEnd()).to.equal(`0 ${sectors} era ${s0.raw}`);

    const first = s0.currentEra;
    writeBlocks(era.path, 0, 4, 1);
    writeBlocks(era.path, 127, 1, 7);
    const second = await era.checkpoint();
    expect(second).to.be.greaterThan(first);
    writeBlocks(era.path, 10, 2, 2);
    writeBlocks(era.path, 3, 1, 3);

    const all = await era.writtenSince(first);
    expect(all.ranges).to.deep.equal([{ begin: 0, end: 4 }, { begin: 10, end: 12 }, { begin: 127, end: 128 }]);
    expect(all).to.deep.include({ since: first, blockSize: BLOCK, blocks: 128, count: 7 });
    expect(all.sectorRanges).to.deep.equal([{ start: 0, length: 4 * BLOCK }, { start: 10 * BLOCK, length: 2 * BLOCK }, { start: 127 * BLOCK, length: 64 }]);
    expect(all.nextSince).to.be.greaterThan(second);
    const recent = await era.writtenSince(second);
    expect(recent.ranges).to.deep.equal([{ begin: 3, end: 4 }, { begin: 10, end: 12 }]);
    // The snapshots were dropped and the read-only view of the metadata is gone.
    expect((await running(era)).heldMetadataRoot).to.equal(null);
    expect(await ourDevices(t.dm)).to.deep.equal([name]);

    // era_invalidate reads the same from its own snapshot.
    expect(await peerSays(t.dm, era, meta.path, first)).to.deep.equal(all.ranges);
    expect(await peerSays(t.dm, era, meta.path, second)).to.deep.equal(recent.ranges);

    // From the era the last answer gave: only what was written after it.
    const next = (await era.writtenSince(second)).nextSince;
    writeBlocks(era.path, 50, 1, 9);
    writeBlocks(era.path, 3, 1, 4);
    const inc = await era.writtenSince(next);
    expect(inc.ranges).to.deep.equal([{ begin: 3, end: 4 }, { begin: 50, end: 51 }]);
    expect(await peerSays(t.dm, era, meta.path, next)).to.deep.equal(inc.ranges);
    expect((await era.writtenSince(inc.nextSince)).count).to.equal(0);

    // The data: through the device, and on the origin one to one.
    for (const [block, fill] of [[0, 1], [3, 4], [10, 2], [50, 9], [127, 7]] as const) {
      expect(readAt(era.path, BLOCK_BYTES / 2, block * BLOCK_BYTES).every((b) => b === fill)).to.equal(true);
      expect(readAt(origin.path, BLOCK_BYTES / 2, block * BLOCK_BYTES).every((b) => b === fill)).to.equal(true);
    }
    expect(readAt(era.path, 512, 20 * BLOCK_BYTES).every((b) => b === 0)).to.equal(true);

    await era.remove();
    expect(await ourDevices(t.dm)).to.deep.equal([]);
    execFileSync('era_check', [meta.path], { stdio: ['ignore', 'pipe', 'pipe'] });
  });

  it('activate takes up the metadata of a removed era device: what was written before is still listed', async () => {
    const [meta, origin] = [await t.fx.loop(8192), await t.fx.loop(8192)];
    const options = { metadataDevice: meta.dev, originDevice: origin.dev, blockSize: BLOCK };
    const era = await Era.create(t.dm, devName('era-a'), options);
    const since = (await running(era)).currentEra;
    writeBlocks(era.path, 6, 2, 1);
    await era.remove();
    const again = await Era.activate(t.dm, devName('era-b'), options);
    expect((await again.writtenSince(since)).ranges).to.deep.equal([{ begin: 6, end: 8 }]);
    const opened = await Era.open(t.dm, again.name);
    expect(opened.dev).to.deep.equal(again.dev);
    expect(opened.blocks).to.equal(64);
  });

  it('a snapshot held by someone else is left alone: writtenSince fails with EINVAL and makes nothing', async () => {
    const [meta, origin] = [await t.fx.loop(8192), await t.fx.loop(8192)];
    const era = await Era.create(t.dm, devName('era-held'), { metadataDevice: meta.dev, originDevice: origin.dev, blockSize: BLOCK });
    writeBlocks(era.path, 1, 1, 1);
    await t.dm.message(era.id, eraMessages.takeMetadataSnap());
    const held = (await running(era)).heldMetadataRoot;
    expect(held).to.be.a('number');
    expect((await rejection(era.writtenSince(1))).code).to.equal('EINVAL');
    expect((await running(era)).heldMetadataRoot).to.equal(held);
    expect(await ourDevices(t.dm)).to.deep.equal([era.name]);
    expect(eraInvalidate(meta.path, 1)).to.deep.equal([{ begin: 1, end: 2 }]);
    await era.dropMetadataSnap();
  });

  it('when the view device cannot be made, no snapshot is taken (EBUSY) and the other device is untouched', async () => {
    const [meta, origin, other] = [await t.fx.loop(8192), await t.fx.loop(8192), await t.fx.loop(2048)];
    const era = await Era.create(t.dm, devName('era-v'), { metadataDevice: meta.dev, originDevice: origin.dev, blockSize: BLOCK });
    const squatter = `${era.name}-msnap`;
    const table = new Table([{ start: 0, length: 2048, target: targets.linear({ device: other.dev, offset: 0 }) }]);
    await t.dm.create(squatter, { table });
    const before = (await running(era)).currentEra;
    const e = await rejection(era.writtenSince(1));
    expect(e.code).to.equal('EBUSY');
    const after = await running(era);
    expect(after.heldMetadataRoot).to.equal(null);
    expect(after.currentEra).to.equal(before);
    expect((await t.dm.table(squatter))?.equals(table)).to.equal(true);
  });

  it('create on a metadata device that a table holds fails with EBUSY before writing to it; a taken name leaves the metadata device as it was; a table the kernel refuses leaves no device', async () => {
    const [meta, origin] = [await t.fx.loop(8192), await t.fx.loop(8192)];
    writeBlocks(meta.path, 0, 1, 0x33);
    const holder = devName('era-holder');
    await t.dm.create(holder, { table: new Table([{ start: 0, length: 8192, target: targets.linear({ device: meta.dev, offset: 0 }) }]) });
    const name = devName('era-busy');
    expect((await rejection(Era.create(t.dm, name, { metadataDevice: meta.dev, originDevice: origin.dev, blockSize: BLOCK }))).code).to.equal('EBUSY');
    expect(await ourDevices(t.dm)).to.deep.equal([holder]);
    await t.dm.remove(holder);
    expect(readAt(meta.path, 4096, 0).every((b) => b === 0x33)).to.equal(true);

    const taken = devName('era-taken');
    await t.dm.create(taken, { table: new Table([{ start: 0, length: 8192, target: targets.linear({ device: origin.dev, offset: 0 }) }]) });
    expect((await rejection(Era.create(t.dm, taken, { metadataDevice: meta.dev, originDevice: origin.dev, blockSize: BLOCK }))).code).to.equal('EBUSY');
    expect(readAt(meta.path, 4096, 0).every((b) => b === 0x33)).to.equal(true);
    await t.dm.remove(taken);

    // 4 KiB of metadata device: the kernel cannot format it, and the load fails.
    const tiny = await t.fx.loop(8);
    const refused = devName('era-tiny');
    const err = await Era.create(t.dm, refused, { metadataDevice: tiny.dev, originDevice: origin.dev, blockSize: BLOCK }).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(err).to.be.instanceOf(DmError);
    expect(await ourDevices(t.dm)).to.deep.equal([]);
  });

  it('bad arguments are refused before any ioctl', async () => {
    const [meta, origin] = [await t.fx.loop(64), await t.fx.loop(64)];
    const ok = { metadataDevice: meta.dev, originDevice: origin.dev, blockSize: BLOCK };
    const refused = async (p: Promise<unknown>): Promise<Error> => p.then(
      () => {
        throw new Error('resolved');
      },
      (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
    );
    const ioctls = t.dm.ioctlStats.ioctls;
    expect(await refused(Era.create(t.dm, devName('x'), { ...ok, blockSize: 12 }))).to.be.instanceOf(RangeError).with.property('message').that.matches(/era\.blockSize/);
    expect(await refused(Era.create(t.dm, devName('x'), { ...ok, colour: 'red' } as never))).to.be.instanceOf(TypeError).with.property('message').that.matches(/colour/);
    expect(await refused(Era.create(t.dm, devName('x'), { ...ok, sectors: 0 }))).to.be.instanceOf(RangeError);
    expect(await refused(Era.create(t.dm, devName('x'), { ...ok, metadataDevice: origin.dev }))).to.be.instanceOf(RangeError);
    expect(await refused(Era.create({} as never, devName('x'), ok))).to.be.instanceOf(TypeError);
    expect(t.dm.ioctlStats.ioctls).to.equal(ioctls);
    const era = await Era.create(t.dm, devName('era-args'), { metadataDevice: (await t.fx.loop(8192)).dev, originDevice: origin.dev, blockSize: 8 });
    expect(await refused(era.writtenSince(-1))).to.be.instanceOf(RangeError).with.property('message').that.matches(/since/);
    expect(await refused(era.writtenSince(1.5))).to.be.instanceOf(RangeError);
    expect((await running(era)).heldMetadataRoot).to.equal(null);
  });

  it('examples/era.js runs against the built package', () => {
    const env = { ...process.env, DEVMAPPER_EXAMPLE_PREFIX: `${PREFIX}example-` };
    const r = spawnSync(process.execPath, [join(root, 'examples', 'era.js')], { cwd: root, env, encoding: 'utf8', timeout: 120000 });
    expect(r.status, `${r.stdout}${r.stderr}`).to.equal(0);
    expect(r.stdout).to.match(/^table: 0 16384 era \d+:\d+ \d+:\d+ 128$/m);
    expect(r.stdout).to.match(/^full backup: 16384 sectors; 2 blocks were written; next era \d+$/m);
    expect(r.stdout).to.match(/^changed since era \d+: blocks 5 9$/m);
    expect(r.stdout).to.contain('sector ranges: 640+128 1152+128');
    expect(r.stdout).to.contain('backup equals the device after copying 2 of 128 blocks: true');
    expect(r.stdout).to.match(/^status: era \d+, metadata \d+\/1024 blocks, snapshot held: false$/m);
    expect(r.stdout).to.match(/^removed dmt-example-era$/m);
  });
});
