import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { Table, targets, type DevNumber, type LoopDevice, type SnapshotMergeStatus, type SnapshotOptions, type SnapshotStatus, type Target } from '../../../ts/index';
import { TestContext, devName, dmsetup, eventually } from '../helpers';

const BLOCK = 4096;

/** Reads `blocks` 4 KiB blocks from `skip` with direct I/O (no page cache between the devices). */
function readBlocks(path: string, skip: number, blocks: number): Buffer {
  return execFileSync('dd', [`if=${path}`, `bs=${BLOCK}`, `skip=${skip}`, `count=${blocks}`, 'iflag=direct', 'status=none'], { maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'ignore'] });
}

/** Writes `data` (whole 4 KiB blocks) at block `seek` with direct I/O; false when the write failed. */
function writeBlocks(path: string, seek: number, data: Buffer): boolean {
  try {
    execFileSync('dd', [`of=${path}`, `bs=${BLOCK}`, `seek=${seek}`, 'iflag=fullblock', 'oflag=direct', 'conv=notrunc', 'status=none'], { input: data, stdio: ['pipe', 'ignore', 'ignore'] });
    return true;
  } catch {
    return false;
  }
}

/** True when a direct read of the device's first block fails (the kernel errors the I/O). */
function readFails(path: string): boolean {
  try {
    readBlocks(path, 0, 1);
    return false;
  } catch {
    return true;
  }
}

function sha(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** The typed status of a snapshot or snapshot-merge device (its only row). */
async function statusOf(t: TestContext, name: string): Promise<SnapshotStatus | SnapshotMergeStatus> {
  const [row] = await t.dm.status(name);
  if (row === undefined || !row.status.known || (row.status.type !== 'snapshot' && row.status.type !== 'snapshot-merge')) throw new Error(`no typed snapshot status for ${name}`);
  return row.status;
}

/** The COW usage of a working snapshot; throws on a state word. */
async function usageOf(t: TestContext, name: string): Promise<{ used: number; total: number; metadata: number }> {
  const s = await statusOf(t, name);
  if (s.state !== 'valid') throw new Error(`${name} is ${s.state}`);
  return { used: s.usage.used, total: s.usage.total, metadata: s.metadataSectors };
}

function one(length: number, target: Target): Table {
  return new Table([{ start: 0, length, target }]);
}

interface Snapshotted {
  /** The origin device users see: linear at first, then snapshot-origin. */
  base: string;
  /** The device holding the origin's data (LVM's -real), linear over the data loop. */
  real: string;
  realDev: DevNumber;
  /** The snapshot device. */
  snap: string;
  length: number;
}

/**
 * A linear device over `data`, turned into a snapshotted origin the way LVM does it: a -real
 * device with the same mapping, the origin suspended while the snapshot is loaded and resumed,
 * then the origin's table replaced by a snapshot-origin of -real.
 */
async function snapshotted(t: TestContext, data: LoopDevice, length: number, snapshot: Omit<SnapshotOptions, 'origin'>): Promise<Snapshotted> {
  const base = devName('snap-base');
  await t.dm.create(base, { table: one(length, targets.linear({ device: data.dev, offset: 0 })) });
  const real = devName('snap-real');
  const realDev = (await t.dm.create(real, { table: one(length, targets.linear({ device: data.dev, offset: 0 })) })).dev;
  const snap = devName('snap');
  await t.dm.suspend(base);
  try {
    await t.dm.create(snap, { table: one(length, targets.snapshot({ ...snapshot, origin: realDev })) });
    await t.dm.load(base, one(length, targets.snapshotOrigin({ origin: realDev })));
  } finally {
    await t.dm.resume(base);
  }
  return { base, real, realDev, snap, length };
}

/** Removes a snapshot the safe way: its origin suspended meanwhile (the kernel doc's rule). */
async function removeSnapshot(t: TestContext, s: Snapshotted): Promise<void> {
  await t.dm.suspend(s.base);
  try {
    await t.dm.remove(s.snap);
  } finally {
    await t.dm.resume(s.base);
  }
}

describe('snapshot, snapshot-origin and snapshot-merge in the kernel', () => {
  const t = TestContext.perTest();

  it('a persistent snapshot keeps the origin\'s old data while its allocated sectors grow; tables read back equal and dmsetup agrees', async () => {
    const length = 16384;
    const [data, cow] = [await t.fx.loop(length), await t.fx.loop(4096)];
    const before = randomBytes(length * 512);
    expect(writeBlocks(data.path, 0, before)).to.equal(true);
    const s = await snapshotted(t, data, length, { cowDevice: cow.dev, persistent: 'P', chunkSize: 8 });

    const snapTable = one(length, targets.snapshot({ origin: s.realDev, cowDevice: cow.dev, persistent: 'P', chunkSize: 8 }));
    const originTable = one(length, targets.snapshotOrigin({ origin: s.realDev }));
    expect((await t.dm.table(s.snap))?.equals(snapTable)).to.equal(true);
    expect((await t.dm.table(s.base))?.equals(originTable)).to.equal(true);
    expect(dmsetup('table', s.snap).trimEnd()).to.equal(snapTable.toString());
    expect(dmsetup('table', s.base).trimEnd()).to.equal(originTable.toString());
    const [originStatus] = await t.dm.status(s.base);
    expect(originStatus?.status).to.deep.include({ type: 'snapshot-origin', known: true, raw: '' });
    expect(dmsetup('status', s.base).trimEnd()).to.equal(`0 ${length} snapshot-origin`);

    // A fresh persistent COW holds its header and one metadata area: two chunks.
    expect(await usageOf(t, s.snap)).to.deep.equal({ used: 16, total: 4096, metadata: 16 });
    const s0 = await statusOf(t, s.snap);
    expect(dmsetup('status', s.snap).trimEnd()).to.equal(`0 ${length} snapshot ${s0.raw}`);

    // 64 KiB written to the origin: 16 chunks of old data copied out first.
    const after = randomBytes(16 * BLOCK);
    expect(writeBlocks((await t.dm.info(s.base)).path, 256, after)).to.equal(true);
    expect(await usageOf(t, s.snap)).to.deep.equal({ used: 16 + 16 * 8, total: 4096, metadata: 16 });
    const snapPath = (await t.dm.info(s.snap)).path;
    expect(readBlocks(snapPath, 256, 16).equals(before.subarray(256 * BLOCK, 272 * BLOCK))).to.equal(true);
    expect(readBlocks((await t.dm.info(s.base)).path, 256, 16).equals(after)).to.equal(true);
    expect(readBlocks(data.path, 256, 16).equals(after)).to.equal(true);

    // A write to the snapshot lands in the COW only.
    const own = randomBytes(4 * BLOCK);
    expect(writeBlocks(snapPath, 1000, own)).to.equal(true);
    expect(readBlocks(snapPath, 1000, 4).equals(own)).to.equal(true);
    expect(readBlocks((await t.dm.info(s.base)).path, 1000, 4).equals(before.subarray(1000 * BLOCK, 1004 * BLOCK))).to.equal(true);
    expect((await usageOf(t, s.snap)).used).to.equal(16 + 20 * 8);
    const s1 = await statusOf(t, s.snap);
    expect(dmsetup('status', s.snap).trimEnd()).to.equal(`0 ${length} snapshot ${s1.raw}`);
    await removeSnapshot(t, s);
  });

  it('a transient snapshot (N) with the discard features keeps no metadata and counts its chunks', async () => {
    const length = 8192;
    const [data, cow] = [await t.fx.loop(length), await t.fx.loop(2048)];
    const before = randomBytes(length * 512);
    expect(writeBlocks(data.path, 0, before)).to.equal(true);
    const opts = { cowDevice: cow.dev, persistent: 'N' as const, chunkSize: 16, discardZeroesCow: true, discardPassdownOrigin: true };
    const s = await snapshotted(t, data, length, opts);
    const table = one(length, targets.snapshot({ ...opts, origin: s.realDev }));
    expect((await t.dm.table(s.snap))?.equals(table)).to.equal(true);
    expect(dmsetup('table', s.snap).trimEnd()).to.equal(`0 ${length} snapshot ${s.realDev.major}:${s.realDev.minor} ${cow.devString} N 16 2 discard_zeroes_cow discard_passdown_origin`);
    expect(await usageOf(t, s.snap)).to.deep.equal({ used: 0, total: 2048, metadata: 0 });
    expect(writeBlocks((await t.dm.info(s.base)).path, 0, randomBytes(16 * BLOCK))).to.equal(true);
    // 64 KiB in chunks of 8 KiB: 8 chunks of 16 sectors.
    expect(await usageOf(t, s.snap)).to.deep.equal({ used: 128, total: 2048, metadata: 0 });
    expect(readBlocks((await t.dm.info(s.snap)).path, 0, 16).equals(before.subarray(0, 16 * BLOCK))).to.equal(true);
    const st = await statusOf(t, s.snap);
    expect(dmsetup('status', s.snap).trimEnd()).to.equal(`0 ${length} snapshot ${st.raw}`);
    await removeSnapshot(t, s);
  });

  it('a COW filled through the origin makes the snapshot Invalid (its I/O fails); a PO snapshot written full is Overflow and still reads', async () => {
    const length = 16384;
    const [data, cow, cow2] = [await t.fx.loop(length), await t.fx.loop(2048), await t.fx.loop(2048)];
    const s = await snapshotted(t, data, length, { cowDevice: cow.dev, persistent: 'P', chunkSize: 8 });
    // 2 MiB through the origin: more than the 1 MiB COW can take. The origin's writes succeed.
    expect(writeBlocks((await t.dm.info(s.base)).path, 0, randomBytes(512 * BLOCK))).to.equal(true);
    const invalid = await statusOf(t, s.snap);
    expect(invalid).to.deep.include({ type: 'snapshot', known: true, state: 'Invalid', extra: [] });
    expect(dmsetup('status', s.snap).trimEnd()).to.equal(`0 ${length} snapshot Invalid`);
    expect(readFails((await t.dm.info(s.snap)).path)).to.equal(true);
    await removeSnapshot(t, s);

    // A PO snapshot over the same origin, written to full through itself.
    const po = devName('snap-po');
    await t.dm.suspend(s.base);
    try {
      await t.dm.create(po, { table: one(length, targets.snapshot({ origin: s.realDev, cowDevice: cow2.dev, persistent: 'PO', chunkSize: 8 })) });
    } finally {
      await t.dm.resume(s.base);
    }
    const poPath = (await t.dm.info(po)).path;
    const first = randomBytes(8 * BLOCK);
    expect(writeBlocks(poPath, 0, first)).to.equal(true);
    expect(writeBlocks(poPath, 8, randomBytes(512 * BLOCK))).to.equal(false);
    const overflow = await statusOf(t, po);
    expect(overflow).to.deep.include({ type: 'snapshot', state: 'Overflow' });
    expect(dmsetup('status', po).trimEnd()).to.equal(`0 ${length} snapshot Overflow`);
    expect(dmsetup('table', po).trimEnd()).to.equal(`0 ${length} snapshot ${s.realDev.major}:${s.realDev.minor} ${cow2.devString} PO 8`);
    // Overflow refuses writes, not reads: what was written before it reads back.
    expect(readBlocks(poPath, 0, 8).equals(first)).to.equal(true);
    expect(writeBlocks(poPath, 0, randomBytes(BLOCK))).to.equal(false);
    await t.dm.suspend(s.base);
    try {
      await t.dm.remove(po);
    } finally {
      await t.dm.resume(s.base);
    }
  });

  it('chunk size 0 is left to the kernel: 32 sectors on a fresh persistent COW, the header\'s on a used one', async () => {
    const length = 8192;
    const [data, cow] = [await t.fx.loop(length), await t.fx.loop(4096)];
    const s = await snapshotted(t, data, length, { cowDevice: cow.dev, persistent: 'P', chunkSize: 0 });
    const back = (await t.dm.table(s.snap))?.rows[0]?.target;
    expect(back).to.deep.include({ type: 'snapshot', persistent: 'P', chunkSize: 32 });
    expect(await usageOf(t, s.snap)).to.deep.equal({ used: 64, total: 4096, metadata: 64 });
    await removeSnapshot(t, s);
    // Loaded again over the same COW with 0 (and lower case, as users may write it): the header's 32.
    await t.dm.suspend(s.base);
    try {
      await t.dm.create(s.snap, { table: Table.parse(`0 ${length} snapshot ${s.realDev.major}:${s.realDev.minor} ${cow.devString} po 0`) });
    } finally {
      await t.dm.resume(s.base);
    }
    expect((await t.dm.table(s.snap))?.rows[0]?.target).to.deep.include({ persistent: 'PO', chunkSize: 32 });
    expect(dmsetup('table', s.snap).trimEnd()).to.equal(`0 ${length} snapshot ${s.realDev.major}:${s.realDev.minor} ${cow.devString} PO 32`);
    await removeSnapshot(t, s);
  });

  it('snapshot-merge takes the snapshot\'s COW over in the origin\'s place and merges it back: the origin then holds the snapshot\'s data', async () => {
    const length = 16384;
    const [data, cow] = [await t.fx.loop(length), await t.fx.loop(8192)];
    expect(writeBlocks(data.path, 0, randomBytes(length * 512))).to.equal(true);
    const s = await snapshotted(t, data, length, { cowDevice: cow.dev, persistent: 'P', chunkSize: 8 });
    const snapPath = (await t.dm.info(s.snap)).path;
    expect(writeBlocks(snapPath, 0, randomBytes(64 * BLOCK))).to.equal(true);
    expect(writeBlocks(snapPath, 1200, randomBytes(16 * BLOCK))).to.equal(true);
    // The origin changes too: the merge must bring the snapshot's old copy back.
    expect(writeBlocks((await t.dm.info(s.base)).path, 600, randomBytes(8 * BLOCK))).to.equal(true);
    const want = sha(readBlocks(snapPath, 0, length / 8));
    expect(sha(readBlocks((await t.dm.info(s.base)).path, 0, length / 8))).to.not.equal(want);
    const used = await usageOf(t, s.snap);
    expect(used.used).to.equal(16 + (64 + 16 + 8) * 8);

    // The handover: the snapshot suspended, the merge loaded in the origin's place, the origin
    // suspended and resumed onto it.
    const merge = targets.snapshotMerge({ origin: s.realDev, cowDevice: cow.dev, persistent: 'P', chunkSize: 8 });
    await t.dm.suspend(s.snap);
    await t.dm.load(s.base, one(length, merge));
    // Until the handover the new table's chunk size is unset: the kernel prints 0.
    const inactive = await t.dm.table(s.base, { inactive: true });
    expect(inactive?.rows[0]?.target).to.deep.include({ type: 'snapshot-merge', persistent: 'P', chunkSize: 0 });
    await t.dm.suspend(s.base);
    await t.dm.resume(s.base);
    expect((await t.dm.table(s.base))?.equals(one(length, merge))).to.equal(true);
    expect(dmsetup('table', s.base).trimEnd()).to.equal(`0 ${length} snapshot-merge ${merge.params}`);

    // Merged when the allocated sectors are only metadata; poll the status, bounded.
    let last: SnapshotStatus | SnapshotMergeStatus | undefined;
    expect(await eventually(async () => {
      last = await statusOf(t, s.base);
      return last.state === 'valid' && last.usage.used === last.metadataSectors;
    }, 30000), `merged (last status ${last?.raw})`).to.equal(true);
    expect(last).to.deep.include({ type: 'snapshot-merge', state: 'valid', metadataSectors: 16 });
    expect(dmsetup('status', s.base).trimEnd()).to.equal(`0 ${length} snapshot-merge ${last?.raw}`);
    expect(sha(readBlocks((await t.dm.info(s.base)).path, 0, length / 8))).to.equal(want);
    expect(sha(readBlocks(data.path, 0, length / 8))).to.equal(want);

    // The snapshot that handed its COW over is left invalid: its I/O fails.
    await t.dm.resume(s.snap);
    expect(await statusOf(t, s.snap)).to.deep.include({ type: 'snapshot', state: 'Invalid' });
    expect(readFails(snapPath)).to.equal(true);
    await t.dm.remove(s.snap);
  });

  it('a read error from the COW stops a merge: Merge failed', async () => {
    const length = 8192;
    const [data, cowLoop] = [await t.fx.loop(length), await t.fx.loop(4096)];
    const cow = devName('snap-cow');
    const cowDev = (await t.dm.create(cow, { table: one(4096, targets.linear({ device: cowLoop.dev, offset: 0 })) })).dev;
    const s = await snapshotted(t, data, length, { cowDevice: cowDev, persistent: 'PO', chunkSize: 16 });
    expect(writeBlocks((await t.dm.info(s.snap)).path, 0, randomBytes(32 * BLOCK))).to.equal(true);
    // The header and first metadata area (two chunks of 16 sectors) stay readable; the data chunks fail.
    await t.dm.reload(cow, new Table([
      { start: 0, length: 32, target: targets.linear({ device: cowLoop.dev, offset: 0 }) },
      { start: 32, length: 4096 - 32, target: targets.error() },
    ]));
    await t.dm.suspend(s.snap);
    await t.dm.load(s.base, one(length, targets.snapshotMerge({ origin: s.realDev, cowDevice: cowDev, persistent: 'PO', chunkSize: 16 })));
    await t.dm.suspend(s.base);
    await t.dm.resume(s.base);
    let last: SnapshotStatus | SnapshotMergeStatus | undefined;
    expect(await eventually(async () => {
      last = await statusOf(t, s.base);
      return last.state !== 'valid';
    }, 20000), `a state word (last status ${last?.raw})`).to.equal(true);
    expect(last).to.deep.include({ type: 'snapshot-merge', known: true, state: 'Merge failed', extra: [] });
    expect(dmsetup('status', s.base).trimEnd()).to.equal(`0 ${length} snapshot-merge Merge failed`);
    await t.dm.resume(s.snap);
    await t.dm.remove(s.snap);
  });
});
