#!/usr/bin/env node
/**
 * `devmapper`: the device-mapper from the command line (dmsetup's everyday verbs, `--json`).
 *
 * ```
 * devmapper [--json] [--udev MODE] [--control PATH] VERB [options] [operands]
 * devmapper help VERB | devmapper VERB --help | devmapper --version
 * ```
 *
 * {@link main} runs the command in-process against the given streams and resolves with its
 * exit code (see `ExitCode` in ./verb); run as a program, this file calls it with the process's
 * streams and exits with that code.
 * @packageDocumentation
 */
import { parseArgs } from 'node:util';
import { DeviceMapper } from '../client';
import type { DevId } from '../dev';
import { deviceOperand } from './args';
import type { DeviceMapperSync } from '../sync';
import type { UdevMode } from '../udev';
import { failureOf } from './failure';
import { Output } from './output';
import { VERBS, findVerb } from './verbs/index';
import { packageVersion } from './version';
import { ExitCode, UsageError, type CliIo, type GlobalOptions, type OptionSpecs, type OptionValues, type Verb, type VerbContext } from './verb';

export type { CliIo, CliWritable } from './verb';

const GLOBAL_OPTIONS = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  udev: { type: 'string' },
  control: { type: 'string' },
} as const;

const UDEV_MODES: readonly UdevMode[] = ['auto', 'sync', 'fallback', 'off'];

/** The exit codes, as `devmapper --help` and the README list them. */
export const EXIT_CODES_HELP = `Exit status:
  0    done
  1    the kernel refused or failed (the message names the errno and the device)
  2    usage error: bad verb, option, operand or table text; nothing was done
  3    no such device (ENXIO)
  130  interrupted (SIGINT/SIGTERM) while waiting or watching`;

const GLOBAL_HELP = `Global options (before or after the verb):
  --json            answer with one JSON document (streams: one JSON line per item)
  --udev MODE       /dev/mapper upkeep: auto (default), sync, fallback or off
  --control PATH    the control node (default /dev/mapper/control)
  -h, --help        show help (devmapper help VERB: a verb's help)
  --version         print the package's version (before a verb)`;

/** `devmapper --help`. */
export function commandHelp(): string {
  const width = Math.max(...VERBS.map((v) => v.name.length));
  const verbs = VERBS.map((v) => `  ${v.name.padEnd(width)}  ${v.summary}`).join('\n');
  return `Usage: devmapper [global options] VERB [options] [operands]

Drives the Linux device-mapper through its ioctls (no dmsetup needed). Devices are named by
name, or by major:minor where a verb says so.

Verbs:
${verbs}

${GLOBAL_HELP}

${EXIT_CODES_HELP}
`;
}

/** The usage line of a verb. */
export function usageLine(verb: Verb): string {
  const options = Object.keys(verb.options).length > 0 ? ' [options]' : '';
  return `Usage: devmapper ${verb.name}${options}${verb.usage === '' ? '' : ` ${verb.usage}`}`;
}

/** `devmapper VERB --help`. */
export function verbHelp(verb: Verb): string {
  const rows = Object.entries(verb.options).map(([name, spec]) => {
    const short = spec.short === undefined ? '    ' : `-${spec.short}, `;
    const value = spec.type === 'string' ? ` ${spec.value ?? 'VALUE'}` : '';
    return [`  ${short}--${name}${value}`, spec.help];
  });
  const width = Math.max(0, ...rows.map((r) => (r[0] ?? '').length));
  const options = rows.length === 0 ? '' : `\nOptions:\n${rows.map(([a, b]) => `${(a ?? '').padEnd(width)}  ${b ?? ''}`).join('\n')}\n`;
  const description = verb.description === undefined ? '' : `\n${verb.description.trimEnd()}\n`;
  return `${usageLine(verb)}\n\n${verb.summary}.\n${description}${options}\n${GLOBAL_HELP}\n`;
}

/** The global options before the verb, the verb's position, and what follows it. */
function splitAtVerb(argv: readonly string[]): { before: string[]; verb: string | undefined; after: string[] } {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') return { before: argv.slice(0, i), verb: argv[i + 1], after: argv.slice(i + 2) };
    if (!arg.startsWith('-') || arg === '-') return { before: argv.slice(0, i), verb: arg, after: argv.slice(i + 1) };
    if ((arg === '--udev' || arg === '--control') && i + 1 < argv.length) i++; // its value
  }
  return { before: [...argv], verb: undefined, after: [] };
}

/** parseArgs's message, first line only, without its advice about '--'. */
function parseMessage(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const first = text.split('\n')[0] ?? text;
  const advice = first.indexOf('. To specify a positional');
  return advice >= 0 ? first.slice(0, advice) : first;
}

function globalsOf(values: { json?: boolean | undefined; udev?: string | undefined; control?: string | undefined }, verb: string | undefined): GlobalOptions {
  let udev: UdevMode | undefined;
  if (values.udev !== undefined) {
    udev = UDEV_MODES.find((m) => m === values.udev);
    if (udev === undefined) throw new UsageError(`--udev expects one of ${UDEV_MODES.join(', ')}, got ${JSON.stringify(values.udev)}`, verb);
  }
  if (values.control !== undefined && values.control === '') throw new UsageError('--control expects a path', verb);
  return { json: values.json === true, udev, control: values.control };
}

/** The global options, refused when the verb has no use for one that was given. */
function refuseGlobals(verb: Verb, global: GlobalOptions): GlobalOptions {
  for (const name of verb.refusesGlobals ?? []) {
    const given = name === 'json' ? global.json : global[name] !== undefined;
    if (given) throw new UsageError(`--${name} means nothing to ${verb.name}`, verb.name);
  }
  return global;
}

/** Clients opened by a verb, closed when it ends. */
class Clients {
  private asyncClient: Promise<DeviceMapper> | undefined;
  private sync: DeviceMapperSync | undefined;

  constructor(private readonly global: GlobalOptions) {}

  private options(): { path?: string; udev?: UdevMode } {
    return {
      ...(this.global.control !== undefined ? { path: this.global.control } : {}),
      ...(this.global.udev !== undefined ? { udev: this.global.udev } : {}),
    };
  }

  client(): Promise<DeviceMapper> {
    this.asyncClient ??= DeviceMapper.open(this.options());
    return this.asyncClient;
  }

  syncClient(): DeviceMapperSync {
    this.sync ??= DeviceMapper.openSync(this.options());
    return this.sync;
  }

  async close(): Promise<void> {
    this.sync?.close();
    if (this.asyncClient !== undefined) {
      const dm = await this.asyncClient.catch(() => undefined);
      await dm?.close();
    }
  }
}

/** The whole of `stream` as text; rejects with an AbortError when `signal` aborts first (Ctrl-C at a terminal). */
async function readAll(stream: NodeJS.ReadableStream, signal: AbortSignal): Promise<string> {
  signal.throwIfAborted();
  const chunks: Buffer[] = [];
  const read = (async () => {
    for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  })();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new DOMException('the input was not read to its end', 'AbortError'));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    await Promise.race([read, aborted]);
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
    // An abandoned read must not keep the process alive.
    if (signal.aborted) stream.pause();
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Runs the `devmapper` command with `argv` (the arguments after the program's name) on `io`,
 * and resolves with its exit code. Never rejects: failures are written on `io.stderr` and
 * told by the code (see `ExitCode`).
 */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const stderr = new Output(io.stderr, io.env);
  let verbName: string | undefined;
  let device: string | undefined;
  try {
    const { before, verb: name, after } = splitAtVerb(argv);
    let first;
    try {
      first = parseArgs({ args: before, options: { ...GLOBAL_OPTIONS, version: { type: 'boolean' } }, strict: true, allowPositionals: false }).values;
    } catch (e) {
      throw new UsageError(parseMessage(e));
    }
    if (first.version === true) {
      io.stdout.write(`${packageVersion()}\n`);
      return ExitCode.ok;
    }
    if (name === undefined) {
      if (first.help === true) {
        io.stdout.write(commandHelp());
        return ExitCode.ok;
      }
      throw new UsageError('no verb given (devmapper --help lists them)');
    }
    if (name === 'help') {
      if (after.length > 1) throw new UsageError('help takes at most one verb');
      const topic = after[0];
      if (topic === undefined) {
        io.stdout.write(commandHelp());
        return ExitCode.ok;
      }
      const verb = findVerb(topic);
      if (verb === undefined) throw new UsageError(`unknown verb ${JSON.stringify(topic)} (devmapper --help lists them)`);
      io.stdout.write(verbHelp(verb));
      return ExitCode.ok;
    }
    const verb = findVerb(name);
    if (verb === undefined) throw new UsageError(`unknown verb ${JSON.stringify(name)} (devmapper --help lists them)`);
    verbName = verb.name;
    if (verb.rawArgs === true) {
      if (first.help === true) {
        io.stdout.write(verbHelp(verb));
        return ExitCode.ok;
      }
      return await runVerb(verb, after, optionValues(verb, {}), refuseGlobals(verb, globalsOf(first, verb.name)), io);
    }
    let parsed;
    try {
      parsed = parseArgs({ args: after, options: { ...verb.options, ...GLOBAL_OPTIONS }, strict: true, allowPositionals: true });
    } catch (e) {
      throw new UsageError(parseMessage(e), verb.name);
    }
    const values: Record<string, unknown> = parsed.values;
    if (values['help'] === true || first.help === true) {
      io.stdout.write(verbHelp(verb));
      return ExitCode.ok;
    }
    const global = refuseGlobals(verb, globalsOf({
      json: values['json'] === true || first.json === true,
      udev: typeof values['udev'] === 'string' ? values['udev'] : first.udev,
      control: typeof values['control'] === 'string' ? values['control'] : first.control,
    }, verb.name));
    const args = parsed.positionals;
    const { min, max } = verb.positionals;
    if (args.length < min || args.length > max) {
      const want = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`;
      throw new UsageError(`expects ${want} operand${want === '1' ? '' : 's'} (${verb.usage || 'none'}), got ${args.length}`, verb.name);
    }
    device = args[0];
    return await runVerb(verb, args, optionValues(verb, values), global, io);
  } catch (e) {
    const failure = failureOf(e, verbName, device);
    const subject = [verbName, failure.device].filter((w) => w !== undefined).join(' ');
    stderr.line(`devmapper: ${subject === '' ? '' : `${subject}: `}${failure.message}`);
    if (failure.usageOf !== undefined) {
      const verb = failure.usageOf === '' ? undefined : findVerb(failure.usageOf);
      stderr.line(verb === undefined ? 'Usage: devmapper [global options] VERB [options] [operands] (devmapper --help)' : `${usageLine(verb)} (devmapper help ${verb.name})`);
    }
    return failure.exitCode;
  }
}

/** The verb's own option values, without the global ones. */
function optionValues<O extends OptionSpecs>(verb: Verb<O>, values: Record<string, unknown>): OptionValues<O> {
  const own: Record<string, unknown> = {};
  for (const key of Object.keys(verb.options)) if (values[key] !== undefined) own[key] = values[key];
  // parseArgs gives each declared option the type its spec says (strict mode).
  return own as OptionValues<O>;
}

async function runVerb<O extends OptionSpecs>(verb: Verb<O>, args: readonly string[], options: OptionValues<O>, global: GlobalOptions, io: CliIo): Promise<number> {
  const clients = new Clients(global);
  const stderr = new Output(io.stderr, io.env);
  const signal = io.signal ?? new AbortController().signal;
  const ctx: VerbContext<O> = {
    verb,
    options,
    args,
    global,
    io,
    out: new Output(io.stdout, io.env),
    signal,
    client: () => clients.client(),
    syncClient: () => clients.syncClient(),
    device(index: number): DevId {
      const text = args[index];
      if (text === undefined) throw new UsageError(`operand ${index + 1} (a device) is missing`, verb.name);
      return deviceOperand(text);
    },
    readInput: () => readAll(io.stdin, signal),
    warn: (message: string) => stderr.line(`devmapper: ${verb.name}: ${message}`),
    usageError: (message: string) => new UsageError(message, verb.name),
  };
  try {
    return await verb.run(ctx);
  } finally {
    await clients.close();
  }
}

/** Runs `main` with the process's streams and exits with its code (the `devmapper` bin). */
function runAsProgram(): void {
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (): void => {
    signals++;
    // The first signal asks the running verb to stop; a second one ends the process at once.
    if (signals > 1) process.exit(ExitCode.interrupted);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // `devmapper ls | head -1`: a closed pipe ends the output quietly.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  const io: CliIo = {
    stdout: process.stdout,
    stderr: process.stderr,
    // stdin is opened only by a verb that reads it.
    get stdin() {
      return process.stdin;
    },
    env: process.env,
    signal: controller.signal,
  };
  void main(process.argv.slice(2), io).then((code) => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.exitCode = code;
  });
}

if (require.main === module) runAsProgram();
