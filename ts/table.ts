import { DmParseError } from './errors';
import { isTypedTarget } from './targets/args';
import { targetModules, type Target } from './targets/index';
import { checkParams, checkSector, checkTargetType, expected, expectedRange } from './validate';

/** A row given to `new Table`: a typed target, or a raw type and params. */
export type TableRowInput =
  | {
      /** `<logical_start_sector>`: the row's first sector on the device made (512-byte sectors). */
      start: number;
      /** `<num_sectors>`: how many 512-byte sectors the row maps. */
      length: number;
      /** The typed target (from the `targets` builders) mapping the row. */
      target: Target;
    }
  | {
      /** `<logical_start_sector>`: the row's first sector on the device made (512-byte sectors). */
      start: number;
      /** `<num_sectors>`: how many 512-byte sectors the row maps. */
      length: number;
      /** `<target_type>`: the kernel's target type name ('linear'). */
      type: string;
      /** `<target_args>`: the parameter string, as the kernel takes it. */
      params: string;
    };

/** One row of a table: sectors [start, start + length) mapped by `target`. */
export interface TableRow {
  /** `<logical_start_sector>`: the row's first sector on the device (512-byte sectors). */
  readonly start: number;
  /** `<num_sectors>`: how many 512-byte sectors the row maps. */
  readonly length: number;
  /** `<target_type>`: the target's type (same as `target.type`). */
  readonly type: string;
  /** `<target_args>`: the target's params (same as `target.params`). */
  readonly params: string;
  /** The typed target, or a plain `{ type, params }` for types the library does not model. */
  readonly target: Target;
}

/**
 * A device-mapper table: rows that cover sectors 0..size contiguously, without gaps or
 * overlaps (the kernel's rule, checked here before any ioctl). A Table is immutable and always
 * valid: it keeps frozen copies of its rows and targets, never the caller's objects.
 */
export class Table {
  readonly #rows: readonly TableRow[];

  /** Checks, copies and freezes the rows. Throws TypeError/RangeError on bad rows. */
  constructor(rows: readonly TableRowInput[]) {
    if (rows === adopting && adopting.length > 0) {
      // Rows the library made from the kernel's answer (see adoptRows): frozen and typed
      // already; only their order is checked again.
      let next = 0;
      for (const row of adopting) {
        if (row.start !== next) throw new RangeError(`the kernel's table has a gap or an overlap at sector ${next}`);
        next = row.start + row.length;
      }
      this.#rows = Object.freeze(adopting);
      Object.freeze(this);
      return;
    }
    if (!Array.isArray(rows)) throw expected('an array of table rows', 'rows', rows);
    if (rows.length === 0) throw expectedRange('at least one table row', 'rows', rows);
    const out: TableRow[] = [];
    let next = 0;
    for (let i = 0; i < rows.length; i++) {
      // A sparse array ([, row]) has holes that map() and forEach() would skip.
      if (!Object.prototype.hasOwnProperty.call(rows, i)) throw expected('a table row', `rows[${i}]`, undefined);
      const row = normaliseRow(rows[i], `rows[${i}]`);
      if (row.start !== next) {
        throw new RangeError(
          `Expected rows[${i}].start to be ${next} (rows must cover the device from sector 0 without gaps or overlaps) but received ${row.start}`,
        );
      }
      next = row.start + row.length;
      if (!Number.isSafeInteger(next)) throw expectedRange('a table whose size is a safe integer', `rows[${i}].length`, row.length);
      targetModules[row.type]?.checkLength?.(row.target, row.length, `rows[${i}].length`);
      out.push(row);
    }
    this.#rows = Object.freeze(out);
    Object.freeze(this);
  }

  /** The rows, in sector order (frozen). */
  get rows(): readonly TableRow[] {
    return this.#rows;
  }

  /** Size in sectors: the end of the last row. */
  get size(): number {
    const last = this.#rows[this.#rows.length - 1];
    return last === undefined ? 0 : last.start + last.length;
  }

  /** The rows whose target is of kernel type `type` ('thin-pool'), in sector order. */
  rowsOfType(type: string): readonly TableRow[] {
    return this.#rows.filter((r) => r.type === type);
  }

  /**
   * True when `other` maps the same sectors the same way: same rows, and targets that are the
   * same once read by their type's parser (so defaults made explicit and feature args in
   * another order compare equal; untyped targets compare by params text).
   */
  equals(other: Table): boolean {
    if (!(other instanceof Table)) throw expected('a Table', 'other', other);
    const a = this.#rows;
    const b = other.rows;
    return a.length === b.length && a.every((r, i) => {
      const o = b[i];
      return o !== undefined && r.start === o.start && r.length === o.length && targetsEqual(r.target, o.target);
    });
  }

  /** A new table with row `index`'s target replaced (same sectors). */
  withTarget(index: number, target: Target): Table {
    const rows = this.#editable();
    const row = rows[checkIndex(index, rows.length)];
    if (row !== undefined) rows[index] = { start: row.start, length: row.length, target };
    return new Table(rows);
  }

  /** A new table whose last row is `sectors` longer (a grown device, say). */
  grow(sectors: number): Table {
    const by = checkSector(sectors, 'sectors');
    const rows = this.#editable();
    const last = rows[rows.length - 1];
    if (last !== undefined) rows[rows.length - 1] = { ...last, length: last.length + by };
    return new Table(rows);
  }

  /** A new table with a row of `length` sectors mapped by `target` added at the end. */
  append(length: number, target: Target): Table {
    const rows = this.#editable();
    rows.push({ start: this.size, length: checkSector(length, 'length'), target });
    return new Table(rows);
  }

  #editable(): { start: number; length: number; target: Target }[] {
    return this.#rows.map((r) => ({ start: r.start, length: r.length, target: r.target }));
  }

  /** dmsetup's table format: one `start length type params` row a line. */
  toString(): string {
    return this.#rows.map(formatRow).join('\n');
  }

  /**
   * dmsetup's table format with every row's secrets hidden by its type's own rule
   * (`TargetModule.redact`: crypt's key and integrity's algorithm keys zeroed, a keyring key
   * kept), as `dmsetup table` shows it without `--showkeys`: for logs and display.
   */
  redacted(): string {
    return this.#rows.map((r) => redactedRow(r) ?? formatRow(r)).join('\n');
  }

  /**
   * Whether a row holds a secret by its type's own rule (`TargetModule.holdsSecret`: every
   * crypt row, an integrity row with an algorithm key): such a table should be created,
   * loaded and read with `{ secure: true }` (DM_SECURE_DATA), so that the kernel and the
   * library wipe their copies of it.
   */
  get holdsSecrets(): boolean {
    return this.#rows.some((r) => targetModules[r.type]?.holdsSecret?.(r.params) === true);
  }

  /**
   * Parses dmsetup table text (one row a line; blank lines ignored). Rows of target types the
   * library models become typed targets; others stay `{ type, params }`. Throws DmParseError
   * naming the field at fault.
   */
  static parse(text: string): Table {
    if (typeof text !== 'string') throw expected('table text (string)', 'text', text);
    const split = splitRows(text);
    if (split.length === 0) throw new DmParseError('a table has at least one row', text, 'rows');
    let next = 0;
    const rows = split.map(({ start, length, type, params, line: original }) => {
      // Errors carry the line with its secrets hidden (a crypt key).
      const line = redactedLine({ start, length, type, params, line: original });
      if (length === 0) throw new DmParseError('a row is at least 1 sector long', line, 'length');
      if (start !== next) throw new DmParseError(`rows must cover the device from sector 0 without gaps or overlaps: this one should start at ${next}`, line, 'start');
      next = start + length;
      if (!Number.isSafeInteger(next)) throw new DmParseError('the table is larger than a safe integer of sectors', line, 'length');
      if (!/^[^\s\0]{1,15}$/.test(type) || Buffer.byteLength(type) > 15) throw new DmParseError('a target type is 1 to 15 bytes without spaces', line, 'type');
      return { start, length, target: parseTarget(type, params) };
    });
    try {
      return new Table(rows);
    } catch (e) {
      // Starts, lengths and types are checked above: what is left is in the params.
      const shown = split.map(redactedLine).join('\n');
      throw new DmParseError(e instanceof Error ? e.message : String(e), shown, 'params');
    }
  }

  /** Builds a table from rows as the kernel reports them (typed where the library can). */
  static fromKernelRows(rows: readonly { start: number; length: number; type: string; params: string }[]): Table {
    return new Table(rows.map((r) => ({ start: r.start, length: r.length, target: parseTarget(r.type, r.params, false) })));
  }
}

/** Rows that `new Table` takes as they are (set only for the duration of adoptRows). */
let adopting: readonly TableRow[] | undefined;

/**
 * A table of rows the library made itself with `kernelRow` (start and length read from the
 * kernel's answer as exact integers): no second check and copy of each row.
 * @internal
 */
export function adoptRows(rows: TableRow[]): Table {
  adopting = rows;
  try {
    return new Table(rows);
  } finally {
    adopting = undefined;
  }
}

/**
 * One row of a table as the kernel reports it, frozen, its target typed where the library
 * can (see parseTarget with `strict` false).
 * @internal
 */
export function kernelRow(start: number, length: number, type: string, params: string): TableRow {
  const target = parseTarget(type, params, false);
  return Object.freeze({ start, length, type: target.type, params: target.params, target });
}

/**
 * A row of `length` sectors from `start` with the same (frozen) target as `row`, whose type
 * and params the kernel reported for this row too.
 * @internal
 */
export function sameTarget(row: TableRow, start: number, length: number): TableRow {
  return Object.freeze({ start, length, type: row.type, params: row.params, target: row.target });
}

/**
 * A typed target for a type the library models, a raw `{ type, params }` for others. A known
 * type whose params do not parse throws DmParseError when `strict`, else stays raw (a newer
 * kernel may print more than the library knows).
 */
export function parseTarget(type: string, params: string, strict = true): Target {
  const m = targetModules[type];
  if (!m) return Object.freeze({ type, params });
  if (strict) return m.parse(params);
  try {
    return m.parse(params);
  } catch {
    return Object.freeze({ type, params });
  }
}

/**
 * True when two targets are the same: same type, and the same params once each is read by
 * its type's parser and formatted back (the canonical form); params text otherwise.
 */
export function targetsEqual(a: Target, b: Target): boolean {
  if (a.type !== b.type) return false;
  return parseTarget(a.type, a.params, false).params === parseTarget(b.type, b.params, false).params;
}

function checkIndex(index: number, length: number): number {
  if (typeof index !== 'number') throw expected(`a row index from 0 to ${length - 1}`, 'index', index);
  if (!Number.isInteger(index) || index < 0 || index >= length) throw expectedRange(`a row index from 0 to ${length - 1}`, 'index', index);
  return index;
}

function normaliseRow(input: unknown, name: string): TableRow {
  if (typeof input !== 'object' || input === null) throw expected('{ start, length, target } or { start, length, type, params }', name, input);
  const start = checkSector(Reflect.get(input, 'start'), `${name}.start`);
  const length = checkSector(Reflect.get(input, 'length'), `${name}.length`);
  if (length === 0) throw expectedRange('a length of at least 1 sector', `${name}.length`, length);
  const target: unknown = Reflect.get(input, 'target');
  let typed: Target;
  if (target !== undefined) {
    if (typeof target !== 'object' || target === null) throw expected('a target', `${name}.target`, target);
    if (isTypedTarget(target)) {
      // Made by a builder: frozen, its fields and params agree.
      typed = target;
    } else {
      const type = checkTargetType(Reflect.get(target, 'type'), `${name}.type`);
      const params = checkParams(Reflect.get(target, 'params'), `${name}.params`);
      // Anything else is read again from its params: the caller's fields may disagree with
      // them, or change after the check; the table's may not.
      typed = parseTarget(type, params, false);
    }
  } else {
    typed = parseTarget(checkTargetType(Reflect.get(input, 'type'), `${name}.type`), checkParams(Reflect.get(input, 'params'), `${name}.params`), false);
  }
  return Object.freeze({ start, length, type: typed.type, params: typed.params, target: typed });
}

function formatRow(row: TableRow): string {
  return formatParts(row.start, row.length, row.type, row.params);
}

function formatParts(start: number, length: number, type: string, params: string): string {
  return params === '' ? `${start} ${length} ${type}` : `${start} ${length} ${type} ${params}`;
}

/** A row's line as errors may show it: its type's secrets hidden (see TargetModule.redact). */
function redactedLine(row: { start: number; length: number; type: string; params: string; line: string }): string {
  return redactedRow(row) ?? row.line;
}

/** A row formatted with its type's secrets hidden; undefined when its type hides nothing. */
function redactedRow(row: { start: number; length: number; type: string; params: string }): string | undefined {
  const redact = targetModules[row.type]?.redact;
  return redact === undefined ? undefined : formatParts(row.start, row.length, row.type, redact(row.params));
}

/**
 * `start length type rest-of-line` rows of table or status text, with the line each came from.
 * With `keepTrailing`, the rest of the line is kept to its end (a status the kernel ends with a
 * space, as thin-pool's, stays as the kernel gave it), the line break only dropped.
 */
export function splitRows(text: string, keepTrailing = false): { start: number; length: number; type: string; params: string; line: string }[] {
  const out: { start: number; length: number; type: string; params: string; line: string }[] = [];
  for (const raw of text.split('\n')) {
    const line = keepTrailing ? raw.replace(/\r$/, '').trimStart() : raw.trim();
    if (line.trim() === '') continue;
    const m = /^(\S+)\s+(\S+)\s+(\S+)(?:\s+(.*))?$/.exec(line);
    if (!m || m[1] === undefined || m[2] === undefined || m[3] === undefined) throw new DmParseError('a row is <start> <length> <type> [params]', line, 'row');
    // A bad start or length is shown without the params: they may hold a key (crypt's, integrity's).
    const shown = m[4] === undefined ? line : `${m[1]} ${m[2]} ${m[3]} …`;
    out.push({ start: parseSector(m[1], shown, 'start'), length: parseSector(m[2], shown, 'length'), type: m[3], params: m[4] ?? '', line });
  }
  return out;
}

function parseSector(word: string, line: string, field: string): number {
  if (!/^\d+$/.test(word)) throw new DmParseError(`${field} is not a sector number`, line, field);
  const n = Number(word);
  if (!Number.isSafeInteger(n)) throw new DmParseError(`${field} is larger than a safe integer`, line, field);
  return n;
}
