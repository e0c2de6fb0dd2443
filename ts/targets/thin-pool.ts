/**
 * dm-thin's pool: a data device shared by thinly provisioned devices (and their snapshots),
 * handed out block by block as they are written, with the mappings kept on a metadata
 * device. The `thin` target makes the devices; the pool is managed by message. Pure data:
 * nothing here touches the kernel.
 */
import type { DeviceRef } from '../dev';
import { expected, expectedRange } from '../validate';
import { ArgReader, builderOptions, counted, device, flag, freeze, integer, join, parseRatio, sectors, typedTarget, type UsedTotal } from './args';
import type { Target, TargetModule, TargetStatusBase } from './types';

/** The smallest data block: 128 sectors (64 KiB); every block size is a multiple of it. */
const MIN_BLOCK = 128;
/** The largest data block: 2097152 sectors (1 GiB). */
const MAX_BLOCK = 2097152;
/** The largest thin device id: ids are 24 bits. */
export const THIN_MAX_DEVICE_ID = 0xffffff;
/** The kernel reads at most 4 feature args (its `Invalid number of pool feature arguments`). */
const MAX_FEATURES = 4;
const U64_MAX = 0xffffffffffffffffn;

/**
 * A feature arg of a thin-pool table: `skip_block_zeroing` (newly provisioned blocks are not
 * zeroed first), `ignore_discard` (discards are not supported at all), `no_discard_passdown`
 * (a discard removes the mapping but is not passed down to the data device), `read_only` (no
 * change to the metadata is allowed), `error_if_no_space` (I/O fails at once when the pool is
 * out of space instead of being queued).
 */
export type ThinPoolFeature = 'skip_block_zeroing' | 'ignore_discard' | 'no_discard_passdown' | 'read_only' | 'error_if_no_space';

/** The feature args in the order the kernel prints them back. */
const FEATURES: readonly ThinPoolFeature[] = ['skip_block_zeroing', 'ignore_discard', 'no_discard_passdown', 'read_only', 'error_if_no_space'];

/** Options of a thin-pool target. */
export interface ThinPoolOptions {
  /** `<metadata dev>`: the device holding the pool's metadata (mappings, device details); its first 4 KiB zeroed before first use. */
  metadataDevice: DeviceRef;
  /** `<data dev>`: the device whose blocks the thin devices share; another device than the metadata's. */
  dataDevice: DeviceRef;
  /** `<data block size>`: in 512-byte sectors, a multiple of 128 (64 KiB) from 128 to 2097152 (1 GiB). */
  blockSize: number;
  /**
   * `<low water mark>`: a count of data blocks (not sectors): when a block is provisioned and this
   * many or fewer are left free, the kernel sends a device event (once, until the next resume), so
   * that a daemon can grow the pool.
   */
  lowWaterMark: number;
  /** Feature `skip_block_zeroing`: do not zero newly provisioned blocks: faster, but a new block shows what the data device held. */
  skipBlockZeroing?: boolean;
  /** Feature `ignore_discard`: disable discard support; it cannot be turned back on without deactivating the pool. */
  ignoreDiscard?: boolean;
  /** Feature `no_discard_passdown`: do not pass discards down to the data device, only remove the mappings. */
  noDiscardPassdown?: boolean;
  /**
   * Feature `read_only`: allow no change to the metadata: no provisioning, no messages. The kernel
   * takes it only for metadata already formatted by a read-write pool.
   */
  readOnly?: boolean;
  /** Feature `error_if_no_space`: fail I/O at once when out of data space instead of queueing it for the module's `no_space_timeout` (60 s). */
  errorIfNoSpace?: boolean;
}

/**
 * `thin-pool <metadata dev> <data dev> <data block size> <low water mark> [<#feature args>
 * [<arg>]*]`: a pool of data blocks for thin devices.
 */
export interface ThinPoolTarget extends Target {
  readonly type: 'thin-pool';
  /** `<metadata dev>`, 'major:minor' or a /dev path: mappings and device details. */
  readonly metadataDevice: string;
  /** `<data dev>`, 'major:minor' or a /dev path: the shared data blocks. */
  readonly dataDevice: string;
  /** `<data block size>`: 512-byte sectors per data block. */
  readonly blockSize: number;
  /** `<low water mark>`: a count of free data blocks at which the kernel raises an event. */
  readonly lowWaterMark: number;
  /** Feature `skip_block_zeroing`: new blocks are not zeroed (0/1 flag). */
  readonly skipBlockZeroing: boolean;
  /** Feature `ignore_discard`: discards are not supported. */
  readonly ignoreDiscard: boolean;
  /** Feature `no_discard_passdown`: discards unmap but are not passed down. */
  readonly noDiscardPassdown: boolean;
  /** Feature `read_only`: the metadata is not changed. */
  readonly readOnly: boolean;
  /** Feature `error_if_no_space`: I/O fails at once when out of data space. */
  readonly errorIfNoSpace: boolean;
  /**
   * The feature args in the kernel's order (skip_block_zeroing, ignore_discard,
   * no_discard_passdown, read_only, error_if_no_space): it prints them back in that order,
   * each once, whatever order and case the table gave.
   */
  readonly features: readonly ThinPoolFeature[];
}

/** A pool the kernel failed (`Fail`: no I/O at all; recover the metadata with thin_repair), or whose status it could not read (`Error`). */
export interface ThinPoolFailedStatus extends TargetStatusBase {
  readonly type: 'thin-pool';
  readonly known: true;
  /** The whole status is one word: `Fail` (the pool is in fail mode) or `Error` (its metadata could not be read for the status). */
  readonly failed: 'Fail' | 'Error';
  /** Words after the state (a newer kernel's), kept as given. */
  readonly extra: readonly string[];
}

/**
 * The pool's mode: `rw` (working), `ro` (read-only metadata after a metadata failure, or
 * out of metadata space, or a `read_only` table: nothing can be provisioned),
 * `out_of_data_space` (every data block is in use; writes to unprovisioned blocks queue or fail).
 */
export type ThinPoolMode = 'rw' | 'ro' | 'out_of_data_space';

/**
 * How discards are handled: passed down to the data device (`discard_passdown`), only
 * unmapped (`no_discard_passdown`, asked for or because the data device takes none), or not
 * supported (`ignore_discard`).
 */
export type ThinPoolDiscard = 'discard_passdown' | 'no_discard_passdown' | 'ignore_discard';

/** The status of a working pool. */
export interface ThinPoolRunningStatus extends TargetStatusBase {
  readonly type: 'thin-pool';
  readonly known: true;
  /** False: the pool works and the fields below are the kernel's. */
  readonly failed: false;
  /** `<transaction id>`: the metadata's transaction id, a 64-bit number userspace sets (`set_transaction_id`) to keep in step with a volume manager's own metadata. */
  readonly transactionId: bigint;
  /** `<used metadata blocks>/<total metadata blocks>`: a count of metadata blocks (4 KiB each). */
  readonly metadata: UsedTotal;
  /** `<used data blocks>/<total data blocks>`: a count of data blocks (of the table's block size, not sectors). */
  readonly data: UsedTotal;
  /** `<held metadata root>`: the metadata block number of the root held for userspace reading (`reserve_metadata_snap`), or null when none is held (`-`). */
  readonly heldMetadataRoot: number | null;
  /** `ro`, `rw` or `out_of_data_space`: the pool's mode (see `ThinPoolMode`). */
  readonly mode: ThinPoolMode;
  /** `discard_passdown`, `no_discard_passdown` or `ignore_discard` (see `ThinPoolDiscard`); it may differ from the table when the data device takes no discards. */
  readonly discard: ThinPoolDiscard;
  /** True when discards are passed down to the data device (`discard_passdown`). */
  readonly discardPassdown: boolean;
  /** `queue_if_no_space` or `error_if_no_space`: what happens to writes when space runs out: `queue` (`queue_if_no_space`, until more space or `no_space_timeout`) or `error` (`error_if_no_space`). */
  readonly noSpace: 'queue' | 'error';
  /** `needs_check` (true) or `-`: a metadata operation failed and the superblock asks for a check: deactivate the pool and run thin_check/thin_repair before it works fully again. */
  readonly needsCheck: boolean;
  /** `<metadata low watermark>`: a count of free metadata blocks below which the kernel sends a device event (set by the kernel: a quarter of the metadata device, at most 1024 blocks). */
  readonly metadataLowWatermark: number;
  /** Words after the known fields (a newer kernel's), kept as given. */
  readonly extra: readonly string[];
}

/** The status of a thin-pool target: working, or failed (narrow on `failed`). */
export type ThinPoolStatus = ThinPoolRunningStatus | ThinPoolFailedStatus;

const FIELDS: Record<ThinPoolFeature, 'skipBlockZeroing' | 'ignoreDiscard' | 'noDiscardPassdown' | 'readOnly' | 'errorIfNoSpace'> = {
  skip_block_zeroing: 'skipBlockZeroing',
  ignore_discard: 'ignoreDiscard',
  no_discard_passdown: 'noDiscardPassdown',
  read_only: 'readOnly',
  error_if_no_space: 'errorIfNoSpace',
};

/**
 * Builds a thin-pool target: `<metadata dev> <data dev> <block size> <low water mark>
 * <#features> [<feature>]*`, the features in the kernel's order and the count always written
 * (the kernel prints `0` for none). Throws TypeError/RangeError naming the field at fault.
 */
export function thinPool(options: ThinPoolOptions): ThinPoolTarget {
  const o = builderOptions(options, 'thin-pool options', ['metadataDevice', 'dataDevice', 'blockSize', 'lowWaterMark', 'skipBlockZeroing', 'ignoreDiscard', 'noDiscardPassdown', 'readOnly', 'errorIfNoSpace']);
  const metadataDevice = device(o.metadataDevice, 'thinPool.metadataDevice');
  const dataDevice = device(o.dataDevice, 'thinPool.dataDevice');
  // The kernel compares the two words (`Error setting metadata or data device`).
  if (dataDevice === metadataDevice) throw expectedRange(`another device than the metadata device (${metadataDevice})`, 'thinPool.dataDevice', o.dataDevice);
  const blockSize = integer(o.blockSize, 'thinPool.blockSize', MIN_BLOCK, MAX_BLOCK);
  if (blockSize % MIN_BLOCK !== 0) throw expectedRange(`a multiple of ${MIN_BLOCK} from ${MIN_BLOCK} to ${MAX_BLOCK}`, 'thinPool.blockSize', blockSize);
  const lowWaterMark = sectors(o.lowWaterMark, 'thinPool.lowWaterMark');
  const on = {
    skipBlockZeroing: flag(o.skipBlockZeroing, 'thinPool.skipBlockZeroing'),
    ignoreDiscard: flag(o.ignoreDiscard, 'thinPool.ignoreDiscard'),
    noDiscardPassdown: flag(o.noDiscardPassdown, 'thinPool.noDiscardPassdown'),
    readOnly: flag(o.readOnly, 'thinPool.readOnly'),
    errorIfNoSpace: flag(o.errorIfNoSpace, 'thinPool.errorIfNoSpace'),
  };
  const features = FEATURES.filter((f) => on[FIELDS[f]]);
  if (features.length > MAX_FEATURES) throw expectedRange(`at most ${MAX_FEATURES} of the ${FEATURES.length} features (the kernel reads no more)`, 'thin-pool options', features.join(' '));
  const params = join([metadataDevice, dataDevice, blockSize, lowWaterMark, counted(features)]);
  return typedTarget({ type: 'thin-pool', metadataDevice, dataDevice, blockSize, lowWaterMark, ...on, features, params });
}

/**
 * Parses thin-pool parameters ('7:0 7:1 128 0 1 skip_block_zeroing'); the feature count may
 * be left out, and features given in any order or case, or twice, as the kernel takes them.
 * Throws DmParseError naming the field.
 */
export function parseThinPool(params: string): ThinPoolTarget {
  const at = new ArgReader(params, 'thin-pool');
  const metadataDevice = at.device('metadata dev');
  const dataDevice = at.device('data dev');
  if (dataDevice === metadataDevice) throw at.fail('<data dev> is the metadata device', 'data dev');
  const blockSize = at.uint('data block size', MIN_BLOCK, MAX_BLOCK);
  if (blockSize % MIN_BLOCK !== 0) throw at.fail(`<data block size> is a multiple of ${MIN_BLOCK}`, 'data block size');
  const lowWaterMark = at.uint('low water mark');
  const given = new Set<ThinPoolFeature>();
  if (at.remaining > 0) {
    for (const w of at.group('feature args', MAX_FEATURES)) {
      const f = FEATURES.find((x) => x === w.toLowerCase());
      if (f === undefined) throw at.fail(`unknown feature ${JSON.stringify(w)} (${FEATURES.join(', ')})`, 'feature args');
      given.add(f);
    }
  }
  at.done();
  const has = (f: ThinPoolFeature): boolean => given.has(f);
  return thinPool({
    metadataDevice,
    dataDevice,
    blockSize,
    lowWaterMark,
    skipBlockZeroing: has('skip_block_zeroing'),
    ignoreDiscard: has('ignore_discard'),
    noDiscardPassdown: has('no_discard_passdown'),
    readOnly: has('read_only'),
    errorIfNoSpace: has('error_if_no_space'),
  });
}

/**
 * Parses a thin-pool status ('1 12/1024 3/256 - rw discard_passdown queue_if_no_space - 256',
 * or 'Fail', or 'Error'). Throws DmParseError naming the field.
 */
export function parseThinPoolStatus(text: string): ThinPoolStatus {
  const at = new ArgReader(text, 'thin-pool status');
  const first = at.peek();
  if (first === 'Fail' || first === 'Error') {
    at.word('state');
    return freeze({ type: 'thin-pool', raw: text, known: true, failed: first, extra: at.rest() });
  }
  const transactionId = at.u64('transaction id');
  const metadata = parseRatio(at, 'metadata blocks');
  const data = parseRatio(at, 'data blocks');
  let heldMetadataRoot: number | null = null;
  if (at.peek() === '-') at.word('held metadata root');
  else heldMetadataRoot = at.uint('held metadata root');
  const mode = at.oneOf('pool mode', ['rw', 'ro', 'out_of_data_space'] as const);
  const discard = at.oneOf('discard config', ['discard_passdown', 'no_discard_passdown', 'ignore_discard'] as const);
  const noSpace = at.oneOf('no space config', ['queue_if_no_space', 'error_if_no_space'] as const) === 'error_if_no_space' ? 'error' : 'queue';
  const needsCheck = at.oneOf('needs check', ['needs_check', '-'] as const) === 'needs_check';
  const metadataLowWatermark = at.uint('metadata low watermark');
  return freeze({
    type: 'thin-pool',
    raw: text,
    known: true,
    failed: false,
    transactionId,
    metadata,
    data,
    heldMetadataRoot,
    mode,
    discard,
    discardPassdown: discard === 'discard_passdown',
    noSpace,
    needsCheck,
    metadataLowWatermark,
    extra: at.rest(),
  });
}

function deviceId(value: unknown, name: string): number {
  return integer(value, name, 0, THIN_MAX_DEVICE_ID);
}

/**
 * A transaction id: a non-negative safe integer or a bigint up to 2^64 - 1.
 *
 * @internal
 */
export function transactionId(value: unknown, name: string): bigint {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw expectedRange('a non-negative safe integer or a bigint from 0 to 2^64 - 1', name, value);
    return BigInt(value);
  }
  if (typeof value !== 'bigint') throw expected('a non-negative integer or bigint', name, value);
  if (value < 0n || value > U64_MAX) throw expectedRange('a bigint from 0 to 2^64 - 1', name, value);
  return value;
}

/**
 * Messages a thin-pool takes (`dm.message(pool, thinPoolMessages.createThin(0))`). Each
 * returns the message text; the checks throw TypeError/RangeError naming the argument. The
 * kernel refuses every message to a pool in `ro` mode or failed (EOPNOTSUPP, which DmError
 * names `ENOTSUP`: the same errno on Linux).
 */
export const thinPoolMessages = Object.freeze({
  /** `create_thin <dev id>`: makes a new, empty thin device with id `deviceId` (24 bits: 0 to 16777215); activate it with a `thin` table. */
  createThin(deviceId_: number): string {
    return `create_thin ${deviceId(deviceId_, 'deviceId')}`;
  },
  /**
   * `create_snap <dev id> <origin id>`: makes thin device `deviceId` a snapshot of thin device
   * `originId`, sharing its blocks.
   * Suspend the origin first when it is active, so that its pending writes are in the snapshot.
   */
  createSnap(deviceId_: number, originId: number): string {
    const id = deviceId(deviceId_, 'deviceId');
    const origin = deviceId(originId, 'originId');
    return `create_snap ${id} ${origin}`;
  },
  /** `delete <dev id>`: deletes thin device `deviceId` (not active) and frees the blocks only it used; ENODATA when there is no such device. */
  delete(deviceId_: number): string {
    return `delete ${deviceId(deviceId_, 'deviceId')}`;
  },
  /**
   * `set_transaction_id <current id> <new id>`: sets the metadata's transaction id to `next` if
   * it is `current` now (else EINVAL): a 64-bit number userspace uses to keep in step with its
   * own metadata.
   */
  setTransactionId(current: bigint | number, next: bigint | number): string {
    return `set_transaction_id ${transactionId(current, 'current')} ${transactionId(next, 'next')}`;
  },
  /**
   * `reserve_metadata_snap`: takes a snapshot of the metadata for userspace to read while the pool
   * is live (thin_dump --metadata-snap); its root shows in the status as the held metadata root.
   * One at a time (EBUSY while one is held).
   */
  reserveMetadataSnap(): string {
    return 'reserve_metadata_snap';
  },
  /** `release_metadata_snap`: releases the metadata snapshot taken by `reserveMetadataSnap`. */
  releaseMetadataSnap(): string {
    return 'release_metadata_snap';
  },
});

/** The thin-pool target type. */
export const thinPoolModule: TargetModule<ThinPoolTarget, ThinPoolStatus> = { type: 'thin-pool', parse: parseThinPool, parseStatus: parseThinPoolStatus };
