import { splitRows } from './table';
import { parseTargetStatus, type TargetStatus } from './targets/index';

/** One status row: the sectors it covers and the target's status. */
export interface StatusRow {
  /** The row's first sector on the device (512-byte sectors), as in its table. */
  readonly start: number;
  /** How many 512-byte sectors the row covers. */
  readonly length: number;
  /** The row's target type ('thin-pool'); a typed `status` has the same `type`. */
  readonly type: string;
  /** Typed (`known: true`, narrow on `type`) for the target types the library models, raw words otherwise. */
  readonly status: TargetStatus;
}

/**
 * Parses status text as `dmsetup status` prints it for one device (one
 * `start length type status...` row a line) into typed rows, the same rows
 * `DeviceMapper.status` returns (each status's `raw` is the rest of its line, trailing space
 * and all, as the kernel gave it). Text of a modelled type that does not read as that type's
 * status throws DmParseError naming the field (`DeviceMapper.status` keeps such a row raw
 * instead).
 */
export function parseStatus(text: string): StatusRow[] {
  return splitRows(text, true).map((r) => Object.freeze({ start: r.start, length: r.length, type: r.type, status: parseTargetStatus(r.type, r.params) }));
}

/** One status row from the kernel's answer: typed where the library can read it, raw otherwise. */
export function kernelStatusRow(start: number, length: number, type: string, params: string): StatusRow {
  return Object.freeze({ start, length, type, status: parseTargetStatus(type, params, false) });
}

/** Status rows from the kernel's answer: typed where the library can read them, raw otherwise. */
export function statusRowsFromKernel(rows: readonly { start: number; length: number; type: string; params: string }[]): StatusRow[] {
  return rows.map((r) => kernelStatusRow(r.start, r.length, r.type, r.params));
}
