/**
 * Readers of the rows and devices in the addon's answers (see NativeIndexed in binding.d.ts):
 * each field is read from the answer's buffer when it is asked for, so that a large answer is
 * turned into objects once, directly, and in slices (see `sliced` in steps.ts).
 * @internal
 */
import type { NativeCallResult, NativeCompactResult, NativeFlatRows, NativeIndexed, NativeResult, NativeRows, NativeU64 } from '../binding';
import { exactNumber } from './errors';

/** Words per item in an index. */
const WORDS = 8;
const TWO_32 = 2 ** 32;
/** High words at or above this do not make a safe integer. */
const SAFE_HIGH = 2 ** 21;

const NO_ROWS: NativeRows = { bytes: new ArrayBuffer(0), index: new Uint32Array(0), count: 0, ascii: true, types: [] };
const NO_DEVICES: NativeIndexed = { bytes: new ArrayBuffer(0), index: new Uint32Array(0), count: 0, ascii: true };

/** From this many items on, an ASCII answer's strings are decoded a window at a time and sliced. */
const DECODE_AT_ONCE = 16;
/**
 * Bytes decoded at a time: a string this short is made in V8's young generation, whose
 * memory is reused, where one string of a whole large answer would be a fresh large-object
 * allocation each time (page faults, which cost tens of microseconds each under UML).
 */
const DECODE_WINDOW = 32 * 1024;

/**
 * The synchronous client's answers are lent until its next call, which writes its own answer
 * over them (or, where the memory moved, detaches them: they read as empty): a read after
 * that is a bug, and fails, never reads the next answer's bytes.
 */
const LENT = 'internal error: an answer was read after the next call of its client';

/**
 * Counts the calls of a synchronous client, whose answers lie in memory the next call
 * reuses: an answer it lent is good while the count is the one it was lent at.
 */
export class Lender {
  /** Calls so far. */
  calls = 0;
}

/** An answer; one the synchronous client lent names its lender and the call it answered. */
export interface Answer extends NativeResult {
  lender?: Lender;
  call?: number;
}

/** A 64-bit value from its two words, as an exact number (a DmError with EOVERFLOW if not). */
function u64(low: number, high: number, field: string, device: string | undefined): number {
  if (high < SAFE_HIGH) return high * TWO_32 + low;
  return exactNumber((BigInt(high) << 32n) | BigInt(low), field, device);
}

/** The indexed items of an answer, their strings read from its buffer. */
abstract class Indexed {
  readonly count: number;
  readonly #words: Uint32Array;
  readonly #memory: ArrayBuffer;
  /** A Buffer over #memory, made at the first string read (most one-row answers have none). */
  #view: Buffer | undefined;
  readonly #ascii: boolean;
  /** A window of an ASCII answer's strings region, decoded at once (see text), and where it starts. */
  #decoded = '';
  #decodedFrom = 0;
  /** Where the strings region ends, once known. */
  #spanEnd = -1;
  readonly #lender: Lender | undefined;
  readonly #call: number;

  constructor(indexed: NativeIndexed, what: string, answer: Answer) {
    if (indexed.index.length !== indexed.count * WORDS) throw new Error(`internal error: the ${what} index has ${indexed.index.length} words for ${indexed.count} items`);
    this.count = indexed.count;
    this.#words = indexed.index;
    this.#memory = indexed.bytes;
    this.#ascii = indexed.ascii;
    this.#lender = answer.lender;
    this.#call = answer.call ?? 0;
  }

  #bytes(): Buffer {
    this.#view ??= Buffer.from(this.#memory);
    return this.#view;
  }

  /** Fails once the client that lent the answer has made another call. */
  #stillLent(): void {
    if (this.#lender !== undefined && this.#lender.calls !== this.#call) throw new Error(LENT);
  }

  /** Where the last item's last string ends. */
  protected abstract stringsEnd(): number;

  /** Word `k` of item `i`. */
  protected word(i: number, k: number): number {
    this.#stillLent();
    const w = this.#words[i * WORDS + k];
    if (w === undefined) throw new Error(i < this.count ? LENT : `internal error: item ${i} of ${this.count} read`);
    return w;
  }

  /**
   * Where item `i`'s words start, for `wordAt`: the answer's lending is checked here once for
   * all of them (an item's words are read together, before any other call of the client).
   */
  protected itemAt(i: number): number {
    this.#stillLent();
    if (!(i >= 0 && i < this.count)) throw new Error(`internal error: item ${i} of ${this.count} read`);
    return i * WORDS;
  }

  /** The word at `at` (from `itemAt`), without a second check of the lending. */
  protected wordAt(at: number): number {
    const w = this.#words[at];
    if (w === undefined) throw new Error(LENT);
    return w;
  }

  /** The UTF-8 string of `length` bytes at `offset`. */
  protected text(offset: number, length: number): string {
    this.#stillLent();
    // No window for nothing: a table of zero or error rows has no params at all.
    if (length === 0) {
      if (offset > this.#memory.byteLength) throw new Error(LENT);
      return '';
    }
    // Detached memory (given back, or moved) reads as empty.
    const bytes = this.#bytes();
    if (offset + length > bytes.length) throw new Error(LENT);
    if (this.#ascii && this.count >= DECODE_AT_ONCE) {
      // A window of the strings at once, then slices: ASCII reads the same in Latin-1 and
      // UTF-8, and the bytes between the strings (the records' headers) are never sliced.
      // Items are read in order, so each window is decoded once.
      let at = offset - this.#decodedFrom;
      if (at < 0 || at + length > this.#decoded.length) {
        if (this.#spanEnd < 0) this.#spanEnd = this.stringsEnd();
        const to = Math.min(this.#spanEnd, Math.max(offset + length, offset + DECODE_WINDOW));
        this.#decodedFrom = offset;
        this.#decoded = bytes.toString('latin1', offset, to);
        at = 0;
      }
      if (at + length <= this.#decoded.length) return this.#decoded.slice(at, at + length);
    }
    return bytes.toString('utf8', offset, offset + length);
  }

  /** Overwrites the answer's bytes (an answer to a SECURE_DATA request may hold a key). */
  wipe(): void {
    this.#stillLent();
    // Detached memory (byteLength 0) holds nothing to wipe.
    if (this.#memory.byteLength > 0) new Uint8Array(this.#memory).fill(0);
  }
}

/** The rows of a TABLE_STATUS or DEV_WAIT answer. */
export class RowReader extends Indexed {
  readonly #types: readonly string[];
  readonly #device: string | undefined;

  constructor(r: Answer, device: string | undefined) {
    const rows = r.targets ?? NO_ROWS;
    super(rows, 'row', r);
    this.#types = rows.types;
    this.#device = device;
  }

  start(i: number): number {
    return u64(this.word(i, 0), this.word(i, 1), 'a row start', this.#device);
  }

  length(i: number): number {
    return u64(this.word(i, 2), this.word(i, 3), 'a row length', this.#device);
  }

  type(i: number): string {
    const type = this.#types[this.word(i, 5)];
    if (type === undefined) throw new Error(`internal error: row ${i} names target type ${this.word(i, 5)} of ${this.#types.length}`);
    return type;
  }

  params(i: number): string {
    return this.text(this.word(i, 6), this.word(i, 7));
  }

  protected stringsEnd(): number {
    const last = this.count - 1;
    return this.word(last, 6) + this.word(last, 7);
  }

  /** Every row as { start, length, type, params }. */
  all(): { start: number; length: number; type: string; params: string }[] {
    const out: { start: number; length: number; type: string; params: string }[] = [];
    for (let i = 0; i < this.count; i++) out.push({ start: this.start(i), length: this.length(i), type: this.type(i), params: this.params(i) });
    return out;
  }
}

/** The devices of a LIST_DEVICES answer. */
export class DeviceReader extends Indexed {
  constructor(r: Answer) {
    super(r.devices ?? NO_DEVICES, 'device', r);
  }

  name(i: number): string {
    return this.#nameAt(this.itemAt(i));
  }

  protected stringsEnd(): number {
    const last = this.count - 1;
    const uuidAt = this.word(last, 6);
    return uuidAt === 0 ? this.word(last, 2) + this.word(last, 3) : uuidAt + this.word(last, 7);
  }

  /** dm_name_list.dev, in the kernel's huge encoding. */
  dev(i: number): number {
    return this.#devAt(this.itemAt(i));
  }

  /** The device's event counter, when the kernel reports it (4.38 and later). */
  eventNr(i: number): number | undefined {
    return this.#eventNrAt(this.itemAt(i));
  }

  /** The device's uuid, when the kernel reports one (4.45 and later, with the UUID flag). */
  uuid(i: number): string | undefined {
    return this.#uuidAt(this.itemAt(i));
  }

  /**
   * What `make` makes of device `i`'s name, number (dev), uuid and event counter, read at once
   * (what name, dev, uuid and eventNr read one by one; the lending checked once).
   */
  entry<T>(i: number, make: (name: string, dev: number, uuid: string | undefined, eventNr: number | undefined) => T): T {
    const at = this.itemAt(i);
    return make(this.#nameAt(at), this.#devAt(at), this.#uuidAt(at), this.#eventNrAt(at));
  }

  // The fields of the device whose words start at `at` (from itemAt).

  #nameAt(at: number): string {
    return this.text(this.wordAt(at + 2), this.wordAt(at + 3));
  }

  #devAt(at: number): number {
    const low = this.wordAt(at);
    const high = this.wordAt(at + 1);
    // The name is read only for the error's sake.
    return high < SAFE_HIGH ? high * TWO_32 + low : u64(low, high, 'dev', this.#nameAt(at));
  }

  #eventNrAt(at: number): number | undefined {
    return this.wordAt(at + 4) === 1 ? this.wordAt(at + 5) : undefined;
  }

  #uuidAt(at: number): string | undefined {
    const uuidAt = this.wordAt(at + 6);
    return uuidAt === 0 ? undefined : this.text(uuidAt, this.wordAt(at + 7));
  }
}

/** Words of the header the compact form of `ioctlSync` fills. */
export const SYNC_HEADER_WORDS = 11;

/** A 64-bit value from two words, as the addon gives it: a number when safe, else a bigint. */
function nativeU64(low: number, high: number): NativeU64 {
  return high < SAFE_HIGH ? high * TWO_32 + low : (BigInt(high) << 32n) | BigInt(low);
}

/** Words of a `call` answer's header: the sync header's, then the rows' count and ASCII-ness. */
export const CALL_HEADER_WORDS = SYNC_HEADER_WORDS + 2;

/** Word `i` of a header, a 32-bit unsigned value, as an integer. */
function u32(header: Float64Array, i: number): number {
  return (header[i] ?? 0) >>> 0;
}

/** An answer from the numbers in `header` (from word `at`) and the rest, made in one literal. */
function answerOf(
  header: Float64Array,
  at: number,
  name: string,
  uuid: string,
  targets: NativeRows | undefined,
  devices: NativeIndexed | undefined,
  versions: NativeResult['versions'],
  deps: NativeResult['deps'],
  data: NativeResult['data'],
  lender: Lender | undefined,
): Answer {
  // The header's words are 32-bit (open_count signed): as integers, which V8 keeps unboxed
  // (a double field would box each value in a heap number of its own, per answer).
  return {
    version: [u32(header, at + 8), u32(header, at + 9), u32(header, at + 10)],
    flags: u32(header, at),
    name,
    uuid,
    dev: nativeU64(u32(header, at + 1), u32(header, at + 2)),
    openCount: (header[at + 3] ?? 0) | 0,
    eventNr: u32(header, at + 4),
    targetCount: u32(header, at + 5),
    ioctls: u32(header, at + 6),
    bufferSize: u32(header, at + 7),
    targets,
    devices,
    versions,
    deps,
    data,
    lender,
    call: lender?.calls,
  };
}

/**
 * The answer of the compact form of `ioctlSync`, as the object form gives it; lent by
 * `lender` at its current call, when given (its rows and devices are read before the next).
 */
export function fromCompact(header: Float64Array, compact: NativeCompactResult, lender?: Lender): Answer {
  const [name, uuid, targets, devices, versions, deps, data] = compact;
  return answerOf(header, 0, name, uuid, targets, devices, versions, deps, data, lender);
}

/** A `call` answer's flat rows or devices, as the object form gives them. */
function indexedOf(flat: NativeFlatRows, count: number, ascii: boolean): NativeRows {
  return { bytes: flat[0], index: new Uint32Array(flat[1]), count, ascii, types: flat[2] ?? [] };
}

/** The answer `call` resolved with, as the object form gives it. */
export function fromCall(answer: NativeCallResult): Answer {
  const [name, uuid, targets, devices, versions, deps, data, header, at] = answer;
  const count = header[at + SYNC_HEADER_WORDS] ?? 0;
  const ascii = header[at + SYNC_HEADER_WORDS + 1] === 1;
  return answerOf(header, at, name, uuid, targets && indexedOf(targets, count, ascii), devices && indexedOf(devices, count, ascii), versions, deps, data, undefined);
}
