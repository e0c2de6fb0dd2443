/**
 * Block-device steps the era and cache recipes share: a DeviceRef resolved to its device
 * number, a device's size and node from sysfs, and the zeroing of a metadata device's
 * superblock before the kernel formats it (an all-zero first block is "new metadata" to
 * dm-era, dm-cache and dm-thin alike). Internal: not exported from the package.
 */
import { constants as fsConstants } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import type { DeviceInfo, DeviceMapper } from '../client';
import { decodeRdev, formatDev, formatDeviceRef, parseDevNumber, type DevNumber, type DeviceRef } from '../dev';
import { CallSite, DmError, toDmError } from '../errors';
import { expectedRange } from '../validate';

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

/** The same device number. */
export function sameDev(a: DevNumber, b: DevNumber): boolean {
  return a.major === b.major && a.minor === b.minor;
}

/** Runs a file operation; its failure as a DmError with its errno (EBUSY, ENOENT...). */
export async function fsCall<T>(path: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (e) {
    throw toDmError(e, new CallSite(fsCall, 'async'), path);
  }
}

/** A DeviceRef's device number: 'major:minor' and `{ major, minor }` as given, a /dev path by stat (a block device). */
export async function blockDeviceNumber(ref: DeviceRef, name: string): Promise<DevNumber> {
  const text = formatDeviceRef(ref, name);
  const dev = parseDevNumber(text);
  if (dev !== undefined) return dev;
  const st = await fsCall(text, () => stat(text));
  if (!st.isBlockDevice()) throw expectedRange('a block device', name, text);
  return decodeRdev(st.rdev);
}

/** A block device's size in 512-byte sectors, as /sys/dev/block/M:m/size says it. */
export async function deviceSectors(dev: DevNumber): Promise<number> {
  const file = `/sys/dev/block/${formatDev(dev)}/size`;
  const text = (await fsCall(file, () => readFile(file, 'utf8'))).trim();
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) throw new DmError({ errno: EIO, syscall: 'read', device: formatDev(dev), message: `${file}: not a size (${JSON.stringify(text)})` });
  return n;
}

/** A block device's node: /dev/<DEVNAME> from its uevent (devtmpfs names it so, with or without udev). */
export async function nodeOf(dev: DevNumber): Promise<string> {
  const file = `/sys/dev/block/${formatDev(dev)}/uevent`;
  const uevent = await fsCall(file, () => readFile(file, 'utf8'));
  const devname = /^DEVNAME=(.+)$/m.exec(uevent)?.[1];
  if (devname === undefined || devname.includes('..')) throw new DmError({ errno: ENXIO, syscall: 'open', device: formatDev(dev), message: `${formatDev(dev)}: no DEVNAME in its uevent` });
  const path = `/dev/${devname}`;
  const st = await fsCall(path, () => stat(path));
  if (!st.isBlockDevice() || !sameDev(decodeRdev(st.rdev), dev)) throw new DmError({ errno: ENXIO, syscall: 'open', device: path, message: `${path} is not the block device ${formatDev(dev)}` });
  return path;
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
