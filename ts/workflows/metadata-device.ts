/**
 * What the metadata recipes (ThinPool, Era, Cache) share: a device's size from sysfs, the
 * zeroing of a metadata device's superblock before the kernel formats it (an all-zero first
 * block is "new metadata" to dm-era, dm-cache and dm-thin alike), restored when the create
 * fails before a table is loaded; and the steps of their objects: the create, the open of an
 * active device, the typed status, the check that the device is still the object's, and the
 * wait on its events for a status. Internal: not exported from the package.
 *
 * @internal
 */
import { constants as fsConstants } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { abortError, checkSignal } from '../abort';
import type { DeviceInfo, DeviceMapper } from '../client';
import { formatDev, resolveId, type DevId, type DevNumber } from '../dev';
import { DmError } from '../errors';
import type { Table } from '../table';
import type { Target, TargetStatus } from '../targets/index';
import { checkInteger, checkOptions, checkSector, expectedRange } from '../validate';
import { checkDeviceMapper, fsCall, nodeOf, sameDev } from './common';

/** What the kernel reads first on a metadata device: all zeros there means "format me". */
export const SUPERBLOCK_BYTES = 4096;
/** errno values the recipes report themselves (Linux numbering). */
export const EIO = 5;
/** No such device. */
export const ENXIO = 6;
/** Device or resource busy. */
export const EBUSY = 16;
/** The device is no longer the one an object was made for. */
export const ESTALE = 116;
/** A wait ran out of time. */
export const ETIMEDOUT = 110;

/** A block device's size in 512-byte sectors, as /sys/dev/block/M:m/size says it. */
export async function deviceSectors(dev: DevNumber): Promise<number> {
  const file = `/sys/dev/block/${formatDev(dev)}/size`;
  const text = (await fsCall(file, () => readFile(file, 'utf8'))).trim();
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) throw new DmError({ errno: EIO, syscall: 'read', device: formatDev(dev), message: `${file}: not a size (${JSON.stringify(text)})` });
  return n;
}

/**
 * Writes zeros over the first 4 KiB of a metadata device, opened O_EXCL (EBUSY when the
 * kernel has it claimed: a table or a mount), and resolves with what was there.
 */
export async function zeroSuperblock(dev: DevNumber, label: string): Promise<Buffer> {
  const path = await nodeOf(dev);
  const fh = await fsCall(path, () => open(path, fsConstants.O_RDWR | fsConstants.O_EXCL));
  try {
    const old = Buffer.alloc(SUPERBLOCK_BYTES);
    const { bytesRead } = await fsCall(path, () => fh.read(old, 0, SUPERBLOCK_BYTES, 0));
    if (bytesRead !== SUPERBLOCK_BYTES) throw expectedRange(`a metadata device of at least ${SUPERBLOCK_BYTES} bytes`, label, path);
    await fsCall(path, () => fh.write(Buffer.alloc(SUPERBLOCK_BYTES), 0, SUPERBLOCK_BYTES, 0));
    // The kernel reads the device beneath the page cache: the zeros must be on it.
    await fsCall(path, () => fh.datasync());
    return old;
  } finally {
    await fh.close();
  }
}

/** Writes `bytes` back over the start of the metadata device (the rollback of `zeroSuperblock`). */
export async function writeSuperblock(dev: DevNumber, bytes: Buffer): Promise<void> {
  const path = await nodeOf(dev);
  const fh = await fsCall(path, () => open(path, fsConstants.O_RDWR | fsConstants.O_EXCL));
  try {
    await fsCall(path, () => fh.write(bytes, 0, bytes.length, 0));
    await fsCall(path, () => fh.datasync());
  } finally {
    await fh.close();
  }
}

/** The device's info, or undefined when there is no device of that name. */
export async function lookup(dm: DeviceMapper, name: string): Promise<DeviceInfo | undefined> {
  try {
    return await dm.info(name);
  } catch (e) {
    if (e instanceof DmError && e.errno === ENXIO) return undefined;
    throw e;
  }
}

/**
 * Creates a device whose table formats a metadata device on its first load: the superblock
 * is zeroed first (O_EXCL: EBUSY if anything holds the device, before a byte is written);
 * when the name is taken, or DEV_CREATE fails, the old 4 KiB are written back (the kernel
 * never read the zeros); when the load or resume fails, `dm.create` removes the device.
 */
export async function createOnFreshMetadata(dm: DeviceMapper, name: string, metadataDevice: DevNumber, label: string, create: () => Promise<DeviceInfo>): Promise<DeviceInfo> {
  if ((await lookup(dm, name)) !== undefined) throw new DmError({ errno: EBUSY, syscall: 'ioctl', command: 'DM_DEV_CREATE', device: name, message: `DM_DEV_CREATE ${name}: a device of that name exists; its metadata device was not touched` });
  const old = await zeroSuperblock(metadataDevice, label);
  try {
    return await create();
  } catch (e) {
    if (e instanceof DmError && e.command === 'DM_DEV_CREATE') {
      try {
        await writeSuperblock(metadataDevice, old);
      } catch (r) {
        e.rollbackError = r instanceof Error ? r : new Error(String(r));
      }
    }
    throw e;
  }
}

/** Turns anything thrown into an Error (for `rollbackError`). */
export function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/* ---- What the ThinPool, Era and Cache objects share ---- */

/**
 * The error of a device whose number changed under a ThinPool, Era or Cache object (removed
 * and another made): `what` names the device ('the pool', 'the era device', 'the cache');
 * `why` replaces the whole reason.
 *
 * @internal
 */
export function stale(name: string, expectedDev: DevNumber, found: DevNumber, what: string, why?: string): DmError {
  return new DmError({
    errno: ESTALE,
    syscall: 'ioctl',
    device: name,
    message: `${name}: ${why ?? `the device is now ${formatDev(found)}, not ${what} ${formatDev(expectedDev)} this object was made for`}; nothing was sent to it`,
  });
}

/**
 * The info of the device named `id`, checked to be the one numbered `dev` (ESTALE otherwise).
 *
 * @internal
 */
export async function checkedInfo(dm: DeviceMapper, id: DevId, name: string, dev: DevNumber, what: string): Promise<DeviceInfo> {
  const info = await dm.info(id);
  if (!sameDev(info.dev, dev)) throw stale(name, dev, info.dev, what);
  return info;
}

/**
 * Creates the device with `table` (and `uuid`, when there is one).
 *
 * @internal
 */
export function createDevice(dm: DeviceMapper, name: string, table: Table, uuid: string | undefined): Promise<DeviceInfo> {
  return dm.create(name, { table, ...(uuid !== undefined ? { uuid } : {}) });
}

/**
 * What `open` reads of a device that is active already: its info, the target `targetOf` finds
 * in its live table, and the table's length; the info is read again after the table, which
 * must be of the same device (ESTALE otherwise).
 *
 * @internal
 */
export async function openDevice<T extends Target>(dm: unknown, id: DevId, what: string, targetOf: (table: Table | undefined, name: string) => T): Promise<{ dm: DeviceMapper; info: DeviceInfo; target: T; sectors: number }> {
  checkDeviceMapper(dm);
  resolveId(id);
  const info = await dm.info(id);
  const own: DevId = info.uuid !== '' ? { uuid: info.uuid } : info.name;
  const table = await dm.table(own);
  const target = targetOf(table, info.name);
  // The table read must be of the device the info was about.
  const again = await dm.info(own);
  if (!sameDev(again.dev, info.dev)) throw stale(info.name, info.dev, again.dev, what);
  return { dm, info, target, sectors: table?.size ?? 0 };
}

/**
 * The typed status of the device's only row, refused (EIO, "not one typed `type` row")
 * unless `isType` holds for it.
 *
 * @internal
 */
export async function typedStatus<S extends TargetStatus>(dm: DeviceMapper, id: DevId, name: string, type: string, isType: (s: TargetStatus) => s is S): Promise<S> {
  const rows = await dm.status(id);
  const s = rows[0]?.status;
  if (rows.length !== 1 || s === undefined || !isType(s)) {
    throw statusError(name, `not one typed ${type} row (${rows.map((r) => r.type).join(', ')})`);
  }
  return s;
}

/**
 * The bound and signal of a status wait, checked: `timeout` defaults to `defaultTimeout` ms.
 *
 * @internal
 */
export interface StatusWait {
  readonly timeout: number;
  readonly signal: AbortSignal | undefined;
}

/**
 * Checks a status wait's `{ timeout, signal }` options.
 *
 * @internal
 */
export function statusWaitOptions(options: { timeout?: number; signal?: AbortSignal } | undefined, defaultTimeout: number): StatusWait {
  const o = checkOptions(options, 'options', ['timeout', 'signal']);
  const timeout = o.timeout === undefined ? defaultTimeout : checkInteger(o.timeout, 'options.timeout', 1, 0x7fffffff);
  return { timeout, signal: checkSignal(o.signal, 'options.signal') };
}

/**
 * Waits, on the device's events (DM_DEV_WAIT), until `until(status)` holds for the status
 * `read` gives (read at the start and after each event), at most `wait.timeout` ms
 * (ETIMEDOUT, "`what`'s status did not come to the state waited for", with `last(status)`)
 * or until `wait.signal` aborts; ESTALE when the device is no longer the one numbered `dev`.
 *
 * @internal
 */
export async function waitForStatus<S>(dm: DeviceMapper, id: DevId, name: string, dev: DevNumber, what: string, read: () => Promise<S>, until: (status: S) => boolean, wait: StatusWait, last: (status: S) => string): Promise<S> {
  const { timeout, signal } = wait;
  if (signal?.aborted) throw abortError(signal);
  const timer = AbortSignal.timeout(timeout);
  const both = signal === undefined ? timer : AbortSignal.any([signal, timer]);
  let info = await checkedInfo(dm, id, name, dev, what);
  for (;;) {
    const s = await read();
    if (until(s)) return s;
    try {
      info = await dm.waitEvent(id, info.eventNr, { signal: both });
    } catch (e) {
      if (signal?.aborted) throw abortError(signal);
      if (timer.aborted) throw new DmError({ errno: ETIMEDOUT, syscall: 'ioctl', command: 'DM_DEV_WAIT', device: name, message: `DM_DEV_WAIT ${name}: ${what}'s status did not come to the state waited for in ${timeout} ms (last: ${last(s)})` });
      throw e;
    }
    if (!sameDev(info.dev, dev)) throw stale(name, dev, info.dev, what);
  }
}

/**
 * The one target of a live table, refused (RangeError, "a device whose live table is one
 * `type` row", naming `argName`) unless the table is one row and `isType` holds for it.
 *
 * @internal
 */
export function liveTarget<T extends Target>(table: Table | undefined, name: string, type: string, isType: (t: Target) => t is T, argName: string): T {
  const target = table?.rows.length === 1 ? table.rows[0]?.target : undefined;
  if (table === undefined || target === undefined || !isType(target)) {
    throw expectedRange(`a device whose live table is one ${type} row`, argName, `${name}: ${table === undefined ? 'no table' : table.rows.map((r) => r.type).join(', ')}`);
  }
  return target;
}

/**
 * `options.sectors` checked: undefined (the origin's size) or at least 1 sector.
 *
 * @internal
 */
export function sectorsOption(value: unknown): number | undefined {
  const sectors = value === undefined ? undefined : checkSector(value, 'options.sectors');
  if (sectors === 0) throw expectedRange('a length of at least 1 sector', 'options.sectors', sectors);
  return sectors;
}

/**
 * The device's length: `sectors` when given, else the origin's size, which must be at least 1 sector.
 *
 * @internal
 */
export async function lengthOverOrigin(sectors: number | undefined, originDevice: DevNumber): Promise<number> {
  const length = sectors ?? (await deviceSectors(originDevice));
  if (length === 0) throw expectedRange('an origin of at least 1 sector', 'options.originDevice', formatDev(originDevice));
  return length;
}

/**
 * What a recipe's checked options come to: the table, the metadata device it names, the uuid.
 *
 * @internal
 */
export interface MetadataPlan {
  readonly table: Table;
  readonly metadataDevice: DevNumber;
  readonly uuid: string | undefined;
}

/**
 * Creates the device of `plan`: on fresh metadata (`createOnFreshMetadata`, the superblock
 * zeroed first) when `fresh`, else on the metadata the device finds.
 *
 * @internal
 */
export function createPlanned(dm: DeviceMapper, name: string, plan: MetadataPlan, fresh: boolean): Promise<DeviceInfo> {
  const create = (): Promise<DeviceInfo> => createDevice(dm, name, plan.table, plan.uuid);
  return fresh ? createOnFreshMetadata(dm, name, plan.metadataDevice, 'options.metadataDevice', create) : create();
}

/**
 * The EIO of a status that is not what the recipe needs ("DM_TABLE_STATUS `name`: `why`").
 *
 * @internal
 */
export function statusError(name: string, why: string): DmError {
  return new DmError({ errno: EIO, syscall: 'ioctl', command: 'DM_TABLE_STATUS', device: name, message: `DM_TABLE_STATUS ${name}: ${why}` });
}
