/**
 * Block-device steps the metadata recipes (ThinPool, Era, Cache) share: a device's size from
 * sysfs, and the zeroing of a metadata device's superblock before the kernel formats it (an
 * all-zero first block is "new metadata" to dm-era, dm-cache and dm-thin alike), restored
 * when the create fails before a table is loaded. Internal: not exported from the package.
 *
 * @internal
 */
import { constants as fsConstants } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import type { DeviceInfo, DeviceMapper } from '../client';
import { formatDev, type DevNumber } from '../dev';
import { DmError } from '../errors';
import { expectedRange } from '../validate';
import { fsCall, nodeOf } from './common';

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
