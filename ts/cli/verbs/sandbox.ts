/**
 * `devmapper sandbox [options] -- COMMAND...` and `devmapper demo`: the kernel sandbox's
 * command line and guided demo, the same code as `devmapper-sandbox` and `npm run demo`
 * (ts/sandbox/command.ts).
 * @packageDocumentation
 */
import { StringDecoder } from 'node:string_decoder';
import { SANDBOX_EXIT_HELP, SANDBOX_OPTIONS_HELP, SandboxUsageError, parseSandboxArgs, runDemo, runSandboxCommand } from '../../sandbox/command';
import { SandboxError } from '../../sandbox/index';
import { CliError, ExitCode, defineVerb } from '../verb';

const USAGE = 'Usage: devmapper sandbox [options] [--] COMMAND [ARGS...]';

/** `devmapper sandbox`. */
export const sandbox = defineVerb({
  name: 'sandbox',
  summary: 'Run a command as root in the kernel sandbox (User-Mode Linux with device-mapper)',
  usage: '[options] [--] COMMAND [ARGS...]',
  description: [
    'As devmapper-sandbox: the host\'s files at the same paths, every DM target module loaded,',
    'a scratch tmpfs for loop backing files at $DEVMAPPER_SCRATCH.',
    '',
    SANDBOX_OPTIONS_HELP,
    '',
    SANDBOX_EXIT_HELP,
  ].join('\n'),
  options: {},
  positionals: { min: 0, max: Infinity },
  rawArgs: true,
  refusesGlobals: ['json', 'udev', 'control'],
  async run(ctx) {
    let parsed: ReturnType<typeof parseSandboxArgs>;
    try {
      parsed = parseSandboxArgs(ctx.args);
    } catch (e) {
      if (e instanceof SandboxUsageError) throw ctx.usageError(e.message);
      throw e;
    }
    if (parsed === 'help') {
      ctx.out.write(`${USAGE}\n\n${SANDBOX_OPTIONS_HELP}\n\n${SANDBOX_EXIT_HELP}\n`);
      return ExitCode.ok;
    }
    const text = new StringDecoder('utf8');
    const code = await runSandboxCommand(parsed.command, parsed.options, {
      program: 'devmapper: sandbox',
      stderr: ctx.io.stderr,
      signal: ctx.signal,
      onOutput: (chunk) => ctx.io.stdout.write(text.write(chunk)),
    });
    const rest = text.end();
    if (rest !== '') ctx.io.stdout.write(rest);
    return code;
  },
});

/** `devmapper demo`. */
export const demo = defineVerb({
  name: 'demo',
  summary: "Run the README's guided demo in the kernel sandbox",
  usage: '',
  description: 'Boots the sandbox and runs examples/volume-demo.js in it as root (what npm run demo runs): two loop\ndisks, a linear volume across both, data through it, a live grow, a rename, cleanup.\nExit status: the demo\'s; 125 when the sandbox itself failed.',
  options: {},
  positionals: { min: 0, max: 0 },
  refusesGlobals: ['json', 'udev', 'control'],
  async run(ctx) {
    try {
      return await runDemo(ctx.io.stdout, ctx.signal);
    } catch (e) {
      if (e instanceof SandboxError && e.code === 'EABORT') return ExitCode.interrupted;
      if (e instanceof SandboxError) throw new CliError(e.message, 125);
      throw e;
    }
  },
});
