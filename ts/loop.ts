import { open, stat, type FileHandle } from 'node:fs/promises';
import type { NativeLoopInfo } from '../binding';
import { binding } from './binding';
import { decodeDev, decodeRdev, type DevNumber } from './dev';
import { CallSite, toDmError } from './errors';
import { checkBoolean, checkInteger, checkOptions, checkSector, expected } from './validate';

/** Options of `LoopDevice.attach`. */
export interface LoopAttachOptions {
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
  number: number;
  /** The backing file's name as the kernel keeps it (cut at 63 bytes). */
  fileName: string;
  offset: number;
  sizeLimit: number;
  readOnly: boolean;
  autoclear: boolean;
  partscan: boolean;
  directIo: boolean;
  /** Device and inode of the backing file. */
  backingDev: DevNumber;
  backingInode: number;
}

const LOOP_CONTROL = '/dev/loop-control';
const LO_FLAGS_READ_ONLY = 1;
const LO_FLAGS_AUTOCLEAR = 4;
const LO_FLAGS_PARTSCAN = 8;
const LO_FLAGS_DIRECT_IO = 16;

function statusOf(info: NativeLoopInfo): LoopStatus {
  // lo_device is a dev_t in the kernel's new encoding, which decodeDev reads.
  return {
    number: info.number,
    fileName: info.fileName,
    offset: info.offset,
    sizeLimit: info.sizeLimit,
    readOnly: (info.flags & LO_FLAGS_READ_ONLY) !== 0,
    autoclear: (info.flags & LO_FLAGS_AUTOCLEAR) !== 0,
    partscan: (info.flags & LO_FLAGS_PARTSCAN) !== 0,
    directIo: (info.flags & LO_FLAGS_DIRECT_IO) !== 0,
    backingDev: decodeDev(info.device),
    backingInode: info.inode,
  };
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

  private constructor(path: string, dev: DevNumber, file: string, hold: FileHandle | undefined) {
    this.path = path;
    this.dev = dev;
    this.file = file;
    this.hold = hold;
  }

  /** 'major:minor', as tables reference it. */
  get devString(): string {
    return `${this.dev.major}:${this.dev.minor}`;
  }

  /** Binds a free loop device to `file` (retrying when another process takes the free one first). */
  static async attach(file: string, options?: LoopAttachOptions): Promise<LoopDevice> {
    const site = new CallSite(LoopDevice.attach);
    if (typeof file !== 'string' || file === '') throw expected('a file path', 'file', file);
    const opts = checkOptions(options, 'options', ['readOnly', 'offset', 'sizeLimit', 'autoclear', 'directIo', 'blockSize']);
    const config = {
      readOnly: checkBoolean(opts.readOnly, 'options.readOnly', false),
      offset: opts.offset === undefined ? 0 : checkSector(opts.offset, 'options.offset'),
      sizeLimit: opts.sizeLimit === undefined ? 0 : checkSector(opts.sizeLimit, 'options.sizeLimit'),
      autoclear: checkBoolean(opts.autoclear, 'options.autoclear', false),
      directIo: checkBoolean(opts.directIo, 'options.directIo', false),
      blockSize: opts.blockSize === undefined ? 0 : checkBlockSize(opts.blockSize),
    };
    const native = binding();
    for (let attempt = 0; ; attempt++) {
      let path = '';
      let hold: FileHandle | undefined;
      try {
        const n = await native.loopGetFree(LOOP_CONTROL);
        path = `/dev/loop${n}`;
        // With autoclear the device detaches at its last close: hold it open from before binding.
        if (config.autoclear) hold = await open(path, config.readOnly ? 'r' : 'r+');
        await native.loopConfigure(path, file, config);
        const st = await stat(path);
        return new LoopDevice(path, decodeRdev(st.rdev), file, hold);
      } catch (e) {
        await hold?.close();
        // Another process bound the device between GET_FREE and CONFIGURE: take the next one.
        const busy = e instanceof Error && Reflect.get(e, 'code') === 'EBUSY';
        if (!busy || attempt >= 10) throw toDmError(e, site, path === '' ? LOOP_CONTROL : path);
      }
    }
  }

  /** LOOP_GET_STATUS64: what the kernel says of the device. */
  async status(): Promise<LoopStatus> {
    const site = new CallSite(this.status);
    try {
      return statusOf(await binding().loopStatus(this.path));
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

  /** Lets go of the open handle that keeps an autoclear device bound. */
  async release(): Promise<void> {
    const h = this.hold;
    this.hold = undefined;
    await h?.close();
  }

  /**
   * LOOP_CLR_FD: unbinds the file. On a device still in use the kernel only marks it
   * autoclear, and it goes when the last user closes it.
   */
  async detach(): Promise<void> {
    const site = new CallSite(this.detach);
    await this.release();
    try {
      await binding().loopClear(this.path);
    } catch (e) {
      throw toDmError(e, site, this.path);
    }
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
    return await binding().blockDeviceSize(path);
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
export async function blockGeometry(path: string): Promise<{ cylinders: number; heads: number; sectors: number; start: number }> {
  const site = new CallSite(blockGeometry);
  if (typeof path !== 'string') throw expected('a device path', 'path', path);
  try {
    return await binding().blockGeometry(path);
  } catch (e) {
    throw toDmError(e, site, path);
  }
}
