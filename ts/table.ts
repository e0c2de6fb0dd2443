import { DmParseError } from './errors';
import { targetParsers, type Target } from './targets/index';
import { checkParams, checkSector, checkTargetType, expected, expectedRange } from './validate';

/** A row given to `new Table`: a typed target, or a raw type and params. */
export type TableRowInput =
  | { start: number; length: number; target: Target }
  | { start: number; length: number; type: string; params: string };

/** One row of a table: sectors [start, start + length) mapped by `target`. */
export interface TableRow {
  readonly start: number;
  readonly length: number;
  /** The target's type (same as `target.type`). */
  readonly type: string;
  /** The target's params (same as `target.params`). */
  readonly params: string;
  /** The typed target, or a plain `{ type, params }` for types the library does not model. */
  readonly target: Target;
}

/**
 * A device-mapper table: rows that cover sectors 0..size contiguously, without gaps or
 * overlaps (the kernel's rule, checked here before any ioctl).
 */
export class Table {
  /** The rows, in sector order. */
  readonly rows: readonly TableRow[];

  /** Checks and freezes the rows. Throws TypeError/RangeError on bad rows. */
  constructor(rows: readonly TableRowInput[]) {
    if (!Array.isArray(rows)) throw expected('an array of table rows', 'rows', rows);
    if (rows.length === 0) throw expectedRange('at least one table row', 'rows', rows);
    let next = 0;
    this.rows = Object.freeze(
      rows.map((input: unknown, i) => {
        const row = normaliseRow(input, `rows[${i}]`);
        if (row.start !== next) {
          throw new RangeError(
            `Expected rows[${i}].start to be ${next} (rows must cover the device from sector 0 without gaps or overlaps) but received ${row.start}`,
          );
        }
        next = row.start + row.length;
        if (!Number.isSafeInteger(next)) throw expectedRange('a table whose size is a safe integer', `rows[${i}].length`, row.length);
        return row;
      }),
    );
  }

  /** Size in sectors: the end of the last row. */
  get size(): number {
    const last = this.rows[this.rows.length - 1];
    return last === undefined ? 0 : last.start + last.length;
  }

  /** dmsetup's table format: one `start length type params` row a line. */
  toString(): string {
    return this.rows.map(formatRow).join('\n');
  }

  /**
   * Parses dmsetup table text (one row a line; blank lines ignored). Rows of target types the
   * library models become typed targets; others stay `{ type, params }`. Throws DmParseError.
   */
  static parse(text: string): Table {
    if (typeof text !== 'string') throw expected('table text (string)', 'text', text);
    const rows = splitRows(text).map(({ start, length, type, params }) => ({ start, length, target: parseTarget(type, params) }));
    if (rows.length === 0) throw new DmParseError('a table has at least one row', text, 'rows');
    try {
      return new Table(rows);
    } catch (e) {
      throw new DmParseError(e instanceof Error ? e.message : String(e), text, 'start');
    }
  }

  /** Builds a table from rows as the kernel reports them (typed where the library can). */
  static fromKernelRows(rows: readonly { start: number; length: number; type: string; params: string }[]): Table {
    return new Table(rows.map((r) => ({ start: r.start, length: r.length, target: parseTarget(r.type, r.params, false) })));
  }
}

/**
 * A typed target for a type the library models, a raw `{ type, params }` for others. A known
 * type whose params do not parse throws DmParseError when `strict`, else stays raw (a newer
 * kernel may print more than the library knows).
 */
export function parseTarget(type: string, params: string, strict = true): Target {
  const parser = targetParsers[type];
  if (!parser) return { type, params };
  if (strict) return parser(params);
  try {
    return parser(params);
  } catch {
    return { type, params };
  }
}

function normaliseRow(input: unknown, name: string): TableRow {
  if (typeof input !== 'object' || input === null) throw expected('{ start, length, target } or { start, length, type, params }', name, input);
  const start = checkSector(Reflect.get(input, 'start'), `${name}.start`);
  const length = checkSector(Reflect.get(input, 'length'), `${name}.length`);
  if (length === 0) throw expectedRange('a length of at least 1 sector', `${name}.length`, length);
  const target: unknown = Reflect.get(input, 'target');
  let type: unknown;
  let params: unknown;
  if (target !== undefined) {
    if (typeof target !== 'object' || target === null) throw expected('a target', `${name}.target`, target);
    type = Reflect.get(target, 'type');
    params = Reflect.get(target, 'params');
  } else {
    type = Reflect.get(input, 'type');
    params = Reflect.get(input, 'params');
  }
  const checkedType = checkTargetType(type, `${name}.type`);
  const checkedParams = checkParams(params, `${name}.params`);
  const typed: Target =
    target !== undefined && typeof target === 'object' && target !== null ? (target as Target) : { type: checkedType, params: checkedParams };
  return Object.freeze({ start, length, type: checkedType, params: checkedParams, target: typed });
}

function formatRow(row: TableRow): string {
  return row.params === '' ? `${row.start} ${row.length} ${row.type}` : `${row.start} ${row.length} ${row.type} ${row.params}`;
}

/** `start length type rest-of-line` rows of table or status text. */
export function splitRows(text: string): { start: number; length: number; type: string; params: string }[] {
  const out: { start: number; length: number; type: string; params: string }[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const m = /^(\S+)\s+(\S+)\s+(\S+)(?:\s+(.*))?$/.exec(line);
    if (!m || m[1] === undefined || m[2] === undefined || m[3] === undefined) throw new DmParseError('a row is <start> <length> <type> [params]', line, 'row');
    out.push({ start: parseSector(m[1], line, 'start'), length: parseSector(m[2], line, 'length'), type: m[3], params: m[4] ?? '' });
  }
  return out;
}

function parseSector(word: string, line: string, field: string): number {
  if (!/^\d+$/.test(word)) throw new DmParseError(`${field} is not a sector number`, line, field);
  const n = Number(word);
  if (!Number.isSafeInteger(n)) throw new DmParseError(`${field} is larger than a safe integer`, line, field);
  return n;
}
