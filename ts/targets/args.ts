/**
 * Shared pieces of the target modules: a reader of parameter and status words that names the
 * field at fault, and the checks and formatting the builders use. Pure data: nothing here
 * touches the kernel.
 */
import { formatDeviceRef } from '../dev';
import { DmParseError } from '../errors';
import { checkOptions, checkSector, describe, expected, expectedRange } from '../validate';

/** Largest u32, the bound of most of the kernel's counts and sizes. */
export const U32_MAX = 0xffffffff;

/**
 * Reads the words of a params or status text in order. Every failure is a DmParseError that
 * carries the whole text (or `shown`: the text with its secrets hidden) and names the field
 * being read.
 */
export class ArgReader {
  readonly #words: readonly string[];
  #at = 0;

  /**
   * @param text the params or status text
   * @param target the target type, for messages ('thin-pool')
   * @param shown what errors quote of the text (crypt: the text with its key zeroed)
   */
  constructor(
    readonly text: string,
    readonly target: string,
    readonly shown: string = text,
  ) {
    const trimmed = text.trim();
    this.#words = trimmed === '' ? [] : trimmed.split(/\s+/);
  }

  /** How many words are left. */
  get remaining(): number {
    return this.#words.length - this.#at;
  }

  /** The next word without consuming it. */
  peek(): string | undefined {
    return this.#words[this.#at];
  }

  /**
   * A DmParseError about `field` of this text. With a `shown` text, the message too shows
   * every secret as `shown` hides it: a word a message quotes (a misplaced or miscounted key)
   * never carries one.
   */
  fail(message: string, field: string): DmParseError {
    return new DmParseError(`${this.target}: ${this.shown === this.text ? message : hideSecrets(message, this.text, this.shown)}`, this.shown, field);
  }

  /** The next word; refuses a missing one. */
  word(field: string): string {
    const w = this.#words[this.#at];
    if (w === undefined) throw this.fail(`<${field}> is missing`, field);
    this.#at++;
    return w;
  }

  /** The next word, which must be one of `choices`. */
  oneOf<T extends string>(field: string, choices: readonly T[]): T {
    const w = this.word(field);
    const found = choices.find((c) => c === w);
    if (found === undefined) throw this.fail(`<${field}> is one of ${choices.join(', ')}, not ${JSON.stringify(w)}`, field);
    return found;
  }

  /** A decimal unsigned integer in [min, max] (max at most 2^53 − 1). */
  uint(field: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    return parseUint(this.word(field), field, min, max, this);
  }

  /** A decimal integer, possibly negative, in [min, max] (the kernel's signed fields). */
  int(field: string, min: number, max: number): number {
    const w = this.word(field);
    if (!/^-?\d+$/.test(w)) throw this.fail(`<${field}> is not an integer: ${JSON.stringify(w)}`, field);
    const n = Number(w);
    if (!Number.isSafeInteger(n) || n < min || n > max) throw this.fail(`<${field}> is ${w}, outside ${min}..${max}`, field);
    return n === 0 ? 0 : n;
  }

  /**
   * `<count> key value...` as the kernel prints core and policy args: the pairs, in order, each
   * value an unsigned integer. Refuses an odd count and a key given twice.
   */
  pairs(field: string, max = 1024): [string, number][] {
    const words = this.group(field, max);
    if (words.length % 2 !== 0) throw this.fail(`<${field}> are key/value pairs, but ${words.length} word(s) were counted`, `${field} count`);
    const out: [string, number][] = [];
    for (let i = 0; i < words.length; i += 2) {
      const key = words[i] ?? '';
      if (out.some(([k]) => k === key)) throw this.fail(`<${field}> gives ${key} twice`, field);
      out.push([key, parseUint(words[i + 1] ?? '', `${field} ${key}`, 0, Number.MAX_SAFE_INTEGER, this)]);
    }
    return out;
  }

  /** A decimal unsigned 64-bit integer, exact (bigint). */
  u64(field: string): bigint {
    const w = this.word(field);
    if (!/^\d+$/.test(w)) throw this.fail(`<${field}> is not an unsigned integer: ${JSON.stringify(w)}`, field);
    const n = BigInt(w);
    if (n > 0xffffffffffffffffn) throw this.fail(`<${field}> is larger than 64 bits`, field);
    return n;
  }

  /** A device: 'major:minor' or a /dev path. */
  device(field: string): string {
    const w = this.word(field);
    try {
      return formatDeviceRef(w, field);
    } catch (e) {
      throw this.fail(e instanceof Error ? e.message : String(e), field);
    }
  }

  /** A device, or null for the kernel's '-' (a missing one). */
  deviceOrDash(field: string): string | null {
    if (this.peek() === '-') {
      this.#at++;
      return null;
    }
    return this.device(field);
  }

  /**
   * A group of words counted by a leading number (feature args, policy args):
   * `<count> word...`, the words returned.
   */
  group(field: string, max = 1024): string[] {
    const count = this.uint(`${field} count`, 0, max);
    if (count > this.remaining) throw this.fail(`<${field} count> says ${count} but only ${this.remaining} word(s) follow`, `${field} count`);
    return this.take(count);
  }

  /** The next `n` words. */
  take(n: number): string[] {
    const out = this.#words.slice(this.#at, this.#at + n);
    this.#at += out.length;
    return out;
  }

  /** Every word left. */
  rest(): string[] {
    return this.take(this.remaining);
  }

  /** Refuses words left over. */
  done(): void {
    if (this.remaining > 0) throw this.fail(`unexpected ${JSON.stringify(this.#words.slice(this.#at).join(' '))} after the last field`, 'params');
  }
}

/**
 * `message` with each secret of `text` replaced as `shown` (the same words, secrets zeroed:
 * masking keeps every word's length) hides it. A secret is a run of a word's characters that
 * `shown` has as zeroes, at least one of which differs; every copy of it in the message goes.
 */
function hideSecrets(message: string, text: string, shown: string): string {
  const words = text.trim().split(/\s+/);
  const masked = shown.trim().split(/\s+/);
  let out = message;
  words.forEach((w, i) => {
    const m = masked[i];
    if (m === undefined || m === w || m.length !== w.length) return;
    for (let k = 0; k < w.length; ) {
      if (m[k] !== '0') {
        k++;
        continue;
      }
      let end = k;
      let differs = false;
      while (end < w.length && m[end] === '0') {
        if (w[end] !== '0') differs = true;
        end++;
      }
      const secret = w.slice(k, end);
      if (differs && secret.length >= 2) out = out.split(secret).join('0'.repeat(secret.length));
      k = end;
    }
  });
  return out;
}

/** A decimal unsigned integer word in [min, max]; `at` names the text for the error. */
export function parseUint(word: string, field: string, min: number, max: number, at: ArgReader): number {
  if (!/^\d+$/.test(word)) throw at.fail(`<${field}> is not an unsigned integer: ${JSON.stringify(word)}`, field);
  const n = Number(word);
  if (!Number.isSafeInteger(n)) throw at.fail(`<${field}> ${word} is larger than a safe integer`, field);
  if (n < min || n > max) throw at.fail(`<${field}> is ${n}, outside ${min}..${max}`, field);
  return n;
}

/**
 * A `<used>/<total>` status word as a pair of numbers, both in the unit the field holding it
 * names (metadata blocks, data blocks, regions, sectors...).
 */
export interface UsedTotal {
  /** The part in use (or done), before the slash. */
  readonly used: number;
  /** The whole, after the slash. */
  readonly total: number;
}

/** Parses a `used/total` word. */
export function parseRatio(at: ArgReader, field: string): UsedTotal {
  const w = at.word(field);
  const m = /^(\d+)\/(\d+)$/.exec(w);
  if (!m || m[1] === undefined || m[2] === undefined) throw at.fail(`<${field}> is not <used>/<total>: ${JSON.stringify(w)}`, field);
  return Object.freeze({ used: parseUint(m[1], field, 0, Number.MAX_SAFE_INTEGER, at), total: parseUint(m[2], field, 0, Number.MAX_SAFE_INTEGER, at) });
}

// ---- builders -------------------------------------------------------------------------------

/** The options object of a builder: a plain object with only the known keys. */
export function builderOptions<T extends object>(value: T, name: string, known: readonly (keyof T & string)[]): T {
  if (value === undefined || value === null) throw expected('an options object', name, value);
  checkOptions(value, name, known);
  return value;
}

/** A device option, formatted 'major:minor' or kept as the /dev path given. */
export function device(value: unknown, name: string): string {
  return formatDeviceRef(value, name);
}

/** A sector count or offset (safe non-negative integer). */
export function sectors(value: unknown, name: string): number {
  return checkSector(value, name);
}

/** An integer option in [min, max]. */
export function integer(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number') throw expected(`an integer from ${min} to ${max}`, name, value);
  if (!Number.isInteger(value) || value < min || value > max) throw expectedRange(`an integer from ${min} to ${max}`, name, value);
  return value;
}

/** An optional integer option in [min, max]. */
export function optionalInteger(value: unknown, name: string, min: number, max: number): number | undefined {
  return value === undefined ? undefined : integer(value, name, min, max);
}

/** A power of two in [min, max]. */
export function powerOfTwo(value: unknown, name: string, min: number, max: number): number {
  const n = integer(value, name, min, max);
  if ((n & (n - 1)) !== 0) throw expectedRange(`a power of two from ${min} to ${max}`, name, value);
  return n;
}

/** An optional boolean option (undefined stays undefined). */
export function flag(value: unknown, name: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw expected('a boolean', name, value);
  return value;
}

/** One of the listed values (strings or numbers). */
export function choice<T extends string | number>(value: unknown, name: string, choices: readonly T[]): T {
  const found = choices.find((c) => c === value);
  if (found === undefined) {
    const what = `one of ${choices.map((c) => JSON.stringify(c)).join(', ')}`;
    throw typeof value === typeof choices[0] ? expectedRange(what, name, value) : expected(what, name, value);
  }
  return found;
}

/** A word that can sit in a params string: non-empty, no whitespace. */
export function word(value: unknown, name: string): string {
  if (typeof value !== 'string') throw expected('a string', name, value);
  if (!/^\S+$/.test(value)) throw expectedRange('a non-empty word without whitespace', name, value);
  return value;
}

/** An array option, each item checked by `item`. */
export function list<T>(value: unknown, name: string, item: (v: unknown, n: string) => T, min = 0, max = 1024): T[] {
  if (!Array.isArray(value)) throw expected('an array', name, value);
  if (value.length < min || value.length > max) throw expectedRange(`an array of ${min} to ${max} items`, name, value);
  const out: T[] = [];
  for (let i = 0; i < value.length; i++) {
    if (!Object.prototype.hasOwnProperty.call(value, i)) throw expected('an item', `${name}[${i}]`, undefined);
    out.push(item(value[i], `${name}[${i}]`));
  }
  return out;
}

/** `<count> words...` as the kernel counts feature and policy args. */
export function counted(words: readonly (string | number)[]): string {
  return words.length === 0 ? '0' : `${words.length} ${words.join(' ')}`;
}

/** Joins the parts of a params string, dropping the empty ones. */
export function join(parts: readonly (string | number | undefined)[]): string {
  return parts.filter((p) => p !== undefined && p !== '').join(' ');
}

/** Returns the object it is given: lets a subclass add its private fields to any object. */
// eslint-disable-next-line @typescript-eslint/no-extraneous-class -- the constructor's return override is the point: a subclass's fields land on `value`
class Adopt {
  constructor(value: object) {
    return value;
  }
}

/**
 * The mark of a builder's target: a private field that only this module can add or test (no
 * property, symbol or prototype to copy), and cheap for the garbage collector, unlike a
 * WeakSet holding every target of a 100,000-row table.
 */
class TypedMark extends Adopt {
  readonly #typed = true;

  static has(value: object): boolean {
    return #typed in value;
  }
}

/**
 * Freezes a typed target made by a builder and marks it as such: a `Table` keeps a marked
 * target as it is (its fields and params agree by construction) and re-reads any other from
 * its params.
 */
export function typedTarget<T extends { readonly type: string; readonly params: string }>(target: T): T {
  // Marked before it is frozen: a private field is never added to a frozen object.
  if (!Object.isFrozen(target)) new TypedMark(target);
  return freeze(target);
}

/** True for a target a builder made (see `typedTarget`). */
export function isTypedTarget(value: object): value is { readonly type: string; readonly params: string } {
  return TypedMark.has(value);
}

/** Freezes a typed target or status (and the arrays and objects it holds). */
export function freeze<T extends object>(value: T): T {
  // Own enumerable members, as Object.values has them, without making its array each time
  // (every parsed row and status comes through here: that array was half the cost).
  if (Array.isArray(value)) {
    for (const v of value) freezeMember(v);
  } else {
    for (const key in value) if (Object.hasOwn(value, key)) freezeMember(value[key]);
  }
  return Object.freeze(value);
}

function freezeMember(v: unknown): void {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) freeze(v);
}

/** For messages: the value, described as the house messages do. */
export { describe };
