/**
 * The cache recipe: a fast device (the cache) in front of a slow one (the origin), with a
 * policy (smq by default) that promotes the blocks read or written often, in writeback mode
 * by default (writes land on the cache and are copied to the origin later). The safe flush
 * decommissions it: the table is reloaded with the `cleaner` policy, which writes every dirty
 * block back and promotes nothing; the recipe waits on the device's events (the kernel raises
 * one when the dirty count falls to 0) and its status until no block is dirty; then, with the
 * device suspended so that no write can slip in, checks the count once more and removes it,
 * leaving the origin with every byte. Kernel reference:
 * Documentation/admin-guide/device-mapper/cache.rst and cache-policies.rst.
 */
import type { DeviceInfo, DeviceMapper } from '../client';
import { formatDev, type DevId, type DevNumber, type DeviceRef } from '../dev';
import { DmError } from '../errors';
import { Table } from '../table';
import { targets, type CacheMode, type CacheOptions, type CachePolicy, type CachePolicyKey, type CacheRunningStatus, type CacheStatus, type CacheTarget, type Target, type TargetStatus } from '../targets/index';
import { checkName, checkOptions, checkUuid, expected, expectedRange } from '../validate';
import { checkDeviceMapper, deviceNumber, sameDev } from './common';
import { EBUSY, ESTALE, asError, checkedInfo, createPlanned, lengthOverOrigin, liveTarget, openDevice, sectorsOption, statusError, statusWaitOptions, typedStatus, waitForStatus, type MetadataPlan, type StatusWait } from './metadata-device';

/** Default bound of the waits, milliseconds. */
const DEFAULT_TIMEOUT = 60000;
/** How the messages name a cache device. */
const WHAT = 'the cache';

/** Options of `Cache.create` and `Cache.activate`: the cache table. */
export interface CacheCreateOptions {
  /** The device holding the cache's metadata (`'major:minor'`, a /dev path or `{ major, minor }`). */
  metadataDevice: DeviceRef;
  /** The fast device holding the cached blocks. */
  cacheDevice: DeviceRef;
  /** The slow device being cached. */
  originDevice: DeviceRef;
  /** The cache block size, in 512-byte sectors: a multiple of 64 (32 KiB) from 64 to 2097152 (1 GiB). */
  blockSize: number;
  /** The device's length in sectors; default: the origin's size. */
  sectors?: number;
  /** The write mode (default `writeback`). */
  mode?: CacheMode;
  /** The policy (default `smq`). */
  policy?: CachePolicy;
  /** The policy's tunables (`migration_threshold`: sectors that may be migrating at once). */
  policyArgs?: Readonly<Partial<Record<CachePolicyKey, number>>>;
  /** Version 2 of the metadata format. */
  metadata2?: boolean;
  /** Pass discards down to the origin (default true). */
  discardPassdown?: boolean;
  /** The cache device's uuid; with one, every later call names the device by it. */
  uuid?: string;
}

/** Options of the calls that wait for the cache's status (`waitForStatus`, `clean`, `flushAndRemove`). */
export interface CacheWaitOptions {
  /** Milliseconds before the wait fails with ETIMEDOUT; default 60000. */
  timeout?: number;
  /** Ends the wait: it rejects with the signal's reason, or an AbortError. */
  signal?: AbortSignal;
}

/** Options of `Cache.remove`. */
export interface CacheRemoveOptions {
  /**
   * Remove even while blocks are dirty: their newest data then stays only on the cache
   * device (a later `activate` on the same metadata takes it up again), not on the origin.
   * Default false: a dirty cache is refused with EBUSY.
   */
  leaveDirty?: boolean;
}

/**
 * A cache device on a `DeviceMapper`. Every call names the device by its uuid when it has
 * one, else by its name, and first checks that the kernel's device is still the one this
 * object was made for (its device number; ESTALE otherwise). Reloads go through
 * `DeviceMapper.update`, which never leaves the device suspended: on failure it runs on its
 * old table.
 */
export class Cache {
  /** The client every call goes through. */
  readonly dm: DeviceMapper;
  /** The device's name when this object was made. */
  readonly name: string;
  /** Its uuid ('' when it has none). */
  readonly uuid: string;
  /** Its device number. */
  readonly dev: DevNumber;
  /** `/dev/dm-N`. */
  readonly path: string;
  /** `/dev/mapper/<name>`. */
  readonly mapperPath: string;
  /** The device's length, sectors. */
  readonly sectors: number;
  #target: CacheTarget;

  private constructor(dm: DeviceMapper, info: DeviceInfo, target: CacheTarget, sectors: number) {
    this.dm = dm;
    this.name = info.name;
    this.uuid = info.uuid;
    this.dev = info.dev;
    this.path = info.path;
    this.mapperPath = info.mapperPath;
    this.sectors = sectors;
    this.#target = target;
  }

  /** How the device is named in calls: `{ uuid }` when it has one, else its name. */
  get id(): DevId {
    return this.uuid !== '' ? { uuid: this.uuid } : this.name;
  }

  /** The cache target as this object last loaded or read it (devices as 'major:minor'). */
  get target(): CacheTarget {
    return this.#target;
  }

  /**
   * Makes a new cache: writes zeros over the first 4 KiB of the metadata device (opened
   * O_EXCL, so a device a table or a mount holds is refused with EBUSY before anything is
   * written), then creates the device, whose first load formats the metadata (an all-zero
   * superblock is new metadata to the kernel). If the name is taken or DEV_CREATE fails, the
   * old 4 KiB are written back; if the load or resume fails, the device is removed.
   */
  static async create(dm: DeviceMapper, name: string, options: CacheCreateOptions): Promise<Cache> {
    const plan = await planCache(dm, name, options);
    const info = await createPlanned(dm, name, plan, true);
    return new Cache(dm, info, plan.target, plan.table.size);
  }

  /**
   * Activates a cache on metadata a cache has used (nothing is zeroed): the kernel takes up
   * the blocks it holds, dirty ones included, and refuses another block size or a cache
   * device smaller than the metadata records (EINVAL).
   */
  static async activate(dm: DeviceMapper, name: string, options: CacheCreateOptions): Promise<Cache> {
    const plan = await planCache(dm, name, options);
    const info = await createPlanned(dm, name, plan, false);
    return new Cache(dm, info, plan.target, plan.table.size);
  }

  /** A `Cache` for a device that is active already: its live table must be one `cache` row. */
  static async open(dm: DeviceMapper, id: DevId): Promise<Cache> {
    const o = await openDevice(dm, id, WHAT, cacheTargetOf);
    return new Cache(o.dm, o.info, o.target, o.sectors);
  }

  /** The typed status (narrow on `failed`): blocks cached and dirty, hits and misses, promotions and demotions, policy, mode. */
  async status(): Promise<CacheStatus> {
    return typedStatus(this.dm, this.id, this.name, 'cache', isCacheStatus);
  }

  /** The status of a working cache; one in `Fail` or `Error` rejects with EIO. */
  async runningStatus(): Promise<CacheRunningStatus> {
    const s = await this.status();
    if (s.failed !== false) throw statusError(this.name, `the cache has failed (${s.failed}): deactivate it and run cache_check`);
    return s;
  }

  /**
   * Reloads the cache with another policy (and its args; default: the live table's
   * `migration_threshold`, the one arg every policy takes), the devices, block size, mode and
   * length unchanged. The kernel hands the cached blocks and their dirty bits to the new
   * policy through the metadata. Resolves with the target loaded.
   */
  async setPolicy(policy: CachePolicy, policyArgs?: Readonly<Partial<Record<CachePolicyKey, number>>>): Promise<CacheTarget> {
    // Built once before any ioctl, so a bad policy or arg is refused here.
    targets.cache({ ...optionsOf(this.#target), policy, policyArgs: policyArgs ?? keptArgs(this.#target) });
    return this.#reload((live) => ({ ...optionsOf(live), policy, policyArgs: policyArgs ?? keptArgs(live) }));
  }

  /**
   * Reloads the cache in another write mode: `writethrough` (each write reaches the origin
   * before it completes; blocks dirty from writeback stay dirty until written back),
   * `passthrough` (every I/O to the origin; the kernel refuses it while blocks are dirty),
   * or `writeback`. Resolves with the target loaded.
   */
  async setMode(mode: CacheMode): Promise<CacheTarget> {
    targets.cache({ ...optionsOf(this.#target), mode });
    return this.#reload((live) => ({ ...optionsOf(live), mode }));
  }

  /**
   * Waits, on the device's events (DM_DEV_WAIT), until `until(status)` is true for its status
   * (read at the start and after each event), at most `timeout` ms (ETIMEDOUT) or until
   * `signal` aborts. Resolves with that status.
   */
  async waitForStatus(until: (status: CacheRunningStatus) => boolean, options?: CacheWaitOptions): Promise<CacheRunningStatus> {
    if (typeof until !== 'function') throw expected('a function (status) => boolean', 'until', until);
    const wait = waitOptions(options);
    return this.#waitFor(until, wait);
  }

  /**
   * The cleaner: reloads with the `cleaner` policy (which writes every dirty block back to
   * the origin and promotes nothing) and waits until the status shows no dirty block. The
   * kernel raises a device event when the dirty count falls to 0. The device stays, on the
   * cleaner policy (`setPolicy('smq')` takes it back into service). Resolves with the clean
   * status.
   */
  async clean(options?: CacheWaitOptions): Promise<CacheRunningStatus> {
    const wait = waitOptions(options);
    if (this.#target.policy !== 'cleaner') await this.setPolicy('cleaner');
    return this.#waitFor((s) => s.dirty === 0, wait);
  }

  /**
   * Decommissions the cache safely: `clean`, then suspends the device (no write can reach it
   * now), reads the status once more, and removes the device if no block is dirty; if one is
   * (a write came in between), it resumes it and waits again. Whatever fails (the wait times
   * out, the device is open: EBUSY), the device is resumed and stays, on the cleaner policy.
   * On success the origin holds every byte written, and the metadata device a clean cache
   * (cache_check passes). Resolves with the last status read, suspended and clean.
   */
  async flushAndRemove(options?: CacheWaitOptions): Promise<CacheRunningStatus> {
    const wait = waitOptions(options);
    for (;;) {
      await this.clean(wait);
      await this.dm.suspend(this.id);
      let status: CacheRunningStatus;
      try {
        status = await this.runningStatus();
        // Open (a mount, an fd): EBUSY, and the device is resumed.
        if (status.dirty === 0) await this.dm.remove(this.id, { retries: 0 });
      } catch (e) {
        try {
          await this.dm.resume(this.id);
        } catch (r) {
          if (e instanceof DmError && e.rollbackError === undefined) e.rollbackError = asError(r);
        }
        throw e;
      }
      if (status.dirty === 0) return status;
      await this.dm.resume(this.id);
    }
  }

  /**
   * Removes the cache device (its metadata and cache device keep the cached blocks). While a
   * block is dirty the origin lacks its newest data, so this is refused with EBUSY unless
   * `leaveDirty`; `flushAndRemove` is the safe way.
   */
  async remove(options?: CacheRemoveOptions): Promise<void> {
    const o = checkOptions(options, 'options', ['leaveDirty']);
    if (o.leaveDirty !== undefined && typeof o.leaveDirty !== 'boolean') throw expected('a boolean', 'options.leaveDirty', o.leaveDirty);
    await this.#check();
    if (o.leaveDirty !== true) {
      const s = await this.status();
      const dirty = s.failed === false ? s.dirty : undefined;
      if (dirty !== 0) throw new DmError({ errno: EBUSY, syscall: 'ioctl', command: 'DM_DEV_REMOVE', device: this.name, message: `DM_DEV_REMOVE ${this.name}: ${dirty === undefined ? `the cache has failed (${s.failed})` : `${dirty} cache blocks are dirty`}; the device was left as it is (flushAndRemove writes them back first)` });
    }
    await this.dm.remove(this.id);
  }

  async #check(): Promise<DeviceInfo> {
    return checkedInfo(this.dm, this.id, this.name, this.dev, WHAT);
  }

  /** Reloads with the target `change` makes from the live one (the same devices and block size, or nothing is loaded). */
  async #reload(change: (live: CacheTarget) => CacheOptions): Promise<CacheTarget> {
    let loaded: CacheTarget | undefined;
    await this.#check();
    await this.dm.update(this.id, (table) => {
      const live = cacheTargetOf(table, this.name);
      const mine = this.#target;
      if (live.metadataDevice !== mine.metadataDevice || live.cacheDevice !== mine.cacheDevice || live.originDevice !== mine.originDevice || live.blockSize !== mine.blockSize) {
        throw new DmError({ errno: ESTALE, syscall: 'ioctl', device: this.name, message: `${this.name}: its table now names other devices (${live.params}); nothing was loaded` });
      }
      loaded = targets.cache(change(live));
      return new Table([{ start: 0, length: table?.size ?? this.sectors, target: loaded }]);
    });
    if (loaded === undefined) throw new Error('the table change did not run');
    this.#target = loaded;
    return loaded;
  }

  #waitFor(until: (status: CacheRunningStatus) => boolean, wait: StatusWait): Promise<CacheRunningStatus> {
    return waitForStatus(this.dm, this.id, this.name, this.dev, WHAT, () => this.runningStatus(), until, wait, (s) => `${s.dirty} dirty, policy ${s.policy}`);
  }
}

function waitOptions(options: CacheWaitOptions | undefined): StatusWait {
  return statusWaitOptions(options, DEFAULT_TIMEOUT);
}

interface CachePlan extends MetadataPlan {
  readonly target: CacheTarget;
}

/** Checks the options (all before any ioctl or write), resolves the devices and builds the table. */
async function planCache(dm: DeviceMapper, name: string, options: CacheCreateOptions): Promise<CachePlan> {
  checkDeviceMapper(dm);
  checkName(name, 'name');
  if (typeof options !== 'object' || options === null) throw expected('cache options', 'options', options);
  const o = checkOptions(options, 'options', ['metadataDevice', 'cacheDevice', 'originDevice', 'blockSize', 'sectors', 'mode', 'policy', 'policyArgs', 'metadata2', 'discardPassdown', 'uuid']);
  const uuid = o.uuid === undefined ? undefined : checkUuid(o.uuid, 'options.uuid');
  if (o.metadataDevice === undefined) throw expected('a device', 'options.metadataDevice', o.metadataDevice);
  if (o.cacheDevice === undefined) throw expected('a device', 'options.cacheDevice', o.cacheDevice);
  if (o.originDevice === undefined) throw expected('a device', 'options.originDevice', o.originDevice);
  if (o.blockSize === undefined) throw expected('a block size in sectors', 'options.blockSize', o.blockSize);
  const rest: CacheOptions = {
    metadataDevice: o.metadataDevice,
    cacheDevice: o.cacheDevice,
    originDevice: o.originDevice,
    blockSize: o.blockSize,
    mode: o.mode ?? 'writeback',
    metadata2: o.metadata2,
    discardPassdown: o.discardPassdown,
    policy: o.policy,
    policyArgs: o.policyArgs,
  };
  // The builder checks the block size, mode, policy and its args.
  targets.cache(rest);
  const sectors = sectorsOption(o.sectors);
  const metadataDevice = await deviceNumber(rest.metadataDevice, 'options.metadataDevice');
  const cacheDevice = await deviceNumber(rest.cacheDevice, 'options.cacheDevice');
  const originDevice = await deviceNumber(rest.originDevice, 'options.originDevice');
  const devs = [metadataDevice, cacheDevice, originDevice];
  if (devs.some((a, i) => devs.some((b, j) => i < j && sameDev(a, b)))) throw expectedRange('three different devices', 'options.metadataDevice, options.cacheDevice, options.originDevice', devs.map(formatDev).join(', '));
  const length = await lengthOverOrigin(sectors, originDevice);
  const target = targets.cache({ ...rest, metadataDevice, cacheDevice, originDevice });
  return { table: new Table([{ start: 0, length, target }]), target, metadataDevice, uuid };
}

/** The builder's options of a built cache target. */
function optionsOf(t: CacheTarget): CacheOptions {
  return { metadataDevice: t.metadataDevice, cacheDevice: t.cacheDevice, originDevice: t.originDevice, blockSize: t.blockSize, mode: t.mode, metadata2: t.metadata2, discardPassdown: t.discardPassdown, policy: t.policy, policyArgs: t.policyArgs };
}

/** The args a policy switch keeps: `migration_threshold`, the one every policy takes. */
function keptArgs(t: CacheTarget): Partial<Record<CachePolicyKey, number>> {
  const m = t.policyArgs.migration_threshold;
  return m === undefined ? {} : { migration_threshold: m };
}

function isCacheTarget(t: Target): t is CacheTarget {
  return t.type === 'cache' && typeof Reflect.get(t, 'blockSize') === 'number' && typeof Reflect.get(t, 'cacheDevice') === 'string';
}

function cacheTargetOf(table: Table | undefined, name: string): CacheTarget {
  return liveTarget(table, name, 'cache', isCacheTarget, 'id');
}

function isCacheStatus(s: TargetStatus): s is CacheStatus {
  return s.known && s.type === 'cache';
}
