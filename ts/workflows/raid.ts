/**
 * A dm-raid array, end to end: MD's raid1/4/5/6/10 (and raid0) driven through one
 * device-mapper row, its initial resync and later sync actions followed through the kernel's
 * events and typed status, and arrays that run degraded with a leg missing. Built on
 * `DeviceMapper` and the typed raid target.
 */
import type { DeviceInfo, DeviceMapper, RemoveOptions } from '../client';
import type { DevId } from '../dev';
import { parseRaid, raid, raidMessages, type RaidDeviceHealth, type RaidOptions, type RaidStatus, type RaidSyncAction, type RaidSyncMessage, type RaidTarget, type RaidType } from '../targets/raid';
import type { StatusRow } from '../status';
import { checkCreate, createVerified, onlyRow, onlyStatus, oneRow, checkSame, waitForState, type SyncWaitOptions } from './one-row';
import { idOf } from './common';

/** Options of `Raid.create`: the raid target's options, the array's size, and an optional uuid. */
export interface RaidCreateOptions extends RaidOptions {
  /**
   * The array's length in 512-byte sectors: at most what the data legs hold (each leg's size,
   * less the kernel's data offset, times the data legs), and a length the data legs divide
   * evenly (times the copies, for raid10).
   */
  size: number;
  /** The device's uuid (then every later call names the device by it). */
  uuid?: string;
}

/** What the kernel says of an array now, from its typed status. */
export interface RaidState {
  /** The RAID level the kernel runs (a raid4 reports itself as raid4; md runs it as level 5). */
  readonly raidType: RaidType;
  /** Each leg's health, in table order: `in-sync` (A), `out-of-sync` (a), `dead` (D), `missing` (-). */
  readonly devices: readonly RaidDeviceHealth[];
  /** The running sync action: `idle` when none runs. */
  readonly syncAction: RaidSyncAction;
  /** Sectors per leg the sync action has done, and in all. */
  readonly syncRatio: {
    /** Sectors per leg done. */
    readonly used: number;
    /** Sectors per leg in all. */
    readonly total: number;
  };
  /** The share of `syncRatio` done, 0 to 1. */
  readonly progress: number;
  /**
   * No action runs and the ratio is complete: every leg present holds what it should. A
   * degraded array is in sync too once its present legs are.
   */
  readonly inSync: boolean;
  /** A leg is missing or dead: the array runs on its redundancy. */
  readonly degraded: boolean;
  /** Found by the last `check` (or `repair`), in 512-byte sectors of the units md compares: raid1 counts a bad 4 KiB block as its whole resync unit (128 sectors in the kernel test). */
  readonly mismatchCount: number;
  /** The typed status row itself. */
  readonly status: RaidStatus;
}

/** Options of `Raid.waitForSync`: bounded by `timeout` ms and a signal; progress reported to `onProgress`. */
export type RaidWaitOptions = SyncWaitOptions<RaidState>;

function isRaidStatus(s: StatusRow['status']): s is RaidStatus {
  return s.known && s.type === 'raid';
}

/** The state a typed raid status says. */
export function raidStateOf(status: RaidStatus): RaidState {
  const { used, total } = status.syncRatio;
  return {
    raidType: status.raidType,
    devices: status.devices,
    syncAction: status.syncAction,
    syncRatio: status.syncRatio,
    progress: total === 0 ? 1 : used / total,
    inSync: status.syncAction === 'idle' && used === total && !status.devices.includes('out-of-sync'),
    degraded: status.devices.some((d) => d === 'missing' || d === 'dead'),
    mismatchCount: status.mismatchCount,
    status,
  };
}

/**
 * A RAID array (the kernel's dm-raid target, MD's personalities underneath) on one device:
 * one row over the whole device. Calls name the device by its uuid when it has one, else by
 * its name, and check that the kernel's answers are about a raid row.
 *
 * The kernel's MD modules must be loaded (`raid1`, `raid10`, `raid456`, `raid0`); a kernel
 * that cannot load them itself refuses the table with EINVAL.
 */
export class Raid {
  /** The client the array is driven through. */
  readonly dm: DeviceMapper;
  /** The device's name. */
  readonly name: string;
  /** The device's uuid ('' for none). */
  readonly uuid: string;
  /** The device's number, node and state when it was created or opened. */
  readonly info: DeviceInfo;
  /** The table's target (level, legs, params), as the kernel read it back. */
  readonly target: RaidTarget;
  /** The array's length in 512-byte sectors. */
  readonly size: number;

  private constructor(dm: DeviceMapper, info: DeviceInfo, target: RaidTarget, size: number) {
    this.dm = dm;
    this.name = info.name;
    this.uuid = info.uuid;
    this.info = info;
    this.target = target;
    this.size = size;
  }

  /** How the device is named in each call: its uuid, else its name. */
  get id(): DevId {
    return idOf(this);
  }

  /**
   * Creates the device with one raid row of `size` sectors (DM_DEV_CREATE, DM_TABLE_LOAD,
   * resume) and reads its table back. At load the kernel reads (or, on fresh metadata devices,
   * writes) each leg's superblock; an array built with a leg missing (`data: null`) and no
   * metadata devices runs degraded from the start, while the same missing leg over fresh
   * metadata devices is refused ("New device injected into existing raid set without
   * 'delta_disks' or 'rebuild' parameter specified"). If a step fails the device is removed
   * again. Bad options are refused (TypeError / RangeError) before any ioctl.
   */
  static async create(dm: DeviceMapper, name: string, options: RaidCreateOptions): Promise<Raid> {
    const { size, uuid, rest } = checkCreate(name, options, 'raid');
    const target = raid(rest);
    const table = oneRow(size, target);
    return createVerified(dm, name, table, uuid, async (info) => {
      const r = await Raid.read(dm, info);
      // The kernel prints legs as 'major:minor', whatever node named them: compare the shape.
      const shape = (t: RaidTarget): string => `${t.raidType} ${t.chunkSize} ${t.devices.map((d) => `${d.metadata === null ? '-' : 'm'}${d.data === null ? '-' : 'd'}`).join(' ')}`;
      if (shape(r.target) !== shape(target) || r.size !== size) throw new Error(`${name}: the kernel's table is not the one loaded (${r.size} raid ${r.target.params})`);
      return r;
    });
  }

  /** Takes over an existing raid device: reads its info and table (a device with another table is refused). */
  static async open(dm: DeviceMapper, id: DevId): Promise<Raid> {
    return Raid.read(dm, await dm.info(id));
  }

  private static async read(dm: DeviceMapper, info: DeviceInfo): Promise<Raid> {
    const row = await onlyRow(dm, idOf(info), info.name, 'raid');
    return new Raid(dm, info, parseRaid(row.params), row.length);
  }

  /** DM_TABLE_STATUS: the array's state, from the kernel's typed status. */
  async state(): Promise<RaidState> {
    await checkSame(this.dm, this.id, this.name, this.info.dev);
    return raidStateOf(await onlyStatus(this.dm, this.id, this.name, isRaidStatus, 'raid'));
  }

  /**
   * Resolves with the state once the array is in sync (`RaidState.inSync`: no sync action
   * running, the ratio complete). MD raises a device event when a sync action ends or a leg
   * fails: the wait sleeps on those (DM_DEV_WAIT) and reads the status after each; with
   * `onProgress` it also reads the progress every `progressInterval` ms. Fails with ETIMEDOUT
   * after `timeout` ms (default 60000), or the signal's reason.
   */
  async waitForSync(options?: RaidWaitOptions): Promise<RaidState> {
    return waitForState(this.dm, this.id, this.name, this.info.dev, () => this.state(), (s) => s.inSync, (s) => `${s.syncAction} ${s.syncRatio.used}/${s.syncRatio.total}, legs ${s.devices.join(' ')}`, options, 'the sync');
  }

  /**
   * Sends a sync action message: `check` (read every stripe and count mismatches, changing
   * nothing), `repair` (the same, and rewrite what differs), `resync`, `recover`, `idle` (stop
   * the running action) or `frozen` (stop it and hold off others). The kernel refuses an
   * action other than idle/frozen while one runs (EBUSY).
   */
  async syncAction(action: RaidSyncMessage): Promise<void> {
    const message = raidMessages.syncAction(action);
    await checkSame(this.dm, this.id, this.name, this.info.dev);
    await this.dm.message(this.id, message);
  }

  /**
   * `check`, then a wait for its end (see `waitForSync`): resolves with the state, whose
   * `mismatchCount` is what the check found.
   */
  async check(options?: RaidWaitOptions): Promise<RaidState> {
    await this.syncAction('check');
    return this.waitForSync(options);
  }

  /** `repair`, then a wait for its end (see `waitForSync`). */
  async repair(options?: RaidWaitOptions): Promise<RaidState> {
    await this.syncAction('repair');
    return this.waitForSync(options);
  }

  /** Removes the device (DM_DEV_REMOVE). */
  async remove(options?: RemoveOptions): Promise<void> {
    await checkSame(this.dm, this.id, this.name, this.info.dev);
    await this.dm.remove(this.id, options);
  }
}
