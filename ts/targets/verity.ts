/**
 * dm-verity: a read-only device whose every data block is checked, on read, against a hash
 * tree whose root hash is trusted (given in the table). Pure data: nothing here touches the
 * kernel.
 */
import type { DeviceRef } from '../dev';
import { expected, expectedRange } from '../validate';
import { ArgReader, builderOptions, choice, device, flag, freeze, integer, join, powerOfTwo, sectors, typedTarget, word } from './args';
import type { Target, TargetModule, TargetStatusBase } from './types';

/**
 * What a corrupted block does: `ignore` (`ignore_corruption`: logged, the read succeeds),
 * `restart` (`restart_on_corruption`: the system restarts), `panic` (`panic_on_corruption`:
 * the kernel panics). Unset, the read fails with EIO (the kernel's default).
 */
export type VerityCorruptionMode = 'ignore' | 'restart' | 'panic';

/**
 * What an I/O error does (Linux 6.12 and later): `restart` (`restart_on_error`) or `panic`
 * (`panic_on_error`). Unset, the read fails with EIO.
 */
export type VerityErrorMode = 'restart' | 'panic';

/** Forward error correction from Reed-Solomon parity data (`use_fec_from_device` and its three params). */
export interface VerityFec {
  /** `use_fec_from_device <fec_dev>`: the device holding the parity data ('major:minor' or a /dev path). */
  readonly device: string;
  /** `fec_blocks <num>`: a count of blocks of `<data_block_size>` bytes covered by FEC (the data, the hash tree and any metadata after it). */
  readonly blocks: number;
  /** `fec_start <offset>`: the parity data's offset on its device, in blocks of `<data_block_size>` bytes. */
  readonly start: number;
  /** `fec_roots <num>`: parity bytes per 255-byte Reed-Solomon codeword, 2 to 24. */
  readonly roots: number;
}

/** The FEC option of a verity target. */
export interface VerityFecOptions {
  /** `use_fec_from_device <fec_dev>`: the device holding the parity data. */
  device: DeviceRef;
  /** `fec_blocks <num>`: blocks of `<data_block_size>` bytes covered by FEC: at least the data blocks and the hash tree's. */
  blocks: number;
  /** `fec_start <offset>`: the parity data's offset, in blocks of `<data_block_size>` bytes. */
  start: number;
  /** `fec_roots <num>`: parity bytes per 255-byte codeword, 2 to 24 (2 is the usual choice). */
  roots: number;
}

/** Options of a verity target. The table must be loaded read-only (`create(name, { table, readOnly: true })`). */
export interface VerityOptions {
  /** `<version>`: the hash format, 1 (the current one, salt first, the default) or 0 (Chromium OS's original, salt last). */
  version?: 0 | 1;
  /** `<dev>`: the device holding the data being checked. */
  dataDevice: DeviceRef;
  /** `<hash_dev>`: the device holding the hash tree (may be the data device, with the tree after the data). */
  hashDevice: DeviceRef;
  /** `<data_block_size>`: bytes, a power of two from the device's logical block size up to the page size (4096 on x86-64). */
  dataBlockSize: number;
  /** `<hash_block_size>`: bytes, a power of two, likewise. */
  hashBlockSize: number;
  /** `<num_data_blocks>`: a count of data blocks checked (the device is no longer than these). */
  dataBlocks: number;
  /** `<hash_start_block>`: the hash tree's root block on the hash device, in hash blocks (1 after veritysetup's superblock). */
  hashStartBlock: number;
  /** `<algorithm>`: the hash algorithm of the crypto API ('sha256'). */
  algorithm: string;
  /** `<digest>`: the root hash in hexadecimal (the kernel prints it in lower case). */
  digest: string;
  /** `<salt>`: the salt in hexadecimal; null or unset for none (`-`). */
  salt?: string | null;
  /** What a corrupted block does (see `VerityCorruptionMode`); unset, the read fails with EIO. */
  onCorruption?: VerityCorruptionMode;
  /** What an I/O error does (see `VerityErrorMode`; Linux 6.12+); unset, the read fails with EIO. */
  onError?: VerityErrorMode;
  /** `ignore_zero_blocks`: blocks whose hash is the zero block's are not read, and read as zeroes. */
  ignoreZeroBlocks?: boolean;
  /** `check_at_most_once`: check each data block the first time it is read only (less secure, cheaper). */
  checkAtMostOnce?: boolean;
  /** `try_verify_in_tasklet`: check blocks whose hashes are cached in softirq context (Linux 6.0+). */
  tryVerifyInTasklet?: boolean;
  /** `use_fec_from_device` and its three params: forward error correction (needs CONFIG_DM_VERITY_FEC; dataBlockSize must equal hashBlockSize). */
  fec?: VerityFecOptions;
  /** `root_hash_sig_key_desc <key_desc>`: the description of a user key holding a PKCS#7 signature of the root hash (needs CONFIG_DM_VERITY_VERIFY_ROOTHASH_SIG). */
  rootHashSigKeyDesc?: string;
}

/**
 * `verity <version> <dev> <hash_dev> <data_block_size> <hash_block_size> <num_data_blocks>
 * <hash_start_block> <algorithm> <digest> <salt> [<#opt_params> <opt_params>]`: a read-only
 * device checked against a hash tree.
 */
export interface VerityTarget extends Target {
  readonly type: 'verity';
  /** `<version>`: the hash format, 0 or 1. */
  readonly version: 0 | 1;
  /** `<dev>`, 'major:minor' or a /dev path: the data checked. */
  readonly dataDevice: string;
  /** `<hash_dev>`, 'major:minor' or a /dev path: the hash tree. */
  readonly hashDevice: string;
  /** `<data_block_size>`: bytes. */
  readonly dataBlockSize: number;
  /** `<hash_block_size>`: bytes. */
  readonly hashBlockSize: number;
  /** `<num_data_blocks>`: a count of data blocks. */
  readonly dataBlocks: number;
  /** `<hash_start_block>`: the root block's offset on the hash device, in hash blocks. */
  readonly hashStartBlock: number;
  /** `<algorithm>`: the crypto API's hash name. */
  readonly algorithm: string;
  /** `<digest>`: the root hash, lower-case hexadecimal. */
  readonly digest: string;
  /** `<salt>`: lower-case hexadecimal; null for none (`-`). */
  readonly salt: string | null;
  /** Opt param `ignore_corruption`, `restart_on_corruption` or `panic_on_corruption`; undefined for the default (EIO). */
  readonly onCorruption: VerityCorruptionMode | undefined;
  /** Opt param `restart_on_error` or `panic_on_error`; undefined for the default (EIO). */
  readonly onError: VerityErrorMode | undefined;
  /** Opt param `ignore_zero_blocks`: zero-hash blocks are not read (0/1 flag). */
  readonly ignoreZeroBlocks: boolean;
  /** Opt param `check_at_most_once`: each block is checked on its first read only. */
  readonly checkAtMostOnce: boolean;
  /** Opt param `try_verify_in_tasklet`: cached-hash checks run in softirq context. */
  readonly tryVerifyInTasklet: boolean;
  /** `use_fec_from_device` and its params: forward error correction, or undefined for none. */
  readonly fec: VerityFec | undefined;
  /** Opt param `root_hash_sig_key_desc <key_desc>`: the user key holding the root hash's signature, or undefined. */
  readonly rootHashSigKeyDesc: string | undefined;
}

/** The status of a verity target: `<V|C> [<#fec corrected>|-]`. */
export interface VerityStatus extends TargetStatusBase {
  readonly type: 'verity';
  readonly known: true;
  /** The letter: true once a check failed (`C`, corruption found); false while every check so far was valid (`V`). */
  readonly corrupted: boolean;
  /**
   * The second word: a count of blocks corrected by forward error correction (newer kernels print
   * it); null (`-`) when FEC is not enabled; undefined from a kernel that prints only the letter
   * (Linux 6.1).
   */
  readonly fecCorrected: number | null | undefined;
  /** Words after the known fields (a newer kernel's), kept as given. */
  readonly extra: readonly string[];
}

const KNOWN = [
  'version', 'dataDevice', 'hashDevice', 'dataBlockSize', 'hashBlockSize', 'dataBlocks', 'hashStartBlock', 'algorithm', 'digest', 'salt',
  'onCorruption', 'onError', 'ignoreZeroBlocks', 'checkAtMostOnce', 'tryVerifyInTasklet', 'fec', 'rootHashSigKeyDesc',
] as const;

/** The largest block the builder takes, bytes (the largest page size, arm64's 64 KiB; x86-64's kernel takes at most 4096). */
const MAX_BLOCK = 65536;

function hex(value: unknown, name: string): string {
  if (typeof value !== 'string') throw expected('a string of hexadecimal digits', name, value);
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(value)) throw expectedRange('whole bytes in hexadecimal', name, value);
  return value.toLowerCase();
}

const CORRUPTION_WORDS: Readonly<Record<VerityCorruptionMode, string>> = { ignore: 'ignore_corruption', restart: 'restart_on_corruption', panic: 'panic_on_corruption' };
const ERROR_WORDS: Readonly<Record<VerityErrorMode, string>> = { restart: 'restart_on_error', panic: 'panic_on_error' };

/**
 * Builds a verity target; the optional params in the order the kernel prints them back (the
 * corruption mode, the error mode, ignore_zero_blocks, check_at_most_once,
 * try_verify_in_tasklet, use_fec_from_device/fec_blocks/fec_start/fec_roots,
 * root_hash_sig_key_desc). Throws TypeError/RangeError naming the field at fault.
 */
export function verity(options: VerityOptions): VerityTarget {
  const o = builderOptions(options, 'verity options', [...KNOWN]);
  const version = o.version === undefined ? 1 : choice(o.version, 'verity.version', [0, 1] as const);
  const dataDevice = device(o.dataDevice, 'verity.dataDevice');
  const hashDevice = device(o.hashDevice, 'verity.hashDevice');
  const dataBlockSize = powerOfTwo(o.dataBlockSize, 'verity.dataBlockSize', 512, MAX_BLOCK);
  const hashBlockSize = powerOfTwo(o.hashBlockSize, 'verity.hashBlockSize', 512, MAX_BLOCK);
  const dataBlocks = sectors(o.dataBlocks, 'verity.dataBlocks');
  const hashStartBlock = sectors(o.hashStartBlock, 'verity.hashStartBlock');
  const algorithm = word(o.algorithm, 'verity.algorithm');
  const digest = hex(o.digest, 'verity.digest');
  const salt = o.salt === undefined || o.salt === null ? null : hex(o.salt, 'verity.salt');
  const onCorruption = o.onCorruption === undefined ? undefined : choice(o.onCorruption, 'verity.onCorruption', ['ignore', 'restart', 'panic'] as const);
  const onError = o.onError === undefined ? undefined : choice(o.onError, 'verity.onError', ['restart', 'panic'] as const);
  const ignoreZeroBlocks = flag(o.ignoreZeroBlocks, 'verity.ignoreZeroBlocks');
  const checkAtMostOnce = flag(o.checkAtMostOnce, 'verity.checkAtMostOnce');
  const tryVerifyInTasklet = flag(o.tryVerifyInTasklet, 'verity.tryVerifyInTasklet');
  let fec: VerityFec | undefined;
  if (o.fec !== undefined) {
    const f = builderOptions(o.fec, 'verity.fec', ['device', 'blocks', 'start', 'roots']);
    fec = { device: device(f.device, 'verity.fec.device'), blocks: sectors(f.blocks, 'verity.fec.blocks'), start: sectors(f.start, 'verity.fec.start'), roots: integer(f.roots, 'verity.fec.roots', 2, 24) };
    // The kernel's rule: FEC works on data blocks, so hash blocks must be the same size.
    if (hashBlockSize !== dataBlockSize) throw expectedRange(`a hash block size equal to dataBlockSize (${dataBlockSize}) with fec`, 'verity.hashBlockSize', hashBlockSize);
  }
  const rootHashSigKeyDesc = o.rootHashSigKeyDesc === undefined ? undefined : word(o.rootHashSigKeyDesc, 'verity.rootHashSigKeyDesc');
  const args: (string | number)[] = [
    ...(onCorruption === undefined ? [] : [CORRUPTION_WORDS[onCorruption]]),
    ...(onError === undefined ? [] : [ERROR_WORDS[onError]]),
    ...(ignoreZeroBlocks ? ['ignore_zero_blocks'] : []),
    ...(checkAtMostOnce ? ['check_at_most_once'] : []),
    ...(tryVerifyInTasklet ? ['try_verify_in_tasklet'] : []),
    ...(fec === undefined ? [] : ['use_fec_from_device', fec.device, 'fec_blocks', fec.blocks, 'fec_start', fec.start, 'fec_roots', fec.roots]),
    ...(rootHashSigKeyDesc === undefined ? [] : ['root_hash_sig_key_desc', rootHashSigKeyDesc]),
  ];
  // Without optional params the kernel prints no count at all.
  const params = join([version, dataDevice, hashDevice, dataBlockSize, hashBlockSize, dataBlocks, hashStartBlock, algorithm, digest, salt ?? '-', ...(args.length > 0 ? [args.length, ...args] : [])]);
  return typedTarget({
    type: 'verity', version, dataDevice, hashDevice, dataBlockSize, hashBlockSize, dataBlocks, hashStartBlock, algorithm, digest, salt,
    onCorruption, onError, ignoreZeroBlocks, checkAtMostOnce, tryVerifyInTasklet, fec: fec === undefined ? undefined : freeze(fec), rootHashSigKeyDesc, params,
  });
}

/**
 * Parses verity parameters ('1 7:0 7:1 4096 4096 2048 1 sha256 <digest> <salt> 1
 * ignore_corruption'), the optional params in any order and case (the kernel prints them back
 * in its own). Throws DmParseError naming the field.
 */
export function parseVerity(params: string): VerityTarget {
  const at = new ArgReader(params, 'verity');
  const version = at.oneOf('version', ['0', '1'] as const) === '0' ? 0 : 1;
  const dataDevice = at.device('dev');
  const hashDevice = at.device('hash_dev');
  const dataBlockSize = at.uint('data_block_size', 1, MAX_BLOCK);
  const hashBlockSize = at.uint('hash_block_size', 1, MAX_BLOCK);
  const dataBlocks = at.uint('num_data_blocks');
  const hashStartBlock = at.uint('hash_start_block');
  const algorithm = at.word('algorithm');
  const digest = at.word('digest');
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(digest)) throw at.fail('<digest> is not whole bytes in hexadecimal', 'digest');
  const saltWord = at.word('salt');
  if (saltWord !== '-' && !/^(?:[0-9a-fA-F]{2})+$/.test(saltWord)) throw at.fail('<salt> is neither - nor whole bytes in hexadecimal', 'salt');
  const o: VerityOptions = { version, dataDevice, hashDevice, dataBlockSize, hashBlockSize, dataBlocks, hashStartBlock, algorithm, digest, salt: saltWord === '-' ? null : saltWord };
  const words = at.remaining > 0 ? at.group('opt_params', 64) : [];
  at.done();
  const a = new ArgReader(words.join(' '), 'verity opt_params');
  const seen = new Set<string>();
  const again = (k: string): void => {
    if (seen.has(k)) throw at.fail(`${k} given twice`, k);
    seen.add(k);
  };
  const fec: { device?: string; blocks?: number; start?: number; roots?: number } = {};
  while (a.remaining > 0) {
    const key = a.word('opt_param').toLowerCase();
    switch (key) {
      case 'ignore_corruption':
      case 'restart_on_corruption':
      case 'panic_on_corruption':
        // The kernel refuses a second corruption mode ("Conflicting error handling parameters").
        again('corruption mode');
        o.onCorruption = key === 'ignore_corruption' ? 'ignore' : key === 'restart_on_corruption' ? 'restart' : 'panic';
        break;
      case 'restart_on_error':
      case 'panic_on_error':
        again('error mode');
        o.onError = key === 'restart_on_error' ? 'restart' : 'panic';
        break;
      case 'ignore_zero_blocks':
        again(key);
        o.ignoreZeroBlocks = true;
        break;
      case 'check_at_most_once':
        again(key);
        o.checkAtMostOnce = true;
        break;
      case 'try_verify_in_tasklet':
        again(key);
        o.tryVerifyInTasklet = true;
        break;
      case 'use_fec_from_device':
        again(key);
        fec.device = a.device(key);
        break;
      case 'fec_blocks':
        again(key);
        fec.blocks = a.uint(key);
        break;
      case 'fec_start':
        again(key);
        fec.start = a.uint(key);
        break;
      case 'fec_roots':
        again(key);
        fec.roots = a.uint(key, 2, 24);
        break;
      case 'root_hash_sig_key_desc':
        again(key);
        o.rootHashSigKeyDesc = a.word(key);
        break;
      default:
        throw at.fail(`unknown opt_param ${JSON.stringify(key)}`, 'opt_params');
    }
  }
  if (Object.keys(fec).length > 0) {
    if (fec.device === undefined || fec.blocks === undefined || fec.start === undefined || fec.roots === undefined) {
      throw at.fail('FEC needs use_fec_from_device, fec_blocks, fec_start and fec_roots together', 'opt_params');
    }
    o.fec = { device: fec.device, blocks: fec.blocks, start: fec.start, roots: fec.roots };
  }
  try {
    return verity(o);
  } catch (e) {
    // Well-formed but against the kernel's rules (a block size not a power of two, FEC with
    // unequal block sizes): name the rule.
    throw at.fail(e instanceof Error ? e.message : String(e), 'params');
  }
}

/** Parses a verity target's status ('V', 'C', or on newer kernels 'V -'). Throws DmParseError naming the field. */
export function parseVerityStatus(text: string): VerityStatus {
  const at = new ArgReader(text, 'verity status');
  const corrupted = at.oneOf('state', ['V', 'C'] as const) === 'C';
  let fecCorrected: number | null | undefined;
  if (at.peek() === '-') {
    at.word('fec corrected');
    fecCorrected = null;
  } else if (at.remaining > 0) {
    fecCorrected = at.uint('fec corrected');
  }
  return freeze({ type: 'verity', raw: text, known: true, corrupted, fecCorrected, extra: at.rest() });
}

/** The verity target type. */
export const verityModule: TargetModule<VerityTarget, VerityStatus> = {
  type: 'verity',
  parse: parseVerity,
  parseStatus: parseVerityStatus,
  // The kernel's rule ("Data device is too small"): the row maps no more than the data blocks.
  checkLength(target, length, name) {
    const t = parseVerity(target.params);
    const most = t.dataBlocks * (t.dataBlockSize / 512);
    if (length > most) throw expectedRange(`a length of at most ${most} sectors (${t.dataBlocks} data blocks of ${t.dataBlockSize} bytes)`, name, length);
  },
};
