/**
 * dm-era: a linear mapping that also records, block by block, in which era each block was last
 * written (the era is a 32-bit counter the user moves on with `checkpoint`), for backup tools
 * and cache invalidation (thin-provisioning-tools' era_invalidate reads the metadata). Pure
 * data: nothing here touches the kernel.
 */
import type { DeviceRef } from '../dev';
import { expectedRange } from '../validate';
import { ArgReader, U32_MAX, builderOptions, device, freeze, integer, parseRatio, typedTarget, type UsedTotal } from './args';
import type { Target, TargetModule, TargetStatusBase } from './types';

/** The kernel's unit of era block sizes: 8 sectors (4 KiB); a block size is a multiple of it. */
const MIN_BLOCK = 8;

/** Options of an era target. */
export interface EraOptions {
  /** `<metadata dev>`: the (fast) device holding the persistent metadata: the era of every block, the writesets. */
  metadataDevice: DeviceRef;
  /** `<origin dev>`: the device holding the data, mapped one to one; its blocks are the ones tracked. */
  originDevice: DeviceRef;
  /**
   * `<block size>`: the granularity of tracking, in 512-byte sectors: a multiple of 8 (4 KiB), at
   * most 4294967288 (the kernel reads it as 32 bits).
   */
  blockSize: number;
}

/** `era <metadata dev> <origin dev> <block size>`: the origin, with the era of each block's last write kept on the metadata device. */
export interface EraTarget extends Target {
  readonly type: 'era';
  /** `<metadata dev>`, 'major:minor' or a /dev path: where the eras are kept. */
  readonly metadataDevice: string;
  /** `<origin dev>`, 'major:minor' or a /dev path: the data, mapped one to one. */
  readonly originDevice: string;
  /** `<block size>`: the tracking block size, in 512-byte sectors (a multiple of 8). */
  readonly blockSize: number;
}

/** An era whose metadata the kernel could not read for the status (`Error`). */
export interface EraFailedStatus extends TargetStatusBase {
  readonly type: 'era';
  readonly known: true;
  /** The whole status is the word `Error`: reading the metadata's statistics failed. */
  readonly failed: 'Error';
  /** Words after the known fields (a newer kernel's), kept as given. */
  readonly extra: readonly string[];
}

/** The status of a working era target. */
export interface EraRunningStatus extends TargetStatusBase {
  readonly type: 'era';
  readonly known: true;
  /** False: the era target works and the fields below are the kernel's. */
  readonly failed: false;
  /** `<metadata block size>`: size of a metadata block, in 512-byte sectors (fixed: 8, 4 KiB). */
  readonly metadataBlockSize: number;
  /** `<#used metadata blocks>/<#total metadata blocks>`: a count of metadata blocks. */
  readonly metadataBlocks: UsedTotal;
  /**
   * `<current era>`: the current era (a 32-bit counter). `checkpoint` may move it on, and so do a
   * metadata snapshot and every resume; read it here rather than assume it moved.
   */
  readonly currentEra: number;
  /**
   * `<held metadata root>`: where the metadata snapshot held for userspace
   * (`take_metadata_snap`) is, a metadata block number; null (`-`) when none is held.
   */
  readonly heldMetadataRoot: number | null;
  /** Words after the known fields (a newer kernel's), kept as given. */
  readonly extra: readonly string[];
}

/** The status of an era target: working, or failed (narrow on `failed`). */
export type EraStatus = EraRunningStatus | EraFailedStatus;

function blockSizeOf(value: unknown, name: string): number {
  const n = integer(value, name, MIN_BLOCK, U32_MAX);
  if (n % MIN_BLOCK !== 0) throw expectedRange(`a multiple of ${MIN_BLOCK} from ${MIN_BLOCK} to ${U32_MAX - (U32_MAX % MIN_BLOCK)}`, name, value);
  return n;
}

/** Builds an era target. Throws TypeError/RangeError naming the field at fault. */
export function era(options: EraOptions): EraTarget {
  const o = builderOptions(options, 'era options', ['metadataDevice', 'originDevice', 'blockSize']);
  const metadataDevice = device(o.metadataDevice, 'era.metadataDevice');
  const originDevice = device(o.originDevice, 'era.originDevice');
  const blockSize = blockSizeOf(o.blockSize, 'era.blockSize');
  return typedTarget({ type: 'era', metadataDevice, originDevice, blockSize, params: `${metadataDevice} ${originDevice} ${blockSize}` });
}

/** Parses era parameters ('7:2 7:1 128'). Throws DmParseError naming the field. */
export function parseEra(params: string): EraTarget {
  const at = new ArgReader(params, 'era');
  const metadataDevice = at.device('metadata dev');
  const originDevice = at.device('origin dev');
  const blockSize = at.uint('block size', MIN_BLOCK, U32_MAX);
  if (blockSize % MIN_BLOCK !== 0) throw at.fail(`<block size> is a multiple of ${MIN_BLOCK}`, 'block size');
  at.done();
  return era({ metadataDevice, originDevice, blockSize });
}

/** Parses an era target's status ('8 12/1024 3 43', '8 9/1024 1 -', or 'Error'). Throws DmParseError naming the field. */
export function parseEraStatus(text: string): EraStatus {
  const at = new ArgReader(text, 'era status');
  if (at.peek() === 'Error') {
    at.word('state');
    return freeze({ type: 'era', raw: text, known: true, failed: 'Error', extra: at.rest() });
  }
  const metadataBlockSize = at.uint('metadata block size');
  const metadataBlocks = parseRatio(at, 'metadata blocks');
  const currentEra = at.uint('current era', 0, U32_MAX);
  let heldMetadataRoot: number | null = null;
  if (at.peek() === '-') at.word('held metadata root');
  else heldMetadataRoot = at.uint('held metadata root');
  return freeze({ type: 'era', raw: text, known: true, failed: false, metadataBlockSize, metadataBlocks, currentEra, heldMetadataRoot, extra: at.rest() });
}

/**
 * Messages an era target takes (`dm.message(name, eraMessages.checkpoint())`); none answers
 * with text.
 */
export const eraMessages = Object.freeze({
  /**
   * `checkpoint`: possibly moves on to a new era (the kernel does not promise it: read
   * `currentEra` in the status afterwards).
   */
  checkpoint(): string {
    return 'checkpoint';
  },
  /**
   * `take_metadata_snap`: a clone of the metadata for userspace to read (era_invalidate
   * `--metadata-snapshot`); its root shows as `heldMetadataRoot`. Only one is held at a time:
   * a second fails with EINVAL.
   */
  takeMetadataSnap(): string {
    return 'take_metadata_snap';
  },
  /** `drop_metadata_snap`: drops the held metadata snapshot (EINVAL when none is held). */
  dropMetadataSnap(): string {
    return 'drop_metadata_snap';
  },
});

/** The era target type. */
export const eraModule: TargetModule<EraTarget, EraStatus> = { type: 'era', parse: parseEra, parseStatus: parseEraStatus };
