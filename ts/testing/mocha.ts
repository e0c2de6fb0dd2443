/**
 * `devmapper/testing/mocha`: a mocha root-hook plugin for integration tests on device-mapper.
 *
 * ```
 * mocha --require devmapper/testing/mocha test/*.test.js
 * ```
 *
 * Where this process can use device-mapper (it opens `/dev/mapper/control` and the kernel
 * answers DM_VERSION: root, or CAP_SYS_ADMIN, on a kernel with dm-mod), it only installs the
 * hooks: each test gets a scratch scope of its own (see `devmapper/testing`), cleaned up after
 * the test whether it passed or failed, and the run's scope is cleaned up after all tests.
 *
 * Where it cannot (no device-mapper in the kernel, or not root), it runs the same command
 * (`process.execPath`, `process.execArgv`, `process.argv`, environment and working directory)
 * again inside the kernel sandbox (`devmapper/sandbox`: User-Mode Linux, root inside, the
 * host's files at the same paths), prints its output, and exits with its exit status: the
 * suite runs once, in the sandbox. `DEVMAPPER_SANDBOX=1`, which the sandbox sets, stops it
 * from going round again. `--watch` is refused there (each run would boot a kernel, and the
 * sandbox cannot watch the host's files); run `--watch` as root on a kernel with device-mapper.
 * @packageDocumentation
 *
 * @module devmapper/testing/mocha
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { DeviceMapper, DmError } from '../index';
import { SandboxError, runInSandbox } from '../sandbox/index';
import { beginScratchScope, cleanupRunScope, endScratchScope } from './index';

/** The root hooks the plugin installs. */
export interface ScratchRootHooks {
  /** Opens the test's scratch scope. */
  beforeEach(): void;
  /** Cleans up the test's scratch scope, whether the test passed or failed. */
  afterEach(): Promise<void>;
  /** Cleans up the run's scratch scope. */
  afterAll(): Promise<void>;
}

/** The hooks, for a mocha setup that composes its own root hooks. */
export const scratchHooks: ScratchRootHooks = {
  beforeEach(): void {
    beginScratchScope();
  },
  async afterEach(): Promise<void> {
    await endScratchScope();
  },
  async afterAll(): Promise<void> {
    await cleanupRunScope();
  },
};

/**
 * Why this process cannot use device-mapper (the error of opening the control node and asking
 * the kernel its version), or undefined when it can.
 */
export async function deviceMapperUnavailable(): Promise<string | undefined> {
  try {
    const dm = await DeviceMapper.open();
    await dm.close();
    return undefined;
  } catch (e) {
    // The first clause ("open /dev/mapper/control: ...") says it; the rest is advice for scripts.
    if (e instanceof DmError) return e.message.split(' — ')[0] ?? e.message;
    throw e;
  }
}

/** Whether mocha's options (command line, config file, package.json) ask for --watch. */
function watching(argv: readonly string[]): boolean {
  try {
    // mocha's own option loader (CommonJS), from the mocha that runs this process.
    const from = argv[1] !== undefined && argv[1] !== '' ? argv[1] : join(process.cwd(), 'index.js');
    const load: unknown = createRequire(from)('mocha/lib/cli/options.cjs');
    const loadOptions: unknown = typeof load === 'object' && load !== null ? Reflect.get(load, 'loadOptions') : undefined;
    if (typeof loadOptions === 'function') {
      const opts: unknown = Reflect.apply(loadOptions, undefined, [argv.slice(2)]);
      return typeof opts === 'object' && opts !== null && Reflect.get(opts, 'watch') === true;
    }
  } catch {
    // another mocha layout: the command line alone
  }
  return argv.some((a) => a === '--watch' || a === '-w' || a.startsWith('--watch='));
}

function fail(message: string, status: number): never {
  process.stderr.write(`devmapper/testing: ${message}\n`);
  process.exit(status);
}

/** Runs this very command again inside the kernel sandbox and exits with its status. */
async function rerunInSandbox(why: string): Promise<never> {
  if (watching(process.argv)) {
    fail(`--watch cannot run in the kernel sandbox (device-mapper is not usable here: ${why}). Run without --watch, or as root on a kernel with device-mapper.`, 1);
  }
  process.stderr.write(`devmapper/testing: device-mapper is not usable here (${why}); running the suite in the kernel sandbox\n`);
  const env: Record<string, string | undefined> = { ...process.env };
  // Inside, the output is a file, not this terminal: keep mocha's colours if we had them.
  if (process.stdout.isTTY && env['FORCE_COLOR'] === undefined && env['NO_COLOR'] === undefined) env['FORCE_COLOR'] = '1';
  const controller = new AbortController();
  let stoppedBy: NodeJS.Signals | undefined;
  const onSignal = (s: NodeJS.Signals): void => {
    stoppedBy ??= s;
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const r = await runInSandbox([process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
      env,
      cwd: process.cwd(),
      signal: controller.signal,
    });
    process.exit(r.exitCode);
  } catch (e) {
    if (!(e instanceof SandboxError)) throw e;
    if (e.code === 'EABORT') process.exit(stoppedBy === 'SIGTERM' ? 143 : 130);
    fail(`the kernel sandbox failed (${e.code}): ${e.message}`, 1);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/**
 * Mocha's root-hook plugin entry: resolves with {@link scratchHooks} where device-mapper is
 * usable; elsewhere it runs the command again in the kernel sandbox and exits this process
 * with its status before mocha loads a test. Inside the sandbox (`DEVMAPPER_SANDBOX=1`) a
 * device-mapper that still cannot be used is an error, never a second re-run.
 */
export async function mochaHooks(): Promise<ScratchRootHooks> {
  const why = await deviceMapperUnavailable();
  if (why === undefined) return scratchHooks;
  if (process.env['DEVMAPPER_SANDBOX'] === '1') fail(`device-mapper is not usable inside the kernel sandbox either: ${why}`, 1);
  return rerunInSandbox(why);
}
