import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { DmError, FaultyDevice, Snapshot, Table, targets, type DevNumber, type LoopDevice, type Target } from '../../../ts/index';
import { PREFIX, TestContext, devName, dmsetup, rejection } from '../helpers';
import { root, thrownBy } from './kit';

const BLOCK = 4096;

function readBlocks(path: string, skip: number, blocks: number): Buffer {
  return execFileSync('dd', [`if=${path}`, `bs=${BLOCK}`, `skip=${skip}`, `count=${blocks}`, 'iflag=direct', 'status=none'], { maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'ignore'] });
}

/** Direct writes of whole blocks at block `seek`; false when the kernel failed the write. */
function writeBlocks(path: string, seek: number, data: Buffer): boolean {
  try {
    execFileSync('dd', [`of=${path}`, `bs=${BLOCK}`, `seek=${seek}`, 'iflag=fullblock', 'oflag=direct', 'conv=notrunc', 'status=none'], { input: data, stdio: ['pipe', 'ignore', 'ignore'] });
    return true;
  } catch {
    return false;
  }
}

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

function one(length: number, target: Target): Table {
  return new Table([{ start: 0, length, target }]);
}

function dev(d: DevNumber): string {
  return `${d.major}:${d.minor}`;
}

describe('Snapshot: classic snapshots of a live device, and their merge', () => {
  const t = TestContext.perTest();

  /** A live linear origin over a fresh loop, filled with random data. */
  async function liveOrigin(length: number): Promise<{ name: string; data: LoopDevice; table: Table; content: Buffer }> {
    const data = await t.fx.loop(length);
    const content = randomBytes(length * 512);
    expect(writeBlocks(data.path, 0, content)).to.equal(true);
    const name = devName('origin');
    const table = one(length, targets.linear({ device: data.dev, offset: 0 }));
    await t.dm.create(name, { table, uuid: `${PREFIX}uuid-${name}` });
    return { name, data, table, content };
  }

  /** The device names of the tests' devices, as the kernel lists them. */
  async function ours(): Promise<string[]> {
    return (await t.dm.listDevices()).map((d) => d.name).filter((n) => n.startsWith(PREFIX)).sort();
  }

  it('a persistent snapshot of a live linear origin: the origin becomes snapshot-origin over -real, the snapshot keeps the old data, remove() gives the origin its table back', async () => {
    const length = 8192;
    const o = await liveOrigin(length);
    const cow = await t.fx.loop(2048);
    const name = devName('snap');
    const snap = await Snapshot.create(t.dm, o.name, { name, cowDevice: cow.dev, chunkSize: 8 });
    expect(snap).to.include({ name, origin: o.name, real: `${o.name}-real`, persistent: 'P', chunkSize: 8, length, cowDevice: cow.devString });

    // The kernel's tables, read back and by dmsetup: the LVM layout.
    const realTable = await t.dm.table(snap.real);
    expect(realTable?.equals(o.table)).to.equal(true);
    const originTable = one(length, targets.snapshotOrigin({ origin: snap.realDev }));
    const snapTable = one(length, targets.snapshot({ origin: snap.realDev, cowDevice: cow.dev, persistent: 'P', chunkSize: 8 }));
    expect((await t.dm.table(o.name))?.equals(originTable)).to.equal(true);
    expect((await t.dm.table(name))?.equals(snapTable)).to.equal(true);
    expect(dmsetup('table', o.name).trimEnd()).to.equal(`0 ${length} snapshot-origin ${dev(snap.realDev)}`);
    expect(dmsetup('table', name).trimEnd()).to.equal(`0 ${length} snapshot ${dev(snap.realDev)} ${cow.devString} P 8`);
    expect((await t.dm.info(snap.real)).uuid).to.equal(`${PREFIX}uuid-${o.name}-real`);
    for (const n of [o.name, name, snap.real]) expect((await t.dm.info(n)).suspended, n).to.equal(false);

    const originPath = (await t.dm.info(o.name)).path;
    const snapPath = (await t.dm.info(name)).path;
    const fresh = randomBytes(32 * BLOCK);
    expect(writeBlocks(originPath, 100, fresh)).to.equal(true);
    // 32 blocks of old data copied out first: 32 chunks of 8 sectors after the two metadata chunks.
    const s = await snap.status();
    expect(s).to.deep.include({ type: 'snapshot', state: 'valid', metadataSectors: 16, usage: { used: 16 + 32 * 8, total: 2048 } });
    expect(dmsetup('status', name).trimEnd()).to.equal(`0 ${length} snapshot ${s.raw}`);
    expect(readBlocks(snapPath, 100, 32).equals(o.content.subarray(100 * BLOCK, 132 * BLOCK))).to.equal(true);
    expect(readBlocks(originPath, 100, 32).equals(fresh)).to.equal(true);
    expect(readBlocks(o.data.path, 100, 32).equals(fresh)).to.equal(true);

    const after = await snap.remove();
    expect(after).to.include({ name: o.name, suspended: false, inactiveTable: false });
    expect((await t.dm.table(o.name))?.equals(o.table)).to.equal(true);
    expect(dmsetup('table', o.name).trimEnd()).to.equal(o.table.toString());
    expect(await ours()).to.deep.equal([o.name]);
    expect(readBlocks(originPath, 100, 32).equals(fresh)).to.equal(true);
  });

  it('a transient snapshot (N) keeps no metadata and counts its chunks of the size asked; merge() refuses it before any ioctl', async () => {
    const length = 4096;
    const o = await liveOrigin(length);
    const cow = await t.fx.loop(1024);
    const snap = await Snapshot.create(t.dm, o.name, { name: devName('snap-n'), cowDevice: cow.dev, persistent: 'N', chunkSize: 16 });
    expect(dmsetup('table', snap.name).trimEnd()).to.equal(`0 ${length} snapshot ${dev(snap.realDev)} ${cow.devString} N 16`);
    expect(await snap.status()).to.deep.include({ state: 'valid', metadataSectors: 0, usage: { used: 0, total: 1024 } });
    expect(writeBlocks((await t.dm.info(o.name)).path, 0, randomBytes(8 * BLOCK))).to.equal(true);
    // 32 KiB in chunks of 8 KiB: 4 chunks of 16 sectors.
    expect(await snap.status()).to.deep.include({ state: 'valid', metadataSectors: 0, usage: { used: 64, total: 1024 } });
    const before = await t.dm.info(o.name);
    const err = await thrownBy(() => snap.merge());
    expect(err).to.be.instanceOf(RangeError);
    expect(String(err)).to.contain('Expected a persistent snapshot (P or PO) to merge for snapshot.persistent but received "N"');
    expect(await t.dm.info(o.name)).to.deep.equal(before);
    expect(readBlocks((await t.dm.info(snap.name)).path, 0, 8).equals(o.content.subarray(0, 8 * BLOCK))).to.equal(true);
    await snap.remove();
    expect(await ours()).to.deep.equal([o.name]);
  });

  it('a COW filled through the origin reports the snapshot Invalid and its reads fail; the origin keeps working and remove() still cleans up', async () => {
    const length = 8192;
    const o = await liveOrigin(length);
    const cow = await t.fx.loop(512);
    const snap = await Snapshot.create(t.dm, o.name, { name: devName('snap-full'), cowDevice: cow.dev, chunkSize: 8 });
    const originPath = (await t.dm.info(o.name)).path;
    // 1 MiB through the origin, four times what the 256 KiB COW can take: the origin's writes succeed.
    const fresh = randomBytes(256 * BLOCK);
    expect(writeBlocks(originPath, 0, fresh)).to.equal(true);
    const s = await snap.status();
    expect(s).to.deep.include({ type: 'snapshot', known: true, state: 'Invalid' });
    expect(dmsetup('status', snap.name).trimEnd()).to.equal(`0 ${length} snapshot Invalid`);
    expect(readFails((await t.dm.info(snap.name)).path)).to.equal(true);
    expect(readBlocks(originPath, 0, 256).equals(fresh)).to.equal(true);
    // An invalid snapshot cannot be merged: refused, nothing changed.
    const e = await rejection(snap.merge());
    expect(e.code).to.equal('EINVAL');
    expect(e.message).to.contain('is Invalid');
    expect((await t.dm.table(o.name))?.rows[0]?.type).to.equal('snapshot-origin');
    await snap.remove();
    expect((await t.dm.table(o.name))?.equals(o.table)).to.equal(true);
    expect(await ours()).to.deep.equal([o.name]);
  });

  it('merge() hands the COW over to snapshot-merge and waits for it: the origin then holds the snapshot\'s data on its own table, -real and the snapshot gone', async () => {
    const length = 8192;
    const o = await liveOrigin(length);
    const cow = await t.fx.loop(4096);
    const snap = await Snapshot.create(t.dm, o.name, { name: devName('snap-merge'), cowDevice: cow.dev, persistent: 'PO', chunkSize: 8 });
    const snapPath = (await t.dm.info(snap.name)).path;
    expect(writeBlocks(snapPath, 0, randomBytes(64 * BLOCK))).to.equal(true);
    expect(writeBlocks(snapPath, 700, randomBytes(16 * BLOCK))).to.equal(true);
    // The origin changes too: the merge must bring the snapshot's old copy of these back.
    const originPath = (await t.dm.info(o.name)).path;
    expect(writeBlocks(originPath, 300, randomBytes(8 * BLOCK))).to.equal(true);
    const want = sha(readBlocks(snapPath, 0, length / 8));
    expect(sha(readBlocks(originPath, 0, length / 8))).to.not.equal(want);

    const result = await snap.merge({ timeout: 30000 });
    expect(result.mergedSectors).to.equal((64 + 16 + 8) * 8);
    expect(result.origin).to.include({ name: o.name, suspended: false, inactiveTable: false });
    expect((await t.dm.table(o.name))?.equals(o.table)).to.equal(true);
    expect(dmsetup('table', o.name).trimEnd()).to.equal(o.table.toString());
    expect(await ours()).to.deep.equal([o.name]);
    expect(sha(readBlocks(originPath, 0, length / 8))).to.equal(want);
    expect(sha(readBlocks(o.data.path, 0, length / 8))).to.equal(want);
  });

  it('a merge slowed down (its COW delayed) outlasts a timeout (ETIMEDOUT) and an abort, goes on in the kernel, and finishMerge() completes it', async () => {
    const length = 8192;
    const o = await liveOrigin(length);
    const cowLoop = await t.fx.loop(2048);
    const cow = await FaultyDevice.create(t.dm, devName('cow'), { device: cowLoop.dev });
    const snap = await Snapshot.create(t.dm, o.name, { name: devName('snap-slow'), cowDevice: cow.dev, chunkSize: 8 });
    const snapPath = (await t.dm.info(snap.name)).path;
    // Chunks apart from each other: the kernel copies each run back with its own I/O.
    for (const block of [0, 200, 400, 600]) expect(writeBlocks(snapPath, block, randomBytes(BLOCK))).to.equal(true);
    const want = sha(readBlocks(snapPath, 0, length / 8));
    // A second per I/O: the merge outlasts the waits below even in a slowed-down test process.
    await cow.delay({ read: 1000 });

    const late = await rejection(snap.merge({ timeout: 100 }));
    expect(late.code).to.equal('ETIMEDOUT');
    expect(late.message).to.contain('call Snapshot.finishMerge again');
    expect((await t.dm.table(o.name))?.rows[0]?.type).to.equal('snapshot-merge');
    expect(await t.dm.info(o.name)).to.include({ suspended: false, inactiveTable: false });
    const merging = (await t.dm.status(o.name))[0]?.status;
    expect(merging).to.deep.include({ type: 'snapshot-merge', state: 'valid' });
    expect((await t.dm.listDevices()).some((d) => d.name === snap.name)).to.equal(false);

    const stop = new AbortController();
    setTimeout(() => stop.abort(), 100);
    let aborted: unknown;
    try {
      await Snapshot.finishMerge(t.dm, o.name, { signal: stop.signal });
    } catch (e) {
      aborted = e;
    }
    expect(aborted).to.have.property('name', 'AbortError');
    expect((await t.dm.table(o.name))?.rows[0]?.type).to.equal('snapshot-merge');
    const still = (await t.dm.status(o.name))[0]?.status;
    if (still?.known !== true || still.type !== 'snapshot-merge' || still.state !== 'valid') throw new Error(`not merging: ${still?.raw}`);
    expect(still.usage.used, 'data chunks left to merge').to.be.above(still.metadataSectors);

    // The COW's reload sends its held I/O on and lets the rest of the merge run at full speed.
    await cow.healthy();

    const done = await Snapshot.finishMerge(t.dm, o.name, { timeout: 60000 });
    // What was left at its first status read (none, if the healed COW let the merge end before it).
    expect(done.mergedSectors).to.be.within(0, 4 * 8);
    expect((await t.dm.table(o.name))?.equals(o.table)).to.equal(true);
    expect(sha(readBlocks((await t.dm.info(o.name)).path, 0, length / 8))).to.equal(want);
    expect(await ours()).to.deep.equal([cow.name, o.name].sort());
    expect((await rejection(Snapshot.finishMerge(t.dm, o.name))).message).to.contain('does not map snapshot-merge');
  });

  it('an encrypted origin (crypt) keeps its key through -real and the merge: the snapshot reads the old plaintext, the origin ends on its own crypt table', async () => {
    const length = 4096;
    const loop = await t.fx.loop(length);
    const table = one(length, targets.crypt({ cipher: 'aes-xts-plain64', key: randomBytes(64), device: loop.dev, offset: 0 }));
    const origin = devName('crypt-origin');
    const path = (await t.dm.create(origin, { table, secure: true })).path;
    const old = randomBytes(16 * BLOCK);
    expect(writeBlocks(path, 0, old)).to.equal(true);
    const cow = await t.fx.loop(1024);
    const snap = await Snapshot.create(t.dm, origin, { name: devName('crypt-snap'), cowDevice: cow.dev, chunkSize: 8 });
    expect((await t.dm.table(snap.real, { secure: true }))?.equals(table)).to.equal(true);
    expect(dmsetup('table', '--showkeys', snap.real).trimEnd()).to.equal(table.toString());
    const fresh = randomBytes(16 * BLOCK);
    expect(writeBlocks(path, 0, fresh)).to.equal(true);
    expect(readBlocks((await t.dm.info(snap.name)).path, 0, 16).equals(old)).to.equal(true);
    await snap.merge({ timeout: 30000 });
    expect((await t.dm.table(origin, { secure: true }))?.equals(table)).to.equal(true);
    expect(dmsetup('table', '--showkeys', origin).trimEnd()).to.equal(table.toString());
    expect(readBlocks(path, 0, 16).equals(old)).to.equal(true);
    expect(await ours()).to.deep.equal([origin]);
  });

  it('a snapshot table the kernel refuses (a COW whose header cannot be read) rolls back: no snapshot, no -real, the origin live on its own table', async () => {
    const length = 4096;
    const o = await liveOrigin(length);
    const bad = devName('cow-error');
    const badDev = (await t.dm.create(bad, { table: one(1024, targets.error()) })).dev;
    const before = await t.dm.info(o.name);
    const e = await rejection(Snapshot.create(t.dm, o.name, { name: devName('snap-bad'), cowDevice: badDev }));
    expect(e).to.be.instanceOf(DmError);
    expect(e.command).to.equal('DM_TABLE_LOAD');
    expect(e.rollbackError).to.equal(undefined);
    expect(await ours()).to.deep.equal([bad, o.name].sort());
    const after = await t.dm.info(o.name);
    expect(after).to.include({ suspended: false, inactiveTable: false, activeTable: true, openCount: 0 });
    expect(after.dev).to.deep.equal(before.dev);
    expect((await t.dm.table(o.name))?.equals(o.table)).to.equal(true);
    expect(readBlocks(after.path, 0, 4).equals(o.content.subarray(0, 4 * BLOCK))).to.equal(true);

    // A -real name that another device has: DEV_CREATE fails (EBUSY) and that device is left alone.
    const taken = devName('taken');
    const takenTable = one(8, targets.zero());
    await t.dm.create(taken, { table: takenTable });
    const cow = await t.fx.loop(1024);
    const busy = await rejection(Snapshot.create(t.dm, o.name, { name: devName('snap-taken'), cowDevice: cow.dev, realName: taken }));
    expect(busy).to.include({ code: 'EBUSY', command: 'DM_DEV_CREATE' });
    expect((await t.dm.table(taken))?.equals(takenTable)).to.equal(true);
    expect((await t.dm.table(o.name))?.equals(o.table)).to.equal(true);
    expect(await ours()).to.deep.equal([bad, o.name, taken].sort());
  });

  it('an open snapshot is neither merged nor removed (EBUSY), and nothing changes', async () => {
    const length = 4096;
    const o = await liveOrigin(length);
    const cow = await t.fx.loop(1024);
    const snap = await Snapshot.create(t.dm, o.name, { name: devName('snap-open'), cowDevice: cow.dev });
    const fd = openSync((await t.dm.info(snap.name)).path, 'r');
    try {
      expect((await rejection(snap.merge())).code).to.equal('EBUSY');
      expect((await rejection(snap.remove())).code).to.equal('EBUSY');
    } finally {
      closeSync(fd);
    }
    expect((await t.dm.table(o.name))?.rows[0]?.type).to.equal('snapshot-origin');
    expect(await snap.status()).to.deep.include({ state: 'valid' });
    for (const n of [o.name, snap.name, snap.real]) expect((await t.dm.info(n)).suspended, n).to.equal(false);
    await snap.remove();
  });

  it('bad options are refused before any ioctl', async () => {
    const o = await liveOrigin(2048);
    const cow = await t.fx.loop(1024);
    const before = await t.dm.info(o.name);
    const bad: [unknown, RegExp][] = [
      [{ name: 'x', cowDevice: cow.dev, chunk: 8 }, /unknown option "chunk"/],
      [{ name: 'x', cowDevice: cow.dev, chunkSize: 12 }, /power of two/],
      [{ name: 'x', cowDevice: cow.dev, persistent: 'Q' }, /snapshot.persistent/],
      [{ name: 'x' }, /options.cowDevice/],
      [{ name: o.name, cowDevice: cow.dev }, /differ/],
      [{ name: 'a/b', cowDevice: cow.dev }, /options.name/],
    ];
    let notDm: unknown;
    try {
      await Snapshot.finishMerge({ dm: t.dm } as never, o.name);
    } catch (e) {
      notDm = e;
    }
    expect(String(notDm)).to.contain('TypeError: Expected a DeviceMapper (DeviceMapper.open()) for dm but received object');
    for (const [opts, message] of bad) {
      const err = await thrownBy(() => Snapshot.create(t.dm, o.name, opts as never));
      expect(err, JSON.stringify(opts)).to.satisfy((x: unknown) => x instanceof TypeError || x instanceof RangeError);
      expect(String(err)).to.match(message);
    }
    expect(await t.dm.info(o.name)).to.deep.equal(before);
    expect(await ours()).to.deep.equal([o.name]);
  });

  it('examples/snapshot.js runs with the built package', () => {
    const env = { ...process.env, DEVMAPPER_EXAMPLE_PREFIX: `${PREFIX}example-` };
    const r = spawnSync(process.execPath, [join(root, 'examples', 'snapshot.js')], { cwd: root, env, encoding: 'utf8', timeout: 120000 });
    expect(r.status, `${r.stdout}${r.stderr}`).to.equal(0);
    expect(r.stdout).to.match(/^origin table: 0 8192 snapshot-origin \d+:\d+$/m);
    expect(r.stdout).to.match(/^snapshot status: valid, \d+\/2048 sectors used$/m);
    expect(r.stdout).to.contain('snapshot reads: "before the snapshot"; origin reads: "after the snapshot"');
    expect(r.stdout).to.match(/^merged \d+ sectors; origin table: 0 8192 linear \d+:\d+ 0$/m);
    expect(r.stdout).to.contain('origin reads after the merge: "written to the snapshot"');
  });
});
