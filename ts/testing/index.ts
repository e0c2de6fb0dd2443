/**
 * `devmapper/testing`: what a root-run integration test on loop devices needs, cleaned up even
 * when the test fails. A {@link Scratch} hands out device names under its own prefix and
 * scratch disks (sparse files attached as loop devices); its `cleanup()` removes the devices
 * named with that prefix top-down (children before the devices they map onto, by DM_TABLE_DEPS),
 * detaches its loop devices and deletes its files. Nothing outside the prefix is touched.
 *
 * The module-level helpers ({@link scratchDisk}, {@link scratchName}, {@link scratchDeviceMapper})
 * work on the current scope: with the mocha plugin (`--require devmapper/testing/mocha`) one scope
 * per test, cleaned up after each test; otherwise one scope for the run. Whatever is still there
 * when the process exits (or is ended by SIGINT, SIGTERM or SIGHUP with no other handler) is
 * cleaned up then, synchronously.
 *
 * @example
 * ```ts
 * import { Scratch } from 'devmapper/testing';
 * import { Table, targets } from 'devmapper';
 * const scratch = new Scratch();
 * try {
 *   const disk = await scratch.disk({ sectors: 8192 });
 *   const dm = await scratch.dm();
 *   await dm.create(scratch.name('vol'), { table: new Table([{ start: 0, length: 8192, target: targets.linear({ device: disk.devString, offset: 0 }) }]) });
 * } finally {
 *   await scratch.cleanup();
 * }
 * ```
 * @packageDocumentation
 *
 * @module devmapper/testing
 */
import { randomBytes } from 'node:crypto';
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { DeviceMapper, DmError, LoopDevice, type DeviceListEntry, type DeviceMapperSync, type DevNumber } from '../index';
import { checkBoolean, checkInteger, checkOptions, checkSector, expected, expectedRange } from '../validate';

/** Options of a {@link Scratch}. */
export interface ScratchOptions {
  /**
   * The prefix of every device name it hands out and of every device its cleanup removes
   * (default: the run's prefix, {@link runPrefix}, followed by a number). 4 to 64 characters:
   * letters, digits, `.`, `_`, `+`, `-`.
   */
  prefix?: string;
  /**
   * The directory under which its backing files go, in a directory of their own (default
   * `$DEVMAPPER_SCRATCH`, the sandbox's scratch tmpfs, else the system's temporary directory).
   */
  dir?: string;
}

/** Options of {@link Scratch.disk}: give exactly one of `sectors` and `bytes`. */
export interface ScratchDiskOptions {
  /** Size in sectors of 512 bytes. */
  sectors?: number;
  /** Size in bytes, a multiple of 512. */
  bytes?: number;
  /** The loop device's logical block size: 512, 1024, 2048 or 4096 (default: the kernel's). */
  blockSize?: number;
  /** Direct I/O on the backing file (the kernel falls back silently where it cannot). */
  directIo?: boolean;
  /** A read-only loop device. */
  readOnly?: boolean;
}

/** What a {@link Scratch.cleanup} removed. */
export interface ScratchCleanup {
  /** The devices removed, in the order they were removed (top-down). */
  devices: string[];
  /** The loop devices detached (`/dev/loopN`). */
  loops: string[];
  /** The directory of backing files deleted, if there was one. */
  dir?: string;
}

/** Thrown by a cleanup that could not remove everything; what it did remove is in `removed`. */
export class ScratchCleanupError extends Error {
  /** What was removed all the same. */
  readonly removed: ScratchCleanup;
  /** The errors met, one per thing left. */
  readonly errors: readonly Error[];

  /** @internal */
  constructor(prefix: string, left: readonly string[], errors: readonly Error[], removed: ScratchCleanup) {
    super(`devmapper/testing: the cleanup of ${prefix}* left ${left.join('; ')}`, { cause: errors[0] });
    this.name = 'ScratchCleanupError';
    this.removed = removed;
    this.errors = errors;
  }
}

const PREFIX_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{3,63}$/;
const PART_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,47}$/;

function checkPrefix(value: unknown, name: string): string {
  if (typeof value !== 'string') throw expected('a name prefix (string)', name, value);
  if (!PREFIX_RE.test(value)) throw expectedRange('4 to 64 letters, digits, ".", "_", "+" or "-" (not first)', name, value);
  return value;
}

function makeRunPrefix(): string {
  const given = process.env['DEVMAPPER_TESTING_PREFIX'];
  if (given === undefined || given === '') return `dmtk-${process.pid.toString(36)}${randomBytes(3).toString('hex')}-`;
  if (!PART_RE.test(given)) throw expectedRange('1 to 48 letters, digits, ".", "_", "+" or "-" (not first)', '$DEVMAPPER_TESTING_PREFIX', given);
  // The process id keeps processes that share the variable (mocha --parallel workers) apart.
  return `${given}${process.pid.toString(36)}-`;
}

let theRunPrefix: string | undefined;

/**
 * The prefix of this run's device names, unique per process: `$DEVMAPPER_TESTING_PREFIX`
 * followed by the process id in base 36 and `-` when the variable is set (a namespace, to find
 * a run's leftovers), else `dmtk-<pid><random>-`. Every {@link Scratch} made without its own
 * prefix names its devices under it.
 */
export function runPrefix(): string {
  theRunPrefix ??= makeRunPrefix();
  return theRunPrefix;
}

function scratchBase(): string {
  const env = process.env['DEVMAPPER_SCRATCH'];
  return env !== undefined && env !== '' ? env : tmpdir();
}

/** Ours in removal order: a device before every device it maps onto (DM_TABLE_DEPS). */
function removalOrder(ours: readonly DeviceListEntry[], deps: ReadonlyMap<string, readonly DevNumber[]>): DeviceListEntry[] {
  const key = (d: DevNumber): string => `${d.major}:${d.minor}`;
  const left = [...ours];
  const order: DeviceListEntry[] = [];
  while (left.length > 0) {
    const below = new Set<string>();
    for (const d of left) for (const dep of deps.get(d.name) ?? []) below.add(key(dep));
    const tops = left.filter((d) => !below.has(key(d.dev)));
    // A cycle cannot be built in the kernel; were one seen, the rest goes in list order.
    const next = tops.length > 0 ? tops : [...left];
    for (const d of next) {
      order.push(d);
      left.splice(left.indexOf(d), 1);
    }
  }
  return order;
}

/** An open of the control node that failed because this kernel has no device-mapper: no device to remove. */
function noDeviceMapper(e: unknown): boolean {
  return e instanceof DmError && (e.code === 'ENOENT' || e.code === 'ENODEV' || e.code === 'ENXIO') && e.syscall === 'open';
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

const live = new Set<Scratch>();
let exitHooks = false;

/** At exit (and on a signal nobody else handles), what the live scratches still hold goes. */
function installExitHooks(): void {
  if (exitHooks) return;
  exitHooks = true;
  process.on('exit', () => {
    cleanupAllSync();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      // Another handler owns this signal (mocha's, the user's): it decides, and 'exit' follows.
      if (process.listenerCount(sig) > 1) return;
      cleanupAllSync();
      process.off(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

function cleanupAllSync(): void {
  for (const s of [...live]) {
    try {
      s.cleanupSync();
    } catch (e) {
      process.stderr.write(`${asError(e).message}\n`);
    }
  }
}

let scratchCounter = 0;

/**
 * Scratch disks and device names for a test, all removed by {@link Scratch.cleanup}: the
 * devices whose name starts with {@link Scratch.prefix} (whoever made them), the loop devices
 * it attached, and its directory of backing files.
 */
export class Scratch {
  /** The prefix of the names it hands out and of the devices its cleanup removes. */
  readonly prefix: string;
  private readonly base: string;
  private directory: string | undefined;
  private loops: LoopDevice[] = [];
  private client: DeviceMapper | undefined;
  private used = false;
  private names = 0;
  private files = 0;

  /** A new scratch; nothing is made before the first name, disk or client. */
  constructor(options?: ScratchOptions) {
    const opts = checkOptions(options, 'options', ['prefix', 'dir']);
    this.prefix = opts.prefix === undefined ? `${runPrefix()}${++scratchCounter}-` : checkPrefix(opts.prefix, 'options.prefix');
    if (opts.dir !== undefined && (typeof opts.dir !== 'string' || !isAbsolute(opts.dir))) {
      throw expected('an absolute directory path', 'options.dir', opts.dir);
    }
    this.base = opts.dir ?? scratchBase();
  }

  private use(): void {
    this.used = true;
    live.add(this);
    installExitHooks();
  }

  /** The directory of its backing files (made at the first call). */
  get dir(): string {
    if (this.directory === undefined) {
      this.use();
      this.directory = mkdtempSync(join(this.base, this.prefix));
    }
    return this.directory;
  }

  /**
   * A fresh device name under the prefix: `<prefix><what>-<n>`. Devices given this name are
   * removed by the cleanup, whoever made them.
   * @param what - letters, digits, `.`, `_`, `+`, `-` (default `dev`).
   */
  name(what = 'dev'): string {
    if (typeof what !== 'string') throw expected('a name part (string)', 'what', what);
    if (!PART_RE.test(what)) throw expectedRange('1 to 48 letters, digits, ".", "_", "+" or "-" (not first)', 'what', what);
    this.use();
    return `${this.prefix}${what}-${++this.names}`;
  }

  /**
   * A loop device over a new sparse file of the given size in {@link Scratch.dir}
   * (LOOP_CONFIGURE with LO_FLAGS_AUTOCLEAR, held open until the cleanup: should the process
   * die, the kernel detaches it at the last close).
   */
  async disk(options: ScratchDiskOptions): Promise<LoopDevice> {
    if (typeof options !== 'object' || options === null) throw expected('{ sectors } or { bytes }', 'options', options);
    const opts = checkOptions(options, 'options', ['sectors', 'bytes', 'blockSize', 'directIo', 'readOnly']);
    if ((opts.sectors === undefined) === (opts.bytes === undefined)) {
      throw expected('exactly one of options.sectors and options.bytes', 'options', options);
    }
    let bytes: number;
    if (opts.sectors !== undefined) {
      const sectors = checkSector(opts.sectors, 'options.sectors');
      if (sectors === 0) throw expectedRange('a positive number of sectors', 'options.sectors', sectors);
      bytes = sectors * 512;
      if (!Number.isSafeInteger(bytes)) throw expectedRange('at most 2^53 bytes', 'options.sectors', sectors);
    } else {
      bytes = checkSector(opts.bytes, 'options.bytes');
      if (bytes === 0 || bytes % 512 !== 0) throw expectedRange('a positive multiple of 512', 'options.bytes', bytes);
    }
    const attach = {
      autoclear: true,
      directIo: checkBoolean(opts.directIo, 'options.directIo', false),
      readOnly: checkBoolean(opts.readOnly, 'options.readOnly', false),
      ...(opts.blockSize === undefined ? {} : { blockSize: checkInteger(opts.blockSize, 'options.blockSize', 512, 4096) }),
    };
    const file = join(this.dir, `disk${++this.files}.img`);
    const fd = openSync(file, 'wx', 0o600);
    try {
      ftruncateSync(fd, bytes);
    } finally {
      closeSync(fd);
    }
    let loop: LoopDevice;
    try {
      loop = await LoopDevice.attach(file, attach);
    } catch (e) {
      rmSync(file, { force: true });
      throw e;
    }
    this.loops.push(loop);
    return loop;
  }

  /** A DeviceMapper (DeviceMapper.open) that the cleanup closes. */
  async dm(): Promise<DeviceMapper> {
    this.use();
    if (this.client === undefined || this.client.closed) this.client = await DeviceMapper.open();
    return this.client;
  }

  /**
   * Removes what this scratch stands for: first the devices whose name starts with the prefix
   * that are left suspended or with an inactive table are brought back to their live table
   * (`recover` with `repair`), then every device under the prefix is removed, each before the
   * devices it maps onto; then its loop devices are detached (a loop device that something
   * else still holds is only marked autoclear by the kernel and goes at its last close), its
   * backing files deleted, and its client closed. It goes on past a failure and then throws a
   * {@link ScratchCleanupError} naming all that is left. The scratch may be used again after.
   */
  async cleanup(): Promise<ScratchCleanup> {
    const removed: ScratchCleanup = { devices: [], loops: [] };
    if (!this.used) return removed;
    const errors: Error[] = [];
    const left: string[] = [];
    let dm: DeviceMapper | undefined;
    let fresh = false;
    try {
      if (this.client !== undefined && !this.client.closed) {
        dm = this.client;
      } else {
        dm = await DeviceMapper.open();
        fresh = true;
      }
    } catch (e) {
      if (!noDeviceMapper(e)) {
        errors.push(asError(e));
        left.push(`devices under ${this.prefix} (${asError(e).message})`);
      }
    }
    if (dm !== undefined) {
      try {
        await dm.recover({ prefix: this.prefix, repair: true });
        const ours = (await dm.listDevices()).filter((d) => d.name.startsWith(this.prefix));
        const deps = new Map<string, DevNumber[]>();
        for (const d of ours) deps.set(d.name, await dm.deps({ name: d.name }).catch(() => []));
        for (const d of removalOrder(ours, deps)) {
          try {
            await dm.remove({ name: d.name });
            removed.devices.push(d.name);
          } catch (e) {
            if (e instanceof DmError && e.code === 'ENXIO') continue; // gone meanwhile
            errors.push(asError(e));
            left.push(`device ${d.name} (${asError(e).message})`);
          }
        }
        const holders = await this.loopHolders(dm);
        for (const loop of this.loops) {
          const by = holders.get(loop.devString);
          if (by !== undefined) left.push(`${loop.path} still mapped by ${by.join(', ')}, not under ${this.prefix}: it goes when they let it go`);
        }
      } catch (e) {
        errors.push(asError(e));
        left.push(`devices under ${this.prefix} (${asError(e).message})`);
      }
    }
    for (const loop of this.loops.splice(0)) {
      try {
        await loop.detach();
        removed.loops.push(loop.path);
      } catch (e) {
        errors.push(asError(e));
        left.push(`${loop.path} (${asError(e).message})`);
      }
    }
    this.removeDir(removed, errors, left);
    const client = this.client;
    this.client = undefined;
    if (client !== undefined && !client.closed) await client.close();
    if (fresh && dm !== undefined && !dm.closed) await dm.close();
    return this.finish(left, errors, removed);
  }

  /**
   * The same as {@link Scratch.cleanup}, synchronously, for the process's exit (the kit calls
   * it from `process.on('exit')`), with one difference: loop devices are left to the kernel.
   * Their handles close with the process, and autoclear detaches each at its last close, once
   * nothing maps it.
   */
  cleanupSync(): ScratchCleanup {
    const removed: ScratchCleanup = { devices: [], loops: [] };
    if (!this.used) return removed;
    const errors: Error[] = [];
    const left: string[] = [];
    let sdm: DeviceMapperSync | undefined;
    try {
      sdm = DeviceMapper.openSync();
    } catch (e) {
      if (!noDeviceMapper(e)) {
        errors.push(asError(e));
        left.push(`devices under ${this.prefix} (${asError(e).message})`);
      }
    }
    if (sdm !== undefined) {
      try {
        this.removeDevicesSync(sdm, removed, errors, left);
      } catch (e) {
        errors.push(asError(e));
        left.push(`devices under ${this.prefix} (${asError(e).message})`);
      } finally {
        sdm.close();
      }
    }
    // The holds close with the process; autoclear then detaches each loop device.
    for (const loop of this.loops.splice(0)) removed.loops.push(loop.path);
    this.removeDir(removed, errors, left);
    this.client = undefined;
    return this.finish(left, errors, removed);
  }

  private removeDevicesSync(sdm: DeviceMapperSync, removed: ScratchCleanup, errors: Error[], left: string[]): void {
    sdm.recover({ prefix: this.prefix, repair: true });
    const ours = sdm.listDevices().filter((d) => d.name.startsWith(this.prefix));
    const deps = new Map<string, DevNumber[]>();
    for (const d of ours) {
      try {
        deps.set(d.name, sdm.deps({ name: d.name }));
      } catch {
        deps.set(d.name, []);
      }
    }
    for (const d of removalOrder(ours, deps)) {
      try {
        sdm.remove({ name: d.name }, { retries: 0 });
        removed.devices.push(d.name);
      } catch (e) {
        if (e instanceof DmError && e.code === 'ENXIO') continue;
        errors.push(asError(e));
        left.push(`device ${d.name} (${asError(e).message})`);
      }
    }
  }

  /** The devices, not under the prefix, that map onto its loop devices: 'major:minor' → names. */
  private async loopHolders(dm: DeviceMapper): Promise<Map<string, string[]>> {
    const holders = new Map<string, string[]>();
    if (this.loops.length === 0) return holders;
    const mine = new Set(this.loops.map((l) => l.devString));
    for (const d of await dm.listDevices()) {
      if (d.name.startsWith(this.prefix)) continue;
      const deps = await dm.deps({ name: d.name }).catch((): DevNumber[] => []);
      for (const dep of deps) {
        const k = `${dep.major}:${dep.minor}`;
        if (mine.has(k)) holders.set(k, [...(holders.get(k) ?? []), d.name]);
      }
    }
    return holders;
  }

  private removeDir(removed: ScratchCleanup, errors: Error[], left: string[]): void {
    const dir = this.directory;
    if (dir === undefined) return;
    try {
      rmSync(dir, { recursive: true, force: true });
      removed.dir = dir;
      this.directory = undefined;
    } catch (e) {
      errors.push(asError(e));
      left.push(`${dir} (${asError(e).message})`);
    }
  }

  /** Done, unless something is left: then the exit hook tries again. */
  private finish(left: readonly string[], errors: readonly Error[], removed: ScratchCleanup): ScratchCleanup {
    if (left.length > 0) throw new ScratchCleanupError(this.prefix, left, errors, removed);
    this.used = false;
    live.delete(this);
    return removed;
  }
}

/**
 * Runs `work` with a new {@link Scratch} and cleans it up afterwards, whether `work` resolved
 * or threw. A failure of `work` is what rejects (the cleanup's own error, if any, is its
 * `cause` when it has none); otherwise a failed cleanup rejects.
 */
export async function withScratch<T>(work: (scratch: Scratch) => Promise<T>, options?: ScratchOptions): Promise<T> {
  if (typeof work !== 'function') throw expected('a function', 'work', work);
  const scratch = new Scratch(options);
  let result: T;
  try {
    result = await work(scratch);
  } catch (e) {
    try {
      await scratch.cleanup();
    } catch (cleanupError) {
      if (e instanceof Error && e.cause === undefined) e.cause = cleanupError;
    }
    throw e;
  }
  await scratch.cleanup();
  return result;
}

let runScope: Scratch | undefined;
let testScope: Scratch | undefined;
let testCounter = 0;

function currentScope(): Scratch {
  if (testScope !== undefined) return testScope;
  runScope ??= new Scratch({ prefix: `${runPrefix()}run-` });
  return runScope;
}

/**
 * A loop device over a new sparse file, in the current scope: the running test's when the
 * mocha plugin (or {@link beginScratchScope}) opened one, else the run's.
 */
export function scratchDisk(options: ScratchDiskOptions): Promise<LoopDevice> {
  return currentScope().disk(options);
}

/** A fresh device name in the current scope, removed with it (see {@link Scratch.name}). */
export function scratchName(what?: string): string {
  return currentScope().name(what);
}

/** A DeviceMapper that the current scope's cleanup closes. */
export function scratchDeviceMapper(): Promise<DeviceMapper> {
  return currentScope().dm();
}

/**
 * Opens a scope for one test (the mocha plugin calls it before each test): until
 * {@link endScratchScope}, the module-level helpers hand out names and disks that belong to it.
 * What is made outside a test (in `before` hooks, at load) belongs to the run's scope.
 */
export function beginScratchScope(): Scratch {
  testScope = new Scratch({ prefix: `${runPrefix()}t${++testCounter}-` });
  return testScope;
}

/**
 * Cleans up the test's scope (the mocha plugin calls it after each test, failed or not) and
 * goes back to the run's. Rejects with a {@link ScratchCleanupError} when something is left.
 */
export async function endScratchScope(): Promise<ScratchCleanup | undefined> {
  const s = testScope;
  testScope = undefined;
  return s?.cleanup();
}

/** Cleans up the run's scope (the mocha plugin calls it after all tests). */
export async function cleanupRunScope(): Promise<ScratchCleanup | undefined> {
  return runScope?.cleanup();
}
