/**
 * The thin pool recipe (container storage, as lvm and docker's devicemapper driver use it): a
 * `thin-pool` over a metadata device and a data device, thin volumes and snapshots made by the
 * pool's messages and activated as `thin` devices, the pool's transaction id moved in step with
 * every change of its metadata, the data and metadata devices grown by a reload, the low water
 * mark's event waking a caller that grows the pool, and metadata snapshots held for userspace
 * tools. Kernel reference: Documentation/admin-guide/device-mapper/thin-provisioning.rst.
 */
import { checkSignal } from '../abort';
import { DeviceMapper, type DeviceInfo } from '../client';
import { formatDev, formatDeviceRef, resolveId, type DevId, type DevNumber, type DeviceRef } from '../dev';
import { DmError } from '../errors';
import { Table } from '../table';
import { targets, thinPoolMessages, THIN_MAX_DEVICE_ID, type Target, type TargetStatus, type ThinPoolRunningStatus, type ThinPoolStatus, type ThinPoolTarget, type ThinStatus, type ThinTarget } from '../targets/index';
import { checkBoolean, checkInteger, checkName, checkOptions, checkSector, checkUuid, expected, expectedRange } from '../validate';
import { transactionId } from '../targets/thin-pool';
import { checkDeviceMapper, deviceNumber, sameDev } from './common';
import { EIO, ENXIO, asError, checkedInfo, createPlanned, deviceSectors, liveTarget, openDevice, stale, statusError, statusWaitOptions, typedStatus, waitForStatus, type MetadataPlan } from './metadata-device';

const U64_MAX = 0xffffffffffffffffn;
/** Default bound of `waitForStatus`, milliseconds. */
const DEFAULT_TIMEOUT = 30000;
/** How the messages name a pool device. */
const WHAT = 'the pool';

/** The pool's table, as `ThinPool.create` and `ThinPool.activate` take it. */
export interface ThinPoolActivateOptions {
  /** The device holding the pool's metadata (`'major:minor'`, a /dev path or `{ major, minor }`). */
  metadataDevice: DeviceRef;
  /** The device whose blocks the thin volumes share; another device than the metadata's. */
  dataDevice: DeviceRef;
  /** The data block size, in 512-byte sectors: a multiple of 128 (64 KiB) from 128 to 2097152 (1 GiB). */
  blockSize: number;
  /**
   * The low water mark, in data blocks (default 0): once a block is provisioned and this many
   * or fewer are free, the kernel raises a device event, once until the pool's next resume
   * (see `ThinPool.lowWater`).
   */
  lowWaterMark?: number;
  /**
   * The pool's length, in sectors: the data the pool hands out, a whole number of data
   * blocks. Default: the data device's size (from /sys/dev/block), cut to whole blocks.
   */
  dataSectors?: number;
  /** The pool device's uuid; with one, the recipe names the pool by it after the create (a name can be reused by another device). */
  uuid?: string;
  /** `skip_block_zeroing`: newly provisioned blocks are not zeroed first. */
  skipBlockZeroing?: boolean;
  /** `ignore_discard`: no discard support at all. */
  ignoreDiscard?: boolean;
  /** `no_discard_passdown`: a discard unmaps blocks but is not passed down to the data device. */
  noDiscardPassdown?: boolean;
  /** `error_if_no_space`: writes fail at once when the pool is out of data space, instead of queueing. */
  errorIfNoSpace?: boolean;
  /** `read_only`: no change to the metadata; only for metadata a read-write pool has formatted (never with `create`). */
  readOnly?: boolean;
}

/** Options of `ThinPool.create`: the table's, without `readOnly` (the kernel formats new metadata read-write). */
export type ThinPoolCreateOptions = Omit<ThinPoolActivateOptions, 'readOnly'>;

/** Changes `ThinPool.configure` makes to the pool's table (the devices and block size stay). */
export interface ThinPoolConfigureOptions {
  /** The new low water mark, in data blocks (see `ThinPoolOptions.lowWaterMark`). */
  lowWaterMark?: number;
  /** Do not zero newly provisioned blocks (`skip_block_zeroing`). */
  skipBlockZeroing?: boolean;
  /** Disable discard support (`ignore_discard`); turning it back on needs the pool deactivated. */
  ignoreDiscard?: boolean;
  /** Do not pass discards down to the data device (`no_discard_passdown`). */
  noDiscardPassdown?: boolean;
  /** Fail I/O at once when out of data space (`error_if_no_space`) instead of queueing it. */
  errorIfNoSpace?: boolean;
  /** Allow no change to the metadata (`read_only`); `false` reloads the table without it. */
  readOnly?: boolean;
}

/** Options of the calls that change the pool's metadata (`createThin`, `createSnapshot`, `deleteThin`). */
export interface TransactionOptions {
  /**
   * The transaction id the caller's own records say the pool is at: the change is made only
   * if the pool's is this one (else EINVAL from `set_transaction_id`, and nothing changes).
   * Default: the id the pool's status shows.
   */
  transactionId?: bigint | number;
}

/** Options of `ThinPool.activateThin`. */
export interface ThinActivateOptions {
  /** The thin device's id in the pool (made by `createThin` or `createSnapshot`). */
  deviceId: number;
  /** The volume's size, in sectors (it may be larger than the pool: thin provisioning). */
  sectors: number;
  /**
   * A device read for the blocks the volume has not provisioned (an external origin: a
   * read-only image, say); it is never written, and must not change while in use.
   */
  externalOriginDevice?: DeviceRef;
  /** The volume's device uuid. */
  uuid?: string;
  /** Load the table read-only. */
  readOnly?: boolean;
}

/** Options of `ThinPool.grow`. */
export interface ThinPoolGrowOptions {
  /** The pool's new length in sectors (whole data blocks); default: the data device's size now, cut to whole blocks. */
  dataSectors?: number;
}

/** Options of `ThinPool.waitForStatus`. */
export interface ThinPoolWaitOptions {
  /** Milliseconds before the wait fails with ETIMEDOUT; default 30000. */
  timeout?: number;
  /** Ends the wait: it rejects with the signal's reason, or an AbortError. */
  signal?: AbortSignal;
}

/** Options of `ThinPool.lowWater` and `ThinPool.onLowWater`. */
export interface LowWaterOptions {
  /** Ends the wait (the iterator returns, `onLowWater` resolves). */
  signal?: AbortSignal;
}

/** An active thin volume of a pool. */
export interface ThinVolume {
  /** The volume's device name. */
  readonly name: string;
  /** '' when it has none. */
  readonly uuid: string;
  /** Its device number. */
  readonly dev: DevNumber;
  /** `/dev/dm-N`. */
  readonly path: string;
  /** `/dev/mapper/<name>`. */
  readonly mapperPath: string;
  /** The thin device's id in the pool. */
  readonly deviceId: number;
  /** Its size, in sectors. */
  readonly sectors: number;
  /** Its external origin as `'major:minor'`, or null. */
  readonly externalOriginDevice: string | null;
}

/** What woke a `lowWater` wait: the pool's status when it was read after a device event (or at the start). */
export interface LowWaterEvent {
  /** The pool's typed status as read. */
  readonly status: ThinPoolRunningStatus;
  /** The low water mark of the live table, in data blocks. */
  readonly lowWaterMark: number;
  /** Free data blocks (`data.total - data.used`). */
  readonly freeDataBlocks: number;
  /** Free data blocks are at or below the low water mark, or the pool is `out_of_data_space`. */
  readonly dataLow: boolean;
  /** Free metadata blocks are at or below the kernel's metadata low watermark. */
  readonly metadataLow: boolean;
}

/**
 * A thin pool on a `DeviceMapper`. Every call names the pool by its uuid when it has one, else
 * by its name, and checks that the kernel's device is still the one this object was made for
 * (its device number) before it sends a message (ESTALE otherwise). The calls that change the
 * metadata move the pool's transaction id on by one, first, with `set_transaction_id` (so a
 * change made meanwhile by another manager is refused before anything happens), and set it
 * back when the change itself fails.
 */
export class ThinPool {
  /** The client every call goes through. */
  readonly dm: DeviceMapper;
  /** The pool device's name when this object was made. */
  readonly name: string;
  /** The pool device's uuid ('' when it has none). */
  readonly uuid: string;
  /** The pool device's number: thin tables name the pool by it. */
  readonly dev: DevNumber;
  /** `/dev/dm-N` of the pool. */
  readonly path: string;
  #target: ThinPoolTarget;
  #sectors: number;

  private constructor(dm: DeviceMapper, info: DeviceInfo, target: ThinPoolTarget, sectors: number) {
    this.dm = dm;
    this.name = info.name;
    this.uuid = info.uuid;
    this.dev = info.dev;
    this.path = info.path;
    this.#target = target;
    this.#sectors = sectors;
  }

  /** How the pool is named in calls: `{ uuid }` when it has one, else its name. */
  get id(): DevId {
    return this.uuid !== '' ? { uuid: this.uuid } : this.name;
  }

  /** The pool's thin-pool target as this object last loaded or read it. */
  get target(): ThinPoolTarget {
    return this.#target;
  }

  /** The pool's length in sectors as this object last loaded or read it. */
  get sectors(): number {
    return this.#sectors;
  }

  /** The data block size, in sectors. */
  get blockSize(): number {
    return this.#target.blockSize;
  }

  /**
   * Makes a new pool: writes zeros over the first 4 KiB of the metadata device (opened
   * O_EXCL, so a device that a table or a mount holds is refused with EBUSY before anything is
   * written), then creates the pool device, whose first load formats the metadata (the
   * kernel's rule: an all-zero superblock is new metadata). If the name is taken, or the
   * DEV_CREATE fails, the 4 KiB that were there are written back (no table was loaded, so the
   * kernel never read the zeros); if the load or resume fails, the create removes the device.
   */
  static async create(dm: DeviceMapper, name: string, options: ThinPoolCreateOptions): Promise<ThinPool> {
    checkDeviceMapper(dm);
    const o = checkOptions(options, 'options', ['metadataDevice', 'dataDevice', 'blockSize', 'lowWaterMark', 'dataSectors', 'uuid', 'skipBlockZeroing', 'ignoreDiscard', 'noDiscardPassdown', 'errorIfNoSpace']);
    const plan = await planPool(name, { ...o, readOnly: false }, 'options');
    const info = await createPlanned(dm, name, plan, true);
    return new ThinPool(dm, info, plan.target, plan.table.size);
  }

  /**
   * Activates a pool on metadata a pool has used before (nothing is zeroed): creates the
   * device with the pool's table; the kernel opens the metadata it finds (and refuses a data
   * device smaller than the metadata records). `readOnly` loads it `read_only`.
   */
  static async activate(dm: DeviceMapper, name: string, options: ThinPoolActivateOptions): Promise<ThinPool> {
    checkDeviceMapper(dm);
    const o = checkOptions(options, 'options', ['metadataDevice', 'dataDevice', 'blockSize', 'lowWaterMark', 'dataSectors', 'uuid', 'skipBlockZeroing', 'ignoreDiscard', 'noDiscardPassdown', 'errorIfNoSpace', 'readOnly']);
    const plan = await planPool(name, o, 'options');
    const info = await createPlanned(dm, name, plan, false);
    return new ThinPool(dm, info, plan.target, plan.table.size);
  }

  /** A `ThinPool` for a pool device that is active already: its live table must be one `thin-pool` row. */
  static async open(dm: DeviceMapper, id: DevId): Promise<ThinPool> {
    const o = await openDevice(dm, id, WHAT, poolTargetOf);
    return new ThinPool(o.dm, o.info, o.target, o.sectors);
  }

  /** The pool's typed status (narrow on `failed`): transaction id, metadata and data blocks used and in all, mode, held metadata root. */
  async status(): Promise<ThinPoolStatus> {
    return typedStatus(this.dm, this.id, this.name, 'thin-pool', isPoolStatus);
  }

  /** The status of a working pool; a pool the kernel failed (`Fail`, `Error`) rejects with EIO. */
  async runningStatus(): Promise<ThinPoolRunningStatus> {
    const s = await this.status();
    if (s.failed !== false) throw statusError(this.name, `the pool has failed (${s.failed}): deactivate it and run thin_check`);
    return s;
  }

  /**
   * `create_thin <id>`: a new, empty thin device in the pool's metadata (activate it with
   * `activateThin`). Resolves with the pool's new transaction id.
   */
  async createThin(deviceId: number, options?: TransactionOptions): Promise<bigint> {
    const message = thinPoolMessages.createThin(checkInteger(deviceId, 'deviceId', 0, THIN_MAX_DEVICE_ID));
    const opts = checkOptions(options, 'options', ['transactionId']);
    return this.#transaction(opts, () => this.dm.message(this.id, message));
  }

  /**
   * `create_snap <id> <origin id>`: thin device `deviceId` becomes a snapshot of thin device
   * `originId` (a volume, or itself a snapshot), sharing its blocks. Every active device of
   * `originId` on this pool is suspended around the message, as the kernel asks (so that its
   * writes in flight are in the snapshot), and resumed whatever happens. Resolves with the
   * pool's new transaction id.
   */
  async createSnapshot(deviceId: number, originId: number, options?: TransactionOptions): Promise<bigint> {
    const message = thinPoolMessages.createSnap(checkInteger(deviceId, 'deviceId', 0, THIN_MAX_DEVICE_ID), checkInteger(originId, 'originId', 0, THIN_MAX_DEVICE_ID));
    const opts = checkOptions(options, 'options', ['transactionId']);
    await this.#check();
    const origins = (await this.activeThins()).filter((t) => t.deviceId === originId);
    return this.#transaction(opts, () => withSuspended(this.dm, origins, () => this.dm.message(this.id, message)));
  }

  /**
   * `delete <id>`: removes thin device `deviceId` from the metadata and frees the blocks only
   * it used. The kernel refuses an active one (EBUSY) and an unknown id (ENODATA). Resolves
   * with the pool's new transaction id.
   */
  async deleteThin(deviceId: number, options?: TransactionOptions): Promise<bigint> {
    const message = thinPoolMessages.delete(checkInteger(deviceId, 'deviceId', 0, THIN_MAX_DEVICE_ID));
    const opts = checkOptions(options, 'options', ['transactionId']);
    return this.#transaction(opts, () => this.dm.message(this.id, message));
  }

  /**
   * Activates thin device `deviceId` as device `name`: a `thin <pool> <id> [<external
   * origin>]` table of `sectors` sectors (the kernel refuses an id the metadata does not have,
   * and the create then removes the device again).
   */
  async activateThin(name: string, options: ThinActivateOptions): Promise<ThinVolume> {
    checkName(name, 'name');
    const o = checkOptions(options, 'options', ['deviceId', 'sectors', 'externalOriginDevice', 'uuid', 'readOnly']);
    const deviceId = checkInteger(o.deviceId, 'options.deviceId', 0, THIN_MAX_DEVICE_ID);
    const sectors = checkSector(o.sectors, 'options.sectors');
    if (sectors === 0) throw expectedRange('a size of at least 1 sector', 'options.sectors', sectors);
    const uuid = o.uuid === undefined ? undefined : checkUuid(o.uuid, 'options.uuid');
    const readOnly = checkBoolean(o.readOnly, 'options.readOnly', false);
    if (o.externalOriginDevice !== undefined) formatDeviceRef(o.externalOriginDevice, 'options.externalOriginDevice');
    const external = o.externalOriginDevice === undefined ? undefined : formatDev(await deviceNumber(o.externalOriginDevice, 'options.externalOriginDevice'));
    const target = targets.thin({ poolDevice: this.dev, deviceId, ...(external !== undefined ? { externalOriginDevice: external } : {}) });
    await this.#check();
    const info = await this.dm.create(name, { table: new Table([{ start: 0, length: sectors, target }]), readOnly, ...(uuid !== undefined ? { uuid } : {}) });
    return volumeOf(info, target, sectors);
  }

  /**
   * Removes an active thin volume of this pool (its data stays in the pool: `deleteThin`
   * frees it). A device whose live table is not one `thin` row on this pool is refused
   * (RangeError) and left alone; an open one is refused by the kernel (EBUSY).
   */
  async deactivateThin(id: DevId | ThinVolume): Promise<void> {
    const devId: DevId = isVolume(id) ? (id.uuid !== '' ? { uuid: id.uuid } : id.name) : id;
    resolveId(devId);
    const info = await this.dm.info(devId);
    const own: DevId = info.uuid !== '' ? { uuid: info.uuid } : info.name;
    const target = thinTargetOf(await this.dm.table(own));
    if (target === undefined || target.poolDevice !== formatDev(this.dev)) {
      throw expectedRange(`a thin volume of pool ${this.name} (${formatDev(this.dev)})`, 'id', info.name);
    }
    if (isVolume(id) && !sameDev(id.dev, info.dev)) throw stale(info.name, id.dev, info.dev, WHAT);
    await this.dm.remove(own);
  }

  /** The typed status of thin volume `id` (mapped sectors and the highest mapped sector). */
  async thinStatus(id: DevId | ThinVolume): Promise<ThinStatus> {
    const devId: DevId = isVolume(id) ? (id.uuid !== '' ? { uuid: id.uuid } : id.name) : id;
    const rows = await this.dm.status(devId);
    const row = rows[0];
    if (rows.length !== 1 || row === undefined || !row.status.known || row.status.type !== 'thin') {
      throw new DmError({ errno: EIO, syscall: 'ioctl', command: 'DM_TABLE_STATUS', device: resolveId(devId).label, message: `DM_TABLE_STATUS ${resolveId(devId).label}: not one typed thin row` });
    }
    return row.status;
  }

  /**
   * The active thin volumes of this pool: the devices whose dependencies include the pool and
   * whose live table is one `thin` row naming it. Devices that go while they are read are left out.
   */
  async activeThins(): Promise<ThinVolume[]> {
    const pool = formatDev(this.dev);
    const found: ThinVolume[] = [];
    for (const d of await this.dm.listDevices()) {
      if (sameDev(d.dev, this.dev)) continue;
      const own: DevId = d.uuid !== undefined && d.uuid !== '' ? { uuid: d.uuid } : d.name;
      try {
        // DEPS first: a crypt table's text would carry its key.
        if (!(await this.dm.deps(own)).some((x) => sameDev(x, this.dev))) continue;
        const table = await this.dm.table(own);
        const target = thinTargetOf(table);
        if (target === undefined || target.poolDevice !== pool || table === undefined) continue;
        const info = await this.dm.info(own);
        if (!sameDev(info.dev, d.dev)) continue;
        found.push(volumeOf(info, target, table.size));
      } catch (e) {
        if (e instanceof DmError && e.errno === ENXIO) continue;
        throw e;
      }
    }
    return found;
  }

  /**
   * `reserve_metadata_snap`: the kernel takes a snapshot of the metadata for userspace to read
   * while the pool is live (`thin_dump -m`, `thin_ls -m`); resolves with its root block (the
   * status's held metadata root). One at a time: EBUSY while one is held.
   */
  async reserveMetadataSnap(): Promise<number> {
    await this.#check();
    await this.dm.message(this.id, thinPoolMessages.reserveMetadataSnap());
    const held = (await this.runningStatus()).heldMetadataRoot;
    if (held === null) throw statusError(this.name, `no held metadata root after reserve_metadata_snap`);
    return held;
  }

  /** `release_metadata_snap`: lets go of the metadata snapshot (EINVAL when none is held). */
  async releaseMetadataSnap(): Promise<void> {
    await this.#check();
    await this.dm.message(this.id, thinPoolMessages.releaseMetadataSnap());
  }

  /** Holds a metadata snapshot while `use(root)` runs, and releases it after, whatever `use` does. */
  async withMetadataSnap<T>(use: (root: number) => Promise<T> | T): Promise<T> {
    if (typeof use !== 'function') throw expected('a function (root) => result', 'use', use);
    const root = await this.reserveMetadataSnap();
    let result: T;
    try {
      result = await use(root);
    } catch (e) {
      try {
        await this.releaseMetadataSnap();
      } catch (r) {
        if (e instanceof DmError) e.rollbackError = asError(r);
      }
      throw e;
    }
    await this.releaseMetadataSnap();
    return result;
  }

  /**
   * Reloads the pool with its data length grown to `dataSectors` (default: the data device's
   * size now, cut to whole blocks) and resumes it; the resume also picks up a metadata device
   * that has grown (the kernel reads both sizes then). Shrinking is refused (RangeError; the
   * kernel refuses a pool smaller than its metadata records). The reload never leaves the pool
   * suspended: on failure it runs on its old table. Resolves with the new status.
   */
  async grow(options?: ThinPoolGrowOptions): Promise<ThinPoolRunningStatus> {
    const o = checkOptions(options, 'options', ['dataSectors']);
    const blockSize = this.#target.blockSize;
    let wanted = o.dataSectors === undefined ? undefined : wholeBlocks(o.dataSectors, blockSize, 'options.dataSectors');
    if (wanted !== undefined && wanted < this.#sectors) throw expectedRange(`at least the pool's ${this.#sectors} sectors (a pool cannot shrink)`, 'options.dataSectors', wanted);
    if (wanted === undefined) {
      const size = await deviceSectors(await deviceNumber(this.#target.dataDevice, 'the data device'));
      wanted = size - (size % blockSize);
    }
    const length = wanted;
    let loaded: ThinPoolTarget | undefined;
    await this.#check();
    await this.dm.update(this.id, (live) => {
      const target = poolTargetOf(live, this.name);
      if (target.metadataDevice !== this.#target.metadataDevice || target.dataDevice !== this.#target.dataDevice) {
        throw stale(this.name, this.dev, this.dev, WHAT, `its table now names other devices (${target.params})`);
      }
      if (live !== undefined && length < live.size) throw expectedRange(`at least the pool's ${live.size} sectors (a pool cannot shrink)`, 'options.dataSectors', length);
      loaded = target;
      return new Table([{ start: 0, length, target }]);
    });
    if (loaded !== undefined) this.#target = loaded;
    this.#sectors = length;
    return this.runningStatus();
  }

  /**
   * Reloads the pool with changed table args (the low water mark, the feature args) and the
   * same devices, block size and length: switching `errorIfNoSpace` on makes writes that
   * wait for space fail at once, `readOnly` stops all change to the metadata. Resolves with
   * the target loaded.
   */
  async configure(changes: ThinPoolConfigureOptions): Promise<ThinPoolTarget> {
    if (changes === undefined) throw expected('an object of changes', 'changes', changes);
    const c = checkOptions(changes, 'changes', ['lowWaterMark', 'skipBlockZeroing', 'ignoreDiscard', 'noDiscardPassdown', 'errorIfNoSpace', 'readOnly']);
    // Builds once before any ioctl, so a bad value is refused here.
    targets.thinPool({ ...optionsOf(this.#target), ...c });
    let loaded: ThinPoolTarget | undefined;
    await this.#check();
    await this.dm.update(this.id, (live) => {
      const current = poolTargetOf(live, this.name);
      loaded = targets.thinPool({ ...optionsOf(current), ...c });
      return new Table([{ start: 0, length: live?.size ?? this.#sectors, target: loaded }]);
    });
    if (loaded === undefined) throw new Error('the table change did not run');
    this.#target = loaded;
    return loaded;
  }

  /**
   * Waits, on the pool's device events (DM_DEV_WAIT), until `until(status)` is true for its
   * status (read at the start and after each event), at most `timeout` ms (ETIMEDOUT) or until
   * `signal` aborts. Resolves with that status.
   */
  async waitForStatus(until: (status: ThinPoolRunningStatus) => boolean, options?: ThinPoolWaitOptions): Promise<ThinPoolRunningStatus> {
    if (typeof until !== 'function') throw expected('a function (status) => boolean', 'until', until);
    const wait = statusWaitOptions(options, DEFAULT_TIMEOUT);
    return waitForStatus(this.dm, this.id, this.name, this.dev, WHAT, () => this.runningStatus(), until, wait, (s) => s.raw);
  }

  /**
   * Yields each time the pool is short of space: at the start if it is already, then after
   * each device event the kernel raises (DM_DEV_WAIT) whose status shows free data blocks at
   * or below the live table's low water mark (or the pool out of data space), or free
   * metadata blocks at or below the kernel's metadata watermark. The kernel raises the low
   * water event once until the pool's next resume, and `grow` resumes it, so a caller that
   * grows the pool when woken is woken again next time. Events met while the loop body runs
   * are not lost (the wait starts from the event number read before the status). Ends when
   * `signal` aborts.
   */
  async *lowWater(options?: LowWaterOptions): AsyncGenerator<LowWaterEvent, void, undefined> {
    const o = checkOptions(options, 'options', ['signal']);
    const signal = checkSignal(o.signal, 'options.signal');
    if (signal?.aborted) return;
    let info = await this.#check();
    for (;;) {
      const status = await this.runningStatus();
      const target = poolTargetOf(await this.dm.table(this.id), this.name);
      const event = lowWaterOf(status, target.lowWaterMark);
      if (event.dataLow || event.metadataLow) yield event;
      if (signal?.aborted) return;
      try {
        info = await this.dm.waitEvent(this.id, info.eventNr, signal === undefined ? undefined : { signal });
      } catch (e) {
        if (signal?.aborted) return;
        throw e;
      }
      if (!sameDev(info.dev, this.dev)) throw stale(this.name, this.dev, info.dev, WHAT);
    }
  }

  /**
   * Runs `handler` for each `lowWater` event, one at a time (it may grow the data device and
   * call `grow`), until `signal` aborts (then it resolves); a handler that throws ends the
   * loop, and the promise rejects with its error.
   */
  async onLowWater(handler: (event: LowWaterEvent, pool: ThinPool) => Promise<void> | void, options?: LowWaterOptions): Promise<void> {
    if (typeof handler !== 'function') throw expected('a function (event, pool) => void', 'handler', handler);
    for await (const event of this.lowWater(options)) await handler(event, this);
  }

  /** Removes the pool device (its metadata and data stay on their devices); the kernel refuses while a thin volume is active (EBUSY). */
  async remove(): Promise<void> {
    await this.#check();
    await this.dm.remove(this.id);
  }

  /** The pool's info, checked to be this pool's device. */
  async #check(): Promise<DeviceInfo> {
    return checkedInfo(this.dm, this.id, this.name, this.dev, WHAT);
  }

  /**
   * Moves the transaction id from `current` to `current + 1`, runs `change`, and moves it back
   * when `change` fails: `set_transaction_id` first, so that a pool another manager changed
   * meanwhile refuses it (EINVAL) before anything happens.
   */
  async #transaction(options: TransactionOptions, change: () => Promise<unknown>): Promise<bigint> {
    const given = options.transactionId === undefined ? undefined : transactionId(options.transactionId, 'options.transactionId');
    await this.#check();
    const current = given ?? (await this.runningStatus()).transactionId;
    if (current === U64_MAX) throw expectedRange('a transaction id below 2^64 - 1 (the pool has no next id)', 'the pool transaction id', current);
    const next = current + 1n;
    await this.dm.message(this.id, thinPoolMessages.setTransactionId(current, next));
    try {
      await change();
    } catch (e) {
      try {
        await this.dm.message(this.id, thinPoolMessages.setTransactionId(next, current));
      } catch (r) {
        if (e instanceof DmError) e.rollbackError = asError(r);
      }
      throw e;
    }
    return next;
  }
}

/** The checked pieces of a pool's table. */
interface PoolPlan extends MetadataPlan {
  readonly target: ThinPoolTarget;
}

/** Checks the options (all before any ioctl or write), resolves the devices and builds the pool's table. */
async function planPool(name: string, o: Partial<ThinPoolActivateOptions>, label: string): Promise<PoolPlan> {
  checkName(name, 'name');
  const uuid = o.uuid === undefined ? undefined : checkUuid(o.uuid, `${label}.uuid`);
  if (o.metadataDevice === undefined) throw expected('a device', `${label}.metadataDevice`, o.metadataDevice);
  if (o.dataDevice === undefined) throw expected('a device', `${label}.dataDevice`, o.dataDevice);
  const features = {
    skipBlockZeroing: checkBoolean(o.skipBlockZeroing, `${label}.skipBlockZeroing`, false),
    ignoreDiscard: checkBoolean(o.ignoreDiscard, `${label}.ignoreDiscard`, false),
    noDiscardPassdown: checkBoolean(o.noDiscardPassdown, `${label}.noDiscardPassdown`, false),
    errorIfNoSpace: checkBoolean(o.errorIfNoSpace, `${label}.errorIfNoSpace`, false),
    readOnly: checkBoolean(o.readOnly, `${label}.readOnly`, false),
  };
  if (o.blockSize === undefined) throw expected('a block size in sectors', `${label}.blockSize`, o.blockSize);
  const lowWaterMark = o.lowWaterMark ?? 0;
  // The builder checks the block size, the low water mark, the feature count and the devices' form.
  const given = targets.thinPool({ metadataDevice: o.metadataDevice, dataDevice: o.dataDevice, blockSize: o.blockSize, lowWaterMark, ...features });
  const explicit = o.dataSectors === undefined ? undefined : wholeBlocks(o.dataSectors, given.blockSize, `${label}.dataSectors`);
  const metadataDevice = await deviceNumber(o.metadataDevice, `${label}.metadataDevice`);
  const dataDevice = await deviceNumber(o.dataDevice, `${label}.dataDevice`);
  const target = targets.thinPool({ ...optionsOf(given), metadataDevice, dataDevice });
  let sectors = explicit;
  if (sectors === undefined) {
    const size = await deviceSectors(dataDevice);
    sectors = size - (size % given.blockSize);
    if (sectors === 0) throw expectedRange(`a data device of at least one block (${given.blockSize} sectors)`, `${label}.dataDevice`, formatDev(dataDevice));
  }
  return { table: new Table([{ start: 0, length: sectors, target }]), target, metadataDevice, uuid };
}

/** A length in sectors that is a positive whole number of data blocks. */
function wholeBlocks(value: unknown, blockSize: number, name: string): number {
  const n = checkSector(value, name);
  if (n === 0 || n % blockSize !== 0) throw expectedRange(`a positive multiple of the block size (${blockSize} sectors)`, name, n);
  return n;
}

/** The builder's options of a built pool target. */
function optionsOf(p: ThinPoolTarget): Parameters<typeof targets.thinPool>[0] {
  return { metadataDevice: p.metadataDevice, dataDevice: p.dataDevice, blockSize: p.blockSize, lowWaterMark: p.lowWaterMark, skipBlockZeroing: p.skipBlockZeroing, ignoreDiscard: p.ignoreDiscard, noDiscardPassdown: p.noDiscardPassdown, readOnly: p.readOnly, errorIfNoSpace: p.errorIfNoSpace };
}

/** The one thin-pool target of a pool's table; anything else is not a pool this recipe drives. */
function poolTargetOf(table: Table | undefined, name: string): ThinPoolTarget {
  return liveTarget(table, name, 'thin-pool', isPoolTarget, 'pool');
}

function isPoolTarget(t: Target): t is ThinPoolTarget {
  return t.type === 'thin-pool' && typeof Reflect.get(t, 'blockSize') === 'number' && typeof Reflect.get(t, 'metadataDevice') === 'string';
}

/** The one working `thin` target of a table, else undefined. */
function thinTargetOf(table: Table | undefined): ThinTarget | undefined {
  const t = table?.rows.length === 1 ? table.rows[0]?.target : undefined;
  return t !== undefined && isThinTarget(t) ? t : undefined;
}

function isThinTarget(t: Target): t is ThinTarget {
  return t.type === 'thin' && typeof Reflect.get(t, 'poolDevice') === 'string' && typeof Reflect.get(t, 'deviceId') === 'number';
}

function isVolume(id: unknown): id is ThinVolume {
  return typeof id === 'object' && id !== null && 'deviceId' in id && 'dev' in id && 'name' in id && 'uuid' in id;
}

function volumeOf(info: DeviceInfo, target: ThinTarget, sectors: number): ThinVolume {
  return Object.freeze({ name: info.name, uuid: info.uuid, dev: info.dev, path: info.path, mapperPath: info.mapperPath, deviceId: target.deviceId, sectors, externalOriginDevice: target.externalOriginDevice });
}

function lowWaterOf(status: ThinPoolRunningStatus, lowWaterMark: number): LowWaterEvent {
  const freeDataBlocks = status.data.total - status.data.used;
  const dataLow = freeDataBlocks <= lowWaterMark || status.mode === 'out_of_data_space';
  const metadataLow = status.metadata.total - status.metadata.used <= status.metadataLowWatermark;
  return Object.freeze({ status, lowWaterMark, freeDataBlocks, dataLow, metadataLow });
}

function isPoolStatus(s: TargetStatus): s is ThinPoolStatus {
  return s.known && s.type === 'thin-pool';
}

/** Suspends each device, runs `work`, and resumes each of them whatever happens (the first failure wins). */
async function withSuspended<T>(dm: DeviceMapper, devices: readonly ThinVolume[], work: () => Promise<T>): Promise<T> {
  const suspended: DevId[] = [];
  try {
    for (const d of devices) {
      const id: DevId = d.uuid !== '' ? { uuid: d.uuid } : d.name;
      await dm.suspend(id);
      suspended.push(id);
    }
    const result = await work();
    await resumeAll(dm, suspended);
    return result;
  } catch (e) {
    try {
      await resumeAll(dm, suspended);
    } catch (r) {
      if (e instanceof DmError && e.rollbackError === undefined) e.rollbackError = asError(r);
    }
    throw e;
  }
}

/** Resumes every device (each tried, even after one fails), then throws the first failure. */
async function resumeAll(dm: DeviceMapper, ids: DevId[]): Promise<void> {
  let first: unknown;
  for (const id of ids.splice(0).reverse()) {
    try {
      await dm.resume(id);
    } catch (e) {
      first ??= e;
    }
  }
  // eslint-disable-next-line @typescript-eslint/only-throw-error -- the first caught failure, rethrown as it came
  if (first !== undefined) throw first;
}
