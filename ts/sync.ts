/* eslint-disable @typescript-eslint/unbound-method -- the public methods are handed to `new CallSite(...)` only as stack-trace markers (Error.captureStackTrace's constructorOpt), never called through it */
import type { Control, NativeRequest } from '../binding';
import type {
  CreateOptions,
  DeviceInfo,
  DeviceListEntry,
  Geometry,
  LoadOptions,
  MessageOptions,
  OpenOptions,
  QueryOptions,
  RecoveredDevice,
  RecoverOptions,
  ReloadOptions,
  RemoveAllOptions,
  RemoveOptions,
  StatusOptions,
  SuspendOptions,
  TableOptions,
  TargetTypeVersion,
  UdevCallOptions,
} from './client';
import type { MknodesResult } from './nodes';
import type { UdevSettings } from './udev';
import { fromCompact, Lender, SYNC_HEADER_WORDS, type Answer } from './answer';
import * as commands from './commands';
import type { Cmd } from './commands';
import { Command } from './constants';
import type { DevId, DevNumber } from './dev';
import { CallSite, DmClosedError, toDmError } from './errors';
import { openControl } from './open';
import type { StatusRow } from './status';
import { Continue, countAnswer, countFailure, isOneIoctl, type OneIoctl, payloadOf, ProgramRun, type IoctlCounts, type Program } from './steps';
import type { Table } from './table';
import { isUdevStep, runUdevStepSync } from './udev-steps';

/** Sleeps the calling thread (a sync call's bounded backoff before a retry). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * The synchronous device-mapper client (`DeviceMapper.openSync()`): the same commands as
 * `DeviceMapper`, with the same argument checks, errors, identity checks and rollback —
 * the same code, run on the calling thread instead of the addon's I/O threads, so a call costs
 * about the ioctl itself. Meant for scripts and command-line tools; a server should use the
 * asynchronous client, which never blocks the event loop. A call that retries (remove on
 * EBUSY) sleeps the thread between tries. Waits (`waitEvent`, `watch`) are asynchronous only.
 * Calls on one instance run one at a time by nature, so each multi-step operation sees its
 * device alone within the process.
 */
export class DeviceMapperSync {
  /** The kernel's device-mapper interface version, e.g. [4, 47, 0]. */
  readonly driverVersion: [number, number, number];
  /** The udev mode and cookie timeout this client was opened with (`OpenOptions.udev`). */
  readonly udev: UdevSettings;
  private readonly control: Control;
  /** Where the addon writes the numbers of each answer (the compact form of ioctlSync). */
  private readonly header = new Float64Array(SYNC_HEADER_WORDS);
  private readonly counts: IoctlCounts = { commands: 0, ioctls: 0 };
  /** Counts the calls: an answer's rows lie in memory the next call reuses. */
  private readonly lender = new Lender();
  /** Set by close(): read on every call without asking the addon. */
  private isClosed = false;

  private constructor(control: Control, driverVersion: [number, number, number], udev: UdevSettings) {
    this.control = control;
    this.driverVersion = driverVersion;
    this.udev = udev;
  }

  /** Opens the control node (see `DeviceMapper.open`); throws what it would reject with. */
  static open(options?: OpenOptions): DeviceMapperSync {
    return DeviceMapperSync.openAt(new CallSite(DeviceMapperSync.open, 'failure'), options);
  }

  /** `open`, with the caller's stack taken by the public function it came through. @internal */
  static openAt(site: CallSite, options: OpenOptions | undefined): DeviceMapperSync {
    const { control, path, udev } = openControl(options, site);
    try {
      const r = control.ioctlSync({ cmd: Command.VERSION, flags: 0 });
      return new DeviceMapperSync(control, commands.version(r.version), udev);
    } catch (e) {
      control.closeSync();
      throw toDmError(e, site, path);
    }
  }

  /** True once `close()` has been called. */
  get closed(): boolean {
    return this.isClosed || this.control.closed;
  }

  /** Buffer sizes (bytes) remembered per command, indexed by command number. */
  bufferSizes(): number[] {
    return this.control.bufferSizes();
  }

  /** How many DM commands this instance has sent and how many ioctl system calls they took. */
  get ioctlStats(): {
    /** DM commands sent. */
    commands: number;
    /** ioctl system calls made. */
    ioctls: number;
  } {
    return { ...this.counts };
  }

  /** Runs a command made by `make` on this thread, to its end. */
  private run<T>(site: CallSite, make: () => Cmd<T>): T {
    try {
      const { program } = make();
      if (this.isClosed) throw new DmClosedError(site.name);
      // A command of one ioctl (most are): its step sent and its answer finished directly.
      return isOneIoctl(program) ? this.one(site, program) : this.drive(site, program);
    } catch (e) {
      throw e instanceof Error ? site.attach(e) : e;
    }
  }

  /** Runs a program's steps on this thread, to its end. */
  private drive<T>(site: CallSite, program: Program<T>): T {
    const run = new ProgramRun(program, this.counts);
    for (;;) {
      const next = run.next();
      if (next.done === true) return next.value;
      const step = next.value;
      if (step.kind === 'sleep') {
        sleepSync(step.ms);
        run.answer({});
      } else if (step.kind === 'lock') {
        // Nothing else of this instance runs meanwhile: the device is as the program left it.
        run.answer({ stale: false });
      } else if (step.kind === 'yield') {
        // Nothing else runs on this thread meanwhile: the next slice follows at once.
        run.answer({});
      } else if (isUdevStep(step)) {
        try {
          run.answer(runUdevStepSync(step));
        } catch (e) {
          run.threw(e);
        }
      } else {
        try {
          run.answered(this.send(step.request));
        } catch (e) {
          run.failed(toDmError(e, site, step.device));
        }
      }
    }
  }

  /** Sends one request on this thread; its answer's rows are lent until the next call. */
  private send(r: NativeRequest): Answer {
    this.lender.calls++;
    const compact = this.control.callSync(r.cmd, r.flags, r.dev ?? 0, r.eventNr ?? 0, r.name ?? '', r.uuid ?? '', payloadOf(r), this.header);
    return fromCompact(this.header, compact, this.lender);
  }

  /** Runs a program of one ioctl: what `drive` does with it, without the loop. */
  private one<T>(site: CallSite, program: OneIoctl<T>): T {
    const { request, device } = program.step;
    let answer: Answer;
    try {
      answer = this.send(request);
    } catch (e) {
      countFailure(this.counts);
      throw toDmError(e, site, device);
    }
    countAnswer(this.counts, answer);
    const value = program.finish(answer);
    // A large answer goes on in slices, as the program would.
    return value instanceof Continue ? this.drive(site, value.program) : value;
  }

  /** All devices (`DeviceMapper.listDevices`). */
  listDevices(): DeviceListEntry[] {
    return this.run(new CallSite(this.listDevices, 'failure'), () => commands.listDevices());
  }

  /** The target types the kernel has loaded (`DeviceMapper.listTargets`). */
  listTargets(): TargetTypeVersion[] {
    return this.run(new CallSite(this.listTargets, 'failure'), () => commands.listTargets());
  }

  /** One target type's version (`DeviceMapper.targetVersion`). */
  targetVersion(type: string): [number, number, number] {
    return this.run(new CallSite(this.targetVersion, 'failure'), () => commands.targetVersion(this, type));
  }

  /** Creates a device, loads and resumes its table, rolled back on failure (`DeviceMapper.create`). */
  create(name: string, options?: CreateOptions): DeviceInfo {
    return this.run(new CallSite(this.create, 'failure'), () => commands.create(this, name, options));
  }

  /** DEV_STATUS (`DeviceMapper.info`). */
  info(id: DevId, options?: QueryOptions): DeviceInfo {
    return this.run(new CallSite(this.info, 'failure'), () => commands.info(id, options));
  }

  /** Loads an inactive table (`DeviceMapper.load`). */
  load(id: DevId, table: Table, options?: LoadOptions): DeviceInfo {
    return this.run(new CallSite(this.load, 'failure'), () => commands.load(id, table, options));
  }

  /** Suspends the device (`DeviceMapper.suspend`). */
  suspend(id: DevId, options?: SuspendOptions): DeviceInfo {
    return this.run(new CallSite(this.suspend, 'failure'), () => commands.suspend(id, options));
  }

  /** Resumes the device (`DeviceMapper.resume`). */
  resume(id: DevId, options?: UdevCallOptions): DeviceInfo {
    return this.run(new CallSite(this.resume, 'failure'), () => commands.resume(this, id, options));
  }

  /** Replaces the live table, put back as it was on failure (`DeviceMapper.reload`). */
  reload(id: DevId, table: Table, options?: ReloadOptions): DeviceInfo {
    return this.run(new CallSite(this.reload, 'failure'), () => commands.reload(this, id, table, options));
  }

  /** Reloads with the table `change` makes from the live one (`DeviceMapper.update`). */
  update(id: DevId, change: (table: Table | undefined) => Table, options?: ReloadOptions): DeviceInfo {
    return this.run(new CallSite(this.update, 'failure'), () => commands.update(this, id, change, options));
  }

  /** Drops the inactive table (`DeviceMapper.clear`). */
  clear(id: DevId): DeviceInfo {
    return this.run(new CallSite(this.clear, 'failure'), () => commands.clear(id));
  }

  /** The device's table, typed (`DeviceMapper.table`). */
  table(id: DevId, options?: TableOptions): Table | undefined {
    return this.run(new CallSite(this.table, 'failure'), () => commands.table(id, options));
  }

  /** The typed status of each row (`DeviceMapper.status`). */
  status(id: DevId, options?: StatusOptions): StatusRow[] {
    return this.run(new CallSite(this.status, 'failure'), () => commands.status(this, id, options));
  }

  /** The devices the table uses (`DeviceMapper.deps`). */
  deps(id: DevId, options?: QueryOptions): DevNumber[] {
    return this.run(new CallSite(this.deps, 'failure'), () => commands.deps(id, options));
  }

  /** Sends a target message; returns its output, if any (`DeviceMapper.message`). */
  message(id: DevId, message: string, options?: MessageOptions): string | undefined {
    return this.run(new CallSite(this.message, 'failure'), () => commands.message(id, message, options));
  }

  /** Renames the device (`DeviceMapper.rename`). */
  rename(id: DevId, newName: string, options?: UdevCallOptions): DeviceInfo {
    return this.run(new CallSite(this.rename, 'failure'), () => commands.rename(this, id, newName, options));
  }

  /** Sets the uuid of a device that has none (`DeviceMapper.setUuid`). */
  setUuid(id: DevId, uuid: string, options?: UdevCallOptions): DeviceInfo {
    return this.run(new CallSite(this.setUuid, 'failure'), () => commands.setUuid(this, id, uuid, options));
  }

  /** Makes `/dev/mapper` agree with the kernel's device list (`DeviceMapper.mknodes`). */
  mknodes(): MknodesResult {
    return this.run(new CallSite(this.mknodes, 'failure'), () => commands.mknodes());
  }

  /** Removes the device, EBUSY retried (`DeviceMapper.remove`). */
  remove(id: DevId, options?: RemoveOptions): void {
    this.run(new CallSite(this.remove, 'failure'), () => commands.remove(this, id, options));
  }

  /**
   * **Without a filter this removes every device-mapper device on the host** that is not open
   * (`DeviceMapper.removeAll`); give `prefix` or `uuidPrefix` to remove only yours.
   */
  removeAll(options?: RemoveAllOptions): string[] {
    return this.run(new CallSite(this.removeAll, 'failure'), () => commands.removeAll(this, options));
  }

  /** Devices left suspended, with an inactive table or without a live table (`DeviceMapper.recover`). */
  recover(options?: RecoverOptions): RecoveredDevice[] {
    return this.run(new CallSite(this.recover, 'failure'), () => commands.recover(options));
  }

  /** Sets the geometry the device reports (`DeviceMapper.setGeometry`). */
  setGeometry(id: DevId, geometry: Geometry): DeviceInfo {
    return this.run(new CallSite(this.setGeometry, 'failure'), () => commands.setGeometry(id, geometry));
  }

  /** Closes the control node; later calls throw `DmClosedError`. A second close does nothing. */
  close(): void {
    this.isClosed = true;
    if (!this.control.closed) this.control.closeSync();
  }
}
