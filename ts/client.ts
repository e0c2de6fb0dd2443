/* eslint-disable @typescript-eslint/unbound-method -- the public methods are handed to `new CallSite(...)` only as stack-trace markers (Error.captureStackTrace's constructorOpt), never called through it */
import type { Control, NativeCallResult, NativeRequest, NativeWait } from '../binding';
import { abortError, checkSignal, onAbort } from './abort';
import { fromCall } from './answer';
import * as commands from './commands';
import type { Cmd } from './commands';
import { Command } from './constants';
import { formatDev, resolveId, type DevId, type DevNumber } from './dev';
import { CallSite, DmClosedError, toDmError, type CaptureMode } from './errors';
import { DeviceLocks } from './locks';
import type { StatusRow } from './status';
import { Continue, countAnswer, countFailure, isOneIoctl, payloadOf, ProgramRun, type IoctlCounts, type OneIoctl, type Program } from './steps';
import type { Table } from './table';
import { openControl } from './open';
import { DeviceMapperSync } from './sync';
import { isUdevStep, runUdevStep } from './udev-steps';
import { checkInteger, checkOptions } from './validate';
import type { MknodesResult } from './nodes';
import type { UdevMode, UdevSettings } from './udev';

export { Command, Flag } from './constants';

/** A device as LIST_DEVICES reports it. */
export interface DeviceListEntry {
  /** The device's name. */
  name: string;
  /** Present when the kernel (>= 4.45) reports uuids and the device has one. */
  uuid?: string;
  /** Its device number. */
  dev: DevNumber;
  /** Present when the kernel (>= 4.38) reports event numbers. */
  eventNr?: number;
}

/** A target type the kernel has loaded. */
export interface TargetTypeVersion {
  /** The target type's name, as a table names it ('thin-pool'). */
  name: string;
  /** Its version: major, minor, patch. */
  version: [number, number, number];
}

/** What DEV_STATUS says of a device. */
export interface DeviceInfo {
  /** The device's name. */
  name: string;
  /** '' when the device has no uuid. */
  uuid: string;
  /** Its device number. */
  dev: DevNumber;
  /** The device node: `/dev/dm-<minor>`. */
  path: string;
  /**
   * `/dev/mapper/<name>`: udev's symlink (sync mode) or the library's own node (fallback
   * mode), there once a create or resume has resolved (see `OpenOptions.udev`).
   */
  mapperPath: string;
  /** How many times the device is open now (the kernel refuses to remove an open device). */
  openCount: number;
  /** The device's event counter: it moves when a target raises an event (see `waitEvent`). */
  eventNr: number;
  /** Rows in the live table (or the inactive one, when asked for). */
  targetCount: number;
  /** The device is suspended: I/O to it queues until resume. */
  suspended: boolean;
  /** The (live, or asked-for) table is read-only. */
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
  /** The device's name. */
  name: string;
  /** Its uuid, when the kernel (>= 4.45) reports uuids and it has one. */
  uuid?: string;
  /** Its device number. */
  dev: DevNumber;
  /** Its event counter now, past the one last seen. */
  eventNr: number;
}

/** Options of `DeviceMapper.open`. */
export interface OpenOptions {
  /** The control node; default `/dev/mapper/control`. */
  path?: string;
  /**
   * How `/dev/mapper/<name>` is kept (default 'auto'): 'sync' waits for udev's rules on each
   * resume, remove and rename, with a libdevmapper cookie; 'fallback' has the library make,
   * rename and remove the nodes itself; 'off' does neither; 'auto' is 'sync' when udev runs
   * (`/run/udev/control` exists, decided at each call), else 'fallback'.
   */
  udev?: UdevMode;
  /** Milliseconds a call waits for udev to complete its cookie (sync mode); default 30000. */
  udevTimeout?: number;
  /**
   * How a failed call's error gets its caller's frames. `'async'` (default): nothing is
   * recorded as a call is made; a failure before the call's first ioctl (a bad argument) has
   * the caller's frames, taken then, and a later one the `at async` frames V8 gives it, which
   * start at the line that awaited the call (the library's own frames are left out) — but a
   * `.then()` or `.catch()` caller that does not await is not among them.
   * `'call'`: each call records its caller's line and the two frames above it when it is
   * made, so the stack points at the line that made the call however its promise is consumed,
   * and a failure adds the callers that awaited it; recording costs some 2–4 µs a call (V8's
   * stack capture), more than the rest of a fast call's JavaScript.
   * The synchronous client always has its caller's frames, taken when a failure happens, at
   * no cost to the calls that succeed.
   */
  stackTraces?: 'call' | 'async';
}

/**
 * The udev options of a call that makes a uevent (create, resume, reload, rename, setUuid,
 * remove).
 */
export interface UdevCallOptions {
  /** This call's udev mode, instead of the client's. */
  udev?: UdevMode;
  /**
   * Ends the wait for udev early (sync mode): the call rejects with the signal's reason or an
   * AbortError, the cookie's semaphore removed; the ioctl itself has been done. A signal that
   * has aborted before the call stops it before any ioctl.
   */
  signal?: AbortSignal;
}

/** Options of `create`. */
export interface CreateOptions extends UdevCallOptions {
  /** The table to load; without one the device is created with no table. */
  table?: Table;
  /** The device's uuid (at most 128 bytes; it cannot be changed once set, except from none). */
  uuid?: string;
  /** Load the table read-only. */
  readOnly?: boolean;
  /** Resume after loading (make the table live); default true. */
  activate?: boolean;
  /**
   * The table holds secrets (crypt keys): it goes with DM_SECURE_DATA, so the kernel wipes its
   * copies, and the library wipes its request buffers after the ioctl. Default: whether the
   * table holds one (`Table#holdsSecrets`: a crypt row, an integrity row with a key).
   */
  secure?: boolean;
}

/** Options of `load`. */
export interface LoadOptions {
  /** Load the table read-only. */
  readOnly?: boolean;
  /** The table holds secrets (crypt keys): the kernel and the library wipe their buffers. Default: `table.holdsSecrets`. */
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
export interface ReloadOptions extends UdevCallOptions {
  /** Suspend without flushing queued I/O (see `SuspendOptions.noFlush`). */
  noFlush?: boolean;
  /** Suspend without freezing the filesystem on the device. */
  noLockfs?: boolean;
  /** Load the new table read-only. */
  readOnly?: boolean;
  /**
   * DM_SECURE_DATA on the load and on the reads of the live table (which the reload keeps to
   * put it back): the kernel and the library wipe their buffers. Default true: the live table
   * may hold a key (dm-crypt) whatever the new one holds; `false` only where neither does.
   */
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
export interface RemoveOptions extends UdevCallOptions {
  /** Let the kernel remove the device when its last opener closes it. */
  deferred?: boolean;
  /** How many times an EBUSY is retried (udev and blkid scans race removes); default 5. */
  retries?: number;
  /**
   * As `dmsetup remove --force`: if the device is open (or stays busy through the retries),
   * its live table is first replaced with one `error` row over its whole length (the suspend
   * of that swap neither flushes nor freezes a filesystem, so that dead storage cannot hold
   * it), so that every opener's I/O fails from then on, and the remove is then tried again,
   * with `retries` again. If an opener still holds it, the remove fails with EBUSY, its
   * message saying that the table is now an error table, and the device stays, failing all
   * I/O (with `deferred`, the kernel removes it at its last close). Default false.
   */
  force?: boolean;
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
  /** This call's udev mode (with a filter each remove waits for its cookie; DM_REMOVE_ALL's carry none). */
  udev?: UdevMode;
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
  /** The device's name. */
  name: string;
  /** '' when the device has no uuid. */
  uuid: string;
  /** Its device number. */
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
  /** Cylinders. */
  cylinders: number;
  /** Heads per cylinder. */
  heads: number;
  /** Sectors per track. */
  sectors: number;
  /** The first sector of the device on the disk it belongs to (the partition start). */
  start: number;
}

/** Options of `waitEvent` and `watch`. */
export interface SignalOptions {
  /** Ends the wait: the call rejects with the signal's reason, or an AbortError. */
  signal?: AbortSignal;
}

/**
 * A connection to the device-mapper: one open `/dev/mapper/control`. Every method returns a
 * Promise; bad arguments reject with TypeError or RangeError before any ioctl; kernel failures
 * reject with DmError. The multi-step operations (`create`, `reload`, `rename`, `remove`,
 * `recover`...) of one instance on one device run one after another, refer to the device by its
 * uuid (else its name) after the first step, and stop when an answer is about another device.
 * Requests that name a device the same way (the same name, uuid or device number) run in the
 * order they are sent, and a call sends its first request at once (a suspend, then an info,
 * issued without awaiting: the info sees the device suspended), except a call that changes a
 * device while another such call of this instance holds it: that one waits for it first.
 */
export class DeviceMapper {
  /** The kernel's device-mapper interface version, e.g. [4, 47, 0]. */
  readonly driverVersion: [number, number, number];
  /** The udev mode and cookie timeout this client was opened with (`OpenOptions.udev`). */
  readonly udev: UdevSettings;
  private readonly control: Control;
  /** Wakes every running `watch` loop (on close). */
  private readonly watchers = new Set<() => void>();
  /** Waits in flight, cancelled on close. */
  private readonly waits = new Set<NativeWait>();
  private readonly locks = new DeviceLocks();
  /** Bumped each time a locked operation ends: a transaction that waited for a device lock re-reads. */
  private epoch = 0;
  private readonly counts: IoctlCounts = { commands: 0, ioctls: 0 };
  private closing = false;
  private inflight = 0;
  private idleWaiters: (() => void)[] = [];

  /** Whether calls record their caller's frames (`OpenOptions.stackTraces`). */
  private readonly capture: CaptureMode;

  private constructor(control: Control, driverVersion: [number, number, number], udev: UdevSettings, capture: CaptureMode) {
    this.control = control;
    this.driverVersion = driverVersion;
    this.udev = udev;
    this.capture = capture;
  }

  /**
   * Opens the control node and asks the kernel for its interface version. A missing node
   * (no device-mapper in this kernel) or a permission failure says what is missing.
   */
  static async open(options?: OpenOptions): Promise<DeviceMapper> {
    const site = new CallSite(DeviceMapper.open);
    const { control, path, udev, stackTraces } = openControl(options, site);
    try {
      const r = await control.ioctl({ cmd: Command.VERSION, flags: 0 });
      return new DeviceMapper(control, commands.version(r.version), udev, stackTraces === 'async' ? 'async' : 'call');
    } catch (e) {
      await control.close();
      throw toDmError(e, site, path);
    }
  }

  /**
   * Opens a synchronous client: the same commands, checks, errors and rollback, run on the
   * calling thread (see `DeviceMapperSync`). For scripts and tools, where a call then costs
   * about the ioctl itself; waits and watches stay with the asynchronous client.
   */
  static openSync(options?: OpenOptions): DeviceMapperSync {
    return DeviceMapperSync.openAt(new CallSite(DeviceMapper.openSync, 'failure'), options);
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
  get ioctlStats(): {
    /** DM commands sent. */
    commands: number;
    /** ioctl system calls made. */
    ioctls: number;
  } {
    return { ...this.counts };
  }

  /**
   * Runs a command: refused after close(), counted as in flight (close() waits for it),
   * queued behind the operations of this instance on the same device when `key` is given,
   * then its program's ioctls, pauses and device locks until it returns or throws.
   */
  private exec<T>(site: CallSite, program: Program<T>, key?: string): Promise<T> {
    if (this.closing || this.control.closed) return Promise.reject(site.attach(new DmClosedError(site.name)));
    if (key !== undefined || !isOneIoctl(program)) return this.steps(site, program, key);
    // Most commands: one ioctl and no device lock, its answer finished in one reaction (no
    // async function's frame, no map of locks: the commonest call allocates least).
    this.inflight++;
    let sent: Promise<NativeCallResult>;
    try {
      sent = this.send(program.step.request);
    } catch (e) {
      this.settled();
      return Promise.reject(site.attach(this.failedOne(site, program, e)));
    }
    return sent.then(
      (answer) => {
        let value: T | Continue<T>;
        try {
          value = this.finishOne(program, answer);
        } catch (e) {
          this.settled();
          throw e instanceof Error ? site.attach(e) : e;
        }
        if (!(value instanceof Continue)) {
          this.settled();
          return value;
        }
        // A large answer goes on in slices, as the program would (still in flight).
        return this.steps(site, value.program, undefined, true, answer);
      },
      (e: unknown) => {
        this.settled();
        throw site.attach(this.failedOne(site, program, e));
      },
    );
  }

  /**
   * `exec` for a command that takes a device lock or runs several steps (or goes on from a
   * large answer, `reading`: then already counted in flight).
   */
  private async steps<T>(site: CallSite, program: Program<T>, key: string | undefined, counted = false, reading?: NativeCallResult): Promise<T> {
    if (!counted) this.inflight++;
    const held = new Map<string, () => void>();
    try {
      // A free device is taken without a pause: the call's first ioctl is submitted in the
      // order of the calls (a suspend, then an info of the same device, sees it suspended).
      if (key !== undefined) held.set(key, this.locks.tryAcquire(key) ?? (await this.locks.acquire(key)));
      // The program's steps, to its end (here, not in an async function of its own: one
      // promise and one await fewer per call); a command of one ioctl without the step loop.
      const startEpoch = this.epoch;
      try {
        if (!isOneIoctl(program)) return await this.drive(site, program, held, startEpoch, reading);
        let answer: NativeCallResult;
        try {
          answer = await this.send(program.step.request);
        } catch (e) {
          throw this.failedOne(site, program, e);
        }
        const value = this.finishOne(program, answer);
        // A large answer goes on in slices, as the program would.
        return value instanceof Continue ? await this.drive(site, value.program, held, startEpoch, answer) : value;
      } catch (e) {
        throw e instanceof Error ? site.attach(e) : e;
      }
    } finally {
      if (held.size > 0) {
        this.epoch++;
        for (const release of [...held.values()].reverse()) release();
      }
      this.settled();
    }
  }

  /**
   * A one-ioctl program's answer, counted and finished; its memory given back unless the
   * program goes on reading it in slices (then drive gives it back at the end).
   */
  private finishOne<T>(program: OneIoctl<T>, call: NativeCallResult): T | Continue<T> {
    let value: T | Continue<T>;
    try {
      const answer = fromCall(call);
      countAnswer(this.counts, answer);
      value = program.finish(answer);
    } catch (e) {
      this.recycle(call);
      throw e;
    }
    if (!(value instanceof Continue)) this.recycle(call);
    return value;
  }

  /** The error a one-ioctl program's failed ioctl throws (counted). */
  private failedOne(site: CallSite, program: OneIoctl<unknown>, e: unknown): Error {
    countFailure(this.counts);
    return toDmError(e, site, program.step.device);
  }

  /** A command has ended: close() goes on once none is in flight. */
  private settled(): void {
    this.inflight--;
    if (this.inflight === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /**
   * Gives an answer's memory back to the addon once its program is done with it: when the
   * program ends or sends its next ioctl, the point from which the sync client's next call
   * overwrites its answer, too. A large answer's ArrayBuffers then read as empty, and the next
   * large answer is copied into memory already mapped instead of a fresh buffer paid for page
   * by page.
   */
  private recycle(answer: NativeCallResult | undefined): void {
    if (answer === undefined) return;
    const rows = answer[2] ?? answer[3];
    if (rows !== undefined) this.control.recycle(rows[0], rows[1]);
  }

  /** Sends one request to the addon's I/O threads (its answer in the compact form: see fromCall). */
  private send(r: NativeRequest): Promise<NativeCallResult> {
    return this.control.call(r.cmd, r.flags, r.dev ?? 0, r.eventNr ?? 0, r.name ?? '', r.uuid ?? '', payloadOf(r));
  }

  /**
   * Runs a program's ioctls, pauses, yields and device locks (held in `held` until the
   * command ends) until it returns or throws.
   */
  private async drive<T>(site: CallSite, program: Program<T>, held: Map<string, () => void>, startEpoch: number, reading?: NativeCallResult): Promise<T> {
    const run = new ProgramRun(program, this.counts);
    // The last answer given to the program, until it is done with it (see recycle).
    let last = reading;
    try {
      for (;;) {
        const next = run.next();
        if (next.done === true) return next.value;
        const step = next.value;
        if (step.kind === 'sleep') {
          await new Promise((resolve) => setTimeout(resolve, step.ms));
          run.answer({});
        } else if (step.kind === 'lock') {
          if (!held.has(step.key)) held.set(step.key, await this.locks.acquire(step.key));
          run.answer({ stale: this.epoch !== startEpoch });
        } else if (step.kind === 'yield') {
          // Timers, I/O callbacks and other calls' answers run before the next slice.
          await new Promise((resolve) => setImmediate(resolve));
          run.answer({});
        } else if (isUdevStep(step)) {
          try {
            run.answer(await runUdevStep(step));
          } catch (e) {
            run.threw(e);
          }
        } else {
          this.recycle(last);
          last = undefined;
          try {
            last = await this.send(step.request);
            run.answered(fromCall(last));
          } catch (e) {
            run.failed(toDmError(e, site, step.device));
          }
        }
      }
    } finally {
      this.recycle(last);
    }
  }

  /** Runs a command made by `make` (its checks' errors, too, carry the caller's stack). */
  private run<T>(site: CallSite, make: () => Cmd<T>): Promise<T> {
    // Not an async function itself: exec's promise is the call's (one promise fewer per call).
    let cmd: Cmd<T>;
    try {
      cmd = make();
    } catch (e) {
      // A check throws Errors; anything else is handed on as it was thrown.
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
      return Promise.reject(e instanceof Error ? site.attach(e) : e);
    }
    return this.exec(site, cmd.program, cmd.key);
  }

  /** All devices, with uuids and event numbers where the kernel reports them. */
  listDevices(): Promise<DeviceListEntry[]> {
    return this.run(new CallSite(this.listDevices, this.capture), () => commands.listDevices());
  }

  /** The target types the kernel has loaded, with their versions. */
  listTargets(): Promise<TargetTypeVersion[]> {
    return this.run(new CallSite(this.listTargets, this.capture), () => commands.listTargets());
  }

  /** One target type's version (GET_TARGET_VERSION; LIST_VERSIONS on kernels before 4.41). */
  targetVersion(type: string): Promise<[number, number, number]> {
    return this.run(new CallSite(this.targetVersion, this.capture), () => commands.targetVersion(this, type));
  }

  /**
   * Creates a device and, given a table, loads it and (unless `activate: false`) resumes it.
   * If a step after the create fails, the device this call made is removed again: nothing is
   * left half-made. Every step after the create names the device by its uuid (else its name)
   * and checks that the kernel's answer is about the device it made; if another actor replaced
   * it meanwhile, the call fails with `ESTALE` and touches nothing more.
   */
  create(name: string, options?: CreateOptions): Promise<DeviceInfo> {
    return this.run(new CallSite(this.create, this.capture), () => commands.create(this, name, options));
  }

  /** DEV_STATUS: what the kernel says of the device. */
  info(id: DevId, options?: QueryOptions): Promise<DeviceInfo> {
    return this.run(new CallSite(this.info, this.capture), () => commands.info(id, options));
  }

  /** Loads a table as the device's inactive table (made live by `resume`). */
  load(id: DevId, table: Table, options?: LoadOptions): Promise<DeviceInfo> {
    return this.run(new CallSite(this.load, this.capture), () => commands.load(id, table, options));
  }

  /** Suspends the device (I/O queues until resume). */
  suspend(id: DevId, options?: SuspendOptions): Promise<DeviceInfo> {
    return this.run(new CallSite(this.suspend, this.capture), () => commands.suspend(id, options));
  }

  /**
   * Resumes the device, making its inactive table live if it has one; `/dev/mapper/<name>`
   * exists when it resolves (see `OpenOptions.udev`).
   */
  resume(id: DevId, options?: UdevCallOptions): Promise<DeviceInfo> {
    return this.run(new CallSite(this.resume, this.capture), () => commands.resume(this, id, options));
  }

  /**
   * Replaces the live table: reads the device's state and tables, loads, suspends, resumes.
   * On failure the device is put back as it was: its old table live (also when the new table
   * went live and its resume then failed), its own pending inactive table (if it had one)
   * loaded again, and suspended only if it was suspended before the call. On success the
   * device runs on the new table. Reloads of one device by one instance run one at a time.
   */
  reload(id: DevId, table: Table, options?: ReloadOptions): Promise<DeviceInfo> {
    return this.run(new CallSite(this.reload, this.capture), () => commands.reload(this, id, table, options));
  }

  /**
   * Reloads the device with the table `change` makes from its live table (`undefined` when
   * it has none): a programmatic edit (grow the last row, swap a row's target) in one
   * transaction. The live table is read under the device's lock, so another reload or update
   * of this instance cannot slip in between the read and the reload; `change` runs
   * synchronously, and if it throws (or returns something that is not a Table) nothing is
   * changed. Then it is `reload`, with the same options and the same rollback.
   */
  update(id: DevId, change: (table: Table | undefined) => Table, options?: ReloadOptions): Promise<DeviceInfo> {
    return this.run(new CallSite(this.update, this.capture), () => commands.update(this, id, change, options));
  }

  /** Drops the device's inactive table. */
  clear(id: DevId): Promise<DeviceInfo> {
    return this.run(new CallSite(this.clear, this.capture), () => commands.clear(id));
  }

  /** The device's table (live, or inactive with `{ inactive: true }`), typed where the library can. */
  table(id: DevId, options?: TableOptions): Promise<Table | undefined> {
    return this.run(new CallSite(this.table, this.capture), () => commands.table(id, options));
  }

  /** The status of each row of the device's table. */
  status(id: DevId, options?: StatusOptions): Promise<StatusRow[]> {
    return this.run(new CallSite(this.status, this.capture), () => commands.status(this, id, options));
  }

  /** The devices the table uses. */
  deps(id: DevId, options?: QueryOptions): Promise<DevNumber[]> {
    return this.run(new CallSite(this.deps, this.capture), () => commands.deps(id, options));
  }

  /** Sends a message to the target at `sector`; resolves with its output, if it gave any. */
  message(id: DevId, message: string, options?: MessageOptions): Promise<string | undefined> {
    return this.run(new CallSite(this.message, this.capture), () => commands.message(id, message, options));
  }

  /** Renames the device (any DevId form: the kernel renames by name, so others are looked up first). */
  rename(id: DevId, newName: string, options?: UdevCallOptions): Promise<DeviceInfo> {
    return this.run(new CallSite(this.rename, this.capture), () => commands.rename(this, id, newName, options));
  }

  /** Sets the uuid of a device that has none (the kernel refuses to change one: EINVAL). */
  setUuid(id: DevId, uuid: string, options?: UdevCallOptions): Promise<DeviceInfo> {
    return this.run(new CallSite(this.setUuid, this.capture), () => commands.setUuid(this, id, uuid, options));
  }

  /**
   * Makes `/dev/mapper` agree with the kernel's device list: a missing node is made (a block
   * node, mode 0600), a node or symlink that leads to another device (or nowhere) is replaced,
   * a block node or symlink whose name the kernel has no device of is removed. `control` and
   * entries that are neither block nodes nor symlinks are never touched (they are listed in
   * `skipped`). Runs whatever the udev mode.
   */
  mknodes(): Promise<MknodesResult> {
    return this.run(new CallSite(this.mknodes, this.capture), () => commands.mknodes());
  }

  /**
   * Removes the device. EBUSY is retried `retries` times with a growing pause (scans by
   * udev or blkid hold devices open briefly), then reported.
   */
  remove(id: DevId, options?: RemoveOptions): Promise<void> {
    return this.run(new CallSite(this.remove, this.capture), () => commands.remove(this, id, options));
  }

  /**
   * **Without a filter this removes every device-mapper device on the host** that is not open
   * (DM_REMOVE_ALL) — also devices of LVM, cryptsetup, multipath or container runtimes. Give
   * `prefix` and/or `uuidPrefix` to remove only the devices whose name / uuid start with them
   * (devices that depend on each other are removed top-down). Resolves with the names removed
   * (with a filter) or [] (DM_REMOVE_ALL does not say).
   */
  removeAll(options?: RemoveAllOptions): Promise<string[]> {
    return this.run(new CallSite(this.removeAll, this.capture), () => commands.removeAll(this, options));
  }

  /**
   * Finds the devices left suspended, carrying an inactive table or without a live table (by
   * a process that died in the middle of a `reload` or `create`, say), and with `repair` clears
   * their inactive table and resumes them on their live table, and removes those that never
   * got a live table. `repair` needs a `prefix` or `uuidPrefix` filter. Run it when no other process is
   * in the middle of an operation on the devices it matches (at start-up, say): it cannot tell
   * such a live operation from a dead one.
   */
  recover(options?: RecoverOptions): Promise<RecoveredDevice[]> {
    return this.run(new CallSite(this.recover, this.capture), () => commands.recover(options));
  }

  /** Sets the geometry the device reports (HDIO_GETGEO). */
  setGeometry(id: DevId, geometry: Geometry): Promise<DeviceInfo> {
    return this.run(new CallSite(this.setGeometry, this.capture), () => commands.setGeometry(id, geometry));
  }

  /**
   * Waits until the device's event counter differs from `eventNr` (a target raised an
   * event), then resolves with the device's info. The wait runs on a thread of the addon,
   * never on Node's threadpool, and ends early when `signal` aborts (rejecting with its reason
   * or an AbortError) or when the instance closes (ECANCELED).
   */
  async waitEvent(id: DevId, eventNr: number, options?: SignalOptions): Promise<DeviceInfo> {
    const site = new CallSite(this.waitEvent, this.capture);
    const dev = resolveId(id);
    const nr = checkInteger(eventNr, 'eventNr', 0, 0xffffffff);
    const signal = checkSignal(checkOptions(options, 'options', ['signal']).signal, 'options.signal');
    if (signal?.aborted) throw site.attach(abortError(signal));
    if (this.closing || this.control.closed) throw site.attach(new DmClosedError('waitEvent'));
    let wait: NativeWait;
    try {
      wait = this.control.waitEvent({ cmd: Command.DEV_WAIT, flags: 0, ...commands.idRequest(dev), eventNr: nr });
    } catch (e) {
      throw toDmError(e, site, dev.label);
    }
    this.waits.add(wait);
    const unsubscribe = onAbort(signal, () => wait.cancel());
    try {
      const r = await wait.promise;
      try {
        return commands.infoOf(r, dev.label);
      } catch (e) {
        throw e instanceof Error ? site.attach(e) : e;
      }
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
    const site = new CallSite(this.watch, this.capture);
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
}
