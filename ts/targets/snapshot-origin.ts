/**
 * dm-snapshot's origin: the device being snapshotted, mapped straight through, with every write
 * first copying the old data of its chunk into each snapshot's COW device. Pure data: nothing
 * here touches the kernel.
 */
import type { DeviceRef } from '../dev';
import { ArgReader, builderOptions, device, freeze, typedTarget } from './args';
import type { Target, TargetModule, TargetStatusBase } from './types';

/** Options of a snapshot-origin target. */
export interface SnapshotOriginOptions {
  /**
   * `<origin>`: the device holding the origin's data (LVM's `-real` device): 'major:minor', a /dev
   * path, or { major, minor }. Snapshots name the same device as their `<origin>`.
   */
  origin: DeviceRef;
}

/**
 * `snapshot-origin <origin>`: reads go straight to `origin`; a write first saves the chunk's
 * old data in the COW device of every snapshot of `origin`.
 */
export interface SnapshotOriginTarget extends Target {
  readonly type: 'snapshot-origin';
  /** `<origin>`, 'major:minor' or a /dev path: the device holding the origin's data. */
  readonly origin: string;
}

/** The status of a snapshot-origin target: the kernel reports nothing. */
export interface SnapshotOriginStatus extends TargetStatusBase {
  readonly type: 'snapshot-origin';
  readonly known: true;
}

/** Builds a snapshot-origin target. Throws TypeError/RangeError naming the field at fault. */
export function snapshotOrigin(options: SnapshotOriginOptions): SnapshotOriginTarget {
  const o = builderOptions(options, 'snapshot-origin options', ['origin']);
  const origin = device(o.origin, 'snapshotOrigin.origin');
  return typedTarget({ type: 'snapshot-origin', origin, params: origin });
}

/** Parses snapshot-origin parameters ('253:1'). Throws DmParseError naming the field. */
export function parseSnapshotOrigin(params: string): SnapshotOriginTarget {
  const at = new ArgReader(params, 'snapshot-origin');
  const origin = at.device('origin');
  at.done();
  return snapshotOrigin({ origin });
}

/** Parses a snapshot-origin target's status (empty). Throws DmParseError on any word. */
export function parseSnapshotOriginStatus(text: string): SnapshotOriginStatus {
  new ArgReader(text, 'snapshot-origin status').done();
  return freeze({ type: 'snapshot-origin', raw: text, known: true });
}

/** The snapshot-origin target type. */
export const snapshotOriginModule: TargetModule<SnapshotOriginTarget, SnapshotOriginStatus> = { type: 'snapshot-origin', parse: parseSnapshotOrigin, parseStatus: parseSnapshotOriginStatus };
