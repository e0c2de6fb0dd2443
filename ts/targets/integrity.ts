/**
 * dm-integrity: a tag (a checksum or a keyed MAC) kept beside every sector or block of a
 * device, written atomically with the data (through a journal, or with a bitmap of dirty areas)
 * and checked on every read; a mismatch fails the read with EILSEQ. Pure data: nothing here
 * touches the kernel.
 */
import type { DeviceRef } from '../dev';
import { expected, expectedRange, expectedSecret } from '../validate';
import { ArgReader, U32_MAX, builderOptions, choice, device, flag, freeze, integer, join, optionalInteger, powerOfTwo, sectors, typedTarget } from './args';
import type { Target, TargetModule, TargetStatusBase } from './types';

/**
 * How writes reach the device: `journal` (`J`: data and tags go through the journal first, so a
 * crash never leaves them out of step), `bitmap` (`B`: areas being written are marked dirty in a
 * bitmap and their tags recalculated after a crash; needs an internal hash), `direct` (`D`: no
 * journal; a crash may leave data and tags out of step), `recovery` (`R`: read-only, no journal
 * replay and no tag checks, to rescue data), `inline` (`I`: the tags live in the device's own
 * integrity metadata; Linux 6.11 and later).
 */
export type IntegrityMode = 'journal' | 'bitmap' | 'direct' | 'recovery' | 'inline';

const MODE_LETTERS: Readonly<Record<IntegrityMode, string>> = { journal: 'J', bitmap: 'B', direct: 'D', recovery: 'R', inline: 'I' };
const LETTER_MODES: Readonly<Record<'J' | 'B' | 'D' | 'R' | 'I', IntegrityMode>> = { J: 'journal', B: 'bitmap', D: 'direct', R: 'recovery', I: 'inline' };
const MODES = Object.keys(MODE_LETTERS) as IntegrityMode[];

/**
 * The largest tag the kernel takes, bytes: a journal sector's room (496 bytes) less a journal
 * entry's header for 8 sectors per block.
 */
export const INTEGRITY_MAX_TAG_SIZE = 424;

/** An algorithm of the crypto API with an optional key, as `internal_hash`, `journal_crypt` and `journal_mac` take it. */
export interface IntegrityAlgorithm {
  /** `<algorithm>` of `<option>:<algorithm>[:<key>]`: the crypto API's name ('crc32c', 'sha256', 'hmac(sha256)', 'cbc(aes)'). */
  readonly name: string;
  /** `<key>`: the key in hexadecimal, two digits a byte (kept in the case given: the kernel prints it back as it was written), or undefined for none. */
  readonly key: string | undefined;
}

/** An algorithm option: its name alone ('crc32c'), or its name and hexadecimal key. */
export type IntegrityAlgorithmOption =
  | string
  | {
      /** The crypto API's name of the algorithm ('hmac(sha256)'). */
      name: string;
      /** Its key in hexadecimal, two digits a byte; omitted for an unkeyed algorithm. */
      key?: string;
    };

/** Options of an integrity target. */
export interface IntegrityOptions {
  /** `<dev>`: the device holding the data (and, without `metaDevice`, the tags and the journal). */
  device: DeviceRef;
  /** `<offset>`: 512-byte sectors at the start of `device` left alone: the superblock starts after them. */
  offset: number;
  /**
   * `<tag size>`: the tag size in bytes (1 to 424); null or unset for `-`: the digest size of
   * `internalHash`, which the kernel then prints back as a number.
   */
  tagSize?: number | null;
  /** `<mode>`: how writes reach the device (see `IntegrityMode`; written as its letter). */
  mode: IntegrityMode;
  /** `meta_device:<dev>`: a separate device for the tags and the journal (the data device then holds only data). */
  metaDevice?: DeviceRef;
  /** `block_size:<bytes>`: bytes covered by one tag, a power of two from 512 (the kernel's default) to 4096. */
  blockSize?: number;
  /**
   * `recalculate`: compute the tags of the whole device in the background (needs an internal
   * hash). The kernel prints it back for as long as the superblock is marked recalculating,
   * which stays so once the recalculation is done (its sector then equals the provided sectors).
   */
  recalculate?: boolean;
  /** `reset_recalculate`: start the recalculation again from the first sector (implies recalculating). */
  resetRecalculate?: boolean;
  /**
   * `allow_discards`: pass discards through (needs an internal hash). The kernel fills the
   * discarded blocks' tags with a filler byte (0xf6) that reads accept; the data reads back as
   * the device below leaves it (zeroes on a loop device).
   */
  allowDiscards?: boolean;
  /**
   * `journal_sectors:<n>`: the journal's size in 512-byte sectors, taken when the device is
   * formatted; the kernel keeps whole journal sections of it (at least one) and prints that size
   * back (its default: 1/128 of the device, at most 131072 sectors).
   */
  journalSectors?: number;
  /**
   * `interleave_sectors:<n>`: data sectors (512 bytes) between two runs of tags, taken when the
   * device is formatted; the kernel rounds it down to a power of two from 8 to 2^31 (default 32768;
   * 1 with a `metaDevice`) and prints that back.
   */
  interleaveSectors?: number;
  /** `buffer_sectors:<n>`: the size of a metadata buffer, in 512-byte sectors; rounded down to a power of two up to 2^22 (default 128). */
  bufferSectors?: number;
  /** `journal_watermark:<percent>`: percent of the journal in use at which it is flushed (0 to 100, default 50; journal mode only). */
  journalWatermark?: number;
  /** `commit_time:<ms>`: milliseconds after which the journal is committed (default 10000; journal mode only). */
  commitTime?: number;
  /** `sectors_per_bit:<n>`: 512-byte sectors each bit of the dirty bitmap covers, rounded down to a power of two (bitmap mode only). */
  sectorsPerBit?: number;
  /** `bitmap_flush_interval:<ms>`: milliseconds between flushes of the bitmap (default 10000, rounded to the kernel's clock tick; bitmap mode only). */
  bitmapFlushInterval?: number;
  /** `fix_padding`: the compact padding of newer kernels (Linux 5.7+), taken when the device is formatted. */
  fixPadding?: boolean;
  /** `fix_hmac`: a salt in the superblock and the sector number in each MAC (Linux 5.11+), so MACs cannot be moved between devices or sectors; taken when the device is formatted. */
  fixHmac?: boolean;
  /** `legacy_recalculate`: allow recalculating tags with a keyed hash on a device formatted without `fixHmac` (insecure; older devices). */
  legacyRecalculate?: boolean;
  /** `internal_hash:<algorithm>[:<key>]`: compute and check the tags in the kernel with this algorithm (e.g. 'crc32c', 'sha256', 'hmac(sha256)' with a key); unset, the tags come from the layer above (dm-crypt's AEAD). */
  internalHash?: IntegrityAlgorithmOption;
  /** `journal_crypt:<algorithm>[:<key>]`: encrypt the journal with this cipher and key (e.g. 'cbc(aes)'). */
  journalCrypt?: IntegrityAlgorithmOption;
  /** `journal_mac:<algorithm>[:<key>]`: protect the journal (and, with `fixHmac`, the superblock) with this keyed hash. */
  journalMac?: IntegrityAlgorithmOption;
}

/**
 * `integrity <dev> <offset> <tag size> <mode> <#opt params> [<opt param>]*`: tags checked on
 * every read. The kernel prints a table back with the values in effect: journal_sectors,
 * interleave_sectors and buffer_sectors always, journal_watermark and commit_time in journal
 * mode, sectors_per_bit and bitmap_flush_interval in bitmap mode, each as it rounded it.
 */
export interface IntegrityTarget extends Target {
  readonly type: 'integrity';
  /** `<dev>`, 'major:minor' or a /dev path: the data device. */
  readonly device: string;
  /** `<offset>`: 512-byte sectors skipped at the start of the device. */
  readonly offset: number;
  /** `<tag size>`: bytes of tag per block; null for `-` (the internal hash's digest size). */
  readonly tagSize: number | null;
  /** `<mode>`: the write mode (its letter J, B, D, R or I in the table). */
  readonly mode: IntegrityMode;
  /** `meta_device:<dev>`, 'major:minor' or a /dev path: where tags and journal live; undefined when they share `device`. */
  readonly metaDevice: string | undefined;
  /** `block_size:<bytes>`: bytes covered by one tag; undefined when the table omits it (512). */
  readonly blockSize: number | undefined;
  /** `recalculate`: tags are being (or were) recomputed in the background (0/1 flag). */
  readonly recalculate: boolean;
  /** `reset_recalculate`: the recalculation restarts from sector 0. */
  readonly resetRecalculate: boolean;
  /** `allow_discards`: discards pass through. */
  readonly allowDiscards: boolean;
  /** `journal_sectors:<n>`: the journal's size, 512-byte sectors. */
  readonly journalSectors: number | undefined;
  /** `interleave_sectors:<n>`: data sectors (512 bytes) between two runs of tags. */
  readonly interleaveSectors: number | undefined;
  /** `buffer_sectors:<n>`: a metadata buffer's size, 512-byte sectors. */
  readonly bufferSectors: number | undefined;
  /** `journal_watermark:<percent>`: journal fill, percent, at which it is flushed. */
  readonly journalWatermark: number | undefined;
  /** `commit_time:<ms>`: milliseconds between journal commits. */
  readonly commitTime: number | undefined;
  /** `sectors_per_bit:<n>`: 512-byte sectors per dirty-bitmap bit. */
  readonly sectorsPerBit: number | undefined;
  /** `bitmap_flush_interval:<ms>`: milliseconds between bitmap flushes. */
  readonly bitmapFlushInterval: number | undefined;
  /** `fix_padding`: the compact padding (taken at format time). */
  readonly fixPadding: boolean;
  /** `fix_hmac`: superblock salt and sector number in each MAC (taken at format time). */
  readonly fixHmac: boolean;
  /** `legacy_recalculate`: recalculation with a keyed hash allowed without `fix_hmac`. */
  readonly legacyRecalculate: boolean;
  /** `internal_hash:<algorithm>[:<key>]`: the kernel computes the tags; undefined when the layer above gives them. */
  readonly internalHash: IntegrityAlgorithm | undefined;
  /** `journal_crypt:<algorithm>[:<key>]`: the journal's cipher, or undefined. */
  readonly journalCrypt: IntegrityAlgorithm | undefined;
  /** `journal_mac:<algorithm>[:<key>]`: the journal's keyed hash, or undefined. */
  readonly journalMac: IntegrityAlgorithm | undefined;
}

/** The status of an integrity target: `<mismatches> <provided data sectors> <recalculate sector>`. */
export interface IntegrityStatus extends TargetStatusBase {
  readonly type: 'integrity';
  readonly known: true;
  /** `<mismatches>`: tag mismatches met since activation (a count; each failed a read or a recalculation with EILSEQ). */
  readonly mismatches: number;
  /** `<provided data sectors>`: 512-byte sectors of data the device provides (the most a table row over it can map). */
  readonly providedDataSectors: number;
  /** `<recalculate sector>`: the 512-byte sector the tags' recalculation has reached (the provided data sectors once it is done); null (`-`) when the device is not marked recalculating. */
  readonly recalculatingSector: number | null;
  /** Words after the known fields (a newer kernel's), kept as given. */
  readonly extra: readonly string[];
}

const KNOWN = [
  'device', 'offset', 'tagSize', 'mode', 'metaDevice', 'blockSize', 'recalculate', 'resetRecalculate', 'allowDiscards', 'journalSectors', 'interleaveSectors', 'bufferSectors',
  'journalWatermark', 'commitTime', 'sectorsPerBit', 'bitmapFlushInterval', 'fixPadding', 'fixHmac', 'legacyRecalculate', 'internalHash', 'journalCrypt', 'journalMac',
] as const;

/** The largest bitmap_flush_interval the kernel takes (it must fit in jiffies at HZ=1000), ms. */
const MAX_FLUSH_INTERVAL = U32_MAX - 1;

function algorithm(value: unknown, name: string): IntegrityAlgorithm | undefined {
  if (value === undefined) return undefined;
  const o: unknown = typeof value === 'string' ? { name: value } : value;
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw expected('an algorithm name or { name, key }', name, value);
  const a = builderOptions(o as { name: string; key?: string }, name, ['name', 'key']);
  if (typeof a.name !== 'string') throw expected('an algorithm name', `${name}.name`, a.name);
  // The kernel splits the option at its colons: a name cannot hold one.
  if (!/^[^\s:]+$/.test(a.name)) throw expectedRange('an algorithm name without whitespace or colons', `${name}.name`, a.name);
  let key: string | undefined;
  if (a.key !== undefined) {
    if (typeof a.key !== 'string') throw expectedSecret(TypeError, 'a key in hexadecimal', `${name}.key`, a.key);
    if (!/^(?:[0-9a-fA-F]{2})+$/.test(a.key)) throw expectedSecret(RangeError, 'a key of whole bytes in hexadecimal', `${name}.key`, a.key);
    key = a.key;
  }
  return freeze({ name: a.name, key });
}

function formatAlgorithm(option: string, a: IntegrityAlgorithm | undefined): string | undefined {
  if (a === undefined) return undefined;
  return a.key === undefined ? `${option}:${a.name}` : `${option}:${a.name}:${a.key}`;
}

/**
 * Builds an integrity target; the optional params in the order the kernel prints them back
 * (meta_device, block_size, recalculate, reset_recalculate, allow_discards, journal_sectors,
 * interleave_sectors, buffer_sectors, journal_watermark, commit_time, sectors_per_bit,
 * bitmap_flush_interval, fix_padding, fix_hmac, legacy_recalculate, internal_hash,
 * journal_crypt, journal_mac). Only the params given are written: the kernel prints the sizes
 * it chose besides (see `IntegrityTarget`), so a table that is to read back equal names them.
 * Throws TypeError/RangeError naming the field at fault.
 */
export function integrity(options: IntegrityOptions): IntegrityTarget {
  const o = builderOptions(options, 'integrity options', [...KNOWN]);
  const dev = device(o.device, 'integrity.device');
  const offset = sectors(o.offset, 'integrity.offset');
  const tagSize = o.tagSize === undefined || o.tagSize === null ? null : integer(o.tagSize, 'integrity.tagSize', 1, INTEGRITY_MAX_TAG_SIZE);
  const mode = choice(o.mode, 'integrity.mode', MODES);
  const metaDevice = o.metaDevice === undefined ? undefined : device(o.metaDevice, 'integrity.metaDevice');
  const blockSize = o.blockSize === undefined ? undefined : powerOfTwo(o.blockSize, 'integrity.blockSize', 512, 4096);
  const recalculate = flag(o.recalculate, 'integrity.recalculate');
  const resetRecalculate = flag(o.resetRecalculate, 'integrity.resetRecalculate');
  const allowDiscards = flag(o.allowDiscards, 'integrity.allowDiscards');
  const journalSectors = optionalInteger(o.journalSectors, 'integrity.journalSectors', 0, U32_MAX);
  const interleaveSectors = optionalInteger(o.interleaveSectors, 'integrity.interleaveSectors', 0, U32_MAX);
  const bufferSectors = optionalInteger(o.bufferSectors, 'integrity.bufferSectors', 0, U32_MAX);
  const journalWatermark = optionalInteger(o.journalWatermark, 'integrity.journalWatermark', 0, 100);
  const commitTime = optionalInteger(o.commitTime, 'integrity.commitTime', 0, U32_MAX);
  const sectorsPerBit = o.sectorsPerBit === undefined ? undefined : sectors(o.sectorsPerBit, 'integrity.sectorsPerBit');
  const bitmapFlushInterval = optionalInteger(o.bitmapFlushInterval, 'integrity.bitmapFlushInterval', 0, MAX_FLUSH_INTERVAL);
  const fixPadding = flag(o.fixPadding, 'integrity.fixPadding');
  const fixHmac = flag(o.fixHmac, 'integrity.fixHmac');
  const legacyRecalculate = flag(o.legacyRecalculate, 'integrity.legacyRecalculate');
  const internalHash = algorithm(o.internalHash, 'integrity.internalHash');
  const journalCrypt = algorithm(o.journalCrypt, 'integrity.journalCrypt');
  const journalMac = algorithm(o.journalMac, 'integrity.journalMac');
  // The kernel's rules ("Unknown tag size", "Bitmap mode can be only used with internal hash",
  // "Discard can be only used with internal hash", and inline mode's own).
  if (internalHash === undefined) {
    if (tagSize === null) throw expected('a tag size (no internalHash gives one)', 'integrity.tagSize', o.tagSize);
    if (mode === 'bitmap' || mode === 'inline') throw expected(`an internal hash (${mode} mode needs one)`, 'integrity.internalHash', undefined);
    if (allowDiscards) throw expected('an internal hash (allowDiscards needs one)', 'integrity.internalHash', undefined);
  }
  if (mode === 'inline') {
    if (metaDevice !== undefined) throw expectedRange('no value (inline mode has no meta device)', 'integrity.metaDevice', o.metaDevice);
    if (journalCrypt !== undefined) throw expectedRange('no value (inline mode has no journal)', 'integrity.journalCrypt', o.journalCrypt);
    if (journalMac !== undefined) throw expectedRange('no value (inline mode has no journal)', 'integrity.journalMac', o.journalMac);
    if (allowDiscards) throw expectedRange('false (inline mode takes no discards)', 'integrity.allowDiscards', o.allowDiscards);
  }
  const opt = (key: string, v: number | string | undefined): string[] => (v === undefined ? [] : [`${key}:${v}`]);
  const word = (key: string, on: boolean): string[] => (on ? [key] : []);
  const args: string[] = [
    ...opt('meta_device', metaDevice),
    ...opt('block_size', blockSize),
    ...word('recalculate', recalculate),
    ...word('reset_recalculate', resetRecalculate),
    ...word('allow_discards', allowDiscards),
    ...opt('journal_sectors', journalSectors),
    ...opt('interleave_sectors', interleaveSectors),
    ...opt('buffer_sectors', bufferSectors),
    ...opt('journal_watermark', journalWatermark),
    ...opt('commit_time', commitTime),
    ...opt('sectors_per_bit', sectorsPerBit),
    ...opt('bitmap_flush_interval', bitmapFlushInterval),
    ...word('fix_padding', fixPadding),
    ...word('fix_hmac', fixHmac),
    ...word('legacy_recalculate', legacyRecalculate),
    ...[formatAlgorithm('internal_hash', internalHash), formatAlgorithm('journal_crypt', journalCrypt), formatAlgorithm('journal_mac', journalMac)].filter((a): a is string => a !== undefined),
  ];
  const params = join([dev, offset, tagSize ?? '-', MODE_LETTERS[mode], args.length, ...args]);
  return typedTarget({
    type: 'integrity', device: dev, offset, tagSize, mode, metaDevice, blockSize, recalculate, resetRecalculate, allowDiscards, journalSectors, interleaveSectors, bufferSectors,
    journalWatermark, commitTime, sectorsPerBit, bitmapFlushInterval, fixPadding, fixHmac, legacyRecalculate, internalHash, journalCrypt, journalMac, params,
  });
}

/** The `key:value` options of a table, by their key, and the option field each fills. */
const NUMBER_OPTIONS: Readonly<Record<string, { field: 'blockSize' | 'journalSectors' | 'interleaveSectors' | 'bufferSectors' | 'journalWatermark' | 'commitTime' | 'sectorsPerBit' | 'bitmapFlushInterval'; max: number }>> = {
  block_size: { field: 'blockSize', max: 4096 },
  journal_sectors: { field: 'journalSectors', max: U32_MAX },
  interleave_sectors: { field: 'interleaveSectors', max: U32_MAX },
  buffer_sectors: { field: 'bufferSectors', max: U32_MAX },
  journal_watermark: { field: 'journalWatermark', max: 100 },
  commit_time: { field: 'commitTime', max: U32_MAX },
  sectors_per_bit: { field: 'sectorsPerBit', max: Number.MAX_SAFE_INTEGER },
  bitmap_flush_interval: { field: 'bitmapFlushInterval', max: MAX_FLUSH_INTERVAL },
};
const FLAG_OPTIONS: Readonly<Record<string, 'recalculate' | 'resetRecalculate' | 'allowDiscards' | 'fixPadding' | 'fixHmac' | 'legacyRecalculate'>> = {
  recalculate: 'recalculate',
  reset_recalculate: 'resetRecalculate',
  allow_discards: 'allowDiscards',
  fix_padding: 'fixPadding',
  fix_hmac: 'fixHmac',
  legacy_recalculate: 'legacyRecalculate',
};
const ALGORITHM_OPTIONS: Readonly<Record<string, 'internalHash' | 'journalCrypt' | 'journalMac'>> = { internal_hash: 'internalHash', journal_crypt: 'journalCrypt', journal_mac: 'journalMac' };

/**
 * Parses integrity parameters ('7:0 0 4 J 1 internal_hash:crc32c'), the optional params in any
 * order (the kernel prints them back in its own). Throws DmParseError naming the field; its
 * text has the algorithm keys zeroed, and no message quotes a key.
 */
export function parseIntegrity(params: string): IntegrityTarget {
  const at = new ArgReader(params, 'integrity', redactParams(params));
  const dev = at.device('dev');
  const offset = at.uint('offset');
  let tagSize: number | null = null;
  if (at.peek() === '-') at.word('tag size');
  else tagSize = at.uint('tag size', 1, INTEGRITY_MAX_TAG_SIZE);
  const letter = at.oneOf('mode', ['J', 'B', 'D', 'R', 'I'] as const);
  const o: IntegrityOptions = { device: dev, offset, tagSize, mode: LETTER_MODES[letter] };
  const words = at.group('opt params', 64);
  at.done();
  const seen = new Set<string>();
  for (const w of words) {
    const colon = w.indexOf(':');
    const key = colon < 0 ? w : w.slice(0, colon);
    const value = colon < 0 ? undefined : w.slice(colon + 1);
    if (seen.has(key)) throw at.fail(`${key} given twice`, key);
    seen.add(key);
    const num = NUMBER_OPTIONS[key];
    const fl = FLAG_OPTIONS[key];
    const alg = ALGORITHM_OPTIONS[key];
    if (num !== undefined && value !== undefined) {
      if (!/^\d+$/.test(value)) throw at.fail(`<${key}> is not an unsigned integer: ${JSON.stringify(value)}`, key);
      const n = Number(value);
      if (!Number.isSafeInteger(n) || n > num.max) throw at.fail(`<${key}> is ${value}, outside 0..${num.max}`, key);
      o[num.field] = n;
    } else if (fl !== undefined && value === undefined) {
      o[fl] = true;
    } else if (alg !== undefined && value !== undefined) {
      const c = value.indexOf(':');
      const name = c < 0 ? value : value.slice(0, c);
      const k = c < 0 ? undefined : value.slice(c + 1);
      if (name === '') throw at.fail(`<${key}> names no algorithm`, key);
      if (k !== undefined && !/^(?:[0-9a-fA-F]{2})+$/.test(k)) throw at.fail(`<${key}> key is not whole bytes in hexadecimal (${k.length} characters)`, key);
      o[alg] = k === undefined ? { name } : { name, key: k };
    } else if (key === 'meta_device' && value !== undefined) {
      const a = new ArgReader(value, 'integrity meta_device');
      o.metaDevice = a.device('meta_device');
    } else {
      // Only its name: what follows a colon may be a key (a misspelt internal_hash:alg:key).
      throw at.fail(`unknown opt param ${JSON.stringify(key)}${value === undefined ? '' : ' (with a value)'}`, 'opt params');
    }
  }
  try {
    return integrity(o);
  } catch (e) {
    // Well-formed but against the kernel's rules (block size not a power of two, bitmap mode
    // without an internal hash): name the rule.
    throw at.fail(e instanceof Error ? e.message : String(e), 'params');
  }
}

/** Parses an integrity target's status ('0 64664 -'). Throws DmParseError naming the field. */
export function parseIntegrityStatus(text: string): IntegrityStatus {
  const at = new ArgReader(text, 'integrity status');
  const mismatches = at.uint('mismatches');
  const providedDataSectors = at.uint('provided data sectors');
  let recalculatingSector: number | null = null;
  if (at.peek() === '-') at.word('recalculating sector');
  else recalculatingSector = at.uint('recalculating sector');
  return freeze({ type: 'integrity', raw: text, known: true, mismatches, providedDataSectors, recalculatingSector, extra: at.rest() });
}

/** The integrity target type. */
export const integrityModule: TargetModule<IntegrityTarget, IntegrityStatus> = {
  type: 'integrity',
  parse: parseIntegrity,
  parseStatus: parseIntegrityStatus,
  redact: redactParams,
  // Also a raw row's misspelt keyed word: the kernel refuses it, but its copy is wiped.
  holdsSecret: (params) => params.split(' ').some((w) => keyShaped(w) !== null),
};

/** `internal_hash:`, `journal_crypt:` or `journal_mac:` with an algorithm and a key. */
const KEYED_WORD = /^(internal_hash|journal_crypt|journal_mac):([^:]+):(.+)$/;

/**
 * An integrity row's params with every algorithm key (`internal_hash:<alg>:<key>`,
 * `journal_crypt:…`, `journal_mac:…`) replaced by zeroes of its length, as `dmsetup table`
 * shows them without `--showkeys`: for logs and display. Other words are kept as they are.
 */
export function integrityMaskedParams(params: string): string {
  return zeroKeys(params, (w) => KEYED_WORD.exec(w));
}

/** `params` with what follows the second colon of each word `keyed` matches (`<name>:<algorithm>:<key>`) zeroed. */
function zeroKeys(params: string, keyed: (word: string) => RegExpExecArray | null): string {
  return params.split(' ').map((w) => {
    const m = keyed(w);
    return m === null ? w : `${m[1] ?? ''}:${m[2] ?? ''}:${'0'.repeat((m[3] ?? '').length)}`;
  }).join(' ');
}

/**
 * The params as errors and `Table#redacted` show them: as integrityMaskedParams, and also any
 * other word of the `<name>:<algorithm>:<key>` shape but meta_device's (a misspelt
 * internal_hash, which the parser refuses) with what follows its second colon zeroed.
 */
function redactParams(params: string): string {
  return zeroKeys(params, keyShaped);
}

/** A word of the `<name>:<algorithm>:<key>` shape (but meta_device's, whose device may be 'major:minor'). */
function keyShaped(word: string): RegExpExecArray | null {
  const m = /^([^:]+):([^:]*):(.+)$/.exec(word);
  return m === null || m[1] === 'meta_device' ? null : m;
}

/** Whether an integrity row's params carry an algorithm key (the table then goes with DM_SECURE_DATA). */
export function integrityHoldsKey(params: string): boolean {
  return params.split(' ').some((w) => KEYED_WORD.test(w));
}
