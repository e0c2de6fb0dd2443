/**
 * A dm-mirror device, end to end: the same data on 2 to 9 legs, with a dirty region log in
 * memory (`core`) or on a device (`disk`), its resync followed through the kernel's events
 * and typed status. Built on `DeviceMapper` and the typed mirror target.
 */
import type { DeviceInfo, DeviceMapper, RemoveOptions } from '../client';
import type { DevId } from '../dev';
import type { StatusRow } from '../status';
import { mirror, parseMirror, type MirrorLegHealth, type MirrorLogStatus, type MirrorOptions, type MirrorStatus, type MirrorTarget } from '../targets/mirror';
import { checkCreate, checkSame, createVerified, onlyRow, onlyStatus, oneRow, waitForState, type SyncWaitOptions } from './one-row';
import { idOf } from './common';

/** Options of `Mirror.create`: the mirror target's options, the device's size, and an optional uuid. */
export interface MirrorCreateOptions extends MirrorOptions {
  /** The device's length in 512-byte sectors: at most what each leg holds past its offset. */
  size: number;
  /** The device's uuid (then every later call names the device by it). */
  uuid?: string;
}

/** What the kernel says of a mirror now, from its typed status. */
export interface MirrorState {
  /** Each leg's device ('major:minor') and health, in table order. */
  readonly legs: readonly {
    /** The leg's device, 'major:minor'. */
    readonly device: string;
    /** Its health, as the status letter says. */
    readonly health: MirrorLegHealth;
  }[];
  /** Regions in sync and regions in all (a region is the log's unit, `regionSize` sectors). */
  readonly regions: {
    /** Regions in sync. */
    readonly used: number;
    /** Regions in all. */
    readonly total: number;
  };
  /** The share of regions in sync, 0 to 1. */
  readonly progress: number;
  /** Every region is in sync: each leg holds the same data. */
  readonly inSync: boolean;
  /** The log's status (a disk log's device and health). */
  readonly log: MirrorLogStatus;
  /** The typed status row itself. */
  readonly status: MirrorStatus;
}

/** Options of `Mirror.waitForSync`: bounded by `timeout` ms and a signal; progress reported to `onProgress`. */
export type MirrorWaitOptions = SyncWaitOptions<MirrorState>;

function isMirrorStatus(s: StatusRow['status']): s is MirrorStatus {
  return s.known && s.type === 'mirror';
}

/** The state a typed mirror status says. */
export function mirrorStateOf(status: MirrorStatus): MirrorState {
  const { used, total } = status.regions;
  return { legs: status.legs, regions: status.regions, progress: total === 0 ? 1 : used / total, inSync: used === total, log: status.log, status };
}

/**
 * A mirror (the kernel's dm-mirror target) on one device: one row over the whole device.
 * Calls name the device by its uuid when it has one, else by its name, and check that the
 * kernel's answers are about a mirror row.
 */
export class Mirror {
  /** The client the mirror is driven through. */
  readonly dm: DeviceMapper;
  /** The device's name. */
  readonly name: string;
  /** The device's uuid ('' for none). */
  readonly uuid: string;
  /** The device's number, node and state when it was created or opened. */
  readonly info: DeviceInfo;
  /** The table's target (log, legs, features), as the kernel read it back. */
  readonly target: MirrorTarget;
  /** The device's length in 512-byte sectors. */
  readonly size: number;

  private constructor(dm: DeviceMapper, info: DeviceInfo, target: MirrorTarget, size: number) {
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
   * Creates the device with one mirror row of `size` sectors (DM_DEV_CREATE, DM_TABLE_LOAD,
   * resume) and reads its table back. Once live, the kernel copies the first leg's regions to
   * the others where the log does not mark them in sync (every region with `sync`, none with
   * `nosync`); a disk log keeps that record across activations. If a step fails the device is
   * removed again. Bad options are refused (TypeError / RangeError) before any ioctl.
   */
  static async create(dm: DeviceMapper, name: string, options: MirrorCreateOptions): Promise<Mirror> {
    const { size, uuid, rest } = checkCreate(name, options, 'mirror');
    const target = mirror(rest);
    return createVerified(dm, name, oneRow(size, target), uuid, async (info) => {
      const m = await Mirror.read(dm, info);
      // The kernel prints devices as 'major:minor', whatever node named them: compare the shape.
      const shape = (t: MirrorTarget): string => `${t.log.type} ${t.log.regionSize} ${t.legs.map((l) => l.offset).join(' ')} ${t.handleErrors} ${t.keepLog}`;
      if (shape(m.target) !== shape(target) || m.size !== size) throw new Error(`${name}: the kernel's table is not the one loaded (${m.size} mirror ${m.target.params})`);
      return m;
    });
  }

  /** Takes over an existing mirror device: reads its info and table (a device with another table is refused). */
  static async open(dm: DeviceMapper, id: DevId): Promise<Mirror> {
    return Mirror.read(dm, await dm.info(id));
  }

  private static async read(dm: DeviceMapper, info: DeviceInfo): Promise<Mirror> {
    const row = await onlyRow(dm, idOf(info), info.name, 'mirror');
    return new Mirror(dm, info, parseMirror(row.params), row.length);
  }

  /** DM_TABLE_STATUS: the mirror's state, from the kernel's typed status. */
  async state(): Promise<MirrorState> {
    await checkSame(this.dm, this.id, this.name, this.info.dev);
    return mirrorStateOf(await onlyStatus(this.dm, this.id, this.name, isMirrorStatus, 'mirror'));
  }

  /**
   * Resolves with the state once every region is in sync. dm-mirror raises a device event
   * when its recovery completes and when a leg or the log fails: the wait sleeps on those
   * (DM_DEV_WAIT) and reads the status after each; with `onProgress` it also reads the
   * progress every `progressInterval` ms. Fails with ETIMEDOUT after `timeout` ms (default
   * 60000), or the signal's reason.
   */
  async waitForSync(options?: MirrorWaitOptions): Promise<MirrorState> {
    return waitForState(this.dm, this.id, this.name, this.info.dev, () => this.state(), (s) => s.inSync, (s) => `${s.regions.used}/${s.regions.total} regions in sync, legs ${s.legs.map((l) => l.health).join(' ')}`, options, 'the resync');
  }

  /** Removes the device (DM_DEV_REMOVE). */
  async remove(options?: RemoveOptions): Promise<void> {
    await checkSame(this.dm, this.id, this.name, this.info.dev);
    await this.dm.remove(this.id, options);
  }
}
