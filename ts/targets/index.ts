/**
 * The typed targets: one module per kernel target type (`ts/targets/<type>.ts`), registered
 * here by kernel type name. Pure data: nothing here touches the kernel.
 */
import { freeze } from './args';
import { errorModule, error, zero, zeroModule, type ErrorStatus, type ZeroStatus } from './simple';
import { ebs, ebsModule, type EbsStatus } from './ebs';
import { linear, linearModule, type LinearStatus } from './linear';
import { logWrites, logWritesModule, type LogWritesStatus } from './log-writes';
import { striped, stripedModule, type StripedStatus } from './striped';
import { switchModule, switchTarget, type SwitchStatus } from './switch';
import { vdo, vdoModule, type VdoStatus } from './vdo';
import { zoned, zonedModule, type ZonedStatus } from './zoned';
import { clone, cloneModule, type CloneStatus } from './clone';
import { mirror, mirrorModule, type MirrorStatus } from './mirror';
import { multipath, multipathModule, type MultipathStatus } from './multipath';
import { cache, cacheModule, type CacheStatus } from './cache';
import { raid, raidModule, type RaidStatus } from './raid';
import { writecache, writecacheModule, type WritecacheStatus } from './writecache';
import { era, eraModule, type EraStatus } from './era';
import { dust, dustModule, type DustStatus } from './dust';
import { unstriped, unstripedModule, type UnstripedStatus } from './unstriped';
import { snapshotOrigin, snapshotOriginModule, type SnapshotOriginStatus } from './snapshot-origin';
import { snapshot, snapshotModule, type SnapshotStatus } from './snapshot';
import { snapshotMerge, snapshotMergeModule, type SnapshotMergeStatus } from './snapshot-merge';
import { flakey, flakeyModule, type FlakeyStatus } from './flakey';
import { delay, delayModule, type DelayStatus } from './delay';
import { crypt, cryptModule, type CryptStatus } from './crypt';
import { integrity, integrityModule, type IntegrityStatus } from './integrity';
import { verity, verityModule, type VerityStatus } from './verity';
import { thinPool, thinPoolModule, type ThinPoolStatus } from './thin-pool';
import { thin, thinModule, type ThinStatus } from './thin';
import type { RawTargetStatus, Target, TargetModule, TargetParser } from './types';

export type { RawTargetStatus, Target, TargetModule, TargetParser, TargetStatusBase } from './types';
export type { UsedTotal } from './args';
export type { EbsOptions, EbsStatus, EbsTarget } from './ebs';
export type { LinearOptions, LinearStatus, LinearTarget } from './linear';
export type { LogWritesOptions, LogWritesStatus, LogWritesTarget } from './log-writes';
export { logWritesMessages } from './log-writes';
export type { ErrorStatus, ErrorTarget, ZeroStatus, ZeroTarget } from './simple';
export type { Stripe, StripedOptions, StripedStatus, StripedTarget } from './striped';
export type { RegionMapping, SwitchOptions, SwitchPath, SwitchStatus, SwitchTarget } from './switch';
export { compressRegionMappings, switchMessages } from './switch';
export type { VdoOptions, VdoStatus, VdoTarget } from './vdo';
export { VDO_OPTION_KEYS, vdoMessages } from './vdo';
export type { ZoneCount, ZonedOptions, ZonedStatus, ZonedTarget } from './zoned';
export { zonedMessages } from './zoned';
export type { CloneCoreKey, CloneFailedStatus, CloneFeature, CloneOptions, CloneRunningStatus, CloneStatus, CloneTarget } from './clone';
export { cloneMessages } from './clone';
export type { CacheBlockRange, CacheFailedStatus, CacheFeature, CacheMode, CacheOptions, CachePolicy, CachePolicyKey, CacheRunningStatus, CacheStatus, CacheTarget } from './cache';
export { cacheMessages } from './cache';
export type { Raid10Format, RaidDevice, RaidDeviceHealth, RaidJournalHealth, RaidJournalMode, RaidOptions, RaidStatus, RaidSyncAction, RaidSyncMessage, RaidTarget, RaidType } from './raid';
export { raidMessages } from './raid';
export type { WritecacheMode, WritecacheOptions, WritecacheStats, WritecacheStatus, WritecacheTarget } from './writecache';
export { writecacheMessages } from './writecache';
export type { EraFailedStatus, EraOptions, EraRunningStatus, EraStatus, EraTarget } from './era';
export { eraMessages } from './era';
export type { DustBlockQuery, DustMode, DustOptions, DustStatus, DustTarget } from './dust';
export { dustMessages, parseDustClearBadBlocks, parseDustCountBadBlocks, parseDustListBadBlocks, parseDustQueryBlock } from './dust';
export type { UnstripedOptions, UnstripedStatus, UnstripedTarget } from './unstriped';
export type { SnapshotOriginOptions, SnapshotOriginStatus, SnapshotOriginTarget } from './snapshot-origin';
export type { SnapshotFailedStatus, SnapshotFailedStatusOf, SnapshotFeature, SnapshotFields, SnapshotKind, SnapshotMergeOptions, SnapshotMergePersistence, SnapshotMergeTarget, SnapshotOptions, SnapshotPersistence, SnapshotState, SnapshotStatus, SnapshotTarget, SnapshotValidStatus, SnapshotValidStatusOf } from './snapshot';
export { SNAPSHOT_MAX_CHUNK } from './snapshot';
export type { SnapshotMergeFailedStatus, SnapshotMergeStatus, SnapshotMergeValidStatus } from './snapshot-merge';
export type {
  MultipathGroup,
  MultipathGroupOptions,
  MultipathGroupState,
  MultipathGroupStatus,
  MultipathOptions,
  MultipathPath,
  MultipathPathHealth,
  MultipathPathOptions,
  MultipathPathStatus,
  MultipathQueueMode,
  MultipathSelector,
  MultipathStatus,
  MultipathTarget,
} from './multipath';
export { multipathMessages } from './multipath';
export type { FlakeyCorruptBioByte, FlakeyCorruptDirection, FlakeyOptions, FlakeyStatus, FlakeyTarget } from './flakey';
export { FLAKEY_PROBABILITY_BASE } from './flakey';
export type { DelayClass, DelayClassOptions, DelayOptions, DelayStatus, DelayTarget } from './delay';
export type { CryptCapiCipherOptions, CryptCipher, CryptFlag, CryptIntegrity, CryptIvMode, CryptKey, CryptKeyInput, CryptKeyringKeyOptions, CryptKeyringType, CryptLegacyCipherOptions, CryptOptions, CryptStatus, CryptTarget } from './crypt';
export { cryptKeySizes, cryptMaskedParams, cryptMessages, maskCryptKeys, parseCryptCipher } from './crypt';
export type { IntegrityAlgorithm, IntegrityAlgorithmOption, IntegrityMode, IntegrityOptions, IntegrityStatus, IntegrityTarget } from './integrity';
export { INTEGRITY_MAX_TAG_SIZE, integrityHoldsKey, integrityMaskedParams } from './integrity';
export type { VerityCorruptionMode, VerityErrorMode, VerityFec, VerityFecOptions, VerityOptions, VerityStatus, VerityTarget } from './verity';
export type { ThinPoolDiscard, ThinPoolFailedStatus, ThinPoolFeature, ThinPoolMode, ThinPoolOptions, ThinPoolRunningStatus, ThinPoolStatus, ThinPoolTarget } from './thin-pool';
export { THIN_MAX_DEVICE_ID, thinPoolMessages } from './thin-pool';
export type { ThinFailedStatus, ThinFailedTarget, ThinOptions, ThinRunningStatus, ThinStatus, ThinTarget } from './thin';
export type { MirrorLeg, MirrorLegHealth, MirrorLog, MirrorLogOptions, MirrorLogStatus, MirrorOptions, MirrorStatus, MirrorSync, MirrorTarget } from './mirror';

/** Builders of typed targets, named after the kernel's target types (camelCase). */
export const targets = Object.freeze({
  /** `ebs <device> <offset> <emulated sectors> [<underlying sectors>]` (parse-only in the sandbox). */
  ebs,
  /** `linear <device> <offset>`. */
  linear,
  /** `log-writes <device> <log device>`. */
  logWrites,
  /** `striped <#stripes> <chunk size> [<device> <offset>]+`. */
  striped,
  /** `switch <#paths> <region size> 0 [<device> <offset>]+`. */
  switch: switchTarget,
  /** `vdo V4 <storage> <blocks> <min I/O> <cache blocks> <era length> [<key> <value>]*` (parse-only in the sandbox). */
  vdo,
  /** `zero`. */
  zero,
  /** `zoned <device>...` (parse-only in the sandbox). */
  zoned,
  /** `error`. */
  error,
  /** `clone <metadata dev> <destination dev> <source dev> <region size> [<#features> <feature>* [<#core args> <key> <value>...]]`. */
  clone,
  /** `mirror <log type> <#log args> <log args> <#legs> [<device> <offset>]+ [<#features> <feature>+]`. */
  mirror,
  /**
   * `multipath <#features> [<feature>]* <#hw handler args> [<hw handler> [<arg>]*] <#groups> <initial group>
   * [<selector> <#selector args> [<arg>]* <#paths> <#path args> [<path> [<arg>]*]+]+`.
   */
  multipath,
  /** `cache <metadata dev> <cache dev> <origin dev> <block size> <#features> [<feature>]* <policy> <#policy args> [<key> <value>]*`. */
  cache,
  /** `raid <raid type> <#raid params> <chunk size> [<param>...] <#raid devs> [<meta dev|-> <data dev|->]+`. */
  raid,
  /** `writecache <p|s> <origin> <cache> <block size> <#optional args> [<arg>]*`. */
  writecache,
  /** `era <metadata dev> <origin dev> <block size>`. */
  era,
  /** `dust <device> <offset> <blksz>`. */
  dust,
  /** `unstriped <number of stripes> <chunk size> <stripe #> <dev_path> <offset>`. */
  unstriped,
  /** `snapshot-origin <origin>`. */
  snapshotOrigin,
  /** `snapshot <origin> <COW device> <P|PO|N> <chunk size> [<#features> <feature>...]`. */
  snapshot,
  /** `snapshot-merge <origin> <COW device> <P|PO> <chunk size> [<#features> <feature>...]`. */
  snapshotMerge,
  /** `flakey <dev path> <offset> <up interval> <down interval> [<num_features> [<feature arguments>]]`. */
  flakey,
  /** `delay <device> <offset> <delay> [<write_device> <write_offset> <write_delay> [<flush_device> <flush_offset> <flush_delay>]]`. */
  delay,
  /** `crypt <cipher> <key> <iv_offset> <device path> <offset> [<#opt_params> <opt_params>]` (create it with `{ secure: true }`). */
  crypt,
  /** `integrity <dev> <offset> <tag size|-> <J|B|D|R|I> <#opt params> [<opt param>]*`. */
  integrity,
  /** `verity <version> <dev> <hash dev> <data block size> <hash block size> <#data blocks> <hash start block> <algorithm> <digest> <salt|-> [<#opt params> <opt param>*]` (load it read-only). */
  verity,
  /** `thin-pool <metadata dev> <data dev> <data block size> <low water mark> [<#feature args> [<arg>]*]`. */
  thinPool,
  /** `thin <pool dev> <dev id> [<external origin dev>]`. */
  thin,
});

const MODULES: readonly TargetModule<Target, KnownTargetStatus>[] = [
  cacheModule,
  cloneModule,
  dustModule,
  cryptModule,
  ebsModule,
  eraModule,
  delayModule,
  ebsModule,
  flakeyModule,
  integrityModule,
  linearModule,
  logWritesModule,
  mirrorModule,
  multipathModule,
  raidModule,
  snapshotModule,
  snapshotMergeModule,
  snapshotOriginModule,
  stripedModule,
  switchModule,
  unstripedModule,
  thinModule,
  thinPoolModule,
  vdoModule,
  verityModule,
  writecacheModule,
  zeroModule,
  zonedModule,
  errorModule,
];

/** The modules of the target types the library models, by kernel type name. */
export const targetModules: Readonly<Record<string, TargetModule<Target, KnownTargetStatus>>> = Object.freeze(Object.fromEntries(MODULES.map((m) => [m.type, m])));

/** Parsers of the target types the library models, by kernel type name. */
export const targetParsers: Readonly<Record<string, TargetParser>> = Object.freeze(Object.fromEntries(MODULES.map((m) => [m.type, m.parse])));

/** A typed status, one member per target type the library models (narrow on `type`). */
export type KnownTargetStatus =
  | CacheStatus
  | CloneStatus
  | DustStatus
  | CryptStatus
  | EbsStatus
  | EraStatus
  | DelayStatus
  | FlakeyStatus
  | IntegrityStatus
  | LinearStatus
  | LogWritesStatus
  | MirrorStatus
  | MultipathStatus
  | RaidStatus
  | SnapshotStatus
  | SnapshotMergeStatus
  | SnapshotOriginStatus
  | StripedStatus
  | SwitchStatus
  | UnstripedStatus
  | ThinStatus
  | ThinPoolStatus
  | VdoStatus
  | VerityStatus
  | WritecacheStatus
  | ZeroStatus
  | ZonedStatus
  | ErrorStatus;

/**
 * A row's status: typed (`known: true`, narrow on `type`) for the target types the library
 * models, raw words otherwise (`known: false`).
 */
export type TargetStatus = KnownTargetStatus | RawTargetStatus;

/** A raw status: the words as the kernel gave them. */
export function rawStatus(type: string, text: string): RawTargetStatus {
  const trimmed = text.trim();
  return freeze({ type, raw: text, known: false, words: trimmed === '' ? [] : trimmed.split(/\s+/) });
}

/**
 * The typed status of one row, from its type and the kernel's status text. A type the library
 * does not model gives a raw status; so does text it cannot read when `strict` is false (a
 * newer kernel's shape); when `strict` (the default), such text throws DmParseError.
 */
export function parseTargetStatus(type: string, text: string, strict = true): TargetStatus {
  const m = targetModules[type];
  if (m === undefined) return rawStatus(type, text);
  if (strict) return m.parseStatus(text);
  try {
    return m.parseStatus(text);
  } catch {
    return rawStatus(type, text);
  }
}
