/**
 * dm-clone: a writable copy (the destination) of a read-only source device, filled in region
 * by region in the background ("hydration") while already in use. Pure data: nothing here
 * touches the kernel.
 */
import type { DeviceRef } from '../dev';
import { expectedRange } from '../validate';
import { ArgReader, U32_MAX, builderOptions, counted, device, flag, freeze, integer, join, optionalInteger, parseRatio, powerOfTwo, typedTarget, type UsedTotal } from './args';
import type { Target, TargetModule, TargetStatusBase } from './types';

/** The smallest region the kernel takes: 8 sectors (4 KiB). */
const MIN_REGION = 8;
/** The largest region the kernel takes: 2^21 sectors (1 GiB). */
const MAX_REGION = 2097152;

/** A feature word of a clone table. */
export type CloneFeature = 'no_hydration' | 'no_discard_passdown';
/** A core argument key of a clone table. */
export type CloneCoreKey = 'hydration_threshold' | 'hydration_batch_size';

const FEATURES: readonly CloneFeature[] = ['no_hydration', 'no_discard_passdown'];
const CORE_KEYS: readonly CloneCoreKey[] = ['hydration_threshold', 'hydration_batch_size'];

/** Options of a clone target. */
export interface CloneOptions {
  /** `<metadata dev>`: the device holding the clone's metadata (which regions are hydrated); zeroed before first use. */
  metadataDevice: DeviceRef;
  /** `<destination dev>`: the device that becomes the copy; it gets every write at once and the rest by hydration. */
  destinationDevice: DeviceRef;
  /** `<source dev>`: the device copied from; only read. */
  sourceDevice: DeviceRef;
  /** `<region size>`: the unit of copying, in 512-byte sectors: a power of two from 8 (4 KiB) to 2097152 (1 GiB). */
  regionSize: number;
  /** Feature `no_hydration`: start with background hydration off; the `enable_hydration` message turns it on. */
  noHydration?: boolean;
  /** Feature `no_discard_passdown`: discards are not passed down to the destination. */
  noDiscardPassdown?: boolean;
  /**
   * Core arg `hydration_threshold`: how many regions may be hydrating at once (a count of
   * regions); the kernel's default is 1, and 0 pauses the background hydration.
   */
  hydrationThreshold?: number;
  /**
   * Core arg `hydration_batch_size`: how many adjacent not-yet-hydrated regions are copied
   * together in one batch (a count of regions); the kernel's default is 1.
   */
  hydrationBatchSize?: number;
}

/**
 * `clone <metadata dev> <destination dev> <source dev> <region size> [<#features> <feature>*
 * [<#core args> <key> <value>...]]`: a destination filled from a source while in use.
 */
export interface CloneTarget extends Target {
  readonly type: 'clone';
  /** `<metadata dev>`, 'major:minor' or a /dev path: which regions are hydrated. */
  readonly metadataDevice: string;
  /** `<destination dev>`, 'major:minor' or a /dev path: the copy. */
  readonly destinationDevice: string;
  /** `<source dev>`, 'major:minor' or a /dev path: the read-only original. */
  readonly sourceDevice: string;
  /** `<region size>`: the unit of copying, in 512-byte sectors (a power of two). */
  readonly regionSize: number;
  /** True when the table holds back background hydration (`no_hydration`). */
  readonly noHydration: boolean;
  /** True when discards are not passed down to the destination (`no_discard_passdown`). */
  readonly noDiscardPassdown: boolean;
  /** Core arg `hydration_threshold` as the table gives it (a count of regions hydrating at once), or undefined for the kernel's default (1). */
  readonly hydrationThreshold: number | undefined;
  /** Core arg `hydration_batch_size` as the table gives it (a count of regions per batch), or undefined for the kernel's default (1). */
  readonly hydrationBatchSize: number | undefined;
  /**
   * The feature words in the order the table gives them. The kernel prints a clone table back
   * exactly as it was given, so a parsed table keeps its order; a built one uses this order.
   */
  readonly features: readonly CloneFeature[];
  /** The core argument keys in the order the table gives them (see `features`). */
  readonly coreKeys: readonly CloneCoreKey[];
}

/** A clone whose metadata failed (`Fail`) or whose status the kernel could not read (`Error`). */
export interface CloneFailedStatus extends TargetStatusBase {
  readonly type: 'clone';
  readonly known: true;
  /** The whole status is one word: `Fail`, the metadata device failed and the clone is in fail mode; `Error`: the kernel could not read its metadata for the status. */
  readonly failed: 'Fail' | 'Error';
  /** Words after the known fields (a newer kernel's), kept as given. */
  readonly extra: readonly string[];
}

/** The status of a working clone. */
export interface CloneRunningStatus extends TargetStatusBase {
  readonly type: 'clone';
  readonly known: true;
  /** False: the clone works and the fields below are the kernel's. */
  readonly failed: false;
  /** `<metadata block size>`: size of a metadata block, in 512-byte sectors (fixed at 8: 4 KiB). */
  readonly metadataBlockSize: number;
  /** `<#used metadata blocks>/<#total metadata blocks>`: a count of metadata blocks. */
  readonly metadataBlocks: UsedTotal;
  /** `<region size>`: in 512-byte sectors. */
  readonly regionSize: number;
  /** `<#hydrated regions>/<#total regions>`: regions hydrated (copied or overwritten) and regions in all; hydration is complete when they are equal. */
  readonly regions: UsedTotal;
  /** `<#hydrating regions>`: regions being copied right now (a count). */
  readonly hydrating: number;
  /** Feature `no_hydration`: background hydration is held back (the table's, or the `disable_hydration` message). */
  readonly noHydration: boolean;
  /** Feature `no_discard_passdown`: discards are not passed down (also when the destination cannot take them). */
  readonly noDiscardPassdown: boolean;
  /** `<#features> <features>*`: the feature words as the status lists them. */
  readonly features: readonly CloneFeature[];
  /** Core arg `hydration_threshold`: regions that may be hydrating at once (a count; the current value, changed by message too). */
  readonly hydrationThreshold: number;
  /** Core arg `hydration_batch_size`: regions copied together per batch (a count; the current value). */
  readonly hydrationBatchSize: number;
  /** `<clone metadata mode>`: `rw` read-write, `ro` read-only (metadata trouble, needs checking), `Fail`. */
  readonly metadataMode: 'rw' | 'ro' | 'Fail';
  /** Words after the known fields (a newer kernel's), kept as given. */
  readonly extra: readonly string[];
}

/** The status of a clone target: working, or failed (narrow on `failed`). */
export type CloneStatus = CloneRunningStatus | CloneFailedStatus;

function ordered<T extends string>(wanted: readonly T[], order: readonly T[] | undefined): readonly T[] {
  if (order === undefined) return wanted;
  return order.filter((w) => wanted.includes(w));
}

function makeClone(options: CloneOptions, featureOrder?: readonly CloneFeature[], coreOrder?: readonly CloneCoreKey[], groups = 0): CloneTarget {
  const o = builderOptions(options, 'clone options', ['metadataDevice', 'destinationDevice', 'sourceDevice', 'regionSize', 'noHydration', 'noDiscardPassdown', 'hydrationThreshold', 'hydrationBatchSize']);
  const metadataDevice = device(o.metadataDevice, 'clone.metadataDevice');
  const destinationDevice = device(o.destinationDevice, 'clone.destinationDevice');
  const sourceDevice = device(o.sourceDevice, 'clone.sourceDevice');
  const regionSize = powerOfTwo(o.regionSize, 'clone.regionSize', MIN_REGION, MAX_REGION);
  const noHydration = flag(o.noHydration, 'clone.noHydration');
  const noDiscardPassdown = flag(o.noDiscardPassdown, 'clone.noDiscardPassdown');
  const hydrationThreshold = optionalInteger(o.hydrationThreshold, 'clone.hydrationThreshold', 0, U32_MAX);
  const hydrationBatchSize = optionalInteger(o.hydrationBatchSize, 'clone.hydrationBatchSize', 0, U32_MAX);
  const features = ordered<CloneFeature>(
    FEATURES.filter((f) => (f === 'no_hydration' ? noHydration : noDiscardPassdown)),
    featureOrder,
  );
  const coreKeys = ordered<CloneCoreKey>(
    CORE_KEYS.filter((k) => (k === 'hydration_threshold' ? hydrationThreshold : hydrationBatchSize) !== undefined),
    coreOrder,
  );
  const core = coreKeys.flatMap((k) => [k, String(k === 'hydration_threshold' ? hydrationThreshold : hydrationBatchSize)]);
  // The kernel echoes the table as given: a parsed table's empty groups ('8 0', '8 0 0') stay.
  const withFeatures = features.length > 0 || core.length > 0 || groups >= 1;
  const withCore = core.length > 0 || groups >= 2;
  const params = join([metadataDevice, destinationDevice, sourceDevice, regionSize, withFeatures ? counted(features) : undefined, withCore ? counted(core) : undefined]);
  return typedTarget({ type: 'clone', metadataDevice, destinationDevice, sourceDevice, regionSize, noHydration, noDiscardPassdown, hydrationThreshold, hydrationBatchSize, features: [...features], coreKeys: [...coreKeys], params });
}

/**
 * Builds a clone target. The params are `<metadata> <destination> <source> <region size>`,
 * then the feature group when there are features or core args, then the core args when there
 * are any (`hydration_threshold` first). Throws TypeError/RangeError naming the field at fault.
 */
export function clone(options: CloneOptions): CloneTarget {
  return makeClone(options);
}

/**
 * Parses clone parameters ('7:0 7:2 7:1 8 1 no_hydration 2 hydration_threshold 4'), keeping
 * the order of features and core args and empty groups ('8 0'): the kernel prints a clone
 * table back exactly as given. Throws DmParseError naming the field.
 */
export function parseClone(params: string): CloneTarget {
  const at = new ArgReader(params, 'clone');
  const metadataDevice = at.device('metadata dev');
  const destinationDevice = at.device('destination dev');
  const sourceDevice = at.device('source dev');
  const regionSize = at.uint('region size', MIN_REGION, MAX_REGION);
  if ((regionSize & (regionSize - 1)) !== 0) throw at.fail('<region size> is a power of two', 'region size');
  const features: CloneFeature[] = [];
  const coreKeys: CloneCoreKey[] = [];
  const values: Partial<Record<CloneCoreKey, number>> = {};
  let groups = 0;
  if (at.remaining > 0) {
    groups = 1;
    const words = at.group('feature args', 2);
    for (const w of words) {
      const f = FEATURES.find((x) => x === w);
      if (f === undefined) throw at.fail(`unknown feature ${JSON.stringify(w)} (no_hydration, no_discard_passdown)`, 'feature args');
      if (features.includes(f)) throw at.fail(`feature ${f} given twice`, 'feature args');
      features.push(f);
    }
  }
  if (at.remaining > 0) {
    groups = 2;
    for (const [key, value] of at.pairs('core args', 4)) {
      const k = CORE_KEYS.find((x) => x === key);
      if (k === undefined) throw at.fail(`unknown core arg ${JSON.stringify(key)} (hydration_threshold, hydration_batch_size)`, 'core args');
      if (value > U32_MAX) throw at.fail(`<${k}> is larger than 32 bits`, 'core args');
      coreKeys.push(k);
      values[k] = value;
    }
  }
  at.done();
  return makeClone(
    {
      metadataDevice,
      destinationDevice,
      sourceDevice,
      regionSize,
      noHydration: features.includes('no_hydration'),
      noDiscardPassdown: features.includes('no_discard_passdown'),
      hydrationThreshold: values.hydration_threshold,
      hydrationBatchSize: values.hydration_batch_size,
    },
    features,
    coreKeys,
    groups,
  );
}

/**
 * Parses a clone target's status ('8 6/1024 8 120/4096 1 0 4 hydration_threshold 1
 * hydration_batch_size 1 rw', or 'Fail', or 'Error'). Throws DmParseError naming the field.
 */
export function parseCloneStatus(text: string): CloneStatus {
  const at = new ArgReader(text, 'clone status');
  const first = at.peek();
  if (first === 'Fail' || first === 'Error') {
    at.word('state');
    return freeze({ type: 'clone', raw: text, known: true, failed: first, extra: at.rest() });
  }
  const metadataBlockSize = at.uint('metadata block size');
  const metadataBlocks = parseRatio(at, 'metadata blocks');
  const regionSize = at.uint('region size');
  const regions = parseRatio(at, 'regions');
  const hydrating = at.uint('hydrating regions');
  const features: CloneFeature[] = [];
  for (const w of at.group('features', 2)) {
    const f = FEATURES.find((x) => x === w);
    if (f === undefined) throw at.fail(`unknown feature ${JSON.stringify(w)}`, 'features');
    features.push(f);
  }
  const noHydration = features.includes('no_hydration');
  const noDiscardPassdown = features.includes('no_discard_passdown');
  let hydrationThreshold: number | undefined;
  let hydrationBatchSize: number | undefined;
  for (const [key, value] of at.pairs('core args', 16)) {
    if (key === 'hydration_threshold') hydrationThreshold = value;
    else if (key === 'hydration_batch_size') hydrationBatchSize = value;
    else throw at.fail(`unknown core arg ${JSON.stringify(key)}`, 'core args');
  }
  if (hydrationThreshold === undefined || hydrationBatchSize === undefined) throw at.fail('<core args> lack hydration_threshold or hydration_batch_size', 'core args');
  const metadataMode = at.oneOf('metadata mode', ['rw', 'ro', 'Fail'] as const);
  return freeze({
    type: 'clone',
    raw: text,
    known: true,
    failed: false,
    metadataBlockSize,
    metadataBlocks,
    regionSize,
    regions,
    hydrating,
    noHydration,
    noDiscardPassdown,
    features,
    hydrationThreshold,
    hydrationBatchSize,
    metadataMode,
    extra: at.rest(),
  });
}

/**
 * Messages a clone takes (`dm.message(name, cloneMessages.enableHydration())`). Each returns
 * the message text; the checks throw TypeError/RangeError naming the argument.
 */
export const cloneMessages = Object.freeze({
  /** `enable_hydration`: starts (or resumes) background hydration. */
  enableHydration(): string {
    return 'enable_hydration';
  },
  /** `disable_hydration`: stops background hydration; writes still hydrate the regions they cover. */
  disableHydration(): string {
    return 'disable_hydration';
  },
  /** `hydration_threshold <#regions>`: sets how many regions may hydrate at once (0 pauses the background hydration). */
  hydrationThreshold(regions: number): string {
    return `hydration_threshold ${integer(regions, 'regions', 0, U32_MAX)}`;
  },
  /** `hydration_batch_size <#regions>`: sets how many adjacent regions are copied together in one batch. */
  hydrationBatchSize(regions: number): string {
    return `hydration_batch_size ${integer(regions, 'regions', 0, U32_MAX)}`;
  },
});

/** The clone target type. */
export const cloneModule: TargetModule<CloneTarget, CloneStatus> = {
  type: 'clone',
  parse: parseClone,
  parseStatus: parseCloneStatus,
  // The kernel's rule: at most 2^31 regions.
  checkLength(target, length, name) {
    const t = parseClone(target.params);
    if (Math.ceil(length / t.regionSize) > 2 ** 31) throw expectedRange(`a length of at most 2^31 regions of ${t.regionSize} sectors`, name, length);
  },
};
