/**
 * The contract of the `devmapper` command's verbs: how a verb is written, what it is given,
 * how it reports, and what the exit codes mean. Additive changes only: verbs written against
 * this file keep working.
 *
 * ## Writing a verb
 * One module per verb (or per family of verbs) under `ts/cli/verbs/`, exporting a {@link Verb}
 * made with {@link defineVerb}, listed once in `ts/cli/verbs/index.ts` (`VERBS`):
 *
 * ```ts
 * export const deps = defineVerb({
 *   name: 'deps',
 *   summary: 'List the devices a device is built on',
 *   usage: 'NAME',
 *   options: { inactive: { type: 'boolean', help: 'the inactive table\'s devices' } },
 *   positionals: { min: 1, max: 1 },
 *   async run(ctx) {
 *     const dm = ctx.syncClient();
 *     const deps = dm.deps(ctx.device(0), { inactive: ctx.options.inactive === true });
 *     if (ctx.global.json) ctx.out.json(deps);
 *     else for (const d of deps) ctx.out.line(formatDev(d));
 *     return ExitCode.ok;
 *   },
 * });
 * ```
 *
 * - Options are parsed by `node:util.parseArgs` in strict mode: an option the verb does not
 *   declare is a usage error (exit 2), never ignored. Verbs do not declare the global options
 *   (`--json`, `-h/--help`, `--udev`, `--control`); these are accepted before or after the verb
 *   and reach the verb as `ctx.global`. `--version` is accepted before a verb only.
 * - The framework checks the count of operands against `positionals` before `run`.
 * - `run` maps arguments onto the public API (`DeviceMapper`, `Table`, ...; never the binding)
 *   and formats its answer: text on `ctx.out` (the human form), or one JSON document with
 *   `ctx.out.json(value)` when `ctx.global.json` (streams: one `ctx.out.jsonLine(value)` per
 *   event). It returns the exit code (usually `ExitCode.ok`).
 * - Failures are thrown, not printed: a {@link UsageError} (bad arguments, exit 2, the verb's
 *   usage follows the message on stderr), a {@link CliError} (a message and a chosen exit code),
 *   or whatever the library throws: `DmError` (exit 1, or 3 for ENXIO, "no such device"; printed
 *   as `devmapper: VERB DEVICE: CODE (description)`, e.g.
 *   `devmapper: remove vol: EBUSY (device or resource busy)`; ENXIO of a table load exits 1:
 *   it may be about a device the table names), `DmParseError`, and the `TypeError` and
 *   `RangeError` of the library's checks of input ("Expected X for Y but received Z", made
 *   before any ioctl: exit 2; any other error exits 1). Validate all input before the first
 *   ioctl, so that a usage error has changed nothing.
 * - Clients are opened lazily ({@link VerbContext.client}, {@link VerbContext.syncClient}) with
 *   the global `--control` and `--udev`, and closed by the framework when `run` ends.
 * - Long-running verbs (wait, watch) end when {@link VerbContext.signal} aborts (SIGINT or
 *   SIGTERM for the bin) and return {@link ExitCode.interrupted} then; an `AbortError` thrown
 *   out of `run` is told as `interrupted`, exit 130 (`readInput` rejects with one). The bin ends
 *   the process at a second signal.
 * - Tests run `main()` in-process with captured streams: `test/unit/cli/harness.ts` (`runCli`).
 *
 * ## Exit codes
 * See {@link ExitCode}: 0 ok, 1 kernel or device-mapper failure, 2 usage error, 3 no such
 * device, 130 interrupted.
 * @packageDocumentation
 */
import type { DeviceMapper } from '../client';
import type { DevId } from '../dev';
import type { DeviceMapperSync } from '../sync';
import type { UdevMode } from '../udev';
import type { Output } from './output';

/** Exit codes of `devmapper` (documented in `devmapper --help` and the README). */
export const ExitCode = {
  /** Done. */
  ok: 0,
  /** The kernel or the device-mapper refused or failed (the message names the errno). */
  failure: 1,
  /** Bad arguments, options, or table text: nothing was done. */
  usage: 2,
  /** The device named does not exist (the kernel said ENXIO). */
  notFound: 3,
  /** Interrupted (SIGINT/SIGTERM) while waiting or watching. */
  interrupted: 130,
} as const;

/** One of the {@link ExitCode} values (a verb may return another whole number 0-255). */
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** A writable stream as the command uses it: text in; `isTTY` and `columns` when a terminal. */
export interface CliWritable {
  /** Writes text (the command writes whole lines). */
  write(chunk: string): unknown;
  /** True when the stream is a terminal (colour is used then only). */
  readonly isTTY?: boolean;
  /** The terminal's width, when it is one. */
  readonly columns?: number;
}

/** The command's streams and environment: the process's for the bin, others in tests. */
export interface CliIo {
  /** Answers: text, or JSON with `--json`. */
  readonly stdout: CliWritable;
  /** Errors and warnings. */
  readonly stderr: CliWritable;
  /** Input, read only by verbs that take it (a table for `create` and `load`). */
  readonly stdin: NodeJS.ReadableStream;
  /** The environment (`NO_COLOR`, `TERM`). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Ends waits and watches (the bin aborts it on SIGINT and SIGTERM). */
  readonly signal?: AbortSignal;
}

/** One option of a verb: its `node:util.parseArgs` config, with its help. */
export interface OptionSpec {
  /** A boolean flag, or an option that takes a value. */
  readonly type: 'string' | 'boolean';
  /** One-letter alias (`-c`). */
  readonly short?: string;
  /** May be given several times (the value is then an array). */
  readonly multiple?: boolean;
  /** The value's placeholder in the help (`PATH`); for string options. */
  readonly value?: string;
  /** One line of help. */
  readonly help: string;
}

/** A verb's options by long name. */
export type OptionSpecs = { readonly [name: string]: OptionSpec };

/** The parsed values of a verb's options: absent when not given. */
export type OptionValues<O extends OptionSpecs> = {
  readonly [K in keyof O]?: O[K] extends { readonly type: 'string' }
    ? O[K] extends { readonly multiple: true } ? string[] : string
    : O[K] extends { readonly multiple: true } ? boolean[] : boolean;
};

/** How many operands a verb takes (`max` may be `Infinity`). */
export interface Arity {
  readonly min: number;
  readonly max: number;
}

/** A verb of the `devmapper` command. Make one with {@link defineVerb}. */
export interface Verb<O extends OptionSpecs = OptionSpecs> {
  /** `devmapper NAME ...`. */
  readonly name: string;
  /** Other names the verb answers to. */
  readonly aliases?: readonly string[];
  /** One line for the verb list of `devmapper --help`. */
  readonly summary: string;
  /** The operands after the verb's name, for the usage line: `'NAME [TABLE_FILE]'`. */
  readonly usage: string;
  /** More help, printed after the usage line (paragraphs of text, lines under 100 columns). */
  readonly description?: string;
  /** The verb's own options (not the global ones). */
  readonly options: O;
  /** How many operands it takes. */
  readonly positionals: Arity;
  /**
   * The verb parses its own arguments: everything after its name reaches `ctx.args` as it was
   * given (no option parsing, no arity check; global options count only before the verb).
   * For a verb that hands a command line on, like `sandbox -- COMMAND...`. Its `options`
   * should then be empty.
   */
  readonly rawArgs?: boolean;
  /**
   * The global options this verb has no use for (a verb that opens no control node has none
   * for `--udev` and `--control`): given, they are a usage error, never silently ignored.
   */
  readonly refusesGlobals?: readonly ('json' | 'udev' | 'control')[];
  /** Does the work; returns the exit code. Throws {@link UsageError}, {@link CliError} or the library's errors. */
  run(ctx: VerbContext<O>): Promise<number>;
}

/** Options every verb accepts. */
export interface GlobalOptions {
  /** `--json`: answer with one JSON document (streams: one JSON line per item). */
  readonly json: boolean;
  /** `--udev MODE`: the clients' udev mode (`auto`, `sync`, `fallback`, `off`); the library's default when absent. */
  readonly udev: UdevMode | undefined;
  /** `--control PATH`: the control node; `/dev/mapper/control` when absent. */
  readonly control: string | undefined;
}

/** What a verb's `run` is given. */
export interface VerbContext<O extends OptionSpecs = OptionSpecs> {
  /** The verb being run. */
  readonly verb: Verb<O>;
  /** Its parsed options. */
  readonly options: OptionValues<O>;
  /** Its operands, in order (arity already checked). */
  readonly args: readonly string[];
  /** The global options. */
  readonly global: GlobalOptions;
  /** The command's streams and environment. */
  readonly io: CliIo;
  /** Output helpers on stdout (text lines, aligned tables, JSON). */
  readonly out: Output;
  /** Aborted when the command should stop (SIGINT/SIGTERM for the bin); never otherwise. */
  readonly signal: AbortSignal;
  /** The asynchronous client, opened on first use (waits and watches need it), closed after `run`. */
  client(): Promise<DeviceMapper>;
  /** The synchronous client, opened on first use, closed after `run`. */
  syncClient(): DeviceMapperSync;
  /**
   * Operand `index` as a device id: `major:minor` selects by device number, anything else is
   * a name. Absent operand: a usage error.
   */
  device(index: number): DevId;
  /** Reads the whole of stdin as text. */
  readInput(): Promise<string>;
  /** Writes `devmapper: VERB: message` on stderr (a warning; the verb goes on). */
  warn(message: string): void;
  /** A usage error about this verb, to throw: exit 2, with the verb's usage on stderr. */
  usageError(message: string): UsageError;
}

/**
 * Bad arguments: exit 2, nothing done. Printed as `devmapper: VERB: message`, then the verb's
 * usage (or the command's, when there is no verb).
 */
export class UsageError extends Error {
  /** The verb whose usage is printed after the message, when there is one. */
  readonly verb: string | undefined;

  constructor(message: string, verb?: string) {
    super(message);
    this.name = 'UsageError';
    this.verb = verb;
  }
}

/** A failure with a chosen exit code and message (`devmapper: VERB: message` on stderr). */
export class CliError extends Error {
  /** The exit code. */
  readonly exitCode: number;

  constructor(message: string, exitCode: number = ExitCode.failure) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** Names the global options take; a verb declaring one of them is refused at registration. */
export const GLOBAL_OPTION_NAMES: readonly string[] = ['json', 'help', 'udev', 'control', 'version'];

/** Makes a verb, keeping its option types (so `ctx.options` is typed). */
export function defineVerb<const O extends OptionSpecs>(verb: Verb<O>): Verb<O> {
  return verb;
}

/** One subcommand of a verb (`loop attach`, `stats create`): its operands, how many, and the options it takes. */
export interface SubcommandSpec {
  /** The operands, as the usage shows them ('NAME [REGION]'; '' for none). */
  readonly operands: string;
  /** Fewest operands. */
  readonly min: number;
  /** Most operands. */
  readonly max: number;
  /** The verb's options that apply to it. */
  readonly options: readonly string[];
}

/**
 * The subcommand `ctx.args[0]` names among `subcommands` of `verb`, with its operand count and
 * the options given checked against it: a usage error otherwise (an option of another
 * subcommand never widens what this one does).
 */
export function subcommandOf<S extends string>(ctx: VerbContext, verb: string, subcommands: Readonly<Record<S, SubcommandSpec>>): S {
  const name = ctx.args[0];
  const isSubcommand = (n: string | undefined): n is S => n !== undefined && Object.hasOwn(subcommands, n);
  if (!isSubcommand(name)) throw ctx.usageError(`expects one of ${Object.keys(subcommands).join(', ')}, got ${JSON.stringify(name)}`);
  const spec = subcommands[name];
  const operands = ctx.args.length - 1;
  if (operands < spec.min || operands > spec.max) throw ctx.usageError(`${verb} ${name} expects ${spec.operands || 'no operands'}, got ${operands} operand${operands === 1 ? '' : 's'}`);
  for (const key of Object.keys(ctx.options)) if (!spec.options.includes(key)) throw ctx.usageError(`--${key} does not apply to ${verb} ${name}`);
  return name;
}
