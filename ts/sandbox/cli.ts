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
 * The command line is ./command.ts's, which `devmapper sandbox` shares.
 * @packageDocumentation
 */
import { SANDBOX_OPTIONS_HELP, SandboxUsageError, parseSandboxArgs, runSandboxCommand } from './command';

const USAGE = `Usage: devmapper-sandbox [options] [--] command [args...]

Runs a command as root under User-Mode Linux with device-mapper and every DM target
module loaded, and exits with its status. The host's files are visible at the same
paths; a scratch tmpfs for loop backing files is at $DEVMAPPER_SCRATCH.

${SANDBOX_OPTIONS_HELP}
`;

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parseSandboxArgs>;
  try {
    parsed = parseSandboxArgs(process.argv.slice(2));
  } catch (e) {
    if (!(e instanceof SandboxUsageError)) throw e;
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
    return await runSandboxCommand(parsed.command, parsed.options, { program: 'devmapper-sandbox', stderr: process.stderr, signal: controller.signal, stoppedBy: () => stoppedBy });
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
