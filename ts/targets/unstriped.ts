/**
 * dm-unstriped: the inverse of a RAID 0 (a dm striped device or a hardware one): one stripe's
 * chunks, taken out of the striped device and laid end to end. Pure data: nothing here
 * touches the kernel.
 */
import type { DeviceRef } from '../dev';
import { expectedRange } from '../validate';
import { ArgReader, builderOptions, device, freeze, integer, powerOfTwo, sectors, typedTarget } from './args';
import type { Target, TargetModule, TargetStatusBase } from './types';

/** The kernel prints the stripe count and stripe number as signed ints: keep them below 2^31. */
const INT_MAX = 0x7fffffff;
/** The largest chunk: the kernel reads it as 32 bits (and wants a power of two). */
const MAX_CHUNK = 0x80000000;

/** Options of an unstriped target. */
export interface UnstripedOptions {
  /** `<number of stripes>`: the stripe count of the RAID 0 being undone. */
  stripes: number;
  /** `<chunk size>`: its chunk size, in 512-byte sectors: a power of two. */
  chunkSize: number;
  /** `<stripe #>`: the stripe to expose, counted from 0 (below `stripes`). */
  stripe: number;
  /** `<dev_path>`: the striped device. */
  device: DeviceRef;
  /** `<offset>`: the sector of `device` where the striped data starts (512-byte sectors). */
  offset: number;
}

/**
 * `unstriped <number of stripes> <chunk size> <stripe #> <dev_path> <offset>`: stripe number
 * `stripe` of the RAID 0 on `device`, its chunks laid end to end.
 */
export interface UnstripedTarget extends Target {
  readonly type: 'unstriped';
  /** `<number of stripes>`: the stripe count. */
  readonly stripes: number;
  /** `<chunk size>`: 512-byte sectors. */
  readonly chunkSize: number;
  /** `<stripe #>`: the stripe exposed, from 0. */
  readonly stripe: number;
  /** `<dev_path>`, 'major:minor' or a /dev path: the striped device. */
  readonly device: string;
  /** `<offset>`: the start sector on `device` (512-byte sectors). */
  readonly offset: number;
}

/** The status of an unstriped target: the kernel reports nothing. */
export interface UnstripedStatus extends TargetStatusBase {
  readonly type: 'unstriped';
  readonly known: true;
}

function makeUnstriped(options: UnstripedOptions, kernelRule: boolean): UnstripedTarget {
  const o = builderOptions(options, 'unstriped options', ['stripes', 'chunkSize', 'stripe', 'device', 'offset']);
  const stripes = integer(o.stripes, 'unstriped.stripes', 1, INT_MAX);
  const chunkSize = powerOfTwo(o.chunkSize, 'unstriped.chunkSize', 1, MAX_CHUNK);
  const stripe = integer(o.stripe, 'unstriped.stripe', 0, INT_MAX);
  // The kernel itself takes stripe == stripes (and any stripe of a single one), which maps past
  // the stripe set; a built target names a stripe that exists, a parsed one keeps what loaded.
  const fits = kernelRule ? stripes === 1 || stripe <= stripes : stripe < stripes;
  if (!fits) throw expectedRange(`a stripe number from 0 to ${stripes - 1}`, 'unstriped.stripe', stripe);
  const dev = device(o.device, 'unstriped.device');
  const offset = sectors(o.offset, 'unstriped.offset');
  return typedTarget({ type: 'unstriped', stripes, chunkSize, stripe, device: dev, offset, params: `${stripes} ${chunkSize} ${stripe} ${dev} ${offset}` });
}

/** Builds an unstriped target. Throws TypeError/RangeError naming the field at fault. */
export function unstriped(options: UnstripedOptions): UnstripedTarget {
  return makeUnstriped(options, false);
}

/**
 * Parses unstriped parameters ('2 128 0 7:0 0'). Takes what the kernel takes, a stripe number
 * equal to the stripe count included. Throws DmParseError naming the field.
 */
export function parseUnstriped(params: string): UnstripedTarget {
  const at = new ArgReader(params, 'unstriped');
  const stripes = at.uint('number of stripes', 1, INT_MAX);
  const chunkSize = at.uint('chunk size', 1, MAX_CHUNK);
  if ((chunkSize & (chunkSize - 1)) !== 0) throw at.fail('<chunk size> is a power of two', 'chunk size');
  const stripe = at.uint('stripe #', 0, INT_MAX);
  if (stripes > 1 && stripe > stripes) throw at.fail(`<stripe #> is at most ${stripes}`, 'stripe #');
  const dev = at.device('dev_path');
  const offset = at.uint('offset');
  at.done();
  return makeUnstriped({ stripes, chunkSize, stripe, device: dev, offset }, true);
}

/** Parses an unstriped target's status (empty). Throws DmParseError on any word. */
export function parseUnstripedStatus(text: string): UnstripedStatus {
  new ArgReader(text, 'unstriped status').done();
  return freeze({ type: 'unstriped', raw: text, known: true });
}

/** The unstriped target type. */
export const unstripedModule: TargetModule<UnstripedTarget, UnstripedStatus> = {
  type: 'unstriped',
  parse: parseUnstriped,
  parseStatus: parseUnstripedStatus,
  // The kernel's rule: the row's length divides by the stripe count, and that by the chunk size.
  checkLength(target, length, name) {
    const t = parseUnstriped(target.params);
    if (length % t.stripes !== 0 || (length / t.stripes) % t.chunkSize !== 0) {
      throw expectedRange(`a length that divides by ${t.stripes} stripes into whole ${t.chunkSize}-sector chunks`, name, length);
    }
  },
};
