/**
 * Commands as step programs: each command's logic (and each multi-step transaction with its
 * rollback) is written once, as a generator that yields the requests it needs and receives the
 * kernel's answers. The client drives them; nothing here touches the kernel by itself.
 * @internal
 */
import type { NativeRequest, NativeResult, NativeTargetList, NativeTargetSpec } from '../binding';
import { binding } from './binding';
import { Command, Flag } from './constants';
import { decodeDev, formatDev, type DevNumber } from './dev';
import { RowReader } from './answer';
import { DmError, exactNumber } from './errors';
import type { MknodesResult, NodeOp, NodeSeen } from './nodes';
import { cookieEventNr, udevFlags, type Cookie, type CookieWait, type UdevPlan } from './udev';

/** Run one ioctl; the answer (or the DmError, thrown into the program) comes back. */
export interface IoctlStep {
  readonly kind: 'ioctl';
  readonly request: NativeRequest;
  /** How the device is named in error messages. */
  readonly device: string | undefined;
}

/**
 * The request itself when it has payload fields (targets, data, message, sector, repeatable),
 * else undefined: the last argument of the addon's `call`/`callSync`, which take the header
 * fields as arguments.
 */
export function payloadOf(r: NativeRequest): NativeRequest | undefined {
  return r.targets !== undefined || r.data !== undefined || r.message !== undefined || r.sector !== undefined || r.repeatable !== undefined ? r : undefined;
}

/** Pause (bounded backoff before a retry). */
export interface SleepStep {
  readonly kind: 'sleep';
  readonly ms: number;
}

/**
 * Hold the client's lock for this device number until the program ends. The answer says
 * whether another transaction of this client may have changed the device meanwhile.
 */
export interface LockStep {
  readonly kind: 'lock';
  readonly key: string;
}

/**
 * Let other work run: between slices of a large answer being turned into objects, so that no
 * call blocks the event loop for long. The asynchronous driver yields to the event loop; the
 * synchronous one goes on at once.
 */
export interface YieldStep {
  readonly kind: 'yield';
}

/** Make a udev cookie (a semaphore) for the next ioctl; the answer carries it. */
export interface CookieStep {
  readonly kind: 'cookie';
  readonly flags: number;
}

/**
 * Wait until udev has completed a cookie (the asynchronous driver off the event loop), and
 * remove its semaphore whatever happens.
 */
export interface CookieWaitStep {
  readonly kind: 'cookieWait';
  readonly wait: CookieWait;
}

/** Make, move or remove `/dev/mapper` nodes (ts/nodes.ts). */
export interface NodeStep {
  readonly kind: 'node';
  readonly op: NodeOp;
}

/** What a program asks of its driver. */
export type Step = IoctlStep | SleepStep | LockStep | YieldStep | CookieStep | CookieWaitStep | NodeStep;

/** What the driver answers. */
export interface Answer {
  readonly result?: NativeResult;
  readonly stale?: boolean;
  readonly cookie?: Cookie;
  readonly nodes?: MknodesResult;
  /** The answer to an `inspect` node step. */
  readonly seen?: NodeSeen;
}

/** A command's logic: yields steps, receives answers, returns the command's result. */
export type Program<T> = Generator<Step, T, Answer>;

/**
 * A driver's side of a running program, the same for both drivers: it hands the program the
 * answer to its last step (or throws the failure into it) and counts the ioctls the steps made.
 */
export class ProgramRun<T> {
  #answer: Answer = {};
  #failure: { error: unknown } | undefined;

  constructor(private readonly program: Program<T>, private readonly counts: IoctlCounts) {}

  /** The program's next step, or its result, after the answer or failure given last. */
  next(): IteratorResult<Step, T> {
    const failure = this.#failure;
    this.#failure = undefined;
    return failure === undefined ? this.program.next(this.#answer) : this.program.throw(failure.error);
  }

  /** What the driver answers to a step other than an ioctl. */
  answer(answer: Answer): void {
    this.#answer = answer;
  }

  /** The kernel's answer to the ioctl step. */
  answered(result: NativeResult): void {
    countAnswer(this.counts, result);
    this.#answer = { result };
  }

  /** The ioctl step failed with `error` (already a DmError), thrown into the program next. */
  failed(error: unknown): void {
    countFailure(this.counts);
    this.#failure = { error };
  }

  /** A step other than an ioctl failed with `error`, thrown into the program next. */
  threw(error: unknown): void {
    this.#failure = { error };
  }
}

/** How many DM commands a client has sent (failed ones included) and the ioctls they took. */
export interface IoctlCounts {
  commands: number;
  ioctls: number;
}

/** Counts a command the kernel answered. */
export function countAnswer(counts: IoctlCounts, result: NativeResult): void {
  counts.commands++;
  counts.ioctls += result.ioctls;
}

/** Counts a command that failed (one ioctl). */
export function countFailure(counts: IoctlCounts): void {
  counts.commands++;
  counts.ioctls++;
}

/** Runs one ioctl and returns the kernel's answer. */
export function* call(request: NativeRequest, device: string | undefined): Generator<Step, NativeResult, Answer> {
  const answer = yield { kind: 'ioctl', request, device };
  if (answer.result === undefined) throw new Error(`internal error: no answer to ${String(request.cmd)}`);
  return answer.result;
}

/** A program of one ioctl. */
export function* single(request: NativeRequest, device: string | undefined): Program<NativeResult> {
  return yield* call(request, device);
}

const RESUMED = 'internal error: a finished program was resumed';

/**
 * What a one-ioctl program's `finish` gives instead of the result when the answer is too large
 * to turn into it at once: the program that goes on (in slices) from there.
 */
export class Continue<U> {
  constructor(readonly program: Program<U>) {}
}

/**
 * A program of one ioctl whose answer `finish` turns into the result (or into the program that
 * goes on, see Continue): what most commands are, written as a plain iterator (the same steps
 * as `map(call(...), finish)`), without the two generator objects and their frames a call
 * would otherwise allocate. A driver may also send `step` itself and hand the answer to
 * `finish` (what `next` does with it).
 */
export class OneIoctl<U> implements Program<U> {
  /** The ioctl. */
  readonly step: IoctlStep;
  readonly #finish: (r: NativeResult) => U | Continue<U>;
  #state: 'new' | 'sent' | 'done' = 'new';
  /** The program that goes on from a large answer. */
  #rest: Program<U> | undefined;

  constructor(request: NativeRequest, device: string | undefined, finish: (r: NativeResult) => U | Continue<U>) {
    this.step = { kind: 'ioctl', request, device };
    this.#finish = finish;
  }

  next(answer?: Answer): IteratorResult<Step, U> {
    if (this.#rest !== undefined) return this.#rest.next(answer ?? {});
    if (this.#state === 'new') {
      this.#state = 'sent';
      return { done: false, value: this.step };
    }
    if (this.#state === 'done') throw new Error(RESUMED);
    const result = answer?.result;
    if (result === undefined) throw new Error(`internal error: no answer to ${String(this.step.request.cmd)}`);
    const value = this.finish(result);
    if (!(value instanceof Continue)) return { done: true, value };
    this.#rest = value.program;
    return this.#rest.next({});
  }

  /** The command's result (or the program that goes on) from the kernel's answer to `step`; once. */
  finish(result: NativeResult): U | Continue<U> {
    if (this.#state === 'done') throw new Error(RESUMED);
    this.#state = 'done';
    return this.#finish(result);
  }

  throw(error: unknown): IteratorResult<Step, U> {
    if (this.#rest !== undefined) return this.#rest.throw(error);
    this.#state = 'done';
    throw error;
  }

  return(value: U): IteratorResult<Step, U> {
    if (this.#rest !== undefined) return this.#rest.return(value);
    this.#state = 'done';
    return { done: true, value };
  }

  [Symbol.iterator](): this {
    return this;
  }
}

/** True when `program` is a OneIoctl (of the same result type: it was made as `Program<T>`). */
export function isOneIoctl<T>(program: Program<T>): program is OneIoctl<T> {
  return program instanceof OneIoctl;
}

/** One ioctl, its answer turned into the command's result (or the program that goes on) by `finish`. */
export function oneIoctl<U>(request: NativeRequest, device: string | undefined, finish: (r: NativeResult) => U | Continue<U>): Program<U> {
  return new OneIoctl(request, device, finish);
}

/** The answer to an ioctl that makes a uevent, and how udev's part of it ended. */
export interface UeventAnswer {
  readonly result: NativeResult;
  /** Why the wait for udev failed (a timeout, an abort), raised once the program's own checks are done. */
  readonly udevError: unknown;
}

/**
 * An ioctl that makes a uevent (resume, remove, rename): sent with the udev flags of its mode
 * in `event_nr` and, in sync mode, a cookie, which is waited for at once (its semaphore is
 * gone when this returns or throws). A failed ioctl completes the cookie itself and throws.
 * Without a plan the request goes as it is.
 */
export function* ueventCall(request: NativeRequest, label: string, udev: UdevPlan | undefined): Generator<Step, UeventAnswer, Answer> {
  if (udev === undefined) return { result: yield* call(request, label), udevError: undefined };
  const flags = udevFlags(udev.mode);
  if (udev.mode !== 'sync') return { result: yield* call({ ...request, eventNr: cookieEventNr(0, flags) }, label), udevError: undefined };
  const { cookie } = yield { kind: 'cookie', flags };
  if (cookie === undefined) throw new Error('internal error: no cookie');
  const what = `${commandName(request.cmd)} ${label}`;
  let result: NativeResult;
  try {
    result = yield* call({ ...request, eventNr: cookie.eventNr }, label);
  } catch (e) {
    try {
      // No uevent came of it: complete it for udev and for ourselves; the semaphore goes.
      yield { kind: 'cookieWait', wait: { cookie, generated: false, timeout: udev.timeout, signal: undefined, what } };
    } catch {
      // the ioctl's own failure is the one to report
    }
    throw e;
  }
  const generated = (result.flags & Flag.UEVENT_GENERATED) !== 0;
  try {
    yield { kind: 'cookieWait', wait: { cookie, generated, timeout: udev.timeout, signal: udev.signal, what } };
    return { result, udevError: undefined };
  } catch (e) {
    return { result, udevError: e };
  }
}

/**
 * After a uevent's ioctl and the program's checks: raises the wait's failure, if any, else
 * brings `/dev/mapper` in line. Fallback mode makes, moves and removes the nodes; in sync mode
 * udev's rules own `/dev/mapper` (the cookie says DISABLE_LIBRARY_FALLBACK, as dmsetup's do),
 * and only a block node of the removed device that this library made earlier, when udev was
 * absent, is removed.
 */
export function* afterUevent(udev: UdevPlan | undefined, udevError: unknown, op: NodeOp | undefined): Generator<Step, void, Answer> {
  // eslint-disable-next-line @typescript-eslint/only-throw-error -- a caught failure, rethrown as it came
  if (udevError !== undefined) throw udevError;
  if (udev === undefined || udev.mode === 'off' || op === undefined) return;
  if (udev.mode === 'sync' && op.kind !== 'remove' && op.kind !== 'removeSeen') return;
  yield { kind: 'node', op };
}

/** Waits `ms` milliseconds. */
export function* sleep(ms: number): Generator<Step, void, Answer> {
  yield { kind: 'sleep', ms };
}

/** Milliseconds of work between two yields of `sliced`. */
export const SLICE_MS = 4;

/**
 * Calls `f(from, to)` over [0, count) in ranges of `chunk` items at first, with a yield step
 * whenever about SLICE_MS milliseconds of work have gone by. The clock is read once per range,
 * and not at all when the whole count is one range; a range that took under an eighth of a
 * slice is followed by one twice as long, so that cheap items cost few clock reads (each a
 * system call where there is no vDSO, as under User-Mode Linux: as costly as the ioctl
 * itself) while a slice still overruns by at most one range of under a quarter of a slice.
 */
export function* inSlices(count: number, chunk: number, f: (from: number, to: number) => void): Generator<Step, void, Answer> {
  if (count <= chunk) {
    if (count > 0) f(0, count);
    return;
  }
  let size = chunk;
  let sliceStart = performance.now();
  let rangeStart = sliceStart;
  for (let from = 0; from < count; ) {
    const to = Math.min(count, from + size);
    f(from, to);
    from = to;
    if (from >= count) break;
    const now = performance.now();
    if (now - rangeStart < SLICE_MS / 8) size *= 2;
    rangeStart = now;
    if (now - sliceStart >= SLICE_MS) {
      yield { kind: 'yield' };
      sliceStart = performance.now();
      rangeStart = sliceStart;
    }
  }
}

/** Items in the first range of `sliced`: so many are built at once, before any clock read. */
export const FIRST_RANGE = 256;

/** `[f(0), ..., f(count - 1)]`, built in slices of about SLICE_MS milliseconds (see inSlices). */
export function* sliced<T>(count: number, f: (i: number) => T): Generator<Step, T[], Answer> {
  const out: T[] = [];
  yield* inSlices(count, FIRST_RANGE, (from, to) => {
    for (let i = from; i < to; i++) out.push(f(i));
  });
  return out;
}

/**
 * What `done` makes of `[item(0), ..., item(count - 1)]`: at once when the items fit in the
 * first range of `sliced` (no yield would come before they are built), else the program that
 * builds them in slices (see Continue). `after` runs once they are built or building failed.
 */
export function build<T, U>(count: number, item: (i: number) => T, done: (items: T[]) => U, after?: () => void): U | Continue<U> {
  if (count > FIRST_RANGE) return new Continue(buildInSlices(count, item, done, after));
  try {
    const out: T[] = [];
    for (let i = 0; i < count; i++) out.push(item(i));
    return done(out);
  } finally {
    after?.();
  }
}

function* buildInSlices<T, U>(count: number, item: (i: number) => T, done: (items: T[]) => U, after: (() => void) | undefined): Program<U> {
  try {
    return done(yield* sliced(count, item));
  } finally {
    after?.();
  }
}

/** From this many rows on, a TABLE_LOAD's rows are handed to the addon in slices. */
export const LOAD_IN_SLICES_FROM = 8192;

/**
 * A TABLE_LOAD's `targets`: a small table's rows as they are; a large one's read into a
 * native target list a range at a time, with yields between slices (the addon reading rows
 * is the load's own cost on the calling thread: about 0.3 µs a row). A list loads once: make
 * one for each request.
 */
export function* targetsOf(rows: readonly NativeTargetSpec[]): Generator<Step, readonly NativeTargetSpec[] | NativeTargetList, Answer> {
  if (rows.length < LOAD_IN_SLICES_FROM) return rows;
  const list = new (binding().TargetList)();
  yield* inSlices(rows.length, 1024, (from, to) => list.append(rows, from, to));
  return list;
}

/** Takes the per-device lock of `dev`; true when the device may have changed meanwhile. */
export function* lockDevice(dev: number): Generator<Step, boolean, Answer> {
  const answer = yield { kind: 'lock', key: `dev:${dev}` };
  return answer.stale === true;
}

/** Who a device is: what the kernel answers about it in every reply that names it. */
export interface Identity {
  readonly name: string;
  /** '' when the device has no uuid. */
  readonly uuid: string;
  /** dm_ioctl.dev, huge-encoded. */
  readonly dev: number;
}

/** The identity in an answer. */
export function identityOf(r: NativeResult, device?: string): Identity {
  return { name: r.name, uuid: r.uuid, dev: exactNumber(r.dev, 'dev', device) };
}

/**
 * How a transaction refers to its device after the first step: by the identity the caller
 * owns (its uuid when it has one, else its name), never by its number, which the kernel hands
 * to the next new device as soon as this one goes.
 */
export function refOf(id: Identity): { uuid: string } | { name: string } {
  return id.uuid !== '' ? { uuid: id.uuid } : { name: id.name };
}

function describeIdentity(id: Identity): string {
  return `${id.name} (${formatDev(decodeDev(id.dev))}${id.uuid === '' ? '' : `, uuid ${id.uuid}`})`;
}

const ESTALE = 116;
const EBUSY = 16;

/** Thrown when an answer is about another device than the one the transaction began with. */
export class IdentityChanged extends DmError {
  constructor(command: string, label: string, expected: Identity, found: Identity) {
    super({
      errno: ESTALE,
      syscall: 'ioctl',
      command,
      device: label,
      message:
        `${command} ${label}: the device changed identity during the operation: it was ${describeIdentity(expected)}, ` +
        `the kernel answered for ${describeIdentity(found)} (this ${command} reached that device; the kernel cannot name a device by two identities at once); nothing more is sent to it`,
    });
  }
}

const COMMAND_NAMES: Record<number, string> = Object.fromEntries(Object.entries(Command).map(([k, v]) => [v, `DM_${k}`]));

/** The DM command's name ('DM_DEV_REMOVE'). */
export function commandName(cmd: number): string {
  return COMMAND_NAMES[cmd] ?? `DM_${cmd}`;
}

/** Checks that an answer is about the device the transaction began with. */
export function expectSame(expected: Identity, answer: NativeResult, cmd: number, label: string): void {
  const found = identityOf(answer, label);
  if (found.name !== expected.name || found.uuid !== expected.uuid || found.dev !== expected.dev) {
    throw new IdentityChanged(commandName(cmd), label, expected, found);
  }
}

/** Rows of a TABLE_STATUS answer as load specs, every number exact. */
export function specsOf(r: NativeResult, label: string): NativeTargetSpec[] {
  return new RowReader(r, label).all();
}

function sameSpecs(a: readonly NativeTargetSpec[], b: readonly NativeTargetSpec[]): boolean {
  return a.length === b.length && a.every((r, i) => {
    const s = b[i];
    return s !== undefined && r.start === s.start && r.length === s.length && r.type === s.type && r.params === s.params;
  });
}

/**
 * Remembers a rollback's failure on the error the caller gets. Every failure of a rollback
 * reaches the caller, whatever the first error was.
 */
export function withRollback(error: unknown, rollback: unknown): unknown {
  if (rollback === undefined) return error;
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- a thrown non-Error: its string form is all it has
  const second = rollback instanceof Error ? rollback : new Error(String(rollback));
  if (error instanceof DmError) {
    error.rollbackError = second;
    return error;
  }
  if (error instanceof Error) {
    Object.defineProperty(error, 'rollbackError', { value: second, enumerable: false, configurable: true, writable: true });
    return error;
  }
  const wrapped = new Error(String(error), { cause: error });
  Object.defineProperty(wrapped, 'rollbackError', { value: second, enumerable: false, configurable: true, writable: true });
  return wrapped;
}

function isErrno(e: unknown, code: string): boolean {
  return e instanceof Error && Reflect.get(e, 'code') === code;
}

/**
 * DEV_REMOVE, retrying EBUSY `retries` times with a growing pause (udev and blkid scans). With
 * a udev plan, each try carries its cookie, and `node` (the device's name and number) is
 * removed from `/dev/mapper` once the device is gone (not while a deferred remove waits).
 */
export function* removeProgram(request: NativeRequest, label: string, retries: number, udev?: UdevPlan, node?: { name: string; dev: DevNumber } | { name: string; seen: NodeSeen | undefined }): Program<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      const { result, udevError } = yield* ueventCall(request, label, udev);
      const pending = (result.flags & Flag.DEFERRED_REMOVE) !== 0;
      const op: NodeOp | undefined = node === undefined || pending ? undefined : 'dev' in node ? { kind: 'remove', ...node } : { kind: 'removeSeen', ...node };
      yield* afterUevent(udev, udevError, op);
      return;
    } catch (e) {
      if (!isErrno(e, 'EBUSY') || attempt >= retries) throw e;
      yield* sleep(Math.min(10 * 2 ** attempt, 200));
    }
  }
}

/**
 * Removes the device of a failed create, only if it is still the one this call made.
 * Returns the rollback's failure, if any; a device that is already gone is not a failure.
 */
function* removeIfOurs(ours: Identity, label: string): Generator<Step, unknown, Answer> {
  const ref = refOf(ours);
  try {
    const now = yield* call({ cmd: Command.DEV_STATUS, flags: 0, ...ref }, label);
    expectSame(ours, now, Command.DEV_STATUS, label);
    yield* removeProgram({ cmd: Command.DEV_REMOVE, flags: 0, ...ref }, label, 5);
    return undefined;
  } catch (e) {
    return isErrno(e, 'ENXIO') ? undefined : e;
  }
}

/** What `create` does. */
export interface CreatePlan {
  name: string;
  uuid: string | undefined;
  rows: readonly NativeTargetSpec[] | undefined;
  loadFlags: number;
  activate: boolean;
  /** How the resume cooperates with udev (none: the request goes as it is). */
  udev?: UdevPlan;
}

/**
 * DEV_CREATE, TABLE_LOAD, resume. Every step after the create names the device by its uuid
 * (else its name) and checks that the answer is still about the device it made; a failure
 * removes that device again — and only that device.
 */
export function* createProgram(plan: CreatePlan): Program<NativeResult> {
  const created = yield* call({ cmd: Command.DEV_CREATE, flags: 0, name: plan.name, ...(plan.uuid !== undefined ? { uuid: plan.uuid } : {}) }, plan.name);
  const ours = identityOf(created, plan.name);
  if (plan.rows === undefined) return created;
  const ref = refOf(ours);
  let resumed: NativeResult;
  let udevError: unknown;
  try {
    yield* lockDevice(ours.dev);
    const loaded = yield* call({ cmd: Command.TABLE_LOAD, flags: plan.loadFlags, ...ref, targets: yield* targetsOf(plan.rows) }, plan.name);
    expectSame(ours, loaded, Command.TABLE_LOAD, plan.name);
    if (!plan.activate) return loaded;
    ({ result: resumed, udevError } = yield* ueventCall({ cmd: Command.DEV_SUSPEND, flags: 0, ...ref }, plan.name, plan.udev));
    expectSame(ours, resumed, Command.DEV_SUSPEND, plan.name);
  } catch (error) {
    // Another device answers to our name: it is not ours to roll back.
    if (error instanceof IdentityChanged) throw error;
    throw withRollback(error, yield* removeIfOurs(ours, plan.name));
  }
  // The device is made and live: a wait for udev that failed is reported, never rolled back.
  yield* afterUevent(plan.udev, udevError, { kind: 'ensure', name: ours.name, dev: decodeDev(ours.dev) });
  return resumed;
}

/** What `reload` does. */
export interface ReloadPlan {
  id: Pick<NativeRequest, 'name' | 'uuid' | 'dev'>;
  label: string;
  /** The new table, or how to make it from the live one (read under the device's lock). */
  rows: readonly NativeTargetSpec[] | ((live: NativeTargetSpec[]) => readonly NativeTargetSpec[]);
  loadFlags: number;
  suspendFlags: number;
  /** How the resume cooperates with udev. */
  udev?: UdevPlan;
  /** The device the caller already read: the reload's first answer must be about it (ESTALE otherwise). */
  expected?: Identity;
}

/** What the device looked like before a reload: enough to put it back. */
interface Before {
  ours: Identity;
  suspended: boolean;
  live: NativeTargetSpec[];
  liveReadOnly: boolean;
  /** The caller's own inactive table, which the load replaces. */
  pending: readonly NativeTargetSpec[] | undefined;
  pendingReadOnly: boolean;
}

function* readBefore(plan: ReloadPlan, secure: number): Generator<Step, Before, Answer> {
  const live = yield* call({ cmd: Command.TABLE_STATUS, flags: Flag.STATUS_TABLE | secure, ...plan.id }, plan.label);
  if (plan.expected !== undefined) expectSame(plan.expected, live, Command.TABLE_STATUS, plan.label);
  let ours = identityOf(live, plan.label);
  let first = live;
  if (yield* lockDevice(ours.dev)) {
    // Another transaction of this client (naming the device another way) ran meanwhile.
    first = yield* call({ cmd: Command.TABLE_STATUS, flags: Flag.STATUS_TABLE | secure, ...refOf(ours) }, plan.label);
    expectSame(ours, first, Command.TABLE_STATUS, plan.label);
    ours = identityOf(first, plan.label);
  }
  let pending: readonly NativeTargetSpec[] | undefined;
  let pendingReadOnly = false;
  if ((first.flags & Flag.INACTIVE_PRESENT) !== 0) {
    const inactive = yield* call({ cmd: Command.TABLE_STATUS, flags: Flag.STATUS_TABLE | Flag.QUERY_INACTIVE_TABLE | secure, ...refOf(ours) }, plan.label);
    expectSame(ours, inactive, Command.TABLE_STATUS, plan.label);
    pending = specsOf(inactive, plan.label);
    pendingReadOnly = (inactive.flags & Flag.READONLY) !== 0;
  }
  return {
    ours,
    suspended: (first.flags & Flag.SUSPEND) !== 0,
    live: specsOf(first, plan.label),
    liveReadOnly: (first.flags & Flag.READONLY) !== 0,
    pending,
    pendingReadOnly,
  };
}

/**
 * Load, suspend, resume, with the device's state put back on failure: the old table live
 * again (also when the new one went live and its resume then failed), the caller's own
 * inactive table loaded again, suspended only if it was suspended before the call.
 */
export function* reloadProgram(plan: ReloadPlan): Program<NativeResult> {
  const secure = plan.loadFlags & Flag.SECURE_DATA;
  const before = yield* readBefore(plan, secure);
  const { ours } = before;
  const ref = refOf(ours);
  // An update's new table is made from the live table just read: nothing has changed yet.
  const rows = typeof plan.rows === 'function' ? plan.rows(before.live) : plan.rows;
  const loaded = yield* call({ cmd: Command.TABLE_LOAD, flags: plan.loadFlags, ...ref, targets: yield* targetsOf(rows) }, plan.label);
  expectSame(ours, loaded, Command.TABLE_LOAD, plan.label);
  let resumed: NativeResult;
  let udevError: unknown;
  try {
    if (!before.suspended) {
      const suspended = yield* call({ cmd: Command.DEV_SUSPEND, flags: plan.suspendFlags, ...ref }, plan.label);
      expectSame(ours, suspended, Command.DEV_SUSPEND, plan.label);
    }
    ({ result: resumed, udevError } = yield* ueventCall({ cmd: Command.DEV_SUSPEND, flags: 0, ...ref }, plan.label, plan.udev));
    expectSame(ours, resumed, Command.DEV_SUSPEND, plan.label);
  } catch (error) {
    if (error instanceof IdentityChanged) throw error;
    throw withRollback(error, yield* restore(before, plan.label, secure, plan.suspendFlags));
  }
  // The new table is live: a wait for udev that failed is reported, never rolled back.
  yield* afterUevent(plan.udev, udevError, { kind: 'ensure', name: ours.name, dev: decodeDev(ours.dev) });
  return resumed;
}

/** Puts a device back as `before` says after a failed reload; returns the first failure. */
function* restore(before: Before, label: string, secure: number, suspendFlags: number): Generator<Step, unknown, Answer> {
  const { ours } = before;
  const ref = refOf(ours);
  try {
    const now = yield* call({ cmd: Command.TABLE_STATUS, flags: Flag.STATUS_TABLE | secure, ...ref }, label);
    expectSame(ours, now, Command.TABLE_STATUS, label);
    if ((now.flags & Flag.INACTIVE_PRESENT) !== 0) yield* call({ cmd: Command.TABLE_CLEAR, flags: 0, ...ref }, label);
    let suspended = (now.flags & Flag.SUSPEND) !== 0;
    if (!sameSpecs(specsOf(now, label), before.live)) {
      // The new table went live and its resume failed (a target's preresume refused it):
      // load the old table and resume, which swaps it back in.
      yield* call({ cmd: Command.TABLE_LOAD, flags: (before.liveReadOnly ? Flag.READONLY : 0) | secure, ...ref, targets: yield* targetsOf(before.live) }, label);
      yield* call({ cmd: Command.DEV_SUSPEND, flags: 0, ...ref }, label);
      suspended = false;
    }
    if (suspended && !before.suspended) yield* call({ cmd: Command.DEV_SUSPEND, flags: 0, ...ref }, label);
    if (!suspended && before.suspended) yield* call({ cmd: Command.DEV_SUSPEND, flags: suspendFlags, ...ref }, label);
    if (before.pending !== undefined) {
      yield* call({ cmd: Command.TABLE_LOAD, flags: (before.pendingReadOnly ? Flag.READONLY : 0) | secure, ...ref, targets: yield* targetsOf(before.pending) }, label);
    }
    return undefined;
  } catch (e) {
    return e;
  }
}

/**
 * DEV_RENAME (of the name, or with `uuid` of the uuid). The kernel finds the device to rename
 * by its name only, so a device named by uuid or number is looked up first, and the rename's
 * answer is checked to be about that device (a rename that reached another one is undone).
 */
export function* renameProgram(id: Pick<NativeRequest, 'name' | 'uuid' | 'dev'>, label: string, data: string, uuid: boolean, udev?: UdevPlan): Program<NativeResult> {
  let name = id.name;
  let expected: Identity | undefined;
  if (name === undefined) {
    const found = yield* call({ cmd: Command.DEV_STATUS, flags: 0, ...id }, label);
    expected = identityOf(found, label);
    name = expected.name;
  }
  const { result: renamed, udevError } = yield* ueventCall({ cmd: Command.DEV_RENAME, flags: uuid ? Flag.UUID : 0, name, data }, label, udev);
  const dev = exactNumber(renamed.dev, 'dev', label);
  if (expected !== undefined && dev !== expected.dev) {
    // Another device took the name between the look-up and the rename: give it its name back
    // (a uuid, once set, cannot be taken back: the kernel refuses to change it).
    let undo: unknown;
    if (!uuid) {
      try {
        yield* call({ cmd: Command.DEV_RENAME, flags: 0, name: data, data: name }, label);
      } catch (e) {
        undo = e;
      }
    }
    throw withRollback(new IdentityChanged('DM_DEV_RENAME', label, expected, identityOf(renamed, label)), undo);
  }
  const after = yield* call({ cmd: Command.DEV_STATUS, flags: 0, ...(uuid ? { uuid: data } : { name: data }) }, label);
  if (exactNumber(after.dev, 'dev', label) !== dev) {
    throw new IdentityChanged('DM_DEV_STATUS', label, identityOf(renamed, label), identityOf(after, label));
  }
  yield* afterUevent(udev, udevError, uuid ? undefined : { kind: 'rename', from: name, to: data, dev: decodeDev(dev) });
  return after;
}

/**
 * DEV_STATUS of the device as named, then DEV_REMOVE (EBUSY retried) by the uuid or name that
 * answered, never by its number: with no /dev/mapper node to look after (udev 'off').
 */
export function* removeFoundProgram(id: Pick<NativeRequest, 'name' | 'uuid' | 'dev'>, label: string, flags: number, retries: number, udev: UdevPlan): Program<void> {
  const ours = identityOf(yield* call({ cmd: Command.DEV_STATUS, flags: 0, ...id }, label), label);
  yield* removeProgram({ cmd: Command.DEV_REMOVE, flags, ...refOf(ours) }, label, retries, udev);
}

/**
 * DEV_REMOVE of a device named any way, with its `/dev/mapper` node. A device named by uuid or
 * number is looked up first (its name and number say which node is its own), then removed by
 * its uuid or name.
 */
export function* removeDeviceProgram(id: Pick<NativeRequest, 'name' | 'uuid' | 'dev'>, label: string, flags: number, retries: number, udev: UdevPlan): Program<void> {
  if (id.name !== undefined) {
    // Named by its name: the remove goes first, as it would without udev; the node that was
    // there before it is the one removed after it (no device has that name any more).
    const { seen } = yield { kind: 'node', op: { kind: 'inspect', name: id.name } };
    yield* removeProgram({ cmd: Command.DEV_REMOVE, flags, name: id.name }, label, retries, udev, { name: id.name, seen });
    return;
  }
  const found = yield* call({ cmd: Command.DEV_STATUS, flags: 0, ...id }, label);
  const ours = identityOf(found, label);
  yield* removeProgram({ cmd: Command.DEV_REMOVE, flags, ...refOf(ours) }, label, retries, udev, { name: ours.name, dev: decodeDev(ours.dev) });
}

/**
 * DEV_REMOVE with `force`, as `dmsetup remove --force`: a device that is open (or stays busy
 * through the retries) first gets one error row over its whole length in place of its live
 * table (a reload whose suspend neither flushes nor freezes a filesystem, so that I/O to dead
 * storage cannot hold it; the old table is put back if the swap fails), so that its openers'
 * I/O fails from then on, then the remove goes (EBUSY retried). An opener that keeps it open
 * still makes that remove fail with EBUSY: the device then stays, failing all I/O, and the
 * error says so (unless `flags` asks for a deferred remove, which the kernel then makes at its
 * last close). Every step after the first is checked to be about the device that answered it.
 */
export function* forceRemoveProgram(id: Pick<NativeRequest, 'name' | 'uuid' | 'dev'>, label: string, flags: number, retries: number, udev: UdevPlan): Program<void> {
  const found = yield* call({ cmd: Command.DEV_STATUS, flags: 0, ...id }, label);
  const ours = identityOf(found, label);
  const ref = refOf(ours);
  const node = { name: ours.name, dev: decodeDev(ours.dev) };
  const remove = { cmd: Command.DEV_REMOVE, flags, ...ref };
  let tried = false;
  let swapped = false;
  function* fail(): Program<void> {
    tried = true;
    // The length read under the reload's lock: one error row over all of it.
    const rows = (live: NativeTargetSpec[]): NativeTargetSpec[] => {
      const length = live.reduce((n, r) => n + r.length, 0);
      if (length === 0) throw new DmError({ errno: EBUSY, syscall: 'ioctl', command: 'DM_TABLE_LOAD', device: label, message: `DM_TABLE_LOAD ${label}: its live table went away before an error table could replace it; it is still busy` });
      return [{ start: 0, length, type: 'error', params: '' }];
    };
    yield* reloadProgram({ id: ref, label, rows, loadFlags: Flag.SECURE_DATA, suspendFlags: Flag.SUSPEND | Flag.NOFLUSH | Flag.SKIP_LOCKFS, udev, expected: ours });
    swapped = true;
  }
  // A device without a table has no I/O to fail.
  const hasTable = found.targetCount > 0;
  try {
    if (found.openCount > 0 && hasTable) yield* fail();
    try {
      yield* removeProgram(remove, label, retries, udev, node);
    } catch (e) {
      if (tried || !hasTable || !isErrno(e, 'EBUSY')) throw e;
      // Opened since it was read (or held by a scan all along).
      yield* fail();
      yield* removeProgram(remove, label, retries, udev, node);
    }
  } catch (e) {
    // The swap went through but the remove did not: the device is not as it was.
    if (swapped && e instanceof Error) e.message = `${e.message}; its table is now an error table: all its I/O fails`;
    throw e;
  }
}
