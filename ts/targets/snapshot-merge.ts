/**
 * dm-snapshot's merge: a persistent snapshot's COW device copied back into its origin in the
 * background, the target taking the place of the snapshot-origin meanwhile. It takes a
 * snapshot's table and reports a snapshot's status. Pure data: nothing here touches the kernel.
 */
import { typedTarget } from './args';
import { formatSnapshotParams, readSnapshotParams, readSnapshotStatus, snapshotFields, type SnapshotFailedStatusOf, type SnapshotMergeOptions, type SnapshotMergePersistence, type SnapshotMergeTarget, type SnapshotValidStatusOf } from './snapshot';
import type { TargetModule } from './types';

const STORES: readonly SnapshotMergePersistence[] = ['P', 'PO'];

/**
 * The status of a merging snapshot: its COW device's usage, which shrinks as chunks are merged
 * (done when `usage.used` equals `metadataSectors`).
 */
export type SnapshotMergeValidStatus = SnapshotValidStatusOf<'snapshot-merge'>;
/** The status of a merging snapshot that reports a state (`Merge failed`, `Invalid` ...) instead of its usage. */
export type SnapshotMergeFailedStatus = SnapshotFailedStatusOf<'snapshot-merge'>;
/** The status of a snapshot-merge target (narrow on `state`). */
export type SnapshotMergeStatus = SnapshotMergeValidStatus | SnapshotMergeFailedStatus;

/**
 * Builds a snapshot-merge target: `<origin> <COW device> <P|PO> <chunk size> [<#features>
 * discard_zeroes_cow [discard_passdown_origin]]`, the table of the snapshot being merged with
 * its type changed. Load it in place of the origin's snapshot-origin table. Throws
 * TypeError/RangeError naming the field at fault.
 */
export function snapshotMerge(options: SnapshotMergeOptions): SnapshotMergeTarget {
  const f = snapshotFields(options, 'snapshotMerge', STORES);
  return typedTarget({ type: 'snapshot-merge', ...f, params: formatSnapshotParams(f) });
}

/** Parses snapshot-merge parameters ('253:1 253:2 P 8'). Throws DmParseError naming the field. */
export function parseSnapshotMerge(params: string): SnapshotMergeTarget {
  return snapshotMerge(readSnapshotParams(params, 'snapshot-merge', STORES));
}

/**
 * Parses a snapshot-merge target's status ('48/8192 16' while merging, '16/8192 16' when done,
 * 'Merge failed', 'Invalid'). Throws DmParseError naming the field.
 */
export function parseSnapshotMergeStatus(text: string): SnapshotMergeStatus {
  return readSnapshotStatus('snapshot-merge', text);
}

/** The snapshot-merge target type. */
export const snapshotMergeModule: TargetModule<SnapshotMergeTarget, SnapshotMergeStatus> = { type: 'snapshot-merge', parse: parseSnapshotMerge, parseStatus: parseSnapshotMergeStatus };
