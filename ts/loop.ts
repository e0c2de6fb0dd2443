/* eslint-disable @typescript-eslint/unbound-method -- the public methods are handed to `new CallSite(...)` only as stack-trace markers (Error.captureStackTrace's constructorOpt), never called through it */
import { constants as fsConstants } from 'node:fs';
import { access, open, readdir, stat, type FileHandle } from 'node:fs/promises';
import type { NativeLoopInfo } from '../binding';
import { binding } from './binding';
import { decodeDev, decodeRdev, type DevNumber } from './dev';
import { CallSite, exactNumber, toDmError } from './errors';
import { checkBoolean, checkInteger, checkOptions, checkSector, checkWellFormed, expected, expectedRange } from './validate';

/** Options of `LoopDevice.attach`. */
export interface LoopAttachOptions {
  /** Attach read-only (LO_FLAGS_READ_ONLY): the file then needs only to be readable. */
  readOnly?: boolean;
  /** Bytes into the file where the device starts. */
  offset?: number;
  /** Size of the device in bytes (0: to the end of the file). */
  sizeLimit?: number;
  /**
   * Detach by itself once nothing holds it open. The LoopDevice holds it open until
   * `release()` (or `detach()`), so that a device-mapper table can take it over first.
   */
  autoclear?: boolean;
  /** Use direct I/O on the backing file (the kernel falls back silently where it cannot). */
  directIo?: boolean;
  /** Logical block size: 512, 1024, 2048 or 4096 (default: the kernel's). */
  blockSize?: number;
}

/** LOOP_GET_STATUS64 of a loop device. */
export interface LoopStatus {
  /** The loop device number (N of /dev/loopN). */
  number: number;
  /** The backing file's name as the kernel keeps it (cut at 63 bytes). */
  fileName: string;
  /** Bytes into the file where the device starts. */
  offset: number;
  /** Size of the device in bytes (0: to the end of the file). */
  sizeLimit: number;
  /** The device is read-only (LO_FLAGS_READ_ONLY). */
  readOnly: boolean;
  /** The device detaches when its last opener closes it (LO_FLAGS_AUTOCLEAR). */
  autoclear: boolean;
  /** The kernel scans it for partitions (LO_FLAGS_PARTSCAN). */
  partscan: boolean;
  /** It reads and writes its file with direct I/O (LO_FLAGS_DIRECT_IO). */
  directIo: boolean;
  /** Device and inode of the backing file. */
  backingDev: DevNumber;
  /** The backing file's inode number. */
  backingInode: number;
}

const LOOP_CONTROL = '/dev/loop-control';
const LO_FLAGS_READ_ONLY = 1;
const LO_FLAGS_AUTOCLEAR = 4;
const LO_FLAGS_PARTSCAN = 8;
const LO_FLAGS_DIRECT_IO = 16;

function statusOf(info: NativeLoopInfo, path: string): LoopStatus {
  // lo_device is a dev_t in the kernel's new encoding, which decodeDev reads.
  return {
    number: info.number,
    fileName: info.fileName,
    offset: exactNumber(info.offset, 'lo_offset', path),
    sizeLimit: exactNumber(info.sizeLimit, 'lo_sizelimit', path),
    readOnly: (info.flags & LO_FLAGS_READ_ONLY) !== 0,
    autoclear: (info.flags & LO_FLAGS_AUTOCLEAR) !== 0,
    partscan: (info.flags & LO_FLAGS_PARTSCAN) !== 0,
    directIo: (info.flags & LO_FLAGS_DIRECT_IO) !== 0,
    backingDev: decodeDev(exactNumber(info.device, 'lo_device', path)),
    backingInode: exactNumber(info.inode, 'lo_inode', path),
  };
}

/** Attaches of this process, one at a time: LOOP_CTL_GET_FREE answers every racer with the same device. */
let attachQueue: Promise<void> = Promise.resolve();

function serialized<T>(work: () => Promise<T>): Promise<T> {
  const run = attachQueue.then(work);
  attachQueue = run.then(
    () => undefined,
    () => undefined,
  );
  return run;
}

/** How many times an attach that lost its free device to another process tries again. */
const ATTACH_RETRIES = 20;

/** Backoff before retry `attempt` (0-based): growing, jittered, at most about 400 ms. */
function backoff(attempt: number): number {
  return Math.min(5 * 2 ** attempt, 250) * (0.5 + Math.random());
}

/** The backing file as the kernel identifies it (LOOP_GET_STATUS64's lo_device, lo_inode). @internal */
export interface Backing {
  dev: DevNumber;
  /** Exact: an inode number may be any 64-bit value (stat with bigint). */
  inode: bigint;
}

/**
 * Whether LOOP_GET_STATUS64's answer is about `backing`: the same device and inode, compared
 * exactly (an inode above 2^53 - 1 must neither be rounded nor stop a detach).
 * @internal
 */
export function sameBacking(info: Pick<NativeLoopInfo, 'device' | 'inode'>, backing: Backing, path: string): boolean {
  const dev = decodeDev(exactNumber(info.device, 'lo_device', path));
  return dev.major === backing.dev.major && dev.minor === backing.dev.minor && BigInt(info.inode) === backing.inode;
}

/** A loop device bound to a file (LOOP_CONFIGURE), without losetup. */
export class LoopDevice {
  /** `/dev/loopN`. */
  readonly path: string;
  /** Its device number (major 7). */
  readonly dev: DevNumber;
  /** The backing file. */
  readonly file: string;
  private hold: FileHandle | undefined;
  private readonly backing: Backing;
  private detached = false;

  private constructor(path: string, dev: DevNumber, file: string, hold: FileHandle | undefined, backing: Backing) {
    this.path = path;
    this.dev = dev;
    this.file = file;
    this.hold = hold;
    this.backing = backing;
  }

  /** 'major:minor', as tables reference it. */
  get devString(): string {
    return `${this.dev.major}:${this.dev.minor}`;
  }

  /**
   * Binds a free loop device to `file`. The file is checked first (it exists, is a regular file
   * or a block device, and is readable — and writable unless `readOnly`), so a bad path makes
   * no loop device. Attaches of one process run one at a time; an attach that loses its free
   * device to another process retries with a growing, jittered pause (20 times at most).
   */
  static async attach(file: string, options?: LoopAttachOptions): Promise<LoopDevice> {
    const site = new CallSite(LoopDevice.attach);
    if (typeof file !== 'string' || file === '') throw site.attach(expected('a file path', 'file', file));
    checkWellFormed(file, 'file');
    if (file.includes('\0')) throw site.attach(expectedRange('a file path without NUL bytes', 'file', file));
    const opts = checkOptions(options, 'options', ['readOnly', 'offset', 'sizeLimit', 'autoclear', 'directIo', 'blockSize']);
    const config = {
      readOnly: checkBoolean(opts.readOnly, 'options.readOnly', false),
      offset: opts.offset === undefined ? 0 : checkSector(opts.offset, 'options.offset'),
      sizeLimit: opts.sizeLimit === undefined ? 0 : checkSector(opts.sizeLimit, 'options.sizeLimit'),
      autoclear: checkBoolean(opts.autoclear, 'options.autoclear', false),
      directIo: checkBoolean(opts.directIo, 'options.directIo', false),
      blockSize: opts.blockSize === undefined ? 0 : checkBlockSize(opts.blockSize),
    };
    let fileStat;
    try {
      fileStat = await stat(file, { bigint: true });
      await access(file, config.readOnly ? fsConstants.R_OK : fsConstants.R_OK | fsConstants.W_OK);
    } catch (e) {
      throw toDmError(e, site, file);
    }
    if (!fileStat.isFile() && !fileStat.isBlockDevice()) {
      throw site.attach(expectedRange('a regular file or a block device', 'file', file));
    }
    // st_dev is a kernel dev_t (32 bits): exact as a number.
    const wanted: Backing = { dev: decodeRdev(Number(fileStat.dev)), inode: fileStat.ino };
    const native = binding();
    for (let attempt = 0; ; attempt++) {
      let path = '';
      try {
        return await serialized(async () => {
          let hold: FileHandle | undefined;
          try {
            const n = await native.loopGetFree(LOOP_CONTROL);
            path = `/dev/loop${n}`;
            // With autoclear the device detaches at its last close: hold it open from before binding.
            if (config.autoclear) hold = await open(path, config.readOnly ? 'r' : 'r+');
            await native.loopConfigure(path, file, config);
            const st = await stat(path);
            return new LoopDevice(path, decodeRdev(st.rdev), file, hold, wanted);
          } catch (e) {
            await hold?.close();
            throw e;
          }
        });
      } catch (e) {
        // Another process bound the device between GET_FREE and CONFIGURE: take the next one.
        const busy = e instanceof Error && Reflect.get(e, 'code') === 'EBUSY';
        if (!busy || attempt >= ATTACH_RETRIES) throw toDmError(e, site, path === '' ? LOOP_CONTROL : path);
        await new Promise((resolve) => setTimeout(resolve, backoff(attempt)));
      }
    }
  }

  /**
   * A loop device that is bound now, whoever attached it (`/dev/loopN`). Its binding is read
   * (LOOP_GET_STATUS64) and kept: `detach()` then unbinds it only while it is still bound to
   * that same file (device and inode), never a file bound to it since. Rejects with ENXIO when
   * the device is not bound.
   */
  static async open(path: string): Promise<LoopDevice> {
    const site = new CallSite(LoopDevice.open);
    if (typeof path !== 'string' || path === '') throw site.attach(expected('a loop device path', 'path', path));
    checkWellFormed(path, 'path');
    try {
      const st = await stat(path);
      if (!st.isBlockDevice()) throw site.attach(expectedRange('a block device', 'path', path));
      const info = await binding().loopStatus(path);
      const status = statusOf(info, path);
      return new LoopDevice(path, decodeRdev(st.rdev), status.fileName, undefined, { dev: status.backingDev, inode: BigInt(info.inode) });
    } catch (e) {
      if (e instanceof TypeError || e instanceof RangeError) throw e;
      throw toDmError(e, site, path);
    }
  }

  /** LOOP_GET_STATUS64: what the kernel says of the device. */
  async status(): Promise<LoopStatus> {
    const site = new CallSite(this.status);
    try {
      return statusOf(await binding().loopStatus(this.path), this.path);
    } catch (e) {
      throw toDmError(e, site, this.path);
    }
  }

  /** Size in bytes (BLKGETSIZE64). */
  async size(): Promise<number> {
    return blockDeviceSize(this.path);
  }

  /** LOOP_SET_CAPACITY: picks up a change in the backing file's size. */
  async refreshCapacity(): Promise<void> {
    const site = new CallSite(this.refreshCapacity);
    try {
      await binding().loopSetCapacity(this.path);
    } catch (e) {
      throw toDmError(e, site, this.path);
    }
  }

  /**
   * Lets go of the open handle that keeps an autoclear device bound: the kernel detaches it at
   * its last close (at once, unless a device-mapper table or another opener still uses it).
   */
  async release(): Promise<void> {
    const h = this.hold;
    this.hold = undefined;
    await h?.close();
  }

  /**
   * Unbinds the file (LOOP_CLR_FD), only while the device is still bound to this file: the
   * kernel hands a freed loop device to the next attach at once, so the binding is checked
   * (backing device and inode) with the device held open, which keeps it bound to whatever it
   * is bound to until the clear. A device already detached (an autoclear device after
   * `release()`, or one that another tool detached) resolves without touching it, as does a
   * second `detach()`. On a device still in use the kernel only marks it autoclear, and it goes
   * when the last user closes it.
   */
  async detach(): Promise<void> {
    const site = new CallSite(this.detach);
    if (this.detached) return;
    let handle = this.hold;
    this.hold = undefined;
    try {
      handle ??= await open(this.path, 'r');
      let info: NativeLoopInfo | undefined;
      try {
        info = await binding().loopStatus(this.path);
      } catch (e) {
        if (!(e instanceof Error && Reflect.get(e, 'code') === 'ENXIO')) throw e;
      }
      if (info !== undefined && this.isOurs(info)) await binding().loopClear(this.path);
      this.detached = true;
    } catch (e) {
      throw toDmError(e, site, this.path);
    } finally {
      await handle?.close();
    }
  }

  private isOurs(info: NativeLoopInfo): boolean {
    return sameBacking(info, this.backing, this.path);
  }
}

function checkBlockSize(value: unknown): number {
  const n = checkInteger(value, 'options.blockSize', 512, 4096);
  if ((n & (n - 1)) !== 0) throw new RangeError(`Expected 512, 1024, 2048 or 4096 for options.blockSize but received number ${n}`);
  return n;
}

/** BLKGETSIZE64: a block device's size in bytes. */
export async function blockDeviceSize(path: string): Promise<number> {
  const site = new CallSite(blockDeviceSize);
  if (typeof path !== 'string') throw expected('a device path', 'path', path);
  try {
    return exactNumber(await binding().blockDeviceSize(path), 'the size in bytes', path);
  } catch (e) {
    throw toDmError(e, site, path);
  }
}

/** BLKDISCARD: discards [offset, offset + length) bytes of a block device. */
export async function blockDiscard(path: string, offset: number, length: number): Promise<void> {
  const site = new CallSite(blockDiscard);
  if (typeof path !== 'string') throw expected('a device path', 'path', path);
  const off = checkSector(offset, 'offset');
  const len = checkSector(length, 'length');
  try {
    await binding().blockDiscard(path, off, len);
  } catch (e) {
    throw toDmError(e, site, path);
  }
}

/** HDIO_GETGEO: a block device's geometry. */
export async function blockGeometry(path: string): Promise<{
  /** Cylinders. */
  cylinders: number;
  /** Heads per cylinder. */
  heads: number;
  /** Sectors per track. */
  sectors: number;
  /** The device's first sector on its disk (the partition start). */
  start: number;
}> {
  const site = new CallSite(blockGeometry);
  if (typeof path !== 'string') throw expected('a device path', 'path', path);
  try {
    const g = await binding().blockGeometry(path);
    return { cylinders: g.cylinders, heads: g.heads, sectors: g.sectors, start: exactNumber(g.start, 'the start sector', path) };
  } catch (e) {
    throw toDmError(e, site, path);
  }
}

/** A bound loop device as `listLoopDevices` finds it: its path and what the kernel says of it. */
export interface LoopDeviceEntry extends LoopStatus {
  /** `/dev/loopN`. */
  path: string;
}

/**
 * The loop devices bound now (each `/dev/loopN` whose LOOP_GET_STATUS64 answers; a free one
 * answers ENXIO and is left out), in the order of their numbers.
 */
export async function listLoopDevices(): Promise<LoopDeviceEntry[]> {
  const site = new CallSite(listLoopDevices);
  let names: string[];
  try {
    names = (await readdir('/dev')).filter((n) => /^loop\d+$/.test(n));
  } catch (e) {
    throw toDmError(e, site, '/dev');
  }
  const found: LoopDeviceEntry[] = [];
  for (const name of names.sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)))) {
    const path = `/dev/${name}`;
    try {
      found.push({ path, ...statusOf(await binding().loopStatus(path), path) });
    } catch (e) {
      const code: unknown = e instanceof Error ? Reflect.get(e, 'code') : undefined;
      if (code === 'ENXIO' || code === 'ENOENT') continue;
      throw toDmError(e, site, path);
    }
  }
  return found;
}
