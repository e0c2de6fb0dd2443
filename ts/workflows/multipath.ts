/**
 * A multipath map, end to end: one device over several paths to the same storage, in
 * priority groups, each with a path selector; paths failed and reinstated, groups disabled,
 * enabled and switched, I/O queued or failed while no path works, and path state changes
 * followed through the kernel's events. Built on `DeviceMapper` and the typed multipath target.
 */
import { statSync } from 'node:fs';
import { abortError, checkSignal, onAbort } from '../abort';
import type { DeviceInfo, DeviceMapper, RemoveOptions } from '../client';
import { decodeRdev, formatDev, formatDeviceRef, parseDevNumber, type DevId, type DeviceRef } from '../dev';
import { DmError } from '../errors';
import { Table } from '../table';
import { multipath, multipathMessages, parseMultipath, type MultipathGroupState, type MultipathOptions, type MultipathPathHealth, type MultipathSelector, type MultipathStatus, type MultipathTarget } from '../targets/multipath';
import { checkInteger, checkName, checkOptions, checkSector, checkUuid, expected, expectedRange } from '../validate';
import { idOf } from './common';

const ETIMEDOUT = 110;
/** How long a wait lasts by default, in milliseconds. */
const DEFAULT_TIMEOUT = 30000;

/** Options of `Multipath.create`: the multipath target's options, and the map's size. */
export interface MultipathCreateOptions extends MultipathOptions {
  /** The map's length in 512-byte sectors: at most the size of the storage the paths lead to. */
  size: number;
  /** The device's uuid (then every later call names the device by it). */
  uuid?: string;
}

/** Options of a wait: bounded by `timeout` milliseconds (default 30000) and an optional signal. */
export interface MultipathWaitOptions {
  /** Milliseconds before the wait fails with ETIMEDOUT (default 30000). */
  timeout?: number;
  /** Ends the wait early: it rejects with the signal's reason or an AbortError. */
  signal?: AbortSignal;
}

/** Options of `Multipath.watchPaths`. */
export interface MultipathWatchOptions {
  /** Ends the watch (the loop then ends without an error). */
  signal?: AbortSignal;
}

/** One path as the kernel reports it now. */
export interface MultipathPathInfo {
  /** 'major:minor'. */
  readonly device: string;
  /** Its priority group, from 1. */
  readonly group: number;
  /** `active` (usable) or `failed` (by fail_path or an I/O error, until reinstate_path). */
  readonly health: MultipathPathHealth;
  /** Times the path has failed since the table was loaded. */
  readonly failCount: number;
}

/** One priority group as the kernel reports it now. */
export interface MultipathGroupInfo {
  /** From 1, in table order. */
  readonly group: number;
  /** The group's path selector. */
  readonly selector: MultipathSelector;
  /** `active` (in use now), `enabled` (may be used), `disabled` (bypassed). */
  readonly state: MultipathGroupState;
  /** Its paths, in table order. */
  readonly paths: readonly MultipathPathInfo[];
}

/** What the kernel says of a multipath map: its table's features and its status, typed. */
export interface MultipathState {
  /** `queue_if_no_path` is set: with no working path, I/O queues instead of failing. */
  readonly queueIfNoPath: boolean;
  /** The group the next I/O goes to (from 1). */
  readonly nextGroup: number;
  /** I/O is held until a path is chosen (a fresh map, or a group being initialised). */
  readonly queueIo: boolean;
  /** The priority groups. */
  readonly groups: readonly MultipathGroupInfo[];
  /** Every path, group by group. */
  readonly paths: readonly MultipathPathInfo[];
  /** The raw typed status of the row. */
  readonly status: MultipathStatus;
}

/** A path as `watchPaths` reports it: first as the watch found it, then at each change. */
export interface MultipathPathChange extends MultipathPathInfo {
  /** Its health at the last read; undefined in the first report of each path. */
  readonly previous: MultipathPathHealth | undefined;
  /** The device's event counter when the change was seen. */
  readonly eventNr: number;
}

/** Sends an abort to `controller` after `ms`, or when `signal` aborts; returns the cleanup. */
function bounded(ms: number, signal: AbortSignal | undefined, controller: AbortController): () => void {
  const timer = setTimeout(() => controller.abort(new DmError({ errno: ETIMEDOUT, syscall: 'wait', message: `waited ${ms} ms` })), ms);
  const unsubscribe = onAbort(signal, () => controller.abort(signal === undefined ? undefined : abortError(signal)));
  return () => {
    clearTimeout(timer);
    unsubscribe();
  };
}

/**
 * A multipath map (the kernel's dm-multipath target) on one device: one row over the whole
 * device. Calls name the device by its uuid when it has one, else by its name, and check that
 * the kernel's answers are about a multipath map.
 */
export class Multipath {
  /** The client the map is driven through. */
  readonly dm: DeviceMapper;
  /** The device's name. */
  readonly name: string;
  /** The device's uuid ('' for none). */
  readonly uuid: string;
  /** The device's number, node and state when it was created or opened. */
  readonly info: DeviceInfo;
  /** The table's target (with its groups and paths), as the kernel read it back. */
  readonly target: MultipathTarget;

  private constructor(dm: DeviceMapper, info: DeviceInfo, target: MultipathTarget) {
    this.dm = dm;
    this.name = info.name;
    this.uuid = info.uuid;
    this.info = info;
    this.target = target;
  }

  /** How the device is named in each call: its uuid, else its name. */
  get id(): DevId {
    return idOf(this);
  }

  /** Every path of the table, 'major:minor', group by group. */
  get paths(): readonly string[] {
    return this.target.groups.flatMap((g) => g.paths.map((p) => p.device));
  }

  /**
   * Creates the device with one multipath row of `size` sectors (DM_DEV_CREATE,
   * DM_TABLE_LOAD, DM_DEV_SUSPEND to resume), and reads its table back. The kernel opens
   * every path at load; a path it cannot open fails the load (ENODEV for a node that is no block device) and the device
   * is removed again. Bad options are refused (TypeError / RangeError) before any ioctl.
   */
  static async create(dm: DeviceMapper, name: string, options: MultipathCreateOptions): Promise<Multipath> {
    checkName(name, 'name');
    if (typeof options !== 'object' || options === null) throw expected('multipath create options', 'options', options);
    const { size, uuid, ...rest } = options;
    const length = checkSector(size, 'options.size');
    if (length === 0) throw expectedRange('a size of at least 1 sector', 'options.size', size);
    if (uuid !== undefined) checkUuid(uuid, 'options.uuid');
    const target = multipath(rest);
    const table = new Table([{ start: 0, length, target }]);
    const info = await dm.create(name, uuid === undefined ? { table } : { table, uuid });
    try {
      const mp = new Multipath(dm, info, await Multipath.readTarget(dm, idOf(info), info.name));
      // The kernel prints paths as 'major:minor', whatever node named them: compare the shape.
      const shape = (t: MultipathTarget): string => t.groups.map((g) => `${g.selector}/${g.paths.length}`).join(' ');
      if (shape(mp.target) !== shape(target)) throw new Error(`${name}: the kernel's table is not the one loaded (${mp.target.params})`);
      return mp;
    } catch (e) {
      await dm.remove(idOf(info)).catch((r: unknown) => {
        if (e instanceof DmError && r instanceof Error) e.rollbackError = r;
      });
      throw e;
    }
  }

  /** Takes over an existing multipath map: reads its info and table (a device with another table is refused). */
  static async open(dm: DeviceMapper, id: DevId): Promise<Multipath> {
    const info = await dm.info(id);
    const own: DevId = idOf(info);
    return new Multipath(dm, info, await Multipath.readTarget(dm, own, info.name));
  }

  private static async readTarget(dm: DeviceMapper, id: DevId, name: string): Promise<MultipathTarget> {
    const rows = (await dm.table(id))?.rows ?? [];
    const row = rows[0];
    if (rows.length !== 1 || row === undefined || row.type !== 'multipath') {
      throw new TypeError(`Expected a device with one multipath row for ${name} but received ${rows.map((r) => r.type).join(', ') || 'no table'}`);
    }
    return parseMultipath(row.params);
  }

  /** DM_TABLE_STATUS of the table and of the status: the features, groups and paths as the kernel reports them now. */
  async state(): Promise<MultipathState> {
    const target = await Multipath.readTarget(this.dm, this.id, this.name);
    const [row, ...more] = await this.dm.status(this.id);
    const s = row?.status;
    if (s === undefined || more.length > 0 || !s.known || s.type !== 'multipath') throw new TypeError(`Expected the status of one multipath row for ${this.name} but received ${row === undefined ? 'none' : row.type}`);
    const status: MultipathStatus = s;
    if (status.groups.length !== target.groups.length) throw new TypeError(`Expected ${target.groups.length} priority group(s) in the status of ${this.name} but received ${status.groups.length}`);
    const groups = status.groups.map((g, i): MultipathGroupInfo => ({
      group: i + 1,
      selector: target.groups[i]?.selector ?? 'round-robin',
      state: g.state,
      paths: g.paths.map((p) => ({ device: p.device, group: i + 1, health: p.health, failCount: p.failCount })),
    }));
    return { queueIfNoPath: target.queueIfNoPath, nextGroup: status.nextGroup, queueIo: status.queueIo, groups, paths: groups.flatMap((g) => g.paths), status };
  }

  /** The path's 'major:minor', refused (RangeError) unless it is one of the map's. */
  private ownPath(path: DeviceRef): string {
    const ref = formatDeviceRef(path, 'path');
    const number = parseDevNumber(ref);
    let dev: string | undefined = number === undefined ? ref : formatDev(number);
    if (number === undefined) {
      // The kernel names paths by number: a /dev path is known by the node's device number.
      try {
        const st = statSync(ref);
        dev = st.isBlockDevice() ? formatDev(decodeRdev(st.rdev)) : undefined;
      } catch {
        dev = undefined;
      }
    }
    if (dev === undefined || !this.paths.includes(dev)) throw expectedRange(`one of the map's paths (${this.paths.join(', ')})`, 'path', path);
    return dev;
  }

  private ownGroup(group: number): number {
    return checkInteger(group, 'group', 1, this.target.groups.length);
  }

  /** `fail_path`: takes the path out of use; its status turns `F` and the kernel raises an event. */
  async failPath(path: DeviceRef): Promise<void> {
    await this.dm.message(this.id, multipathMessages.failPath(this.ownPath(path)));
  }

  /** `reinstate_path`: puts a failed path back in use (and queued I/O, if any, goes down it). */
  async reinstatePath(path: DeviceRef): Promise<void> {
    await this.dm.message(this.id, multipathMessages.reinstatePath(this.ownPath(path)));
  }

  /** `disable_group`: bypasses the group (state `D`); it is used only when no other group has a working path. */
  async disableGroup(group: number): Promise<void> {
    await this.dm.message(this.id, multipathMessages.disableGroup(this.ownGroup(group)));
  }

  /** `enable_group`: ends the bypass of the group. */
  async enableGroup(group: number): Promise<void> {
    await this.dm.message(this.id, multipathMessages.enableGroup(this.ownGroup(group)));
  }

  /** `switch_group`: sends the next I/O to the group (and ends every group's bypass). */
  async switchGroup(group: number): Promise<void> {
    await this.dm.message(this.id, multipathMessages.switchGroup(this.ownGroup(group)));
  }

  /** `queue_if_no_path`: while no path works, I/O queues (it completes once a path is reinstated). */
  async queueIfNoPath(): Promise<void> {
    await this.dm.message(this.id, multipathMessages.queueIfNoPath());
  }

  /** `fail_if_no_path`: while no path works, I/O fails (EIO), and so does the I/O queued so far. */
  async failIfNoPath(): Promise<void> {
    await this.dm.message(this.id, multipathMessages.failIfNoPath());
  }

  /**
   * Resolves with the state once `check` holds for it: the state is read, then read again
   * after each event of the device (DM_DEV_WAIT on the event counter read before it), so no
   * change is missed. Fails with ETIMEDOUT after `timeout` ms, or the signal's reason.
   */
  async waitFor(check: (state: MultipathState) => boolean, options?: MultipathWaitOptions): Promise<MultipathState> {
    if (typeof check !== 'function') throw expected('a function of the state', 'check', check);
    const o = checkOptions(options, 'options', ['timeout', 'signal']);
    const timeout = o.timeout === undefined ? DEFAULT_TIMEOUT : checkInteger(o.timeout, 'options.timeout', 1, 0x7fffffff);
    const signal = checkSignal(o.signal, 'options.signal');
    if (signal?.aborted) throw abortError(signal);
    const controller = new AbortController();
    const done = bounded(timeout, signal, controller);
    try {
      let eventNr = (await this.dm.info(this.id)).eventNr;
      for (;;) {
        const state = await this.state();
        if (check(state)) return state;
        if (controller.signal.aborted) break;
        try {
          eventNr = (await this.dm.waitEvent(this.id, eventNr, { signal: controller.signal })).eventNr;
        } catch (e) {
          if (controller.signal.aborted) break;
          throw e;
        }
      }
      const reason: unknown = controller.signal.reason;
      if (reason instanceof DmError && reason.code === 'ETIMEDOUT') {
        throw new DmError({ errno: ETIMEDOUT, syscall: 'wait', command: 'DM_DEV_WAIT', device: this.name, message: `${this.name}: the multipath state did not reach what was waited for within ${timeout} ms` });
      }
      throw reason instanceof Error ? reason : abortError(controller.signal);
    } finally {
      done();
    }
  }

  /** Resolves once the path's health is `health` (see `waitFor`). */
  async waitForPath(path: DeviceRef, health: MultipathPathHealth, options?: MultipathWaitOptions): Promise<MultipathPathInfo> {
    const dev = this.ownPath(path);
    if (health !== 'active' && health !== 'failed') throw expected("'active' or 'failed'", 'health', health);
    const state = await this.waitFor((s) => s.paths.some((p) => p.device === dev && p.health === health), options);
    const found = state.paths.find((p) => p.device === dev);
    if (found === undefined) throw new TypeError(`Expected path ${dev} in the status of ${this.name} but received none`);
    return found;
  }

  /**
   * Yields every path as the kernel reports it when the watch starts (`previous` undefined),
   * then each change of a path's health or fail count, as the kernel's events reveal it:
   * after each event of the device (DM_DEV_WAIT on the event counter read before the last
   * status), the status is read again and compared with the last. A path that failed and
   * came back between two reads shows as a higher fail count with its health unchanged. Ends
   * when `signal` aborts or the loop is left.
   */
  async *watchPaths(options?: MultipathWatchOptions): AsyncGenerator<MultipathPathChange, void, undefined> {
    const signal = checkSignal(checkOptions(options, 'options', ['signal']).signal, 'options.signal');
    if (signal?.aborted) return;
    let eventNr = (await this.dm.info(this.id)).eventNr;
    let last = new Map<string, MultipathPathInfo>();
    for (const p of (await this.state()).paths) {
      last.set(`${p.group} ${p.device}`, p);
      yield { ...p, previous: undefined, eventNr };
    }
    for (;;) {
      try {
        eventNr = (await this.dm.waitEvent(this.id, eventNr, signal === undefined ? undefined : { signal })).eventNr;
      } catch (e) {
        if (signal?.aborted) return;
        throw e;
      }
      const now = (await this.state()).paths;
      for (const p of now) {
        const before = last.get(`${p.group} ${p.device}`);
        if (before !== undefined && (before.health !== p.health || before.failCount !== p.failCount)) yield { ...p, previous: before.health, eventNr };
      }
      last = new Map(now.map((p) => [`${p.group} ${p.device}`, p]));
      if (signal?.aborted) return;
    }
  }

  /** Removes the device (DM_DEV_REMOVE). */
  async remove(options?: RemoveOptions): Promise<void> {
    await this.dm.remove(this.id, options);
  }
}
