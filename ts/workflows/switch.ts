/**
 * A dm-switch device, end to end: the device cut into fixed-size regions, each sent to one of
 * several paths, and a region map of any size loaded with `set_region_mappings` in as few
 * messages as the protocol allows. Built on `DeviceMapper` and the typed switch target.
 */
import type { DeviceInfo, DeviceMapper, RemoveOptions } from '../client';
import type { DevId, DeviceRef } from '../dev';
import { DmError } from '../errors';
import { Table } from '../table';
import { compressRegionMappings, parseSwitch, switchMessages, switchTarget, type RegionMapping, type SwitchTarget } from '../targets/switch';
import { checkInteger, checkName, checkOptions, checkSector, checkUuid, expected, expectedRange } from '../validate';
import { idOf } from './common';

/**
 * The most words one message may have, its first word (`set_region_mappings`) included: the
 * kernel splits a message into an array of word pointers that grows by doubling, and a
 * kmalloc of more than 4 MiB (2^19 pointers, 64-bit, 4 KiB pages) fails with ENOMEM.
 */
export const SWITCH_MESSAGE_WORDS = 524288;

/** Options of `regionMappingMessages` and `Switch.setRegionMappings`. */
export interface RegionMappingsOptions {
  /** The first region the map sets (default 0). */
  start?: number;
  /** Words per message, its first word included: 2 to SWITCH_MESSAGE_WORDS (the default). */
  maxWords?: number;
}

/** Options of `Switch.create`. */
export interface SwitchCreateOptions {
  /** The device's length in 512-byte sectors: a whole number of regions. */
  size: number;
  /** Size of each region in 512-byte sectors. */
  regionSize: number;
  /** The paths, numbered from 0 in this order; `offset` (sectors) is added to every sector sent to the path. */
  paths: readonly {
    /** The path's device. */
    device: DeviceRef;
    /** Sectors added to every sector sent to it. */
    offset: number;
  }[];
  /** The device's uuid (then every later call names the device by it). */
  uuid?: string;
  /**
   * The region map to load once the device is live: `regions[i]` is the path of region i.
   * Without it the kernel's own map stays: region r on path r mod (number of paths).
   */
  regions?: readonly number[];
  /** Words per message (see `RegionMappingsOptions.maxWords`). */
  maxWords?: number;
}

/** What loading a region map took. */
export interface RegionMappingsResult {
  /** The `set_region_mappings` messages sent. */
  readonly messages: number;
  /** Their words, the leading `set_region_mappings` of each included. */
  readonly words: number;
  /** The longest message, in bytes. */
  readonly largestBytes: number;
}

function wordCount(message: string): number {
  let n = 1;
  for (let i = 0; i < message.length; i++) if (message.charCodeAt(i) === 0x20) n++;
  return n;
}

/**
 * The `set_region_mappings` messages that send regions `start`, `start + 1`, ... to paths
 * `paths[0]`, `paths[1]`, ...: the words `compressRegionMappings` makes (`:<path>` for the
 * next region, `R<n>,<m>` for a repeat), cut into messages of at most `maxWords` words. The
 * kernel restarts its region counter at 0 in each message, so each message after the first
 * begins with an explicit `<region>:<path>`, and a repeat cut there resumes after it.
 */
export function regionMappingMessages(paths: readonly number[], options?: RegionMappingsOptions): string[] {
  const o = checkOptions(options, 'options', ['start', 'maxWords']);
  const start = o.start === undefined ? 0 : checkSector(o.start, 'options.start');
  const maxWords = o.maxWords === undefined ? SWITCH_MESSAGE_WORDS : checkInteger(o.maxWords, 'options.maxWords', 2, SWITCH_MESSAGE_WORDS);
  // Checked through a copy of the declared type: Array.isArray narrows `paths` to any[].
  const pathNumbers: readonly number[] = paths;
  if (!Array.isArray(paths)) throw expected('an array of path numbers', 'paths', paths);
  const words = compressRegionMappings(start, pathNumbers);
  const messages: string[] = [];
  let current: RegionMapping[] = [];
  // The region the next word begins at.
  let region = start;
  const flush = (): void => {
    if (current.length > 0) messages.push(switchMessages.setRegionMappings(current));
    current = [];
  };
  for (const w of words) {
    if (current.length === maxWords - 1) flush();
    if ('repeat' in w) {
      if (current.length === 0) {
        current.push({ region, path: pathNumbers[region - start] ?? 0 });
        if (w.times > 1) {
          if (current.length === maxWords - 1) flush();
          current.push({ repeat: w.repeat, times: w.times - 1 });
        }
      } else current.push(w);
      region += w.times;
    } else {
      region = w.region ?? region;
      current.push(current.length === 0 ? { region, path: w.path } : w);
      region++;
    }
  }
  flush();
  return messages;
}

/**
 * A switch device (the kernel's dm-switch target): one row over the whole device. Calls name
 * the device by its uuid when it has one, else by its name. The kernel reports no status and
 * no region map; what the map is shows in the data read through the device.
 */
export class Switch {
  /** The client the device is driven through. */
  readonly dm: DeviceMapper;
  /** The device's name. */
  readonly name: string;
  /** The device's uuid ('' for none). */
  readonly uuid: string;
  /** The device's number, node and state when it was created or opened. */
  readonly info: DeviceInfo;
  /** The table's target, as the kernel read it back. */
  readonly target: SwitchTarget;
  /** The device's length in sectors. */
  readonly size: number;

  private constructor(dm: DeviceMapper, info: DeviceInfo, target: SwitchTarget, size: number) {
    this.dm = dm;
    this.name = info.name;
    this.uuid = info.uuid;
    this.info = info;
    this.target = target;
    this.size = size;
  }

  /** How the device is named in each call: its uuid, else its name. */
  get id(): DevId {
    return idOf(this);
  }

  /** The number of regions (the device's length over the region size). */
  get regions(): number {
    return this.size / this.target.regionSize;
  }

  /** The region a sector falls in. */
  regionOf(sector: number): number {
    return Math.floor(checkInteger(sector, 'sector', 0, this.size - 1) / this.target.regionSize);
  }

  /**
   * Creates the device with one switch row (DM_DEV_CREATE, DM_TABLE_LOAD, resume), reads its
   * table back and, given `regions`, loads that region map. If a step fails, the device is
   * removed again. Bad options are refused (TypeError / RangeError) before any ioctl.
   */
  static async create(dm: DeviceMapper, name: string, options: SwitchCreateOptions): Promise<Switch> {
    checkName(name, 'name');
    if (typeof options !== 'object' || options === null) throw expected('switch create options', 'options', options);
    const o = checkOptions(options, 'options', ['size', 'regionSize', 'paths', 'uuid', 'regions', 'maxWords']);
    const size = checkSector(o.size, 'options.size');
    const regionSize = checkInteger(o.regionSize, 'options.regionSize', 1, 0xffffffff);
    if (o.paths === undefined) throw expected('an array of paths', 'options.paths', o.paths);
    const target = switchTarget({ regionSize, paths: o.paths });
    if (size === 0 || size % target.regionSize !== 0) throw expectedRange(`a size in whole ${target.regionSize}-sector regions`, 'options.size', o.size);
    if (o.uuid !== undefined) checkUuid(o.uuid, 'options.uuid');
    const mapOptions: RegionMappingsOptions = o.maxWords === undefined ? {} : { maxWords: checkInteger(o.maxWords, 'options.maxWords', 2, SWITCH_MESSAGE_WORDS) };
    let messages: string[] = [];
    if (o.regions !== undefined) {
      checkRegions(o.regions, 'options.regions', 0, size / target.regionSize, target.paths.length);
      messages = regionMappingMessages(o.regions, mapOptions);
    }
    const table = new Table([{ start: 0, length: size, target }]);
    const info = await dm.create(name, o.uuid === undefined ? { table } : { table, uuid: o.uuid });
    const id: DevId = idOf(info);
    try {
      const sw = new Switch(dm, info, ...(await Switch.readTarget(dm, id, info.name)));
      // The kernel prints paths as 'major:minor', whatever node named them: compare the rest.
      const shape = (t: SwitchTarget): string => `${t.regionSize} ${t.paths.map((p) => p.offset).join(' ')}`;
      if (shape(sw.target) !== shape(target) || sw.size !== size) throw new Error(`${name}: the kernel's table is not the one loaded (${sw.size} switch ${sw.target.params})`);
      for (const m of messages) await dm.message(id, m);
      return sw;
    } catch (e) {
      await dm.remove(id).catch((r: unknown) => {
        if (e instanceof DmError && r instanceof Error) e.rollbackError = r;
      });
      throw e;
    }
  }

  /** Takes over an existing switch device: reads its info and table (a device with another table is refused). */
  static async open(dm: DeviceMapper, id: DevId): Promise<Switch> {
    const info = await dm.info(id);
    const own: DevId = idOf(info);
    return new Switch(dm, info, ...(await Switch.readTarget(dm, own, info.name)));
  }

  private static async readTarget(dm: DeviceMapper, id: DevId, name: string): Promise<[SwitchTarget, number]> {
    const rows = (await dm.table(id))?.rows ?? [];
    const row = rows[0];
    if (rows.length !== 1 || row === undefined || row.type !== 'switch' || row.start !== 0) {
      throw new TypeError(`Expected a device with one switch row for ${name} but received ${rows.map((r) => r.type).join(', ') || 'no table'}`);
    }
    return [parseSwitch(row.params), row.length];
  }

  /**
   * Sends regions `start`, `start + 1`, ... to paths `paths[0]`, `paths[1]`, ... with
   * `set_region_mappings` messages (see `regionMappingMessages`): a regular map of any size
   * takes a handful of words. Path numbers and regions are checked against the table before
   * any message. The kernel applies each message whole or refuses it (EINVAL); when a later
   * message of several is refused, the regions of the earlier ones are already moved.
   */
  async setRegionMappings(paths: readonly number[], options?: RegionMappingsOptions): Promise<RegionMappingsResult> {
    const o = checkOptions(options, 'options', ['start', 'maxWords']);
    const start = o.start === undefined ? 0 : checkInteger(o.start, 'options.start', 0, this.regions - 1);
    checkRegions(paths, 'paths', start, this.regions, this.target.paths.length);
    const messages = regionMappingMessages(paths, o);
    let words = 0;
    let largestBytes = 0;
    for (const m of messages) {
      await this.dm.message(this.id, m);
      words += wordCount(m);
      largestBytes = Math.max(largestBytes, Buffer.byteLength(m));
    }
    return { messages: messages.length, words, largestBytes };
  }

  /** Removes the device (DM_DEV_REMOVE). */
  async remove(options?: RemoveOptions): Promise<void> {
    await this.dm.remove(this.id, options);
  }
}

/** A region map from `start`: path numbers below `pathCount`, at least one, ending by the last region. */
function checkRegions(value: unknown, name: string, start: number, regions: number, pathCount: number): void {
  if (!Array.isArray(value)) throw expected('an array of path numbers', name, value);
  if (value.length === 0 || start + value.length > regions) throw expectedRange(`1 to ${regions - start} path number(s) (regions ${start} to ${regions - 1})`, name, value);
  for (let i = 0; i < value.length; i++) {
    const p: unknown = value[i];
    if (typeof p !== 'number' || !Number.isInteger(p) || p < 0 || p >= pathCount) {
      throw (typeof p === 'number' ? expectedRange : expected)(`a path number from 0 to ${pathCount - 1}`, `${name}[${i}]`, p);
    }
  }
}
