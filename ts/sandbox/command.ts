/**
 * The sandbox's command line, shared by the `devmapper-sandbox` program (./cli.ts) and the
 * `devmapper sandbox` verb: its options, their checks, and the run with its exit statuses.
 * Also the guided demo (`npm run demo`, `devmapper demo`): examples/volume-demo.js run as root
 * in the sandbox.
 * @packageDocumentation
 */
import * as path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { parseArgs } from 'node:util';
import { SandboxError, runInSandbox } from './index';
import type { SandboxOptions } from './index';

/** The options, for the help of both programs. */
export const SANDBOX_OPTIONS_HELP = `Options:
  --memory MiB     guest memory, 64 to 65536 (default 1024; also --mem)
  --scratch MiB    size of the scratch tmpfs (default: half of the memory)
  --timeout S      kill the sandbox after S whole seconds (exit status 124)
  --module NAME    load this kernel module too (repeatable; --modules A,B for several)
  --udev           start systemd-udevd inside (/dev/mapper/<name> links)
  --linux PATH     the UML kernel (default /usr/bin/linux.uml)
  --cpu N          run the instance on host CPU N (taskset): much cheaper guest system
                   calls in a virtual machine whose other CPUs sit idle
  -h, --help       show this help`;

/** The exit statuses of a sandbox run, for the help of both programs. */
export const SANDBOX_EXIT_HELP = `Exit status: the command's; 128 + N when signal N ended it; 124 on --timeout; 127 when
the command could not be started; 125 when the sandbox itself failed; 130/143 on SIGINT/SIGTERM.`;

/** A bad command line: the caller prints the message and its usage, and exits with 2. */
export class SandboxUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SandboxUsageError';
  }
}

/** A whole number in [min, max] given as decimal digits (no 0.4, 1e20, 0x10 or 12abc). */
function wholeNumber(flag: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value)) throw new SandboxUsageError(`${flag} expects a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  const n = Number(value);
  if (n < min || n > max) throw new SandboxUsageError(`${flag} expects a whole number from ${min} to ${max}, got ${value}`);
  return n;
}

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  memory: { type: 'string' },
  mem: { type: 'string' },
  scratch: { type: 'string' },
  timeout: { type: 'string' },
  module: { type: 'string', multiple: true },
  modules: { type: 'string', multiple: true },
  udev: { type: 'boolean' },
  linux: { type: 'string' },
  cpu: { type: 'string' },
} as const;

/** Where the command starts: after `--`, or at the first argument that is not one of ours. */
function commandStart(argv: readonly string[]): { ours: string[]; start: number } {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') return { ours: argv.slice(0, i), start: i + 1 };
    if (!arg.startsWith('-') || arg === '-') return { ours: argv.slice(0, i), start: i };
    const name = arg.startsWith('--') ? arg.slice(2).split('=')[0] ?? '' : '';
    const spec: { type: string } | undefined = Object.prototype.hasOwnProperty.call(OPTIONS, name) ? OPTIONS[name as keyof typeof OPTIONS] : undefined;
    if (spec?.type === 'string' && !arg.includes('=')) i++; // its value
  }
  return { ours: [...argv], start: argv.length };
}

/**
 * Parses a sandbox command line (`[options] [--] command args...`) into the sandbox's options
 * and the command, or `'help'`. Throws {@link SandboxUsageError}.
 */
export function parseSandboxArgs(argv: readonly string[]): { options: SandboxOptions; command: string[] } | 'help' {
  const { ours, start } = commandStart(argv);
  let values;
  try {
    values = parseArgs({ args: ours, options: OPTIONS, allowPositionals: false, strict: true }).values;
  } catch (e) {
    throw new SandboxUsageError(e instanceof Error ? e.message.split('\n')[0] ?? e.message : String(e));
  }
  if (values.help === true) return 'help';
  const options: SandboxOptions = {};
  if (values.memory !== undefined && values.mem !== undefined) throw new SandboxUsageError('--memory and --mem name the same option: give one');
  const memory = values.memory ?? values.mem;
  // 64 GiB of guest memory is far past anything UML here can back; the checks keep typos out.
  if (memory !== undefined) options.memory = wholeNumber(values.memory === undefined ? '--mem' : '--memory', memory, 64, 65536);
  if (values.scratch !== undefined) options.scratchSize = wholeNumber('--scratch', values.scratch, 1, 65536);
  if (values.timeout !== undefined) options.timeout = wholeNumber('--timeout', values.timeout, 1, 2147483) * 1000;
  const modules = [...(values.module ?? []), ...(values.modules ?? []).flatMap((list) => list.split(','))];
  if (modules.length > 0) {
    for (const m of modules) if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(m)) throw new SandboxUsageError(`--module expects a module name, got ${JSON.stringify(m)}`);
    options.modules = modules;
  }
  if (values.udev === true) options.udev = true;
  if (values.cpu !== undefined) options.cpu = wholeNumber('--cpu', values.cpu, 0, 4095);
  if (values.linux !== undefined) {
    if (values.linux === '') throw new SandboxUsageError('--linux expects a path');
    options.linux = values.linux;
  }
  const command = argv.slice(start);
  if (command.length === 0) throw new SandboxUsageError('no command given');
  return { options, command };
}

/** Where a sandbox run writes its own messages, and what stops it. */
export interface SandboxRunIo {
  /** The program's messages (`devmapper-sandbox: ...`). */
  readonly stderr: { write(text: string): unknown };
  /** The command's output (default: this process's stdout, as it comes). */
  readonly onOutput?: (chunk: Buffer) => void;
  /** Aborting it kills the sandbox: exit status 130, or 143 when `stoppedBy()` says SIGTERM. */
  readonly signal?: AbortSignal;
  /** The signal that stopped the run, when one did. */
  readonly stoppedBy?: () => NodeJS.Signals | undefined;
  /** The program's name in its messages. */
  readonly program: string;
}

/** Runs the command in the sandbox and resolves with the exit status (see {@link SANDBOX_EXIT_HELP}); never rejects for a sandbox failure. */
export async function runSandboxCommand(command: readonly string[], options: SandboxOptions, io: SandboxRunIo): Promise<number> {
  try {
    const r = await runInSandbox(command, { ...options, ...(io.signal !== undefined ? { signal: io.signal } : {}), ...(io.onOutput !== undefined ? { onOutput: io.onOutput } : {}) });
    return r.exitCode;
  } catch (e) {
    if (!(e instanceof SandboxError)) throw e;
    if (e.code === 'EABORT') return io.stoppedBy?.() === 'SIGTERM' ? 143 : 130;
    io.stderr.write(`${io.program}: ${e.message}\n`);
    if (e.code === 'ETIMEDOUT') return 124;
    if (e.code === 'ESPAWN') return 127;
    return 125;
  }
}

/** The demo script the package ships: `examples/volume-demo.js`. */
export const DEMO_SCRIPT = path.join(__dirname, '..', '..', 'examples', 'volume-demo.js');

/**
 * The guided demo: boots the sandbox and runs examples/volume-demo.js in it as root (two loop
 * disks, a linear volume across both, data through it, a live grow, a rename, cleanup),
 * writing what it prints to `out`. Resolves with the demo's exit status.
 */
export async function runDemo(out: { write(text: string): unknown }, signal?: AbortSignal): Promise<number> {
  out.write('Booting the kernel sandbox (User-Mode Linux) ...\n');
  const text = new StringDecoder('utf8');
  const r = await runInSandbox([process.execPath, DEMO_SCRIPT], { onOutput: (chunk) => out.write(text.write(chunk)), ...(signal !== undefined ? { signal } : {}) });
  out.write(text.end());
  out.write(`\nsandbox: booted in ${r.bootMs} ms, whole run ${r.totalMs} ms, exit status ${r.exitCode}\n`);
  return r.exitCode;
}
