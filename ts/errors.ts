import { constants } from 'node:os';

/** Options for {@link DmError}. */
export interface DmErrorOptions {
  /** errno of the failed system call (16 for EBUSY). */
  errno: number;
  /** The failed system call: 'ioctl', 'open', 'poll', ... */
  syscall: string;
  /** The DM command ('DM_DEV_REMOVE') when the failure was an ioctl on the control node. */
  command?: string;
  /** The device the call was about ('vol', 'uuid:...', '253:0', or a path). */
  device?: string;
  /** The message; a default is built from the other fields. */
  message?: string;
  /** The error this one was caused by. */
  cause?: unknown;
}

/**
 * A failure reported by the kernel. Keeps the errno: `code` ('EBUSY'), `errno` (16),
 * `syscall` ('ioctl'), `command` ('DM_DEV_REMOVE') and `device` (when known).
 * Its stack starts at the line that called the library.
 */
export class DmError extends Error {
  /** errno name, 'EBUSY'. */
  readonly code: string;
  /** errno value, 16. */
  readonly errno: number;
  /** The failed system call. */
  readonly syscall: string;
  /** The DM command, for ioctls on the control node. */
  readonly command: string | undefined;
  /** The device the call was about, when known. */
  readonly device: string | undefined;
  /** When a rollback after this failure failed too: that second failure. */
  rollbackError: Error | undefined;

  /** An error with the kernel's errno and the command and device it was about (see {@link DmErrorOptions}). */
  constructor(options: DmErrorOptions) {
    const code = errnoCode(options.errno);
    const what = [options.command ?? options.syscall, options.device].filter((s) => s !== undefined).join(' ');
    super(options.message ?? `${what}: ${describeErrno(options.errno)}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DmError';
    this.code = code;
    this.errno = options.errno;
    this.syscall = options.syscall;
    this.command = options.command;
    this.device = options.device;
    this.rollbackError = undefined;
  }
}

/** Thrown when text (a table, a status line) cannot be parsed: says which field and where. */
export class DmParseError extends Error {
  /** The text that failed to parse. */
  readonly text: string;
  /** The field that was wrong ('start', 'length', 'type', 'offset', ...). */
  readonly field: string;

  /**
   * A parse failure of kernel or user text.
   * @param message - what is wrong, for people.
   * @param text - the text that failed to parse.
   * @param field - the field that was wrong.
   */
  constructor(message: string, text: string, field: string) {
    super(`${message} (${field} in ${JSON.stringify(text)})`);
    this.name = 'DmParseError';
    this.text = text;
    this.field = field;
  }
}

const ERRNO_NAMES = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) {
  // Aliases share a number (EWOULDBLOCK = EAGAIN, EDEADLOCK = EDEADLK): keep the first, usual name.
  if (!ERRNO_NAMES.has(value)) ERRNO_NAMES.set(value, name);
}

/** errno → its name ('EBUSY'), or `E<n>` when the platform does not know it. */
export function errnoCode(errno: number): string {
  return ERRNO_NAMES.get(Math.abs(errno)) ?? `E${Math.abs(errno)}`;
}

const DESCRIPTIONS: Record<string, string> = {
  EPERM: 'Operation not permitted',
  ENOENT: 'No such file or directory',
  EINTR: 'Interrupted system call',
  EIO: 'Input/output error',
  ENXIO: 'No such device or address',
  EBADF: 'Bad file descriptor',
  ENOMEM: 'Cannot allocate memory',
  EACCES: 'Permission denied',
  EFAULT: 'Bad address',
  EBUSY: 'Device or resource busy',
  EEXIST: 'File exists',
  ENODEV: 'No such device',
  EINVAL: 'Invalid argument',
  ENOSPC: 'No space left on device',
  EROFS: 'Read-only file system',
  ENOTTY: 'Inappropriate ioctl for device',
  ENOBUFS: 'No buffer space available',
  EPROTO: 'Protocol error',
  EOPNOTSUPP: 'Operation not supported',
  ECANCELED: 'Operation canceled',
  ESTALE: 'Stale file handle',
  EOVERFLOW: 'Value too large for defined data type',
};

function describeErrno(errno: number): string {
  const code = errnoCode(errno);
  return DESCRIPTIONS[code] ?? code;
}

/**
 * When a call's failure gets its caller's frames: `'call'` records them as the call is made
 * (an asynchronous call's failure surfaces later, on another stack), `'failure'` only when a
 * failure needs them (a synchronous call, still on its caller's stack then), `'async'` records
 * nothing as the call is made: a failure still on the caller's stack (a check before the first
 * ioctl) gets the caller's frames as `'failure'` does, a later one the `at async` frames of the
 * callers that awaited it (V8's own, free), the library's frames below them left out.
 * @internal
 */
export type CaptureMode = 'call' | 'failure' | 'async';

/**
 * The public function a call was made to: the frames above it are the caller's
 * (Error.captureStackTrace's `constructorOpt`). It is never called.
 * @internal
 */
export type StackMarker = (...args: never[]) => unknown;

/**
 * Frames an asynchronous call records when it is made: its caller's line and the two calls
 * above it. The capture costs some 2 µs on a current host (1.5–2 µs for the first frame, about
 * 0.4 µs for each further one), most of a fast call's JavaScript; the callers that awaited the
 * call are added from the failure's own async frames when it fails.
 */
const CALL_FRAMES = 3;

/** A frame's function, file and line, without its column or `async` ("f (/x.js:5"). */
function frameLine(frame: string): string {
  return frame.trim().replace(/^at (async )?/, '').replace(/:\d+\)?$/, '');
}

/** The error with its own first line over `frames` (each "\n    at ...") as its stack. */
function withFrames<E extends Error>(error: E, frames: string): E {
  error.stack = `${error.name}: ${error.message}${frames}`;
  return error;
}

/** The "at async ..." lines of a stack. */
function asyncFrames(stack: string | undefined): string[] {
  return (stack ?? '').split('\n').filter((line) => line.startsWith('    at async '));
}

/**
 * The caller's stack, taken when a public method is called, so that an error that surfaces
 * after the ioctl completes points at the caller's line.
 */
export class CallSite {
  // captureStackTrace records the frames; they are formatted only when `stack` is read,
  // which only a failure does (formatting was most of a successful call's own cost).
  // Made only when the frames are recorded: most calls succeed and never need it.
  private holder: { stack?: string } | undefined;
  private readonly above: StackMarker;
  private mode: CaptureMode;
  /** The public function the call was made to ('create'). */
  readonly name: string;

  /** Records the frames above `above` now, at a failure, or never (see `CaptureMode`). */
  constructor(above: StackMarker, mode: CaptureMode = 'call') {
    this.name = above.name;
    this.above = above;
    this.mode = mode;
    if (mode === 'call') this.record(CALL_FRAMES);
  }

  /** Records the frames above the public function, at most `most` of them (all: undefined). */
  private record(most?: number): void {
    const holder: { stack?: string } = {};
    const limit = Error.stackTraceLimit;
    // Fewer frames than the process asks for, never more (0 records none).
    if (most !== undefined && typeof limit === 'number' && limit > most) Error.stackTraceLimit = most;
    try {
      Error.captureStackTrace(holder, this.above);
    } finally {
      Error.stackTraceLimit = limit;
    }
    this.holder = holder;
  }

  /** Puts the caller's frames under the error's own first line. */
  attach<E extends Error>(error: E): E {
    if (this.mode === 'async') return this.attachAsync(error);
    // A synchronous call fails on its caller's stack: all of it is there to record.
    const atFailure = this.mode === 'failure';
    if (atFailure) {
      this.record();
      this.mode = 'call';
    }
    const stack = this.holder?.stack ?? '';
    const firstFrame = stack.indexOf('\n');
    const recorded = firstFrame >= 0 ? stack.slice(firstFrame) : '';
    // The callers that awaited an asynchronous call, past the frames recorded when it was made
    // (one on a line that a recorded frame names already, its await beside its call, is left out).
    const lines = new Set(recorded.split('\n').map(frameLine));
    const awaited = atFailure ? [] : asyncFrames(error.stack).filter((line) => !lines.has(frameLine(line)));
    return withFrames(error, `${recorded}${awaited.map((line) => `\n${line}`).join('')}`);
  }

  /**
   * 'async': the frames above the public method when it is on the stack: the caller's while
   * the call has not awaited yet, and once it has, only an async method is there again (as
   * resumed), above it the callers that awaited it. Else the awaiting callers' `at async`
   * frames, without the library's frames before them (the error is made in the library's
   * continuation, never in the caller's code); an error no caller awaited keeps its stack.
   */
  private attachAsync<E extends Error>(error: E): E {
    this.record();
    const stack = this.holder?.stack ?? '';
    const firstFrame = stack.indexOf('\n');
    if (firstFrame >= 0) return withFrames(error, stack.slice(firstFrame));
    const awaited = asyncFrames(error.stack);
    return awaited.length > 0 ? withFrames(error, awaited.map((line) => `\n${line}`).join('')) : error;
  }
}

/** Shape of the errors the native addon throws and rejects with. */
export interface NativeErrorShape {
  message: string;
  errno: number;
  syscall: string;
  command?: string;
  path?: string;
}

/** True for an error that carries a numeric errno (a native or Node system error). */
export function isNativeError(value: unknown): value is NativeErrorShape {
  if (!(value instanceof Error)) return false;
  const errno: unknown = Reflect.get(value, 'errno');
  const syscall: unknown = Reflect.get(value, 'syscall');
  return typeof errno === 'number' && typeof syscall === 'string';
}

/** Turns a native failure into a DmError about `device`, with the caller's stack. */
export function toDmError(error: unknown, site: CallSite, device?: string): Error {
  if (!isNativeError(error)) return error instanceof Error ? site.attach(error) : site.attach(new Error(String(error)));
  const path: unknown = Reflect.get(error, 'path');
  const dm = new DmError({
    // Node's own fs errors carry a negative errno (-2 for ENOENT); the kernel's are positive.
    errno: Math.abs(error.errno),
    syscall: error.syscall,
    ...(error.command !== undefined ? { command: error.command } : {}),
    // A file operation names its own file (the backing file, not the loop device): keep it.
    ...(typeof path === 'string' ? { device: path } : device !== undefined ? { device } : {}),
    message: nativeMessage(error, device),
    cause: error,
  });
  return site.attach(dm);
}

function nativeMessage(error: NativeErrorShape, device: string | undefined): string {
  // The native message is "<what>: <strerror> (detail)"; put the device after <what>.
  if (device === undefined || error.command === undefined) return error.message;
  const rest = error.message.startsWith(error.command) ? error.message.slice(error.command.length) : `: ${error.message}`;
  return `${error.command} ${device}${rest}`;
}

/**
 * A 64-bit value from the kernel as a JavaScript number, exactly. The addon hands over values
 * above `Number.MAX_SAFE_INTEGER` as bigints; such a value is never rounded: it is refused
 * with a DmError `EOVERFLOW` naming the field and the exact value.
 */
export function exactNumber(value: number | bigint, field: string, device?: string): number {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  const where = device === undefined ? '' : ` of ${device}`;
  throw new DmError({
    errno: 75,
    syscall: 'ioctl',
    ...(device !== undefined ? { device } : {}),
    message: `The kernel reported ${field}${where} = ${String(value)}, which a JavaScript number cannot hold exactly (above 2^53 - 1)`,
  });
}

/**
 * A call made on a `DeviceMapper` after `close()`: `code` is `'ERR_DM_CLOSED'`. Operations
 * that had started before `close()` finish (or roll back) first; calls made after it are
 * refused with this error and never reach the kernel.
 */
export class DmClosedError extends Error {
  /** Always 'ERR_DM_CLOSED'. */
  readonly code = 'ERR_DM_CLOSED';

  /**
   * A call refused because the client is closed.
   * @param what - the call that was refused ('info'), for the message.
   */
  constructor(what: string) {
    super(`${what}: the device-mapper control node is closed (DeviceMapper.close() was called)`);
    this.name = 'DmClosedError';
  }
}
