/**
 * What the one-row recipes (Mirror, Raid, Striped) share: a create that removes the device
 * again when a later step fails, the read-back of the device's only row, and a wait on the
 * device's events for a status to come to a state. Internal: not exported from the package
 * (but for the `SyncWaitOptions` type).
 *
 * @internal
 */
import { abortError, checkSignal } from '../abort';
import type { DeviceInfo, DeviceMapper } from '../client';
import { formatDev, type DevId, type DevNumber } from '../dev';
import { DmError } from '../errors';
import type { StatusRow } from '../status';
import { Table, type TableRow } from '../table';
import type { Target } from '../targets/types';
import { checkInteger, checkName, checkOptions, checkSector, checkUuid, expected, expectedRange } from '../validate';
import { idOf, sameDev } from './common';

const ETIMEDOUT = 110;
const ESTALE = 116;
/** Default bound of a sync wait, milliseconds. */
export const DEFAULT_SYNC_TIMEOUT = 60000;
/** Default time between progress reports while a sync runs, milliseconds. */
export const DEFAULT_PROGRESS_INTERVAL = 1000;

/** Options of a wait for a sync to end. */
export interface SyncWaitOptions<S> {
  /** Milliseconds before the wait fails with ETIMEDOUT (default 60000). */
  timeout?: number;
  /** Ends the wait early: it rejects with the signal's reason or an AbortError. */
  signal?: AbortSignal;
  /**
   * Called with the state at the start and each time the progress moved. The kernel raises an
   * event when a sync ends or a leg fails, not as a sync advances: with `onProgress`, the
   * status is also read every `progressInterval` ms between events.
   */
  onProgress?: (state: S) => void;
  /** Milliseconds between two reads of the progress while no event comes (default 1000; needs `onProgress`). */
  progressInterval?: number;
}

/** The name and options of a one-row create, checked before any ioctl; `rest` is the target's options. */
export function checkCreate<T extends { size: number; uuid?: string }>(name: unknown, options: T, what: string): { size: number; uuid: string | undefined; rest: Omit<T, 'size' | 'uuid'> } {
  checkName(name, 'name');
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw expected(`${what} create options`, 'options', options);
  const { size, uuid, ...rest } = options;
  const length = checkSector(size, 'options.size');
  if (length === 0) throw expectedRange('a size of at least 1 sector', 'options.size', size);
  return { size: length, uuid: uuid === undefined ? undefined : checkUuid(uuid, 'options.uuid'), rest };
}

/**
 * Creates the device with `table` (DM_DEV_CREATE, DM_TABLE_LOAD, resume: the client removes
 * it if the load or resume fails), then runs `verify` on it; if `verify` fails, the device is
 * removed again and its error thrown (with the remove's own failure as `rollbackError`).
 */
export async function createVerified<T>(dm: DeviceMapper, name: string, table: Table, uuid: string | undefined, verify: (info: DeviceInfo) => Promise<T>): Promise<T> {
  const info = await dm.create(name, uuid === undefined ? { table } : { table, uuid });
  try {
    return await verify(info);
  } catch (e) {
    await dm.remove(idOf(info)).catch((r: unknown) => {
      if (e instanceof DmError && r instanceof Error) e.rollbackError = r;
    });
    throw e;
  }
}

/** The device's only row, refused (TypeError) unless it is one row of `type` over the whole device. */
export async function onlyRow(dm: DeviceMapper, id: DevId, name: string, type: string): Promise<TableRow> {
  const rows = (await dm.table(id))?.rows ?? [];
  const row = rows[0];
  if (rows.length !== 1 || row === undefined || row.type !== type || row.start !== 0) {
    throw new TypeError(`Expected a device with one ${type} row for ${name} but received ${rows.map((r) => r.type).join(', ') || 'no table'}`);
  }
  return row;
}

/** The typed status of the device's only row, refused (TypeError) unless it is of `type`. */
export async function onlyStatus<S extends StatusRow['status']>(dm: DeviceMapper, id: DevId, name: string, isType: (s: StatusRow['status']) => s is S, type: string): Promise<S> {
  const rows = await dm.status(id);
  const s = rows[0]?.status;
  if (rows.length !== 1 || s === undefined || !isType(s)) throw new TypeError(`Expected the status of one ${type} row for ${name} but received ${rows.map((r) => r.type).join(', ') || 'none'}`);
  return s;
}

/** One row of `length` sectors of `target`. */
export function oneRow(length: number, target: Target): Table {
  return new Table([{ start: 0, length, target }]);
}

/** The error of a device whose number changed under a recipe object (removed and another made). */
export function stale(name: string, expectedDev: DevNumber, found: DevNumber): DmError {
  return new DmError({ errno: ESTALE, syscall: 'ioctl', device: name, message: `${name}: the device is now ${formatDev(found)}, not ${formatDev(expectedDev)} that this object was made for; nothing was sent to it` });
}

/** Checks that the device named `id` is still the one numbered `dev`; resolves with its info. */
export async function checkSame(dm: DeviceMapper, id: DevId, name: string, dev: DevNumber): Promise<DeviceInfo> {
  const info = await dm.info(id);
  if (!sameDev(info.dev, dev)) throw stale(name, dev, info.dev);
  return info;
}

/**
 * Resolves with the state once `done(state)` holds: the event counter is read, then the
 * state, then DM_DEV_WAIT waits for the counter to move, and the state is read again; so an
 * event raised between two reads is never missed. With `onProgress`, each wait is also cut
 * short every `progressInterval` ms to read the progress. Fails with ETIMEDOUT after
 * `timeout` ms, with the signal's reason when it aborts, and with ESTALE when the device
 * named is no longer the one numbered `dev` (checked after each read of the state: another
 * number, another uuid, or an event counter gone back).
 */
export async function waitForState<S>(
  dm: DeviceMapper,
  id: DevId,
  name: string,
  dev: DevNumber,
  read: () => Promise<S>,
  done: (state: S) => boolean,
  progressKey: (state: S) => string,
  options: SyncWaitOptions<S> | undefined,
  what: string,
): Promise<S> {
  const o = checkOptions(options, 'options', ['timeout', 'signal', 'onProgress', 'progressInterval']);
  const timeout = o.timeout === undefined ? DEFAULT_SYNC_TIMEOUT : checkInteger(o.timeout, 'options.timeout', 1, 0x7fffffff);
  const signal = checkSignal(o.signal, 'options.signal');
  const onProgress = o.onProgress;
  if (onProgress !== undefined && typeof onProgress !== 'function') throw expected('a function (state) => void', 'options.onProgress', onProgress);
  if (o.progressInterval !== undefined && onProgress === undefined) throw expectedRange('no value without onProgress', 'options.progressInterval', o.progressInterval);
  const interval = o.progressInterval === undefined ? DEFAULT_PROGRESS_INTERVAL : checkInteger(o.progressInterval, 'options.progressInterval', 1, 0x7fffffff);
  if (signal?.aborted) throw abortError(signal);
  const timer = AbortSignal.timeout(timeout);
  const bound = signal === undefined ? timer : AbortSignal.any([signal, timer]);
  let info = await checkSame(dm, id, name, dev);
  const uuid = info.uuid;
  let lastKey: string | undefined;
  for (;;) {
    const state = await read();
    // `read` goes by `id`: the state counts only if the device named is still the one meant
    // after it (the event counter of the wait stays the one read before it, so that an event
    // raised meanwhile ends the next wait at once).
    sameDevice(await dm.info(id), name, dev, uuid, info.eventNr);
    if (done(state)) return state;
    if (onProgress !== undefined) {
      const key = progressKey(state);
      if (key !== lastKey) onProgress(state);
      lastKey = key;
    }
    const tick = onProgress === undefined ? undefined : AbortSignal.timeout(interval);
    const seen = info.eventNr;
    try {
      info = await dm.waitEvent(id, info.eventNr, { signal: tick === undefined ? bound : AbortSignal.any([bound, tick]) });
    } catch (e) {
      if (signal?.aborted) throw abortError(signal);
      if (timer.aborted) {
        throw new DmError({ errno: ETIMEDOUT, syscall: 'ioctl', command: 'DM_DEV_WAIT', device: name, message: `DM_DEV_WAIT ${name}: ${what} did not end within ${timeout} ms (last: ${progressKey(state)})` });
      }
      if (tick?.aborted !== true) throw e;
      info = await dm.info(id);
    }
    sameDevice(info, name, dev, uuid, seen);
  }
}

/**
 * Throws ESTALE unless `info` is of the device numbered `dev`, with the uuid `uuid`, whose
 * event counter has not gone back below `eventNr`: a device removed and another made under the
 * same name may get the same number at once, but its counter starts again from 0 (so a device
 * made again under the same name, number and uuid before its first event is not told apart).
 */
function sameDevice(info: DeviceInfo, name: string, dev: DevNumber, uuid: string, eventNr: number): void {
  if (!sameDev(info.dev, dev)) throw stale(name, dev, info.dev);
  if (info.uuid !== uuid) {
    throw new DmError({ errno: ESTALE, syscall: 'ioctl', device: name, message: `${name}: its uuid is now ${JSON.stringify(info.uuid)}, not ${JSON.stringify(uuid)}: the device was removed and another made under its name` });
  }
  if (info.eventNr < eventNr) {
    throw new DmError({ errno: ESTALE, syscall: 'ioctl', device: name, message: `${name}: its event counter went back from ${eventNr} to ${info.eventNr}: the device was removed and another made under its name and number` });
  }
}
