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
import { SandboxError, runInSandbox } from './index';
import type { SandboxOptions } from './index';

const USAGE = `Usage: devmapper-sandbox [options] [--] command [args...]

Runs a command as root under User-Mode Linux with device-mapper and every DM target
module loaded, and exits with its status. The host's files are visible at the same
paths; a scratch tmpfs for loop backing files is at $DEVMAPPER_SCRATCH.

Options:
  --memory MiB     guest memory (default 1024)
  --scratch MiB    size of the scratch tmpfs (default: half of the memory)
  --timeout S      kill the sandbox after S seconds (exit status 124)
  --module NAME    load this kernel module too (repeatable)
  --udev           start systemd-udevd inside (/dev/mapper/<name> links)
  --linux PATH     the UML kernel (default /usr/bin/linux.uml)
  -h, --help       show this help
`;

class UsageError extends Error {}

function number(flag: string, value: string | undefined): number {
  const n = value === undefined || value.trim() === '' ? NaN : Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} expects a positive number, got ${value ?? 'nothing'}`);
  return n;
}

/** Parses the command line into sandbox options and the command. */
function parse(argv: readonly string[]): { options: SandboxOptions; command: string[] } | 'help' {
  const options: SandboxOptions = {};
  const modules: string[] = [];
  let i = 0;
  const next = (): string | undefined => {
    i += 1;
    return argv[i];
  };
  for (; i < argv.length; i += 1) {
    const arg = argv[i] ?? '';
    if (arg === '--') {
      i += 1;
      break;
    }
    if (!arg.startsWith('-')) break; // the command starts here
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const inline = eq > 0 ? arg.slice(eq + 1) : undefined;
    const take = (): string | undefined => inline ?? next();
    switch (flag) {
      case '-h':
      case '--help':
        return 'help';
      case '--memory':
        options.memory = Math.round(number(flag, take()));
        break;
      case '--scratch':
        options.scratchSize = Math.round(number(flag, take()));
        break;
      case '--timeout':
        options.timeout = number(flag, take()) * 1000;
        break;
      case '--module': {
        const m = take();
        if (m === undefined) throw new UsageError('--module expects a module name');
        modules.push(m);
        break;
      }
      case '--udev':
        options.udev = true;
        break;
      case '--linux': {
        const l = take();
        if (l === undefined) throw new UsageError('--linux expects a path');
        options.linux = l;
        break;
      }
      default:
        throw new UsageError(`unknown option ${arg}`);
    }
  }
  const command = argv.slice(i);
  if (command.length === 0) throw new UsageError('no command given');
  if (modules.length > 0) options.modules = modules;
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
