import type { DeviceRef } from '../dev';
import { expectedRange } from '../validate';
import { ArgReader, builderOptions, device, freeze, integer, list, sectors, typedTarget } from './args';
import type { Target, TargetModule, TargetStatusBase } from './types';

/** One stripe: a device and the sector on it where the stripe's data starts. */
export interface Stripe {
  /** `<dev_path>`, 'major:minor' or a /dev path. */
  readonly device: string;
  /** `<offset>`: the start sector on `device` (512-byte sectors). */
  readonly offset: number;
}

/** Options of a striped target. */
export interface StripedOptions {
  /** `<chunk size>`: size of each chunk, in 512-byte sectors (at least 8: one 4 KiB page). */
  chunkSize: number;
  /** `<#stripes>` and `[<dev_path> <offset>]+`: the stripes, in order; the row's length must divide evenly among them by chunks. */
  stripes: readonly {
    /** `<dev_path>`: the stripe's device. */
    device: DeviceRef;
    /** `<offset>`: the stripe's start sector on `device` (512-byte sectors). */
    offset: number;
  }[];
}

/** `striped <#stripes> <chunk size> [<device> <offset>]+`: data spread over devices, chunk by chunk. */
export interface StripedTarget extends Target {
  readonly type: 'striped';
  /** `<chunk size>`: 512-byte sectors. */
  readonly chunkSize: number;
  /** `<#stripes>` and `[<dev_path> <offset>]+`: the stripes, in order. */
  readonly stripes: readonly Stripe[];
}

/**
 * The status of a striped target, `<#stripes> <dev>+ 1 <A|D per stripe>`: each stripe's device
 * and whether it has seen I/O errors.
 */
export interface StripedStatus extends TargetStatusBase {
  readonly type: 'striped';
  readonly known: true;
  /** `<#stripes> <dev>+` and the health letters: each stripe's device and health. */
  readonly stripes: readonly {
    /** The stripe's device ('major:minor'). */
    readonly device: string;
    /** `A` alive, or `D` dead: an I/O error was seen on it. */
    readonly health: 'alive' | 'dead';
  }[];
  /** Words after the known fields (a newer kernel's), kept as given. */
  readonly extra: readonly string[];
}

/** Builds a striped target. Throws TypeError/RangeError on bad options. */
export function striped(options: StripedOptions): StripedTarget {
  const o = builderOptions(options, 'striped options', ['chunkSize', 'stripes']);
  const chunkSize = integer(o.chunkSize, 'striped.chunkSize', 8, 0xffffffff);
  const stripes = list(
    o.stripes,
    'striped.stripes',
    (s, name) => {
      const st = builderOptions(s as { device: DeviceRef; offset: number }, name, ['device', 'offset']);
      return { device: device(st.device, `${name}.device`), offset: sectors(st.offset, `${name}.offset`) };
    },
    1,
    1024,
  );
  const params = [stripes.length, chunkSize, ...stripes.flatMap((s) => [s.device, s.offset])].join(' ');
  return typedTarget({ type: 'striped', chunkSize, stripes, params });
}

/** Parses striped parameters ('2 128 7:0 0 7:1 0'). Throws DmParseError naming the field. */
export function parseStriped(params: string): StripedTarget {
  const at = new ArgReader(params, 'striped');
  const count = at.uint('stripes', 1, 1024);
  const chunkSize = at.uint('chunk size', 0, 0xffffffff);
  if (chunkSize < 8) throw at.fail('<chunk size> is at least 8 sectors', 'chunk size');
  const stripes = [];
  for (let i = 0; i < count; i++) stripes.push({ device: at.device(`stripe ${i} device`), offset: at.uint(`stripe ${i} offset`) });
  at.done();
  return striped({ chunkSize, stripes });
}

/** Parses a striped target's status ('2 7:0 7:1 1 AA'). Throws DmParseError naming the field. */
export function parseStripedStatus(text: string): StripedStatus {
  const at = new ArgReader(text, 'striped status');
  const count = at.uint('stripes', 1, 1024);
  const devices = at.take(count);
  if (devices.length < count) throw at.fail(`<stripes> says ${count} but only ${devices.length} device(s) follow`, 'devices');
  at.uint('health groups', 1, 1);
  const health = at.word('health');
  if (health.length !== count || !/^[AD]+$/.test(health)) throw at.fail(`<health> is one A or D per stripe, not ${JSON.stringify(health)}`, 'health');
  const stripes = devices.map((d, i) => ({ device: d, health: health[i] === 'D' ? ('dead' as const) : ('alive' as const) }));
  return freeze({ type: 'striped', raw: text, known: true, stripes, extra: at.rest() });
}

/** The striped target type. */
export const stripedModule: TargetModule<StripedTarget, StripedStatus> = {
  type: 'striped',
  parse: parseStriped,
  parseStatus: parseStripedStatus,
  // The kernel's rule: the row splits evenly among the stripes, in whole chunks.
  checkLength(target, length, name) {
    const t = parseStriped(target.params);
    if (length % t.stripes.length !== 0 || (length / t.stripes.length) % t.chunkSize !== 0) {
      throw expectedRange(`a length that divides into ${t.stripes.length} stripes of whole ${t.chunkSize}-sector chunks`, name, length);
    }
  },
};
