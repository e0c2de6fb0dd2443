import type { DeviceRef } from '../dev';
import { ArgReader, builderOptions, device, freeze, sectors, typedTarget } from './args';
import type { Target, TargetModule, TargetStatusBase } from './types';

/** Options of a linear target: the device and the sector on it where the mapping starts. */
export interface LinearOptions {
  /** `<dev_path>`: the device mapped onto: 'major:minor', a /dev path, or { major, minor }. */
  device: DeviceRef;
  /** `<offset>`: the sector of `device` where the row's first sector lands (512-byte sectors). */
  offset: number;
}

/** `linear <device> <offset>`: maps the row onto `device` from sector `offset`. */
export interface LinearTarget extends Target {
  readonly type: 'linear';
  /** `<dev_path>`, 'major:minor' or a /dev path. */
  readonly device: string;
  /** `<offset>`: the start sector on `device` (512-byte sectors). */
  readonly offset: number;
}

/** The status of a linear target: the kernel reports nothing. */
export interface LinearStatus extends TargetStatusBase {
  readonly type: 'linear';
  readonly known: true;
}

/** Builds a linear target. Throws TypeError/RangeError on bad options. */
export function linear(options: LinearOptions): LinearTarget {
  const o = builderOptions(options, 'linear options', ['device', 'offset']);
  const dev = device(o.device, 'linear.device');
  const offset = sectors(o.offset, 'linear.offset');
  return typedTarget({ type: 'linear', device: dev, offset, params: `${dev} ${offset}` });
}

/** Parses linear parameters ('7:0 2048'). Throws DmParseError naming `params`, `device` or `offset`. */
export function parseLinear(params: string): LinearTarget {
  const at = new ArgReader(params, 'linear');
  const dev = at.device('device');
  const offset = at.uint('offset');
  at.done();
  return linear({ device: dev, offset });
}

/** Parses a linear target's status (empty). */
export function parseLinearStatus(text: string): LinearStatus {
  new ArgReader(text, 'linear status').done();
  return freeze({ type: 'linear', raw: text, known: true });
}

/** The linear target type. */
export const linearModule: TargetModule<LinearTarget, LinearStatus> = { type: 'linear', parse: parseLinear, parseStatus: parseLinearStatus };
