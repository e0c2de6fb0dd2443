import type { Control, NativeRequest, NativeResult, NativeTargetRow } from '../binding';
import { binding } from './binding';
import { decodeDev, formatDev, resolveId, type DevId, type DevNumber, type ResolvedId } from './dev';
import { CallSite, DmError, toDmError } from './errors';
import { parseTargetStatus, type StatusRow } from './status';
import { Table } from './table';
import { checkBoolean, checkInteger, checkMessage, checkName, checkOptions, checkSector, checkTargetType, checkUuid, expected } from './validate';

/** DM command numbers (`DM_*_CMD` in linux/dm-ioctl.h). */
export const Command = {
  VERSION: 0,
  REMOVE_ALL: 1,
  LIST_DEVICES: 2,
  DEV_CREATE: 3,
  DEV_REMOVE: 4,
  DEV_RENAME: 5,
  DEV_SUSPEND: 6,
  DEV_STATUS: 7,
  DEV_WAIT: 8,
  TABLE_LOAD: 9,
  TABLE_CLEAR: 10,
  TABLE_DEPS: 11,
  TABLE_STATUS: 12,
  LIST_VERSIONS: 13,
  TARGET_MSG: 14,
  DEV_SET_GEOMETRY: 15,
  DEV_ARM_POLL: 16,
  GET_TARGET_VERSION: 17,
} as const;

/** dm_ioctl flags (linux/dm-ioctl.h). */
export const Flag = {
  READONLY: 1 << 0,
  SUSPEND: 1 << 1,
  PERSISTENT_DEV: 1 << 3,
  STATUS_TABLE: 1 << 4,
  ACTIVE_PRESENT: 1 << 5,
  INACTIVE_PRESENT: 1 << 6,
  BUFFER_FULL: 1 << 8,
  SKIP_BDGET: 1 << 9,
  SKIP_LOCKFS: 1 << 10,
  NOFLUSH: 1 << 11,
  QUERY_INACTIVE_TABLE: 1 << 12,
  UEVENT_GENERATED: 1 << 13,
  UUID: 1 << 14,
  SECURE_DATA: 1 << 15,
  DATA_OUT: 1 << 16,
  DEFERRED_REMOVE: 1 << 17,
  INTERNAL_SUSPEND: 1 << 18,
  IMA_MEASUREMENT: 1 << 19,
} as const;

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
}

/** Options of `remove`. */
export interface RemoveOptions {
  /** Let the kernel remove the device when its last opener closes it. */
  deferred?: boolean;
  /** How many times an EBUSY is retried (udev and blkid scans race removes); default 5. */
  retries?: number;
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

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const e = new Error('The operation was aborted');
  e.name = 'AbortError';
  return e;
}

function checkSignal(value: unknown, name: string): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof AbortSignal)) throw expected('an AbortSignal', name, value);
  return value;
}

function checkTable(value: unknown, name: string): Table {
  if (!(value instanceof Table)) throw expected('a Table', name, value);
  return value;
}

function version(v: readonly number[]): [number, number, number] {
  return [v[0] ?? 0, v[1] ?? 0, v[2] ?? 0];
}

/**
 * A connection to the device-mapper: one open `/dev/mapper/control`. Every method runs its
 * ioctl on the threadpool and returns a Promise; bad arguments reject with TypeError or
 * RangeError before any ioctl; kernel failures reject with DmError.
 */
export class DeviceMapper {
  /** The kernel's device-mapper interface version, e.g. [4, 47, 0]. */
  readonly driverVersion: [number, number, number];
  private readonly control: Control;
  /** Wakes every running `watch` loop (on close). */
  private readonly watchers = new Set<() => void>();
  private calls = 0;
  private syscalls = 0;

  private constructor(control: Control, driverVersion: [number, number, number]) {
    this.control = control;
    this.driverVersion = driverVersion;
  }

  /** Opens the control node and asks the kernel for its interface version. */
  static async open(options?: OpenOptions): Promise<DeviceMapper> {
    const site = new CallSite(DeviceMapper.open);
    const opts = checkOptions(options, 'options', ['path']);
    const path = opts.path ?? DEFAULT_CONTROL;
    if (typeof path !== 'string') throw expected('a path', 'options.path', path);
    let control: Control;
    try {
      control = new (binding().Control)(path);
    } catch (e) {
      throw toDmError(e, site, path);
    }
    try {
      const r = await control.ioctl({ cmd: Command.VERSION, flags: 0 });
      return new DeviceMapper(control, version(r.version));
    } catch (e) {
      await control.close();
      throw toDmError(e, site);
    }
  }

  /** True once `close()` has been called. */
  get closed(): boolean {
    return this.control.closed;
  }

  /** Buffer sizes (bytes) remembered per command, indexed by command number. */
  bufferSizes(): number[] {
    return this.control.bufferSizes();
  }

  /**
   * How many DM commands this instance has run and how many ioctl system calls they took
   * (more than one only when a buffer had to grow): the steady state is one per command.
   */
  get ioctlStats(): { commands: number; ioctls: number } {
    return { commands: this.calls, ioctls: this.syscalls };
  }

  private async run(site: CallSite, request: NativeRequest, device?: string): Promise<NativeResult> {
    try {
      const r = await this.control.ioctl(request);
      this.calls++;
      this.syscalls += r.ioctls;
      return r;
    } catch (e) {
      throw toDmError(e, site, device);
    }
  }

  private idRequest(id: ResolvedId): Pick<NativeRequest, 'name' | 'uuid' | 'dev'> {
    const r: Pick<NativeRequest, 'name' | 'uuid' | 'dev'> = {};
    if (id.name !== undefined) r.name = id.name;
    if (id.uuid !== undefined) r.uuid = id.uuid;
    if (id.dev !== undefined) r.dev = id.dev;
    return r;
  }

  /** All devices, with uuids and event numbers where the kernel reports them. */
  async listDevices(): Promise<DeviceListEntry[]> {
    const site = new CallSite(this.listDevices);
    const r = await this.run(site, { cmd: Command.LIST_DEVICES, flags: Flag.UUID });
    return (r.devices ?? []).map((d) => {
      const entry: DeviceListEntry = { name: d.name, dev: decodeDev(d.dev) };
      if (d.uuid !== undefined && d.uuid !== '') entry.uuid = d.uuid;
      if (d.eventNr !== undefined) entry.eventNr = d.eventNr;
      return entry;
    });
  }

  /** The target types the kernel has loaded, with their versions. */
  async listTargets(): Promise<TargetTypeVersion[]> {
    const site = new CallSite(this.listTargets);
    const r = await this.run(site, { cmd: Command.LIST_VERSIONS, flags: 0 });
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
    const r = await this.run(site, { cmd: Command.GET_TARGET_VERSION, flags: 0, name }, name);
    const v = r.versions?.[0];
    if (v === undefined) throw site.attach(new DmError({ errno: 71, syscall: 'ioctl', command: 'DM_GET_TARGET_VERSION', device: name, message: `DM_GET_TARGET_VERSION ${name}: the kernel answered with no version` }));
    return version(v.version);
  }

  /**
   * Creates a device and, given a table, loads it and (unless `activate: false`) resumes it.
   * If a step after the create fails, the device is removed again: nothing is left half-made.
   */
  async create(name: string, options?: CreateOptions): Promise<DeviceInfo> {
    const site = new CallSite(this.create);
    const devName = checkName(name);
    const opts = checkOptions(options, 'options', ['table', 'uuid', 'readOnly', 'activate']);
    const uuid = opts.uuid === undefined ? undefined : checkUuid(opts.uuid, 'options.uuid');
    const table = opts.table === undefined ? undefined : checkTable(opts.table, 'options.table');
    const readOnly = checkBoolean(opts.readOnly, 'options.readOnly', false);
    const activate = checkBoolean(opts.activate, 'options.activate', true);

    const created = await this.run(site, { cmd: Command.DEV_CREATE, flags: 0, name: devName, ...(uuid !== undefined ? { uuid } : {}) }, devName);
    // From here on the device is ours: refer to it by its number, and remove it on failure.
    const ours = { dev: created.dev };
    try {
      if (table !== undefined) {
        await this.run(site, { cmd: Command.TABLE_LOAD, flags: readOnly ? Flag.READONLY : 0, ...ours, targets: rowsOf(table) }, devName);
        if (activate) await this.run(site, { cmd: Command.DEV_SUSPEND, flags: 0, ...ours }, devName);
      }
      return infoOf(await this.run(site, { cmd: Command.DEV_STATUS, flags: 0, ...ours }, devName));
    } catch (error) {
      try {
        await this.control.ioctl({ cmd: Command.DEV_REMOVE, flags: 0, ...ours });
      } catch (rollback) {
        if (error instanceof DmError) error.rollbackError = toDmError(rollback, site, devName);
      }
      throw error;
    }
  }

  /** DEV_STATUS: what the kernel says of the device. */
  async info(id: DevId, options?: QueryOptions): Promise<DeviceInfo> {
    const site = new CallSite(this.info);
    const dev = resolveId(id);
    const opts = checkOptions(options, 'options', ['inactive']);
    const flags = checkBoolean(opts.inactive, 'options.inactive', false) ? Flag.QUERY_INACTIVE_TABLE : 0;
    return infoOf(await this.run(site, { cmd: Command.DEV_STATUS, flags, ...this.idRequest(dev) }, dev.label));
  }

  /** Loads a table as the device's inactive table (made live by `resume`). */
  async load(id: DevId, table: Table, options?: LoadOptions): Promise<DeviceInfo> {
    const site = new CallSite(this.load);
    const dev = resolveId(id);
    const t = checkTable(table, 'table');
    const opts = checkOptions(options, 'options', ['readOnly', 'secure']);
    let flags = checkBoolean(opts.readOnly, 'options.readOnly', false) ? Flag.READONLY : 0;
    if (checkBoolean(opts.secure, 'options.secure', false)) flags |= Flag.SECURE_DATA;
    return infoOf(await this.run(site, { cmd: Command.TABLE_LOAD, flags, ...this.idRequest(dev), targets: rowsOf(t) }, dev.label));
  }

  /** Suspends the device (I/O queues until resume). */
  async suspend(id: DevId, options?: SuspendOptions): Promise<DeviceInfo> {
    const site = new CallSite(this.suspend);
    const dev = resolveId(id);
    const opts = checkOptions(options, 'options', ['noFlush', 'noLockfs']);
    let flags = Flag.SUSPEND;
    if (checkBoolean(opts.noFlush, 'options.noFlush', false)) flags |= Flag.NOFLUSH;
    if (checkBoolean(opts.noLockfs, 'options.noLockfs', false)) flags |= Flag.SKIP_LOCKFS;
    return infoOf(await this.run(site, { cmd: Command.DEV_SUSPEND, flags, ...this.idRequest(dev) }, dev.label));
  }

  /** Resumes the device, making its inactive table live if it has one. */
  async resume(id: DevId): Promise<DeviceInfo> {
    const site = new CallSite(this.resume);
    const dev = resolveId(id);
    return infoOf(await this.run(site, { cmd: Command.DEV_SUSPEND, flags: 0, ...this.idRequest(dev) }, dev.label));
  }

  /**
   * Replaces the live table: load, suspend, resume. On failure the inactive table is cleared
   * and the device is resumed on its old table: it is never left suspended.
   */
  async reload(id: DevId, table: Table, options?: ReloadOptions): Promise<DeviceInfo> {
    const site = new CallSite(this.reload);
    const dev = resolveId(id);
    const t = checkTable(table, 'table');
    const opts = checkOptions(options, 'options', ['noFlush', 'noLockfs', 'readOnly', 'secure']);
    let loadFlags = checkBoolean(opts.readOnly, 'options.readOnly', false) ? Flag.READONLY : 0;
    if (checkBoolean(opts.secure, 'options.secure', false)) loadFlags |= Flag.SECURE_DATA;
    let suspendFlags = Flag.SUSPEND;
    if (checkBoolean(opts.noFlush, 'options.noFlush', false)) suspendFlags |= Flag.NOFLUSH;
    if (checkBoolean(opts.noLockfs, 'options.noLockfs', false)) suspendFlags |= Flag.SKIP_LOCKFS;
    const ref = this.idRequest(dev);

    const loaded = await this.run(site, { cmd: Command.TABLE_LOAD, flags: loadFlags, ...ref, targets: rowsOf(t) }, dev.label);
    // The load named the device; from here on use its number, which a rename cannot change.
    const ours = { dev: loaded.dev };
    try {
      await this.run(site, { cmd: Command.DEV_SUSPEND, flags: suspendFlags, ...ours }, dev.label);
      return infoOf(await this.run(site, { cmd: Command.DEV_SUSPEND, flags: 0, ...ours }, dev.label));
    } catch (error) {
      const rollback = await this.restore(ours);
      if (rollback !== undefined && error instanceof DmError) error.rollbackError = toDmError(rollback, site, dev.label);
      throw error;
    }
  }

  /**
   * After a failed suspend or resume: drop the inactive table, then resume on the old live
   * table (a resume that failed leaves the device suspended, see dm-ioctl do_resume).
   * Returns the first failure of the rollback, if any.
   */
  private async restore(ref: { dev: number }): Promise<unknown> {
    let failure: unknown;
    try {
      await this.control.ioctl({ cmd: Command.TABLE_CLEAR, flags: 0, ...ref });
    } catch (e) {
      failure = e;
    }
    try {
      const info = await this.control.ioctl({ cmd: Command.DEV_STATUS, flags: 0, ...ref });
      if (info.flags & Flag.SUSPEND) await this.control.ioctl({ cmd: Command.DEV_SUSPEND, flags: 0, ...ref });
    } catch (e) {
      failure ??= e;
    }
    return failure;
  }

  /** Drops the device's inactive table. */
  async clear(id: DevId): Promise<DeviceInfo> {
    const site = new CallSite(this.clear);
    const dev = resolveId(id);
    return infoOf(await this.run(site, { cmd: Command.TABLE_CLEAR, flags: 0, ...this.idRequest(dev) }, dev.label));
  }

  /** The device's table (live, or inactive with `{ inactive: true }`), typed where the library can. */
  async table(id: DevId, options?: QueryOptions): Promise<Table | undefined> {
    const site = new CallSite(this.table);
    const dev = resolveId(id);
    const opts = checkOptions(options, 'options', ['inactive']);
    let flags = Flag.STATUS_TABLE;
    if (checkBoolean(opts.inactive, 'options.inactive', false)) flags |= Flag.QUERY_INACTIVE_TABLE;
    const r = await this.run(site, { cmd: Command.TABLE_STATUS, flags, ...this.idRequest(dev) }, dev.label);
    const rows = r.targets ?? [];
    return rows.length === 0 ? undefined : Table.fromKernelRows(rows);
  }

  /** The status of each row of the device's table. */
  async status(id: DevId, options?: StatusOptions): Promise<StatusRow[]> {
    const site = new CallSite(this.status);
    const dev = resolveId(id);
    const opts = checkOptions(options, 'options', ['inactive', 'noFlush', 'ima']);
    let flags = 0;
    if (checkBoolean(opts.inactive, 'options.inactive', false)) flags |= Flag.QUERY_INACTIVE_TABLE;
    if (checkBoolean(opts.noFlush, 'options.noFlush', false)) flags |= Flag.NOFLUSH;
    if (checkBoolean(opts.ima, 'options.ima', false)) {
      if (this.driverVersion[1] < 45) {
        throw site.attach(new RangeError(`Expected a device-mapper interface of 4.45 or later for options.ima but the kernel has ${this.driverVersion.join('.')}`));
      }
      flags |= Flag.IMA_MEASUREMENT;
    }
    const r = await this.run(site, { cmd: Command.TABLE_STATUS, flags, ...this.idRequest(dev) }, dev.label);
    return statusRows(r.targets ?? []);
  }

  /** The devices the table uses. */
  async deps(id: DevId, options?: QueryOptions): Promise<DevNumber[]> {
    const site = new CallSite(this.deps);
    const dev = resolveId(id);
    const opts = checkOptions(options, 'options', ['inactive']);
    const flags = checkBoolean(opts.inactive, 'options.inactive', false) ? Flag.QUERY_INACTIVE_TABLE : 0;
    const r = await this.run(site, { cmd: Command.TABLE_DEPS, flags, ...this.idRequest(dev) }, dev.label);
    return (r.deps ?? []).map(decodeDev);
  }

  /** Sends a message to the target at `sector`; resolves with its output, if it gave any. */
  async message(id: DevId, message: string, options?: MessageOptions): Promise<string | undefined> {
    const site = new CallSite(this.message);
    const dev = resolveId(id);
    const text = checkMessage(message);
    const opts = checkOptions(options, 'options', ['sector']);
    const sector = opts.sector === undefined ? 0 : checkSector(opts.sector, 'options.sector');
    const r = await this.run(site, { cmd: Command.TARGET_MSG, flags: 0, ...this.idRequest(dev), sector, message: text }, dev.label);
    return r.data;
  }

  /** Renames the device. */
  async rename(id: DevId, newName: string): Promise<DeviceInfo> {
    const site = new CallSite(this.rename);
    const dev = resolveId(id);
    const name = checkName(newName, 'newName');
    const r = await this.run(site, { cmd: Command.DEV_RENAME, flags: 0, ...this.idRequest(dev), data: name }, dev.label);
    // DEV_RENAME answers with the request's (old) name: ask again by number.
    return infoOf(await this.run(site, { cmd: Command.DEV_STATUS, flags: 0, dev: r.dev }, name));
  }

  /** Sets the uuid of a device that has none (the kernel refuses to change one: EINVAL). */
  async setUuid(id: DevId, uuid: string): Promise<DeviceInfo> {
    const site = new CallSite(this.setUuid);
    const dev = resolveId(id);
    const value = checkUuid(uuid);
    const r = await this.run(site, { cmd: Command.DEV_RENAME, flags: Flag.UUID, ...this.idRequest(dev), data: value }, dev.label);
    return infoOf(await this.run(site, { cmd: Command.DEV_STATUS, flags: 0, dev: r.dev }, dev.label));
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
    const request: NativeRequest = { cmd: Command.DEV_REMOVE, flags: deferred ? Flag.DEFERRED_REMOVE : 0, ...this.idRequest(dev) };
    for (let attempt = 0; ; attempt++) {
      try {
        await this.control.ioctl(request);
        return;
      } catch (e) {
        const busy = e instanceof Error && Reflect.get(e, 'code') === 'EBUSY';
        if (!busy || attempt >= retries) throw toDmError(e, site, dev.label);
        await new Promise((resolve) => setTimeout(resolve, Math.min(10 * 2 ** attempt, 200)));
      }
    }
  }

  /** Removes every device that is not open (with `deferred`, open ones go when closed). */
  async removeAll(options?: { deferred?: boolean }): Promise<void> {
    const site = new CallSite(this.removeAll);
    const opts = checkOptions(options, 'options', ['deferred']);
    const flags = checkBoolean(opts.deferred, 'options.deferred', false) ? Flag.DEFERRED_REMOVE : 0;
    await this.run(site, { cmd: Command.REMOVE_ALL, flags });
  }

  /** Sets the geometry the device reports (HDIO_GETGEO). */
  async setGeometry(id: DevId, geometry: Geometry): Promise<DeviceInfo> {
    const site = new CallSite(this.setGeometry);
    const dev = resolveId(id);
    if (typeof geometry !== 'object' || geometry === null) throw expected('{ cylinders, heads, sectors, start }', 'geometry', geometry);
    // The kernel's limits (dm-ioctl.c dev_set_geometry): 16-bit cylinders, 8-bit heads and sectors.
    const cylinders = checkInteger(geometry.cylinders, 'geometry.cylinders', 0, 65535);
    const heads = checkInteger(geometry.heads, 'geometry.heads', 0, 255);
    const sectors = checkInteger(geometry.sectors, 'geometry.sectors', 0, 255);
    const start = checkSector(geometry.start, 'geometry.start');
    const data = `${cylinders} ${heads} ${sectors} ${start}`;
    return infoOf(await this.run(site, { cmd: Command.DEV_SET_GEOMETRY, flags: 0, ...this.idRequest(dev), data }, dev.label));
  }

  /**
   * Waits until the device's event counter differs from `eventNr` (a target raised an
   * event), then resolves with the device's info. The wait runs on a thread of its own and
   * ends early when `signal` aborts (rejecting with its reason or an AbortError).
   */
  async waitEvent(id: DevId, eventNr: number, options?: SignalOptions): Promise<DeviceInfo> {
    const site = new CallSite(this.waitEvent);
    const dev = resolveId(id);
    const nr = checkInteger(eventNr, 'eventNr', 0, 0xffffffff);
    const signal = checkSignal(checkOptions(options, 'options', ['signal']).signal, 'options.signal');
    if (signal?.aborted) throw site.attach(abortError(signal));
    let wait;
    try {
      wait = this.control.waitEvent({ cmd: Command.DEV_WAIT, flags: 0, ...this.idRequest(dev), eventNr: nr });
    } catch (e) {
      throw toDmError(e, site, dev.label);
    }
    const onAbort = (): void => wait.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return infoOf(await wait.promise);
    } catch (e) {
      if (signal?.aborted) throw site.attach(abortError(signal));
      throw toDmError(e, site, dev.label);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Yields an event each time a device's event counter moves (DM_DEV_ARM_POLL and poll on a
   * control fd of its own, on the addon's own thread). Ends when `signal` aborts or the loop
   * is left.
   */
  async *watch(options?: SignalOptions): AsyncGenerator<DeviceEvent, void, undefined> {
    const site = new CallSite(this.watch);
    const signal = checkSignal(checkOptions(options, 'options', ['signal']).signal, 'options.signal');
    if (signal?.aborted) return;
    const queue: DeviceEvent[] = [];
    let failure: Error | undefined;
    let wake: (() => void) | undefined;
    const notify = (): void => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const seen = new Map<string, number>();
    let baseline = true;
    let listing: Promise<void> = Promise.resolve();
    const onArmed = (): void => {
      // Each call follows an arm: list devices and report the counters that moved.
      listing = listing.then(async () => {
        try {
          const devices = await this.listDevices();
          for (const d of devices) {
            const key = formatDev(d.dev);
            const nr = d.eventNr ?? 0;
            const before = seen.get(key);
            seen.set(key, nr);
            if (!baseline && before !== nr && !(before === undefined && nr === 0)) {
              queue.push({ name: d.name, ...(d.uuid !== undefined ? { uuid: d.uuid } : {}), dev: d.dev, eventNr: nr });
            }
          }
          baseline = false;
        } catch (e) {
          failure = e instanceof Error ? e : new Error(String(e));
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
    const onAbort = (): void => notify();
    signal?.addEventListener('abort', onAbort, { once: true });
    this.watchers.add(notify);
    try {
      for (;;) {
        const next = queue.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        if (failure !== undefined) throw failure;
        if (signal?.aborted || this.control.closed) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    } finally {
      this.watchers.delete(notify);
      signal?.removeEventListener('abort', onAbort);
      handle.stop();
    }
  }

  /** Closes the control node after pending calls finish; waits and watches end. */
  async close(): Promise<void> {
    const closing = this.control.close();
    for (const wake of this.watchers) wake();
    await closing;
  }
}

function rowsOf(table: Table): { start: number; length: number; type: string; params: string }[] {
  return table.rows.map((r) => ({ start: r.start, length: r.length, type: r.type, params: r.params }));
}

function statusRows(rows: readonly NativeTargetRow[]): StatusRow[] {
  return rows.map((r) => Object.freeze({ start: r.start, length: r.length, type: r.type, status: parseTargetStatus(r.type, r.params) }));
}

/** DeviceInfo from a DEV_STATUS-like answer. */
export function infoOf(r: NativeResult): DeviceInfo {
  const dev = decodeDev(r.dev);
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
