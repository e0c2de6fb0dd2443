/**
 * dm-snapshot: a writable, point-in-time view of an origin device, keeping the origin's old
 * data (and the snapshot's own writes) chunk by chunk in a COW device. The pieces shared with
 * snapshot-merge (same table, same status) live here too. Pure data: nothing here touches the
 * kernel.
 */
import type { DeviceRef } from '../dev';
import { expectedRange } from '../validate';
import { ArgReader, builderOptions, choice, device, flag, freeze, integer, join, parseRatio, typedTarget, type UsedTotal } from './args';
import type { Target, TargetModule, TargetStatusBase } from './types';

/**
 * The exception store of a snapshot (the table's `<persistent?>`): `P` persistent (the COW
 * device holds a header and the exception tables, so the snapshot survives a reboot), `PO`
 * persistent, with userspace saying it understands the `Overflow` status (a snapshot whose COW
 * fills up through its own writes then refuses further writes instead of being invalidated),
 * `N` transient (the exception tables live in kernel memory only, so less is written to the
 * COW device, and the snapshot is lost with the table).
 */
export type SnapshotPersistence = 'P' | 'PO' | 'N';
/** The persistent stores, the only ones snapshot-merge takes. */
export type SnapshotMergePersistence = 'P' | 'PO';
/**
 * An optional feature of a snapshot table: `discard_zeroes_cow` (a discard to the snapshot
 * that covers whole chunks drops their exceptions, so they read from the origin again),
 * `discard_passdown_origin` (a discard to the snapshot is also passed down to the origin's
 * device; needs discard_zeroes_cow).
 */
export type SnapshotFeature = 'discard_zeroes_cow' | 'discard_passdown_origin';
/** The target types that take a snapshot table and report a snapshot status. */
export type SnapshotKind = 'snapshot' | 'snapshot-merge';

const PERSISTENCE: readonly SnapshotPersistence[] = ['P', 'PO', 'N'];
const FEATURES: readonly SnapshotFeature[] = ['discard_zeroes_cow', 'discard_passdown_origin'];
/**
 * The largest chunk: the kernel refuses chunks past INT_MAX bytes ("Chunk size is too high"),
 * and a chunk is a power of two, so 2^21 sectors (1 GiB).
 */
export const SNAPSHOT_MAX_CHUNK = 2097152;

/** Options of a snapshot target. */
export interface SnapshotOptions {
  /** `<origin>`: the origin device (the one a snapshot-origin maps, LVM's `-real`): 'major:minor', a /dev path, or { major, minor }. */
  origin: DeviceRef;
  /** `<COW device>`: where changed chunks (and, for a persistent store, the exception tables) are kept. */
  cowDevice: DeviceRef;
  /** `<persistent?>`: the exception store, `P`, `PO` or `N` (see `SnapshotPersistence`). */
  persistent: SnapshotPersistence;
  /**
   * `<chunksize>`: the unit of copy-on-write, in 512-byte sectors: a power of two up to 2097152 (1
   * GiB), and a multiple of the logical block size of both devices (the kernel checks that). 0
   * leaves it to the kernel: a persistent COW with a header keeps the header's chunk size, a new
   * persistent COW gets 32 sectors (16 KiB), and a table that takes over the COW of a live snapshot
   * (a reload) keeps that snapshot's; the table then reads back with the chunk size in use.
   */
  chunkSize: number;
  /** Feature `discard_zeroes_cow`: discards of whole chunks drop their exceptions (default false). */
  discardZeroesCow?: boolean;
  /** Feature `discard_passdown_origin`: discards also reach the origin's device; needs discardZeroesCow (default false). */
  discardPassdownOrigin?: boolean;
}

/** Options of a snapshot-merge target: a snapshot's, with a persistent store only. */
export interface SnapshotMergeOptions extends Omit<SnapshotOptions, 'persistent'> {
  /** `<persistent?>`: the exception store, `P` or `PO` (the kernel merges persistent snapshots only). */
  persistent: SnapshotMergePersistence;
}

/** The fields of a snapshot or snapshot-merge table. */
export interface SnapshotFields {
  /** `<origin>`, 'major:minor' or a /dev path: the device snapshotted. */
  readonly origin: string;
  /** `<COW device>`, 'major:minor' or a /dev path: the exception store's device. */
  readonly cowDevice: string;
  /** `<persistent?>`: the exception store, `P`, `PO` or `N`. */
  readonly persistent: SnapshotPersistence;
  /** `<chunksize>`: 512-byte sectors (0: left to the kernel, see `SnapshotOptions.chunkSize`). */
  readonly chunkSize: number;
  /** Feature `discard_zeroes_cow`: discards of whole chunks drop their exceptions (0/1 flag). */
  readonly discardZeroesCow: boolean;
  /** Feature `discard_passdown_origin`: discards also reach the origin's device. */
  readonly discardPassdownOrigin: boolean;
}

/**
 * `snapshot <origin> <COW device> <P|PO|N> <chunk size> [<#features> <feature>...]`: the
 * origin as it was when the snapshot was activated, plus the snapshot's own writes.
 */
export interface SnapshotTarget extends Target, SnapshotFields {
  readonly type: 'snapshot';
}

/**
 * `snapshot-merge <origin> <COW device> <P|PO> <chunk size> [<#features> <feature>...]`: takes
 * the place of the snapshot-origin and copies the snapshot's chunks back into the origin in the
 * background, serving the merged view meanwhile.
 */
export interface SnapshotMergeTarget extends Target, SnapshotFields {
  readonly type: 'snapshot-merge';
  /** `<persistent?>`: the exception store, `P` or `PO`. */
  readonly persistent: SnapshotMergePersistence;
}

/**
 * The state a snapshot's status reports: `valid` (the usage follows), `Invalid` (the snapshot
 * was dropped: its COW filled up through a write to the origin or to a `P` snapshot, or an I/O
 * error; it returns errors and cannot be recovered), `Overflow` (a `PO` snapshot's COW filled
 * up through a write to the snapshot: reads still work, writes fail), `Merge failed` (an I/O
 * error stopped the merge; I/O continues normally), `Unknown` (the exception store cannot tell
 * its usage).
 */
export type SnapshotState = 'valid' | 'Invalid' | 'Overflow' | 'Merge failed' | 'Unknown';

/** The status of a working snapshot or snapshot-merge target (`T`): how full its COW device is. */
export interface SnapshotValidStatusOf<T extends SnapshotKind> extends TargetStatusBase {
  readonly type: T;
  readonly known: true;
  /** `valid`: the status gives the usage (no state word). */
  readonly state: 'valid';
  /**
   * `<sectors_allocated>/<total_sectors>`: 512-byte sectors of the COW device in use (data and
   * metadata), and the COW device's size in 512-byte sectors.
   */
  readonly usage: UsedTotal;
  /**
   * `<metadata_sectors>`: 512-byte sectors of the COW device holding metadata (header and exception
   * tables), part of `usage.used`. A merge has finished when `usage.used` equals it (no data left
   * to merge).
   */
  readonly metadataSectors: number;
  /** Words after the known fields (a newer kernel's), kept as given. */
  readonly extra: readonly string[];
}

/** The status of a snapshot or snapshot-merge target (`T`) that reports a state instead of its usage. */
export interface SnapshotFailedStatusOf<T extends SnapshotKind> extends TargetStatusBase {
  readonly type: T;
  readonly known: true;
  /** The status's words: `Invalid`, `Overflow`, `Merge failed` or `Unknown` (see `SnapshotState`). */
  readonly state: Exclude<SnapshotState, 'valid'>;
  /** Words after the state (a newer kernel's), kept as given. */
  readonly extra: readonly string[];
}

/** The status of a working snapshot. */
export type SnapshotValidStatus = SnapshotValidStatusOf<'snapshot'>;
/** The status of a snapshot that is invalid, overflowed, failed to merge or cannot tell its usage. */
export type SnapshotFailedStatus = SnapshotFailedStatusOf<'snapshot'>;
/** The status of a snapshot target (narrow on `state`). */
export type SnapshotStatus = SnapshotValidStatus | SnapshotFailedStatus;

/** The params text of a snapshot or snapshot-merge table, in the kernel's order. */
export function formatSnapshotParams(f: SnapshotFields): string {
  const features: SnapshotFeature[] = [];
  if (f.discardZeroesCow) features.push('discard_zeroes_cow');
  if (f.discardPassdownOrigin) features.push('discard_passdown_origin');
  // The kernel prints no feature count when there are none (an explicit `0` is dropped).
  return join([f.origin, f.cowDevice, f.persistent, f.chunkSize, features.length === 0 ? undefined : `${features.length} ${features.join(' ')}`]);
}

/** Checks the options shared by snapshot and snapshot-merge; `name` is the builder's name ('snapshot'). */
export function snapshotFields<S extends SnapshotPersistence>(options: Omit<SnapshotOptions, 'persistent'> & { persistent: S }, name: string, stores: readonly S[]): SnapshotFields & { readonly persistent: S } {
  const o = builderOptions<SnapshotOptions>(options, `${name} options`, ['origin', 'cowDevice', 'persistent', 'chunkSize', 'discardZeroesCow', 'discardPassdownOrigin']);
  const origin = device(o.origin, `${name}.origin`);
  const cowDevice = device(o.cowDevice, `${name}.cowDevice`);
  const persistent = choice(o.persistent, `${name}.persistent`, stores);
  const chunkSize = integer(o.chunkSize, `${name}.chunkSize`, 0, SNAPSHOT_MAX_CHUNK);
  if ((chunkSize & (chunkSize - 1)) !== 0) throw expectedRange(`0 or a power of two up to ${SNAPSHOT_MAX_CHUNK}`, `${name}.chunkSize`, chunkSize);
  const discardZeroesCow = flag(o.discardZeroesCow, `${name}.discardZeroesCow`);
  const discardPassdownOrigin = flag(o.discardPassdownOrigin, `${name}.discardPassdownOrigin`);
  // The kernel refuses passdown alone ("discard_passdown_origin feature depends on discard_zeroes_cow").
  if (discardPassdownOrigin && !discardZeroesCow) throw expectedRange('discardPassdownOrigin only with discardZeroesCow', `${name}.discardPassdownOrigin`, discardPassdownOrigin);
  return { origin, cowDevice, persistent, chunkSize, discardZeroesCow, discardPassdownOrigin };
}

/**
 * Builds a snapshot target: `<origin> <COW device> <P|PO|N> <chunk size> [<#features>
 * discard_zeroes_cow [discard_passdown_origin]]`. Throws TypeError/RangeError naming the field
 * at fault.
 */
export function snapshot(options: SnapshotOptions): SnapshotTarget {
  const f = snapshotFields(options, 'snapshot', PERSISTENCE);
  return typedTarget({ type: 'snapshot', ...f, params: formatSnapshotParams(f) });
}

/**
 * Reads a snapshot or snapshot-merge params text into builder options. The store word and the
 * feature names are read without regard to case, as the kernel does; a feature given twice or
 * a bad count is refused. Throws DmParseError naming the field.
 */
export function readSnapshotParams<S extends SnapshotPersistence>(params: string, type: SnapshotKind, stores: readonly S[]): Omit<SnapshotOptions, 'persistent'> & { persistent: S } {
  const at = new ArgReader(params, type);
  const origin = at.device('origin');
  const cowDevice = at.device('COW device');
  const word = at.word('persistent');
  const persistent = stores.find((s) => s === word.toUpperCase());
  if (persistent === undefined) throw at.fail(`<persistent> is one of ${stores.join(', ')}, not ${JSON.stringify(word)}`, 'persistent');
  const chunkSize = at.uint('chunk size', 0, SNAPSHOT_MAX_CHUNK);
  if ((chunkSize & (chunkSize - 1)) !== 0) throw at.fail('<chunk size> is 0 or a power of two', 'chunk size');
  const features: SnapshotFeature[] = [];
  if (at.remaining > 0) {
    for (const w of at.group('feature args', 2)) {
      const f = FEATURES.find((x) => x === w.toLowerCase());
      if (f === undefined) throw at.fail(`unknown feature ${JSON.stringify(w)} (${FEATURES.join(', ')})`, 'feature args');
      if (features.includes(f)) throw at.fail(`feature ${f} is given twice`, 'feature args');
      features.push(f);
    }
  }
  at.done();
  const discardZeroesCow = features.includes('discard_zeroes_cow');
  const discardPassdownOrigin = features.includes('discard_passdown_origin');
  if (discardPassdownOrigin && !discardZeroesCow) throw at.fail('discard_passdown_origin needs discard_zeroes_cow', 'feature args');
  return { origin, cowDevice, persistent, chunkSize, discardZeroesCow, discardPassdownOrigin };
}

/**
 * Parses snapshot parameters ('253:1 7:3 P 8', '7:2 7:3 PO 16 1 discard_zeroes_cow'). Throws
 * DmParseError naming the field.
 */
export function parseSnapshot(params: string): SnapshotTarget {
  return snapshot(readSnapshotParams(params, 'snapshot', PERSISTENCE));
}

/**
 * Reads a snapshot or snapshot-merge status: `<sectors_allocated>/<total_sectors>
 * <metadata_sectors>`, or `Invalid`, `Overflow`, `Merge failed`, `Unknown`. Throws
 * DmParseError naming the field.
 */
export function readSnapshotStatus<T extends SnapshotKind>(type: T, text: string): SnapshotValidStatusOf<T> | SnapshotFailedStatusOf<T> {
  const at = new ArgReader(text, `${type} status`);
  const first = at.peek();
  if (first === 'Invalid' || first === 'Overflow' || first === 'Unknown') {
    at.word('state');
    return freeze({ type, raw: text, known: true as const, state: first, extra: at.rest() });
  }
  if (first === 'Merge') {
    at.word('state');
    at.oneOf('state', ['failed'] as const);
    return freeze({ type, raw: text, known: true as const, state: 'Merge failed' as const, extra: at.rest() });
  }
  if (first === undefined) throw at.fail('<sectors_allocated>/<total_sectors> is missing', 'sectors allocated');
  const usage = parseRatio(at, 'sectors allocated');
  const metadataSectors = at.uint('metadata sectors');
  return freeze({ type, raw: text, known: true as const, state: 'valid' as const, usage, metadataSectors, extra: at.rest() });
}

/**
 * Parses a snapshot target's status ('16/65536 16', 'Invalid', 'Overflow', 'Merge failed',
 * 'Unknown'). Throws DmParseError naming the field.
 */
export function parseSnapshotStatus(text: string): SnapshotStatus {
  return readSnapshotStatus('snapshot', text);
}

/** The snapshot target type. */
export const snapshotModule: TargetModule<SnapshotTarget, SnapshotStatus> = { type: 'snapshot', parse: parseSnapshot, parseStatus: parseSnapshotStatus };
