/**
 * Every command's logic, written once: each function checks its arguments (TypeError or
 * RangeError before any ioctl) and returns the command as a step program (see steps.ts) and
 * the per-device queue it runs in. `DeviceMapper` drives the programs asynchronously,
 * `DeviceMapperSync` on the calling thread; nothing here touches the kernel by itself.
 * @internal
 */
import type { NativeRequest, NativeResult, NativeTargetSpec } from '../binding';
import type {
  CreateOptions,
  DeviceInfo,
  DeviceListEntry,
  Geometry,
  LoadOptions,
  MessageOptions,
  QueryOptions,
  RecoveredDevice,
  RecoverOptions,
  ReloadOptions,
  RemoveAllOptions,
  RemoveOptions,
  StatusOptions,
  SuspendOptions,
  TableOptions,
  TargetTypeVersion,
  UdevCallOptions,
} from './client';
import { abortError, checkSignal } from './abort';
import { mapperPath, type MknodesResult } from './nodes';
import { checkUdevMode, effectiveMode, type UdevPlan, type UdevSettings } from './udev';
import { Command, Flag } from './constants';
import { decodeDev, formatDev, resolveId, type DevId, type DevNumber, type ResolvedId } from './dev';
import { DeviceReader, RowReader } from './answer';
import { DmError, exactNumber } from './errors';
import { kernelStatusRow, type StatusRow } from './status';
import {
  call,
  createProgram,
  forceRemoveProgram,
  identityOf,
  lockDevice,
  oneIoctl,
  refOf,
  reloadProgram,
  removeDeviceProgram,
  removeFoundProgram,
  removeProgram,
  ueventCall,
  afterUevent,
  renameProgram,
  build,
  targetsOf,
  type Continue,
  type Program,
} from './steps';
import { adoptRows, kernelRow, sameTarget, Table, type TableRow } from './table';
import { rawStatus } from './targets/index';
import { checkBoolean, checkInteger, checkMessage, checkName, checkOptions, checkSector, checkTargetType, checkUuid, checkWellFormed, expected } from './validate';

/** A command ready to run: its program, and the per-device queue it waits in (if any). */
export interface Cmd<T> {
  readonly program: Program<T>;
  readonly key?: string;
}

/** What commands need to know of the connection. */
export interface Context {
  readonly driverVersion: readonly [number, number, number];
  /** The client's udev mode and cookie timeout. */
  readonly udev: UdevSettings;
}

/**
 * A call's udev plan from its `udev` and `signal` options (the client's mode by default; 'auto'
 * decided now). A signal that has aborted already stops the call before any ioctl.
 */
function udevPlan(ctx: Context, opts: { udev?: unknown; signal?: unknown }): UdevPlan {
  const mode = checkUdevMode(opts.udev, 'options.udev') ?? ctx.udev.mode;
  const signal = checkSignal(opts.signal, 'options.signal');
  if (signal?.aborted === true) throw abortError(signal);
  return { mode: effectiveMode(mode), timeout: ctx.udev.timeout, signal };
}

/** The program's result, turned into the command's. */
function* map<T, U>(program: Program<T>, f: (value: T) => U): Program<U> {
  return f(yield* program);
}

/** dm core messages that only report (dm-stats listing and printing): safe to send again. */
const READ_ONLY_MESSAGE = /^@stats_(list|print)(\s|$)/;

/** The load and suspend flags of reload's and update's options. */
function reloadFlags(ctx: Context, options: ReloadOptions | undefined): { loadFlags: number; suspendFlags: number; udev: UdevPlan } {
  const opts = checkOptions(options, 'options', ['noFlush', 'noLockfs', 'readOnly', 'secure', 'udev', 'signal']);
  let loadFlags = checkBoolean(opts.readOnly, 'options.readOnly', false) ? Flag.READONLY : 0;
  // By default with DM_SECURE_DATA: the live table a reload reads (to put it back) may hold a
  // key whatever the new one holds, and the wiping costs next to nothing.
  if (checkBoolean(opts.secure, 'options.secure', true)) loadFlags |= Flag.SECURE_DATA;
  let suspendFlags = Flag.SUSPEND;
  if (checkBoolean(opts.noFlush, 'options.noFlush', false)) suspendFlags |= Flag.NOFLUSH;
  if (checkBoolean(opts.noLockfs, 'options.noLockfs', false)) suspendFlags |= Flag.SKIP_LOCKFS;
  return { loadFlags, suspendFlags, udev: udevPlan(ctx, opts) };
}

function checkTable(value: unknown, name: string): Table {
  if (!(value instanceof Table)) throw expected('a Table', name, value);
  return value;
}

function checkPrefix(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw expected('a string', name, value);
  return checkWellFormed(value, name);
}

export function version(v: readonly number[]): [number, number, number] {
  return [v[0] ?? 0, v[1] ?? 0, v[2] ?? 0];
}

/** The queue key of a device as the caller names it. */
function lockKey(id: ResolvedId): string {
  if (id.uuid !== undefined) return `uuid:${id.uuid}`;
  if (id.dev !== undefined) return `dev:${id.dev}`;
  return `name:${id.name ?? ''}`;
}

export function idRequest(id: ResolvedId): Pick<NativeRequest, 'name' | 'uuid' | 'dev'> {
  if (id.uuid !== undefined) return { uuid: id.uuid };
  if (id.dev !== undefined) return { dev: id.dev };
  return { name: id.name ?? '' };
}

/** `{ cmd, flags, ...idRequest(id) }`, made in one piece (no spread: the commonest request of all). */
export function devRequest(cmd: number, flags: number, id: ResolvedId): NativeRequest {
  if (id.uuid !== undefined) return { cmd, flags, uuid: id.uuid };
  if (id.dev !== undefined) return { cmd, flags, dev: id.dev };
  return { cmd, flags, name: id.name ?? '' };
}


/** LIST_DEVICES, with uuids. */
export function listDevices(): Cmd<DeviceListEntry[]> {
  return { program: listProgram() };
}

/** LIST_VERSIONS. */
export function listTargets(): Cmd<TargetTypeVersion[]> {
  return { program: oneIoctl({ cmd: Command.LIST_VERSIONS, flags: 0 }, undefined, targetVersions) };
}

function targetVersions(r: NativeResult): TargetTypeVersion[] {
  return (r.versions ?? []).map((v) => ({ name: v.name, version: version(v.version) }));
}

/** GET_TARGET_VERSION (LIST_VERSIONS before interface 4.41). */
export function targetVersion(ctx: Context, type: string): Cmd<[number, number, number]> {
  const name = checkTargetType(type, 'type');
  if (ctx.driverVersion[1] < 41) {
    return {
      program: oneIoctl({ cmd: Command.LIST_VERSIONS, flags: 0 }, undefined, (r) => {
        const found = targetVersions(r).find((t) => t.name === name);
        if (!found) throw new DmError({ errno: 22, syscall: 'ioctl', command: 'DM_LIST_VERSIONS', device: name, message: `DM_LIST_VERSIONS: no target type ${name}` });
        return found.version;
      }),
    };
  }
  return {
    program: oneIoctl({ cmd: Command.GET_TARGET_VERSION, flags: 0, name }, name, (r) => {
      const v = r.versions?.[0];
      if (v === undefined) throw new DmError({ errno: 71, syscall: 'ioctl', command: 'DM_GET_TARGET_VERSION', device: name, message: `DM_GET_TARGET_VERSION ${name}: the kernel answered with no version` });
      return version(v.version);
    }),
  };
}

/** DEV_CREATE, and with a table TABLE_LOAD and resume, rolled back on failure. */
export function create(ctx: Context, name: string, options: CreateOptions | undefined): Cmd<DeviceInfo> {
  const devName = checkName(name);
  const opts = checkOptions(options, 'options', ['table', 'uuid', 'readOnly', 'activate', 'secure', 'udev', 'signal']);
  const uuid = opts.uuid === undefined ? undefined : checkUuid(opts.uuid, 'options.uuid');
  const table = opts.table === undefined ? undefined : checkTable(opts.table, 'options.table');
  let loadFlags = checkBoolean(opts.readOnly, 'options.readOnly', false) ? Flag.READONLY : 0;
  if (checkBoolean(opts.secure, 'options.secure', table?.holdsSecrets ?? false)) loadFlags |= Flag.SECURE_DATA;
  const activate = checkBoolean(opts.activate, 'options.activate', true);
  const udev = udevPlan(ctx, opts);
  const program = createProgram({ name: devName, uuid, rows: table === undefined ? undefined : rowsOf(table), loadFlags, activate, udev });
  return { program: map(program, (r) => infoOf(r, devName)), key: `name:${devName}` };
}

/** DEV_STATUS. */
export function info(id: DevId, options: QueryOptions | undefined): Cmd<DeviceInfo> {
  const dev = resolveId(id);
  const opts = checkOptions(options, 'options', ['inactive']);
  const flags = checkBoolean(opts.inactive, 'options.inactive', false) ? Flag.QUERY_INACTIVE_TABLE : 0;
  return { program: oneIoctl(devRequest(Command.DEV_STATUS, flags, dev), dev.label, (r) => infoOf(r, dev.label)) };
}

/** TABLE_LOAD. */
export function load(id: DevId, table: Table, options: LoadOptions | undefined): Cmd<DeviceInfo> {
  const dev = resolveId(id);
  const t = checkTable(table, 'table');
  const opts = checkOptions(options, 'options', ['readOnly', 'secure']);
  let flags = checkBoolean(opts.readOnly, 'options.readOnly', false) ? Flag.READONLY : 0;
  if (checkBoolean(opts.secure, 'options.secure', t.holdsSecrets)) flags |= Flag.SECURE_DATA;
  return { program: loadProgram(devRequest(Command.TABLE_LOAD, flags, dev), rowsOf(t), dev.label), key: lockKey(dev) };
}

/** TABLE_LOAD of `rows` (a large table's rows handed over in slices). */
function* loadProgram(request: NativeRequest, rows: readonly NativeTargetSpec[], label: string): Program<DeviceInfo> {
  return infoOf(yield* call({ ...request, targets: yield* targetsOf(rows) }, label), label);
}

/** DEV_SUSPEND with the suspend flag. */
export function suspend(id: DevId, options: SuspendOptions | undefined): Cmd<DeviceInfo> {
  const dev = resolveId(id);
  const opts = checkOptions(options, 'options', ['noFlush', 'noLockfs']);
  let flags = Flag.SUSPEND;
  if (checkBoolean(opts.noFlush, 'options.noFlush', false)) flags |= Flag.NOFLUSH;
  if (checkBoolean(opts.noLockfs, 'options.noLockfs', false)) flags |= Flag.SKIP_LOCKFS;
  return { program: oneIoctl(devRequest(Command.DEV_SUSPEND, flags, dev), dev.label, (r) => infoOf(r, dev.label)), key: lockKey(dev) };
}

/** DEV_SUSPEND without it: resume. */
export function resume(ctx: Context, id: DevId, options: UdevCallOptions | undefined): Cmd<DeviceInfo> {
  const dev = resolveId(id);
  const udev = udevPlan(ctx, checkOptions(options, 'options', ['udev', 'signal']));
  return { program: map(resumeProgram(idRequest(dev), dev.label, udev), (r) => infoOf(r, dev.label)), key: lockKey(dev) };
}

/** DEV_SUSPEND without the suspend flag, its uevent waited for, the device's node made. */
function* resumeProgram(id: Pick<NativeRequest, 'name' | 'uuid' | 'dev'>, label: string, udev: UdevPlan): Program<NativeResult> {
  const { result, udevError } = yield* ueventCall({ cmd: Command.DEV_SUSPEND, flags: 0, ...id }, label, udev);
  yield* afterUevent(udev, udevError, { kind: 'ensure', name: result.name, dev: decodeDev(exactNumber(result.dev, 'dev', label)) });
  return result;
}

/** Load, suspend, resume, the device put back as it was on failure. */
export function reload(ctx: Context, id: DevId, table: Table, options: ReloadOptions | undefined): Cmd<DeviceInfo> {
  const dev = resolveId(id);
  const t = checkTable(table, 'table');
  const { loadFlags, suspendFlags, udev } = reloadFlags(ctx, options);
  const program = reloadProgram({ id: idRequest(dev), label: dev.label, rows: rowsOf(t), loadFlags, suspendFlags, udev });
  return { program: map(program, (r) => infoOf(r, dev.label)), key: lockKey(dev) };
}

/** A reload with the table `change` makes from the live one, read under the device's lock. */
export function update(ctx: Context, id: DevId, change: (table: Table | undefined) => Table, options: ReloadOptions | undefined): Cmd<DeviceInfo> {
  const dev = resolveId(id);
  if (typeof change !== 'function') throw expected('a function (table) => Table', 'change', change);
  const { loadFlags, suspendFlags, udev } = reloadFlags(ctx, options);
  const rows = (live: NativeTargetSpec[]): readonly NativeTargetSpec[] => {
    const next: unknown = change(live.length === 0 ? undefined : Table.fromKernelRows(live));
    return rowsOf(checkTable(next, 'the table change returned'));
  };
  const program = reloadProgram({ id: idRequest(dev), label: dev.label, rows, loadFlags, suspendFlags, udev });
  return { program: map(program, (r) => infoOf(r, dev.label)), key: lockKey(dev) };
}

/** TABLE_CLEAR. */
export function clear(id: DevId): Cmd<DeviceInfo> {
  const dev = resolveId(id);
  return { program: oneIoctl(devRequest(Command.TABLE_CLEAR, 0, dev), dev.label, (r) => infoOf(r, dev.label)), key: lockKey(dev) };
}

/** TABLE_STATUS with the table flag: the typed table. */
export function table(id: DevId, options: TableOptions | undefined): Cmd<Table | undefined> {
  const dev = resolveId(id);
  const opts = checkOptions(options, 'options', ['inactive', 'secure']);
  let flags = Flag.STATUS_TABLE;
  if (checkBoolean(opts.inactive, 'options.inactive', false)) flags |= Flag.QUERY_INACTIVE_TABLE;
  if (checkBoolean(opts.secure, 'options.secure', false)) flags |= Flag.SECURE_DATA;
  const secure = (flags & Flag.SECURE_DATA) !== 0;
  return { program: oneIoctl(devRequest(Command.TABLE_STATUS, flags, dev), dev.label, (r) => tableOf(r, dev.label, secure)) };
}

/** The rows of a table answer, typed, in slices when many (a secure answer's buffer wiped after). */
function tableOf(r: NativeResult, label: string, secure: boolean): Table | undefined | Continue<Table | undefined> {
  const rows = new RowReader(r, label);
  // A row whose type and params repeat the row before (a zero or error fill) shares its
  // frozen target.
  let last: TableRow | undefined;
  let lastType = '';
  let lastParams = '';
  const row = (i: number): TableRow => {
    const type = rows.type(i);
    const params = rows.params(i);
    const repeat = last !== undefined && type === lastType && params === lastParams;
    last = repeat && last !== undefined ? sameTarget(last, rows.start(i), rows.length(i)) : kernelRow(rows.start(i), rows.length(i), type, params);
    lastType = type;
    lastParams = params;
    return last;
  };
  return build(rows.count, row, (out) => (out.length === 0 ? undefined : adoptRows(out)), secure ? () => rows.wipe() : undefined);
}

/** TABLE_STATUS: the typed status of each row. */
export function status(ctx: Context, id: DevId, options: StatusOptions | undefined): Cmd<StatusRow[]> {
  const dev = resolveId(id);
  const opts = checkOptions(options, 'options', ['inactive', 'noFlush', 'ima']);
  let flags = 0;
  if (checkBoolean(opts.inactive, 'options.inactive', false)) flags |= Flag.QUERY_INACTIVE_TABLE;
  if (checkBoolean(opts.noFlush, 'options.noFlush', false)) flags |= Flag.NOFLUSH;
  const ima = checkBoolean(opts.ima, 'options.ima', false);
  if (ima) {
    if (ctx.driverVersion[1] < 45) {
      throw new RangeError(`Expected a device-mapper interface of 4.45 or later for options.ima but the kernel has ${ctx.driverVersion.join('.')}`);
    }
    flags |= Flag.IMA_MEASUREMENT;
  }
  return { program: oneIoctl(devRequest(Command.TABLE_STATUS, flags, dev), dev.label, (r) => statusOf(r, dev.label, ima)) };
}

/** The typed status rows of an answer, in slices when many (IMA measurement text is not a status: raw). */
function statusOf(r: NativeResult, label: string, ima: boolean): StatusRow[] | Continue<StatusRow[]> {
  const rows = new RowReader(r, label);
  const row = (i: number): StatusRow => {
    const type = rows.type(i);
    const params = rows.params(i);
    if (ima) return Object.freeze({ start: rows.start(i), length: rows.length(i), type, status: rawStatus(type, params) });
    return kernelStatusRow(rows.start(i), rows.length(i), type, params);
  };
  return build(rows.count, row, (out) => out);
}

/** TABLE_DEPS. */
export function deps(id: DevId, options: QueryOptions | undefined): Cmd<DevNumber[]> {
  const dev = resolveId(id);
  const opts = checkOptions(options, 'options', ['inactive']);
  const flags = checkBoolean(opts.inactive, 'options.inactive', false) ? Flag.QUERY_INACTIVE_TABLE : 0;
  return { program: oneIoctl(devRequest(Command.TABLE_DEPS, flags, dev), dev.label, (r) => (r.deps ?? []).map((d) => decodeDev(exactNumber(d, 'a dependency', dev.label)))) };
}

/** TARGET_MSG: the target's output, if it gave any. */
export function message(id: DevId, text: string, options: MessageOptions | undefined): Cmd<string | undefined> {
  const dev = resolveId(id);
  const msg = checkMessage(text);
  const opts = checkOptions(options, 'options', ['sector', 'secure', 'repeatable']);
  const sector = opts.sector === undefined ? 0 : checkSector(opts.sector, 'options.sector');
  const flags = checkBoolean(opts.secure, 'options.secure', false) ? Flag.SECURE_DATA : 0;
  const repeatable = checkBoolean(opts.repeatable, 'options.repeatable', READ_ONLY_MESSAGE.test(msg));
  return { program: oneIoctl({ cmd: Command.TARGET_MSG, flags, ...idRequest(dev), sector, message: msg, repeatable }, dev.label, (r) => r.data) };
}

/** DEV_RENAME of the name (the device looked up by name first when named otherwise). */
export function rename(ctx: Context, id: DevId, newName: string, options: UdevCallOptions | undefined): Cmd<DeviceInfo> {
  const dev = resolveId(id);
  const name = checkName(newName, 'newName');
  const udev = udevPlan(ctx, checkOptions(options, 'options', ['udev', 'signal']));
  return { program: map(renameProgram(idRequest(dev), dev.label, name, false, udev), (r) => infoOf(r, name)), key: lockKey(dev) };
}

/** DEV_RENAME of the uuid. */
export function setUuid(ctx: Context, id: DevId, uuid: string, options: UdevCallOptions | undefined): Cmd<DeviceInfo> {
  const dev = resolveId(id);
  const value = checkUuid(uuid);
  const udev = udevPlan(ctx, checkOptions(options, 'options', ['udev', 'signal']));
  return { program: map(renameProgram(idRequest(dev), dev.label, value, true, udev), (r) => infoOf(r, dev.label)), key: lockKey(dev) };
}

/** DEV_REMOVE, EBUSY retried. */
export function remove(ctx: Context, id: DevId, options: RemoveOptions | undefined): Cmd<void> {
  const dev = resolveId(id);
  const opts = checkOptions(options, 'options', ['deferred', 'retries', 'force', 'udev', 'signal']);
  const deferred = checkBoolean(opts.deferred, 'options.deferred', false);
  const retries = opts.retries === undefined ? 5 : checkInteger(opts.retries, 'options.retries', 0, 100);
  const force = checkBoolean(opts.force, 'options.force', false);
  const udev = udevPlan(ctx, opts);
  const flags = deferred ? Flag.DEFERRED_REMOVE : 0;
  if (force) return { program: forceRemoveProgram(idRequest(dev), dev.label, flags, retries, udev), key: lockKey(dev) };
  // Without nodes to look after, a device named by name or uuid need not be looked up first.
  // One named by number is (then removed by uuid or name): the kernel hands a freed number to
  // the next new device at once, so an EBUSY retry by number could remove another device.
  if (udev.mode === 'off' && dev.dev === undefined) return { program: removeProgram(devRequest(Command.DEV_REMOVE, flags, dev), dev.label, retries, udev), key: lockKey(dev) };
  if (udev.mode === 'off') return { program: removeFoundProgram(idRequest(dev), dev.label, flags, retries, udev), key: lockKey(dev) };
  return { program: removeDeviceProgram(idRequest(dev), dev.label, flags, retries, udev), key: lockKey(dev) };
}

/** LIST_DEVICES, then `/dev/mapper` made to agree with it. */
export function mknodes(): Cmd<MknodesResult> {
  return { program: mknodesProgram() };
}

function* mknodesProgram(): Program<MknodesResult> {
  const devices = listEntries(yield* call({ cmd: Command.LIST_DEVICES, flags: 0 }, undefined));
  const answer = yield { kind: 'node', op: { kind: 'reconcile', devices: devices.map((d) => ({ name: d.name, dev: d.dev })) } };
  if (answer.nodes === undefined) throw new Error('internal error: no answer to the reconciliation');
  return answer.nodes;
}

/** REMOVE_ALL, or with a filter the matching devices top-down. */
export function removeAll(ctx: Context, options: RemoveAllOptions | undefined): Cmd<string[]> {
  const opts = checkOptions(options, 'options', ['deferred', 'prefix', 'uuidPrefix', 'udev']);
  const udev = udevPlan(ctx, opts);
  const flags = checkBoolean(opts.deferred, 'options.deferred', false) ? Flag.DEFERRED_REMOVE : 0;
  const prefix = checkPrefix(opts.prefix, 'options.prefix');
  const uuidPrefix = checkPrefix(opts.uuidPrefix, 'options.uuidPrefix');
  if (prefix === undefined && uuidPrefix === undefined) return { program: removeAllProgram(flags, udev) };
  return { program: removeMatching(flags, (d) => matches(d, prefix, uuidPrefix), udev) };
}

/** The devices left suspended, with an inactive table or without a live table; repaired when asked. */
export function recover(options: RecoverOptions | undefined): Cmd<RecoveredDevice[]> {
  const opts = checkOptions(options, 'options', ['prefix', 'uuidPrefix', 'repair']);
  const prefix = checkPrefix(opts.prefix, 'options.prefix');
  const uuidPrefix = checkPrefix(opts.uuidPrefix, 'options.uuidPrefix');
  const repair = checkBoolean(opts.repair, 'options.repair', false);
  if (repair && prefix === undefined && uuidPrefix === undefined) {
    throw new RangeError("Expected options.prefix or options.uuidPrefix with options.repair (other tools may suspend their own devices on purpose; prefix '' means every device) but received neither");
  }
  return { program: recoverMatching(repair, (d) => matches(d, prefix, uuidPrefix)) };
}

/** DEV_SET_GEOMETRY. */
export function setGeometry(id: DevId, geometry: Geometry): Cmd<DeviceInfo> {
  const dev = resolveId(id);
  if (typeof geometry !== 'object' || geometry === null) throw expected('{ cylinders, heads, sectors, start }', 'geometry', geometry);
  const g = checkOptions(geometry, 'geometry', ['cylinders', 'heads', 'sectors', 'start']);
  // The kernel's limits (dm-ioctl.c dev_set_geometry): 16-bit cylinders, 8-bit heads and sectors.
  const cylinders = checkInteger(g.cylinders, 'geometry.cylinders', 0, 65535);
  const heads = checkInteger(g.heads, 'geometry.heads', 0, 255);
  const sectors = checkInteger(g.sectors, 'geometry.sectors', 0, 255);
  const start = checkSector(g.start, 'geometry.start');
  const data = `${cylinders} ${heads} ${sectors} ${start}`;
  return { program: map(geometryProgram(idRequest(dev), dev.label, data), (r) => infoOf(r, dev.label)), key: lockKey(dev) };
}

function matches(d: { name: string; uuid?: string }, prefix: string | undefined, uuidPrefix: string | undefined): boolean {
  if (prefix !== undefined && !d.name.startsWith(prefix)) return false;
  if (uuidPrefix !== undefined && (d.uuid === undefined || !d.uuid.startsWith(uuidPrefix))) return false;
  return true;
}

/** Device `i` of a LIST_DEVICES answer. */
function entryAt(devices: DeviceReader, i: number): DeviceListEntry {
  return devices.entry(i, makeEntry);
}

/**
 * A device list entry, made whole in one object literal of its final shape: a property added
 * after the literal would take a second allocation (its backing store) per entry.
 */
function makeEntry(name: string, dev: number, uuid: string | undefined, eventNr: number | undefined): DeviceListEntry {
  const d = decodeDev(dev);
  if (uuid !== undefined && uuid !== '') return eventNr !== undefined ? { name, dev: d, uuid, eventNr } : { name, dev: d, uuid };
  return eventNr !== undefined ? { name, dev: d, eventNr } : { name, dev: d };
}

/** The device list of a LIST_DEVICES answer. */
export function listEntries(r: NativeResult): DeviceListEntry[] {
  const devices = new DeviceReader(r);
  const out: DeviceListEntry[] = [];
  for (let i = 0; i < devices.count; i++) out.push(entryAt(devices, i));
  return out;
}

/** LIST_DEVICES, its answer turned into entries (in slices when many). */
function listProgram(): Program<DeviceListEntry[]> {
  return oneIoctl({ cmd: Command.LIST_DEVICES, flags: Flag.UUID }, undefined, (r) => {
    const devices = new DeviceReader(r);
    return build(devices.count, (i) => entryAt(devices, i), (out) => out);
  });
}

/**
 * DM_REMOVE_ALL (its uevents carry no cookie); in fallback mode `/dev/mapper` is then made to
 * agree with the devices that are left.
 */
function* removeAllProgram(flags: number, udev: UdevPlan): Program<string[]> {
  yield* call({ cmd: Command.REMOVE_ALL, flags }, undefined);
  if (udev.mode === 'fallback') yield* mknodesProgram();
  return [];
}

/** Removes the listed devices that match, top-down (a device others use is busy until they go). */
function* removeMatching(flags: number, match: (d: DeviceListEntry) => boolean, udev: UdevPlan): Program<string[]> {
  const listed = yield* call({ cmd: Command.LIST_DEVICES, flags: Flag.UUID }, undefined);
  let left = listEntries(listed).filter(match);
  const removed: string[] = [];
  let lastError: unknown;
  while (left.length > 0) {
    const busy: DeviceListEntry[] = [];
    for (const d of left) {
      const ref = d.uuid !== undefined ? { uuid: d.uuid } : { name: d.name };
      try {
        yield* removeProgram({ cmd: Command.DEV_REMOVE, flags, ...ref }, d.name, 0, udev, { name: d.name, dev: d.dev });
        removed.push(d.name);
      } catch (e) {
        if (e instanceof DmError && e.code === 'ENXIO') continue; // gone meanwhile
        if (!(e instanceof DmError && e.code === 'EBUSY')) {
          // What was done before it, which the caller cannot get otherwise.
          if (e instanceof DmError) e.message = `${e.message} (removed before it: ${removed.length === 0 ? 'none' : removed.join(', ')})`;
          throw e;
        }
        lastError = e;
        busy.push(d);
      }
    }
    if (busy.length === left.length) {
      if (lastError instanceof DmError) {
        lastError.message = `${lastError.message} (still in use: ${busy.map((d) => d.name).join(', ')}; removed: ${removed.length === 0 ? 'none' : removed.join(', ')})`;
      }
      throw lastError;
    }
    left = busy;
  }
  return removed;
}

/** Looks at each listed device that matches (see recoverProgram); one that went meanwhile is skipped. */
function* recoverMatching(repair: boolean, match: (d: DeviceListEntry) => boolean): Program<RecoveredDevice[]> {
  const listed = listEntries(yield* call({ cmd: Command.LIST_DEVICES, flags: Flag.UUID }, undefined));
  const found: RecoveredDevice[] = [];
  for (const d of listed.filter(match)) {
    const ref = d.uuid !== undefined ? { uuid: d.uuid } : { name: d.name };
    try {
      found.push(...(yield* recoverProgram(ref, d, repair)));
    } catch (e) {
      if (e instanceof DmError && e.code === 'ENXIO') continue; // gone meanwhile
      throw e;
    }
  }
  return found;
}

/** Looks at one device and, with `repair`, clears its inactive table and resumes it. */
function* recoverProgram(ref: { uuid: string } | { name: string }, listed: DeviceListEntry, repair: boolean): Program<RecoveredDevice[]> {
  const label = listed.name;
  const first = yield* call({ cmd: Command.DEV_STATUS, flags: 0, ...ref }, label);
  const ours = identityOf(first, label);
  if (formatDev(decodeDev(ours.dev)) !== formatDev(listed.dev)) return []; // replaced since the listing
  yield* lockDevice(ours.dev);
  const status = yield* call({ cmd: Command.DEV_STATUS, flags: 0, ...refOf(ours) }, label);
  const suspended = (status.flags & Flag.SUSPEND) !== 0;
  const inactiveTable = (status.flags & Flag.INACTIVE_PRESENT) !== 0;
  const activeTable = (status.flags & Flag.ACTIVE_PRESENT) !== 0;
  if (!suspended && !inactiveTable && activeTable) return [];
  const found: RecoveredDevice = { name: ours.name, uuid: ours.uuid, dev: decodeDev(ours.dev), suspended, inactiveTable, activeTable, repaired: false };
  if (!repair) return [found];
  try {
    if (!activeTable) {
      yield* call({ cmd: Command.DEV_REMOVE, flags: 0, ...refOf(ours) }, label);
    } else {
      if (inactiveTable) yield* call({ cmd: Command.TABLE_CLEAR, flags: 0, ...refOf(ours) }, label);
      if (suspended) yield* call({ cmd: Command.DEV_SUSPEND, flags: 0, ...refOf(ours) }, label);
    }
    found.repaired = true;
  } catch (e) {
    found.error = e instanceof Error ? e : new Error(String(e));
  }
  return [found];
}

/** DEV_SET_GEOMETRY answers without the device's status: ask for it after. */
function* geometryProgram(id: Pick<NativeRequest, 'name' | 'uuid' | 'dev'>, label: string, data: string): Program<NativeResult> {
  yield* call({ cmd: Command.DEV_SET_GEOMETRY, flags: 0, ...id, data }, label);
  return yield* call({ cmd: Command.DEV_STATUS, flags: 0, ...id }, label);
}

/** A table's rows as a load request carries them: its own frozen rows, which have the four fields. */
function rowsOf(table: Table): readonly { start: number; length: number; type: string; params: string }[] {
  return table.rows;
}

/** DeviceInfo from a DEV_STATUS-like answer. */
export function infoOf(r: NativeResult, label?: string): DeviceInfo {
  const dev = decodeDev(exactNumber(r.dev, 'dev', label));
  return {
    name: r.name,
    uuid: r.uuid,
    dev,
    path: `/dev/dm-${dev.minor}`,
    mapperPath: mapperPath(r.name),
    openCount: r.openCount,
    eventNr: r.eventNr,
    targetCount: r.targetCount,
    suspended: (r.flags & Flag.SUSPEND) !== 0,
    readOnly: (r.flags & Flag.READONLY) !== 0,
    activeTable: (r.flags & Flag.ACTIVE_PRESENT) !== 0,
    inactiveTable: (r.flags & Flag.INACTIVE_PRESENT) !== 0,
    deferredRemove: (r.flags & Flag.DEFERRED_REMOVE) !== 0,
    internalSuspend: (r.flags & Flag.INTERNAL_SUSPEND) !== 0,
  };
}
