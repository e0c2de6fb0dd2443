/**
 * dm-multipath: one device reached through several paths (block devices that lead to the same
 * storage), in priority groups; a path selector in each group chooses the path of each I/O,
 * failed paths are skipped, and when a group has no working path the next one takes over.
 * Pure data: nothing here touches the kernel.
 */
import type { DeviceRef } from '../dev';
import { expected, expectedRange } from '../validate';
import { ArgReader, U32_MAX, builderOptions, choice, device, flag, freeze, integer, join, list, parseUint, typedTarget, word } from './args';
import type { Target, TargetModule, TargetStatusBase } from './types';

/**
 * A path selector: `round-robin` (paths in turn), `queue-length` (the path with the fewest
 * I/Os in flight), `service-time` (the path with the shortest estimated service time: bytes in
 * flight over its relative throughput), `historical-service-time` (from a moving average of
 * each path's measured service time), `io-affinity` (the path mapped to the CPU the I/O is
 * issued on). The sandbox kernel has the first three.
 */
export type MultipathSelector = 'round-robin' | 'queue-length' | 'service-time' | 'historical-service-time' | 'io-affinity';

/**
 * How the multipath device queues I/O: `rq` request-based (blk-mq; the default, and what
 * `mq` means since Linux 5.0), `bio` bio-based (no hardware handler; the kernel then also sets
 * retain_attached_hw_handler).
 */
export type MultipathQueueMode = 'bio' | 'rq';

const SELECTORS: readonly MultipathSelector[] = ['round-robin', 'queue-length', 'service-time', 'historical-service-time', 'io-affinity'];

/** The kernel's bounds: priority groups, paths per group, and counted arg lists. */
const MAX_GROUPS = 1024;
const MAX_PATHS = 1024;
const MAX_ARGS = 1024;
/** service-time's largest relative throughput. */
const MAX_THROUGHPUT = 100;
/** historical-service-time's base weight is a 10-bit fixed-point fraction below 1 (1024). */
const MAX_BASE_WEIGHT = 1023;
/** historical-service-time's defaults: base weight 0.95 (972/1024), threshold multiplier 0. */
const HST_BASE_WEIGHT = 972;
/** Path args the kernel prints for each selector (its table_args). */
const TABLE_ARGS: Readonly<Record<MultipathSelector, number>> = { 'round-robin': 1, 'queue-length': 1, 'service-time': 2, 'historical-service-time': 1, 'io-affinity': 1 };
/** A CPU mask as the kernel's bitmap parser takes it: hex words of up to 32 bits, comma-separated. */
const CPUMASK = /^[0-9a-fA-F]{1,8}(,[0-9a-fA-F]{1,8})*$/;

/** One path of a priority group, as the table gives it: `<path> [<arg>]*`. */
export interface MultipathPath {
  /** `<path>`, 'major:minor' or a /dev path: the path's block device. */
  readonly device: string;
  /**
   * Path arg `<repeat_count>`: I/Os sent down the path before the selector picks again
   * (round-robin, queue-length, service-time; historical-service-time ignores it and the kernel
   * prints 0). Linux takes any value above 1 as 1 ("repeat_count > 1 is deprecated"), so it reads
   * back as 0 or 1; a parsed line keeps what it said. Undefined for io-affinity.
   */
  readonly repeatCount: number | undefined;
  /** service-time path arg `<relative_throughput>`: the path's throughput relative to the others of its group, 0 to 100 (0: used only when no other path is). */
  readonly relativeThroughput: number | undefined;
  /** io-affinity path arg `<cpumask>`: the CPUs whose I/O goes down this path, a hex CPU mask ('3', 'ff,00000000'). */
  readonly cpumask: string | undefined;
}

/**
 * A priority group, `<selector> <#selector args> [<arg>]* <#paths> <#path args> [<path>
 * [<arg>]*]+`: a path selector and its paths. Groups are numbered from 1 in table order.
 */
export interface MultipathGroup {
  /** `<selector>`: the path selector's name. */
  readonly selector: MultipathSelector;
  /**
   * historical-service-time selector arg `<base_weight>`: the weight of history in the moving
   * average, a 10-bit fixed-point fraction (0 to 1023 over 1024; 0 ignores history; the kernel's
   * default 972, 0.95).
   */
  readonly baseWeight: number | undefined;
  /**
   * historical-service-time selector arg `<threshold_multiplier>`: paths count as different only
   * when one's service time is more than this many times the other's (0 or 1: no threshold, the
   * kernel's default 0).
   */
  readonly thresholdMultiplier: number | undefined;
  /** `<#paths>` and the paths, in order. */
  readonly paths: readonly MultipathPath[];
}

/** Options of one path. */
export interface MultipathPathOptions {
  /** `<path>`: the path's block device. */
  device: DeviceRef;
  /** Path arg `<repeat_count>` (round-robin, queue-length, service-time): I/Os per pick, 0 or 1 (default 1; the kernel takes more as 1). */
  repeatCount?: number;
  /** service-time path arg `<relative_throughput>`: 0 to 100, a weight against the group's other paths (default 1). */
  relativeThroughput?: number;
  /** io-affinity path arg `<cpumask>` (required): the CPUs whose I/O goes down this path, a hex CPU mask. */
  cpumask?: string;
}

/** Options of one priority group. */
export interface MultipathGroupOptions {
  /** `<selector>`: the path selector. */
  selector: MultipathSelector;
  /** The paths, 1 to 1024. */
  paths: readonly MultipathPathOptions[];
  /** historical-service-time selector arg `<base_weight>`: history's weight in 1024ths, 0 to 1023 (default 972). */
  baseWeight?: number;
  /** historical-service-time selector arg `<threshold_multiplier>`: a ratio, a u32 (default 0: none). */
  thresholdMultiplier?: number;
}

/** Options of a multipath target. */
export interface MultipathOptions {
  /** `<#groups>` and the priority groups, 0 to 1024, numbered from 1 in this order. */
  groups: readonly MultipathGroupOptions[];
  /** `<initial group>`: the group to use first, from 1 (default 1; 0 when there are no groups). */
  initialGroup?: number;
  /** Feature `queue_if_no_path`: queue I/O while no path works, instead of failing it. */
  queueIfNoPath?: boolean;
  /** Feature `pg_init_retries <n>`: times to retry initialising a group (hardware handlers), 1 to 50. */
  pgInitRetries?: number;
  /** Feature `pg_init_delay_msecs <ms>`: milliseconds before a group initialisation is retried, 0 to 60000 (the kernel's default 2000). */
  pgInitDelayMsecs?: number;
  /** Feature `retain_attached_hw_handler`: keep a SCSI device handler already attached to a path instead of the table's. */
  retainAttachedHwHandler?: boolean;
  /** Feature `queue_mode <mode>`: `rq` (default) or `mq` (the same since Linux 5.0), or `bio`. */
  queueMode?: MultipathQueueMode | 'mq';
  /** `<hw handler>`: a SCSI device handler for group initialisation (`alua`, `emc`, `rdac`, `hp_sw`); not with queueMode bio. */
  hwHandler?: string;
  /** The handler's `[<arg>]*`, counted in `<#hw handler args>` with its name (the kernel takes them but prints only the handler's name back). */
  hwHandlerArgs?: readonly string[];
}

/**
 * `multipath <#features> [<feature>]* <#hw handler args> [<hw handler> [<arg>]*] <#groups>
 * <initial group> [<selector> <#selector args> [<arg>]* <#paths> <#path args> [<path>
 * [<arg>]*]+]+`: one device over several paths.
 */
export interface MultipathTarget extends Target {
  readonly type: 'multipath';
  /** Feature `queue_if_no_path`: I/O queues while no path works (0/1 flag). */
  readonly queueIfNoPath: boolean;
  /** Feature `pg_init_retries <n>`: a count of retries, or undefined when the table omits it. */
  readonly pgInitRetries: number | undefined;
  /** Feature `pg_init_delay_msecs <ms>`: milliseconds, or undefined when the table omits it. */
  readonly pgInitDelayMsecs: number | undefined;
  /** Feature `retain_attached_hw_handler` (always true in bio mode). */
  readonly retainAttachedHwHandler: boolean;
  /** Feature `queue_mode <mode>`: `rq` unless the table says `queue_mode bio`. */
  readonly queueMode: MultipathQueueMode;
  /** `<hw handler>`: the hardware handler's name, or undefined for none (`0`). */
  readonly hwHandler: string | undefined;
  /** The hardware handler's `[<arg>]*`. */
  readonly hwHandlerArgs: readonly string[];
  /**
   * `<initial group>`: the group to use first (1-based; 0 without groups). The kernel prints its
   * current or next group here, so a table read back after a switch_group or a failover names that
   * group.
   */
  readonly initialGroup: number;
  /** `<#groups>` and the priority groups, in order. */
  readonly groups: readonly MultipathGroup[];
}

/** A priority group's state: `active` (in use now), `enabled` (may be used), `disabled` (bypassed, by disable_group or a busy handler). */
export type MultipathGroupState = 'active' | 'enabled' | 'disabled';
/** A path's health: `active` (usable) or `failed` (by fail_path or an I/O error, until reinstate_path). */
export type MultipathPathHealth = 'active' | 'failed';

/** One path in a multipath status: `<path> <A|F> <fail count> [<selector word>]*`, as many words as its group's `<#path status args>`. */
export interface MultipathPathStatus {
  /** `<path>`: the path's device, 'major:minor'. */
  readonly device: string;
  /** `A` active or `F` failed. */
  readonly health: MultipathPathHealth;
  /** `<fail count>`: times the path has failed since the table was loaded (a count). */
  readonly failCount: number;
  /**
   * The one word of a one-word selector (a count): queue-length's I/Os in flight on the path
   * (io-affinity prints its count of I/Os from CPUs with no path mapped here instead).
   */
  readonly inFlight: number | undefined;
  /** service-time `<in-flight-size>`: bytes of I/O in flight on the path. */
  readonly inFlightSize: number | undefined;
  /** service-time `<relative_throughput>`: the path's relative throughput (0 to 100). */
  readonly relativeThroughput: number | undefined;
  /** historical-service-time, first word: the moving average of the path's service time (ns, 10-bit fixed point). */
  readonly historicalServiceTime: bigint | undefined;
  /** historical-service-time, second word: I/Os outstanding on the path (a count). */
  readonly outstanding: bigint | undefined;
  /** historical-service-time, third word: the time (ns, sched_clock) after which the path counts as stale. */
  readonly staleAfter: bigint | undefined;
  /** The selector's words for the path when their count is none of the above (another selector's). */
  readonly selectorArgs: readonly string[];
}

/**
 * One priority group in a multipath status: `<state> <#selector status args> [<arg>]*
 * <#paths> <#path status args> [<path status>]+`.
 */
export interface MultipathGroupStatus {
  /** `<state>`: `A` active, `E` enabled, `D` disabled. */
  readonly state: MultipathGroupState;
  /** historical-service-time, first group word: its base weight (1024ths). */
  readonly baseWeight: number | undefined;
  /** historical-service-time, second group word: its threshold multiplier (a ratio). */
  readonly thresholdMultiplier: number | undefined;
  /** The selector's group words when their count is neither 0 nor 2 (another selector's). */
  readonly selectorArgs: readonly string[];
  /** `<#paths>` and the group's paths, in table order. */
  readonly paths: readonly MultipathPathStatus[];
}

/**
 * The status of a multipath target: `2 <queue_io> <pg_init_count> <#hw handler status>
 * [<word>]* <#groups> <next group> [<group status>]+`.
 */
export interface MultipathStatus extends TargetStatusBase {
  readonly type: 'multipath';
  readonly known: true;
  /**
   * `<queue_io>` (a 0/1 flag): I/O is being held: set at load until the first path is chosen, and
   * while a group is being initialised by its hardware handler.
   */
  readonly queueIo: boolean;
  /** `<pg_init_count>`: group initialisations since the current group was chosen (a count). */
  readonly pgInitCount: number;
  /** `<#hw handler status> [<word>]*`: the hardware handler's status words (Linux prints none). */
  readonly hwHandlerStatus: readonly string[];
  /** `<next group>`: the group the next I/O goes to (1-based; 0 without groups). */
  readonly nextGroup: number;
  /** `<#groups>` and the priority groups, in table order. */
  readonly groups: readonly MultipathGroupStatus[];
  /** Words after the known fields (a newer kernel's), kept as given. */
  readonly extra: readonly string[];
}

interface Model {
  queueIfNoPath: boolean;
  pgInitRetries: number | undefined;
  pgInitDelayMsecs: number | undefined;
  retainAttachedHwHandler: boolean;
  queueMode: MultipathQueueMode;
  hwHandler: string | undefined;
  hwHandlerArgs: string[];
  initialGroup: number;
  groups: MultipathGroup[];
}

function format(m: Model): MultipathTarget {
  const features: (string | number)[] = [];
  if (m.queueIfNoPath) features.push('queue_if_no_path');
  if (m.pgInitRetries !== undefined) features.push('pg_init_retries', m.pgInitRetries);
  if (m.pgInitDelayMsecs !== undefined) features.push('pg_init_delay_msecs', m.pgInitDelayMsecs);
  if (m.retainAttachedHwHandler) features.push('retain_attached_hw_handler');
  if (m.queueMode === 'bio') features.push('queue_mode', 'bio');
  const hw = m.hwHandler === undefined ? [0] : [1 + m.hwHandlerArgs.length, m.hwHandler, ...m.hwHandlerArgs];
  const groups = m.groups.flatMap((g) => {
    const selectorArgs = g.selector === 'historical-service-time' ? [2, g.baseWeight ?? HST_BASE_WEIGHT, g.thresholdMultiplier ?? 0] : [0];
    const paths = g.paths.flatMap((p) => {
      if (g.selector === 'service-time') return [p.device, p.repeatCount ?? 1, p.relativeThroughput ?? 1];
      if (g.selector === 'io-affinity') return [p.device, p.cpumask ?? ''];
      return [p.device, p.repeatCount ?? 1];
    });
    return [g.selector, ...selectorArgs, g.paths.length, TABLE_ARGS[g.selector], ...paths];
  });
  const params = join([features.length, ...features, ...hw, m.groups.length, m.initialGroup, ...groups]);
  return typedTarget({ type: 'multipath', ...m, params });
}

function path(p: Partial<MultipathPath> & { device: string }): MultipathPath {
  return { device: p.device, repeatCount: p.repeatCount, relativeThroughput: p.relativeThroughput, cpumask: p.cpumask };
}

/**
 * Builds a multipath target. The params are in the form the kernel prints back: features in
 * its order (queue_if_no_path, pg_init_retries, pg_init_delay_msecs,
 * retain_attached_hw_handler, queue_mode bio), each selector's args and every path's args
 * written out with their defaults. Throws TypeError/RangeError naming the field.
 */
export function multipath(options: MultipathOptions): MultipathTarget {
  const o = builderOptions(options, 'multipath options', ['groups', 'initialGroup', 'queueIfNoPath', 'pgInitRetries', 'pgInitDelayMsecs', 'retainAttachedHwHandler', 'queueMode', 'hwHandler', 'hwHandlerArgs']);
  const queueIfNoPath = flag(o.queueIfNoPath, 'multipath.queueIfNoPath');
  const pgInitRetries = o.pgInitRetries === undefined ? undefined : integer(o.pgInitRetries, 'multipath.pgInitRetries', 1, 50);
  const pgInitDelayMsecs = o.pgInitDelayMsecs === undefined ? undefined : integer(o.pgInitDelayMsecs, 'multipath.pgInitDelayMsecs', 0, 60000);
  const mode = o.queueMode === undefined ? 'rq' : choice(o.queueMode, 'multipath.queueMode', ['bio', 'rq', 'mq'] as const);
  const queueMode: MultipathQueueMode = mode === 'bio' ? 'bio' : 'rq';
  let retainAttachedHwHandler = flag(o.retainAttachedHwHandler, 'multipath.retainAttachedHwHandler');
  if (queueMode === 'bio') {
    // The kernel sets it for bio mode, which manages no handler itself.
    if (o.retainAttachedHwHandler === false) throw expectedRange('true or unset with queueMode bio (the kernel sets it)', 'multipath.retainAttachedHwHandler', false);
    retainAttachedHwHandler = true;
  }
  const hwHandler = o.hwHandler === undefined ? undefined : word(o.hwHandler, 'multipath.hwHandler');
  if (hwHandler !== undefined && queueMode === 'bio') throw expectedRange('no handler with queueMode bio (the kernel ignores it)', 'multipath.hwHandler', hwHandler);
  const hwHandlerArgs = o.hwHandlerArgs === undefined ? [] : list(o.hwHandlerArgs, 'multipath.hwHandlerArgs', word, 0, MAX_ARGS - 1);
  if (hwHandlerArgs.length > 0 && hwHandler === undefined) throw expectedRange('no args without hwHandler', 'multipath.hwHandlerArgs', hwHandlerArgs);
  const groups = list(o.groups, 'multipath.groups', group, 0, MAX_GROUPS);
  const initialGroup = o.initialGroup === undefined ? (groups.length > 0 ? 1 : 0) : integer(o.initialGroup, 'multipath.initialGroup', groups.length > 0 ? 1 : 0, groups.length);
  return format({ queueIfNoPath, pgInitRetries, pgInitDelayMsecs, retainAttachedHwHandler, queueMode, hwHandler, hwHandlerArgs, initialGroup, groups });
}

function group(value: unknown, name: string): MultipathGroup {
  const g = builderOptions(value as MultipathGroupOptions, name, ['selector', 'paths', 'baseWeight', 'thresholdMultiplier']);
  const selector = choice(g.selector, `${name}.selector`, SELECTORS);
  const hst = selector === 'historical-service-time';
  if (!hst && g.baseWeight !== undefined) throw expectedRange(`no value (${selector} takes none)`, `${name}.baseWeight`, g.baseWeight);
  if (!hst && g.thresholdMultiplier !== undefined) throw expectedRange(`no value (${selector} takes none)`, `${name}.thresholdMultiplier`, g.thresholdMultiplier);
  const baseWeight = hst ? (g.baseWeight === undefined ? HST_BASE_WEIGHT : integer(g.baseWeight, `${name}.baseWeight`, 0, MAX_BASE_WEIGHT)) : undefined;
  const thresholdMultiplier = hst ? (g.thresholdMultiplier === undefined ? 0 : integer(g.thresholdMultiplier, `${name}.thresholdMultiplier`, 0, U32_MAX)) : undefined;
  const paths = list(g.paths, `${name}.paths`, (v, n) => pathOption(v, n, selector), 1, MAX_PATHS);
  return { selector, baseWeight, thresholdMultiplier, paths };
}

function pathOption(value: unknown, name: string, selector: MultipathSelector): MultipathPath {
  const p = builderOptions(value as MultipathPathOptions, name, ['device', 'repeatCount', 'relativeThroughput', 'cpumask']);
  const dev = device(p.device, `${name}.device`);
  const refuse = (key: keyof MultipathPathOptions): void => {
    if (p[key] !== undefined) throw expectedRange(`no value (${selector} does not take it)`, `${name}.${key}`, p[key]);
  };
  if (selector !== 'service-time') refuse('relativeThroughput');
  if (selector !== 'io-affinity') refuse('cpumask');
  if (selector === 'io-affinity') {
    refuse('repeatCount');
    if (p.cpumask === undefined) throw expected('a hex CPU mask (io-affinity needs one per path)', `${name}.cpumask`, undefined);
    const mask = word(p.cpumask, `${name}.cpumask`);
    if (!CPUMASK.test(mask)) throw expectedRange('a hex CPU mask (comma-separated 32-bit words)', `${name}.cpumask`, mask);
    return path({ device: dev, cpumask: mask });
  }
  // historical-service-time does not use it, and the kernel prints 0 for it.
  if (selector === 'historical-service-time') return path({ device: dev, repeatCount: p.repeatCount === undefined ? 0 : integer(p.repeatCount, `${name}.repeatCount`, 0, 0) });
  const repeatCount = p.repeatCount === undefined ? 1 : integer(p.repeatCount, `${name}.repeatCount`, 0, 1);
  if (selector === 'service-time') return path({ device: dev, repeatCount, relativeThroughput: p.relativeThroughput === undefined ? 1 : integer(p.relativeThroughput, `${name}.relativeThroughput`, 0, MAX_THROUGHPUT) });
  return path({ device: dev, repeatCount });
}

/**
 * Parses multipath parameters ('0 0 1 1 round-robin 0 2 1 7:0 1 7:1 1'), as users write
 * them (features in any order and case, counts of path args below the selector's, args left
 * to their defaults) and as the kernel prints them back. What the kernel normalises is
 * normalised the same way: `queue_mode rq`/`mq` are the default, `queue_mode bio` implies
 * retain_attached_hw_handler, a repeated feature counts once (the last value wins), selector
 * args of round-robin, queue-length, service-time and io-affinity (which take none) are
 * dropped, and so is a hardware handler in bio mode. Throws DmParseError naming the field.
 */
export function parseMultipath(params: string): MultipathTarget {
  const at = new ArgReader(params, 'multipath');
  const m: Model = { queueIfNoPath: false, pgInitRetries: undefined, pgInitDelayMsecs: undefined, retainAttachedHwHandler: false, queueMode: 'rq', hwHandler: undefined, hwHandlerArgs: [], initialGroup: 0, groups: [] };
  const features = at.group('feature args', 8);
  for (let i = 0; i < features.length; ) {
    // The kernel compares feature names without case, and prints them in lower case.
    const name = (features[i++] ?? '').toLowerCase();
    const value = (): string => {
      const v = features[i++];
      if (v === undefined) throw at.fail(`<${name}> lacks its value in the feature args`, name);
      return v;
    };
    if (name === 'queue_if_no_path') m.queueIfNoPath = true;
    else if (name === 'retain_attached_hw_handler') m.retainAttachedHwHandler = true;
    else if (name === 'pg_init_retries') m.pgInitRetries = parseUint(value(), name, 1, 50, at);
    else if (name === 'pg_init_delay_msecs') m.pgInitDelayMsecs = parseUint(value(), name, 0, 60000, at);
    else if (name === 'queue_mode') {
      const mode = value().toLowerCase();
      if (mode !== 'bio' && mode !== 'rq' && mode !== 'mq') throw at.fail(`<queue_mode> is one of bio, rq, mq, not ${JSON.stringify(mode)}`, name);
      m.queueMode = mode === 'bio' ? 'bio' : 'rq';
    } else throw at.fail(`unknown feature ${JSON.stringify(name)} (queue_if_no_path, pg_init_retries, pg_init_delay_msecs, retain_attached_hw_handler, queue_mode)`, 'feature args');
  }
  if (m.queueMode === 'bio') m.retainAttachedHwHandler = true;
  const hw = at.group('hw handler args', MAX_ARGS);
  const [handler, ...handlerArgs] = hw;
  if (handler !== undefined && m.queueMode !== 'bio') {
    m.hwHandler = handler;
    m.hwHandlerArgs = handlerArgs;
  }
  const count = at.uint('priority groups', 0, MAX_GROUPS);
  m.initialGroup = at.uint('initial group', 0, MAX_GROUPS);
  if ((count === 0) !== (m.initialGroup === 0) || m.initialGroup > count) throw at.fail(`<initial group> is ${count === 0 ? '0 without groups' : `from 1 to ${count}`}, not ${m.initialGroup}`, 'initial group');
  for (let g = 1; g <= count; g++) m.groups.push(parseGroup(at, `group ${g}`));
  at.done();
  return format(m);
}

function parseGroup(at: ArgReader, field: string): MultipathGroup {
  const selector = at.oneOf(`${field} selector`, SELECTORS);
  const args = at.group(`${field} selector args`, MAX_ARGS);
  let baseWeight: number | undefined;
  let thresholdMultiplier: number | undefined;
  if (selector === 'historical-service-time') {
    if (args.length > 2) throw at.fail(`<${field} selector args> of historical-service-time are at most 2 (base weight, threshold multiplier)`, `${field} selector args`);
    baseWeight = args[0] === undefined ? HST_BASE_WEIGHT : parseUint(args[0], `${field} base weight`, 0, MAX_BASE_WEIGHT, at);
    thresholdMultiplier = args[1] === undefined ? 0 : parseUint(args[1], `${field} threshold multiplier`, 0, U32_MAX, at);
  }
  const n = at.uint(`${field} paths`, 1, MAX_PATHS);
  const argCount = at.uint(`${field} path args`, 0, MAX_ARGS);
  const most = selector === 'service-time' ? 2 : 1;
  if (argCount > most || (selector === 'io-affinity' && argCount !== 1)) throw at.fail(`<${field} path args> of ${selector} are ${selector === 'io-affinity' ? 'exactly 1 (a CPU mask)' : `at most ${most}`}, not ${argCount}`, `${field} path args`);
  const paths: MultipathPath[] = [];
  for (let i = 0; i < n; i++) {
    const name = `${field} path ${i}`;
    const dev = at.device(`${name} device`);
    if (argCount > at.remaining) throw at.fail(`<${name}> lacks its ${argCount} arg(s)`, `${name} args`);
    const [a, b] = at.take(argCount);
    if (selector === 'io-affinity') {
      if (a === undefined || !CPUMASK.test(a)) throw at.fail(`<${name} cpumask> is a hex CPU mask, not ${JSON.stringify(a)}`, `${name} cpumask`);
      paths.push(path({ device: dev, cpumask: a }));
      continue;
    }
    const repeatCount = a === undefined ? (selector === 'historical-service-time' ? 0 : 1) : parseUint(a, `${name} repeat count`, 0, U32_MAX, at);
    const relativeThroughput = selector !== 'service-time' ? undefined : b === undefined ? 1 : parseUint(b, `${name} relative throughput`, 0, MAX_THROUGHPUT, at);
    paths.push(path({ device: dev, repeatCount, relativeThroughput }));
  }
  return { selector, baseWeight, thresholdMultiplier, paths };
}

const GROUP_STATES: Readonly<Record<string, MultipathGroupState>> = { A: 'active', E: 'enabled', D: 'disabled' };

/**
 * Parses a multipath target's status ('2 0 0 0 2 1 A 0 1 0 7:0 A 0 E 0 1 0 7:1 F 1'). Each
 * path's selector words are typed by their count, which names the selector: none
 * (round-robin), one (queue-length's in-flight count), two (service-time's in-flight bytes and
 * relative throughput), three (historical-service-time's). Throws DmParseError naming the field.
 */
export function parseMultipathStatus(text: string): MultipathStatus {
  const at = new ArgReader(text, 'multipath status');
  // Linux prints two words here: queue_io and pg_init_count.
  at.uint('features count', 2, 2);
  const queueIo = at.oneOf('queue io', ['0', '1'] as const) === '1';
  const pgInitCount = at.uint('pg init count', 0, U32_MAX);
  const hwHandlerStatus = at.group('hw handler status', MAX_ARGS);
  const count = at.uint('priority groups', 0, MAX_GROUPS);
  const nextGroup = at.uint('next group', 0, MAX_GROUPS);
  const groups: MultipathGroupStatus[] = [];
  for (let g = 1; g <= count; g++) {
    const field = `group ${g}`;
    const state = at.oneOf(`${field} state`, ['A', 'E', 'D'] as const);
    const ps = at.group(`${field} selector status`, MAX_ARGS);
    let baseWeight: number | undefined;
    let thresholdMultiplier: number | undefined;
    let selectorArgs: string[] = [];
    if (ps.length === 2) {
      baseWeight = parseUint(ps[0] ?? '', `${field} base weight`, 0, U32_MAX, at);
      thresholdMultiplier = parseUint(ps[1] ?? '', `${field} threshold multiplier`, 0, U32_MAX, at);
    } else selectorArgs = ps;
    const n = at.uint(`${field} paths`, 1, MAX_PATHS);
    const info = at.uint(`${field} path status args`, 0, MAX_ARGS);
    const paths: MultipathPathStatus[] = [];
    for (let i = 0; i < n; i++) paths.push(parsePathStatus(at, `${field} path ${i}`, info));
    groups.push({ state: GROUP_STATES[state] ?? 'enabled', baseWeight, thresholdMultiplier, selectorArgs, paths });
  }
  return freeze({ type: 'multipath', raw: text, known: true, queueIo, pgInitCount, hwHandlerStatus, nextGroup, groups, extra: at.rest() });
}

const INT_MIN = -0x80000000;
const INT_MAX = 0x7fffffff;

function parsePathStatus(at: ArgReader, field: string, info: number): MultipathPathStatus {
  const dev = at.device(`${field} device`);
  const health: MultipathPathHealth = at.oneOf(`${field} health`, ['A', 'F'] as const) === 'A' ? 'active' : 'failed';
  const failCount = at.uint(`${field} fail count`, 0, U32_MAX);
  const s: MultipathPathStatus = { device: dev, health, failCount, inFlight: undefined, inFlightSize: undefined, relativeThroughput: undefined, historicalServiceTime: undefined, outstanding: undefined, staleAfter: undefined, selectorArgs: [] };
  // The selectors print atomic counters with %d: signed 32-bit.
  if (info === 1) return { ...s, inFlight: at.int(`${field} in flight`, INT_MIN, INT_MAX) };
  if (info === 2) return { ...s, inFlightSize: at.int(`${field} in-flight size`, INT_MIN, INT_MAX), relativeThroughput: at.uint(`${field} relative throughput`, 0, U32_MAX) };
  if (info === 3) return { ...s, historicalServiceTime: at.u64(`${field} historical service time`), outstanding: at.u64(`${field} outstanding`), staleAfter: at.u64(`${field} stale after`) };
  if (info > at.remaining) throw at.fail(`<${field}> lacks its ${info} selector status word(s)`, `${field} selector status`);
  return { ...s, selectorArgs: at.take(info) };
}

/**
 * Messages a multipath target takes (`dm.message(name, multipathMessages.failPath('7:1'))`).
 * The kernel refuses every message while the device is suspended (EBUSY), and a path or group
 * the map does not have (EINVAL). Groups are numbered from 1 in table order.
 */
export const multipathMessages = Object.freeze({
  /** `fail_path <path>`: takes a path out of use (its status turns `F`, its fail count goes up). */
  failPath(path: DeviceRef): string {
    return `fail_path ${device(path, 'path')}`;
  },
  /** `reinstate_path <path>`: puts a failed path back in use. */
  reinstatePath(path: DeviceRef): string {
    return `reinstate_path ${device(path, 'path')}`;
  },
  /** `disable_group <group>` (1-based): bypasses a group (state `D`): it is used only when no other group has a working path. */
  disableGroup(group: number): string {
    return `disable_group ${integer(group, 'group', 1, MAX_GROUPS)}`;
  },
  /** `enable_group <group>` (1-based): ends the bypass of a group. */
  enableGroup(group: number): string {
    return `enable_group ${integer(group, 'group', 1, MAX_GROUPS)}`;
  },
  /** `switch_group <group>` (1-based): sends the next I/O to this group (and ends every group's bypass). */
  switchGroup(group: number): string {
    return `switch_group ${integer(group, 'group', 1, MAX_GROUPS)}`;
  },
  /** `queue_if_no_path`: queues I/O while no path works (the table then shows `queue_if_no_path`). */
  queueIfNoPath(): string {
    return 'queue_if_no_path';
  },
  /** `fail_if_no_path`: fails I/O while no path works, and fails the I/O queued so far. */
  failIfNoPath(): string {
    return 'fail_if_no_path';
  },
});

/** The multipath target type. */
export const multipathModule: TargetModule<MultipathTarget, MultipathStatus> = { type: 'multipath', parse: parseMultipath, parseStatus: parseMultipathStatus };
