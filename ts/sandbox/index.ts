/**
 * `devmapper/sandbox`: run a command as root under a real Linux kernel with every
 * device-mapper target, without root on the host and without device-mapper in the host kernel.
 *
 * The kernel is User-Mode Linux (Debian package `user-mode-linux`: Linux built as an ordinary
 * program). Its root filesystem is the host's `/` (hostfs), so the host's programs, the
 * project and its build are all visible inside at the same paths; host files are accessed with
 * the rights of the host user who started the sandbox. Inside, the command is uid 0, `/run` is a
 * private tmpfs, and a scratch tmpfs for loop backing files is mounted at
 * {@link SCRATCH_DIR} (also given as `$DEVMAPPER_SCRATCH`). Nothing is mounted over `/tmp`,
 * `/home` or any other host directory.
 *
 * @example
 * ```ts
 * import { runInSandbox } from 'devmapper/sandbox';
 * const r = await runInSandbox(['dmsetup', 'targets'], { onOutput: () => undefined });
 * console.log(r.exitCode, r.output);
 * ```
 * @packageDocumentation
 *
 * @module devmapper/sandbox
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkOptions } from '../validate';
import { SandboxError } from './error';
import { findExecutable, killGroup, killGroupAndWait, privateBase, umlEnvironment, visibleInGuest } from './host';
import { FILES, RUNNER, SCRATCH_DIR, initScript } from './script';
import { FileTail } from './tail';

export { SandboxError } from './error';
export type { SandboxErrorCode, SandboxErrorDetails } from './error';
export { SCRATCH_DIR } from './script';

/**
 * Modules loaded in every sandbox, in this order: device-mapper and every target module the
 * UML kernel has, their helpers, the md personalities dm-raid uses, and `loop`. The kernel
 * cannot load modules on demand inside the sandbox, so whatever a table needs must be here.
 * The crypto templates come first: dm-crypt and dm-integrity fail with "Unknown symbol" or
 * refuse their tables without them. `linear`, `striped` and `error` are part of `dm-mod`.
 */
export const DEFAULT_MODULES: readonly string[] = Object.freeze([
  'cbc', 'xts', 'ecb', 'essiv', 'hmac', 'authenc',
  'dm-mod', 'dm-zero',
  'dm-log', 'dm-region-hash', 'dm-mirror',
  'dm-snapshot', 'dm-thin-pool', 'dm-cache', 'dm-cache-smq', 'dm-era',
  'dm-multipath', 'dm-round-robin', 'dm-queue-length', 'dm-service-time',
  'dm-crypt', 'dm-integrity', 'dm-verity',
  'dm-flakey', 'dm-delay', 'dm-switch', 'dm-dust', 'dm-unstripe',
  'raid0', 'raid1', 'raid10', 'raid456', 'dm-raid',
  'dm-writecache', 'dm-clone', 'dm-log-writes', 'dm-log-userspace',
  'loop',
]);

/** Where `linux.uml` is looked for when {@link SandboxOptions.linux} is not given. */
export const DEFAULT_LINUX = '/usr/bin/linux.uml';

/** Where the UML kernel's modules are looked for (`<dir>/<release>/modules.dep`). */
export const DEFAULT_MODULES_DIR = '/usr/lib/uml/modules';

/** How to run a command in the sandbox. Every field is optional. */
export interface SandboxOptions {
  /** Memory of the guest in MiB (default 1024). Only what the guest touches is used. */
  memory?: number;
  /** Modules to load after {@link DEFAULT_MODULES}, by name (`brd`, `zram`, `scsi_debug`). */
  modules?: readonly string[];
  /**
   * The command's environment (default: this process's environment). It replaces the default
   * like `child_process.spawn`'s `env`. `PATH` is completed with the sbin directories (or set
   * when absent), and `DEVMAPPER_SCRATCH` and `DEVMAPPER_SANDBOX=1` are always added.
   */
  env?: Readonly<Record<string, string | undefined>>;
  /** Working directory of the command, a host path (default `process.cwd()`). */
  cwd?: string;
  /**
   * Milliseconds after which the instance and all its processes are killed and the promise
   * rejects with a {@link SandboxError} `ETIMEDOUT` (default: no limit).
   */
  timeout?: number;
  /** Aborting it kills the instance; the promise rejects with a {@link SandboxError} `EABORT`. */
  signal?: AbortSignal;
  /** UML instance id (`umid`), letters, digits, `.`, `_`, `-` (default: unique per call). */
  id?: string;
  /** Size limit in MiB of the scratch tmpfs at {@link SCRATCH_DIR} (default: half of memory). */
  scratchSize?: number;
  /**
   * Receives the command's stdout and stderr (one stream, in order) while it runs
   * (default: written to `process.stdout`). Kernel messages are never part of it.
   */
  onOutput?: (chunk: Buffer) => void;
  /** Path of the UML kernel (default {@link DEFAULT_LINUX}). */
  linux?: string;
  /** Directory of its modules (default {@link DEFAULT_MODULES_DIR}). */
  modulesDir?: string;
  /**
   * Start systemd-udevd inside (Debian package `udev`), so that `/dev/mapper/<name>` links
   * appear and libdevmapper-based tools (dmsetup, lvm2) wait on udev cookies (default false).
   */
  udev?: boolean;
  /**
   * The host CPU the instance runs on, by number (default: wherever the host schedules it).
   * UML's kernel and the guest's processes are separate host processes that hand over to
   * each other at every system call and page fault of the guest: on one CPU each hand-over is
   * a plain context switch, while spread over two it may have to wake an idle CPU, which in a
   * virtual machine costs tens of microseconds. On an idle 2-CPU VM a guest `fstat` took
   * 80-110 µs unpinned and 21 µs pinned. Give instances that run at once different CPUs.
   * Needs `taskset` (Debian package util-linux).
   */
  cpu?: number;
}

/** How a command ended in the sandbox. */
export interface SandboxResult {
  /**
   * The command's exit status; when a signal ended it, 128 + the signal number (as a shell
   * reports it) and {@link SandboxResult.signal} names the signal.
   */
  exitCode: number;
  /** The signal that ended the command (`'SIGKILL'`), when one did. */
  signal?: NodeJS.Signals;
  /** Everything the command wrote to stdout and stderr, decoded as UTF-8. */
  output: string;
  /** Milliseconds from starting linux.uml until the command was about to start. */
  bootMs: number;
  /** Of {@link SandboxResult.bootMs}, the milliseconds spent loading modules (10 ms steps). */
  modulesMs: number;
  /** Milliseconds from starting linux.uml until it was gone. */
  totalMs: number;
  /** The guest kernel's release (`6.1.176`). */
  kernelRelease: string;
}

const CONSOLE_KEEP_BYTES = 64 * 1024;
const MAX_TIMEOUT = 2 ** 31 - 1; // setTimeout's limit
const CONSOLE_TAIL_LINES = 40;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const ENV_NAME = /^[^=\0]+$/;
const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin'];
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

let counter = 0;
const running = new Set<number>();
let exitHookInstalled = false;

/** Kills the instances still running when this process exits, so none outlives it. */
function trackInstance(pgid: number): void {
  running.add(pgid);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const g of running) killGroup(g);
    });
  }
}

function expected(what: string, name: string, value: unknown): TypeError {
  const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return new TypeError(`Expected ${what} for ${name} but received ${shown}`);
}

function positiveInteger(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw expected('a positive integer', name, value);
  }
  return value;
}

function commandEnv(env: Readonly<Record<string, string | undefined>>): string[] {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue;
    if (!ENV_NAME.test(k)) throw expected('an environment variable name without "=" or NUL', 'options.env', k);
    if (typeof v !== 'string' || v.includes('\0')) {
      throw expected('a string without NUL', `options.env.${k}`, v);
    }
    out.set(k, v);
  }
  const pathVar = out.get('PATH');
  if (pathVar === undefined || pathVar === '') {
    out.set('PATH', DEFAULT_PATH);
  } else {
    const dirs = pathVar.split(':');
    out.set('PATH', [...dirs, ...SBIN.filter((d) => !dirs.includes(d))].join(':'));
  }
  out.set('DEVMAPPER_SCRATCH', SCRATCH_DIR);
  out.set('DEVMAPPER_SANDBOX', '1');
  return [...out].map(([k, v]) => `${k}=${v}`);
}

function nulTerminated(items: readonly string[]): Buffer {
  return Buffer.from(items.map((s) => `${s}\0`).join(''), 'utf8');
}

function isSignalName(name: string): name is NodeJS.Signals {
  return Object.prototype.hasOwnProperty.call(os.constants.signals, name);
}

function signalName(n: number): NodeJS.Signals | undefined {
  for (const [name, num] of Object.entries(os.constants.signals)) {
    if (num === n && isSignalName(name)) return name;
  }
  return undefined;
}

function readIfExists(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function missing(what: string, where: string, pkg: string): SandboxError {
  return new SandboxError(
    'ENOLINUX',
    `The kernel sandbox needs ${what}, not found at ${where}: install the Debian package ${pkg} ` +
      `(apt-get install ${pkg}).`,
  );
}

/** The checked host programs a run needs. */
interface HostTools {
  linux: string;
  modprobe: string;
  perl: string;
  udevd: string | undefined;
  modulesDir: string;
  /** `taskset`, when the instance is pinned to a CPU. */
  taskset: string | undefined;
}

function hostTools(options: SandboxOptions): HostTools {
  const linuxPath = options.linux ?? DEFAULT_LINUX;
  const linux = findExecutable([linuxPath]);
  if (linux === undefined) throw missing('the User-Mode Linux kernel', linuxPath, 'user-mode-linux');
  const modulesDir = path.resolve(options.modulesDir ?? DEFAULT_MODULES_DIR);
  if (!fs.existsSync(modulesDir)) throw missing('the User-Mode Linux kernel modules', modulesDir, 'user-mode-linux');
  const modprobeAt = ['/usr/sbin/modprobe', '/sbin/modprobe', '/usr/bin/modprobe', '/bin/modprobe'];
  const modprobe = findExecutable(modprobeAt);
  if (modprobe === undefined) throw missing('modprobe', modprobeAt.join(', '), 'kmod');
  const perl = findExecutable(['/usr/bin/perl', '/bin/perl']);
  if (perl === undefined) throw missing('perl', '/usr/bin/perl', 'perl-base');
  let udevd: string | undefined;
  if (options.udev === true) {
    const udevdAt = ['/usr/lib/systemd/systemd-udevd', '/lib/systemd/systemd-udevd', '/sbin/udevd'];
    udevd = findExecutable(udevdAt);
    if (udevd === undefined) throw missing('systemd-udevd', udevdAt.join(', '), 'udev');
  }
  let taskset: string | undefined;
  if (options.cpu !== undefined) {
    const tasksetAt = ['/usr/bin/taskset', '/bin/taskset'];
    taskset = findExecutable(tasksetAt);
    if (taskset === undefined) throw missing('taskset (for options.cpu)', tasksetAt.join(', '), 'util-linux');
  }
  return { linux, modprobe, perl, udevd, modulesDir, taskset };
}

/** The host CPUs this process may run on (`Cpus_allowed_list`), or undefined where unknown. */
export function allowedCpus(): number[] | undefined {
  let status: string;
  try {
    status = fs.readFileSync('/proc/self/status', 'utf8');
  } catch {
    return undefined;
  }
  const list = /^Cpus_allowed_list:\s*(\S+)/m.exec(status)?.[1];
  if (list === undefined) return undefined;
  const cpus: number[] = [];
  for (const part of list.split(',')) {
    const [from, to] = part.split('-').map(Number);
    if (from === undefined || !Number.isInteger(from)) return undefined;
    const last = to ?? from;
    if (!Number.isInteger(last)) return undefined;
    for (let c = from; c <= last; c++) cpus.push(c);
  }
  return cpus;
}

/** options.cpu, checked against the CPUs this process may run on. */
function checkCpu(cpu: unknown): number | undefined {
  if (cpu === undefined) return undefined;
  if (typeof cpu !== 'number' || !Number.isSafeInteger(cpu) || cpu < 0) throw expected('a CPU number (a whole number from 0)', 'options.cpu', cpu);
  const allowed = allowedCpus();
  if (allowed !== undefined && !allowed.includes(cpu)) {
    throw new RangeError(`options.cpu: this process may run only on CPUs ${allowed.join(', ')}, not on CPU ${cpu}`);
  }
  return cpu;
}

/** Keeps the last bytes of the kernel console. */
class ConsoleTail {
  private chunks: Buffer[] = [];
  private size = 0;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > CONSOLE_KEEP_BYTES && this.chunks.length > 1) {
      const first = this.chunks.shift();
      this.size -= first === undefined ? 0 : first.length;
    }
  }

  text(): string {
    const lines = Buffer.concat(this.chunks).toString('utf8').replace(/\r/g, '').split('\n');
    while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    return lines.slice(-CONSOLE_TAIL_LINES).join('\n');
  }
}

/**
 * Boots a User-Mode Linux kernel, loads {@link DEFAULT_MODULES}, runs `command` in it as root
 * and resolves when the kernel is gone, with the command's exit status and output.
 *
 * A non-zero exit status resolves (it is the command's result); failures of the sandbox
 * itself reject with a {@link SandboxError}. Several instances may run at once. The run's
 * temporary files and UML's instance directory are removed afterwards.
 *
 * @param command - the program and its arguments; the program is looked up in the command's
 *   `PATH`.
 * @throws TypeError for malformed arguments (as a rejected promise).
 */
export async function runInSandbox(command: readonly string[], options: SandboxOptions = {}): Promise<SandboxResult> {
  if (!Array.isArray(command) || command.length === 0) {
    throw expected('a non-empty array of strings', 'command', command);
  }
  for (const arg of command) {
    if (typeof arg !== 'string' || arg.includes('\0')) throw expected('a string without NUL', 'command[i]', arg);
  }
  if (command[0] === '') throw expected('a program name', 'command[0]', command[0]);
  checkOptions(options, 'options', ['memory', 'modules', 'env', 'cwd', 'timeout', 'signal', 'id', 'scratchSize', 'onOutput', 'linux', 'modulesDir', 'udev', 'cpu']);
  const cpu = checkCpu(options.cpu);
  const memory = positiveInteger('options.memory', options.memory, 1024);
  const scratchSize = positiveInteger('options.scratchSize', options.scratchSize, Math.max(1, Math.floor(memory / 2)));
  const timeout = options.timeout;
  if (timeout !== undefined && (typeof timeout !== 'number' || !(timeout > 0 && timeout <= MAX_TIMEOUT))) {
    throw expected(`a number of milliseconds in (0, ${MAX_TIMEOUT}]`, 'options.timeout', timeout);
  }
  const id = options.id ?? `devmapper-${process.pid}-${++counter}-${Math.random().toString(36).slice(2, 8)}`;
  if (typeof id !== 'string' || !NAME.test(id)) throw expected('letters, digits, ".", "_" or "-"', 'options.id', id);
  const modules = [...DEFAULT_MODULES, ...(options.modules ?? [])];
  for (const m of modules) if (typeof m !== 'string' || !NAME.test(m)) throw expected('a module name', 'options.modules', m);
  const env = commandEnv(options.env ?? process.env);
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const onOutput = options.onOutput ?? ((chunk: Buffer) => void process.stdout.write(chunk));
  if (typeof onOutput !== 'function') throw expected('a function', 'options.onOutput', onOutput);

  const tools = hostTools(options);
  if (!visibleInGuest(cwd)) {
    throw new SandboxError('ESPAWN', `The sandbox cannot use ${cwd} as working directory: it mounts its own /run, /proc, /sys and /dev.`);
  }
  if (!fs.statSync(cwd, { throwIfNoEntry: false })?.isDirectory()) {
    throw new SandboxError('ESPAWN', `cannot change directory to ${cwd}: not a directory`);
  }
  if (options.signal?.aborted === true) throw new SandboxError('EABORT', 'The sandbox was not started: aborted (options.signal)');

  const dir = fs.mkdtempSync(path.join(privateBase(), 'devmapper-sandbox-'));
  try {
    const file = (name: string): string => path.join(dir, name);
    fs.writeFileSync(file(FILES.argv), nulTerminated(command));
    fs.writeFileSync(file(FILES.env), nulTerminated(env));
    fs.writeFileSync(file(FILES.cwd), nulTerminated([cwd]));
    fs.writeFileSync(file(FILES.output), '');
    fs.writeFileSync(file(FILES.runner), RUNNER);
    fs.writeFileSync(
      file(FILES.init),
      initScript({ dir, modprobe: tools.modprobe, perl: tools.perl, modules, scratchSize, udevd: tools.udevd }),
      { mode: 0o755 },
    );
    fs.mkdirSync(path.join(dir, FILES.modRoot, 'lib'), { recursive: true });
    fs.symlinkSync(tools.modulesDir, path.join(dir, FILES.modRoot, 'lib', 'modules'));
    fs.mkdirSync(file(FILES.umlDir));
    const launch = tools.taskset === undefined || cpu === undefined ? [tools.linux] : [tools.taskset, '--cpu-list', String(cpu), tools.linux];
    return await boot(dir, id, memory, launch, onOutput, timeout, options.signal);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function boot(
  dir: string,
  id: string,
  memory: number,
  launch: readonly string[],
  onOutput: (chunk: Buffer) => void,
  timeout: number | undefined,
  signal: AbortSignal | undefined,
): Promise<SandboxResult> {
  const file = (name: string): string => path.join(dir, name);
  const args = [
    `mem=${memory}M`,
    'rootfstype=hostfs',
    'rw',
    `init=${file(FILES.init)}`,
    // All consoles and serial lines off but con0 (the kernel's console) on our pipe.
    'con=null',
    'ssl=null',
    'con0=null,fd:1',
    `uml_dir=${file(FILES.umlDir)}`,
    `umid=${id}`,
  ];
  const consoleLog = new ConsoleTail();
  const output: Buffer[] = [];
  const tail = new FileTail(file(FILES.output), (chunk) => {
    output.push(chunk);
    onOutput(chunk);
  });
  const outputText = (): string => Buffer.concat(output).toString('utf8');

  const started = Date.now();
  // taskset (when pinned) sets the CPU and execs linux.uml in its place: the same process.
  const [program = '', ...before] = launch;
  const linux = launch[launch.length - 1] ?? program;
  const child = spawn(program, [...before, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group: a timeout kills the guest's every host process
    env: umlEnvironment(memory),
  });
  child.stdout.on('data', (c: Buffer) => consoleLog.push(c));
  child.stderr.on('data', (c: Buffer) => consoleLog.push(c));
  const pid = child.pid;
  if (pid !== undefined) trackInstance(pid);
  tail.start();

  let stopped: 'timeout' | 'abort' | undefined;
  const stop = (why: 'timeout' | 'abort'): void => {
    stopped ??= why;
    if (pid !== undefined) killGroup(pid);
  };
  const timer = timeout === undefined ? undefined : setTimeout(() => stop('timeout'), timeout);
  const onAbort = (): void => stop('abort');
  signal?.addEventListener('abort', onAbort);
  if (signal?.aborted === true) stop('abort');

  let spawnError: Error | undefined;
  let exit = 'was killed';
  await new Promise<void>((resolve) => {
    child.once('error', (err) => {
      spawnError = err;
      resolve();
    });
    child.once('close', (code, sig) => {
      exit = code === null ? `was killed by ${sig ?? 'a signal'}` : `exited with status ${code}`;
      resolve();
    });
  });
  if (timer !== undefined) clearTimeout(timer);
  signal?.removeEventListener('abort', onAbort);
  if (pid !== undefined) {
    const left = await killGroupAndWait(pid);
    running.delete(pid);
    if (left.length > 0) process.emitWarning(`devmapper sandbox: linux.uml processes ${left.join(', ')} did not die`);
  }
  await tail.stop();
  const totalMs = Date.now() - started;
  const consoleTail = consoleLog.text();
  const details = { consoleTail, output: outputText() };

  if (spawnError !== undefined) {
    throw new SandboxError('ENOLINUX', `Cannot start ${linux} (Debian package user-mode-linux): ${spawnError.message}`, details);
  }
  if (stopped === 'timeout') {
    throw new SandboxError('ETIMEDOUT', `The sandbox was killed after ${timeout ?? 0} ms (options.timeout)`, details);
  }
  if (stopped === 'abort') throw new SandboxError('EABORT', 'The sandbox was killed: aborted (options.signal)', details);

  const failed = readIfExists(file(FILES.failed))?.trim();
  const withConsole = (s: string): string =>
    `${s}\n--- kernel console (last lines) ---\n${consoleTail === '' ? '(nothing was printed)' : consoleTail}`;
  if (failed === 'modprobe') {
    throw new SandboxError('EMODULE', withConsole('The sandbox could not load its kernel modules'), details);
  }
  if (failed === 'udev') throw new SandboxError('EBOOT', withConsole('systemd-udevd did not start in the sandbox'), details);
  const ready = readIfExists(file(FILES.ready));
  const [t0, t1, kernelRelease] = (ready ?? '').trim().split(' ');
  if (ready === undefined || kernelRelease === undefined) {
    // UML 6.1 on a host with a larger XSAVE area than it knows (AVX-512, AMX), without the wrapper.
    const why = consoleTail.includes('ptrace set fp regs failed')
      ? ` (it cannot restore FPU state on this CPU: build the addon: it builds build/Release/uml_xstate.so, the wrapper that fixes this)`
      : '';
    throw new SandboxError('EBOOT', withConsole(`The sandbox kernel did not reach the command: ${linux} ${exit}${why}`), details);
  }
  const bootMs = Math.max(0, Math.round(fs.statSync(file(FILES.ready)).mtimeMs - started));
  const modulesMs = Math.max(0, Math.round((Number(t1) - Number(t0)) * 1000));

  const status = readIfExists(file(FILES.status))?.trim();
  const m = status === undefined ? null : /^(exit|signal|error) ([\s\S]*)$/.exec(status);
  if (m === null || m[1] === undefined || m[2] === undefined) {
    throw new SandboxError('ECRASH', withConsole(`The sandbox ended before the command did: ${linux} ${exit}`), details);
  }
  if (m[1] === 'error') throw new SandboxError('ESPAWN', m[2], details);
  const n = Number(m[2]);
  const base = { output: details.output, bootMs, modulesMs, totalMs, kernelRelease };
  if (m[1] === 'exit') return { exitCode: n, ...base };
  const sig = signalName(n);
  return sig === undefined ? { exitCode: 128 + n, ...base } : { exitCode: 128 + n, signal: sig, ...base };
}
