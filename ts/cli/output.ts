/**
 * Output helpers of the `devmapper` command: text lines, aligned tables (like
 * `dmsetup info -c`: columns sized to their content), and JSON (one document, or one line per
 * item of a stream). Colour only on a terminal, never with `NO_COLOR` or `TERM=dumb`.
 * @packageDocumentation
 */
import type { CliWritable } from './verb';

/** A column of {@link formatTable}. */
export interface Column {
  /** The heading (printed unless `headings: false`). */
  readonly heading: string;
  /** 'right' for numbers; default 'left'. */
  readonly align?: 'left' | 'right';
}

/** Options of {@link formatTable}. */
export interface TableFormatOptions {
  /** Print the headings row; default true. */
  readonly headings?: boolean;
  /** Between columns; default one space. */
  readonly separator?: string;
  /** Wraps the headings row (e.g. bold on a terminal). */
  readonly styleHeadings?: (text: string) => string;
}

/**
 * Rows as aligned columns: each column as wide as its widest cell (or heading), left-aligned
 * unless `align: 'right'`, no trailing blanks. Returns the lines joined by '\n', with a final
 * '\n' (or '' when there is nothing to print).
 */
export function formatTable(columns: readonly Column[], rows: readonly (readonly string[])[], options?: TableFormatOptions): string {
  const headings = options?.headings ?? true;
  const separator = options?.separator ?? ' ';
  const all: (readonly string[])[] = headings ? [columns.map((c) => c.heading), ...rows] : [...rows];
  if (all.length === 0) return '';
  const widths = columns.map((_, i) => Math.max(0, ...all.map((r) => (r[i] ?? '').length)));
  const lines = all.map((row) => {
    const cells = columns.map((c, i) => {
      const cell = row[i] ?? '';
      const width = widths[i] ?? 0;
      if (c.align === 'right') return cell.padStart(width);
      return i === columns.length - 1 ? cell : cell.padEnd(width);
    });
    return cells.join(separator).trimEnd();
  });
  if (headings && options?.styleHeadings !== undefined) lines[0] = options.styleHeadings(lines[0] ?? '');
  return `${lines.join('\n')}\n`;
}

/**
 * JSON text of a value from the library: bigints (e.g. a crypt target's `ivOffset`) become
 * decimal strings, `undefined` fields are left out, Maps become objects and Sets arrays.
 */
export function toJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (v instanceof Map) return Object.fromEntries(v as Map<PropertyKey, unknown>);
    if (v instanceof Set) return [...(v as Set<unknown>)];
    return v;
  }, indent);
}

/** Whether output to `stream` may use colour: a terminal, without `NO_COLOR` or `TERM=dumb`. */
export function colourWanted(stream: CliWritable, env: Readonly<Record<string, string | undefined>>): boolean {
  if (stream.isTTY !== true) return false;
  if (env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== '') return false;
  return env['TERM'] !== 'dumb';
}

/** Output on one stream: text lines, aligned tables, JSON. */
export class Output {
  /** The stream written to. */
  readonly stream: CliWritable;
  /** Colour and styles are used (a terminal, no `NO_COLOR`). */
  readonly colour: boolean;

  constructor(stream: CliWritable, env: Readonly<Record<string, string | undefined>>) {
    this.stream = stream;
    this.colour = colourWanted(stream, env);
  }

  /** The terminal's width, when the stream is one. */
  get columns(): number | undefined {
    return this.stream.isTTY === true ? this.stream.columns : undefined;
  }

  /** Writes text as it is. */
  write(text: string): void {
    if (text !== '') this.stream.write(text);
  }

  /** Writes one line (a '\n' is added). */
  line(text = ''): void {
    this.stream.write(`${text}\n`);
  }

  /** Writes an aligned table ({@link formatTable}); headings bold on a terminal. */
  table(columns: readonly Column[], rows: readonly (readonly string[])[], options?: TableFormatOptions): void {
    this.write(formatTable(columns, rows, { styleHeadings: (t) => this.bold(t), ...options }));
  }

  /** Writes one JSON document (indented), for `--json`. */
  json(value: unknown): void {
    this.stream.write(`${toJson(value, 2)}\n`);
  }

  /** Writes one compact JSON line, for streams of items under `--json` (one line each). */
  jsonLine(value: unknown): void {
    this.stream.write(`${toJson(value)}\n`);
  }

  /** Bold text on a terminal, plain otherwise. */
  bold(text: string): string {
    return this.paint('1', text);
  }

  /** Dim text on a terminal, plain otherwise. */
  dim(text: string): string {
    return this.paint('2', text);
  }

  /** Red text on a terminal, plain otherwise. */
  red(text: string): string {
    return this.paint('31', text);
  }

  /** Green text on a terminal, plain otherwise. */
  green(text: string): string {
    return this.paint('32', text);
  }

  /** Yellow text on a terminal, plain otherwise. */
  yellow(text: string): string {
    return this.paint('33', text);
  }

  /** Text in an SGR style (`'1'` bold, `'31'` red, ...) on a terminal, plain otherwise. */
  paint(sgr: string, text: string): string {
    return this.colour && text !== '' ? `\u001b[${sgr}m${text}\u001b[0m` : text;
  }
}
