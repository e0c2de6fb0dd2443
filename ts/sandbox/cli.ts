#!/usr/bin/env node
/**
 * `devmapper-sandbox`: runs a command as root in the User-Mode Linux kernel sandbox and exits
 * with its status.
 *
 * ```
 * devmapper-sandbox [--memory MiB] [--timeout S] [--module M]... [--udev] [--] command args...
 * ```
 *
 * Exit status: the command's; 128 + N when signal N ended it; 124 on --timeout; 127 when the
 * command could not be started; 125 when the sandbox itself failed; 130/143 on SIGINT/SIGTERM.
 * @packageDocumentation
 */
import { parseArgs } from 'node:util';
import { SandboxError, runInSandbox } from './index';
import type { SandboxOptions } from './index';

const USAGE = `Usage: devmapper-sandbox [options] [--] command [args...]

Runs a command as root under User-Mode Linux with device-mapper and every DM target
module loaded, and exits with its status. The host's files are visible at the same
paths; a scratch tmpfs for loop backing files is at $DEVMAPPER_SCRATCH.

Options:
  --memory MiB     guest memory, 64 to 65536 (default 1024)
  --scratch MiB    size of the scratch tmpfs (default: half of the memory)
  --timeout S      kill the sandbox after S whole seconds (exit status 124)
  --module NAME    load this kernel module too (repeatable)
  --udev           start systemd-udevd inside (/dev/mapper/<name> links)
  --linux PATH     the UML kernel (default /usr/bin/linux.uml)
  -h, --help       show this help
`;

class UsageError extends Error {}

/** A whole number in [min, max] given as decimal digits (no 0.4, 1e20, 0x10 or 12abc). */
function wholeNumber(flag: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`${flag} expects a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  const n = Number(value);
  if (n < min || n > max) throw new UsageError(`${flag} expects a whole number from ${min} to ${max}, got ${value}`);
  return n;
}

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  memory: { type: 'string' },
  scratch: { type: 'string' },
  timeout: { type: 'string' },
  module: { type: 'string', multiple: true },
  udev: { type: 'boolean' },
  linux: { type: 'string' },
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

/** Parses the command line into sandbox options and the command. */
function parse(argv: readonly string[]): { options: SandboxOptions; command: string[] } | 'help' {
  const { ours, start } = commandStart(argv);
  let values;
  try {
    values = parseArgs({ args: ours, options: OPTIONS, allowPositionals: false, strict: true }).values;
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message.split('\n')[0] ?? e.message : String(e));
  }
  if (values.help === true) return 'help';
  const options: SandboxOptions = {};
  // 64 GiB of guest memory is far past anything UML here can back; the checks keep typos out.
  if (values.memory !== undefined) options.memory = wholeNumber('--memory', values.memory, 64, 65536);
  if (values.scratch !== undefined) options.scratchSize = wholeNumber('--scratch', values.scratch, 1, 65536);
  if (values.timeout !== undefined) options.timeout = wholeNumber('--timeout', values.timeout, 1, 2147483) * 1000;
  if (values.module !== undefined) {
    for (const m of values.module) if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(m)) throw new UsageError(`--module expects a module name, got ${JSON.stringify(m)}`);
    options.modules = values.module;
  }
  if (values.udev === true) options.udev = true;
  if (values.linux !== undefined) {
    if (values.linux === '') throw new UsageError('--linux expects a path');
    options.linux = values.linux;
  }
  const command = argv.slice(start);
  if (command.length === 0) throw new UsageError('no command given');
  return { options, command };
}

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(process.argv.slice(2));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`devmapper-sandbox: ${e.message}\n\n${USAGE}`);
    return 2;
  }
  if (parsed === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const controller = new AbortController();
  let stoppedBy: NodeJS.Signals | undefined;
  const onSignal = (s: NodeJS.Signals): void => {
    stoppedBy ??= s;
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const r = await runInSandbox(parsed.command, { ...parsed.options, signal: controller.signal });
    return r.exitCode;
  } catch (e) {
    if (!(e instanceof SandboxError)) throw e;
    if (e.code === 'EABORT') return stoppedBy === 'SIGTERM' ? 143 : 130;
    process.stderr.write(`devmapper-sandbox: ${e.message}\n`);
    if (e.code === 'ETIMEDOUT') return 124;
    if (e.code === 'ESPAWN') return 127;
    return 125;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`devmapper-sandbox: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 125;
  },
);
