/**
 * A standalone dm-integrity volume: a tag (crc32c, sha256 ...) kept beside every sector or
 * block, computed by the kernel (`internal_hash`) and written with the data through a journal,
 * checked on every read. A read of data whose tag no longer matches fails with EILSEQ and is
 * counted in the status (`mismatches`), as `integritysetup open` devices do.
 *
 * The kernel formats a device whose superblock area (its first 4 KiB after `offset`) is all
 * zeroes when the table is first loaded, and refuses a device holding anything else there
 * that is not its superblock (EINVAL, "The device is not initialized"). A freshly formatted
 * device has no valid tags: every sector reads as a mismatch until written, so `format`
 * writes zeroes over the whole device, as `integritysetup format` does unless `--no-wipe`.
 */
import { constants } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { abortError, checkSignal } from '../abort';
import { DeviceMapper, type DeviceInfo } from '../client';
import { formatDeviceRef, parseDevNumber, type DevId, type DeviceRef, type DevNumber } from '../dev';
import { DmError } from '../errors';
import type { StatusRow } from '../status';
import { Table } from '../table';
import type { IntegrityAlgorithmOption, IntegrityMode, IntegrityStatus, IntegrityTarget } from '../targets/integrity';
import { targets } from '../targets/index';
import type { Target } from '../targets/types';
import { checkBoolean, checkName, checkOptions, checkSector, checkUuid, expected, expectedRange } from '../validate';
import { checkDeviceMapper, closeDevice, firstTarget, fsCall, idOf, infoOfSame, nodeOf, oneRowStatus } from './common';

/** The superblock's magic, `integrt` and a NUL: what the kernel looks for at the device's first sector after `offset`. */
const SB_MAGIC = Buffer.from('integrt\0', 'latin1');
/** The superblock area the kernel wants zeroed before it formats (SB_SECTORS, 8 sectors; block sizes are at most 4 KiB). */
const SB_BYTES = 4096;
/** The chunk `format` writes its zeroes in. */
const WIPE_CHUNK = 1 << 20;

/** Options of `Integrity.format` and `Integrity.open`. */
export interface IntegrityVolumeOptions {
  /** The block device: 'major:minor', a /dev path, or `{ major, minor }`. */
  device: DeviceRef;
  /** Sectors left alone at the start of the device (512-byte sectors, default 0); the superblock follows them. */
  offset?: number;
  /** Bytes of tag per sector or block (1 to 424); default: the internal hash's digest size (crc32c: 4, sha256: 32). */
  tagSize?: number;
  /** The hash the kernel computes the tags with (default 'crc32c'; 'sha256', or 'hmac(sha256)' with a key). */
  internalHash?: IntegrityAlgorithmOption;
  /** `journal` (the default: data and tags go through the journal together), `bitmap` or `direct`. */
  mode?: Extract<IntegrityMode, 'journal' | 'bitmap' | 'direct'>;
  /** Bytes covered by one tag: a power of two from 512 (the default) to 4096. */
  blockSize?: number;
  /** The journal's size in sectors, taken when the device is formatted (default: the kernel's, 1/128 of the device). */
  journalSectors?: number;
  /** `fix_padding`: the compact layout of Linux 5.7+ (default true, as integritysetup formats); taken when the device is formatted. */
  fixPadding?: boolean;
  /** `fix_hmac`: a salt in the superblock and the sector number in each keyed tag (default true, as integritysetup formats); taken when the device is formatted. */
  fixHmac?: boolean;
  /** Load the table read-only (`open` only). */
  readOnly?: boolean;
  /** The device's uuid (default `DEVMAPPER-INTEGRITY-` and 16 random hex digits). */
  uuid?: string;
}

/** Options of `Integrity.format`. */
export interface IntegrityFormatOptions extends IntegrityVolumeOptions {
  /** Write zeroes over every sector the device provides so that all of them have valid tags (default true). */
  wipe?: boolean;
  /** Ends the wipe early: the device made so far is removed, and the call rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Called after each MiB the wipe writes, with the sectors written so far and the sectors to write. */
  onProgress?: (written: number, total: number) => void;
}

/** Options of `Integrity.close`. */
export interface IntegrityCloseOptions {
  /** Let the kernel remove the device when its last opener closes it. */
  deferred?: boolean;
}

const VOLUME_OPTIONS = ['device', 'offset', 'tagSize', 'internalHash', 'mode', 'blockSize', 'journalSectors', 'fixPadding', 'fixHmac', 'readOnly', 'uuid'] as const;

/**
 * The node of a block device, from a DeviceRef: a /dev path as it is (it must be a block
 * device), a number through sysfs's DEVNAME (devtmpfs makes that node), checked to be that
 * very device.
 */
async function devicePath(ref: DeviceRef, name: string): Promise<string> {
  const text = formatDeviceRef(ref, name);
  const dev = parseDevNumber(text);
  if (dev === undefined) {
    const st = await fsCall(text, () => stat(text));
    if (!st.isBlockDevice()) throw expectedRange('a block device', name, text);
    return text;
  }
  return nodeOf(dev);
}

/**
 * Reads, and with `replacement` overwrites, the superblock area of the backing device, opened
 * exclusively (O_EXCL: EBUSY while a mapping or a mount holds it), so that `format` and `open`
 * never look at, or write to, a device that is in use. Resolves with what was there.
 */
async function superblockArea(path: string, offset: number, replacement: Buffer | undefined): Promise<Buffer> {
  const fh = await fsCall(path, () => open(path, (replacement === undefined ? constants.O_RDONLY : constants.O_RDWR) | constants.O_EXCL));
  try {
    const old = Buffer.alloc(SB_BYTES);
    const { bytesRead } = await fsCall(path, () => fh.read(old, 0, SB_BYTES, offset * 512));
    if (bytesRead !== SB_BYTES) throw expectedRange(`a device with ${SB_BYTES} bytes at sector ${offset}`, 'options.device', path);
    if (replacement !== undefined) {
      await fsCall(path, () => fh.write(replacement, 0, SB_BYTES, offset * 512));
      // The kernel reads the device beneath the page cache: the bytes must be on it.
      await fsCall(path, () => fh.datasync());
    }
    return old;
  } finally {
    await fh.close();
  }
}

function isIntegrityTarget(t: Target): t is IntegrityTarget {
  return t.type === 'integrity' && 'tagSize' in t && 'mode' in t;
}

/** The typed integrity status of a device's only row. */
function integrityStatus(rows: readonly StatusRow[], name: string): IntegrityStatus {
  return oneRowStatus(rows, name, 'integrity', (s): s is IntegrityStatus => s.known && s.type === 'integrity');
}

/**
 * An active dm-integrity volume: `/dev/dm-N` serves `providedDataSectors` sectors, each read
 * checked against its tag. Known by its uuid (else its name) and number.
 */
export class Integrity {
  readonly #dm: DeviceMapper;
  readonly #id: DevId;
  /** The device's name. */
  readonly name: string;
  /** The device's uuid ('' for a device made without one). */
  readonly uuid: string;
  /** The device's number. */
  readonly dev: DevNumber;
  /** The device node, `/dev/dm-N`. */
  readonly path: string;
  /** Sectors of data the volume provides (the integrity status's `provided_data_sectors`): its table's length. */
  readonly providedDataSectors: number;

  private constructor(dm: DeviceMapper, info: DeviceInfo, provided: number) {
    this.#dm = dm;
    this.#id = idOf(info);
    this.name = info.name;
    this.uuid = info.uuid;
    this.dev = info.dev;
    this.path = info.path;
    this.providedDataSectors = provided;
  }

  /**
   * Formats `options.device` as a standalone integrity volume and opens it: zeroes the
   * superblock area on the device (its first 4 KiB after `offset`: what it held is lost), then
   * loads an integrity table one block long, so the kernel writes a new superblock and journal
   * and reports the sectors it provides; then reloads the table to all of them, and (unless
   * `wipe: false`) writes zeroes over them so that each has a valid tag. When the kernel
   * refuses the name (EBUSY) or the table, the 4 KiB zeroed are written back as they were; any
   * failure after that (an aborted wipe) removes the device again, the device formatted. The
   * backing device must not be in use (EBUSY, before anything is written).
   */
  static async format(dm: DeviceMapper, name: string, options: IntegrityFormatOptions): Promise<Integrity> {
    checkDeviceMapper(dm);
    const o = checkOptions(options, 'options', [...VOLUME_OPTIONS, 'wipe', 'signal', 'onProgress']);
    const wipe = checkBoolean(o.wipe, 'options.wipe', true);
    const onProgress = o.onProgress;
    if (onProgress !== undefined && typeof onProgress !== 'function') throw expected('a function', 'options.onProgress', onProgress);
    if (o.readOnly !== undefined) throw expectedRange('no readOnly (a device being formatted is written)', 'options.readOnly', o.readOnly);
    const signal = checkSignal(o.signal, 'options.signal');
    const plan = Integrity.#plan(name, o);
    if (signal?.aborted) throw abortError(signal);
    const backing = await devicePath(plan.device, 'options.device');
    const old = await superblockArea(backing, plan.offset, Buffer.alloc(SB_BYTES));
    let volume: Integrity;
    try {
      volume = await Integrity.#activate(dm, name, plan, false);
    } catch (e) {
      // Nothing was made (the name taken, the table refused): what the device held goes back.
      if (!(e instanceof DmError) || e.command === 'DM_DEV_CREATE' || e.command === 'DM_TABLE_LOAD') {
        await superblockArea(backing, plan.offset, old).catch((rollback: unknown) => {
          if (e instanceof DmError && rollback instanceof Error) e.rollbackError = rollback;
        });
      }
      throw e;
    }
    if (!wipe) return volume;
    try {
      await volume.#zero(signal, onProgress);
      return volume;
    } catch (e) {
      await dm.remove(volume.#id).catch((rollback: unknown) => {
        if (e instanceof DmError && rollback instanceof Error) e.rollbackError = rollback;
      });
      throw e;
    }
  }

  /**
   * Opens an integrity volume formatted before (by `format` or `integritysetup format`) with
   * the same tag size, hash and block size: checks that the device holds an integrity
   * superblock at `offset` (RangeError if not: the kernel would format a zeroed one), then
   * loads a table one block long to learn the sectors it provides, and reloads it to all of
   * them. A failure after the create removes the device again.
   */
  static async open(dm: DeviceMapper, name: string, options: IntegrityVolumeOptions): Promise<Integrity> {
    checkDeviceMapper(dm);
    const o = checkOptions(options, 'options', [...VOLUME_OPTIONS]);
    const plan = Integrity.#plan(name, o);
    const readOnly = checkBoolean(o.readOnly, 'options.readOnly', false);
    const backing = await devicePath(plan.device, 'options.device');
    const sb = (await superblockArea(backing, plan.offset, undefined)).subarray(0, SB_MAGIC.length);
    if (!sb.equals(SB_MAGIC)) throw expectedRange(`a device holding an integrity superblock at sector ${plan.offset}`, 'options.device', backing);
    return Integrity.#activate(dm, name, plan, readOnly);
  }

  /** Checks the options and builds the target (before any ioctl or I/O). */
  static #plan(name: string, o: Partial<IntegrityFormatOptions>): { target: IntegrityTarget; device: DeviceRef; offset: number; uuid: string } {
    checkName(name);
    if (o.device === undefined) throw expected("'major:minor', a /dev path or { major, minor }", 'options.device', o.device);
    const offset = o.offset === undefined ? 0 : checkSector(o.offset, 'options.offset');
    const mode = o.mode ?? 'journal';
    if (!['journal', 'bitmap', 'direct'].includes(mode)) throw expectedRange('"journal", "bitmap" or "direct"', 'options.mode', mode);
    const uuid = o.uuid === undefined ? `DEVMAPPER-INTEGRITY-${randomBytes(8).toString('hex')}` : checkUuid(o.uuid, 'options.uuid');
    const target = targets.integrity({
      device: o.device,
      offset,
      tagSize: o.tagSize ?? null,
      mode,
      blockSize: o.blockSize,
      journalSectors: o.journalSectors,
      fixPadding: checkBoolean(o.fixPadding, 'options.fixPadding', true),
      fixHmac: checkBoolean(o.fixHmac, 'options.fixHmac', true),
      internalHash: o.internalHash ?? 'crc32c',
    });
    return { target, device: o.device, offset, uuid };
  }

  /** Create with one block (the kernel formats or opens the superblock), read the provided size, reload to it. */
  static async #activate(dm: DeviceMapper, name: string, plan: { target: IntegrityTarget; uuid: string }, readOnly: boolean): Promise<Integrity> {
    const block = (plan.target.blockSize ?? 512) / 512;
    const info = await dm.create(name, { table: new Table([{ start: 0, length: block, target: plan.target }]), uuid: plan.uuid, readOnly });
    const id = { uuid: info.uuid };
    try {
      const provided = integrityStatus(await dm.status(id), name).providedDataSectors;
      if (provided < block) throw new DmError({ errno: 28, syscall: 'ioctl', command: 'DM_TABLE_STATUS', device: name, message: `${name}: the device provides ${provided} data sectors, too small for an integrity volume` });
      if (provided > block) await dm.reload(id, new Table([{ start: 0, length: provided, target: plan.target }]), { readOnly });
      return new Integrity(dm, await dm.info(id), provided);
    } catch (e) {
      await dm.remove(id).catch((rollback: unknown) => {
        if (e instanceof DmError && rollback instanceof Error) e.rollbackError = rollback;
      });
      throw e;
    }
  }

  /** Writes zeroes over every provided sector through the device, so each gets a valid tag. */
  async #zero(signal: AbortSignal | undefined, onProgress: ((written: number, total: number) => void) | undefined): Promise<void> {
    const path = this.path;
    const handle = await fsCall(path, () => open(path, constants.O_WRONLY));
    try {
      const zeroes = Buffer.alloc(WIPE_CHUNK);
      const bytes = this.providedDataSectors * 512;
      for (let at = 0; at < bytes; at += WIPE_CHUNK) {
        if (signal?.aborted) throw abortError(signal);
        const n = Math.min(WIPE_CHUNK, bytes - at);
        await fsCall(path, () => handle.write(zeroes, 0, n, at));
        onProgress?.((at + n) / 512, this.providedDataSectors);
      }
      await fsCall(path, () => handle.datasync());
    } finally {
      await handle.close();
    }
  }

  /** Checks that the device under this volume's id is still this volume (same number), and gives what DEV_STATUS says of it. */
  async info(): Promise<DeviceInfo> {
    return infoOfSame(this.#dm, this.#id, this.name, this.dev);
  }

  /** The typed status: `mismatches` (tags that did not match since activation), `providedDataSectors`, `recalculatingSector`. */
  async status(): Promise<IntegrityStatus> {
    await this.info();
    return integrityStatus(await this.#dm.status(this.#id), this.name);
  }

  /** The typed integrity target of the live table, with the sizes the kernel chose (journal sectors, interleave, buffers). */
  async target(): Promise<IntegrityTarget> {
    await this.info();
    return firstTarget(this.#dm, this.#id, this.name, 'integrity', isIntegrityTarget);
  }

  /** Closes the volume: DEV_REMOVE, which commits the journal to the data area first. */
  async close(options?: IntegrityCloseOptions): Promise<void> {
    await closeDevice(this.#dm, this.#id, this.name, this.dev, options);
  }
}
