/**
 * dm-cache: a fast device (the cache) in front of a slow one (the origin), block by block,
 * with a policy choosing which blocks to promote and demote. Pure data: nothing here touches
 * the kernel.
 */
import type { DeviceRef } from '../dev';
import { expected, expectedRange } from '../validate';
import { ArgReader, U32_MAX, builderOptions, choice, counted, device, flag, freeze, integer, join, parseRatio, sectors, typedTarget, type UsedTotal } from './args';
import type { Target, TargetModule, TargetStatusBase } from './types';

/** The smallest cache block: 64 sectors (32 KiB). */
const MIN_BLOCK = 64;
/** The largest cache block: 2097152 sectors (1 GiB). */
const MAX_BLOCK = 2097152;

/**
 * How writes are cached: `writeback` (the kernel's default: written to the cache only, copied
 * to the origin later), `writethrough` (written to both before completing), `passthrough`
 * (every I/O goes to the origin; for a cache whose content may be stale).
 */
export type CacheMode = 'writeback' | 'writethrough' | 'passthrough';
/** A feature word of a cache table. */
export type CacheFeature = CacheMode | 'metadata2' | 'no_discard_passdown';
/**
 * A cache policy: `smq` (the stochastic multiqueue policy, the kernel's default), `mq` (now
 * an alias of smq that takes the old mq's tunables and ignores them), `cleaner` (writes every
 * dirty block back and promotes nothing, to decommission a cache), `default` (the kernel's
 * default policy, smq).
 */
export type CachePolicy = 'smq' | 'mq' | 'cleaner' | 'default';
/** A tunable of a policy, given as a policy arg or by message. */
export type CachePolicyKey = 'migration_threshold' | 'random_threshold' | 'sequential_threshold' | 'discard_promote_adjustment' | 'read_promote_adjustment' | 'write_promote_adjustment';

const MODES: readonly CacheMode[] = ['writeback', 'writethrough', 'passthrough'];
const FEATURES: readonly CacheFeature[] = [...MODES, 'metadata2', 'no_discard_passdown'];
const POLICIES: readonly CachePolicy[] = ['smq', 'mq', 'cleaner', 'default'];
const MQ_KEYS: readonly CachePolicyKey[] = ['migration_threshold', 'random_threshold', 'sequential_threshold', 'discard_promote_adjustment', 'read_promote_adjustment', 'write_promote_adjustment'];

function isMode(word: string): word is CacheMode {
  return (MODES as readonly string[]).includes(word);
}

function policyKeys(policy: CachePolicy): readonly CachePolicyKey[] {
  // The core takes migration_threshold for every policy; only mq takes (and ignores) the old
  // mq tunables; smq and the cleaner have none of their own.
  return policy === 'mq' ? MQ_KEYS : ['migration_threshold'];
}

function policyValue(key: CachePolicyKey, value: unknown, name: string): number {
  // migration_threshold is a 64-bit sector count; the rest are 32-bit.
  return key === 'migration_threshold' ? sectors(value, name) : integer(value, name, 0, U32_MAX);
}

/** Options of a cache target. */
export interface CacheOptions {
  /** `<metadata dev>`: the device holding the cache's metadata (which origin block each cache block holds, dirty bits, policy hints). */
  metadataDevice: DeviceRef;
  /** `<cache dev>`: the fast device holding the cached blocks. */
  cacheDevice: DeviceRef;
  /** `<origin dev>`: the slow device being cached. */
  originDevice: DeviceRef;
  /** `<block size>`: the cache block size, in 512-byte sectors: a multiple of 64 (32 KiB) from 64 to 2097152 (1 GiB). */
  blockSize: number;
  /** The write mode feature word (see `CacheMode`); unset writes no mode word and the kernel uses writeback. */
  mode?: CacheMode;
  /** Feature `metadata2`: version 2 of the metadata format (dirty bits in a btree of their own, a faster shutdown). */
  metadata2?: boolean;
  /** Pass discards down to the origin's device (default true; false writes the feature `no_discard_passdown`). */
  discardPassdown?: boolean;
  /** `<policy>`: the policy's name (default `smq`). */
  policy?: CachePolicy;
  /**
   * `<#policy args> [<key> <value>]*`: the policy's tunables, in the order given:
   * `migration_threshold` (512-byte sectors that may be migrating at once; the kernel's default
   * 2048) for every policy, and for mq only the old mq tunables, which it takes and ignores (smq
   * and the cleaner refuse them).
   */
  policyArgs?: Readonly<Partial<Record<CachePolicyKey, number>>>;
}

/**
 * `cache <metadata dev> <cache dev> <origin dev> <block size> <#features> [<feature>]*
 * <policy> <#policy args> [<key> <value>]*`: the origin, cached on a fast device.
 */
export interface CacheTarget extends Target {
  readonly type: 'cache';
  /** `<metadata dev>`, 'major:minor' or a /dev path: the cache's metadata. */
  readonly metadataDevice: string;
  /** `<cache dev>`, 'major:minor' or a /dev path: the fast device holding the cached blocks. */
  readonly cacheDevice: string;
  /** `<origin dev>`, 'major:minor' or a /dev path: the slow device being cached. */
  readonly originDevice: string;
  /** `<block size>`: the cache block size, in 512-byte sectors (a multiple of 64). */
  readonly blockSize: number;
  /** The write mode feature in effect (`writeback` when the table names none). */
  readonly mode: CacheMode;
  /** Feature `metadata2`: the metadata is in format version 2. */
  readonly metadata2: boolean;
  /** Discards go down to the origin; false when the table has the feature `no_discard_passdown`. */
  readonly discardPassdown: boolean;
  /**
   * The feature words in the table's order. The kernel prints a cache table back exactly as it
   * was given, so a parsed table keeps its order; a built one writes mode, metadata2,
   * no_discard_passdown.
   */
  readonly features: readonly CacheFeature[];
  /** `<policy>`: the policy's name. */
  readonly policy: CachePolicy;
  /** `<#policy args> [<key> <value>]*`: the policy args, in the table's order (`migration_threshold` in 512-byte sectors). */
  readonly policyArgs: Readonly<Partial<Record<CachePolicyKey, number>>>;
}

/** A cache whose metadata failed (`Fail`) or whose status the kernel could not read (`Error`). */
export interface CacheFailedStatus extends TargetStatusBase {
  readonly type: 'cache';
  readonly known: true;
  /** The whole status is one word: `Fail`, the cache is in fail mode (metadata trouble, no more I/O); `Error`, the kernel could not read its metadata for the status. */
  readonly failed: 'Fail' | 'Error';
  /** Words after the known fields (a newer kernel's), kept as given. */
  readonly extra: readonly string[];
}

/** The status of a working cache. */
export interface CacheRunningStatus extends TargetStatusBase {
  readonly type: 'cache';
  readonly known: true;
  /** False: the cache works and the fields below are the kernel's. */
  readonly failed: false;
  /** `<metadata block size>`: size of a metadata block, in 512-byte sectors (fixed at 8: 4 KiB). */
  readonly metadataBlockSize: number;
  /** `<#used metadata blocks>/<#total metadata blocks>`: a count of metadata blocks. */
  readonly metadataBlocks: UsedTotal;
  /** `<cache block size>`: the table's block size, in 512-byte sectors. */
  readonly cacheBlockSize: number;
  /** `<#used cache blocks>/<#total cache blocks>`: cache blocks holding an origin block, and all of them (a count of blocks). */
  readonly cacheBlocks: UsedTotal;
  /** `<#read hits>`: read bios mapped to the cache (a count since the table was loaded). */
  readonly readHits: number;
  /** `<#read misses>`: read bios mapped to the origin (a count). */
  readonly readMisses: number;
  /** `<#write hits>`: write bios mapped to the cache (a count). */
  readonly writeHits: number;
  /** `<#write misses>`: write bios mapped to the origin (a count). */
  readonly writeMisses: number;
  /** `<#demotions>`: blocks removed from the cache (a count). */
  readonly demotions: number;
  /** `<#promotions>`: blocks moved into the cache (a count). */
  readonly promotions: number;
  /** `<#dirty>`: cache blocks whose content differs from the origin's (a count of blocks). */
  readonly dirty: number;
  /** `<#features> <features>*`: the feature words, as the status lists them (metadata2, the mode, no_discard_passdown). */
  readonly features: readonly CacheFeature[];
  /** The write mode among the features (the status always names one). */
  readonly mode: CacheMode;
  /** Feature `metadata2`: metadata format version 2. */
  readonly metadata2: boolean;
  /** False when the features include `no_discard_passdown`. */
  readonly discardPassdown: boolean;
  /** Core arg `migration_threshold`: 512-byte sectors that may be migrating at once (the current value; the kernel's default is 2048). */
  readonly migrationThreshold: number;
  /** `<policy name>` (`smq`, `mq`, `cleaner`; `default` shows as the policy it stands for). */
  readonly policy: string;
  /** `<#policy args> <policy args>*`: the policy's tunables as it reports them, in its order (smq and cleaner report none). */
  readonly policyArgs: Readonly<Record<string, number>>;
  /** `<cache metadata mode>`: `rw` read-write, `ro` read-only (after a metadata error). */
  readonly metadataMode: 'rw' | 'ro';
  /** `needs_check` (true) or `-`: a metadata operation failed and the superblock asks for cache_check before the cache is used again. */
  readonly needsCheck: boolean;
  /** Words after the known fields (a newer kernel's), kept as given. */
  readonly extra: readonly string[];
}

/** The status of a cache target: working, or failed (narrow on `failed`). */
export type CacheStatus = CacheRunningStatus | CacheFailedStatus;

function makeCache(options: CacheOptions, featureOrder?: readonly CacheFeature[]): CacheTarget {
  const o = builderOptions(options, 'cache options', ['metadataDevice', 'cacheDevice', 'originDevice', 'blockSize', 'mode', 'metadata2', 'discardPassdown', 'policy', 'policyArgs']);
  const metadataDevice = device(o.metadataDevice, 'cache.metadataDevice');
  const cacheDevice = device(o.cacheDevice, 'cache.cacheDevice');
  const originDevice = device(o.originDevice, 'cache.originDevice');
  const blockSize = integer(o.blockSize, 'cache.blockSize', MIN_BLOCK, MAX_BLOCK);
  if (blockSize % MIN_BLOCK !== 0) throw expectedRange(`a multiple of ${MIN_BLOCK} from ${MIN_BLOCK} to ${MAX_BLOCK}`, 'cache.blockSize', blockSize);
  const mode = o.mode === undefined ? undefined : choice(o.mode, 'cache.mode', MODES);
  const metadata2 = flag(o.metadata2, 'cache.metadata2');
  const discardPassdown = o.discardPassdown === undefined ? true : flag(o.discardPassdown, 'cache.discardPassdown');
  const policy = o.policy === undefined ? 'smq' : choice(o.policy, 'cache.policy', POLICIES);
  const keys = policyKeys(policy);
  const policyArgs: Partial<Record<CachePolicyKey, number>> = {};
  if (o.policyArgs !== undefined) {
    const given = builderOptions(o.policyArgs, 'cache.policyArgs', [...keys]);
    for (const [k, v] of Object.entries(given)) {
      const key = keys.find((x) => x === k);
      if (key === undefined || v === undefined) continue;
      policyArgs[key] = policyValue(key, v, `cache.policyArgs.${key}`);
    }
  }
  const wanted: CacheFeature[] = [];
  if (mode !== undefined) wanted.push(mode);
  if (metadata2) wanted.push('metadata2');
  if (!discardPassdown) wanted.push('no_discard_passdown');
  const features = featureOrder === undefined ? wanted : featureOrder.filter((f) => wanted.includes(f));
  const params = join([metadataDevice, cacheDevice, originDevice, blockSize, counted(features), policy, counted(Object.entries(policyArgs).flatMap(([k, v]) => [k, v]))]);
  return typedTarget({ type: 'cache', metadataDevice, cacheDevice, originDevice, blockSize, mode: mode ?? 'writeback', metadata2, discardPassdown, features, policy, policyArgs, params });
}

/**
 * Builds a cache target: `<metadata> <cache> <origin> <block size> <#features> [mode]
 * [metadata2] [no_discard_passdown] <policy> <#policy args> [<key> <value>]*`. Throws
 * TypeError/RangeError naming the field at fault.
 */
export function cache(options: CacheOptions): CacheTarget {
  return makeCache(options);
}

/**
 * Parses cache parameters ('7:0 7:1 7:2 512 1 writeback smq 2 migration_threshold 1024'),
 * keeping the order of features and policy args (the kernel prints them back as given).
 * Throws DmParseError naming the field.
 */
export function parseCache(params: string): CacheTarget {
  const at = new ArgReader(params, 'cache');
  const metadataDevice = at.device('metadata dev');
  const cacheDevice = at.device('cache dev');
  const originDevice = at.device('origin dev');
  const blockSize = at.uint('block size', MIN_BLOCK, MAX_BLOCK);
  if (blockSize % MIN_BLOCK !== 0) throw at.fail(`<block size> is a multiple of ${MIN_BLOCK}`, 'block size');
  const features: CacheFeature[] = [];
  for (const w of at.group('feature args', 3)) {
    const f = FEATURES.find((x) => x === w);
    if (f === undefined) throw at.fail(`unknown feature ${JSON.stringify(w)} (${FEATURES.join(', ')})`, 'feature args');
    if (features.includes(f) || (isMode(f) && features.some(isMode))) throw at.fail(`feature ${f} repeats or conflicts`, 'feature args');
    features.push(f);
  }
  const policy = at.oneOf('policy', POLICIES);
  const keys = policyKeys(policy);
  const policyArgs: Partial<Record<CachePolicyKey, number>> = {};
  for (const [k, v] of at.pairs('policy args', 12)) {
    const key = keys.find((x) => x === k);
    if (key === undefined) throw at.fail(`${policy} takes no policy arg ${JSON.stringify(k)} (${keys.join(', ')})`, 'policy args');
    if (key !== 'migration_threshold' && v > U32_MAX) throw at.fail(`<${key}> is larger than 32 bits`, 'policy args');
    policyArgs[key] = v;
  }
  at.done();
  const mode = features.find(isMode);
  return makeCache({ metadataDevice, cacheDevice, originDevice, blockSize, mode, metadata2: features.includes('metadata2'), discardPassdown: !features.includes('no_discard_passdown'), policy, policyArgs }, features);
}

/**
 * Parses a cache target's status ('8 7/1024 512 6/64 83 429 24 40 0 6 6 1 writeback 2
 * migration_threshold 2048 smq 0 rw -', or 'Fail', or 'Error'). Throws DmParseError naming
 * the field.
 */
export function parseCacheStatus(text: string): CacheStatus {
  const at = new ArgReader(text, 'cache status');
  const first = at.peek();
  if (first === 'Fail' || first === 'Error') {
    at.word('state');
    return freeze({ type: 'cache', raw: text, known: true, failed: first, extra: at.rest() });
  }
  const metadataBlockSize = at.uint('metadata block size');
  const metadataBlocks = parseRatio(at, 'metadata blocks');
  const cacheBlockSize = at.uint('cache block size');
  const cacheBlocks = parseRatio(at, 'cache blocks');
  const readHits = at.uint('read hits');
  const readMisses = at.uint('read misses');
  const writeHits = at.uint('write hits');
  const writeMisses = at.uint('write misses');
  const demotions = at.uint('demotions');
  const promotions = at.uint('promotions');
  const dirty = at.uint('dirty');
  const features: CacheFeature[] = [];
  for (const w of at.group('features', 8)) {
    const f = FEATURES.find((x) => x === w);
    if (f === undefined) throw at.fail(`unknown feature ${JSON.stringify(w)}`, 'features');
    features.push(f);
  }
  const mode = features.find(isMode);
  if (mode === undefined) throw at.fail('<features> name no write mode', 'features');
  let migrationThreshold: number | undefined;
  for (const [k, v] of at.pairs('core args', 16)) {
    if (k === 'migration_threshold') migrationThreshold = v;
    else throw at.fail(`unknown core arg ${JSON.stringify(k)}`, 'core args');
  }
  if (migrationThreshold === undefined) throw at.fail('<core args> lack migration_threshold', 'core args');
  const policy = at.word('policy');
  const policyArgs: Record<string, number> = {};
  for (const [k, v] of at.pairs('policy args', 64)) policyArgs[k] = v;
  const metadataMode = at.oneOf('metadata mode', ['rw', 'ro'] as const);
  const needsCheck = at.oneOf('needs check', ['needs_check', '-'] as const) === 'needs_check';
  return freeze({
    type: 'cache',
    raw: text,
    known: true,
    failed: false,
    metadataBlockSize,
    metadataBlocks,
    cacheBlockSize,
    cacheBlocks,
    readHits,
    readMisses,
    writeHits,
    writeMisses,
    demotions,
    promotions,
    dirty,
    features,
    mode,
    metadata2: features.includes('metadata2'),
    discardPassdown: !features.includes('no_discard_passdown'),
    migrationThreshold,
    policy,
    policyArgs,
    metadataMode,
    needsCheck,
    extra: at.rest(),
  });
}

/** A cache block index (`<cblock>`) or a half-open range of them (`<cblock begin>-<cblock end>`). */
export type CacheBlockRange =
  | number
  | {
      /** The first cache block of the range (an index into the cache device, in cache blocks). */
      readonly begin: number;
      /** One past the last cache block of the range (excluded: 5-10 is blocks 5 to 9). */
      readonly end: number;
    };

/**
 * Messages a cache takes (`dm.message(name, cacheMessages.migrationThreshold(4096))`). Each
 * returns the message text; the checks throw TypeError/RangeError naming the argument.
 */
export const cacheMessages = Object.freeze({
  /**
   * `invalidate_cblocks [<cblock>|<cblock begin>-<cblock end>]*`: drops cache blocks from the
   * cache without writing them back, for a cache in passthrough mode (the kernel refuses it in
   * other modes, EPERM). Each item is a cache block index or a range `{ begin, end }` with
   * `end` excluded.
   */
  invalidateCblocks(ranges: readonly CacheBlockRange[]): string {
    if (!Array.isArray(ranges)) throw expected('an array of cache blocks and ranges', 'ranges', ranges);
    if (ranges.length === 0) throw expectedRange('at least one cache block or range', 'ranges', ranges);
    const words = ranges.map((r: unknown, i) => {
      const name = `ranges[${i}]`;
      if (typeof r === 'number') return String(sectors(r, name));
      if (typeof r !== 'object' || r === null) throw expected('a cache block or { begin, end }', name, r);
      const o = builderOptions(r as { begin: number; end: number }, name, ['begin', 'end']);
      const begin = sectors(o.begin, `${name}.begin`);
      const end = sectors(o.end, `${name}.end`);
      if (end <= begin) throw expectedRange(`an end after begin (${begin})`, `${name}.end`, end);
      return `${begin}-${end}`;
    });
    return `invalidate_cblocks ${words.join(' ')}`;
  },
  /** `migration_threshold <sectors>`: sets how many 512-byte sectors may be migrating between cache and origin at once. */
  migrationThreshold(sectorCount: number): string {
    return `migration_threshold ${sectors(sectorCount, 'sectorCount')}`;
  },
  /**
   * `<key> <value>`: sets a policy tunable by key: `migration_threshold` (512-byte sectors)
   * for every policy; the old mq tunables only for the mq policy, which takes and ignores them
   * (smq and the cleaner refuse them, EINVAL).
   */
  policyArg(key: CachePolicyKey, value: number): string {
    const k = choice(key, 'key', MQ_KEYS);
    return `${k} ${policyValue(k, value, 'value')}`;
  },
});

/** The cache target type. */
export const cacheModule: TargetModule<CacheTarget, CacheStatus> = { type: 'cache', parse: parseCache, parseStatus: parseCacheStatus };
