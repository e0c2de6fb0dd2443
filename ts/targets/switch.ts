import type { DeviceRef } from '../dev';
import { expected, expectedRange } from '../validate';
import { ArgReader, builderOptions, device, freeze, integer, list, sectors, typedTarget } from './args';
import type { Target, TargetModule, TargetStatusBase } from './types';

/** One path of a switch: a device and the sector on it where its data starts. */
export interface SwitchPath {
  /** `<dev_path>`, 'major:minor' or a /dev path. */
  readonly device: string;
  /** `<offset>`: added to every sector sent to this path (512-byte sectors; usually 0). */
  readonly offset: number;
}

/** Options of a switch target. */
export interface SwitchOptions {
  /** `<region_size>`: size of each region in 512-byte sectors; each region goes to one path, chosen by message. */
  regionSize: number;
  /**
   * `<num_paths>` and `[<dev_path> <offset>]+`: the paths, numbered from 0 in this order. The
   * kernel starts with the regions dealt round-robin: region r on path r mod the path count.
   */
  paths: readonly {
    /** `<dev_path>`: the path's device. */
    device: DeviceRef;
    /** `<offset>`: added to every sector sent to this path (512-byte sectors). */
    offset: number;
  }[];
}

/**
 * `switch <#paths> <region size> 0 [<device> <offset>]+`: the device is cut into fixed-size
 * regions, each sent to one of the paths; `set_region_mappings` messages move regions.
 */
export interface SwitchTarget extends Target {
  readonly type: 'switch';
  /** `<region_size>`: 512-byte sectors per region. */
  readonly regionSize: number;
  /** `<num_paths>` and `[<dev_path> <offset>]+`: the paths, by path number (from 0). */
  readonly paths: readonly SwitchPath[];
}

/** The status of a switch target: the kernel reports none. */
export interface SwitchStatus extends TargetStatusBase {
  readonly type: 'switch';
  readonly known: true;
  /** Words a newer kernel prints, kept as given. */
  readonly extra: readonly string[];
}

const MAX_PATHS = 0x7fffffff;

/** Builds a switch target. Throws TypeError/RangeError on bad options. */
export function switchTarget(options: SwitchOptions): SwitchTarget {
  const o = builderOptions(options, 'switch options', ['regionSize', 'paths']);
  const regionSize = integer(o.regionSize, 'switch.regionSize', 1, 0xffffffff);
  const paths = list(
    o.paths,
    'switch.paths',
    (p, name) => {
      const x = builderOptions(p as { device: DeviceRef; offset: number }, name, ['device', 'offset']);
      return { device: device(x.device, `${name}.device`), offset: sectors(x.offset, `${name}.offset`) };
    },
    1,
    1024,
  );
  const params = [paths.length, regionSize, 0, ...paths.flatMap((p) => [p.device, p.offset])].join(' ');
  return typedTarget({ type: 'switch', regionSize, paths, params });
}

/** Parses switch parameters ('2 128 0 7:0 0 7:1 0'). Throws DmParseError naming the field. */
export function parseSwitch(params: string): SwitchTarget {
  const at = new ArgReader(params, 'switch');
  const count = at.uint('paths', 1, MAX_PATHS);
  const regionSize = at.uint('region size', 1, 0xffffffff);
  // The kernel takes no optional arguments yet: their count is 0.
  at.uint('optional args', 0, 0);
  const paths = [];
  for (let i = 0; i < count; i++) paths.push({ device: at.device(`path ${i} device`), offset: at.uint(`path ${i} offset`) });
  at.done();
  return switchTarget({ regionSize, paths });
}

/** Parses a switch target's status (the kernel prints none). */
export function parseSwitchStatus(text: string): SwitchStatus {
  return freeze({ type: 'switch', raw: text, known: true, extra: new ArgReader(text, 'switch status').rest() });
}

/** The switch target type. */
export const switchModule: TargetModule<SwitchTarget, SwitchStatus> = {
  type: 'switch',
  parse: parseSwitch,
  parseStatus: parseSwitchStatus,
  // Every region is whole: the row is a whole number of regions (the kernel's rule).
  checkLength(target, length, name) {
    const t = parseSwitch(target.params);
    if (length % t.regionSize !== 0) throw expectedRange(`a length in whole ${t.regionSize}-sector regions`, name, length);
  },
};

/**
 * One word of `set_region_mappings`: region `region` (or, without it, the region after the
 * previous one) goes to path `path`; or the last `repeat` mappings are repeated over the next
 * `times` regions.
 */
export type RegionMapping =
  | {
      /** `<index>` of `<index>:<path_nr>`: the region number (from 0); omitted for `:<path_nr>`, the region after the previous word's. */
      region?: number;
      /** `<path_nr>`: the path number (from 0) the region goes to. */
      path: number;
    }
  | {
      /** `<n>` of `R<n>,<m>`: how many of the mappings just written are repeated (a count of regions). */
      repeat: number;
      /** `<m>` of `R<n>,<m>`: over how many regions after them (a count). */
      times: number;
    };

function hex(n: number): string {
  return n.toString(16);
}

/**
 * One mapping's word. `last` is the region the words before it wrote last (the kernel starts
 * from region 0): an `R<n>,<m>` may repeat only regions that exist before it, n <= last + 1
 * (dm-switch.c process_set_region_mappings), whatever words wrote them. Returns the word and
 * the region it writes last.
 */
function mappingWord(m: unknown, name: string, index: number, last: number): { word: string; last: number } {
  if (typeof m !== 'object' || m === null) throw expected('{ region?, path } or { repeat, times }', name, m);
  if ('repeat' in m) {
    const r = builderOptions(m as { repeat: number; times: number }, name, ['repeat', 'times']);
    const n = integer(r.repeat, `${name}.repeat`, 1, 0xffffffff);
    if (n > last + 1) throw expectedRange(`at most the ${last + 1} region(s) up to region ${last}, the last one written before it`, `${name}.repeat`, n);
    const times = integer(r.times, `${name}.times`, 1, 0xffffffff);
    return { word: `R${hex(n)},${hex(times)}`, last: last + times };
  }
  const p = builderOptions(m as { region?: number; path: number }, name, ['region', 'path']);
  const path = hex(integer(p.path, `${name}.path`, 0, MAX_PATHS));
  if (p.region === undefined) {
    if (index === 0) throw expected('a region for the first mapping', `${name}.region`, undefined);
    return { word: `:${path}`, last: last + 1 };
  }
  const region = integer(p.region, `${name}.region`, 0, Number.MAX_SAFE_INTEGER);
  return { word: `${hex(region)}:${path}`, last: region };
}

/**
 * The shortest words that send regions `start`, `start + 1`, ... to `paths[0]`, `paths[1]`,
 * ...: the next-region form `:<path>` after the first, and `R<n>,<m>` wherever the last n
 * mappings repeat.
 */
export function compressRegionMappings(start: number, paths: readonly number[]): RegionMapping[] {
  const first = integer(start, 'start', 0, Number.MAX_SAFE_INTEGER);
  const ps = list(paths, 'paths', (v, n) => integer(v, n, 0, MAX_PATHS), 1, Number.MAX_SAFE_INTEGER);
  const out: RegionMapping[] = [];
  let i = 0;
  while (i < ps.length) {
    // The longest run that repeats the last n mappings, for the n (up to 16) that covers most.
    let best = { n: 0, m: 0 };
    for (let n = 1; n <= Math.min(16, i); n++) {
      let m = 0;
      while (i + m < ps.length && ps[i + m] === ps[i + m - n]) m++;
      if (m > best.m) best = { n, m };
    }
    if (best.m >= 3) {
      out.push({ repeat: best.n, times: best.m });
      i += best.m;
    } else {
      out.push(i === 0 ? { region: first, path: ps[0] ?? 0 } : { path: ps[i] ?? 0 });
      i++;
    }
  }
  return out;
}

/** Builders of the switch target's messages (send with `dm.message(name, text)`). */
export const switchMessages = Object.freeze({
  /**
   * `set_region_mappings`: moves regions to paths (indexes and paths in hexadecimal, as the
   * kernel reads them). Use `compressRegionMappings` to make the words for a run of regions.
   */
  setRegionMappings(mappings: readonly RegionMapping[]): string {
    if (!Array.isArray(mappings)) throw expected('an array of region mappings', 'mappings', mappings);
    if (mappings.length === 0) throw expectedRange('at least one mapping', 'mappings', mappings);
    const words: string[] = [];
    let last = 0;
    mappings.forEach((m: unknown, i) => {
      const w = mappingWord(m, `mappings[${i}]`, i, last);
      words.push(w.word);
      last = w.last;
    });
    return `set_region_mappings ${words.join(' ')}`;
  },
});
