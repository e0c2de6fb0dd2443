import { splitRows } from './table';

/**
 * A target's status. Target types the library models get typed fields in their own
 * modules; every status keeps the kernel's text in `raw`.
 */
export interface TargetStatus {
  /** The target type the status belongs to. */
  readonly type: string;
  /** The status text exactly as the kernel gave it. */
  readonly raw: string;
}

/** One status row: the sectors it covers and the target's status. */
export interface StatusRow {
  readonly start: number;
  readonly length: number;
  readonly type: string;
  readonly status: TargetStatus;
}

/** The status of one row from its type and the kernel's status text. */
export function parseTargetStatus(type: string, text: string): TargetStatus {
  return Object.freeze({ type, raw: text });
}

/**
 * Parses status text as `dmsetup status` prints it for one device (one
 * `start length type status...` row a line) into the rows `DeviceMapper.status` returns.
 * Throws DmParseError.
 */
export function parseStatus(text: string): StatusRow[] {
  return splitRows(text).map((r) => Object.freeze({ start: r.start, length: r.length, type: r.type, status: parseTargetStatus(r.type, r.params) }));
}
