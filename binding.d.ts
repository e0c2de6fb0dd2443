/**
 * The exact surface of the native addon (`native/`). Internal: only `ts/binding.ts` loads it.
 *
 * The addon knows the dm_ioctl ABI and nothing about targets: it packs a request, runs the
 * ioctl on the addon's own I/O threads (growing the buffer on DM_BUFFER_FULL), and unpacks the answer
 * into plain data. Meaning, defaults and validation live in TypeScript.
 */

/** One `dm_target_spec` row as the kernel sees it. */
export interface NativeTargetSpec {
  start: number;
  length: number;
  type: string;
  params: string;
}

/**
 * A 64-bit value from the kernel, exactly: a number up to 2^53 - 1, a bigint above (never a
 * rounded number). `exactNumber` in ts/errors.ts turns it into a number or refuses it.
 */
export type NativeU64 = number | bigint;

/**
 * Rows (TABLE_STATUS, DEV_WAIT) or devices (LIST_DEVICES) of an answer: the kernel's answer
 * buffer and, per item, 8 words of `index` pointing into it, every offset and length
 * bounds-checked by the addon and every string followed by a NUL:
 * - a row: start (low, high word), length (low, high), dm_target_spec.status, type id (into
 *   `types`), params offset, params length;
 * - a device: dev in the kernel's huge encoding (low, high), name offset, name length,
 *   event_nr present (0 or 1), event_nr, uuid offset (0 when there is none), uuid length.
 * Strings are UTF-8 bytes.
 */
export interface NativeIndexed {
  bytes: ArrayBuffer;
  index: Uint32Array;
  count: number;
  /** Whether every string the index points to is ASCII (then Latin-1 decodes it as UTF-8 does). */
  ascii: boolean;
}

/** The rows of a TABLE_STATUS or DEV_WAIT answer. */
export interface NativeRows extends NativeIndexed {
  /** The distinct target types, by the id in each row. */
  types: string[];
}

/** A `dm_target_versions` record (LIST_VERSIONS, GET_TARGET_VERSION). */
export interface NativeTargetVersion {
  name: string;
  version: [number, number, number];
}

/** A request: one DM command, its header fields and its payload. */
export interface NativeRequest {
  /** Command number (DM_VERSION_CMD = 0 ... DM_GET_TARGET_VERSION_CMD = 17). */
  cmd: number;
  /**
   * `dm_ioctl.flags` to send: only flags the command reads (a table per command in
   * native/dm_ioctl.cc); any other flag, the kernel-to-user ones included, is a RangeError.
   */
  flags: number;
  name?: string;
  uuid?: string;
  /** Kernel huge encoding of the device number. */
  dev?: number;
  /**
   * `dm_ioctl.event_nr`: udev cookie (DEV_SUSPEND, DEV_REMOVE, DEV_RENAME), or the event
   * number DEV_WAIT waits past; a RangeError for other commands.
   */
  eventNr?: number;
  /** TABLE_LOAD rows. */
  targets?: readonly NativeTargetSpec[] | NativeTargetList;
  /** A NUL-terminated string payload: DEV_RENAME's new name or uuid, DEV_SET_GEOMETRY's text. */
  data?: string;
  /** TARGET_MSG: the sector and the message text. */
  sector?: number;
  message?: string;
  /**
   * TARGET_MSG only: the message has no side effect, so it may be sent again with a larger
   * buffer when its answer did not fit (otherwise that is ENOBUFS, and it is not sent twice).
   */
  repeatable?: boolean;
}

/** The kernel's answer to a request. */
export interface NativeResult {
  /** The interface version the kernel answered with. */
  version: [number, number, number];
  flags: number;
  name: string;
  uuid: string;
  dev: NativeU64;
  openCount: number;
  eventNr: number;
  targetCount: number;
  /** How many ioctl calls this request took (more than 1 only when the buffer grew). */
  ioctls: number;
  /** Bytes of the buffer the answer came in (the request's own size for commands without output). */
  bufferSize: number;
  /** Rows for TABLE_STATUS, DEV_WAIT. */
  targets?: NativeRows;
  /** LIST_DEVICES. */
  devices?: NativeIndexed;
  /** LIST_VERSIONS and GET_TARGET_VERSION. */
  versions?: NativeTargetVersion[];
  /** TABLE_DEPS: encoded device numbers. */
  deps?: NativeU64[];
  /** TARGET_MSG output, when the kernel set DM_DATA_OUT. */
  data?: string;
}

/** What the compact form of `ioctlSync` returns; the numbers are in the header. */
export type NativeCompactResult = [
  name: string,
  uuid: string,
  targets: NativeRows | undefined,
  devices: NativeIndexed | undefined,
  versions: NativeTargetVersion[] | undefined,
  deps: NativeU64[] | undefined,
  data: string | undefined,
];

/**
 * Rows or devices as `call` gives them: the answer's bytes, its index (kIndexWords 32-bit
 * words an item, as NativeIndexed's), and the rows' target types (undefined for devices);
 * their count and ASCII-ness are in the answer's header.
 */
export type NativeFlatRows = [bytes: ArrayBuffer, index: ArrayBuffer, types: string[] | undefined];

/**
 * What `call` resolves with: the compact form of the answer, its numbers in `header` from
 * word `at` on (CALL_HEADER_WORDS of them: those `callSync` writes, then the rows' or
 * devices' count and 1 when their strings are all ASCII); the answers settled together share
 * one header.
 */
export type NativeCallResult = [
  name: string,
  uuid: string,
  targets: NativeFlatRows | undefined,
  devices: NativeFlatRows | undefined,
  versions: NativeTargetVersion[] | undefined,
  deps: NativeU64[] | undefined,
  data: string | undefined,
  header: Float64Array,
  at: number,
];

/** A native error: an `Error` carrying the failed system call and its errno. */
export interface NativeError extends Error {
  errno: number;
  code: string;
  syscall: string;
  /** DM command name ('DM_DEV_REMOVE') for ioctls on the control node. */
  command?: string;
}

/** A wait that can be cancelled: `promise` rejects with `code: 'ECANCELED'` after `cancel()`. */
export interface NativeWait {
  promise: Promise<NativeResult>;
  cancel(): void;
}

/** A watcher thread; `stop()` ends it and returns once the thread has exited. */
export interface NativeWatch {
  stop(): void;
}

/** One open `/dev/mapper/control` file descriptor. */
export declare class Control {
  /** Opens the control node at `path` (O_RDWR | O_CLOEXEC). Throws a NativeError. */
  constructor(path: string);
  /**
   * Runs one DM command on the addon's own I/O threads (never Node's threadpool). The commands
   * of one run of JavaScript reach a worker together; a thread is added only when the pool is
   * stuck (its workers wait in the kernel while commands wait), and idle ones end. A command
   * naming a device starts only after the earlier ones naming it the same way (name, else
   * uuid, else device number); REMOVE_ALL waits for all earlier ones and holds up later ones.
   */
  ioctl(request: NativeRequest): Promise<NativeResult>;
  /** Runs one DM command on the calling thread; throws a NativeError. DEV_WAIT is refused. */
  ioctlSync(request: NativeRequest): NativeResult;
  /**
   * The same, answered in the compact form: the answer's numbers written into `header` (at
   * least SYNC_HEADER_WORDS long: flags, dev low and high 32 bits, openCount, eventNr,
   * targetCount, ioctls, bufferSize, version[0..2]), its strings and payload returned. An
   * answer that reads as the one before (same name, uuid and payload kind; rows of the same
   * count and types in the same lent buffers; the same message output) comes in the same
   * array as it: read it before the next call, and never change it.
   */
  ioctlSync(request: NativeRequest, header: Float64Array): NativeCompactResult;
  /**
   * `ioctl` with the request's header fields as arguments (what the clients use: they cost a
   * fraction of the Node-API calls that reading an object's properties does). `name` and
   * `uuid` are '' when absent, `dev` and `eventNr` 0; `payload` is undefined or an object with
   * the request's payload fields (`targets`, `data`, `sector`, `message`, `repeatable`), the
   * others of it ignored. Answered in the compact form (a few Node-API calls per answer where
   * the object form takes some thirty).
   */
  call(cmd: number, flags: number, dev: number, eventNr: number, name: string, uuid: string, payload: NativeRequest | undefined): Promise<NativeCallResult>;
  /** `ioctlSync` in the compact form, with the request's fields as `call` takes them. */
  callSync(cmd: number, flags: number, dev: number, eventNr: number, name: string, uuid: string, payload: NativeRequest | undefined, header: Float64Array): NativeCompactResult;
  /**
   * Waits on the addon's own thread until the device's event counter differs from
   * `request.eventNr`, then answers with DEV_WAIT's reply. `request.cmd` is ignored.
   */
  waitEvent(request: NativeRequest): NativeWait;
  /**
   * Starts a thread that arms DM_DEV_ARM_POLL on its own control fd and polls it; `onArmed`
   * is called after the first arm and after every event (the caller then lists devices).
   * `onError` gets a NativeError if arming or polling fails; the thread then ends.
   */
  watch(onArmed: () => void, onError: (error: NativeError) => void): NativeWatch;
  /** Per command, the largest buffer size (bytes) remembered for any device (16 KiB when none). */
  bufferSizes(): number[];
  /**
   * Gives back the ArrayBuffers of an answer of `call` (its rows' or devices' bytes and index)
   * once it has been read: the large ones (64 KiB and more, lent without a copy) are detached,
   * reading as empty from then on, and their memory is kept for the I/O threads to copy the
   * next large answers into (a few buffers, 16 MiB at most; wiped first when secret). Others,
   * and buffers given back already, are left as they are; a value that is not an ArrayBuffer
   * is a TypeError.
   */
  recycle(...buffers: ArrayBuffer[]): void;
  /**
   * The memory of large answers: takes served by memory given back (`reused`), the bytes kept
   * for the next answers (`keptBytes`), and the ArrayBuffers lent and not yet given back or
   * collected (`lent`).
   */
  answerMemory(): { reused: number; keptBytes: number; lent: number };
  /** Rejects new calls, cancels waits and watches, waits for pending work, closes the fd. */
  close(): Promise<void>;
  /** Closes the fd at once; throws while asynchronous work is in flight (use close()). */
  closeSync(): void;
  readonly closed: boolean;
}

/** Loop device status (LOOP_GET_STATUS64). */
export interface NativeLoopInfo {
  /** lo_device: the backing file's device, in the kernel's huge encoding. */
  device: NativeU64;
  inode: NativeU64;
  /** lo_rdevice. */
  rdevice: NativeU64;
  offset: NativeU64;
  sizeLimit: NativeU64;
  number: number;
  flags: number;
  fileName: string;
}

/** Options for loopConfigure; all required, TypeScript fills the defaults. */
export interface NativeLoopConfig {
  readOnly: boolean;
  offset: number;
  sizeLimit: number;
  autoclear: boolean;
  directIo: boolean;
  /** 0 = the kernel's default. */
  blockSize: number;
}

/**
 * The rows of a TABLE_LOAD, taken from JavaScript a range at a time (each row checked as a
 * request's rows are), so that a large table is read in slices between turns of the event
 * loop. A request whose `targets` is a list takes its rows over: a list is loaded once (a
 * second request with it is a TypeError). Its rows are wiped when it is collected.
 */
export declare class NativeTargetList {
  constructor();
  /** Appends rows[from] ... rows[to - 1]. */
  append(rows: readonly NativeTargetSpec[], from: number, to: number): void;
  /** Rows appended so far. */
  readonly count: number;
}

export interface Binding {
  Control: typeof Control;
  TargetList: typeof NativeTargetList;
  /** Header constants from `<linux/dm-ioctl.h>`, as compiled into the addon. */
  constants: Record<string, number>;
  /** LOOP_CTL_GET_FREE on `/dev/loop-control`: the number of a free loop device. */
  loopGetFree(controlPath: string): Promise<number>;
  /** LOOP_CONFIGURE (falling back to LOOP_SET_FD + LOOP_SET_STATUS64) of `loopPath` onto `filePath`. */
  loopConfigure(loopPath: string, filePath: string, config: NativeLoopConfig): Promise<void>;
  /** LOOP_CLR_FD. */
  loopClear(loopPath: string): Promise<void>;
  /** LOOP_GET_STATUS64. */
  loopStatus(loopPath: string): Promise<NativeLoopInfo>;
  /** LOOP_SET_CAPACITY. */
  loopSetCapacity(loopPath: string): Promise<void>;
  /** BLKGETSIZE64 of a block device, in bytes. */
  blockDeviceSize(path: string): Promise<NativeU64>;
  /** BLKDISCARD of [offset, offset + length) bytes. */
  blockDiscard(path: string, offset: number, length: number): Promise<void>;
  /**
   * semget(key, 1, IPC_CREAT | IPC_EXCL | 0600) and SETVAL `value`: a new SysV semaphore's id
   * (a udev cookie). EEXIST when the key is taken.
   */
  semCreate(key: number, value: number): number;
  /** semop of +1 or -1 with IPC_NOWAIT (EAGAIN when a decrement would go below zero). */
  semAdd(semid: number, delta: 1 | -1): void;
  /** semctl GETVAL. */
  semValue(semid: number): number;
  /** semctl IPC_RMID. */
  semRemove(semid: number): void;
  /**
   * Waits on the calling thread until the semaphore is zero (semtimedop): EAGAIN after
   * `timeoutMs`, EIDRM when it is removed meanwhile.
   */
  semWaitZeroSync(semid: number, timeoutMs: number): void;
  /**
   * The same wait on a thread of the addon's own (never Node's threadpool); `done` is called
   * with null, or the error, when it ends (a callback: a promise still pending when a worker
   * is terminated could not be settled, and would leak). If the environment goes first, the
   * addon removes the semaphore.
   */
  semWaitZero(semid: number, timeoutMs: number, done: (error: Error | null) => void): void;
  /** mknod(path, S_IFBLK | mode, makedev(major, minor)); the umask applies. */
  mknodBlock(path: string, major: number, minor: number, mode: number): void;
  /** HDIO_GETGEO of a block device. */
  blockGeometry(path: string): Promise<{ cylinders: number; heads: number; sectors: number; start: NativeU64 }>;
}
