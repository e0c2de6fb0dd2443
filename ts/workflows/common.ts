/**
 * What several recipes share: the check of their `dm` argument, fs calls whose failures keep
 * their errno, a block device's number and node, and how a recipe names its device.
 * Internal: not exported from the package.
 *
 * @internal
 */
import { readFile, stat } from 'node:fs/promises';
import { DeviceMapper, type DeviceInfo } from '../client';
import { decodeRdev, formatDev, formatDeviceRef, parseDevNumber, type DevId, type DeviceRef, type DevNumber } from '../dev';
import { CallSite, DmError, toDmError } from '../errors';
import type { StatusRow } from '../status';
import type { Target } from '../targets/types';
import { checkBoolean, checkOptions, expected, expectedRange } from '../validate';

/** ENXIO: what a device number without a node is. */
const ENXIO = 6;

/**
 * Refuses (TypeError) a `dm` that is not a DeviceMapper.
 *
 * @internal
 */
export function checkDeviceMapper(dm: unknown): asserts dm is DeviceMapper {
  if (!(dm instanceof DeviceMapper)) throw expected('a DeviceMapper (DeviceMapper.open())', 'dm', dm);
}

/**
 * Runs a file operation; its failure as a DmError with its errno (EBUSY, ENOENT...), naming the path.
 *
 * @internal
 */
export async function fsCall<T>(path: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (e) {
    throw toDmError(e, new CallSite(fsCall, 'async'), path);
  }
}

/**
 * Whether two device numbers are the same.
 *
 * @internal
 */
export function sameDev(a: DevNumber, b: DevNumber): boolean {
  return a.major === b.major && a.minor === b.minor;
}

/**
 * How a recipe names its device: its uuid, else its name.
 *
 * @internal
 */
export function idOf(info: Pick<DeviceInfo, 'name' | 'uuid'>): DevId {
  return info.uuid !== '' ? { uuid: info.uuid } : { name: info.name };
}

/**
 * A DeviceRef's device number: 'major:minor' and `{ major, minor }` as given, a /dev path by
 * stat (it must be a block device).
 *
 * @internal
 */
export async function deviceNumber(ref: DeviceRef, name: string): Promise<DevNumber> {
  const text = formatDeviceRef(ref, name);
  const dev = parseDevNumber(text);
  if (dev !== undefined) return dev;
  const st = await fsCall(text, () => stat(text));
  if (!st.isBlockDevice()) throw expectedRange('a block device', name, text);
  return decodeRdev(st.rdev);
}

/**
 * A block device's node: /dev/<DEVNAME> from its uevent (devtmpfs names it so, with or
 * without udev), checked to be that very device (ENXIO otherwise).
 *
 * @internal
 */
export async function nodeOf(dev: DevNumber): Promise<string> {
  const file = `/sys/dev/block/${formatDev(dev)}/uevent`;
  const devname = /^DEVNAME=(.+)$/m.exec(await fsCall(file, () => readFile(file, 'utf8')))?.[1];
  if (devname === undefined || devname.includes('..')) throw new DmError({ errno: ENXIO, syscall: 'open', device: formatDev(dev), message: `${formatDev(dev)}: no DEVNAME in its uevent` });
  const path = `/dev/${devname}`;
  const st = await fsCall(path, () => stat(path));
  if (!st.isBlockDevice() || !sameDev(decodeRdev(st.rdev), dev)) throw new DmError({ errno: ENXIO, syscall: 'open', device: path, message: `${path} is not the block device ${formatDev(dev)}` });
  return path;
}

/**
 * DEV_STATUS of the device named `id`, checked to be still the one numbered `dev` (ESTALE,
 * "is now another device", otherwise).
 *
 * @internal
 */
export async function infoOfSame(dm: DeviceMapper, id: DevId, name: string, dev: DevNumber): Promise<DeviceInfo> {
  const info = await dm.info(id);
  if (info.dev.major !== dev.major || info.dev.minor !== dev.minor) {
    throw new DmError({ errno: 116, syscall: 'ioctl', command: 'DM_DEV_STATUS', device: name, message: `${name} is now another device (${formatDev(info.dev)}, not ${formatDev(dev)})` });
  }
  return info;
}

/**
 * Checks that the device named `id` is still the one numbered `dev`, then removes it
 * (DEV_REMOVE; deferred when `options.deferred`). The options are checked first.
 *
 * @internal
 */
export async function closeDevice(dm: DeviceMapper, id: DevId, name: string, dev: DevNumber, options: { deferred?: boolean } | undefined): Promise<void> {
  const deferred = checkBoolean(checkOptions(options, 'options', ['deferred']).deferred, 'options.deferred', false);
  await infoOfSame(dm, id, name, dev);
  await dm.remove(id, { deferred });
}

/**
 * The typed status of a device's only row, refused (ESTALE, "is not a one-row `type`
 * device") unless there is one row and `isType` holds for its status.
 *
 * @internal
 */
export function oneRowStatus<S extends StatusRow['status']>(rows: readonly StatusRow[], name: string, type: string, isType: (s: StatusRow['status']) => s is S): S {
  const s = rows[0]?.status;
  if (rows.length !== 1 || s === undefined || !isType(s)) {
    throw new DmError({ errno: 116, syscall: 'ioctl', command: 'DM_TABLE_STATUS', device: name, message: `${name} is not a one-row ${type} device` });
  }
  return s;
}

/**
 * The typed target of the first row of the device's live table, refused (ESTALE, "has no
 * `type` row") unless `isType` holds for it.
 *
 * @internal
 */
export async function firstTarget<T extends Target>(dm: DeviceMapper, id: DevId, name: string, type: string, isType: (t: Target) => t is T): Promise<T> {
  const t = (await dm.table(id))?.rows[0]?.target;
  if (t === undefined || !isType(t)) throw new DmError({ errno: 116, syscall: 'ioctl', command: 'DM_TABLE_STATUS', device: name, message: `${name} has no ${type} row` });
  return t;
}
