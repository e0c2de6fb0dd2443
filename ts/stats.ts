/**
 * dm-stats: the device-mapper core's I/O statistics on regions of a device, driven by
 * `@stats_*` messages (`dm.message(id, statsMessages.create(...))`) whose answers come back
 * through DATA_OUT and are parsed here into counters. What `dmstats` does for a region, from
 * Node. Pure data: nothing here touches the kernel.
 */
import { DmParseError } from './errors';
import { ArgReader, builderOptions, flag, freeze, integer, list, parseUint, sectors } from './targets/args';
import { expected, expectedRange } from './validate';

/** The sectors a region covers: the whole device, or `length` sectors from `start`. */
export type StatsRange =
  | 'all'
  | {
      /** The first sector counted. */
      start: number;
      /** How many sectors are counted. */
      length: number;
    };

/** How a region is cut into areas, each with its own counters: by size (sectors) or by count. */
export type StatsStep =
  | {
      /** Sectors per area. */
      areaSize: number;
    }
  | {
      /** How many areas of equal size. */
      areas: number;
    };

/** Options of `@stats_create`. */
export interface StatsCreateOptions {
  /** The sectors to count (default: the whole device). */
  range?: StatsRange;
  /** How to cut the range into areas (default: one area). */
  step?: StatsStep;
  /** Count times in nanoseconds with a precise clock instead of milliseconds from jiffies. */
  preciseTimestamps?: boolean;
  /**
   * Latency histogram boundaries, ascending (milliseconds, or nanoseconds with
   * `preciseTimestamps`): n boundaries give n + 1 buckets.
   */
  histogram?: readonly number[];
  /** A word naming the program that owns the region (`@stats_list <programId>` filters by it). */
  programId?: string;
  /** Data of the owner's, kept with the region and listed back (spaces allowed). */
  auxData?: string;
}

/** Where `@stats_print` starts and how many areas it prints (default: all). */
export interface StatsPrintOptions {
  /** The first area (line) to print. */
  start?: number;
  /** How many areas to print. */
  count?: number;
}

const U32 = 0xffffffff;

function regionId(value: unknown, name = 'regionId'): number {
  return integer(value, name, 0, 0x7fffffff);
}

function programWord(value: unknown, name: string): string {
  if (typeof value !== 'string') throw expected('a string', name, value);
  // A word the kernel keeps as is: no whitespace, no backslash, not a number (it would be read as a count).
  if (!/^[^\s\\]+$/.test(value) || /^\d+$/.test(value)) throw expectedRange('a word without whitespace or backslashes that is not a number', name, value);
  return value;
}

/** The kernel splits message words on spaces, honouring backslash escapes: escape them. */
function escapeWord(value: string): string {
  return value.replace(/[\\\s]/g, (c) => `\\${c}`);
}

function auxWord(value: unknown, name: string): string {
  if (typeof value !== 'string') throw expected('a string', name, value);
  if (value === '' || /[\n\0]/.test(value)) throw expectedRange('a non-empty string without newlines or NUL', name, value);
  return escapeWord(value);
}

function printArgs(options: StatsPrintOptions | undefined, name: string): string {
  if (options === undefined) return '';
  const o = builderOptions(options, name, ['start', 'count']);
  if (o.start === undefined && o.count === undefined) return '';
  return ` ${integer(o.start ?? 0, `${name}.start`, 0, Number.MAX_SAFE_INTEGER)} ${integer(o.count ?? U32, `${name}.count`, 1, Number.MAX_SAFE_INTEGER)}`;
}

/** Builders of the dm core's `@stats_*` messages (send them with `dm.message(id, text)`). */
export const statsMessages = Object.freeze({
  /** `@stats_create`: a new region; the answer (`parseStatsRegionId`) is its region id. */
  create(options: StatsCreateOptions = {}): string {
    const o = builderOptions(options, 'stats create options', ['range', 'step', 'preciseTimestamps', 'histogram', 'programId', 'auxData']);
    let range = '-';
    if (o.range !== undefined && o.range !== 'all') {
      const r = builderOptions(o.range, 'stats.range', ['start', 'length']);
      range = `${sectors(r.start, 'stats.range.start')}+${integer(r.length, 'stats.range.length', 1, Number.MAX_SAFE_INTEGER)}`;
    }
    let step = '/1';
    if (o.step !== undefined) {
      if (typeof o.step !== 'object' || o.step === null) throw expected('{ areaSize } or { areas }', 'stats.step', o.step);
      if ('areaSize' in o.step) step = String(integer(builderOptions(o.step, 'stats.step', ['areaSize']).areaSize, 'stats.step.areaSize', 1, Number.MAX_SAFE_INTEGER));
      else step = `/${integer(builderOptions(o.step, 'stats.step', ['areas']).areas, 'stats.step.areas', 1, U32)}`;
    }
    const features: string[] = [];
    if (flag(o.preciseTimestamps, 'stats.preciseTimestamps')) features.push('precise_timestamps');
    if (o.histogram !== undefined) {
      const bounds = list(o.histogram, 'stats.histogram', (v, n) => integer(v, n, 1, Number.MAX_SAFE_INTEGER), 1, 1024);
      for (let i = 1; i < bounds.length; i++) {
        if ((bounds[i] ?? 0) <= (bounds[i - 1] ?? 0)) throw expectedRange('ascending boundaries', `stats.histogram[${i}]`, bounds[i]);
      }
      features.push(`histogram:${bounds.join(',')}`);
    }
    const words = ['@stats_create', range, step, String(features.length), ...features];
    if (o.programId !== undefined || o.auxData !== undefined) words.push(o.programId === undefined ? '-' : programWord(o.programId, 'stats.programId'));
    if (o.auxData !== undefined) words.push(auxWord(o.auxData, 'stats.auxData'));
    return words.join(' ');
  },
  /** `@stats_delete <region>`. */
  delete(region: number): string {
    return `@stats_delete ${regionId(region)}`;
  },
  /** `@stats_clear <region>`: zero the counters (not those of I/O in flight). */
  clear(region: number): string {
    return `@stats_clear ${regionId(region)}`;
  },
  /** `@stats_list [<program>]`: the regions (`parseStatsList`), all or one program's. */
  list(programId?: string): string {
    return programId === undefined ? '@stats_list' : `@stats_list ${programWord(programId, 'programId')}`;
  },
  /** `@stats_print <region> [<start> <count>]`: the counters of its areas (`parseStatsPrint`). */
  print(region: number, options?: StatsPrintOptions): string {
    return `@stats_print ${regionId(region)}${printArgs(options, 'options')}`;
  },
  /** `@stats_print_clear`: print, then clear what was printed, atomically (nothing lost in between). */
  printClear(region: number, options?: StatsPrintOptions): string {
    return `@stats_print_clear ${regionId(region)}${printArgs(options, 'options')}`;
  },
  /** `@stats_set_aux <region> <aux data>`. */
  setAux(region: number, auxData: string): string {
    return `@stats_set_aux ${regionId(region)} ${auxWord(auxData, 'auxData')}`;
  },
});

/** Parses `@stats_create`'s answer: the new region's id. */
export function parseStatsRegionId(answer: string | undefined): number {
  const text = answer ?? '';
  const m = /^\s*(\d+)\s*$/.exec(text);
  if (!m || m[1] === undefined) throw new DmParseError('@stats_create answers with a region id', text, 'region id');
  const id = Number(m[1]);
  if (!Number.isSafeInteger(id)) throw new DmParseError('the region id is larger than a safe integer', text, 'region id');
  return id;
}

/** One region, as `@stats_list` reports it. */
export interface StatsRegion {
  /** The id to name it by in the other messages. */
  readonly regionId: number;
  /** First sector counted. */
  readonly start: number;
  /** Sectors counted. */
  readonly length: number;
  /** Size of each area, in sectors. */
  readonly areaSize: number;
  /** The owner's program id, null for none (`-`). */
  readonly programId: string | null;
  /** The owner's auxiliary data, null for none (`-`). */
  readonly auxData: string | null;
  /** Times are in nanoseconds (else milliseconds). */
  readonly preciseTimestamps: boolean;
  /** Histogram boundaries, empty when the region keeps no histogram. */
  readonly histogram: readonly number[];
}

/** Parses `@stats_list`'s answer: one region a line. */
export function parseStatsList(answer: string | undefined): StatsRegion[] {
  const out: StatsRegion[] = [];
  for (const line of (answer ?? '').split('\n')) {
    if (line.trim() === '') continue;
    const m = /^(\d+): (\d+)\+(\d+) (\d+) (\S+) (.*?)((?: precise_timestamps)?)((?: histogram:[\d,]+)?)$/.exec(line);
    const at = new ArgReader(line, '@stats_list');
    if (!m || m[6] === undefined) throw at.fail('a line is <region>: <start>+<length> <step> <program> <aux> [precise_timestamps] [histogram:...]', 'line');
    const num = (w: string | undefined, field: string): number => parseUint(w ?? '', field, 0, Number.MAX_SAFE_INTEGER, at);
    const histogram = m[8] ? m[8].slice(' histogram:'.length).split(',').map((w) => num(w, 'histogram')) : [];
    out.push(
      freeze({
        regionId: num(m[1], 'region id'),
        start: num(m[2], 'start'),
        length: num(m[3], 'length'),
        areaSize: num(m[4], 'step'),
        programId: m[5] === '-' ? null : (m[5] ?? null),
        auxData: m[6] === '-' ? null : m[6],
        preciseTimestamps: m[7] !== '',
        histogram,
      }),
    );
  }
  return out;
}

/** The counters of one area, as `@stats_print` reports them (u64 counters as bigint). */
export interface StatsArea {
  /** First sector of the area. */
  readonly start: number;
  /** Its length in sectors. */
  readonly length: number;
  /** Reads completed. */
  readonly reads: bigint;
  /** Reads merged. */
  readonly readsMerged: bigint;
  /** Sectors read. */
  readonly sectorsRead: bigint;
  /** Time spent reading (ms, or ns with precise timestamps). */
  readonly readTime: bigint;
  /** Writes completed. */
  readonly writes: bigint;
  /** Writes merged. */
  readonly writesMerged: bigint;
  /** Sectors written. */
  readonly sectorsWritten: bigint;
  /** Time spent writing (ms, or ns). */
  readonly writeTime: bigint;
  /** I/Os in flight now. */
  readonly inFlight: number;
  /** Time spent doing I/O (ms, or ns). */
  readonly ioTime: bigint;
  /** Weighted time spent doing I/O (ms, or ns). */
  readonly weightedIoTime: bigint;
  /** Total time of reads, queueing included (ms, or ns). */
  readonly totalReadTime: bigint;
  /** Total time of writes, queueing included (ms, or ns). */
  readonly totalWriteTime: bigint;
  /** Requests per latency bucket (boundaries + 1 buckets), empty without a histogram. */
  readonly histogram: readonly bigint[];
}

const COUNTERS = ['reads', 'readsMerged', 'sectorsRead', 'readTime', 'writes', 'writesMerged', 'sectorsWritten', 'writeTime', 'inFlight', 'ioTime', 'weightedIoTime', 'totalReadTime', 'totalWriteTime'] as const;

/** Parses `@stats_print`'s (or `@stats_print_clear`'s) answer: one area a line. */
export function parseStatsPrint(answer: string | undefined): StatsArea[] {
  const out: StatsArea[] = [];
  for (const line of (answer ?? '').split('\n')) {
    if (line.trim() === '') continue;
    const at = new ArgReader(line, '@stats_print');
    const range = at.word('range');
    const m = /^(\d+)\+(\d+)$/.exec(range);
    if (!m) throw at.fail(`<range> is <start>+<length>, not ${JSON.stringify(range)}`, 'range');
    const c: Record<string, bigint> = {};
    let inFlight = 0;
    for (const name of COUNTERS) {
      if (name === 'inFlight') {
        const w = at.word(name);
        if (!/^-?\d+$/.test(w)) throw at.fail(`<${name}> is not an integer: ${JSON.stringify(w)}`, name);
        inFlight = Number(w);
        if (!Number.isSafeInteger(inFlight)) throw at.fail(`<${name}> is out of range`, name);
      } else {
        c[name] = at.u64(name);
      }
    }
    let histogram: bigint[] = [];
    if (at.remaining > 0) {
      const h = at.word('histogram');
      if (!/^\d+(:\d+)*$/.test(h)) throw at.fail(`<histogram> is counts joined by ':', not ${JSON.stringify(h)}`, 'histogram');
      histogram = h.split(':').map((x) => BigInt(x));
      if (histogram.some((x) => x > 0xffffffffffffffffn)) throw at.fail('<histogram> has a count larger than 64 bits', 'histogram');
    }
    at.done();
    const get = (k: string): bigint => c[k] ?? 0n;
    out.push(
      freeze({
        start: parseUint(m[1] ?? '', 'start', 0, Number.MAX_SAFE_INTEGER, at),
        length: parseUint(m[2] ?? '', 'length', 0, Number.MAX_SAFE_INTEGER, at),
        reads: get('reads'),
        readsMerged: get('readsMerged'),
        sectorsRead: get('sectorsRead'),
        readTime: get('readTime'),
        writes: get('writes'),
        writesMerged: get('writesMerged'),
        sectorsWritten: get('sectorsWritten'),
        writeTime: get('writeTime'),
        inFlight,
        ioTime: get('ioTime'),
        weightedIoTime: get('weightedIoTime'),
        totalReadTime: get('totalReadTime'),
        totalWriteTime: get('totalWriteTime'),
        histogram,
      }),
    );
  }
  return out;
}
