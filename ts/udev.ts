/**
 * udev cooperation, as libdevmapper does it: which mode a call runs in, and udev cookies.
 *
 * A cookie is a SysV semaphore whose key is `(DM_COOKIE_MAGIC << 16) | base` (a random,
 * non-zero 16-bit base). It is made with the value 1 and incremented before each ioctl that
 * carries it; the ioctl's `event_nr` holds `(udev flags << 16) | base`, which the kernel copies
 * into the uevent as `DM_COOKIE`, and udev's 95-dm-notify.rules runs
 * `dmsetup udevcomplete $DM_COOKIE`, which decrements the semaphore found from the base. The
 * caller decrements once for itself (and once for udev when the kernel made no uevent), waits
 * for zero, and removes the semaphore.
 */
import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { abortError, onAbort } from './abort';
import { binding } from './binding';
import { DmError } from './errors';
import { expected } from './validate';

/** How a client cooperates with udev for `/dev/mapper/<name>`. */
export type UdevMode = 'auto' | 'sync' | 'fallback' | 'off';

/** A mode as a call runs it ('auto' decided). */
export type UdevEffectiveMode = Exclude<UdevMode, 'auto'>;

/** The udev modes. */
export const UDEV_MODES: readonly UdevMode[] = ['auto', 'sync', 'fallback', 'off'];

/** The upper 16 bits of every libdevmapper cookie's semaphore key. */
export const DM_COOKIE_MAGIC = 0x0d4d;
/** Where the udev flags sit in `event_nr`. */
export const DM_UDEV_FLAGS_SHIFT = 16;

/** libdevmapper's udev flags (libdevmapper.h), read by 55-dm.rules through `dmsetup udevflags`. */
export const UdevFlag = {
  /** Skip the device-mapper rules (10-dm.rules): no /dev/mapper symlink. */
  DISABLE_DM_RULES: 0x0001,
  /** Skip the subsystems' rules (LVM's, for example). */
  DISABLE_SUBSYSTEM_RULES: 0x0002,
  /** Skip the generic disk rules (by-id, by-uuid symlinks). */
  DISABLE_DISK_RULES: 0x0004,
  /** Skip every other rule (blkid scans, for example). */
  DISABLE_OTHER_RULES: 0x0008,
  /** A low-priority node: other symlinks of the same name win. */
  LOW_PRIORITY: 0x0010,
  /** udev owns the nodes: the library must not make or remove them itself. */
  DISABLE_LIBRARY_FALLBACK: 0x0020,
  /** The event comes from the tool that owns the device (its first activation). */
  PRIMARY_SOURCE: 0x0040,
} as const;

/** udev's control socket: udev runs when it exists (what libudev's "is active" tests). */
export const UDEV_CONTROL = '/run/udev/control';

/** How long a call waits for udev to complete its cookie, by default (ms). */
export const DEFAULT_UDEV_TIMEOUT = 30_000;

/** The udev settings of a client. */
export interface UdevSettings {
  /** The udev mode chosen (see `OpenOptions.udev`). */
  readonly mode: UdevMode;
  /** Milliseconds a call waits for udev to complete its cookie. */
  readonly timeout: number;
}

/** A call's udev plan: its mode decided, and how its wait may end early. */
export interface UdevPlan {
  readonly mode: UdevEffectiveMode;
  readonly timeout: number;
  readonly signal: AbortSignal | undefined;
}

/** Checks a udev mode option. */
export function checkUdevMode(value: unknown, name: string): UdevMode | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !(UDEV_MODES as readonly string[]).includes(value)) {
    throw expected(`one of ${UDEV_MODES.map((m) => `'${m}'`).join(', ')}`, name, value);
  }
  return UDEV_MODES.find((m) => m === value);
}

/** True when udev runs (its control socket exists), as libdevmapper decides it. */
export function udevRunning(control = UDEV_CONTROL): boolean {
  return existsSync(control);
}

/** 'auto' decided now: 'sync' when udev runs, else 'fallback'. */
export function effectiveMode(mode: UdevMode): UdevEffectiveMode {
  if (mode !== 'auto') return mode;
  return udevRunning() ? 'sync' : 'fallback';
}

/** `event_nr` of a cookie: `(flags << 16) | base`, as libdevmapper packs it. */
export function cookieEventNr(base: number, flags: number): number {
  return ((flags & 0xffff) * 0x10000 + (base & 0xffff)) >>> 0;
}

/** The semaphore key of a cookie base: `(DM_COOKIE_MAGIC << 16) | base`. */
export function cookieKey(base: number): number {
  return DM_COOKIE_MAGIC * 0x10000 + (base & 0xffff);
}

/** The flags and the base of an `event_nr` (or a `DM_COOKIE` value). */
export function parseEventNr(eventNr: number): {
  /** The udev flags (see {@link UdevFlag}): the upper 16 bits. */
  flags: number;
  /** The cookie's base: the lower 16 bits. */
  base: number;
} {
  return { flags: Math.floor(eventNr / 0x10000) & 0xffff, base: eventNr & 0xffff };
}

/**
 * The udev flags a call sends in each mode, as dmsetup sends them: always PRIMARY_SOURCE (the
 * event comes from the library that asked for it); in sync mode DISABLE_LIBRARY_FALLBACK too
 * (udev alone makes `/dev/mapper`, dmsetup's default without --verifyudev); in fallback mode
 * DISABLE_DM_RULES and DISABLE_SUBSYSTEM_RULES, so that a udev that runs after all leaves
 * `/dev/mapper` to the library (what libdevmapper does with DM_DISABLE_UDEV).
 */
export function udevFlags(mode: UdevEffectiveMode): number {
  if (mode === 'fallback') return UdevFlag.PRIMARY_SOURCE | UdevFlag.DISABLE_DM_RULES | UdevFlag.DISABLE_SUBSYSTEM_RULES;
  if (mode === 'sync') return UdevFlag.PRIMARY_SOURCE | UdevFlag.DISABLE_LIBRARY_FALLBACK;
  return UdevFlag.PRIMARY_SOURCE;
}

/** A cookie made for one ioctl: its semaphore and the `event_nr` that names it. */
export interface Cookie {
  readonly base: number;
  readonly key: number;
  readonly semid: number;
  readonly eventNr: number;
}

/** '0x0d4d1234', the way libdevmapper and `dmsetup udevcookies` name a cookie. */
export function formatCookie(cookie: Pick<Cookie, 'key'>): string {
  return `0x${cookie.key.toString(16).padStart(8, '0')}`;
}

function isCode(e: unknown, code: string): boolean {
  return e instanceof Error && Reflect.get(e, 'code') === code;
}

function nativeToDm(e: unknown, what: string): Error {
  if (!(e instanceof Error)) return new Error(String(e));
  const errno: unknown = Reflect.get(e, 'errno');
  const syscall: unknown = Reflect.get(e, 'syscall');
  if (typeof errno !== 'number' || typeof syscall !== 'string') return e;
  return new DmError({ errno, syscall, device: what, message: `${what}: ${e.message}`, cause: e });
}

/**
 * Makes a cookie for one ioctl: a new semaphore at a random free key, value 1, then
 * incremented for the ioctl's uevent (libdevmapper's create and increment).
 */
export function createCookie(flags: number): Cookie {
  const b = binding();
  for (let attempt = 0; ; attempt++) {
    const base = randomInt(1, 0x10000);
    const key = cookieKey(base);
    let semid: number;
    try {
      semid = b.semCreate(key, 1);
    } catch (e) {
      // Another process holds that key: draw again (as libdevmapper does).
      if (isCode(e, 'EEXIST') && attempt < 100) continue;
      throw nativeToDm(e, 'udev cookie');
    }
    try {
      b.semAdd(semid, 1);
    } catch (e) {
      removeQuietly(semid);
      throw nativeToDm(e, `udev cookie ${formatCookie({ key })}`);
    }
    return { base, key, semid, eventNr: cookieEventNr(base, flags) };
  }
}

function removeQuietly(semid: number): void {
  try {
    binding().semRemove(semid);
  } catch {
    // already removed (an abort raced the end of the wait)
  }
}

/** What a cookie's wait is about, for its errors. */
export interface CookieWait {
  readonly cookie: Cookie;
  /** The kernel made the uevent (DM_UEVENT_GENERATED_FLAG): udev will complete it. */
  readonly generated: boolean;
  readonly timeout: number;
  readonly signal: AbortSignal | undefined;
  /** 'DM_DEV_SUSPEND vol': the ioctl that carried the cookie. */
  readonly what: string;
}

/** Our own decrement, and udev's when the kernel made no uevent: then the wait for zero. */
function release(w: CookieWait): void {
  const b = binding();
  if (!w.generated) b.semAdd(w.cookie.semid, -1);
  b.semAdd(w.cookie.semid, -1);
}

function timedOut(w: CookieWait, cause: unknown): DmError {
  return new DmError({
    errno: 110,
    syscall: 'semtimedop',
    device: w.what,
    message:
      `${w.what}: udev did not complete cookie ${formatCookie(w.cookie)} within ${w.timeout} ms ` +
      '(are 95-dm-notify.rules installed and udev processing events?); the ioctl itself succeeded, and the cookie\'s semaphore was removed',
    cause,
  });
}

/**
 * Waits, on a thread of the addon's own, until udev has completed the cookie; removes its
 * semaphore in every case. Rejects with ETIMEDOUT after `timeout`, with the signal's reason
 * (or an AbortError) when it aborts.
 */
export async function waitCookie(w: CookieWait): Promise<void> {
  const b = binding();
  const semid = w.cookie.semid;
  try {
    if (isAborted(w.signal)) throw abortError(w.signal);
    release(w);
  } catch (e) {
    removeQuietly(semid);
    throw isAborted(w.signal) ? abortError(w.signal) : nativeToDm(e, `${w.what}: udev cookie ${formatCookie(w.cookie)}`);
  }
  // An abort removes the semaphore: the waiting thread wakes with EIDRM at once.
  const unsubscribe = onAbort(w.signal, () => removeQuietly(semid));
  try {
    await new Promise<void>((resolve, reject) => b.semWaitZero(semid, w.timeout, (error) => (error === null ? resolve() : reject(error))));
  } catch (e) {
    if (isAborted(w.signal)) throw abortError(w.signal);
    if (isCode(e, 'EAGAIN')) throw timedOut(w, e);
    throw nativeToDm(e, `${w.what}: udev cookie ${formatCookie(w.cookie)}`);
  } finally {
    unsubscribe();
    removeQuietly(semid);
  }
}

/** The same wait on the calling thread (the synchronous client). */
export function waitCookieSync(w: CookieWait): void {
  const b = binding();
  const semid = w.cookie.semid;
  try {
    if (isAborted(w.signal)) throw abortError(w.signal);
    try {
      release(w);
    } catch (e) {
      throw nativeToDm(e, `${w.what}: udev cookie ${formatCookie(w.cookie)}`);
    }
    try {
      b.semWaitZeroSync(semid, w.timeout);
    } catch (e) {
      if (isCode(e, 'EAGAIN')) throw timedOut(w, e);
      throw nativeToDm(e, `${w.what}: udev cookie ${formatCookie(w.cookie)}`);
    }
  } finally {
    removeQuietly(semid);
  }
}

function isAborted(signal: AbortSignal | undefined): signal is AbortSignal {
  return signal?.aborted === true;
}
