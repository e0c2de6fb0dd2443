/**
 * Classic (dm-snapshot) snapshots of a live device, made and merged the way LVM does it: the
 * origin's table moves to a hidden `-real` device, the origin becomes a `snapshot-origin` of
 * it, and the snapshot keeps the origin's old chunks in a COW device; a merge hands the COW
 * over to a `snapshot-merge` table in the origin's place and copies it back.
 * See Documentation/admin-guide/device-mapper/snapshot.rst.
 */
import { constants } from 'node:os';
import { abortError, checkSignal, onAbort } from '../abort';
import { DeviceMapper, type DeviceInfo } from '../client';
import { formatDev, parseDevNumber, type DevNumber, type DeviceRef } from '../dev';
import { DmError } from '../errors';
import { Table } from '../table';
import { targets, type SnapshotMergeStatus, type SnapshotMergeTarget, type SnapshotMergeValidStatus, type SnapshotPersistence, type SnapshotStatus, type SnapshotTarget } from '../targets/index';
import { parseSnapshot } from '../targets/snapshot';
import { parseSnapshotMerge } from '../targets/snapshot-merge';
import { checkBoolean, checkInteger, checkName, checkOptions, checkUuid, expected, expectedRange } from '../validate';
import { checkDeviceMapper } from './common';

/** Options of `Snapshot.create`. */
export interface SnapshotCreateOptions {
  /** The snapshot device's name. */
  name: string;
  /** The snapshot device's uuid (none by default). */
  uuid?: string;
  /** The COW device: where the origin's old chunks and the snapshot's own writes go. */
  cowDevice: DeviceRef;
  /**
   * The exception store (default `P`): `P` persistent (survives the table, can be merged),
   * `PO` persistent and reporting `Overflow` instead of invalidating when the snapshot's own
   * writes fill the COW, `N` transient (kept in kernel memory only; cannot be merged).
   */
  persistent?: SnapshotPersistence;
  /**
   * The chunk size in 512-byte sectors: a power of two up to 2097152. Default 0: the kernel
   * chooses (32 sectors on a fresh persistent COW, the header's on a used one); `chunkSize`
   * of the result says what it chose.
   */
  chunkSize?: number;
  /** `discard_zeroes_cow`: a discard of whole chunks drops their exceptions (default false). */
  discardZeroesCow?: boolean;
  /** `discard_passdown_origin`: discards also reach the origin's device; needs discardZeroesCow. */
  discardPassdownOrigin?: boolean;
  /** The name of the hidden device that takes the origin's table over; default `<origin>-real`. */
  realName?: string;
}

/** Options of `Snapshot.merge` and `Snapshot.finishMerge`: how long to wait for the merge. */
export interface SnapshotMergeWaitOptions {
  /** Ends the wait for the merge (the merge itself goes on in the kernel; see `finishMerge`). */
  signal?: AbortSignal;
  /** Milliseconds the wait for the merge may take; default 600000. */
  timeout?: number;
}

/** What a finished merge did. */
export interface SnapshotMergeResult {
  /** Sectors of COW data (not metadata) the kernel copied back into the origin. */
  mergedSectors: number;
  /** The origin once it runs on its own table again (the `-real` device gone). */
  origin: DeviceInfo;
}

const ESTALE = constants.errno.ESTALE;
const EBUSY = constants.errno.EBUSY;
const EINVAL = constants.errno.EINVAL;
const SNAPSHOT_TYPES = ['snapshot', 'snapshot-origin', 'snapshot-merge'];
const DEFAULT_MERGE_TIMEOUT = 600000;
/** The kernel raises no event when a merge ends, so its status is re-read at growing intervals up to this. */
const MERGE_POLL_MAX_MS = 250;

function fail(errno: number, device: string, message: string): DmError {
  return new DmError({ errno, syscall: 'ioctl', device, message: `${device}: ${message}` });
}

/** Refuses an answer about another device than the one the recipe works on (the kernel reuses numbers and names). */
function same(info: DeviceInfo, dev: DevNumber, name: string): DeviceInfo {
  if (info.dev.major !== dev.major || info.dev.minor !== dev.minor || info.name !== name) {
    throw fail(ESTALE, name, `expected device ${formatDev(dev)} but the kernel answered about ${info.name} (${formatDev(info.dev)})`);
  }
  return info;
}

/** Runs the undo steps in order after `error`, keeping the first undo failure as its rollbackError. */
async function rollBack(error: unknown, steps: readonly (() => Promise<unknown>)[]): Promise<never> {
  for (const step of steps) {
    try {
      await step();
    } catch (e) {
      if (error instanceof DmError && error.rollbackError === undefined && e instanceof Error) error.rollbackError = e;
    }
  }
  throw error;
}

function oneRow(length: number, target: SnapshotTarget | SnapshotMergeTarget | ReturnType<typeof targets.snapshotOrigin>): Table {
  return new Table([{ start: 0, length, target }]);
}

/** The single typed row of a snapshot or snapshot-merge device's table, or undefined. */
function snapshotRow(table: Table | undefined, type: 'snapshot'): SnapshotTarget | undefined;
function snapshotRow(table: Table | undefined, type: 'snapshot-merge'): SnapshotMergeTarget | undefined;
function snapshotRow(table: Table | undefined, type: 'snapshot' | 'snapshot-merge'): SnapshotTarget | SnapshotMergeTarget | undefined {
  const row = table?.rows.length === 1 ? table.rows[0] : undefined;
  if (row === undefined || row.type !== type) return undefined;
  return type === 'snapshot' ? parseSnapshot(row.params) : parseSnapshotMerge(row.params);
}

/**
 * A classic snapshot of a live device: `origin` maps `snapshot-origin` over the hidden `real`
 * device that holds the origin's old table, and `name` maps `snapshot` of `real` with the COW
 * device. Writes to the origin first copy the chunk's old data into the COW; writes to the
 * snapshot go to the COW. One snapshot per origin.
 */
export class Snapshot {
  /** The client the snapshot was made with. */
  readonly dm: DeviceMapper;
  /** The snapshot device's name. */
  readonly name: string;
  /** The snapshot device's number. */
  readonly dev: DevNumber;
  /** The origin device's name (users keep using it; it now maps `snapshot-origin`). */
  readonly origin: string;
  /** The origin device's number. */
  readonly originDev: DevNumber;
  /** The hidden device holding the origin's own table (LVM's `-real`). */
  readonly real: string;
  /** The `-real` device's number: the `<origin>` of the snapshot's table. */
  readonly realDev: DevNumber;
  /** The COW device as the table names it ('major:minor'). */
  readonly cowDevice: string;
  /** The exception store. */
  readonly persistent: SnapshotPersistence;
  /** The chunk size in use, in 512-byte sectors (the kernel's choice when 0 was asked). */
  readonly chunkSize: number;
  /** The origin's size in sectors. */
  readonly length: number;
  private readonly target: SnapshotTarget;

  private constructor(dm: DeviceMapper, fields: { name: string; dev: DevNumber; origin: string; originDev: DevNumber; real: string; realDev: DevNumber; target: SnapshotTarget; length: number }) {
    this.dm = dm;
    this.name = fields.name;
    this.dev = fields.dev;
    this.origin = fields.origin;
    this.originDev = fields.originDev;
    this.real = fields.real;
    this.realDev = fields.realDev;
    this.target = fields.target;
    this.cowDevice = fields.target.cowDevice;
    this.persistent = fields.target.persistent;
    this.chunkSize = fields.target.chunkSize;
    this.length = fields.length;
  }

  /**
   * Snapshots the live device `origin` (any table but a snapshot's own). In order: a `-real`
   * device is created with the origin's live table; the origin is suspended (its I/O flushed);
   * the snapshot device is created and resumed (`snapshot <real> <COW> <P|PO|N> <chunk>`); a
   * `snapshot-origin <real>` table is loaded into the origin and made live by its resume. While
   * the origin is suspended no write can reach the data unsaved, so the snapshot is the origin
   * as it was at the suspend. If a step fails, what was made is removed again (the snapshot
   * while the origin is still suspended, as the kernel doc asks) and the origin resumed on its
   * own table: nothing is left half-made or suspended.
   */
  static async create(dm: DeviceMapper, origin: string, options: SnapshotCreateOptions): Promise<Snapshot> {
    checkDeviceMapper(dm);
    const o = checkOptions(options, 'options', ['name', 'uuid', 'cowDevice', 'persistent', 'chunkSize', 'discardZeroesCow', 'discardPassdownOrigin', 'realName']);
    if (options === undefined) throw expected('an options object with name and cowDevice', 'options', options);
    checkName(origin, 'origin');
    const name = checkName(o.name, 'options.name');
    const uuid = o.uuid === undefined ? undefined : checkUuid(o.uuid, 'options.uuid');
    const real = checkName(o.realName ?? `${origin}-real`, 'options.realName');
    if (name === origin || real === origin || real === name) throw expectedRange('names that differ from each other and from the origin', 'options.name', name);
    if (o.cowDevice === undefined) throw expected("a device ('major:minor', a /dev path or { major, minor })", 'options.cowDevice', o.cowDevice);
    const fields = {
      cowDevice: o.cowDevice,
      persistent: o.persistent ?? 'P',
      chunkSize: o.chunkSize ?? 0,
      discardZeroesCow: checkBoolean(o.discardZeroesCow, 'options.discardZeroesCow', false),
      discardPassdownOrigin: checkBoolean(o.discardPassdownOrigin, 'options.discardPassdownOrigin', false),
    };
    // Built once against the COW itself only to check the fields before any ioctl.
    targets.snapshot({ ...fields, origin: fields.cowDevice });

    const originInfo = await dm.info(origin);
    const originDev = originInfo.dev;
    if (!originInfo.activeTable) throw fail(EINVAL, origin, 'has no live table to snapshot');
    if (originInfo.suspended) throw fail(EBUSY, origin, 'is suspended (another operation is in progress)');
    const { table: own, secure } = await liveTable(dm, origin);
    const taken = own.rows.find((r) => SNAPSHOT_TYPES.includes(r.type));
    if (taken !== undefined) throw fail(EBUSY, origin, `maps ${taken.type} already (one snapshot per origin)`);

    const realInfo = await dm.create(real, { table: own, secure, readOnly: originInfo.readOnly, ...(originInfo.uuid !== '' ? { uuid: `${originInfo.uuid}-real` } : {}) });
    const realDev = realInfo.dev;
    const snapTable = oneRow(own.size, targets.snapshot({ ...fields, origin: realDev }));
    let snapInfo: DeviceInfo | undefined;
    try {
      same(await dm.suspend(origin), originDev, origin);
    } catch (e) {
      return rollBack(e, [() => dm.remove(real)]);
    }
    try {
      snapInfo = await dm.create(name, { table: snapTable, ...(uuid !== undefined ? { uuid } : {}) });
      same(await dm.load(origin, oneRow(own.size, targets.snapshotOrigin({ origin: realDev })), { readOnly: originInfo.readOnly }), originDev, origin);
      same(await dm.resume(origin), originDev, origin);
    } catch (e) {
      const made = snapInfo;
      // A failed resume leaves the origin suspended on its old table (the new one dropped).
      return rollBack(e, [
        async () => {
          if ((await dm.info(origin)).inactiveTable) await dm.clear(origin);
        },
        async () => {
          if (made !== undefined) await dm.remove(made.uuid !== '' ? { uuid: made.uuid } : made.name);
        },
        () => dm.resume(origin),
        () => dm.remove(real),
      ]);
    }
    const back = snapshotRow(await dm.table(name), 'snapshot');
    if (back === undefined) throw fail(ESTALE, name, 'does not map the snapshot just made');
    return new Snapshot(dm, { name, dev: snapInfo.dev, origin, originDev, real, realDev, target: back, length: own.size });
  }

  /**
   * The snapshot's typed status: `state: 'valid'` with the COW's usage (`usage.used` of
   * `usage.total` sectors, `metadataSectors` of them metadata), or `Invalid` (the COW filled up
   * through the origin's writes, or an I/O error: the snapshot is dropped and its I/O fails),
   * `Overflow` (a `PO` snapshot filled by its own writes: reads work, writes fail).
   */
  async status(): Promise<SnapshotStatus> {
    same(await this.dm.info(this.name), this.dev, this.name);
    const [row] = await this.dm.status(this.name);
    const s = row?.status;
    if (s === undefined || !s.known || s.type !== 'snapshot') throw fail(ESTALE, this.name, 'does not report a snapshot status');
    return s;
  }

  /**
   * Drops the snapshot and gives the origin its own table back: with the origin suspended, the
   * snapshot device is removed and the `-real` device's table loaded into the origin, then the
   * origin is resumed and `-real` removed. A snapshot still open is refused (EBUSY) and
   * nothing changes; the origin is never left suspended.
   */
  async remove(): Promise<DeviceInfo> {
    const { dm } = this;
    const info = same(await dm.info(this.name), this.dev, this.name);
    if (info.openCount > 0) throw fail(EBUSY, this.name, `is open (${info.openCount} opener(s)): close it before removing the snapshot`);
    const { table: own, secure } = await liveTable(dm, this.real);
    same(await dm.suspend(this.origin), this.originDev, this.origin);
    try {
      await dm.remove(this.name, { retries: 0 });
      same(await dm.load(this.origin, own, { secure }), this.originDev, this.origin);
      same(await dm.resume(this.origin), this.originDev, this.origin);
    } catch (e) {
      return rollBack(e, [
        async () => {
          if ((await dm.info(this.origin)).inactiveTable) await dm.clear(this.origin);
        },
        // With the snapshot already gone, the origin still maps snapshot-origin over -real and works.
        () => dm.resume(this.origin),
      ]);
    }
    await dm.remove(this.real);
    return dm.info(this.origin);
  }

  /**
   * Merges the snapshot back into its origin, so that the origin then holds the snapshot's
   * data. Only a persistent (`P`, `PO`), valid snapshot that nobody has open can be merged.
   * In order: the snapshot is suspended; `snapshot-merge <real> <COW> <P|PO> <chunk>` is loaded
   * into the origin; the origin is suspended and resumed, which hands the COW's exceptions
   * over from the snapshot to the merge (the snapshot is invalid from then on, and is removed);
   * the kernel copies the chunks back in the background while the origin serves the merged
   * view. Then `finishMerge` waits for the copy and gives the origin its own table back. A
   * failure before the handover puts everything back as it was; a wait that times out or is
   * aborted leaves the merge running (call `finishMerge` again later).
   */
  async merge(options?: SnapshotMergeWaitOptions): Promise<SnapshotMergeResult> {
    const o = checkMergeOptions(options);
    const { dm } = this;
    if (o.signal?.aborted) throw abortError(o.signal);
    if (this.persistent === 'N') throw expectedRange('a persistent snapshot (P or PO) to merge', 'snapshot.persistent', this.persistent);
    const info = same(await dm.info(this.name), this.dev, this.name);
    if (info.openCount > 0) throw fail(EBUSY, this.name, `is open (${info.openCount} opener(s)): its I/O would fail once merging starts`);
    const status = await this.status();
    if (status.state !== 'valid') throw fail(EINVAL, this.name, `is ${status.state}: only a valid snapshot can be merged`);
    const merge = targets.snapshotMerge({ origin: this.realDev, cowDevice: this.target.cowDevice, persistent: this.persistent, chunkSize: this.chunkSize, discardZeroesCow: this.target.discardZeroesCow, discardPassdownOrigin: this.target.discardPassdownOrigin });
    same(await dm.suspend(this.name), this.dev, this.name);
    let handedOver = false;
    try {
      same(await dm.load(this.origin, oneRow(this.length, merge)), this.originDev, this.origin);
      same(await dm.suspend(this.origin), this.originDev, this.origin);
      same(await dm.resume(this.origin), this.originDev, this.origin);
      handedOver = true;
    } catch (e) {
      return await rollBack(e, [
        async () => {
          if ((await dm.info(this.origin)).inactiveTable) await dm.clear(this.origin);
        },
        () => dm.resume(this.origin),
        () => dm.resume(this.name),
      ]);
    } finally {
      if (handedOver) {
        // Invalid once its COW is handed over: removing it (suspended) drops nothing the merge needs.
        try {
          await dm.remove(this.name, { retries: 0 });
        } catch {
          await dm.resume(this.name);
        }
      }
    }
    return finish(dm, this.origin, o, status.usage.used - status.metadataSectors);
  }

  /**
   * Waits for the merge running in `origin` (a device mapping `snapshot-merge`) to finish —
   * when the COW's allocated sectors are only its metadata — then loads the `-real` device's
   * table into the origin (suspend, load, resume: the origin now holds the merged data on its
   * own) and removes `-real`. The wait re-reads the typed status at once on each of the
   * origin's events and, since the kernel raises none when a merge ends, at intervals of at
   * most 250 ms; it ends with the merge, on `Merge failed` or `Invalid` (DmError EIO, the
   * origin left mapping `snapshot-merge`), on `timeout` (ETIMEDOUT) or when `signal` aborts.
   */
  static async finishMerge(dm: DeviceMapper, origin: string, options?: SnapshotMergeWaitOptions): Promise<SnapshotMergeResult> {
    checkDeviceMapper(dm);
    const o = checkMergeOptions(options);
    return finish(dm, checkName(origin, 'origin'), o, undefined);
  }
}

/** `finishMerge`; `merging` is the data sectors the snapshot held at the handover, when known. */
async function finish(dm: DeviceMapper, origin: string, o: { signal: AbortSignal | undefined; timeout: number }, merging: number | undefined): Promise<SnapshotMergeResult> {
  const originInfo = await dm.info(origin);
  const merge = snapshotRow(await dm.table(origin), 'snapshot-merge');
  if (merge === undefined) throw fail(EINVAL, origin, 'does not map snapshot-merge');
  const realDev = parseDevNumber(merge.origin);
  const real = realDev === undefined ? undefined : (await dm.listDevices()).find((d) => d.dev.major === realDev.major && d.dev.minor === realDev.minor);
  if (real === undefined || realDev === undefined) throw fail(ESTALE, origin, `merges into ${merge.origin}, which is not a device-mapper device`);
  const left = await waitMerged(dm, origin, originInfo.dev, o);
  const { table: own, secure } = await liveTable(dm, real.name);
  same(await dm.info(real.name), realDev, real.name);
  same(await dm.reload(origin, own, { secure }), originInfo.dev, origin);
  await dm.remove(real.name);
  return { mergedSectors: merging ?? left, origin: same(await dm.info(origin), originInfo.dev, origin) };
}

/** A device's live table; read again with SECURE_DATA when it holds a crypt key, which then goes on with it. */
async function liveTable(dm: DeviceMapper, name: string): Promise<{ table: Table; secure: boolean }> {
  const table = await dm.table(name);
  if (table === undefined) throw fail(EINVAL, name, 'has no live table');
  if (table.rowsOfType('crypt').length === 0) return { table, secure: false };
  const again = await dm.table(name, { secure: true });
  if (again === undefined) throw fail(EINVAL, name, 'has no live table');
  return { table: again, secure: true };
}

function checkMergeOptions(options: SnapshotMergeWaitOptions | undefined): { signal: AbortSignal | undefined; timeout: number } {
  const o = checkOptions(options, 'options', ['signal', 'timeout']);
  return {
    signal: checkSignal(o.signal, 'options.signal'),
    timeout: o.timeout === undefined ? DEFAULT_MERGE_TIMEOUT : checkInteger(o.timeout, 'options.timeout', 1, 2147483647),
  };
}

async function mergeStatus(dm: DeviceMapper, origin: string, dev: DevNumber): Promise<SnapshotMergeStatus> {
  const [row] = await dm.status(origin);
  const s = row?.status;
  if (s === undefined || !s.known || s.type !== 'snapshot-merge') throw fail(ESTALE, origin, `${formatDev(dev)} does not report a snapshot-merge status`);
  return s;
}

/**
 * The data sectors a merging snapshot still has to copy back into its origin: its COW
 * device's use less its metadata; the merge is done when this is 0.
 */
export function snapshotMergeLeft(status: SnapshotMergeValidStatus): number {
  return Math.max(0, status.usage.used - status.metadataSectors);
}

/** Waits until the merge is done; resolves with the data sectors that were left at the first read. */
async function waitMerged(dm: DeviceMapper, origin: string, dev: DevNumber, o: { signal: AbortSignal | undefined; timeout: number }): Promise<number> {
  const { signal } = o;
  if (signal?.aborted) throw abortError(signal);
  const stop = new AbortController();
  const unsubscribe = onAbort(signal, () => stop.abort());
  const timer = setTimeout(() => stop.abort(), o.timeout);
  let firstLeft: number | undefined;
  let pending: Promise<unknown> | undefined;
  let pause = 5;
  try {
    for (;;) {
      const info = same(await dm.info(origin), dev, origin);
      const s = await mergeStatus(dm, origin, dev);
      if (s.state !== 'valid') throw fail(constants.errno.EIO, origin, `merge stopped: ${s.state}`);
      const left = snapshotMergeLeft(s);
      firstLeft ??= left;
      if (left <= 0) return firstLeft;
      if (stop.signal.aborted) break;
      // Woken by the origin's next event, or after the pause if none comes.
      pending ??= dm.waitEvent(origin, info.eventNr, { signal: stop.signal }).then(
        () => {
          pending = undefined;
        },
        () => {
          pending = undefined;
        },
      );
      let wake: NodeJS.Timeout | undefined;
      await Promise.race([pending, new Promise((resolve) => (wake = setTimeout(resolve, pause)))]);
      clearTimeout(wake);
      pause = Math.min(pause * 2, MERGE_POLL_MAX_MS);
    }
    if (signal?.aborted) throw abortError(signal);
    throw fail(constants.errno.ETIMEDOUT, origin, `the merge did not finish within ${o.timeout} ms (it goes on; call Snapshot.finishMerge again)`);
  } finally {
    clearTimeout(timer);
    unsubscribe();
    stop.abort();
    await pending;
  }
}
