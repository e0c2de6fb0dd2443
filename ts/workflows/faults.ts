/**
 * Fault injection for tests of what runs on a block device: a device-mapper device over any
 * device that works like it (linear) until asked to misbehave, then fails, drops, corrupts or
 * delays I/O on demand — error, flakey, dust and delay tables swapped in live by reloads —
 * and is made healthy again the same way. A reload suspends the device (flushing its queued
 * I/O) only between its load and its resume, and never leaves it suspended.
 * See Documentation/admin-guide/device-mapper/{dm-flakey,dm-dust,delay}.rst.
 */
import { readFile, stat } from 'node:fs/promises';
import { constants } from 'node:os';
import { DeviceMapper, type DeviceInfo } from '../client';
import { decodeRdev, formatDev, parseDevNumber, type DevNumber, type DeviceRef } from '../dev';
import { DmError } from '../errors';
import { Table, type TableRowInput } from '../table';
import { dustMessages, parseDustListBadBlocks, targets, type DustStatus, type FlakeyCorruptDirection, type Target } from '../targets/index';
import { checkBoolean, checkInteger, checkName, checkOptions, checkSector, checkUuid, expected, expectedRange } from '../validate';
import { checkDeviceMapper } from './common';

/** What a `FaultyDevice` does to I/O right now (the table this object last made live). */
export type FaultMode = 'healthy' | 'error' | 'flakey' | 'dust' | 'delay';

/** Options of `FaultyDevice.create`. */
export interface FaultyDeviceOptions {
  /** The device to wrap: 'major:minor', a /dev path, or { major, minor }. */
  device: DeviceRef;
  /** The sector of `device` where the wrapper starts (512-byte sectors); default 0. */
  offset?: number;
  /** The wrapper's size in sectors; default: the rest of `device` after `offset` (read from sysfs). */
  length?: number;
  /** The wrapper's uuid (none by default). */
  uuid?: string;
}

/** Which sectors `error()` fails: [start, start + length), 512-byte sectors of the wrapper. */
export interface ErrorFault {
  /** The first failing sector; default 0. */
  start?: number;
  /** How many sectors fail; default: to the end. */
  length?: number;
}

/**
 * dm-flakey's behaviour: from the reload, up (I/O works) for `upInterval` seconds, then down
 * for `downInterval` seconds, and again. While down, without features every read and write
 * fails with EIO; with them, only what they say happens.
 */
export interface FlakeyFault {
  /** Seconds up in each cycle (0: always down once the cycle starts). */
  upInterval: number;
  /** Seconds down in each cycle (0: never down). */
  downInterval: number;
  /** `drop_writes`: while down, writes are reported done but never written; reads work. */
  dropWrites?: boolean;
  /** `error_writes`: while down, writes fail with EIO; reads work. */
  errorWrites?: boolean;
  /** `corrupt_bio_byte`: while down, byte `nthByte` (from 1) of each matching bio is set to `value`. */
  corruptBioByte?: {
    /** The byte of each bio's data to set, counted from 1. */
    nthByte: number;
    /** Which bios: reads ('r') or writes ('w'). */
    direction: FlakeyCorruptDirection;
    /** The byte's new value, 0 to 255. */
    value: number;
    /** Only bios whose flags (`bi_opf`) hold all of these; default 0 (every bio). */
    flags?: number;
  };
  /** `error_reads` (kernels 6.5 and later): while down, reads fail with EIO. */
  errorReads?: boolean;
}

/**
 * dm-dust's emulated bad blocks. Blocks on the list fail their reads with EIO while the
 * emulation is enabled; a write to one takes it off the list (after `writeFailCount` writes
 * that fail), as a drive remaps a sector.
 */
export interface DustFault {
  /** The block size in **bytes**: a power of two from 512, at most the device; default 4096. */
  blockSize?: number;
  /** Blocks (of `blockSize`, from 0) put on the bad block list; default none. */
  badBlocks?: readonly number[];
  /** Writes to each of `badBlocks` that fail before one clears it (0 to 255); default 0. */
  writeFailCount?: number;
  /** Start failing reads of bad blocks at once (`enable`); default true. */
  enabled?: boolean;
  /** Quiet mode: no kernel log line per bad block added, removed or cleared; default false. */
  quiet?: boolean;
}

/** dm-delay's hold-back times, in milliseconds (0 to 2^32 − 1). */
export interface DelayFault {
  /** Milliseconds each read is held back (also writes and flushes when they are not given). */
  read: number;
  /** Milliseconds each write is held back (also flushes when `flush` is not given). */
  write?: number;
  /** Milliseconds each flush is held back (only with `write`). */
  flush?: number;
}

const ESTALE = constants.errno.ESTALE;
const U32_MAX = 0xffffffff;

/**
 * A device-mapper device over another device that misbehaves on demand. It starts healthy (a
 * `linear` over the wrapped sectors); each behaviour is a reload of its table, so the device
 * keeps its name, number and openers. Data written while healthy is where a linear puts it:
 * the wrapped device, from `offset`.
 */
export class FaultyDevice {
  /** The client it was made with. */
  readonly dm: DeviceMapper;
  /** The wrapper's name. */
  readonly name: string;
  /** The wrapper's device number. */
  readonly dev: DevNumber;
  /** The wrapper's node, `/dev/dm-N`. */
  readonly path: string;
  /** The wrapped device, as tables name it. */
  readonly device: string;
  /** The first wrapped sector of `device`. */
  readonly offset: number;
  /** The wrapper's size in sectors. */
  readonly length: number;
  #mode: FaultMode = 'healthy';

  private constructor(dm: DeviceMapper, info: DeviceInfo, device: string, offset: number, length: number) {
    this.dm = dm;
    this.name = info.name;
    this.dev = info.dev;
    this.path = info.path;
    this.device = device;
    this.offset = offset;
    this.length = length;
  }

  /** What the table this object last made live does. */
  get mode(): FaultMode {
    return this.#mode;
  }

  /**
   * Creates the wrapper `name` over `options.device`, healthy: `linear <device> <offset>` of
   * `length` sectors (create, load and resume; removed again if a step fails).
   */
  static async create(dm: DeviceMapper, name: string, options: FaultyDeviceOptions): Promise<FaultyDevice> {
    checkDeviceMapper(dm);
    checkName(name, 'name');
    if (options === undefined) throw expected('an options object with device', 'options', options);
    const o = checkOptions(options, 'options', ['device', 'offset', 'length', 'uuid']);
    if (o.device === undefined) throw expected("a device ('major:minor', a /dev path or { major, minor })", 'options.device', o.device);
    const offset = o.offset === undefined ? 0 : checkSector(o.offset, 'options.offset');
    const uuid = o.uuid === undefined ? undefined : checkUuid(o.uuid, 'options.uuid');
    // Tables name the device by its number, whatever path it was given as.
    const dev = await devNumberOf(targets.linear({ device: o.device, offset }).device);
    const device = formatDev(dev);
    let length: number;
    if (o.length === undefined) {
      const size = await sectorsOf(dev);
      if (size <= offset) throw expectedRange(`an offset below the device's ${size} sectors`, 'options.offset', offset);
      length = size - offset;
    } else {
      length = checkSector(o.length, 'options.length');
      if (length === 0) throw expectedRange('a length of at least 1 sector', 'options.length', length);
    }
    const info = await dm.create(name, { table: new Table([{ start: 0, length, target: targets.linear({ device, offset }) }]), ...(uuid !== undefined ? { uuid } : {}) });
    return new FaultyDevice(dm, info, device, offset, length);
  }

  /** The linear target over the wrapped sectors from `start` (sectors of the wrapper). */
  #linear(start: number): Target {
    return targets.linear({ device: this.device, offset: this.offset + start });
  }

  /** Reloads (load, suspend, resume; the old table back on failure) and checks the answer is about this device. */
  async #reload(rows: readonly TableRowInput[], mode: FaultMode): Promise<DeviceInfo> {
    const info = await this.dm.reload(this.name, new Table(rows));
    if (info.dev.major !== this.dev.major || info.dev.minor !== this.dev.minor) {
      throw new DmError({ errno: ESTALE, syscall: 'ioctl', device: this.name, message: `${this.name}: expected device ${formatDev(this.dev)} but the kernel answered about ${formatDev(info.dev)}` });
    }
    this.#mode = mode;
    return info;
  }

  /** Makes the device healthy again: `linear <device> <offset>`, I/O passes straight through. */
  async healthy(): Promise<DeviceInfo> {
    return this.#reload([{ start: 0, length: this.length, target: this.#linear(0) }], 'healthy');
  }

  /**
   * Fails every I/O to the sectors given (default: the whole device) with EIO: an `error`
   * row there, linear rows around it.
   */
  async error(range?: ErrorFault): Promise<DeviceInfo> {
    const r = checkOptions(range, 'range', ['start', 'length']);
    const start = r.start === undefined ? 0 : checkSector(r.start, 'range.start');
    if (start >= this.length) throw expectedRange(`a start sector below ${this.length}`, 'range.start', start);
    const length = r.length === undefined ? this.length - start : checkSector(r.length, 'range.length');
    if (length === 0 || start + length > this.length) throw expectedRange(`a length from 1 to ${this.length - start} sectors`, 'range.length', length);
    const rows: TableRowInput[] = [];
    if (start > 0) rows.push({ start: 0, length: start, target: this.#linear(0) });
    rows.push({ start, length, target: targets.error() });
    if (start + length < this.length) rows.push({ start: start + length, length: this.length - start - length, target: this.#linear(start + length) });
    return this.#reload(rows, 'error');
  }

  /**
   * Makes the device flakey: `flakey <device> <offset> <up> <down> [<features>]`. The cycle
   * starts at the reload (up first). The kernel refuses some features together (drop_writes
   * with error_writes; dropping or failing writes it also corrupts): refused before any ioctl.
   */
  async flakey(fault: FlakeyFault): Promise<DeviceInfo> {
    if (fault === undefined) throw expected('an options object with upInterval and downInterval', 'fault', fault);
    const f = checkOptions(fault, 'fault', ['upInterval', 'downInterval', 'dropWrites', 'errorWrites', 'corruptBioByte', 'errorReads']);
    const upInterval = checkInteger(f.upInterval, 'fault.upInterval', 0, U32_MAX);
    const downInterval = checkInteger(f.downInterval, 'fault.downInterval', 0, U32_MAX);
    const target = targets.flakey({ ...f, upInterval, downInterval, device: this.device, offset: this.offset });
    return this.#reload([{ start: 0, length: this.length, target }], 'flakey');
  }

  /**
   * Gives the device emulated bad blocks: reloads it as `dust <device> <offset> <blksz>`
   * (which starts with no bad blocks, bypassing), then sends `addbadblock` for each block,
   * `quiet` if asked, and `enable` unless `enabled: false`. If a message fails (a block past
   * the end: EINVAL), the device's previous table is reloaded.
   */
  async dust(fault?: DustFault): Promise<DeviceInfo> {
    const f = checkOptions(fault, 'fault', ['blockSize', 'badBlocks', 'writeFailCount', 'enabled', 'quiet']);
    const blockSize = f.blockSize ?? 4096;
    const target = targets.dust({ device: this.device, offset: this.offset, blockSize });
    const blocks = f.badBlocks === undefined ? [] : checkBlocks(f.badBlocks, 'fault.badBlocks');
    const writeFailCount = f.writeFailCount === undefined ? undefined : checkInteger(f.writeFailCount, 'fault.writeFailCount', 0, 255);
    const enabled = checkBoolean(f.enabled, 'fault.enabled', true);
    const quiet = checkBoolean(f.quiet, 'fault.quiet', false);
    const messages = blocks.map((b) => dustMessages.addBadBlock(b, writeFailCount));
    const before = await this.dm.table(this.name);
    const previous = this.#mode;
    const info = await this.#reload([{ start: 0, length: this.length, target }], 'dust');
    try {
      for (const m of messages) await this.dm.message(this.name, m);
      if (quiet) await this.dm.message(this.name, dustMessages.quiet());
      if (enabled) await this.dm.message(this.name, dustMessages.enable());
    } catch (e) {
      if (before !== undefined) {
        try {
          await this.dm.reload(this.name, before);
          this.#mode = previous;
        } catch (undo) {
          if (e instanceof DmError && undo instanceof Error) e.rollbackError = undo;
        }
      }
      throw e;
    }
    return info;
  }

  /** `addbadblock` for each block (dust mode): reads of them fail while enabled; `writeFailCount` writes to each fail first. */
  async addBadBlocks(blocks: readonly number[], writeFailCount?: number): Promise<void> {
    const list = checkBlocks(blocks, 'blocks');
    const count = writeFailCount === undefined ? undefined : checkInteger(writeFailCount, 'writeFailCount', 0, 255);
    this.#needDust();
    for (const b of list) await this.dm.message(this.name, dustMessages.addBadBlock(b, count));
  }

  /** `removebadblock` for each block (dust mode); a block not on the list fails with EINVAL. */
  async removeBadBlocks(blocks: readonly number[]): Promise<void> {
    const list = checkBlocks(blocks, 'blocks');
    this.#needDust();
    for (const b of list) await this.dm.message(this.name, dustMessages.removeBadBlock(b));
  }

  /** `clearbadblocks` (dust mode): empties the list. */
  async clearBadBlocks(): Promise<void> {
    this.#needDust();
    await this.dm.message(this.name, dustMessages.clearBadBlocks());
  }

  /** `listbadblocks` (dust mode): the blocks on the list, in increasing order. */
  async badBlocks(): Promise<number[]> {
    this.#needDust();
    return parseDustListBadBlocks(await this.dm.message(this.name, dustMessages.listBadBlocks(), { repeatable: true }));
  }

  /** `enable` / `disable` (dust mode): whether reads of bad blocks fail (`fail_read_on_bad_block`) or every I/O passes (`bypass`). */
  async setBadBlocksEnabled(enabled: boolean): Promise<void> {
    const on = checkBoolean(enabled, 'enabled', true);
    this.#needDust();
    await this.dm.message(this.name, on ? dustMessages.enable() : dustMessages.disable());
  }

  /** Sets dust's quiet mode (the kernel's `quiet` message toggles it, so the status is read first). */
  async setQuiet(quiet: boolean): Promise<void> {
    const want = checkBoolean(quiet, 'quiet', true);
    this.#needDust();
    if ((await this.dustStatus()).quiet !== want) await this.dm.message(this.name, dustMessages.quiet());
  }

  /** The typed dust status: `failReadOnBadBlock` (enabled) and `quiet`. */
  async dustStatus(): Promise<DustStatus> {
    const [row] = await this.dm.status(this.name);
    const s = row?.status;
    if (s === undefined || !s.known || s.type !== 'dust') throw new DmError({ errno: constants.errno.EINVAL, syscall: 'ioctl', device: this.name, message: `${this.name}: does not map dust` });
    return s;
  }

  /**
   * Delays I/O: `delay <device> <offset> <read ms> [<device> <offset> <write ms> [<device>
   * <offset> <flush ms>]]`. The reload that swaps it out sends the held bios on first.
   */
  async delay(fault: DelayFault): Promise<DeviceInfo> {
    if (fault === undefined) throw expected('an options object with read', 'fault', fault);
    const f = checkOptions(fault, 'fault', ['read', 'write', 'flush']);
    const at = (delay: number | undefined): { device: string; offset: number; delay: number } | undefined => (delay === undefined ? undefined : { device: this.device, offset: this.offset, delay });
    const read = checkInteger(f.read, 'fault.read', 0, U32_MAX);
    const target = targets.delay({ read: { device: this.device, offset: this.offset, delay: read }, write: at(f.write), flush: at(f.flush) });
    return this.#reload([{ start: 0, length: this.length, target }], 'delay');
  }

  /** Removes the wrapper (the wrapped device is untouched). */
  async remove(): Promise<void> {
    await this.dm.remove(this.name);
  }

  #needDust(): void {
    if (this.#mode !== 'dust') throw new RangeError(`Expected a device in dust mode (call dust() first) for ${this.name} but received one in ${this.#mode} mode`);
  }
}

function checkBlocks(value: unknown, name: string): number[] {
  if (!Array.isArray(value)) throw expected('an array of block numbers', name, value);
  return value.map((b: unknown, i) => checkSector(b, `${name}[${i}]`));
}

/** The number of a block device given as 'major:minor' or a /dev path. */
async function devNumberOf(device: string): Promise<DevNumber> {
  const number = parseDevNumber(device);
  if (number !== undefined) return number;
  const st = await stat(device);
  if (!st.isBlockDevice()) throw expectedRange('a block device', 'options.device', device);
  return decodeRdev(st.rdev);
}

/** The size in sectors of a block device, from sysfs. */
async function sectorsOf(dev: DevNumber): Promise<number> {
  const text = await readFile(`/sys/dev/block/${formatDev(dev)}/size`, 'utf8');
  const n = Number(text.trim());
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`Expected a size in sectors in /sys/dev/block/${formatDev(dev)}/size but received ${JSON.stringify(text)}`);
  return n;
}
