import type { Control, NativeRequest, NativeResult, NativeTargetSpec, NativeWait } from '../binding';
import { abortError, checkSignal, onAbort } from './abort';
import { binding } from './binding';
import { Command, Flag } from './constants';
import { decodeDev, formatDev, resolveId, type DevId, type DevNumber, type ResolvedId } from './dev';
import { CallSite, DmClosedError, DmError, exactNumber, toDmError } from './errors';
import { DeviceLocks } from './locks';
import { statusRowsFromKernel, type StatusRow } from './status';
import { rawStatus } from './targets/index';
import {
  call,
  createProgram,
  identityOf,
  lockDevice,
  refOf,
  reloadProgram,
  removeProgram,
  renameProgram,
  single,
  specsOf,
  type Answer,
  type Program,
  type Step,
} from './steps';
import { Table } from './table';
import { checkBoolean, checkInteger, checkMessage, checkName, checkOptions, checkSector, checkTargetType, checkUuid, checkWellFormed, expected } from './validate';

export { Command, Flag } from './constants';

/** A device as LIST_DEVICES reports it. */
export interface DeviceListEntry {
  name: string;
  /** Present when the kernel (>= 4.45) reports uuids and the device has one. */
  uuid?: string;
  dev: DevNumber;
  /** Present when the kernel (>= 4.38) reports event numbers. */
  eventNr?: number;
}

/** A target type the kernel has loaded. */
export interface TargetTypeVersion {
  name: string;
  version: [number, number, number];
}

/** What DEV_STATUS says of a device. */
export interface DeviceInfo {
  name: string;
  /** '' when the device has no uuid. */
  uuid: string;
  dev: DevNumber;
  /** The device node: `/dev/dm-<minor>`. */
  path: string;
  openCount: number;
  eventNr: number;
  /** Rows in the live table (or the inactive one, when asked for). */
  targetCount: number;
  suspended: boolean;
  readOnly: boolean;
  /** A live table is loaded. */
  activeTable: boolean;
  /** An inactive table is loaded, waiting for resume. */
  inactiveTable: boolean;
  /** A deferred remove is pending: the device goes when its last opener closes it. */
  deferredRemove: boolean;
  /** Suspended internally by the kernel (e.g. a thin pool while a target reconfigures). */
  internalSuspend: boolean;
}

/** A device event seen by `watch`: the device's event counter moved. */
export interface DeviceEvent {
  name: string;
  uuid?: string;
  dev: DevNumber;
  eventNr: number;
}

/** Options of `DeviceMapper.open`. */
export interface OpenOptions {
  /** The control node; default `/dev/mapper/control`. */
  path?: string;
}

/** Options of `create`. */
export interface CreateOptions {
  /** The table to load; without one the device is created with no table. */
  table?: Table;
  uuid?: string;
  /** Load the table read-only. */
  readOnly?: boolean;
  /** Resume after loading (make the table live); default true. */
  activate?: boolean;
  /**
   * The table holds secrets (crypt keys): it goes with DM_SECURE_DATA, so the kernel wipes its
   * copies, and the library wipes its request buffers after the ioctl.
   */
  secure?: boolean;
}

/** Options of `load`. */
export interface LoadOptions {
  readOnly?: boolean;
  /** The table holds secrets (crypt keys): the kernel and the library wipe their buffers. */
  secure?: boolean;
}

/** Options of `suspend`. */
export interface SuspendOptions {
  /** Do not flush queued I/O (it is kept and resubmitted on resume). */
  noFlush?: boolean;
  /** Do not freeze the filesystem on the device. */
  noLockfs?: boolean;
}

/** Options of `reload`. */
export interface ReloadOptions {
  noFlush?: boolean;
  noLockfs?: boolean;
  readOnly?: boolean;
  secure?: boolean;
}

/** Options of `table` and `status`. */
export interface QueryOptions {
  /** Ask about the inactive table. */
  inactive?: boolean;
}

/** Options of `table`. */
export interface TableOptions extends QueryOptions {
  /**
   * The table holds a key (dm-crypt): ask with DM_SECURE_DATA, so that the kernel wipes its
   * copy of the answer, and the addon its own once it is handed over.
   */
  secure?: boolean;
}

/** Options of `status`. */
export interface StatusOptions extends QueryOptions {
  /** Do not flush before reporting (for targets whose status would flush). */
  noFlush?: boolean;
  /**
   * Ask for each target's IMA measurement text (DM_IMA_MEASUREMENT_FLAG, interface 4.45+)
   * instead of its status: `status.raw` then holds `target_name=...,...;`.
   */
  ima?: boolean;
}

/** Options of `message`. */
export interface MessageOptions {
  /** The sector whose target gets the message; default 0. */
  sector?: number;
  /**
   * The message holds a secret (crypt `key set`): it goes with DM_SECURE_DATA, so the kernel
   * wipes its copies, and the library wipes its request buffers after the ioctl.
   */
  secure?: boolean;
  /**
   * The message only reports (it changes nothing), so it may be sent again with a larger buffer
   * when its answer did not fit. Default: true for `@stats_list` and `@stats_print`, false
   * otherwise — then an answer too large for the buffer rejects with ENOBUFS (the message was
   * delivered once; the buffer has grown, so asking again gets the whole answer).
   */
  repeatable?: boolean;
}

/** Options of `remove`. */
export interface RemoveOptions {
  /** Let the kernel remove the device when its last opener closes it. */
  deferred?: boolean;
  /** How many times an EBUSY is retried (udev and blkid scans race removes); default 5. */
  retries?: number;
}

/**
 * Options of `removeAll`. Without a filter, `removeAll` is the kernel's DM_REMOVE_ALL: it
 * removes every device-mapper device on the host that is not open — also those made by other
 * tools (LVM, cryptsetup, multipath, container runtimes). With `prefix` and/or `uuidPrefix` it
 * removes only the devices whose name (and/or uuid) starts with them.
 */
export interface RemoveAllOptions {
  /** Let the kernel remove open devices when their last opener closes them. */
  deferred?: boolean;
  /** Only devices whose name starts with this. */
  prefix?: string;
  /** Only devices whose uuid starts with this (devices without a uuid never match). */
  uuidPrefix?: string;
}

/** Options of `recover`. */
export interface RecoverOptions {
  /** Only devices whose name starts with this ('' for every device). */
  prefix?: string;
  /** Only devices whose uuid starts with this. */
  uuidPrefix?: string;
  /**
   * Clear each found device's inactive table and resume it if suspended; remove a device that
   * has no live table (what the dead `create` would have rolled back). Needs `prefix` or
   * `uuidPrefix`: another tool may have suspended its own devices on purpose.
   */
  repair?: boolean;
}

/** A device `recover` found suspended, carrying an inactive table, or without a live table. */
export interface RecoveredDevice {
  name: string;
  /** '' when the device has no uuid. */
  uuid: string;
  dev: DevNumber;
  /** It was suspended when found. */
  suspended: boolean;
  /** It carried an inactive table when found. */
  inactiveTable: boolean;
  /** It had a live table when found (a `create` that died before its resume left none). */
  activeTable: boolean;
  /**
   * With `repair`: the inactive table is cleared and the device runs on its live table; a
   * device that had no live table is removed.
   */
  repaired: boolean;
  /** With `repair`: why the repair failed. */
  error?: Error;
}

/** Device geometry (HDIO_GETGEO). */
export interface Geometry {
  cylinders: number;
  heads: number;
  sectors: number;
  start: number;
}

/** Options of `waitEvent` and `watch`. */
export interface SignalOptions {
  signal?: AbortSignal;
}

const DEFAULT_CONTROL = '/dev/mapper/control';

/** dm core messages that only report (dm-stats listing and printing): safe to send again. */
const READ_ONLY_MESSAGE = /^@stats_(list|print)(\s|$)/;

/** The load and suspend flags of reload's and update's options. */
function reloadFlags(options: ReloadOptions | undefined): { loadFlags: number; suspendFlags: number } {
  const opts = checkOptions(options, 'options', ['noFlush', 'noLockfs', 'readOnly', 'secure']);
  let loadFlags = checkBoolean(opts.readOnly, 'options.readOnly', false) ? Flag.READONLY : 0;
  if (checkBoolean(opts.secure, 'options.secure', false)) loadFlags |= Flag.SECURE_DATA;
  let suspendFlags = Flag.SUSPEND;
  if (checkBoolean(opts.noFlush, 'options.noFlush', false)) suspendFlags |= Flag.NOFLUSH;
  if (checkBoolean(opts.noLockfs, 'options.noLockfs', false)) suspendFlags |= Flag.SKIP_LOCKFS;
  return { loadFlags, suspendFlags };
}

function checkTable(value: unknown, name: string): Table {
  if (!(value instanceof Table)) throw expected('a Table', name, value);
  return value;
}

function checkPrefix(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw expected('a string', name, value);
  return checkWellFormed(value, name);
}

function version(v: readonly number[]): [number, number, number] {
  return [v[0] ?? 0, v[1] ?? 0, v[2] ?? 0];
}

/** The queue key of a device as the caller names it. */
function lockKey(id: ResolvedId): string {
  if (id.uuid !== undefined) return `uuid:${id.uuid}`;
  if (id.dev !== undefined) return `dev:${id.dev}`;
  return `name:${id.name ?? ''}`;
}

function idRequest(id: ResolvedId): Pick<NativeRequest, 'name' | 'uuid' | 'dev'> {
  if (id.uuid !== undefined) return { uuid: id.uuid };
  if (id.dev !== undefined) return { dev: id.dev };
  return { name: id.name ?? '' };
}

/** Why `DeviceMapper.open` failed, in words a user can act on. */
function openFailure(e: unknown, path: string, site: CallSite): Error {
  const error = toDmError(e, site, path);
  if (!(error instanceof DmError)) return error;
  let hint: string | undefined;
  if (error.code === 'ENOENT' || error.code === 'ENODEV' || error.code === 'ENXIO') {
    hint =
      `${path} does not exist: this kernel has no device-mapper loaded (load it with \`modprobe dm-mod\`, as root), ` +
      'or this is a container without the host\'s /dev/mapper. To try devmapper without it, run your script in the ' +
      'kernel sandbox: `npx devmapper-sandbox -- node script.js` (devmapper/sandbox, Debian package user-mode-linux)';
  } else if (error.code === 'EACCES' || error.code === 'EPERM') {
    hint = `${path} needs root (device-mapper ioctls need CAP_SYS_ADMIN); run as root, or try it in the kernel sandbox (npx devmapper-sandbox)`;
  }
  if (hint === undefined) return error;
  const better = new DmError({ errno: error.errno, syscall: error.syscall, device: path, message: `open ${path}: ${error.message.replace(/^open \S+: /, '')} — ${hint}`, cause: e });
  return site.attach(better);
}

/**
 * A connection to the device-mapper: one open `/dev/mapper/control`. Every method returns a
 * Promise; bad arguments reject with TypeError or RangeError before any ioctl; kernel failures
 * reject with DmError. The multi-step operations (`create`, `reload`, `rename`, `remove`,
 * `recover`...) of one instance on one device run one after another, refer to the device by its
 * uuid (else its name) after the first step, and stop when an answer is about another device.
 */
export class DeviceMapper {
  /** The kernel's device-mapper interface version, e.g. [4, 47, 0]. */
  readonly driverVersion: [number, number, number];
  private readonly control: Control;
  /** Wakes every running `watch` loop (on close). */
  private readonly watchers = new Set<() => void>();
  /** Waits in flight, cancelled on close. */
  private readonly waits = new Set<NativeWait>();
  private readonly locks = new DeviceLocks();
  /** Bumped each time a locked operation ends: a transaction that waited for a device lock re-reads. */
  private epoch = 0;
  private calls = 0;
  private syscalls = 0;
  private closing = false;
  private inflight = 0;
  private idleWaiters: (() => void)[] = [];

  private constructor(control: Control, driverVersion: [number, number, number]) {
    this.control = control;
    this.driverVersion = driverVersion;
  }

  /**
   * Opens the control node and asks the kernel for its interface version. A missing node
   * (no device-mapper in this kernel) or a permission failure says what is missing.
   */
  static async open(options?: OpenOptions): Promise<DeviceMapper> {
    const site = new CallSite(DeviceMapper.open);
    const opts = checkOptions(options, 'options', ['path']);
    const path = opts.path ?? DEFAULT_CONTROL;
    if (typeof path !== 'string' || path === '') throw site.attach(expected('a path', 'options.path', path));
    let control: Control;
    try {
      control = new (binding().Control)(path);
    } catch (e) {
      throw openFailure(e, path, site);
    }
    try {
      const r = await control.ioctl({ cmd: Command.VERSION, flags: 0 });
      return new DeviceMapper(control, version(r.version));
    } catch (e) {
      await control.close();
      throw toDmError(e, site, path);
    }
  }

  /** True once `close()` has been called. */
  get closed(): boolean {
    return this.closing || this.control.closed;
  }

  /** Buffer sizes (bytes) remembered per command, indexed by command number. */
  bufferSizes(): number[] {
    return this.control.bufferSizes();
  }

  /**
   * How many DM commands this instance has sent (failed ones included) and how many ioctl
   * system calls they took (more than one only when a buffer had to grow).
   */
  get ioctlStats(): { commands: number; ioctls: number } {
    return { commands: this.calls, ioctls: this.syscalls };
  }

  /** Runs a program: ioctls, pauses and device locks, until it returns or throws. */
  private async drive<T>(site: CallSite, program: Program<T>, held: Map<string, () => void>, startEpoch: number): Promise<T> {
    let answer: Answer = {};
    let failure: { error: unknown } | undefined;
    try {
      for (;;) {
        const next: IteratorResult<Step, T> = failure === undefined ? program.next(answer) : program.throw(failure.error);
        failure = undefined;
        if (next.done === true) return next.value;
        const step = next.value;
        if (step.kind === 'sleep') {
          await new Promise((resolve) => setTimeout(resolve, step.ms));
          answer = {};
        } else if (step.kind === 'lock') {
          if (!held.has(step.key)) held.set(step.key, await this.locks.acquire(step.key));
          answer = { stale: this.epoch !== startEpoch };
        } else {
          this.calls++;
          try {
            const result = await this.control.ioctl(step.request);
            this.syscalls += result.ioctls;
            answer = { result };
          } catch (e) {
            this.syscalls++;
            failure = { error: toDmError(e, site, step.device) };
          }
        }
      }
    } catch (e) {
      throw e instanceof Error ? site.attach(e) : e;
    }
  }

  /**
   * Runs a command: refused after close(), counted as in flight (close() waits for it), and
   * queued behind the operations of this instance on the same device when `key` is given.
   */
  private async exec<T>(site: CallSite, program: Program<T>, key?: string): Promise<T> {
    if (this.closing || this.control.closed) throw site.attach(new DmClosedError(site.name));
    this.inflight++;
    const held = new Map<string, () => void>();
    try {
      if (key !== undefined) held.set(key, await this.locks.acquire(key));
      return await this.drive(site, program, held, this.epoch);
    } finally {
      if (held.size > 0) this.epoch++;
      for (const release of [...held.values()].reverse()) release();
      this.inflight--;
      if (this.inflight === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  /** All devices, with uuids and event numbers where the kernel reports them. */
  async listDevices(): Promise<DeviceListEntry[]> {
    const site = new CallSite(this.listDevices);
    const r = await this.exec(site, single({ cmd: Command.LIST_DEVICES, flags: Flag.UUID }, undefined));
    try {
      return listEntries(r);
    } catch (e) {
      throw e instanceof Error ? site.attach(e) : e;
    }
  }

  /** The target types the kernel has loaded, with their versions. */
  async listTargets(): Promise<TargetTypeVersion[]> {
    const site = new CallSite(this.listTargets);
    const r = await this.exec(site, single({ cmd: Command.LIST_VERSIONS, flags: 0 }, undefined));
    return (r.versions ?? []).map((v) => ({ name: v.name, version: version(v.version) }));
  }

  /** One target type's version (GET_TARGET_VERSION; LIST_VERSIONS on kernels before 4.41). */
  async targetVersion(type: string): Promise<[number, number, number]> {
    const site = new CallSite(this.targetVersion);
    const name = checkTargetType(type, 'type');
    if (this.driverVersion[1] < 41) {
      const found = (await this.listTargets()).find((t) => t.name === name);
      if (!found) throw site.attach(new DmError({ errno: 22, syscall: 'ioctl', command: 'DM_LIST_VERSIONS', device: name, message: `DM_LIST_VERSIONS: no target type ${name}` }));
      return found.version;
    }
    const r = await this.exec(site, single({ cmd: Command.GET_TARGET_VERSION, flags: 0, name }, name));
    const v = r.versions?.[0];
    if (v === undefined) throw site.attach(new DmError({ errno: 71, syscall: 'ioctl', command: 'DM_GET_TARGET_VERSION', device: name, message: `DM_GET_TARGET_VERSION ${name}: the kernel answered with no version` }));
    return version(v.version);
  }

  /**
   * Creates a device and, given a table, loads it and (unless `activate: false`) resumes it.
   * If a step after the create fails, the device this call made is removed again: nothing is
   * left half-made. Every step after the create names the device by its uuid (else its name)
   * and checks that the kernel's answer is about the device it made; if another actor replaced
   * it meanwhile, the call fails with `ESTALE` and touches nothing more.
   */
  async create(name: string, options?: CreateOptions): Promise<DeviceInfo> {
    const site = new CallSite(this.create);
    const devName = checkName(name);
    const opts = checkOptions(options, 'options', ['table', 'uuid', 'readOnly', 'activate', 'secure']);
    const uuid = opts.uuid === undefined ? undefined : checkUuid(opts.uuid, 'options.uuid');
    const table = opts.table === undefined ? undefined : checkTable(opts.table, 'options.table');
    let loadFlags = checkBoolean(opts.readOnly, 'options.readOnly', false) ? Flag.READONLY : 0;
    if (checkBoolean(opts.secure, 'options.secure', false)) loadFlags |= Flag.SECURE_DATA;
    const activate = checkBoolean(opts.activate, 'options.activate', true);
    const program = createProgram({ name: devName, uuid, rows: table === undefined ? undefined : rowsOf(table), loadFlags, activate });
    return this.infoAt(site, await this.exec(site, program, `name:${devName}`), devName);
  }

  /** DEV_STATUS: what the kernel says of the device. */
  async info(id: DevId, options?: QueryOptions): Promise<DeviceInfo> {
    const site = new CallSite(this.info);
    const dev = resolveId(id);
    const opts = checkOptions(options, 'options', ['inactive']);
    const flags = checkBoolean(opts.inactive, 'options.inactive', false) ? Flag.QUERY_INACTIVE_TABLE : 0;
    return this.infoAt(site, await this.exec(site, single({ cmd: Command.DEV_STATUS, flags, ...idRequest(dev) }, dev.label)), dev.label);
  }

  /** Loads a table as the device's inactive table (made live by `resume`). */
  async load(id: DevId, table: Table, options?: LoadOptions): Promise<DeviceInfo> {
    const site = new CallSite(this.load);
    const dev = resolveId(id);
    const t = checkTable(table, 'table');
    const opts = checkOptions(options, 'options', ['readOnly', 'secure']);
    let flags = checkBoolean(opts.readOnly, 'options.readOnly', false) ? Flag.READONLY : 0;
    if (checkBoolean(opts.secure, 'options.secure', false)) flags |= Flag.SECURE_DATA;
    const r = await this.exec(site, single({ cmd: Command.TABLE_LOAD, flags, ...idRequest(dev), targets: rowsOf(t) }, dev.label), lockKey(dev));
    return this.infoAt(site, r, dev.label);
  }

  /** Suspends the device (I/O queues until resume). */
  async suspend(id: DevId, options?: SuspendOptions): Promise<DeviceInfo> {
    const site = new CallSite(this.suspend);
    const dev = resolveId(id);
    const opts = checkOptions(options, 'options', ['noFlush', 'noLockfs']);
    let flags = Flag.SUSPEND;
    if (checkBoolean(opts.noFlush, 'options.noFlush', false)) flags |= Flag.NOFLUSH;
    if (checkBoolean(opts.noLockfs, 'options.noLockfs', false)) flags |= Flag.SKIP_LOCKFS;
    return this.infoAt(site, await this.exec(site, single({ cmd: Command.DEV_SUSPEND, flags, ...idRequest(dev) }, dev.label), lockKey(dev)), dev.label);
  }

  /** Resumes the device, making its inactive table live if it has one. */
  async resume(id: DevId): Promise<DeviceInfo> {
    const site = new CallSite(this.resume);
    const dev = resolveId(id);
    return this.infoAt(site, await this.exec(site, single({ cmd: Command.DEV_SUSPEND, flags: 0, ...idRequest(dev) }, dev.label), lockKey(dev)), dev.label);
  }

  /**
   * Replaces the live table: reads the device's state and tables, loads, suspends, resumes.
   * On failure the device is put back as it was: its old table live (also when the new table
   * went live and its resume then failed), its own pending inactive table (if it had one)
   * loaded again, and suspended only if it was suspended before the call. On success the
   * device runs on the new table. Reloads of one device by one instance run one at a time.
   */
  async reload(id: DevId, table: Table, options?: ReloadOptions): Promise<DeviceInfo> {
    const site = new CallSite(this.reload);
    const dev = resolveId(id);
    const t = checkTable(table, 'table');
    const { loadFlags, suspendFlags } = reloadFlags(options);
    const program = reloadProgram({ id: idRequest(dev), label: dev.label, rows: rowsOf(t), loadFlags, suspendFlags });
    return this.infoAt(site, await this.exec(site, program, lockKey(dev)), dev.label);
  }

  /**
   * Reloads the device with the table `change` makes from its live table (`undefined` when
   * it has none): a programmatic edit (grow the last row, swap a row's target) in one
   * transaction. The live table is read under the device's lock, so another reload or update
   * of this instance cannot slip in between the read and the reload; `change` runs
   * synchronously, and if it throws (or returns something that is not a Table) nothing is
   * changed. Then it is `reload`, with the same options and the same rollback.
   */
  async update(id: DevId, change: (table: Table | undefined) => Table, options?: ReloadOptions): Promise<DeviceInfo> {
    const site = new CallSite(this.update);
    const dev = resolveId(id);
    if (typeof change !== 'function') throw site.attach(expected('a function (table) => Table', 'change', change));
    const { loadFlags, suspendFlags } = reloadFlags(options);
    const rows = (live: NativeTargetSpec[]): NativeTargetSpec[] => {
      const next: unknown = change(live.length === 0 ? undefined : Table.fromKernelRows(live));
      return rowsOf(checkTable(next, 'the table change returned'));
    };
    const program = reloadProgram({ id: idRequest(dev), label: dev.label, rows, loadFlags, suspendFlags });
    return this.infoAt(site, await this.exec(site, program, lockKey(dev)), dev.label);
  }

  /** Drops the device's inactive table. */
  async clear(id: DevId): Promise<DeviceInfo> {
    const site = new CallSite(this.clear);
    const dev = resolveId(id);
    return this.infoAt(site, await this.exec(site, single({ cmd: Command.TABLE_CLEAR, flags: 0, ...idRequest(dev) }, dev.label), lockKey(dev)), dev.label);
  }

  /** The device's table (live, or inactive with `{ inactive: true }`), typed where the library can. */
  async table(id: DevId, options?: TableOptions): Promise<Table | undefined> {
    const site = new CallSite(this.table);
    const dev = resolveId(id);
    const opts = checkOptions(options, 'options', ['inactive', 'secure']);
    let flags = Flag.STATUS_TABLE;
    if (checkBoolean(opts.inactive, 'options.inactive', false)) flags |= Flag.QUERY_INACTIVE_TABLE;
    if (checkBoolean(opts.secure, 'options.secure', false)) flags |= Flag.SECURE_DATA;
    const r = await this.exec(site, single({ cmd: Command.TABLE_STATUS, flags, ...idRequest(dev) }, dev.label));
    try {
      const rows = specsOf(r, dev.label);
      return rows.length === 0 ? undefined : Table.fromKernelRows(rows);
    } catch (e) {
      throw e instanceof Error ? site.attach(e) : e;
    }
  }

  /** The status of each row of the device's table. */
  async status(id: DevId, options?: StatusOptions): Promise<StatusRow[]> {
    const site = new CallSite(this.status);
    const dev = resolveId(id);
    const opts = checkOptions(options, 'options', ['inactive', 'noFlush', 'ima']);
    let flags = 0;
    if (checkBoolean(opts.inactive, 'options.inactive', false)) flags |= Flag.QUERY_INACTIVE_TABLE;
    if (checkBoolean(opts.noFlush, 'options.noFlush', false)) flags |= Flag.NOFLUSH;
    const ima = checkBoolean(opts.ima, 'options.ima', false);
    if (ima) {
      if (this.driverVersion[1] < 45) {
        throw site.attach(new RangeError(`Expected a device-mapper interface of 4.45 or later for options.ima but the kernel has ${this.driverVersion.join('.')}`));
      }
      flags |= Flag.IMA_MEASUREMENT;
    }
    const r = await this.exec(site, single({ cmd: Command.TABLE_STATUS, flags, ...idRequest(dev) }, dev.label));
    try {
      const rows = specsOf(r, dev.label);
      // IMA measurement text is not a status: it stays raw.
      if (ima) return rows.map((row) => Object.freeze({ start: row.start, length: row.length, type: row.type, status: rawStatus(row.type, row.params) }));
      return statusRowsFromKernel(rows);
    } catch (e) {
      throw e instanceof Error ? site.attach(e) : e;
    }
  }

  /** The devices the table uses. */
  async deps(id: DevId, options?: QueryOptions): Promise<DevNumber[]> {
    const site = new CallSite(this.deps);
    const dev = resolveId(id);
    const opts = checkOptions(options, 'options', ['inactive']);
    const flags = checkBoolean(opts.inactive, 'options.inactive', false) ? Flag.QUERY_INACTIVE_TABLE : 0;
    const r = await this.exec(site, single({ cmd: Command.TABLE_DEPS, flags, ...idRequest(dev) }, dev.label));
    try {
      return (r.deps ?? []).map((d) => decodeDev(exactNumber(d, 'a dependency', dev.label)));
    } catch (e) {
      throw e instanceof Error ? site.attach(e) : e;
    }
  }

  /** Sends a message to the target at `sector`; resolves with its output, if it gave any. */
  async message(id: DevId, message: string, options?: MessageOptions): Promise<string | undefined> {
    const site = new CallSite(this.message);
    const dev = resolveId(id);
    const text = checkMessage(message);
    const opts = checkOptions(options, 'options', ['sector', 'secure', 'repeatable']);
    const sector = opts.sector === undefined ? 0 : checkSector(opts.sector, 'options.sector');
    const flags = checkBoolean(opts.secure, 'options.secure', false) ? Flag.SECURE_DATA : 0;
    const repeatable = checkBoolean(opts.repeatable, 'options.repeatable', READ_ONLY_MESSAGE.test(text));
    const r = await this.exec(site, single({ cmd: Command.TARGET_MSG, flags, ...idRequest(dev), sector, message: text, repeatable }, dev.label));
    return r.data;
  }

  /** Renames the device (any DevId form: the kernel renames by name, so others are looked up first). */
  async rename(id: DevId, newName: string): Promise<DeviceInfo> {
    const site = new CallSite(this.rename);
    const dev = resolveId(id);
    const name = checkName(newName, 'newName');
    return this.infoAt(site, await this.exec(site, renameProgram(idRequest(dev), dev.label, name, false), lockKey(dev)), name);
  }

  /** Sets the uuid of a device that has none (the kernel refuses to change one: EINVAL). */
  async setUuid(id: DevId, uuid: string): Promise<DeviceInfo> {
    const site = new CallSite(this.setUuid);
    const dev = resolveId(id);
    const value = checkUuid(uuid);
    return this.infoAt(site, await this.exec(site, renameProgram(idRequest(dev), dev.label, value, true), lockKey(dev)), dev.label);
  }

  /**
   * Removes the device. EBUSY is retried `retries` times with a growing pause (scans by
   * udev or blkid hold devices open briefly), then reported.
   */
  async remove(id: DevId, options?: RemoveOptions): Promise<void> {
    const site = new CallSite(this.remove);
    const dev = resolveId(id);
    const opts = checkOptions(options, 'options', ['deferred', 'retries']);
    const deferred = checkBoolean(opts.deferred, 'options.deferred', false);
    const retries = opts.retries === undefined ? 5 : checkInteger(opts.retries, 'options.retries', 0, 100);
    const request: NativeRequest = { cmd: Command.DEV_REMOVE, flags: deferred ? Flag.DEFERRED_REMOVE : 0, ...idRequest(dev) };
    await this.exec(site, removeProgram(request, dev.label, retries), lockKey(dev));
  }

  /**
   * **Without a filter this removes every device-mapper device on the host** that is not open
   * (DM_REMOVE_ALL) — also devices of LVM, cryptsetup, multipath or container runtimes. Give
   * `prefix` and/or `uuidPrefix` to remove only the devices whose name / uuid start with them
   * (devices that depend on each other are removed top-down). Resolves with the names removed
   * (with a filter) or [] (DM_REMOVE_ALL does not say).
   */
  async removeAll(options?: RemoveAllOptions): Promise<string[]> {
    const site = new CallSite(this.removeAll);
    const opts = checkOptions(options, 'options', ['deferred', 'prefix', 'uuidPrefix']);
    const flags = checkBoolean(opts.deferred, 'options.deferred', false) ? Flag.DEFERRED_REMOVE : 0;
    const prefix = checkPrefix(opts.prefix, 'options.prefix');
    const uuidPrefix = checkPrefix(opts.uuidPrefix, 'options.uuidPrefix');
    if (prefix === undefined && uuidPrefix === undefined) {
      await this.exec(site, single({ cmd: Command.REMOVE_ALL, flags }, undefined));
      return [];
    }
    return this.exec(site, removeMatching(flags, (d) => matches(d, prefix, uuidPrefix)));
  }

  /**
   * Finds the devices left suspended, carrying an inactive table or without a live table (by
   * a process that died in the middle of a `reload` or `create`, say), and with `repair` clears
   * their inactive table and resumes them on their live table, and removes those that never
   * got a live table. `repair` needs a `prefix` or `uuidPrefix` filter. Run it when no other process is
   * in the middle of an operation on the devices it matches (at start-up, say): it cannot tell
   * such a live operation from a dead one.
   */
  async recover(options?: RecoverOptions): Promise<RecoveredDevice[]> {
    const site = new CallSite(this.recover);
    const opts = checkOptions(options, 'options', ['prefix', 'uuidPrefix', 'repair']);
    const prefix = checkPrefix(opts.prefix, 'options.prefix');
    const uuidPrefix = checkPrefix(opts.uuidPrefix, 'options.uuidPrefix');
    const repair = checkBoolean(opts.repair, 'options.repair', false);
    if (repair && prefix === undefined && uuidPrefix === undefined) {
      throw site.attach(
        new RangeError("Expected options.prefix or options.uuidPrefix with options.repair (other tools may suspend their own devices on purpose; prefix '' means every device) but received neither"),
      );
    }
    const listed = await this.listDevices();
    const found: RecoveredDevice[] = [];
    for (const d of listed.filter((e) => matches(e, prefix, uuidPrefix))) {
      const ref = d.uuid !== undefined ? { uuid: d.uuid } : { name: d.name };
      try {
        found.push(...(await this.exec(site, recoverProgram(ref, d, repair))));
      } catch (e) {
        if (e instanceof DmError && e.code === 'ENXIO') continue; // gone meanwhile
        throw e;
      }
    }
    return found;
  }

  /** Sets the geometry the device reports (HDIO_GETGEO). */
  async setGeometry(id: DevId, geometry: Geometry): Promise<DeviceInfo> {
    const site = new CallSite(this.setGeometry);
    const dev = resolveId(id);
    if (typeof geometry !== 'object' || geometry === null) throw expected('{ cylinders, heads, sectors, start }', 'geometry', geometry);
    const g = checkOptions(geometry, 'geometry', ['cylinders', 'heads', 'sectors', 'start']);
    // The kernel's limits (dm-ioctl.c dev_set_geometry): 16-bit cylinders, 8-bit heads and sectors.
    const cylinders = checkInteger(g.cylinders, 'geometry.cylinders', 0, 65535);
    const heads = checkInteger(g.heads, 'geometry.heads', 0, 255);
    const sectors = checkInteger(g.sectors, 'geometry.sectors', 0, 255);
    const start = checkSector(g.start, 'geometry.start');
    const data = `${cylinders} ${heads} ${sectors} ${start}`;
    return this.infoAt(site, await this.exec(site, geometryProgram(idRequest(dev), dev.label, data), lockKey(dev)), dev.label);
  }

  /**
   * Waits until the device's event counter differs from `eventNr` (a target raised an
   * event), then resolves with the device's info. The wait runs on a thread of the addon,
   * never on Node's threadpool, and ends early when `signal` aborts (rejecting with its reason
   * or an AbortError) or when the instance closes (ECANCELED).
   */
  async waitEvent(id: DevId, eventNr: number, options?: SignalOptions): Promise<DeviceInfo> {
    const site = new CallSite(this.waitEvent);
    const dev = resolveId(id);
    const nr = checkInteger(eventNr, 'eventNr', 0, 0xffffffff);
    const signal = checkSignal(checkOptions(options, 'options', ['signal']).signal, 'options.signal');
    if (signal?.aborted) throw site.attach(abortError(signal));
    if (this.closing || this.control.closed) throw site.attach(new DmClosedError('waitEvent'));
    let wait: NativeWait;
    try {
      wait = this.control.waitEvent({ cmd: Command.DEV_WAIT, flags: 0, ...idRequest(dev), eventNr: nr });
    } catch (e) {
      throw toDmError(e, site, dev.label);
    }
    this.waits.add(wait);
    const unsubscribe = onAbort(signal, () => wait.cancel());
    try {
      const r = await wait.promise;
      return this.infoAt(site, r, dev.label);
    } catch (e) {
      if (signal?.aborted) throw site.attach(abortError(signal));
      throw toDmError(e, site, dev.label);
    } finally {
      this.waits.delete(wait);
      unsubscribe();
    }
  }

  /**
   * Yields an event each time a device's event counter moves (DM_DEV_ARM_POLL and poll on a
   * control fd of the addon's own thread). The baseline is the device list taken when the
   * watch starts, before the first arm, so no event after the call is lost; a device is known
   * by its number, name and uuid together, and forgotten once it is gone, so a new device that
   * reuses a removed one's number is not mistaken for it. Ends when `signal` aborts, the loop
   * is left, or the instance closes.
   */
  async *watch(options?: SignalOptions): AsyncGenerator<DeviceEvent, void, undefined> {
    const site = new CallSite(this.watch);
    const signal = checkSignal(checkOptions(options, 'options', ['signal']).signal, 'options.signal');
    if (signal?.aborted) return;
    if (this.closing || this.control.closed) throw site.attach(new DmClosedError('watch'));
    const queue: DeviceEvent[] = [];
    let failure: Error | undefined;
    let wake: (() => void) | undefined;
    const notify = (): void => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const key = (d: DeviceListEntry): string => `${formatDev(d.dev)} ${d.name} ${d.uuid ?? ''}`;
    let seen = new Map<string, number>();
    for (const d of await this.listDevices()) seen.set(key(d), d.eventNr ?? 0);
    if (signal?.aborted || this.closing) return;
    let listing: Promise<void> = Promise.resolve();
    const onArmed = (): void => {
      // Each call follows an arm: list devices and report the counters that moved.
      listing = listing.then(async () => {
        if (this.closing) return;
        try {
          const now = new Map<string, number>();
          for (const d of await this.listDevices()) {
            const k = key(d);
            const nr = d.eventNr ?? 0;
            now.set(k, nr);
            const before = seen.get(k);
            if (before !== nr && !(before === undefined && nr === 0)) {
              queue.push({ name: d.name, ...(d.uuid !== undefined ? { uuid: d.uuid } : {}), dev: d.dev, eventNr: nr });
            }
          }
          seen = now;
        } catch (e) {
          if (!(e instanceof DmClosedError)) failure = e instanceof Error ? e : new Error(String(e));
        }
        notify();
      });
    };
    const onError = (e: Error): void => {
      failure = toDmError(e, site);
      notify();
    };
    let handle;
    try {
      handle = this.control.watch(onArmed, onError);
    } catch (e) {
      throw toDmError(e, site);
    }
    const unsubscribe = onAbort(signal, notify);
    this.watchers.add(notify);
    try {
      for (;;) {
        const next = queue.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        if (failure !== undefined) throw failure;
        if (signal?.aborted || this.closing || this.control.closed) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    } finally {
      this.watchers.delete(notify);
      unsubscribe();
      handle.stop();
    }
  }

  /**
   * Closes the control node. Calls made after this are refused (`DmClosedError`,
   * `ERR_DM_CLOSED`); waits end with ECANCELED and watches end; operations already started
   * — a `reload` between its suspend and its resume, a `create` and its rollback — run to
   * their end first, so that `close()` (in a SIGTERM handler, say) never leaves a device
   * half-made or suspended.
   */
  async close(): Promise<void> {
    this.closing = true;
    for (const wait of this.waits) wait.cancel();
    for (const wake of this.watchers) wake();
    if (this.inflight > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    await this.control.close();
  }

  private infoAt(site: CallSite, r: NativeResult, label: string): DeviceInfo {
    try {
      return infoOf(r, label);
    } catch (e) {
      throw e instanceof Error ? site.attach(e) : e;
    }
  }
}

function matches(d: { name: string; uuid?: string }, prefix: string | undefined, uuidPrefix: string | undefined): boolean {
  if (prefix !== undefined && !d.name.startsWith(prefix)) return false;
  if (uuidPrefix !== undefined && (d.uuid === undefined || !d.uuid.startsWith(uuidPrefix))) return false;
  return true;
}

function listEntries(r: NativeResult): DeviceListEntry[] {
  return (r.devices ?? []).map((d) => {
    const entry: DeviceListEntry = { name: d.name, dev: decodeDev(exactNumber(d.dev, 'dev', d.name)) };
    if (d.uuid !== undefined && d.uuid !== '') entry.uuid = d.uuid;
    if (d.eventNr !== undefined) entry.eventNr = d.eventNr;
    return entry;
  });
}

/** Removes the listed devices that match, top-down (a device others use is busy until they go). */
function* removeMatching(flags: number, match: (d: DeviceListEntry) => boolean): Program<string[]> {
  const listed = yield* call({ cmd: Command.LIST_DEVICES, flags: Flag.UUID }, undefined);
  let left = listEntries(listed).filter(match);
  const removed: string[] = [];
  let lastError: unknown;
  while (left.length > 0) {
    const busy: DeviceListEntry[] = [];
    for (const d of left) {
      const ref = d.uuid !== undefined ? { uuid: d.uuid } : { name: d.name };
      try {
        yield* call({ cmd: Command.DEV_REMOVE, flags, ...ref }, d.name);
        removed.push(d.name);
      } catch (e) {
        if (e instanceof DmError && e.code === 'ENXIO') continue; // gone meanwhile
        if (!(e instanceof DmError && e.code === 'EBUSY')) throw e;
        lastError = e;
        busy.push(d);
      }
    }
    if (busy.length === left.length) {
      if (lastError instanceof DmError) {
        lastError.message = `${lastError.message} (still in use: ${busy.map((d) => d.name).join(', ')}; removed: ${removed.length === 0 ? 'none' : removed.join(', ')})`;
      }
      throw lastError;
    }
    left = busy;
  }
  return removed;
}

/** Looks at one device and, with `repair`, clears its inactive table and resumes it. */
function* recoverProgram(ref: { uuid: string } | { name: string }, listed: DeviceListEntry, repair: boolean): Program<RecoveredDevice[]> {
  const label = listed.name;
  const first = yield* call({ cmd: Command.DEV_STATUS, flags: 0, ...ref }, label);
  const ours = identityOf(first, label);
  if (formatDev(decodeDev(ours.dev)) !== formatDev(listed.dev)) return []; // replaced since the listing
  yield* lockDevice(ours.dev);
  const status = yield* call({ cmd: Command.DEV_STATUS, flags: 0, ...refOf(ours) }, label);
  const suspended = (status.flags & Flag.SUSPEND) !== 0;
  const inactiveTable = (status.flags & Flag.INACTIVE_PRESENT) !== 0;
  const activeTable = (status.flags & Flag.ACTIVE_PRESENT) !== 0;
  if (!suspended && !inactiveTable && activeTable) return [];
  const found: RecoveredDevice = { name: ours.name, uuid: ours.uuid, dev: decodeDev(ours.dev), suspended, inactiveTable, activeTable, repaired: false };
  if (!repair) return [found];
  try {
    if (!activeTable) {
      yield* call({ cmd: Command.DEV_REMOVE, flags: 0, ...refOf(ours) }, label);
    } else {
      if (inactiveTable) yield* call({ cmd: Command.TABLE_CLEAR, flags: 0, ...refOf(ours) }, label);
      if (suspended) yield* call({ cmd: Command.DEV_SUSPEND, flags: 0, ...refOf(ours) }, label);
    }
    found.repaired = true;
  } catch (e) {
    found.error = e instanceof Error ? e : new Error(String(e));
  }
  return [found];
}

/** DEV_SET_GEOMETRY answers without the device's status: ask for it after. */
function* geometryProgram(id: Pick<NativeRequest, 'name' | 'uuid' | 'dev'>, label: string, data: string): Program<NativeResult> {
  yield* call({ cmd: Command.DEV_SET_GEOMETRY, flags: 0, ...id, data }, label);
  return yield* call({ cmd: Command.DEV_STATUS, flags: 0, ...id }, label);
}

function rowsOf(table: Table): { start: number; length: number; type: string; params: string }[] {
  return table.rows.map((r) => ({ start: r.start, length: r.length, type: r.type, params: r.params }));
}

/** DeviceInfo from a DEV_STATUS-like answer. */
export function infoOf(r: NativeResult, label?: string): DeviceInfo {
  const dev = decodeDev(exactNumber(r.dev, 'dev', label));
  return {
    name: r.name,
    uuid: r.uuid,
    dev,
    path: `/dev/dm-${dev.minor}`,
    openCount: r.openCount,
    eventNr: r.eventNr,
    targetCount: r.targetCount,
    suspended: (r.flags & Flag.SUSPEND) !== 0,
    readOnly: (r.flags & Flag.READONLY) !== 0,
    activeTable: (r.flags & Flag.ACTIVE_PRESENT) !== 0,
    inactiveTable: (r.flags & Flag.INACTIVE_PRESENT) !== 0,
    deferredRemove: (r.flags & Flag.DEFERRED_REMOVE) !== 0,
    internalSuspend: (r.flags & Flag.INTERNAL_SUSPEND) !== 0,
  };
}
