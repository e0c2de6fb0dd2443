/**
 * dm-thin's thin device: a thinly provisioned device (or snapshot) of a thin-pool, made by the
 * pool's `create_thin`/`create_snap` messages and activated with this target. Pure data:
 * nothing here touches the kernel.
 */
import type { DeviceRef } from '../dev';
import { expectedRange } from '../validate';
import { ArgReader, device, builderOptions, freeze, integer, join, typedTarget } from './args';
import { THIN_MAX_DEVICE_ID } from './thin-pool';
import type { Target, TargetModule, TargetStatusBase } from './types';

/** Options of a thin target. */
export interface ThinOptions {
  /** `<pool dev>`: the thin-pool device (a device whose table is a `thin-pool`). */
  poolDevice: DeviceRef;
  /** `<dev id>`: the thin device's id in the pool (24 bits: 0 to 16777215), made by `create_thin` or `create_snap`. */
  deviceId: number;
  /**
   * `<external origin dev>`: a device outside the pool read as the origin of this thin device (an
   * external snapshot): reads of blocks the thin device has not provisioned go to it; it is never
   * written. It must not change while in use.
   */
  externalOriginDevice?: DeviceRef;
}

/** `thin <pool dev> <dev id> [<external origin dev>]`: a thin device of a pool. */
export interface ThinTarget extends Target {
  readonly type: 'thin';
  /** `<pool dev>`, 'major:minor' or a /dev path: the pool. */
  readonly poolDevice: string;
  /** `<dev id>`: the thin device's id in the pool (24 bits). */
  readonly deviceId: number;
  /** `<external origin dev>`, 'major:minor' or a /dev path, or null when the table has none. */
  readonly externalOriginDevice: string | null;
}

/**
 * What the kernel prints as a thin row's table while its pool is in fail mode: `Fail` in
 * place of the params (thin_status answers `Fail` before it looks at what is asked). It
 * names no pool nor device, so it cannot be loaded again: reload the row from its own table.
 */
export interface ThinFailedTarget extends Target {
  readonly type: 'thin';
  /** `Fail`. */
  readonly params: 'Fail';
  /** The pool is in fail mode. */
  readonly failed: true;
}

/** A thin device whose pool failed (`Fail`), or whose status the kernel could not read (`Error`). */
export interface ThinFailedStatus extends TargetStatusBase {
  readonly type: 'thin';
  readonly known: true;
  /** The whole status is one word: `Fail` (the pool is in fail mode) or `Error` (the mapping could not be read). */
  readonly failed: 'Fail' | 'Error';
  /** Words after the state (a newer kernel's), kept as given. */
  readonly extra: readonly string[];
}

/** The status of a working thin device. */
export interface ThinRunningStatus extends TargetStatusBase {
  readonly type: 'thin';
  readonly known: true;
  /** False: the thin device works and the fields below are the kernel's. */
  readonly failed: false;
  /** `<nr mapped sectors>`: 512-byte sectors mapped to the pool's data blocks (whole blocks: provisioned blocks × block size). */
  readonly mappedSectors: number;
  /** `<highest mapped sector>`: the last 512-byte sector of the highest provisioned block, or null when nothing is mapped (`-`). */
  readonly highestMappedSector: number | null;
  /** Words after the known fields (a newer kernel's), kept as given. */
  readonly extra: readonly string[];
}

/** The status of a thin target: working, or failed (narrow on `failed`). */
export type ThinStatus = ThinRunningStatus | ThinFailedStatus;

/**
 * Builds a thin target: `<pool dev> <dev id> [<external origin dev>]`. Throws
 * TypeError/RangeError naming the field at fault.
 */
export function thin(options: ThinOptions): ThinTarget {
  const o = builderOptions(options, 'thin options', ['poolDevice', 'deviceId', 'externalOriginDevice']);
  const poolDevice = device(o.poolDevice, 'thin.poolDevice');
  const deviceId = integer(o.deviceId, 'thin.deviceId', 0, THIN_MAX_DEVICE_ID);
  const externalOriginDevice = o.externalOriginDevice === undefined ? null : device(o.externalOriginDevice, 'thin.externalOriginDevice');
  // The kernel compares the two words (`Error setting origin device`).
  if (externalOriginDevice === poolDevice) throw expectedRange(`another device than the pool (${poolDevice})`, 'thin.externalOriginDevice', o.externalOriginDevice);
  const params = join([poolDevice, deviceId, externalOriginDevice ?? undefined]);
  return typedTarget({ type: 'thin', poolDevice, deviceId, externalOriginDevice, params });
}

/**
 * Parses thin parameters ('253:0 1', '253:0 2 7:3'), and the `Fail` the kernel prints as the
 * table of a thin row whose pool failed. Throws DmParseError naming the field.
 */
export function parseThin(params: string): ThinTarget | ThinFailedTarget {
  const at = new ArgReader(params, 'thin');
  if (at.peek() === 'Fail' && at.remaining === 1) return freeze({ type: 'thin', params: 'Fail', failed: true });
  const poolDevice = at.device('pool dev');
  const deviceId = at.uint('dev id', 0, THIN_MAX_DEVICE_ID);
  const externalOriginDevice = at.remaining > 0 ? at.device('external origin dev') : undefined;
  at.done();
  if (externalOriginDevice === poolDevice) throw at.fail('<external origin dev> is the pool device', 'external origin dev');
  return thin({ poolDevice, deviceId, externalOriginDevice });
}

/**
 * Parses a thin target's status ('2048 4095', '0 -', 'Fail', 'Error'). Throws DmParseError
 * naming the field.
 */
export function parseThinStatus(text: string): ThinStatus {
  const at = new ArgReader(text, 'thin status');
  const first = at.peek();
  if (first === 'Fail' || first === 'Error') {
    at.word('state');
    return freeze({ type: 'thin', raw: text, known: true, failed: first, extra: at.rest() });
  }
  const mappedSectors = at.uint('nr mapped sectors');
  let highestMappedSector: number | null = null;
  if (at.peek() === '-') at.word('highest mapped sector');
  else highestMappedSector = at.uint('highest mapped sector');
  return freeze({ type: 'thin', raw: text, known: true, failed: false, mappedSectors, highestMappedSector, extra: at.rest() });
}

/** The thin target type. */
export const thinModule: TargetModule<ThinTarget | ThinFailedTarget, ThinStatus> = { type: 'thin', parse: parseThin, parseStatus: parseThinStatus };
