/**
 * Argument checks made before any ioctl. Every message has one shape:
 * "Expected <what> for <name> but received <value>".
 */

/** Describes a received value for an error message. */
export function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (typeof value === 'string') return value.length > 60 ? `string of length ${value.length}` : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `${typeof value} ${String(value)}`;
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'function') return 'function';
  return 'object';
}

/** A TypeError in the house shape. */
export function expected(what: string, name: string, value: unknown): TypeError {
  return new TypeError(`Expected ${what} for ${name} but received ${describe(value)}`);
}

/** A secret (a key) described without its content, for error messages. */
export function describeSecret(value: unknown): string {
  if (typeof value === 'string') return `a string of length ${value.length}`;
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (value === null) return 'null';
  return typeof value === 'object' ? 'object' : typeof value;
}

/** A TypeError or RangeError in the house shape about a secret: its value is never quoted. */
export function expectedSecret(kind: typeof TypeError | typeof RangeError, what: string, name: string, value: unknown): Error {
  return new kind(`Expected ${what} for ${name} but received ${describeSecret(value)}`);
}

/** A RangeError in the house shape. */
export function expectedRange(what: string, name: string, value: unknown): RangeError {
  return new RangeError(`Expected ${what} for ${name} but received ${describe(value)}`);
}

/** A safe non-negative integer (sectors, lengths, offsets). */
export function checkSector(value: unknown, name: string): number {
  if (typeof value !== 'number') throw expected('a non-negative safe integer', name, value);
  if (!Number.isSafeInteger(value) || value < 0) throw expectedRange('a non-negative safe integer', name, value);
  return value;
}

/** An integer in [min, max]. */
export function checkInteger(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number') throw expected(`an integer from ${min} to ${max}`, name, value);
  if (!Number.isInteger(value) || value < min || value > max) throw expectedRange(`an integer from ${min} to ${max}`, name, value);
  return value;
}

/** A boolean option, default when undefined. */
export function checkBoolean(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw expected('a boolean', name, value);
  return value;
}

/** The options of a call given none: one frozen object, not a new one per call. */
const NO_OPTIONS = Object.freeze({});

/**
 * An options object (undefined means {}): a plain object whose own keys are all in `known`.
 * An unknown key is refused, so that a typo or a wish (`{ prefix }` where there is no such
 * option) can never widen what a call does.
 */
export function checkOptions<T extends object>(value: T | undefined, name: string, known: readonly (keyof T & string)[]): Readonly<Partial<T>> {
  if (value === undefined) return NO_OPTIONS;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw expected('an options object', name, value);
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) throw expected('a plain options object', name, value);
  for (const key of Reflect.ownKeys(value)) {
    if (typeof key !== 'string' || !(known as readonly string[]).includes(key)) {
      const shown = typeof key === 'string' ? key : String(key);
      const list = known.length === 0 ? 'no options' : `one of ${known.join(', ')}`;
      throw new TypeError(`Expected ${list} for ${name} but received unknown option ${JSON.stringify(shown)}`);
    }
  }
  return value;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** True when `s` is well-formed Unicode (no lone surrogate, which UTF-8 would turn into U+FFFD). */
export function isWellFormed(s: string): boolean {
  return !LONE_SURROGATE.test(s);
}

/** Refuses a string with a lone surrogate: it would silently become another string in UTF-8. */
export function checkWellFormed(value: string, name: string): string {
  if (!isWellFormed(value)) {
    throw new RangeError(`Expected well-formed Unicode for ${name} but received a string with a lone surrogate (${JSON.stringify(value)})`);
  }
  return value;
}

function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/**
 * A device name: 1..127 bytes, no '/', not '.', '..' or 'control' (kernels since 6.5 refuse
 * these; older ones make the device, so the library refuses them itself), no NUL.
 */
export function checkName(value: unknown, name = 'name'): string {
  // The same name again (a device called on in a loop): checked once.
  if (value === lastName && typeof value === 'string') return value;
  if (typeof value !== 'string') throw expected('a device name (string)', name, value);
  checkWellFormed(value, name);
  const bytes = utf8Length(value);
  if (bytes < 1 || bytes > 127) throw expectedRange('a device name of 1 to 127 bytes', name, value);
  if (value.includes('/')) throw expectedRange("a device name without '/'", name, value);
  if (value.includes('\0')) throw expectedRange('a device name without NUL bytes', name, value);
  if (value === '.' || value === '..' || value === 'control') throw expectedRange("a device name other than '.', '..' and 'control'", name, value);
  lastName = value;
  return value;
}

/** The last name checkName passed (strings are immutable: the same string passes again). */
let lastName: string | undefined;

/** A device uuid: 1..128 bytes, no NUL. */
export function checkUuid(value: unknown, name = 'uuid'): string {
  if (typeof value !== 'string') throw expected('a uuid (string)', name, value);
  checkWellFormed(value, name);
  const bytes = utf8Length(value);
  if (bytes < 1 || bytes > 128) throw expectedRange('a uuid of 1 to 128 bytes', name, value);
  if (value.includes('\0')) throw expectedRange('a uuid without NUL bytes', name, value);
  return value;
}

/** A target type: 1..15 bytes of non-space characters. */
export function checkTargetType(value: unknown, name = 'type'): string {
  if (typeof value !== 'string') throw expected('a target type (string)', name, value);
  checkWellFormed(value, name);
  const bytes = utf8Length(value);
  if (bytes < 1 || bytes > 15) throw expectedRange('a target type of 1 to 15 bytes', name, value);
  if (/[\s\0]/.test(value)) throw expectedRange('a target type without spaces or NUL bytes', name, value);
  return value;
}

/** Target parameters: one line, no NUL. */
export function checkParams(value: unknown, name = 'params'): string {
  if (typeof value !== 'string') throw expected('target parameters (string)', name, value);
  checkWellFormed(value, name);
  if (value.includes('\0')) throw expectedRange('target parameters without NUL bytes', name, value);
  if (/[\n\r]/.test(value)) throw expectedRange('target parameters on one line', name, value);
  return value;
}

/** A message to a target: non-empty, no NUL. */
export function checkMessage(value: unknown, name = 'message'): string {
  if (typeof value !== 'string') throw expected('a target message (string)', name, value);
  checkWellFormed(value, name);
  if (value.length === 0) throw expectedRange('a non-empty target message', name, value);
  if (value.includes('\0')) throw expectedRange('a target message without NUL bytes', name, value);
  return value;
}
