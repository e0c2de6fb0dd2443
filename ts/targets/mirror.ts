/**
 * dm-mirror (dm-raid1): every write goes to each leg, reads to any in-sync leg, with a dirty
 * region log (kept in memory, `core`, or on a device, `disk`) saying which regions may differ.
 * Pure data: nothing here touches the kernel.
 */
import type { DeviceRef } from '../dev';
import { expected, expectedRange } from '../validate';
import { ArgReader, U32_MAX, builderOptions, choice, counted, device, flag, freeze, join, list, parseRatio, powerOfTwo, sectors, typedTarget, type UsedTotal } from './args';
import type { Target, TargetModule, TargetStatusBase } from './types';

/** The kernel's bounds on the number of legs. */
const MIN_LEGS = 2;
const MAX_LEGS = 9;

/**
 * How the log treats regions at activation: `sync` copies every region again (a full
 * resync); `nosync` takes every region as in sync (for a mirror over fresh or zeroed legs);
 * neither copies the regions the log marks out of sync.
 */
export type MirrorSync = 'sync' | 'nosync';

/** Options of a mirror's log: in memory (`core`, lost at deactivation) or on a device (`disk`). */
export type MirrorLogOptions =
  | {
      /** `<log type>` `core`: the log is kept in memory; log args `<region size> [sync|nosync]`. */
      type: 'core';
      /** `<region size>`: the unit of resync, in 512-byte sectors; a power of two. */
      regionSize: number;
      /** `sync` or `nosync` (see `MirrorSync`); default: neither. */
      sync?: MirrorSync;
    }
  | {
      /** `<log type>` `disk`: the log is kept on a device; log args `<log device> <region size> [sync|nosync]`. */
      type: 'disk';
      /** `<log device>`: the device holding the log: 'major:minor', a /dev path, or { major, minor }. */
      device: DeviceRef;
      /** `<region size>`: the unit of resync, in 512-byte sectors; a power of two. */
      regionSize: number;
      /** `sync` or `nosync` (see `MirrorSync`); default: neither. */
      sync?: MirrorSync;
    };

/** A mirror's log, as a table gives it. */
export type MirrorLog =
  | {
      /** `<log type>` `core`: in memory. */
      readonly type: 'core';
      /** `<region size>`: the unit of resync, in 512-byte sectors. */
      readonly regionSize: number;
      /** `sync`, `nosync`, or undefined when the log args name neither. */
      readonly sync: MirrorSync | undefined;
    }
  | {
      /** `<log type>` `disk`: on a device. */
      readonly type: 'disk';
      /** `<log device>`, 'major:minor' or a /dev path. */
      readonly device: string;
      /** `<region size>`: the unit of resync, in 512-byte sectors. */
      readonly regionSize: number;
      /** `sync`, `nosync`, or undefined when the log args name neither. */
      readonly sync: MirrorSync | undefined;
    };

/** One leg of a mirror: a device and the sector on it where the leg starts. */
export interface MirrorLeg {
  /** `<device>`, 'major:minor' or a /dev path. */
  readonly device: string;
  /** `<offset>`: start sector on `device` (512-byte sectors). */
  readonly offset: number;
}

/** Options of a mirror target. */
export interface MirrorOptions {
  /** `<log type> <#log args> <log args>`: the dirty region log. */
  log: MirrorLogOptions;
  /** `<#legs> [<device> <offset>]+`: the legs, 2 to 9; the first is the primary (reads go there while the mirror resyncs). */
  legs: readonly {
    /** `<device>`: the leg's device. */
    device: DeviceRef;
    /** `<offset>`: the leg's start sector on `device` (512-byte sectors). */
    offset: number;
  }[];
  /**
   * Feature `handle_errors`: on a leg's failure, stop and wait for userspace (dmeventd) to reload
   * the table without it; writes block until then. Without it, a failed leg is marked and ignored.
   */
  handleErrors?: boolean;
  /** Feature `keep_log`: keep using the log device when it fails (needs `handleErrors`). */
  keepLog?: boolean;
}

/**
 * `mirror <log type> <#log args> <log args> <#legs> [<device> <offset>]+ [<#features>
 * <feature>+]`: the same data on every leg.
 */
export interface MirrorTarget extends Target {
  readonly type: 'mirror';
  /** `<log type> <#log args> <log args>`: the dirty region log. */
  readonly log: MirrorLog;
  /** `<#legs> [<device> <offset>]+`: the legs, in order (the first is the primary). */
  readonly legs: readonly MirrorLeg[];
  /** Feature `handle_errors`: a failed leg waits for userspace to replace it. */
  readonly handleErrors: boolean;
  /** Feature `keep_log`: a failed log device stays in use. */
  readonly keepLog: boolean;
}

/**
 * The health of a leg, from the kernel's letter: `A` alive, `F` a flush failed, `D` a write
 * failed, `S` resynchronizing it failed, `R` a read failed, `U` a failure of no known kind.
 */
export type MirrorLegHealth = 'alive' | 'flush-failed' | 'write-failed' | 'sync-failed' | 'read-failed' | 'unclassified';

const HEALTH: Readonly<Record<string, MirrorLegHealth>> = { A: 'alive', F: 'flush-failed', D: 'write-failed', S: 'sync-failed', R: 'read-failed', U: 'unclassified' };

/** The log's part of a mirror status. */
export type MirrorLogStatus =
  | {
      /** `1 core`: an in-memory log, nothing more to report. */
      readonly type: 'core';
    }
  | {
      /** `3 disk <log device> <health>`: a log on a device. */
      readonly type: 'disk';
      /** `<log device>` ('major:minor'). */
      readonly device: string;
      /** `<health>`: `A` alive, `D` a write to the log failed, `F` a flush of the log failed. */
      readonly health: 'alive' | 'failed' | 'flush-failed';
    };

/**
 * The status of a mirror target: `<#legs> <device>+ <#in sync>/<#regions> 1 <health letters>
 * <#log status args> <log status>`.
 */
export interface MirrorStatus extends TargetStatusBase {
  readonly type: 'mirror';
  readonly known: true;
  /** `<#legs> <device>+` and one health letter per leg: each leg's device and health. */
  readonly legs: readonly {
    /** The leg's device ('major:minor'). */
    readonly device: string;
    /** The leg's letter (see `MirrorLegHealth`). */
    readonly health: MirrorLegHealth;
  }[];
  /** `<#in sync>/<#regions>`: a count of regions (of the log's region size) in sync, and in all; the mirror is in sync when they are equal. */
  readonly regions: UsedTotal;
  /** `<#log status args> <log status>`: the log's status. */
  readonly log: MirrorLogStatus;
  /** Words after the known fields (a newer kernel's), kept as given. */
  readonly extra: readonly string[];
}

function logOptions(value: unknown, name: string): MirrorLog {
  if (typeof value !== 'object' || value === null) throw expected('a log object', name, value);
  const type = choice((value as { type?: unknown }).type, `${name}.type`, ['core', 'disk'] as const);
  if (type === 'core') {
    const o = builderOptions(value as { type: 'core'; regionSize: number; sync?: MirrorSync }, name, ['type', 'regionSize', 'sync']);
    const regionSize = powerOfTwo(o.regionSize, `${name}.regionSize`, 1, 2 ** 31);
    const sync = o.sync === undefined ? undefined : choice(o.sync, `${name}.sync`, ['sync', 'nosync'] as const);
    return { type, regionSize, sync };
  }
  const o = builderOptions(value as { type: 'disk'; device: DeviceRef; regionSize: number; sync?: MirrorSync }, name, ['type', 'device', 'regionSize', 'sync']);
  const dev = device(o.device, `${name}.device`);
  const regionSize = powerOfTwo(o.regionSize, `${name}.regionSize`, 1, 2 ** 31);
  const sync = o.sync === undefined ? undefined : choice(o.sync, `${name}.sync`, ['sync', 'nosync'] as const);
  return { type, device: dev, regionSize, sync };
}

/** Builds a mirror target. Throws TypeError/RangeError naming the field at fault. */
export function mirror(options: MirrorOptions): MirrorTarget {
  const o = builderOptions(options, 'mirror options', ['log', 'legs', 'handleErrors', 'keepLog']);
  const log = logOptions(o.log, 'mirror.log');
  const legs = list(
    o.legs,
    'mirror.legs',
    (l, name) => {
      const leg = builderOptions(l as { device: DeviceRef; offset: number }, name, ['device', 'offset']);
      return { device: device(leg.device, `${name}.device`), offset: sectors(leg.offset, `${name}.offset`) };
    },
    MIN_LEGS,
    MAX_LEGS,
  );
  const handleErrors = flag(o.handleErrors, 'mirror.handleErrors');
  const keepLog = flag(o.keepLog, 'mirror.keepLog');
  if (keepLog && !handleErrors) throw expectedRange('false unless handleErrors is true (the kernel needs handle_errors for keep_log)', 'mirror.keepLog', keepLog);
  const logArgs = log.type === 'core' ? [log.regionSize, log.sync] : [log.device, log.regionSize, log.sync];
  const features = [handleErrors ? 'handle_errors' : undefined, keepLog ? 'keep_log' : undefined].filter((f): f is string => f !== undefined);
  const params = join([
    log.type,
    counted(logArgs.filter((a): a is string | number => a !== undefined)),
    legs.length,
    ...legs.flatMap((l) => [l.device, l.offset]),
    features.length > 0 ? counted(features) : undefined,
  ]);
  return typedTarget({ type: 'mirror', log, legs, handleErrors, keepLog, params });
}

/** Parses mirror parameters ('core 1 1024 2 7:0 0 7:1 0 1 handle_errors'). Throws DmParseError naming the field. */
export function parseMirror(params: string): MirrorTarget {
  const at = new ArgReader(params, 'mirror');
  const logType = at.oneOf('log type', ['core', 'disk'] as const);
  const args = at.group('log args', 3);
  const logAt = new ArgReader(args.join(' '), `mirror ${logType} log`);
  let log: MirrorLogOptions;
  if (logType === 'core') {
    if (args.length < 1 || args.length > 2) throw at.fail('a core log takes 1 or 2 args: <region size> [sync|nosync]', 'log args count');
    log = { type: 'core', regionSize: logAt.uint('region size', 1, U32_MAX) };
  } else {
    if (args.length < 2 || args.length > 3) throw at.fail('a disk log takes 2 or 3 args: <device> <region size> [sync|nosync]', 'log args count');
    log = { type: 'disk', device: logAt.device('log device'), regionSize: logAt.uint('region size', 1, U32_MAX) };
  }
  if ((log.regionSize & (log.regionSize - 1)) !== 0) throw at.fail('<region size> is a power of two', 'region size');
  if (logAt.remaining > 0) log.sync = logAt.oneOf('sync', ['sync', 'nosync'] as const);
  const count = at.uint('legs', MIN_LEGS, MAX_LEGS);
  const legs = [];
  for (let i = 0; i < count; i++) legs.push({ device: at.device(`leg ${i} device`), offset: at.uint(`leg ${i} offset`) });
  let handleErrors = false;
  let keepLog = false;
  if (at.remaining > 0) {
    const features = at.group('features', 2);
    for (const f of features) {
      if (f === 'handle_errors' && !handleErrors) handleErrors = true;
      else if (f === 'keep_log' && !keepLog) keepLog = true;
      else throw at.fail(`unknown or repeated feature ${JSON.stringify(f)} (handle_errors, keep_log)`, 'features');
    }
    if (keepLog && !handleErrors) throw at.fail('keep_log needs handle_errors', 'features');
  }
  at.done();
  return mirror({ log, legs, handleErrors, keepLog });
}

/** Parses a mirror target's status ('2 7:0 7:1 16/16 1 AA 1 core'). Throws DmParseError naming the field. */
export function parseMirrorStatus(text: string): MirrorStatus {
  const at = new ArgReader(text, 'mirror status');
  const count = at.uint('legs', 1, MAX_LEGS);
  const devices = at.take(count);
  if (devices.length < count) throw at.fail(`<legs> says ${count} but only ${devices.length} device(s) follow`, 'devices');
  const regions = parseRatio(at, 'regions');
  at.uint('health groups', 1, 1);
  const letters = at.word('health');
  if (letters.length !== count || !letters.split('').every((c) => HEALTH[c] !== undefined)) throw at.fail(`<health> is one of A, F, D, S, R, U per leg, not ${JSON.stringify(letters)}`, 'health');
  const legs = devices.map((d, i) => ({ device: d, health: HEALTH[letters[i] ?? ''] ?? 'unclassified' }));
  const logCount = at.uint('log status count', 1, 64);
  if (logCount > at.remaining) throw at.fail(`<log status count> says ${logCount} but only ${at.remaining} word(s) follow`, 'log status count');
  const logType = at.oneOf('log type', ['core', 'disk'] as const);
  let log: MirrorLogStatus;
  if (logType === 'core') {
    if (logCount !== 1) throw at.fail('a core log reports 1 word', 'log status count');
    log = { type: 'core' };
  } else {
    if (logCount !== 3) throw at.fail('a disk log reports 3 words', 'log status count');
    const dev = at.word('log device');
    const h = at.oneOf('log health', ['A', 'D', 'F'] as const);
    log = { type: 'disk', device: dev, health: h === 'A' ? 'alive' : h === 'D' ? 'failed' : 'flush-failed' };
  }
  return freeze({ type: 'mirror', raw: text, known: true, legs, regions, log, extra: at.rest() });
}

/** The mirror target type. */
export const mirrorModule: TargetModule<MirrorTarget, MirrorStatus> = { type: 'mirror', parse: parseMirror, parseStatus: parseMirrorStatus };
