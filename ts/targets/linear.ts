import { formatDeviceRef, type DeviceRef } from '../dev';
import { DmParseError } from '../errors';
import { checkSector } from '../validate';
import type { Target } from './types';

/** Options of a linear target: the device and the sector on it where the mapping starts. */
export interface LinearOptions {
  device: DeviceRef;
  offset: number;
}

/** `linear <device> <offset>`: maps the row onto `device` from sector `offset`. */
export interface LinearTarget extends Target {
  readonly type: 'linear';
  /** 'major:minor' or a /dev path. */
  readonly device: string;
  readonly offset: number;
}

/** Builds a linear target. Throws TypeError/RangeError on bad options. */
export function linear(options: LinearOptions): LinearTarget {
  if (typeof options !== 'object' || options === null) throw new TypeError(`Expected { device, offset } for linear options but received ${String(options)}`);
  const device = formatDeviceRef(options.device, 'linear.device');
  const offset = checkSector(options.offset, 'linear.offset');
  return { type: 'linear', device, offset, params: `${device} ${offset}` };
}

/** Parses linear parameters ('7:0 2048'). Throws DmParseError naming `params`, `device` or `offset`. */
export function parseLinear(params: string): LinearTarget {
  const words = params.trim().split(/\s+/);
  if (words.length !== 2 || words[0] === undefined || words[1] === undefined) throw new DmParseError('linear takes <device> <offset>', params, 'params');
  let device: string;
  try {
    device = formatDeviceRef(words[0], 'linear.device');
  } catch (e) {
    throw new DmParseError(e instanceof Error ? e.message : String(e), params, 'device');
  }
  if (!/^\d+$/.test(words[1])) throw new DmParseError('linear offset is not a sector number', params, 'offset');
  const offset = Number(words[1]);
  if (!Number.isSafeInteger(offset)) throw new DmParseError('linear offset is larger than a safe integer', params, 'offset');
  return linear({ device, offset });
}
