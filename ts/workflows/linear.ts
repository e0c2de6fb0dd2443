/**
 * Linear devices, end to end: disks (or parts of them) concatenated into one device, one
 * linear row each, and the device resized or extended in place by a table reload that never
 * leaves it suspended. Built on `DeviceMapper` and the typed linear target.
 */
import type { DeviceInfo, DeviceMapper, ReloadOptions, RemoveOptions } from '../client';
import type { DevId, DeviceRef } from '../dev';
import { Table, type TableRow } from '../table';
import { linear, parseLinear, type LinearTarget } from '../targets/linear';
import { checkInteger, checkName, checkOptions, checkSector, checkUuid, expected, expectedRange } from '../validate';
import { checkSame, createVerified } from './one-row';
import { idOf } from './common';

/** One piece of a linear device: `length` sectors of `device` from sector `offset`. */
export interface LinearSegmentOptions {
  /** The device: 'major:minor', a /dev path, or { major, minor }. */
  device: DeviceRef;
  /** The first sector of `device` used (512-byte sectors; default 0). */
  offset?: number;
  /** How many sectors of `device` the segment maps. */
  length: number;
}

/** A segment as the kernel reads the table back. */
export interface LinearSegment {
  /** The device's first sector that the segment maps. */
  readonly start: number;
  /** Sectors in the segment. */
  readonly length: number;
  /** The device mapped onto ('major:minor'). */
  readonly device: string;
  /** The sector of `device` where the segment starts. */
  readonly offset: number;
}

/** Options of `Linear.create`. */
export interface LinearCreateOptions {
  /** The segments, concatenated in this order: the device's sector 0 is the first segment's first sector. */
  segments: readonly LinearSegmentOptions[];
  /** The device's uuid (then every later call names the device by it). */
  uuid?: string;
}

/** Options of `Linear.resize` and `Linear.append`: how the reload suspends the device. */
export type LinearReloadOptions = Pick<ReloadOptions, 'noFlush' | 'noLockfs'>;

function segmentTarget(value: unknown, name: string): { length: number; target: LinearTarget } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw expected('a segment { device, offset?, length }', name, value);
  const o = checkOptions(value as LinearSegmentOptions, name, ['device', 'offset', 'length']);
  const length = checkSector(o.length, `${name}.length`);
  if (length === 0) throw expectedRange('a length of at least 1 sector', `${name}.length`, o.length);
  return { length, target: linear({ device: o.device as DeviceRef, offset: o.offset === undefined ? 0 : o.offset }) };
}

function segmentsOf(table: Table | undefined, name: string): LinearSegment[] {
  const rows = table?.rows ?? [];
  if (rows.length === 0 || rows.some((r) => r.type !== 'linear')) {
    throw new TypeError(`Expected a device of linear rows for ${name} but received ${rows.map((r) => r.type).join(', ') || 'no table'}`);
  }
  return rows.map((r: TableRow) => {
    const t = parseLinear(r.params);
    return { start: r.start, length: r.length, device: t.device, offset: t.offset };
  });
}

function tableOf(segments: readonly { length: number; device: string; offset: number }[]): Table {
  let start = 0;
  return new Table(
    segments.map((s) => {
      const row = { start, length: s.length, target: linear({ device: s.device, offset: s.offset }) };
      start += s.length;
      return row;
    }),
  );
}

/**
 * A linear device (the kernel's dm-linear target): one or more segments of other devices
 * concatenated. Calls name the device by its uuid when it has one, else by its name.
 */
export class Linear {
  /** The client the device is driven through. */
  readonly dm: DeviceMapper;
  /** The device's name. */
  readonly name: string;
  /** The device's uuid ('' for none). */
  readonly uuid: string;
  /** The device's number, node and state when it was created or opened. */
  readonly info: DeviceInfo;
  #segments: readonly LinearSegment[];

  private constructor(dm: DeviceMapper, info: DeviceInfo, segments: readonly LinearSegment[]) {
    this.dm = dm;
    this.name = info.name;
    this.uuid = info.uuid;
    this.info = info;
    this.#segments = Object.freeze(segments);
  }

  /** How the device is named in each call: its uuid, else its name. */
  get id(): DevId {
    return idOf(this);
  }

  /** The segments of the live table as last read back, in order. */
  get segments(): readonly LinearSegment[] {
    return this.#segments;
  }

  /** The device's length in 512-byte sectors, as last read back. */
  get size(): number {
    return this.#segments.reduce((n, s) => n + s.length, 0);
  }

  /**
   * Creates the device with one linear row per segment (DM_DEV_CREATE, DM_TABLE_LOAD,
   * resume) and reads its table back. A segment that runs past the end of its device fails
   * the resume (EINVAL), and the device is removed again. Bad options are refused (TypeError /
   * RangeError) before any ioctl.
   */
  static async create(dm: DeviceMapper, name: string, options: LinearCreateOptions): Promise<Linear> {
    checkName(name, 'name');
    if (typeof options !== 'object' || options === null) throw expected('linear create options', 'options', options);
    const o = checkOptions(options, 'options', ['segments', 'uuid']);
    if (!Array.isArray(o.segments) || o.segments.length === 0) throw expected('a non-empty array of segments', 'options.segments', o.segments);
    const parts = Array.from(o.segments, (s: unknown, i) => segmentTarget(s, `options.segments[${i}]`));
    const uuid = o.uuid === undefined ? undefined : checkUuid(o.uuid, 'options.uuid');
    const table = tableOf(parts.map((p) => ({ length: p.length, device: p.target.device, offset: p.target.offset })));
    return createVerified(dm, name, table, uuid, async (info) => {
      const l = await Linear.read(dm, info);
      const shape = (s: readonly { length: number; offset: number }[]): string => s.map((x) => `${x.length}+${x.offset}`).join(' ');
      if (shape(l.segments) !== shape(parts.map((p) => ({ length: p.length, offset: p.target.offset })))) throw new Error(`${name}: the kernel's table is not the one loaded`);
      return l;
    });
  }

  /** Takes over an existing linear device: reads its info and table (a device with a row of another type is refused). */
  static async open(dm: DeviceMapper, id: DevId): Promise<Linear> {
    return Linear.read(dm, await dm.info(id));
  }

  private static async read(dm: DeviceMapper, info: DeviceInfo): Promise<Linear> {
    return new Linear(dm, info, segmentsOf(await dm.table(idOf(info)), info.name));
  }

  /** Reads the live table again (DM_TABLE_STATUS of the table): the segments as the kernel has them now. */
  async refresh(): Promise<readonly LinearSegment[]> {
    await checkSame(this.dm, this.id, this.name, this.info.dev);
    this.#segments = Object.freeze(segmentsOf(await this.dm.table(this.id), this.name));
    return this.#segments;
  }

  /**
   * Gives the device `size` sectors by growing or shrinking its last segment, in one reload
   * (DM_TABLE_LOAD, suspend, resume; the client's `update`). The resize of a device over a
   * disk that grew: grow the disk first (for a loop device, its file, then
   * `LoopDevice.refreshCapacity()`), then `resize`. The live table is read under the device's
   * lock and must be linear rows; a size that would leave the last segment empty is refused
   * (RangeError) and nothing changes. A last segment that would run past the end of its device
   * fails the resume (EINVAL); the old table is then live again and the device not suspended.
   */
  async resize(size: number, options?: LinearReloadOptions): Promise<readonly LinearSegment[]> {
    const sectors = checkInteger(size, 'size', 1, Number.MAX_SAFE_INTEGER);
    const o = checkOptions(options, 'options', ['noFlush', 'noLockfs']);
    await checkSame(this.dm, this.id, this.name, this.info.dev);
    await this.dm.update(
      this.id,
      (live) => {
        const segments = segmentsOf(live, this.name);
        const last = segments[segments.length - 1];
        if (last === undefined) throw new TypeError(`Expected a device of linear rows for ${this.name} but received no table`);
        const length = sectors - last.start;
        if (length < 1) throw expectedRange(`a size above ${last.start} (the start of the last segment)`, 'size', size);
        return tableOf([...segments.slice(0, -1), { ...last, length }]);
      },
      o,
    );
    return this.refresh();
  }

  /** Adds `segment` at the end of the device, in one reload (see `resize` for what a failure leaves). */
  async append(segment: LinearSegmentOptions, options?: LinearReloadOptions): Promise<readonly LinearSegment[]> {
    const part = segmentTarget(segment, 'segment');
    const o = checkOptions(options, 'options', ['noFlush', 'noLockfs']);
    await checkSame(this.dm, this.id, this.name, this.info.dev);
    await this.dm.update(this.id, (live) => tableOf([...segmentsOf(live, this.name), { length: part.length, device: part.target.device, offset: part.target.offset }]), o);
    return this.refresh();
  }

  /** Removes the device (DM_DEV_REMOVE). */
  async remove(options?: RemoveOptions): Promise<void> {
    await checkSame(this.dm, this.id, this.name, this.info.dev);
    await this.dm.remove(this.id, options);
  }
}

/**
 * Resizes the linear device `id` to `size` sectors by its last segment (see `Linear.resize`):
 * after its disk grew, `resizeLinear(dm, name, newSectors)` makes the new space visible.
 */
export async function resizeLinear(dm: DeviceMapper, id: DevId, size: number, options?: LinearReloadOptions): Promise<readonly LinearSegment[]> {
  checkInteger(size, 'size', 1, Number.MAX_SAFE_INTEGER);
  checkOptions(options, 'options', ['noFlush', 'noLockfs']);
  return (await Linear.open(dm, id)).resize(size, options);
}
