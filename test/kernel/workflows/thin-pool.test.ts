import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, truncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DmError, Table, THIN_MAX_DEVICE_ID, ThinPool, blockDiscard, targets, type DevId, type DeviceMapper, type LoopDevice } from '../../../ts/index';
import { PREFIX, TestContext, devName, dmsetup, readAt as plainReadAt, rejection } from '../helpers';
import { readAt, thinTool, writeAt, writeError } from '../targets/thin-fixture';
import { root } from './kit';

/** One data block of the pools here: 128 sectors. */
const BLOCK = 128 * 512;

/** Bytes at the start of a device or file (plain read). */
function head(path: string, bytes = 4096): Buffer {
  return plainReadAt(path, bytes, 0);
}

function fill(path: string, data: Buffer): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, data, 0, data.length, 0);
  } finally {
    closeSync(fd);
  }
}

/** Grows a loop device's backing file to `sectors` and has the loop device pick it up. */
async function growLoop(loop: LoopDevice, sectors: number): Promise<void> {
  truncateSync(loop.file, sectors * 512);
  await loop.refreshCapacity();
}

/**
 * The real client, with the calls that change a device's state (suspend, resume, message)
 * noted in `calls` as `<method> <device>`, in the order they were made.
 */
function recording(dm: DeviceMapper, calls: string[]): DeviceMapper {
  return new Proxy(dm, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property);
      if (typeof value !== 'function') return value;
      if (property !== 'suspend' && property !== 'resume' && property !== 'message') return (...args: unknown[]): unknown => Reflect.apply(value, target, args);
      return (id: DevId, ...rest: unknown[]): unknown => {
        calls.push(`${property} ${typeof id === 'string' ? id : JSON.stringify(id)}${property === 'message' ? ` ${String(rest[0])}` : ''}`);
        return Reflect.apply(value, target, [id, ...rest]);
      };
    },
  });
}

/** A pool made by ThinPool.create over new metadata (4 MiB) and data loop devices. */
async function newPool(t: TestContext, dataBlocks: number, options: { lowWaterMark?: number; errorIfNoSpace?: boolean; metaSectors?: number; calls?: string[] } = {}): Promise<{ pool: ThinPool; meta: LoopDevice; data: LoopDevice }> {
  const meta = await t.fx.loop(options.metaSectors ?? 8192);
  const data = await t.fx.loop(dataBlocks * 128);
  const pool = await ThinPool.create(options.calls === undefined ? t.dm : recording(t.dm, options.calls), devName('pool'), {
    metadataDevice: meta.dev,
    dataDevice: data.dev,
    blockSize: 128,
    ...(options.lowWaterMark !== undefined ? { lowWaterMark: options.lowWaterMark } : {}),
    ...(options.errorIfNoSpace !== undefined ? { errorIfNoSpace: options.errorIfNoSpace } : {}),
  });
  return { pool, meta, data };
}

/** `thin_ls` rows (DEV, MAPPED_BLOCKS) of a metadata device, through the held metadata snapshot when `snap`. */
function thinLs(metaPath: string, snap: boolean): Map<number, number> {
  const out = thinTool('thin_ls', '--no-headers', '-o', 'DEV,MAPPED_BLOCKS', ...(snap ? ['-m'] : []), metaPath);
  const rows = new Map<number, number>();
  for (const line of out.split('\n')) {
    const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) rows.set(Number(m[1]), Number(m[2]));
  }
  return rows;
}

describe('ThinPool (the thin pool recipe) in the kernel', () => {
  const t = TestContext.perTest();

  it('create zeroes the metadata superblock, so a device that held a pool gets a new, empty one; the table it builds (major:minor devices, every feature arg, the data device cut to whole blocks) reads back equal and dmsetup agrees', async () => {
    const meta = await t.fx.loop(8192);
    // 20 blocks and a half: the pool takes the 20 whole ones.
    const data = await t.fx.loop(20 * 128 + 64);
    const first = await ThinPool.create(t.dm, devName('pool'), { metadataDevice: meta.path, dataDevice: data.path, blockSize: 128 });
    await first.createThin(7);
    expect((await first.runningStatus()).transactionId).to.equal(1n);
    await first.remove();
    expect(head(meta.path).equals(Buffer.alloc(4096))).to.equal(false);

    const name = devName('pool');
    const pool = await ThinPool.create(t.dm, name, { metadataDevice: meta.path, dataDevice: data.path, blockSize: 128, lowWaterMark: 5, skipBlockZeroing: true, noDiscardPassdown: true, errorIfNoSpace: true, uuid: `${name}-uuid` });
    expect(pool.id).to.deep.equal({ uuid: `${name}-uuid` });
    const s = await pool.runningStatus();
    // A new pool: transaction 0, nothing used, and thin 7 is not there (create_thin 7 works again).
    expect(s).to.deep.include({ transactionId: 0n, mode: 'rw', noSpace: 'error', discard: 'no_discard_passdown', heldMetadataRoot: null, needsCheck: false });
    expect(s.data).to.deep.equal({ used: 0, total: 20 });
    expect(await pool.createThin(7)).to.equal(1n);

    const expected = new Table([{ start: 0, length: 20 * 128, target: targets.thinPool({ metadataDevice: meta.dev, dataDevice: data.dev, blockSize: 128, lowWaterMark: 5, skipBlockZeroing: true, noDiscardPassdown: true, errorIfNoSpace: true }) }]);
    const back = await t.dm.table(name);
    expect(back?.equals(expected)).to.equal(true);
    expect(back?.rows[0]?.target).to.deep.equal(pool.target);
    expect(pool.target.metadataDevice).to.equal(meta.devString);
    expect(dmsetup('table', name).trimEnd()).to.equal(expected.toString());
    expect(dmsetup('status', name).trimEnd()).to.equal(`0 2560 thin-pool ${(await pool.runningStatus()).raw}`.trimEnd());

    // open() finds the same pool and its table.
    const opened = await ThinPool.open(t.dm, name);
    expect(opened.dev).to.deep.equal(pool.dev);
    expect(opened.uuid).to.equal(`${name}-uuid`);
    expect(opened.target).to.deep.equal(pool.target);
    expect(opened.sectors).to.equal(2560);
  });

  it('bad arguments are refused with TypeError/RangeError before any ioctl and before the metadata device is written', async () => {
    const meta = await t.fx.loop(8192);
    const data = await t.fx.loop(2048);
    const marker = randomBytes(4096);
    fill(meta.path, marker);
    const base = { metadataDevice: meta.dev, dataDevice: data.dev, blockSize: 128 };
    const before = t.dm.ioctlStats.commands;
    const refused: [Promise<unknown>, typeof RangeError | typeof TypeError, RegExp][] = [
      [ThinPool.create(t.dm, devName('pool'), { ...base, blockSize: 100 }), RangeError, /thinPool\.blockSize/],
      [ThinPool.create(t.dm, devName('pool'), { ...base, dataSectors: 1000 }), RangeError, /multiple of the block size \(128 sectors\) for options\.dataSectors but received number 1000/],
      [ThinPool.create(t.dm, devName('pool'), { ...base, readOnly: true } as never), TypeError, /unknown option "readOnly"/],
      [ThinPool.create(t.dm, devName('pool'), { ...base, wipe: true } as never), TypeError, /unknown option "wipe"/],
      [ThinPool.create(t.dm, devName('pool'), { ...base, dataDevice: meta.dev }), RangeError, /another device than the metadata device/],
      [ThinPool.create(t.dm, devName('pool'), { ...base, lowWaterMark: -1 }), RangeError, /lowWaterMark/],
      [ThinPool.create(t.dm, 'bad/name', base), RangeError, /without '\/'/],
      [ThinPool.create(t.dm, devName('pool'), { dataDevice: data.dev, blockSize: 128 } as never), TypeError, /Expected a device for options\.metadataDevice but received undefined/],
      [ThinPool.activate(t.dm, devName('pool'), { ...base, errorIfNoSpace: 'yes' } as never), TypeError, /errorIfNoSpace/],
      [ThinPool.open(t.dm, { name: 'a', uuid: 'b' }), TypeError, /Expected a device name/],
      [ThinPool.create({} as never, devName('pool'), base), TypeError, /Expected a DeviceMapper \(DeviceMapper\.open\(\)\) for dm but received object/],
    ];
    for (const [p, kind, message] of refused) {
      const e = await p.then(() => undefined, (x: unknown) => x);
      expect(e, String(message)).to.be.instanceOf(kind);
      expect(String(e)).to.match(message);
    }
    expect(t.dm.ioctlStats.commands).to.equal(before);
    expect(head(meta.path).equals(marker)).to.equal(true);

    const pool = await ThinPool.create(t.dm, devName('pool'), base);
    const start = t.dm.ioctlStats.commands;
    const calls: [Promise<unknown>, RegExp][] = [
      [pool.createThin(THIN_MAX_DEVICE_ID + 1), /Expected an integer from 0 to 16777215 for deviceId but received number 16777216/],
      [pool.createThin(1, { transactionId: -1 }), /options\.transactionId/],
      [pool.createThin(1, { id: 1 } as never), /unknown option "id"/],
      [pool.createSnapshot(1, 1.5), /originId/],
      [pool.deleteThin('1' as never), /deviceId/],
      [pool.activateThin(devName('thin'), { deviceId: 0, sectors: 0 }), /at least 1 sector for options\.sectors/],
      [pool.activateThin(devName('thin'), { deviceId: 0, sectors: 128, externalOriginDevice: 'sda' }), /options\.externalOriginDevice/],
      [pool.grow({ dataSectors: 1024 }), /at least the pool's 2048 sectors \(a pool cannot shrink\)/],
      [pool.grow({ dataSectors: 4000 }), /multiple of the block size/],
      [pool.configure({ lowWaterMark: 1.5 }), /lowWaterMark/],
      [pool.configure({ blockSize: 256 } as never), /unknown option "blockSize"/],
      [pool.waitForStatus(() => true, { timeout: 0 }), /options\.timeout/],
      [pool.onLowWater('grow' as never), /handler/],
    ];
    for (const [p, message] of calls) {
      const e = await p.then(() => undefined, (x: unknown) => x);
      expect(e, String(message)).to.satisfy((x: unknown) => x instanceof TypeError || x instanceof RangeError);
      expect(String(e)).to.match(message);
    }
    expect(t.dm.ioctlStats.commands).to.equal(start);
  });

  it('create touches no metadata device the kernel holds (EBUSY from the O_EXCL open, nothing written) nor any when the name is taken (EBUSY), writes back the old superblock when DM_DEV_CREATE refuses a taken uuid, and leaves no device behind', async () => {
    const meta = await t.fx.loop(8192);
    const data = await t.fx.loop(2048);
    const marker = randomBytes(4096);
    fill(meta.path, marker);
    const holder = devName('holder');
    await t.dm.create(holder, { table: new Table([{ start: 0, length: 8192, target: targets.linear({ device: meta.dev, offset: 0 }) }]) });
    const name = devName('pool');
    const busy = await rejection(ThinPool.create(t.dm, name, { metadataDevice: meta.dev, dataDevice: data.dev, blockSize: 128 }));
    expect(busy.code).to.equal('EBUSY');
    expect(busy.syscall).to.equal('open');
    expect(head(meta.path).equals(marker)).to.equal(true);
    expect((await t.dm.listDevices()).map((d) => d.name)).to.not.include(name);
    await t.dm.remove(holder);

    const taken = await rejection(ThinPool.create(t.dm, await takenName(t), { metadataDevice: meta.dev, dataDevice: data.dev, blockSize: 128 }));
    expect(taken.code).to.equal('EBUSY');
    expect(head(meta.path).equals(marker)).to.equal(true);
    // A uuid another device has: DM_DEV_CREATE refuses it after the zeroing, which is undone.
    const uuid = devName('uuid');
    await t.dm.create(devName('zero'), { uuid, table: new Table([{ start: 0, length: 8, target: targets.zero() }]) });
    const dup = await rejection(ThinPool.create(t.dm, name, { metadataDevice: meta.dev, dataDevice: data.dev, blockSize: 128, uuid }));
    expect(dup).to.deep.include({ code: 'EBUSY', command: 'DM_DEV_CREATE', rollbackError: undefined });
    expect(head(meta.path).equals(marker)).to.equal(true);
    expect((await t.dm.listDevices()).map((d) => d.name)).to.not.include(name);
    // A table the kernel refuses (the pool runs past its data device): the create removes the device.
    const refused = await rejection(ThinPool.create(t.dm, name, { metadataDevice: meta.dev, dataDevice: data.dev, blockSize: 128, dataSectors: 4096 }));
    expect(refused.code).to.equal('EINVAL');
    expect((await t.dm.listDevices()).map((d) => d.name)).to.not.include(name);
  });

  it('thin volumes: create, activate, write and read back, snapshot of the active origin (suspended and resumed for the caller), snapshot of the snapshot, deactivate, delete; the transaction id moves by one with each change; thin_ls and thin_dump through a held metadata snapshot agree, and thin_check finds the metadata clean after', async () => {
    const calls: string[] = [];
    const { pool, meta } = await newPool(t, 256, { calls });
    expect(await pool.createThin(1)).to.equal(1n);
    const origin = await pool.activateThin(devName('origin'), { deviceId: 1, sectors: 64 * 128 });
    expect(origin).to.deep.include({ deviceId: 1, sectors: 64 * 128, externalOriginDevice: null });
    const table = await t.dm.table(origin.name);
    expect(table?.equals(new Table([{ start: 0, length: 64 * 128, target: targets.thin({ poolDevice: pool.dev, deviceId: 1 }) }]))).to.equal(true);
    expect(dmsetup('table', origin.name).trimEnd()).to.equal(table?.toString());
    const a = randomBytes(4 * BLOCK);
    writeAt(origin.path, a, 0);
    expect(readAt(origin.path, a.length, 0).equals(a)).to.equal(true);
    expect(await pool.thinStatus(origin)).to.deep.include({ mappedSectors: 4 * 128, highestMappedSector: 4 * 128 - 1 });

    // The origin is active: createSnapshot suspends it around create_snap, and resumes it.
    calls.length = 0;
    expect(await pool.createSnapshot(2, 1)).to.equal(2n);
    expect(calls).to.deep.equal([`message ${pool.name} set_transaction_id 1 2`, `suspend ${origin.name}`, `message ${pool.name} create_snap 2 1`, `resume ${origin.name}`]);
    expect((await t.dm.info(origin.name)).suspended).to.equal(false);
    const snap = await pool.activateThin(devName('snap'), { deviceId: 2, sectors: 64 * 128 });
    const b = randomBytes(BLOCK);
    writeAt(origin.path, b, 0);
    expect(readAt(snap.path, a.length, 0).equals(a)).to.equal(true);
    // A snapshot of the snapshot, while both are active.
    expect(await pool.createSnapshot(3, 2)).to.equal(3n);
    expect((await t.dm.info(snap.name)).suspended).to.equal(false);
    const c = randomBytes(BLOCK);
    writeAt(snap.path, c, BLOCK);
    const snap2 = await pool.activateThin(devName('snap2'), { deviceId: 3, sectors: 64 * 128 });
    expect(readAt(snap2.path, a.length, 0).equals(a)).to.equal(true);
    expect(readAt(snap.path, BLOCK, BLOCK).equals(c)).to.equal(true);
    expect(readAt(origin.path, BLOCK, 0).equals(b)).to.equal(true);

    const active = await pool.activeThins();
    expect(active.map((v) => [v.name, v.deviceId]).sort()).to.deep.equal([[origin.name, 1], [snap.name, 2], [snap2.name, 3]].sort());
    const s = await pool.runningStatus();
    expect(s.transactionId).to.equal(3n);
    // a (4 blocks, shared), b's block for the origin, c's block for the snapshot.
    expect(s.data.used).to.equal(6);

    // The peers read the live pool's metadata through a held metadata snapshot.
    const mapped = { 1: (await pool.thinStatus(origin)), 2: (await pool.thinStatus(snap)), 3: (await pool.thinStatus(snap2)) };
    await pool.withMetadataSnap(async (root) => {
      expect((await pool.runningStatus()).heldMetadataRoot).to.equal(root);
      const ls = thinLs(meta.path, true);
      expect([...ls.keys()].sort()).to.deep.equal([1, 2, 3]);
      for (const [id, st] of Object.entries(mapped)) {
        if (st.failed !== false) throw new Error('thin failed');
        expect(ls.get(Number(id)), `thin ${id}`).to.equal(st.mappedSectors / 128);
      }
      const dump = thinTool('thin_dump', `--metadata-snap=${root}`, meta.path);
      expect(dump).to.match(/transaction="3"/);
      expect(dump).to.match(/<device dev_id="1" mapped_blocks="4"/);
    });
    expect((await pool.runningStatus()).heldMetadataRoot).to.equal(null);

    // Deleting an active volume is refused by the kernel; the transaction id is set back.
    expect((await rejection(pool.deleteThin(3))).code).to.equal('EBUSY');
    expect((await pool.runningStatus()).transactionId).to.equal(3n);
    // create_thin of an id that exists: EEXIST, and the id set back.
    expect((await rejection(pool.createThin(2))).code).to.equal('EEXIST');
    expect((await pool.runningStatus()).transactionId).to.equal(3n);
    // A caller whose records are behind: set_transaction_id refuses (EINVAL) before any change.
    expect((await rejection(pool.createThin(9, { transactionId: 2n }))).code).to.equal('EINVAL');
    expect(await pool.createThin(9, { transactionId: 3n })).to.equal(4n);

    await pool.deactivateThin(snap2);
    expect(await pool.deleteThin(3)).to.equal(5n);
    await pool.deactivateThin(snap.name);
    await pool.deactivateThin({ name: origin.name });
    expect(await pool.activeThins()).to.deep.equal([]);
    // Every block 3 had is still another's.
    expect((await pool.runningStatus()).data.used).to.equal(6);
    await pool.remove();
    thinTool('thin_check', meta.path);
    expect(Object.fromEntries(thinLs(meta.path, false))).to.deep.equal({ 1: 4, 2: 4, 9: 0 });
    expect(thinTool('thin_dump', meta.path)).to.match(/transaction="5"/);
  });

  it('failures of the volume calls leave nothing behind: a snapshot refused by the kernel resumes its origin and sets the transaction id back; an id the metadata lacks is not activated; a device that is not a thin of the pool is not deactivated', async () => {
    const calls: string[] = [];
    const { pool } = await newPool(t, 64, { calls });
    await pool.createThin(1);
    await pool.createThin(2);
    const origin = await pool.activateThin(devName('origin'), { deviceId: 1, sectors: 1024 });
    // Snapshot id 2 exists: create_snap fails after the origin was suspended.
    calls.length = 0;
    expect((await rejection(pool.createSnapshot(2, 1))).code).to.equal('EEXIST');
    expect(calls).to.deep.equal([`message ${pool.name} set_transaction_id 2 3`, `suspend ${origin.name}`, `message ${pool.name} create_snap 2 1`, `resume ${origin.name}`, `message ${pool.name} set_transaction_id 3 2`]);
    expect((await t.dm.info(origin.name)).suspended).to.equal(false);
    expect((await pool.runningStatus()).transactionId).to.equal(2n);
    writeAt(origin.path, randomBytes(4096), 0);

    const missing = devName('missing');
    await rejection(pool.activateThin(missing, { deviceId: 5, sectors: 1024 }));
    expect((await t.dm.listDevices()).map((d) => d.name)).to.not.include(missing);

    const other = devName('linear');
    const loop = await t.fx.loop(1024);
    await t.dm.create(other, { table: new Table([{ start: 0, length: 1024, target: targets.linear({ device: loop.dev, offset: 0 }) }]) });
    const e = await pool.deactivateThin(other).then(() => undefined, (x: unknown) => x);
    expect(e).to.be.instanceOf(RangeError);
    expect(String(e)).to.match(/a thin volume of pool/);
    expect((await t.dm.info(other)).activeTable).to.equal(true);
    // The pool itself is not a thin of the pool either.
    expect(await pool.deactivateThin(pool.name).then(() => undefined, (x: unknown) => x)).to.be.instanceOf(RangeError);
    // open() takes only a device whose table is one thin-pool row.
    expect(await ThinPool.open(t.dm, other).then(() => undefined, (x: unknown) => x)).to.be.instanceOf(RangeError);
    // The pool is busy while a volume is active.
    expect((await rejection(pool.remove())).code).to.equal('EBUSY');
  });

  it('an external-origin thin reads the origin where it has not provisioned, provisions whole blocks on write, never writes the origin', async () => {
    const { pool } = await newPool(t, 64);
    const ext = await t.fx.loop(1024);
    const image = randomBytes(1024 * 512);
    writeAt(ext.path, image, 0);
    await pool.createThin(4);
    const vol = await pool.activateThin(devName('ext'), { deviceId: 4, sectors: 1024, externalOriginDevice: ext.path, readOnly: false });
    expect(vol.externalOriginDevice).to.equal(ext.devString);
    expect(dmsetup('table', vol.name).trimEnd()).to.equal(`0 1024 thin ${pool.dev.major}:${pool.dev.minor} 4 ${ext.devString}`);
    expect(readAt(vol.path, image.length, 0).equals(image)).to.equal(true);
    const w = randomBytes(4096);
    writeAt(vol.path, w, 3 * BLOCK + 8192);
    const want = Buffer.from(image);
    w.copy(want, 3 * BLOCK + 8192);
    expect(readAt(vol.path, image.length, 0).equals(want)).to.equal(true);
    expect(await pool.thinStatus(vol)).to.deep.include({ mappedSectors: 128, highestMappedSector: 4 * 128 - 1 });
    expect(readAt(ext.path, image.length, 0).equals(image)).to.equal(true);
  });

  it('grow: a larger data device and a larger metadata device, picked up by a reload, show in the status totals; a length past the data device is refused by the kernel and the pool runs on, not suspended, on its old table', async () => {
    const { pool, meta, data } = await newPool(t, 16, { metaSectors: 4096 });
    const s0 = await pool.runningStatus();
    expect(s0.data.total).to.equal(16);
    expect(s0.metadata.total).to.equal(512);
    await pool.createThin(0);
    const vol = await pool.activateThin(devName('thin'), { deviceId: 0, sectors: 64 * 128 });
    const a = randomBytes(16 * BLOCK);
    writeAt(vol.path, a, 0);

    await growLoop(data, 40 * 128);
    const s1 = await pool.grow();
    expect(s1.data).to.deep.equal({ used: 16, total: 40 });
    expect(pool.sectors).to.equal(40 * 128);
    expect((await t.dm.table(pool.name))?.size).to.equal(40 * 128);
    await growLoop(meta, 8192);
    const s2 = await pool.grow();
    expect(s2.metadata.total).to.equal(1024);
    expect(s2.data.total).to.equal(40);
    const b = randomBytes(8 * BLOCK);
    writeAt(vol.path, b, 30 * BLOCK);
    expect(readAt(vol.path, a.length, 0).equals(a)).to.equal(true);
    expect(readAt(vol.path, b.length, 30 * BLOCK).equals(b)).to.equal(true);

    const e = await rejection(pool.grow({ dataSectors: 80 * 128 }));
    expect(e.code).to.equal('EINVAL');
    const info = await t.dm.info(pool.name);
    expect(info).to.deep.include({ suspended: false, inactiveTable: false });
    expect((await t.dm.table(pool.name))?.size).to.equal(40 * 128);
    expect((await pool.runningStatus()).data.total).to.equal(40);
    expect(pool.sectors).to.equal(40 * 128);
  });

  it('the low water mark wakes onLowWater, whose handler grows the pool: one write larger than the pool completes, the pool grown in steps as it fills; the wait ends when its signal aborts', async () => {
    const { pool, data } = await newPool(t, 16, { lowWaterMark: 4 });
    await pool.createThin(0);
    const vol = await pool.activateThin(devName('thin'), { deviceId: 0, sectors: 128 * 128 });
    const seen: { free: number; total: number }[] = [];
    const stop = new AbortController();
    let size = 16;
    const watching = pool.onLowWater(async (event, p) => {
      seen.push({ free: event.freeDataBlocks, total: event.status.data.total });
      expect(event.dataLow).to.equal(true);
      size += 16;
      await growLoop(data, size * 128);
      await p.grow();
    }, { signal: stop.signal }).then(() => undefined, (e: unknown) => e);
    // 40 blocks through a pool of 16: queued (queue_if_no_space) until the handler has grown it.
    const w = randomBytes(40 * BLOCK);
    await new Promise<void>((done, fail) => {
      const dd = spawn('dd', [`of=${vol.path}`, 'bs=65536', 'iflag=fullblock', 'oflag=direct', 'status=none'], { stdio: ['pipe', 'ignore', 'pipe'] });
      let err = '';
      dd.stderr.on('data', (d: Buffer) => (err += d.toString()));
      dd.on('error', fail);
      dd.on('exit', (code) => (code === 0 ? done() : fail(new Error(`dd exited ${code}: ${err}`))));
      dd.stdin.end(w);
    });
    expect(readAt(vol.path, w.length, 0).equals(w)).to.equal(true);
    const s = await pool.runningStatus();
    expect(s.data.used).to.equal(40);
    expect(s.data.total).to.be.at.least(48);
    expect(seen.length).to.be.at.least(2);
    for (const e of seen) expect(e.free).to.be.at.most(4);
    stop.abort();
    expect(await watching).to.equal(undefined);
  });

  it('out of data space with error_if_no_space: a direct write fails at once (ENOSPC), the pool is out_of_data_space and waitForStatus sees it; blocks already written still read', async () => {
    const { pool } = await newPool(t, 8, { errorIfNoSpace: true });
    await pool.createThin(0);
    const vol = await pool.activateThin(devName('thin'), { deviceId: 0, sectors: 64 * 128 });
    const a = randomBytes(6 * BLOCK);
    writeAt(vol.path, a, 0);
    expect(writeError(vol.path, randomBytes(4 * BLOCK), 6 * BLOCK)).to.match(/No space left on device/);
    const s = await pool.waitForStatus((x) => x.mode === 'out_of_data_space', { timeout: 10000 });
    expect(s).to.deep.include({ noSpace: 'error' });
    expect(s.data).to.deep.equal({ used: 8, total: 8 });
    expect(readAt(vol.path, a.length, 0).equals(a)).to.equal(true);
  });

  it('out of data space in queue mode: a direct write waits (the pool out_of_data_space) and completes once the pool is grown; switched to error_if_no_space, a waiting write fails at once', async () => {
    const { pool, data } = await newPool(t, 8);
    await pool.createThin(0);
    const vol = await pool.activateThin(devName('thin'), { deviceId: 0, sectors: 64 * 128 });
    const w = randomBytes(12 * BLOCK);
    const dd = spawn('dd', [`of=${vol.path}`, 'bs=65536', 'iflag=fullblock', 'oflag=direct', 'status=none'], { stdio: ['pipe', 'ignore', 'pipe'] });
    const exit = new Promise<number | null>((done) => dd.on('exit', (code) => done(code)));
    dd.stdin.end(w);
    const full = await pool.waitForStatus((x) => x.mode === 'out_of_data_space', { timeout: 10000 });
    expect(full).to.deep.include({ noSpace: 'queue' });
    expect(full.data).to.deep.equal({ used: 8, total: 8 });
    expect(dd.exitCode).to.equal(null);
    await growLoop(data, 16 * 128);
    const grown = await pool.grow();
    expect(grown.mode).to.equal('rw');
    expect(await exit).to.equal(0);
    expect(readAt(vol.path, w.length, 0).equals(w)).to.equal(true);
    expect((await pool.runningStatus()).data.used).to.equal(12);

    // Fill it again, then switch to error mode while a write waits.
    const dd2 = spawn('dd', [`of=${vol.path}`, 'bs=65536', 'iflag=fullblock', 'seek=20', 'oflag=direct', 'status=none'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    dd2.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exit2 = new Promise<number | null>((done) => dd2.on('exit', (code) => done(code)));
    // dd fails before it has read all its input: its stdin then breaks (EPIPE).
    dd2.stdin.on('error', () => undefined);
    dd2.stdin.end(randomBytes(8 * BLOCK));
    await pool.waitForStatus((x) => x.mode === 'out_of_data_space', { timeout: 10000 });
    expect(dd2.exitCode).to.equal(null);
    const target = await pool.configure({ errorIfNoSpace: true });
    expect(target.errorIfNoSpace).to.equal(true);
    expect(await exit2).to.not.equal(0);
    expect(err).to.match(/error|space/i);
    expect(await pool.runningStatus()).to.deep.include({ noSpace: 'error', mode: 'out_of_data_space' });
  });

  it('a discard through a thin volume returns its blocks to the pool', async () => {
    const { pool } = await newPool(t, 32);
    await pool.createThin(0);
    const vol = await pool.activateThin(devName('thin'), { deviceId: 0, sectors: 32 * 128 });
    writeAt(vol.path, randomBytes(8 * BLOCK), 0);
    expect((await pool.runningStatus()).data.used).to.equal(8);
    await blockDiscard(vol.path, 2 * BLOCK, 4 * BLOCK);
    expect(await pool.thinStatus(vol)).to.deep.include({ mappedSectors: 4 * 128, highestMappedSector: 8 * 128 - 1 });
    expect((await pool.runningStatus()).data.used).to.equal(4);
    expect(readAt(vol.path, 4 * BLOCK, 2 * BLOCK).equals(Buffer.alloc(4 * BLOCK))).to.equal(true);
  });

  it('activate reopens the metadata of a pool as it was (volumes and data kept); read_only makes it ro and refuses changes; waitForStatus is bounded by its timeout (ETIMEDOUT) and its signal', async () => {
    const { pool, meta, data } = await newPool(t, 32);
    await pool.createThin(0);
    const vol = await pool.activateThin(devName('thin'), { deviceId: 0, sectors: 1024 });
    const a = randomBytes(2 * BLOCK);
    writeAt(vol.path, a, 0);
    await pool.deactivateThin(vol);
    await pool.remove();

    const ro = await ThinPool.activate(t.dm, devName('pool'), { metadataDevice: meta.dev, dataDevice: data.dev, blockSize: 128, readOnly: true });
    expect(await ro.runningStatus()).to.deep.include({ mode: 'ro', transactionId: 1n });
    expect((await rejection(ro.createThin(1))).code).to.equal('ENOTSUP');
    await ro.remove();

    const again = await ThinPool.activate(t.dm, devName('pool'), { metadataDevice: meta.dev, dataDevice: data.dev, blockSize: 128 });
    const back = await again.activateThin(devName('thin'), { deviceId: 0, sectors: 1024 });
    expect(readAt(back.path, a.length, 0).equals(a)).to.equal(true);
    expect((await again.runningStatus()).transactionId).to.equal(1n);

    const timedOut = await rejection(again.waitForStatus((s) => s.mode === 'out_of_data_space', { timeout: 300 }));
    expect(timedOut.code).to.equal('ETIMEDOUT');
    const ac = new AbortController();
    const waiting = again.waitForStatus(() => false, { signal: ac.signal });
    ac.abort();
    const aborted = await waiting.then(() => undefined, (x: unknown) => x);
    expect(aborted).to.be.instanceOf(Error);
    expect(aborted).to.not.be.instanceOf(DmError);
    expect(aborted).to.have.property('name', 'AbortError');
  });

  it('examples/thin-pool.js runs as a user would run it and prints what the kernel did', () => {
    const env = { ...process.env, DEVMAPPER_EXAMPLE_PREFIX: `${PREFIX}example-` };
    const r = spawnSync(process.execPath, [join(root, 'examples', 'thin-pool.js')], { cwd: root, env, encoding: 'utf8', timeout: 120000 });
    expect(r.status, `${r.stdout}${r.stderr}`).to.equal(0);
    expect(r.stdout).to.match(/^pool: 0\/16 data blocks, transaction 0$/m);
    expect(r.stdout).to.match(/^volume 1: transaction 1$/m);
    expect(r.stdout).to.match(/^snapshot 2 of 1: transaction 2, reads "before the snapshot"$/m);
    expect(r.stdout).to.match(/^low water: \d+ free of 16 blocks; grown to 32$/m);
    expect(r.stdout).to.match(/^pool: 2[0-9]\/32 data blocks, mode rw$/m);
    expect(r.stdout).to.match(/^removed$/m);
  });
});

/** A name that an existing device has. */
async function takenName(t: TestContext): Promise<string> {
  const name = devName('taken');
  await t.dm.create(name, { table: new Table([{ start: 0, length: 8, target: targets.zero() }]) });
  return name;
}
