/**
 * dm-raid: the MD RAID personalities (raid0/1/4/5/6/10) driven through a device-mapper table,
 * each leg a data device with an optional metadata device (superblock and write-intent
 * bitmap). Pure data: nothing here touches the kernel.
 */
import type { DeviceRef } from '../dev';
import { expected, expectedRange } from '../validate';
import { ArgReader, builderOptions, choice, device, flag, freeze, integer, join, list, optionalInteger, parseRatio, parseUint, powerOfTwo, sectors, typedTarget, type UsedTotal } from './args';
import type { Target, TargetModule, TargetStatusBase } from './types';

/**
 * A RAID type: `raid0` striping; `raid1` mirroring; `raid10` striped mirrors (`raid10_near`,
 * `_far`, `_offset` name the copy placement in the type instead of `raid10_format`); `raid4`
 * dedicated parity on the first leg (dm-raid runs it as md's parity-0 layout, whatever the
 * kernel's doc says of a last parity disk; `raid5_n` is the one with parity last); `raid5_*`
 * rotating parity (`la`/`ra`/`ls`/`rs`:
 * left/right asymmetric/symmetric, `n`: parity on the last leg, for takeover); `raid6_*`
 * double parity (`zr` zero restart, `nr` N restart, `nc` N continue; the `*_6` layouts keep
 * the second parity on the last leg, for takeover).
 */
export type RaidType =
  | 'raid0'
  | 'raid1'
  | 'raid10'
  | 'raid10_near'
  | 'raid10_far'
  | 'raid10_offset'
  | 'raid4'
  | 'raid5_n'
  | 'raid5_la'
  | 'raid5_ra'
  | 'raid5_ls'
  | 'raid5_rs'
  | 'raid6_zr'
  | 'raid6_nr'
  | 'raid6_nc'
  | 'raid6_n_6'
  | 'raid6_la_6'
  | 'raid6_ra_6'
  | 'raid6_ls_6'
  | 'raid6_rs_6';

const RAID_TYPES: readonly RaidType[] = ['raid0', 'raid1', 'raid10', 'raid10_near', 'raid10_far', 'raid10_offset', 'raid4', 'raid5_n', 'raid5_la', 'raid5_ra', 'raid5_ls', 'raid5_rs', 'raid6_zr', 'raid6_nr', 'raid6_nc', 'raid6_n_6', 'raid6_la_6', 'raid6_ra_6', 'raid6_ls_6', 'raid6_rs_6'];

/** How raid10 places its copies: `near` (side by side, the default), `far` (in a later part of each leg), `offset` (in the next stripe). */
export type Raid10Format = 'near' | 'far' | 'offset';
/** How a raid4/5/6 journal works: `writethrough` (closes the write hole) or `writeback` (also caches writes). */
export type RaidJournalMode = 'writethrough' | 'writeback';
/**
 * A sync action: `idle` nothing running, `frozen` syncing stopped and held, `resync`
 * initial or dirty-region sync, `recover` rebuilding legs, `check` reading and counting
 * mismatches, `repair` check and fix, `reshape` changing layout, legs or chunk size, `undef`
 * none of these.
 */
export type RaidSyncAction = 'idle' | 'frozen' | 'resync' | 'recover' | 'check' | 'repair' | 'reshape' | 'undef';
/** A sync action that can be asked for by message (reshape comes from a table reload instead). */
export type RaidSyncMessage = 'idle' | 'frozen' | 'resync' | 'recover' | 'check' | 'repair';

/** The most legs the kernel takes. */
const MAX_DEVICES = 253;
const INT_MAX = 0x7fffffff;
/** md's bitmap counter bound; the kernel takes max_write_behind up to twice it (sectors, kept in KiB). */
const COUNTER_MAX = 16383;

function isRaid1(t: RaidType): boolean {
  return t === 'raid1';
}
function isRaid10(t: RaidType): boolean {
  return t.startsWith('raid10');
}
function isParity(t: RaidType): boolean {
  return t === 'raid4' || t.startsWith('raid5') || t.startsWith('raid6');
}
function minDevices(t: RaidType): number {
  return t.startsWith('raid6') ? 4 : 2;
}
function parityDevices(t: RaidType): number {
  return t.startsWith('raid6') ? 2 : isParity(t) ? 1 : 0;
}

/** One leg, `<meta dev|-> <data dev|->`: its metadata device (or none) and its data device (or none: a missing leg). */
export interface RaidDevice {
  /** `<meta dev>`, 'major:minor' or a /dev path: the leg's superblock and bitmap; null for none (`-`). */
  readonly metadata: string | null;
  /** `<data dev>`, 'major:minor' or a /dev path; null for a missing leg (`-`), which needs `metadata` null too. */
  readonly data: string | null;
}

/** Options of a raid target. */
export interface RaidOptions {
  /** `<raid type>`. */
  raidType: RaidType;
  /**
   * `<chunk size>`, the first raid param: 512-byte sectors, a power of two, at least 8, for every
   * type but raid1, which has none (0, the default for raid1).
   */
  chunkSize?: number;
  /** `<#raid devs> [<meta dev|-> <data dev|->]+`: the legs in order: each a data device and an optional metadata device (null or unset for none). */
  devices: readonly {
    /** `<meta dev>`: the leg's metadata device, or null or unset for `-`. */
    metadata?: DeviceRef | null;
    /** `<data dev>`: the leg's data device, or null for `-` (a missing leg). */
    data: DeviceRef | null;
  }[];
  /** `sync`: resynchronize the whole array at activation. */
  sync?: boolean;
  /** `nosync`: take the array as in sync at activation (for fresh legs). */
  nosync?: boolean;
  /** `rebuild <idx>`: legs (0-based indexes) to rebuild from the others. */
  rebuild?: readonly number[];
  /** `daemon_sleep <ms>`: milliseconds between clearings of the write-intent bitmap. */
  daemonSleep?: number;
  /** `min_recovery_rate <KiB/s>`: KiB/s per leg that resync and recovery keep up even under load. */
  minRecoveryRate?: number;
  /** `max_recovery_rate <KiB/s>`: KiB/s per leg that resync and recovery stay under. */
  maxRecoveryRate?: number;
  /** `write_mostly <idx>` (raid1): legs (0-based indexes) read from only when no other is in sync. */
  writeMostly?: readonly number[];
  /**
   * `max_write_behind <sectors>` (raid1): 512-byte sectors of writes to write-mostly legs that may
   * be outstanding. Linux 6.1 keeps it in KiB and prints the KiB value back as if it were sectors,
   * so a table read back shows half the value given (and a reload of that line halves it again);
   * later kernels take and print the value unchanged.
   */
  maxWriteBehind?: number;
  /** `stripe_cache <stripes>` (raid4/5/6): the size of the stripe cache, a count of stripes. */
  stripeCache?: number;
  /** `region_size <sectors>`: 512-byte sectors per bit of the write-intent bitmap; a power of two. */
  regionSize?: number;
  /** `raid10_copies <#copies>` (raid10): copies of each chunk (2 to 255, the kernel's default 2). */
  raid10Copies?: number;
  /** `raid10_format <near|far|offset>` (raid10): see `Raid10Format`. */
  raid10Format?: Raid10Format;
  /** `delta_disks <N>`: a count of legs to add (positive) or remove (negative) by reshaping. */
  deltaDisks?: number;
  /** `data_offset <sectors>`: the 512-byte sector of each data device where the array's data starts (for reshaping out of place). */
  dataOffset?: number;
  /** `journal_dev <dev>` (raid4/5/6): a device for a journal against the write hole. */
  journalDev?: DeviceRef;
  /** `journal_mode <mode>` (raid4/5/6, with `journalDev`): see `RaidJournalMode`. */
  journalMode?: RaidJournalMode;
}

/**
 * `raid <raid type> <#raid params> <chunk size> [<param>...] <#raid devs> [<meta dev|->
 * <data dev|->]+`: an MD RAID array.
 */
export interface RaidTarget extends Target {
  readonly type: 'raid';
  /** `<raid type>`. */
  readonly raidType: RaidType;
  /** `<chunk size>`: 512-byte sectors (0 for raid1). */
  readonly chunkSize: number;
  /** `<#raid devs> [<meta dev|-> <data dev|->]+`: the legs, in order. */
  readonly devices: readonly RaidDevice[];
  /** `sync`: a full resync at activation (0/1 flag). */
  readonly sync: boolean;
  /** `nosync`: the array is taken as in sync at activation. */
  readonly nosync: boolean;
  /** `rebuild <idx>` (one per leg): 0-based leg indexes to rebuild, ascending. */
  readonly rebuild: readonly number[];
  /** `daemon_sleep <ms>`: milliseconds between bitmap clearings. */
  readonly daemonSleep: number | undefined;
  /** `min_recovery_rate <KiB/s>`: KiB/s per leg. */
  readonly minRecoveryRate: number | undefined;
  /** `max_recovery_rate <KiB/s>`: KiB/s per leg. */
  readonly maxRecoveryRate: number | undefined;
  /** `write_mostly <idx>` (one per leg): 0-based write-mostly leg indexes, ascending. */
  readonly writeMostly: readonly number[];
  /** `max_write_behind <sectors>`: as the table gives it (512-byte sectors; see `RaidOptions.maxWriteBehind` for 6.1's halving). */
  readonly maxWriteBehind: number | undefined;
  /** `stripe_cache <stripes>`: a count of stripes. */
  readonly stripeCache: number | undefined;
  /** `region_size <sectors>`: 512-byte sectors per write-intent bitmap bit. */
  readonly regionSize: number | undefined;
  /** `raid10_copies <#copies>`: copies of each chunk. */
  readonly raid10Copies: number | undefined;
  /** `raid10_format <near|far|offset>`. */
  readonly raid10Format: Raid10Format | undefined;
  /** `delta_disks <N>`: legs added (positive) or removed (negative) by the reshape. */
  readonly deltaDisks: number | undefined;
  /** `data_offset <sectors>`: where the data starts on each data device, 512-byte sectors. */
  readonly dataOffset: number | undefined;
  /** `journal_dev <dev>`: 'major:minor' or a /dev path. */
  readonly journalDev: string | undefined;
  /** `journal_mode <mode>`: see `RaidJournalMode`. */
  readonly journalMode: RaidJournalMode | undefined;
}

/**
 * The health of a leg (or of the journal), from the kernel's letter: `A` alive and in sync,
 * `a` alive but not in sync (being resynchronized or recovered), `D` dead (failed), `-` no
 * device.
 */
export type RaidDeviceHealth = 'in-sync' | 'out-of-sync' | 'dead' | 'missing';

const HEALTH: Readonly<Record<string, RaidDeviceHealth>> = { A: 'in-sync', a: 'out-of-sync', D: 'dead', '-': 'missing' };

/** The journal's part of a raid status: none, or its mode (its letter A/a), or dead (D). */
export type RaidJournalHealth = 'none' | 'writethrough' | 'writeback' | 'dead';

/**
 * The status of a raid target: `<raid type> <#devices> <health chars> <sync ratio>
 * <sync action> <mismatch cnt> <data offset> <journal char>`.
 */
export interface RaidStatus extends TargetStatusBase {
  readonly type: 'raid';
  readonly known: true;
  /** `<raid type>` (the one being reshaped to, during a takeover). */
  readonly raidType: RaidType;
  /** `<#devices> <health chars>`: each leg's health, in order (one letter per leg). */
  readonly devices: readonly RaidDeviceHealth[];
  /**
   * `<sync ratio>`: progress of the sync action in 512-byte sectors per leg, done and in all
   * (resync, recovery or reshape; the array is in sync when they are equal and the action is idle).
   */
  readonly syncRatio: UsedTotal;
  /** `<sync action>`: the sync action running (see `RaidSyncAction`). */
  readonly syncAction: RaidSyncAction;
  /** `<mismatch cnt>`: discrepancies found by the last `check`, counted by md in 512-byte sectors (0 when the last action was not check). */
  readonly mismatchCount: number;
  /** `<data offset>`: the 512-byte sector of the data devices where the array's data starts. */
  readonly dataOffset: number;
  /** `<journal char>`: the journal device's state (`-`, `none`, without one). */
  readonly journal: RaidJournalHealth;
  /** Words after the known fields (a newer kernel's), kept as given. */
  readonly extra: readonly string[];
}

function indexes(value: unknown, name: string, count: number): number[] {
  if (value === undefined) return [];
  const out = list(value, name, (v, n) => integer(v, n, 0, count - 1), 0, count);
  for (let i = 0; i < out.length; i++) if (out.indexOf(out[i] ?? -1) !== i) throw expectedRange('distinct leg indexes', `${name}[${i}]`, out[i]);
  return out.sort((a, b) => a - b);
}

type RaidOptionKey = Exclude<keyof RaidOptions, 'raidType' | 'chunkSize' | 'devices'>;

const COMMON: readonly RaidOptionKey[] = ['sync', 'nosync', 'rebuild', 'daemonSleep', 'minRecoveryRate', 'maxRecoveryRate', 'regionSize', 'deltaDisks', 'dataOffset'];

/** The optional params the kernel takes for each RAID level (it refuses the others: "Invalid flags combination"). */
function validKeys(t: RaidType): readonly RaidOptionKey[] {
  if (t === 'raid0') return ['dataOffset'];
  if (isRaid1(t)) return [...COMMON, 'writeMostly', 'maxWriteBehind'];
  if (isRaid10(t)) return [...COMMON, 'raid10Copies', 'raid10Format'];
  const parity: RaidOptionKey[] = [...COMMON, 'stripeCache', 'journalDev', 'journalMode'];
  // raid6 may not be taken as in sync: its two syndromes are not known to agree.
  return t.startsWith('raid6') ? parity.filter((k) => k !== 'nosync') : parity;
}

/**
 * Builds a raid target. The params are in the order the kernel prints them back: chunk size,
 * sync, nosync, rebuild, daemon_sleep, min/max_recovery_rate, write_mostly, max_write_behind,
 * stripe_cache, region_size, raid10_copies, raid10_format, delta_disks, data_offset,
 * journal_dev, journal_mode, then the legs. Throws TypeError/RangeError naming the field.
 */
export function raid(options: RaidOptions): RaidTarget {
  const o = builderOptions(options, 'raid options', [
    'raidType',
    'chunkSize',
    'devices',
    'sync',
    'nosync',
    'rebuild',
    'daemonSleep',
    'minRecoveryRate',
    'maxRecoveryRate',
    'writeMostly',
    'maxWriteBehind',
    'stripeCache',
    'regionSize',
    'raid10Copies',
    'raid10Format',
    'deltaDisks',
    'dataOffset',
    'journalDev',
    'journalMode',
  ]);
  const raidType = choice(o.raidType, 'raid.raidType', RAID_TYPES);
  let chunkSize: number;
  if (isRaid1(raidType)) {
    chunkSize = o.chunkSize === undefined ? 0 : integer(o.chunkSize, 'raid.chunkSize', 0, 0);
  } else {
    if (o.chunkSize === undefined) throw expected(`a chunk size for ${raidType}`, 'raid.chunkSize', o.chunkSize);
    chunkSize = powerOfTwo(o.chunkSize, 'raid.chunkSize', 8, 2 ** 30);
  }
  const devices = list(
    o.devices,
    'raid.devices',
    (d, name) => {
      const dv = builderOptions(d as { metadata?: DeviceRef | null; data: DeviceRef | null }, name, ['metadata', 'data']);
      const metadata = dv.metadata === undefined || dv.metadata === null ? null : device(dv.metadata, `${name}.metadata`);
      if (!('data' in dv)) throw expected('a device or null', `${name}.data`, undefined);
      const data = dv.data === null ? null : device(dv.data, `${name}.data`);
      if (data === null && metadata !== null) throw expectedRange('a data device when there is a metadata device (the kernel refuses metadata without data)', `${name}.data`, null);
      return { metadata, data };
    },
    minDevices(raidType),
    MAX_DEVICES,
  );
  const n = devices.length;
  const valid = validKeys(raidType);
  for (const k of Object.keys(o)) {
    const key = k as keyof RaidOptions;
    if (key === 'raidType' || key === 'chunkSize' || key === 'devices') continue;
    const v: unknown = o[key];
    if (v === undefined || v === false || (Array.isArray(v) && v.length === 0)) continue;
    if (!valid.includes(key)) throw expectedRange(`no value (${raidType} does not take it)`, `raid.${key}`, v);
  }
  const sync = flag(o.sync, 'raid.sync');
  const nosync = flag(o.nosync, 'raid.nosync');
  if (sync && nosync) throw expectedRange('false when sync is true (they exclude each other)', 'raid.nosync', nosync);
  const rebuild = indexes(o.rebuild, 'raid.rebuild', n);
  for (const i of rebuild) if (devices[i]?.data === null) throw expectedRange('the index of a leg that has a data device', 'raid.rebuild', i);
  const daemonSleep = optionalInteger(o.daemonSleep, 'raid.daemonSleep', 1, INT_MAX);
  const minRecoveryRate = optionalInteger(o.minRecoveryRate, 'raid.minRecoveryRate', 0, INT_MAX);
  const maxRecoveryRate = optionalInteger(o.maxRecoveryRate, 'raid.maxRecoveryRate', 0, INT_MAX);
  if (minRecoveryRate !== undefined && maxRecoveryRate !== undefined && minRecoveryRate > maxRecoveryRate) throw expectedRange(`a rate of at least minRecoveryRate (${minRecoveryRate})`, 'raid.maxRecoveryRate', maxRecoveryRate);
  const writeMostly = indexes(o.writeMostly, 'raid.writeMostly', n);
  const maxWriteBehind = optionalInteger(o.maxWriteBehind, 'raid.maxWriteBehind', 0, COUNTER_MAX * 2 + 1);
  const stripeCache = optionalInteger(o.stripeCache, 'raid.stripeCache', 0, INT_MAX);
  const regionSize = o.regionSize === undefined ? undefined : powerOfTwo(o.regionSize, 'raid.regionSize', 1, 2 ** 30);
  const raid10Copies = optionalInteger(o.raid10Copies, 'raid.raid10Copies', 2, Math.min(255, n));
  const raid10Format = o.raid10Format === undefined ? undefined : choice(o.raid10Format, 'raid.raid10Format', ['near', 'far', 'offset'] as const);
  const deltaBound = MAX_DEVICES - minDevices(raidType);
  const deltaDisks = optionalInteger(o.deltaDisks, 'raid.deltaDisks', -deltaBound, deltaBound);
  if (deltaDisks === 0) throw expectedRange(`a non-zero integer from ${-deltaBound} to ${deltaBound}`, 'raid.deltaDisks', deltaDisks);
  const dataOffset = o.dataOffset === undefined ? undefined : sectors(o.dataOffset, 'raid.dataOffset');
  const journalDev = o.journalDev === undefined ? undefined : device(o.journalDev, 'raid.journalDev');
  if (o.journalMode !== undefined && journalDev === undefined) throw expectedRange('no value without journalDev', 'raid.journalMode', o.journalMode);
  const journalMode = o.journalMode === undefined ? undefined : choice(o.journalMode, 'raid.journalMode', ['writethrough', 'writeback'] as const);
  const one = (key: string, v: string | number | undefined): (string | number)[] => (v === undefined ? [] : [key, v]);
  const raidParams: (string | number)[] = [
    chunkSize,
    ...(sync ? ['sync'] : []),
    ...(nosync ? ['nosync'] : []),
    ...rebuild.flatMap((i) => ['rebuild', i]),
    ...one('daemon_sleep', daemonSleep),
    ...one('min_recovery_rate', minRecoveryRate),
    ...one('max_recovery_rate', maxRecoveryRate),
    ...writeMostly.flatMap((i) => ['write_mostly', i]),
    ...one('max_write_behind', maxWriteBehind),
    ...one('stripe_cache', stripeCache),
    ...one('region_size', regionSize),
    ...one('raid10_copies', raid10Copies),
    ...one('raid10_format', raid10Format),
    ...one('delta_disks', deltaDisks),
    ...one('data_offset', dataOffset),
    ...one('journal_dev', journalDev),
    ...one('journal_mode', journalMode),
  ];
  const params = join([raidType, raidParams.length, ...raidParams, n, ...devices.flatMap((d) => [d.metadata ?? '-', d.data ?? '-'])]);
  return typedTarget({
    type: 'raid',
    raidType,
    chunkSize,
    devices,
    sync,
    nosync,
    rebuild,
    daemonSleep,
    minRecoveryRate,
    maxRecoveryRate,
    writeMostly,
    maxWriteBehind,
    stripeCache,
    regionSize,
    raid10Copies,
    raid10Format,
    deltaDisks,
    dataOffset,
    journalDev,
    journalMode,
    params,
  });
}

const NUMERIC_KEYS = ['rebuild', 'daemon_sleep', 'min_recovery_rate', 'max_recovery_rate', 'write_mostly', 'max_write_behind', 'stripe_cache', 'region_size', 'raid10_copies', 'delta_disks', 'data_offset'] as const;

/**
 * Parses raid parameters ('raid1 3 0 region_size 1024 2 7:6 7:7 7:8 7:9'), the optional
 * params in any order (the kernel prints them back in its own). A raid1 chunk size other than
 * 0 is read as 0, as the kernel does. Throws DmParseError naming the field.
 */
export function parseRaid(params: string): RaidTarget {
  const at = new ArgReader(params, 'raid');
  const raidType = at.oneOf('raid type', RAID_TYPES);
  const count = at.uint('raid params count', 1, 2048);
  if (count > at.remaining) throw at.fail(`<raid params count> says ${count} but only ${at.remaining} word(s) follow`, 'raid params count');
  const words = at.take(count);
  const p = new ArgReader(words.join(' '), 'raid params');
  const chunk = p.uint('chunk size', 0, 2 ** 31);
  const o: RaidOptions = { raidType, chunkSize: isRaid1(raidType) ? 0 : chunk, devices: [] };
  const rebuild: number[] = [];
  const writeMostly: number[] = [];
  const seen = new Set<string>();
  while (p.remaining > 0) {
    const key = p.word('raid param');
    if (key === 'sync' || key === 'nosync') {
      if (seen.has(key)) throw at.fail(`${key} given twice`, key);
      seen.add(key);
      o[key] = true;
      continue;
    }
    if (key !== 'rebuild' && key !== 'write_mostly') {
      if (seen.has(key)) throw at.fail(`${key} given twice`, key);
      seen.add(key);
    }
    if (key === 'raid10_format') {
      o.raid10Format = p.oneOf(key, ['near', 'far', 'offset'] as const);
    } else if (key === 'journal_mode') {
      o.journalMode = p.oneOf(key, ['writethrough', 'writeback'] as const);
    } else if (key === 'journal_dev') {
      o.journalDev = p.device(key);
    } else if (key === 'delta_disks') {
      o.deltaDisks = p.int(key, -(MAX_DEVICES - 1), MAX_DEVICES - 1);
    } else {
      const k = NUMERIC_KEYS.find((x) => x === key);
      if (k === undefined) throw at.fail(`unknown raid param ${JSON.stringify(key)}`, 'raid params');
      const v = parseUint(p.word(k), k, 0, Number.MAX_SAFE_INTEGER, at);
      if (k === 'rebuild') rebuild.push(v);
      else if (k === 'write_mostly') writeMostly.push(v);
      else if (k === 'daemon_sleep') o.daemonSleep = v;
      else if (k === 'min_recovery_rate') o.minRecoveryRate = v;
      else if (k === 'max_recovery_rate') o.maxRecoveryRate = v;
      else if (k === 'max_write_behind') o.maxWriteBehind = v;
      else if (k === 'stripe_cache') o.stripeCache = v;
      else if (k === 'region_size') o.regionSize = v;
      else if (k === 'raid10_copies') o.raid10Copies = v;
      else o.dataOffset = v;
    }
  }
  if (rebuild.length > 0) o.rebuild = rebuild;
  if (writeMostly.length > 0) o.writeMostly = writeMostly;
  const n = at.uint('raid devs', 1, MAX_DEVICES);
  const devices = [];
  for (let i = 0; i < n; i++) devices.push({ metadata: at.deviceOrDash(`device ${i} metadata`), data: at.deviceOrDash(`device ${i} data`) });
  at.done();
  o.devices = devices;
  try {
    return raid(o);
  } catch (e) {
    // A well-formed line that breaks a rule of the kernel's (an index out of range, a param
    // for another RAID type): name the rule, as a parse error of this text.
    throw at.fail(e instanceof Error ? e.message : String(e), 'params');
  }
}

/** Parses a raid target's status ('raid1 2 AA 16384/16384 idle 0 0 -'). Throws DmParseError naming the field. */
export function parseRaidStatus(text: string): RaidStatus {
  const at = new ArgReader(text, 'raid status');
  const raidType = at.oneOf('raid type', RAID_TYPES);
  const count = at.uint('devices', 1, MAX_DEVICES);
  const letters = at.word('health');
  if (letters.length !== count || !letters.split('').every((c) => HEALTH[c] !== undefined)) throw at.fail(`<health> is one of A, a, D, - per leg, not ${JSON.stringify(letters)}`, 'health');
  const devices = letters.split('').map((c) => HEALTH[c] ?? 'missing');
  const syncRatio = parseRatio(at, 'sync ratio');
  const syncAction = at.oneOf('sync action', ['idle', 'frozen', 'resync', 'recover', 'check', 'repair', 'reshape', 'undef'] as const);
  const mismatchCount = at.uint('mismatch count');
  const dataOffset = at.uint('data offset');
  const j = at.oneOf('journal', ['-', 'A', 'a', 'D'] as const);
  const journal: RaidJournalHealth = j === '-' ? 'none' : j === 'A' ? 'writethrough' : j === 'a' ? 'writeback' : 'dead';
  return freeze({ type: 'raid', raw: text, known: true, raidType, devices, syncRatio, syncAction, mismatchCount, dataOffset, journal, extra: at.rest() });
}

/**
 * Messages a raid target takes: sync actions (`dm.message(name,
 * raidMessages.syncAction('check'))`). `idle` stops a running action, `frozen` stops it and holds
 * further ones; the others start an action and are refused (EBUSY) unless the array is idle.
 */
export const raidMessages = Object.freeze({
  /** `<action>`: the message that asks for `action`. */
  syncAction(action: RaidSyncMessage): string {
    return choice(action, 'action', ['idle', 'frozen', 'resync', 'recover', 'check', 'repair'] as const);
  },
  /** `idle`: stops the running sync action. */
  idle(): string {
    return 'idle';
  },
  /** `frozen`: stops the running sync action and holds off new ones until another message. */
  frozen(): string {
    return 'frozen';
  },
  /** `resync`: starts a resync of the regions the bitmap marks dirty. */
  resync(): string {
    return 'resync';
  },
  /** `recover`: starts recovery (rebuild) of legs not in sync. */
  recover(): string {
    return 'recover';
  },
  /** `check`: reads every stripe and counts mismatches (the status's mismatch count, in sectors), changing nothing. */
  check(): string {
    return 'check';
  },
  /** `repair`: like check, and rewrites what does not match. */
  repair(): string {
    return 'repair';
  },
});

/** The raid target type. */
export const raidModule: TargetModule<RaidTarget, RaidStatus> = {
  type: 'raid',
  parse: parseRaid,
  parseStatus: parseRaidStatus,
  // The kernel's rule: the row's length splits evenly among the data legs (times the copies, for raid10).
  checkLength(target, length, name) {
    const t = parseRaid(target.params);
    if (isRaid1(t.raidType) || t.deltaDisks !== undefined) return;
    const data = t.devices.length - parityDevices(t.raidType);
    const scaled = isRaid10(t.raidType) ? length * (t.raid10Copies ?? 2) : length;
    if (scaled % data !== 0) throw expectedRange(`a length that divides evenly among ${data} data legs${isRaid10(t.raidType) ? ` (times ${t.raid10Copies ?? 2} copies)` : ''}`, name, length);
  },
};
