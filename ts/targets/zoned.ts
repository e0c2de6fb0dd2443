import type { DeviceRef } from '../dev';
import { ArgReader, builderOptions, device, freeze, list, parseRatio, typedTarget, type UsedTotal } from './args';
import type { Target, TargetModule, TargetStatusBase } from './types';

/** Options of a zoned target. */
export interface ZonedOptions {
  /**
   * `<device> [<device>...]`: the devices, as formatted by dmzadm: one zoned device, or a regular
   * (cache) device first and then zoned devices.
   */
  devices: readonly DeviceRef[];
}

/** `zoned <device> [<device>...]`: a host-managed zoned device exposed as a regular block device. */
export interface ZonedTarget extends Target {
  readonly type: 'zoned';
  /** `<device> [<device>...]`: the devices, in order ('major:minor' or /dev paths; a regular cache device first, when there is one). */
  readonly devices: readonly string[];
}

/** `<free>/<total>`: free and total zones of one kind (free = unmapped), a count of zones. */
export interface ZoneCount {
  /** Unmapped (free) zones (a count). */
  readonly free: number;
  /** All zones of the kind (a count). */
  readonly total: number;
}

/**
 * The status of a zoned target: `<#zones> zones <free>/<total> cache` then, for each zoned
 * device, `<free>/<total> random <free>/<total> sequential`.
 */
export interface ZonedStatus extends TargetStatusBase {
  readonly type: 'zoned';
  readonly known: true;
  /** `<#zones> zones`: all zones of all devices (a count). */
  readonly zones: number;
  /** `<free>/<total> cache`: cache zones on the regular device (null when the kernel prints no cache group: an older kernel). */
  readonly cache: ZoneCount | null;
  /** For each zoned device (not the regular cache device): its random and sequential zones. */
  readonly devices: readonly {
    /** `<free>/<total> random`: the device's conventional (random-write) zones. */
    readonly random: ZoneCount;
    /** `<free>/<total> sequential`: the device's sequential-write-required zones. */
    readonly sequential: ZoneCount;
  }[];
  /** Words after the known fields (a newer kernel's), kept as given. */
  readonly extra: readonly string[];
}

/** Builds a zoned target. Throws TypeError/RangeError on bad options. */
export function zoned(options: ZonedOptions): ZonedTarget {
  const o = builderOptions(options, 'zoned options', ['devices']);
  const devices = list(o.devices, 'zoned.devices', (v, n) => device(v, n), 1, 32);
  return typedTarget({ type: 'zoned', devices, params: devices.join(' ') });
}

/** Parses zoned parameters ('8:16', '8:0 8:16'). Throws DmParseError naming the field. */
export function parseZoned(params: string): ZonedTarget {
  const at = new ArgReader(params, 'zoned');
  const devices = [at.device('device 0')];
  while (at.remaining > 0) devices.push(at.device(`device ${devices.length}`));
  return zoned({ devices });
}

function zoneCount(r: UsedTotal): ZoneCount {
  return { free: r.used, total: r.total };
}

/**
 * Parses a zoned status ('<zones> zones [<free>/<all> cache] (<free>/<all> random <free>/<all>
 * sequential)+'). Throws DmParseError naming the field.
 */
export function parseZonedStatus(text: string): ZonedStatus {
  const at = new ArgReader(text, 'zoned status');
  const zones = at.uint('zones');
  at.oneOf('zones word', ['zones']);
  let cache: ZoneCount | null = null;
  const first = parseRatio(at, 'free/total');
  const kind = at.oneOf('zone kind', ['cache', 'random']);
  const devices: { random: ZoneCount; sequential: ZoneCount }[] = [];
  const sequential = (): ZoneCount => {
    const s = zoneCount(parseRatio(at, 'sequential'));
    at.oneOf('sequential word', ['sequential']);
    return s;
  };
  if (kind === 'cache') cache = zoneCount(first);
  else devices.push({ random: zoneCount(first), sequential: sequential() });
  while (at.remaining >= 4 && /^\d+\/\d+$/.test(at.peek() ?? '')) {
    const random = zoneCount(parseRatio(at, 'random'));
    at.oneOf('random word', ['random']);
    devices.push({ random, sequential: sequential() });
  }
  if (devices.length === 0) throw at.fail('no random/sequential zone group', 'random');
  return freeze({ type: 'zoned', raw: text, known: true, zones, cache, devices, extra: at.rest() });
}

/** The zoned target type (parse-only here: the sandbox kernel has no zoned devices). */
export const zonedModule: TargetModule<ZonedTarget, ZonedStatus> = { type: 'zoned', parse: parseZoned, parseStatus: parseZonedStatus };

/** Builders of the zoned target's messages. */
export const zonedMessages = Object.freeze({
  /** `reclaim`: start moving random zones to sequential ones now. */
  reclaim(): string {
    return 'reclaim';
  },
});
