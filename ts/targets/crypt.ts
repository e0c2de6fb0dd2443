/**
 * dm-crypt: transparent encryption of a block device, sector by sector, with a cipher of the
 * kernel's crypto API and a key given in the table (hex) or held in the kernel keyring. Pure
 * data: nothing here touches the kernel.
 *
 * Keys are secrets. The kernel prints a hex key back in the table (`dm.table()` gets it as the
 * kernel gives it; only `dmsetup table` without `--showkeys` hides it), so a typed crypt
 * target carries its key in clear in `params` and in `key.hex`, and so does the `Table` that
 * holds it (its text, its rows' `params`, and `JSON.stringify` of either). What this module
 * does about it: `util.inspect` (console.log) of a typed crypt target shows the key zeroed;
 * the builders' and parsers' errors never quote a key; `maskCryptKeys` formats a table the
 * way `dmsetup table` shows it, hex keys zeroed. Tables and messages holding a key should be
 * sent with `{ secure: true }` (DM_SECURE_DATA: the kernel and the library wipe their copies).
 */
import type { DeviceRef } from '../dev';
import { DmParseError } from '../errors';
import { expected, expectedRange, expectedSecret } from '../validate';
import { ArgReader, builderOptions, choice, device, flag, freeze, integer, join, powerOfTwo, sectors, typedTarget, word } from './args';
import type { Target, TargetModule, TargetStatusBase } from './types';

/** Largest u64: the bound of `iv_offset`. */
const U64_MAX = 0xffffffffffffffffn;
/** The kernel's largest integrity tag (MAX_TAG_SIZE), bytes. */
const MAX_TAG_SIZE = 480;
/** The kernel takes at most 8 optional params. */
const MAX_OPT_PARAMS = 8;

/**
 * An IV generator (the `ivmode` of a cipher spec), as dm-crypt names them: `plain` (the
 * sector number, 32-bit little-endian), `plain64` (64-bit little-endian; the usual choice),
 * `plain64be` (64-bit big-endian), `essiv` (the sector number encrypted with a hash of the
 * key; its `ivopts` names the hash, `essiv:sha256`), `benbi` (the big-endian narrow-block
 * count, for LRW), `null` (always zero; obsolete), `lmk` (loop-AES compatible, 64 keys),
 * `tcw` (TrueCrypt before 4.1 compatible), `random` (random IVs kept in integrity metadata),
 * `eboiv` (encrypted byte offset, BitLocker CBC), `elephant` (BitLocker's diffuser).
 */
export type CryptIvMode = 'plain' | 'plain64' | 'plain64be' | 'essiv' | 'benbi' | 'null' | 'lmk' | 'tcw' | 'random' | 'eboiv' | 'elephant';

/** The kernel keyring key types dm-crypt reads a key from (`encrypted` and `trusted` need kernel support). */
export type CryptKeyringType = 'logon' | 'user' | 'encrypted' | 'trusted';

/**
 * A crypt optional parameter's name: `allow_discards` (pass discards through: they reveal which
 * blocks are unused), `same_cpu_crypt` (encrypt on the CPU that submitted the I/O),
 * `submit_from_crypt_cpus` (write from the encryption threads, not a single writer thread),
 * `no_read_workqueue` / `no_write_workqueue` (process reads / writes synchronously instead of
 * in the crypt workqueue), `iv_large_sectors` (IVs count `sector_size` sectors, not 512-byte
 * ones); `integrity` and `sector_size` carry values and are fields of their own.
 */
export type CryptFlag = 'allow_discards' | 'same_cpu_crypt' | 'submit_from_crypt_cpus' | 'no_read_workqueue' | 'no_write_workqueue' | 'iv_large_sectors';

const IV_MODES: readonly CryptIvMode[] = ['plain', 'plain64', 'plain64be', 'essiv', 'benbi', 'null', 'lmk', 'tcw', 'random', 'eboiv', 'elephant'];
const KEYRING_TYPES: readonly CryptKeyringType[] = ['logon', 'user', 'encrypted', 'trusted'];
const FLAGS_BEFORE: readonly CryptFlag[] = ['allow_discards', 'same_cpu_crypt', 'submit_from_crypt_cpus', 'no_read_workqueue', 'no_write_workqueue'];
const FLAGS: readonly CryptFlag[] = [...FLAGS_BEFORE, 'iv_large_sectors'];

/** A cipher spec, read the way dm-crypt reads it. */
export interface CryptCipher {
  /** `<cipher>`: the spec exactly as the table gives it (the kernel prints it back verbatim). */
  readonly spec: string;
  /** `legacy` (`cipher[:keycount]-chainmode-ivmode[:ivopts]`) or `capi` (`capi:<crypto API spec>-ivmode[:ivopts]`). */
  readonly form: 'legacy' | 'capi';
  /** Legacy form's `cipher`: the block cipher ('aes'); null in the capi form. */
  readonly cipher: string | null;
  /** Legacy form's `chainmode`: the chaining mode in effect ('xts'; `cbc` for a spec of the cipher alone); null in the capi form. */
  readonly chainMode: string | null;
  /** The crypto API algorithm the kernel allocates, before ESSIV wraps it ('xts(aes)', 'authenc(hmac(sha256),xts(aes))'). */
  readonly api: string;
  /** Cipher instances, each with its own slice of the key: the legacy `:keycount` (a power of two, default 1); 64 for capi with `lmk`. */
  readonly keyCount: number;
  /** `ivmode`: the IV generator in effect ('plain64'), or null for none (an ECB or IV-less cipher). `plain` for a spec of the cipher alone. */
  readonly ivMode: string | null;
  /** `ivopts`: the IV generator's options ('sha256' for essiv), or null. */
  readonly ivOptions: string | null;
}

/** Options of a legacy cipher spec, `cipher[:keycount]-chainmode-ivmode[:ivopts]`. */
export interface CryptLegacyCipherOptions {
  /** `cipher`: the block cipher: 'aes', 'twofish', 'serpent', 'cipher_null'. */
  cipher: string;
  /** `:keycount`: a count of cipher instances (a power of two; default 1), the key split evenly among them. */
  keyCount?: number;
  /** `chainmode`: the chaining mode: 'xts', 'cbc', 'ecb', 'lrw'. */
  chainMode: string;
  /** `ivmode`: the IV generator; required unless the chaining mode is `ecb`. */
  ivMode?: CryptIvMode;
  /** `:ivopts`: the IV generator's options: the hash of `essiv` ('sha256'). */
  ivOptions?: string;
}

/** Options of a crypto API cipher spec, `capi:<spec>-ivmode[:ivopts]`. */
export interface CryptCapiCipherOptions {
  /** `<spec>` after `capi:`: the crypto API spec: 'xts(aes)', 'cbc(aes)', 'authenc(hmac(sha256),xts(aes))'. */
  capi: string;
  /** `ivmode`: the IV generator. */
  ivMode?: CryptIvMode;
  /** `:ivopts`: the IV generator's options: the hash of `essiv` ('sha256'). */
  ivOptions?: string;
}

/**
 * The key of a crypt target. The kernel prints `hex` keys back in the table; after `key wipe`
 * a table shows a hex key of zeroes of the key's size.
 */
export type CryptKey =
  | {
      /** `<key>` as hex digits in the table: two per byte. */
      readonly kind: 'hex';
      /** Key size, bytes (half the hex digits). */
      readonly keySize: number;
      /** The key as lowercase hex (as the kernel prints it). A secret. */
      readonly hex: string;
    }
  | {
      /** `-`: no key (a cipher that takes none, `cipher_null-ecb`). */
      readonly kind: 'none';
      /** Always 0 bytes. */
      readonly keySize: 0;
    }
  | {
      /** `:<key_size>:<key_type>:<key_description>`: a key of the kernel keyring, looked up at table load and `key set`. */
      readonly kind: 'keyring';
      /** `<key_size>`: key size, bytes (the keyring key's payload must be exactly this long). */
      readonly keySize: number;
      /** `<key_type>`: the keyring key type. */
      readonly keyType: CryptKeyringType;
      /** The key's description ('cryptsetup:<uuid>-d0'); a `logon` key's has a `service:` prefix. */
      readonly description: string;
    };

/** A key of the kernel keyring, for a table or `key set`. */
export interface CryptKeyringKeyOptions {
  /** `<key_size>`: key size, bytes (at least 1). */
  keySize: number;
  /** `<key_type>`: the keyring key type. */
  keyType: CryptKeyringType;
  /** `<key_description>`: the key's description: no whitespace; a `logon` key's has a `service:` prefix. */
  description: string;
}

/**
 * A key given to a builder or to `key set`: hex text (either case; `'-'` for none), the key
 * bytes, `null` for none, a keyring key, or a typed `CryptKey` (a parsed target's `key`).
 */
export type CryptKeyInput = string | Uint8Array | null | CryptKeyringKeyOptions | CryptKey;

/** Integrity metadata kept per sector on a device with an integrity profile (dm-integrity below). */
export interface CryptIntegrity {
  /** `integrity:<bytes>:…`: bytes of metadata per encryption sector (tag and IV), 1 to 480. */
  readonly tagSize: number;
  /** `integrity:…:<type>`: `aead`: an authenticated cipher (AEAD or authenc) writes its tag there; `none`: only the IV of `random` is kept. */
  readonly type: 'aead' | 'none';
}

/** Options of a crypt target. */
export interface CryptOptions {
  /** `<cipher>`: a spec ('aes-xts-plain64', 'capi:cbc(aes)-essiv:sha256') or its parts. */
  cipher: string | CryptLegacyCipherOptions | CryptCapiCipherOptions;
  /** `<key>`. Its size (bytes) is checked against the cipher when the cipher's key sizes are known (aes-xts: 32, 48 or 64 bytes). */
  key: CryptKeyInput;
  /** `<iv_offset>`: a count of 512-byte sectors added to the sector number when making IVs (default 0); a multiple of sectorSize / 512. */
  ivOffset?: number | bigint;
  /** `<device path>`: the encrypted device: 'major:minor', a /dev path, or { major, minor }. */
  device: DeviceRef;
  /** `<offset>`: the sector of `device` where the encrypted data starts (512-byte sectors); a multiple of sectorSize / 512. */
  offset: number;
  /** `allow_discards`: pass discards to the device (off by default: they reveal which blocks are free). */
  allowDiscards?: boolean;
  /** `same_cpu_crypt`: encrypt on the CPU that submitted the I/O (default: spread over CPUs). */
  sameCpuCrypt?: boolean;
  /** `submit_from_crypt_cpus`: submit writes from the encryption threads (default: one writer thread sorts them). */
  submitFromCryptCpus?: boolean;
  /** `no_read_workqueue`: decrypt reads synchronously, without the crypt workqueue. */
  noReadWorkqueue?: boolean;
  /** `no_write_workqueue`: encrypt writes synchronously, without the crypt workqueue. */
  noWriteWorkqueue?: boolean;
  /** `integrity:<bytes>:<type>`: keep integrity metadata (needs a device with an integrity profile). */
  integrity?: {
    /** `<bytes>`: bytes of metadata per encryption sector (tag and IV), 1 to 480. */
    tagSize: number;
    /** `<type>`: `aead` for an authenticated cipher's tag, `none` for only the IV of `random`. */
    type: 'aead' | 'none';
  };
  /** `sector_size:<bytes>`: the encryption sector, bytes: a power of two from 512 (the default) to 4096. */
  sectorSize?: number;
  /** `iv_large_sectors`: IVs count sectors of sectorSize, not 512-byte sectors (cryptsetup's choice for sectorSize > 512). */
  ivLargeSectors?: boolean;
}

/**
 * `crypt <cipher> <key> <iv_offset> <device path> <offset> [<#opt_params> <opt_params>]`: the
 * device, encrypted. `params` holds the key in clear (see the module's note on secrets).
 */
export interface CryptTarget extends Target {
  readonly type: 'crypt';
  /** `<cipher>`: the cipher spec and its parts. */
  readonly cipher: CryptCipher;
  /** `<key>`: hex, none (`-`), or a keyring key (`:<key_size>:<key_type>:<key_description>`). */
  readonly key: CryptKey;
  /** `<iv_offset>`: 512-byte sectors added to the sector number when making IVs (a u64). */
  readonly ivOffset: bigint;
  /** `<device path>`, 'major:minor' or a /dev path: the device holding the ciphertext. */
  readonly device: string;
  /** `<offset>`: the start sector on `device` (512-byte sectors). */
  readonly offset: number;
  /** Opt param `allow_discards`: discards pass through to the device (0/1 flag). */
  readonly allowDiscards: boolean;
  /** Opt param `same_cpu_crypt`: encryption runs on the CPU that submitted the I/O. */
  readonly sameCpuCrypt: boolean;
  /** Opt param `submit_from_crypt_cpus`: writes are submitted from the encryption threads. */
  readonly submitFromCryptCpus: boolean;
  /** Opt param `no_read_workqueue`: reads are decrypted without the crypt workqueue. */
  readonly noReadWorkqueue: boolean;
  /** Opt param `no_write_workqueue`: writes are encrypted without the crypt workqueue. */
  readonly noWriteWorkqueue: boolean;
  /** Opt param `integrity:<bytes>:<type>`, or null for none. */
  readonly integrity: CryptIntegrity | null;
  /** Opt param `sector_size:<bytes>`: the encryption sector, bytes (512 when the table gives none). */
  readonly sectorSize: number;
  /** Opt param `iv_large_sectors`: IVs count sectors of `sectorSize` bytes, not 512-byte sectors. */
  readonly ivLargeSectors: boolean;
}

/** The status of a crypt target: the kernel reports nothing. */
export interface CryptStatus extends TargetStatusBase {
  readonly type: 'crypt';
  readonly known: true;
  /** Words the kernel gave (none today; a newer kernel's), kept as given. */
  readonly extra: readonly string[];
}

// ---- cipher specs ---------------------------------------------------------------------------

function isIvMode(w: string): w is CryptIvMode {
  return (IV_MODES as readonly string[]).includes(w);
}

/** Why a cipher spec is refused, or the spec read. */
function readCipher(spec: string): CryptCipher | string {
  if (!/^\S+$/.test(spec)) return 'a cipher spec is one word';
  if (spec.startsWith('capi:')) {
    let rest = spec.slice('capi:'.length);
    // As the kernel reads it: the IV options after the last ':', the IV mode after the last '-'.
    let ivOptions: string | null = null;
    const colon = rest.lastIndexOf(':');
    if (colon >= 0) {
      ivOptions = rest.slice(colon + 1);
      rest = rest.slice(0, colon);
    }
    let ivMode: string | null = null;
    const dash = rest.lastIndexOf('-');
    if (dash >= 0) {
      ivMode = rest.slice(dash + 1);
      rest = rest.slice(0, dash);
    }
    if (rest === '') return 'a capi: spec names a crypto API algorithm';
    if (ivMode === '' || ivOptions === '') return 'an empty IV mode or IV options';
    if (ivMode === 'essiv' && ivOptions === null) return 'essiv needs its hash as IV options (essiv:sha256)';
    if (ivMode !== null && !/^ecb\(/.test(rest) && !isIvMode(ivMode)) return `unknown IV mode ${JSON.stringify(ivMode)} (${IV_MODES.join(', ')})`;
    return { spec, form: 'capi', cipher: null, chainMode: null, api: rest, keyCount: ivMode === 'lmk' ? 64 : 1, ivMode, ivOptions };
  }
  if (spec.includes('(')) return 'a legacy cipher spec has no "(" (use the capi: form)';
  const parts = spec.split('-');
  const head = parts[0] ?? '';
  const chain = parts[1];
  const ivPart = parts.length > 2 ? parts.slice(2).join('-') : undefined;
  const [cipher = '', count, ...more] = head.split(':');
  if (cipher === '' || more.length > 0) return 'a cipher spec starts with <cipher>[:<keycount>]';
  let keyCount = 1;
  if (count !== undefined) {
    if (!/^\d+$/.test(count)) return `<keycount> is not a number: ${JSON.stringify(count)}`;
    keyCount = Number(count);
    if (!Number.isSafeInteger(keyCount) || keyCount < 1 || keyCount > 0xffffffff || (keyCount & (keyCount - 1)) !== 0) return '<keycount> is a power of two';
  }
  let ivMode: string | null = null;
  let ivOptions: string | null = null;
  if (ivPart !== undefined) {
    const c = ivPart.indexOf(':');
    ivMode = c >= 0 ? ivPart.slice(0, c) : ivPart;
    ivOptions = c >= 0 ? ivPart.slice(c + 1) : null;
  }
  let chainMode = chain ?? null;
  // The original format: the cipher alone, or `cipher-plain`, means cbc with plain IVs.
  if (chainMode === null || (chainMode === 'plain' && ivMode === null)) {
    chainMode = 'cbc';
    ivMode = 'plain';
  }
  if (chainMode === '' || ivMode === '' || ivOptions === '') return 'a cipher spec has an empty part';
  if (chainMode !== 'ecb' && ivMode === null) return `chain mode ${chainMode} needs an IV mode (${cipher}-${chainMode}-plain64)`;
  if (ivMode === 'essiv' && ivOptions === null) return 'essiv needs its hash as IV options (essiv:sha256)';
  // The kernel ignores the IV mode of an ECB cipher (it takes no IV) and refuses unknown ones otherwise.
  if (ivMode !== null && chainMode !== 'ecb' && !isIvMode(ivMode)) return `unknown IV mode ${JSON.stringify(ivMode)} (${IV_MODES.join(', ')})`;
  return { spec, form: 'legacy', cipher, chainMode, api: `${chainMode}(${cipher})`, keyCount, ivMode, ivOptions };
}

/**
 * Reads a cipher spec on its own ('aes-xts-plain64', 'capi:cbc(aes)-essiv:sha256') the way
 * dm-crypt reads it. Throws DmParseError naming `cipher`.
 */
export function parseCryptCipher(spec: string): CryptCipher {
  if (typeof spec !== 'string') throw new DmParseError('crypt: a cipher spec is a string', String(spec), 'cipher');
  const c = readCipher(spec);
  if (typeof c === 'string') throw new DmParseError(`crypt: <cipher> ${c}`, spec, 'cipher');
  return freeze(c);
}

/** Key sizes (bytes) of one instance of a block cipher, where known. */
const BLOCK_CIPHER_KEYS: Readonly<Record<string, readonly number[]>> = {
  aes: [16, 24, 32],
  twofish: [16, 24, 32],
  camellia: [16, 24, 32],
  serpent: Array.from({ length: 33 }, (_, i) => i),
  cipher_null: [0],
};
/** Digest sizes of the hashes an authenc HMAC may use (its MAC key is that long). */
const DIGEST_SIZES: Readonly<Record<string, number>> = { md5: 16, sha1: 20, sha224: 28, sha256: 32, sha384: 48, sha512: 64 };

function chainKeySizes(chain: string, cipher: string): number[] | undefined {
  const base = BLOCK_CIPHER_KEYS[cipher];
  if (base === undefined) return undefined;
  if (cipher === 'cipher_null') return chain === 'ecb' ? [0] : undefined;
  if (['ecb', 'cbc', 'ctr', 'pcbc', 'cts', 'cfb', 'ofb'].includes(chain)) return [...base];
  if (chain === 'xts') return base.map((k) => 2 * k);
  if (chain === 'lrw') return base.map((k) => k + 16);
  return undefined;
}

/** The key sizes of one cipher instance of a crypto API spec, where known. */
function apiKeySizes(api: string): number[] | undefined {
  const auth = /^authenc\(hmac\(([a-z0-9]+)\),(.+)\)$/.exec(api);
  if (auth !== null) {
    const mac = DIGEST_SIZES[auth[1] ?? ''];
    const inner = apiKeySizes(auth[2] ?? '');
    return mac === undefined || inner === undefined ? undefined : inner.map((k) => k + mac);
  }
  const m = /^([a-z0-9]+)\(([a-z0-9_]+)\)$/.exec(api);
  if (m === null) return undefined;
  return chainKeySizes(m[1] ?? '', m[2] ?? '');
}

/**
 * The key sizes (bytes) the kernel takes for a cipher, or undefined where this library does
 * not know the cipher's key sizes (the kernel then decides).
 */
export function cryptKeySizes(cipher: CryptCipher): readonly number[] | undefined {
  const one = apiKeySizes(cipher.api);
  if (one === undefined) return undefined;
  const k = cipher.keyCount;
  // An ECB cipher takes no IV: the kernel ignores the IV mode, and with it its extra keys.
  const iv = cipher.chainMode === 'ecb' || /^ecb\(/.test(cipher.api) ? null : cipher.ivMode;
  const sizes = new Set<number>();
  for (const s of one) {
    if (iv === 'lmk') {
      // Loop-AES version 2 (keycount keys) or 3 (one more, the IV seed, of the same size).
      sizes.add(k * s);
      sizes.add((k + 1) * s);
    } else if (iv === 'tcw') {
      sizes.add(k * s + 32); // an IV seed (the 16-byte block) and 16 bytes of whitening
    } else if (iv === 'elephant') {
      if (k * s <= 32) sizes.add(2 * k * s); // as much again for the diffuser, at most 32 bytes
    } else {
      sizes.add(k * s);
    }
  }
  return [...sizes].sort((a, b) => a - b);
}

function cipherOptions(value: unknown, name: string): CryptCipher {
  if (typeof value === 'string') {
    const c = readCipher(value);
    if (typeof c === 'string') throw expectedRange(`a cipher spec (cipher[:keycount]-chainmode-ivmode[:ivopts] or capi:<spec>-ivmode[:ivopts]): ${c}`, name, value);
    return c;
  }
  if (typeof value !== 'object' || value === null) throw expected('a cipher spec or { cipher, chainMode, ivMode } or { capi, ivMode }', name, value);
  let spec: string;
  if ('capi' in value) {
    const o = builderOptions(value as CryptCapiCipherOptions, name, ['capi', 'ivMode', 'ivOptions']);
    const api = word(o.capi, `${name}.capi`);
    if (api.includes(':')) throw expectedRange('a crypto API spec without ":"', `${name}.capi`, api);
    spec = `capi:${api}`;
    if (o.ivMode !== undefined) spec += `-${choice(o.ivMode, `${name}.ivMode`, IV_MODES)}`;
    else if (api.includes('-')) throw expectedRange('an ivMode (a capi spec with "-" reads its last part as the IV mode)', `${name}.ivMode`, o.ivMode);
    if (o.ivOptions !== undefined) {
      if (o.ivMode === undefined) throw expectedRange('no ivOptions without an ivMode', `${name}.ivOptions`, o.ivOptions);
      spec += `:${ivOptionsWord(o.ivOptions, `${name}.ivOptions`)}`;
    }
  } else {
    const o = builderOptions(value as CryptLegacyCipherOptions, name, ['cipher', 'keyCount', 'chainMode', 'ivMode', 'ivOptions']);
    const cipher = word(o.cipher, `${name}.cipher`);
    if (/[-:(]/.test(cipher)) throw expectedRange('a cipher name without "-", ":" or "("', `${name}.cipher`, cipher);
    const keyCount = o.keyCount === undefined ? undefined : powerOfTwo(o.keyCount, `${name}.keyCount`, 1, 2 ** 31);
    const chainMode = word(o.chainMode, `${name}.chainMode`);
    if (/[-:(]/.test(chainMode)) throw expectedRange('a chain mode without "-", ":" or "("', `${name}.chainMode`, chainMode);
    spec = keyCount === undefined ? cipher : `${cipher}:${keyCount}`;
    spec += `-${chainMode}`;
    if (o.ivMode !== undefined) spec += `-${choice(o.ivMode, `${name}.ivMode`, IV_MODES)}`;
    else if (chainMode !== 'ecb') throw expectedRange(`an ivMode (chain mode ${chainMode} needs one)`, `${name}.ivMode`, o.ivMode);
    if (o.ivOptions !== undefined) {
      if (o.ivMode === undefined) throw expectedRange('no ivOptions without an ivMode', `${name}.ivOptions`, o.ivOptions);
      spec += `:${ivOptionsWord(o.ivOptions, `${name}.ivOptions`)}`;
    }
  }
  const c = readCipher(spec);
  if (typeof c === 'string') throw expectedRange(`parts that make a cipher spec: ${c}`, name, spec);
  return c;
}

function ivOptionsWord(value: unknown, name: string): string {
  const w = word(value, name);
  if (w.includes(':')) throw expectedRange('IV options without ":"', name, w);
  return w;
}

// ---- keys -----------------------------------------------------------------------------------

const KEY_WHAT = "a hex key (an even number of hex digits), '-' or null for none, the key bytes, or { keySize, keyType, description }";

function keyringKey(keySize: unknown, keyType: unknown, description: unknown, name: string): CryptKey {
  const size = integer(keySize, `${name}.keySize`, 1, 0x7fffffff);
  const type = choice(keyType, `${name}.keyType`, KEYRING_TYPES);
  const desc = word(description, `${name}.description`);
  if (type === 'logon' && !/^[^:]+:./.test(desc)) throw expectedRange('a logon key description with a service prefix ("service:name")', `${name}.description`, desc);
  return { kind: 'keyring', keySize: size, keyType: type, description: desc };
}

function keyInput(value: unknown, name: string): CryptKey {
  if (value === null || value === '-') return { kind: 'none', keySize: 0 };
  if (typeof value === 'string') {
    if (!/^(?:[0-9a-fA-F]{2})+$/.test(value)) throw expectedSecret(RangeError, KEY_WHAT, name, value);
    return { kind: 'hex', keySize: value.length / 2, hex: value.toLowerCase() };
  }
  if (value instanceof Uint8Array) {
    if (value.length === 0) throw expectedSecret(RangeError, 'at least one key byte (null for no key)', name, value);
    let hex = '';
    for (const b of value) hex += b.toString(16).padStart(2, '0');
    return { kind: 'hex', keySize: value.length, hex };
  }
  if (typeof value !== 'object' || Array.isArray(value)) throw expectedSecret(TypeError, KEY_WHAT, name, value);
  const kind: unknown = Reflect.get(value, 'kind');
  if (kind === 'hex') {
    const o = builderOptions(value as { kind: 'hex'; keySize: number; hex: string }, name, ['kind', 'keySize', 'hex']);
    const k = keyInput(o.hex, `${name}.hex`);
    if (k.keySize !== o.keySize) throw expectedRange(`a keySize of ${k.keySize} (the hex key's)`, `${name}.keySize`, o.keySize);
    return k;
  }
  if (kind === 'none') {
    const o = builderOptions(value as { kind: 'none'; keySize: 0 }, name, ['kind', 'keySize']);
    if (o.keySize !== 0) throw expectedRange('0', `${name}.keySize`, o.keySize);
    return { kind: 'none', keySize: 0 };
  }
  if (kind !== undefined && kind !== 'keyring') throw expectedRange('"hex", "none" or "keyring"', `${name}.kind`, kind);
  const o = builderOptions(value as CryptKeyringKeyOptions & { kind?: 'keyring' }, name, ['kind', 'keySize', 'keyType', 'description']);
  return keyringKey(o.keySize, o.keyType, o.description, name);
}

/** The key as the kernel takes and prints it. */
function keyWord(key: CryptKey): string {
  if (key.kind === 'none') return '-';
  if (key.kind === 'hex') return key.hex;
  return `:${key.keySize}:${key.keyType}:${key.description}`;
}

/** The key as `dmsetup table` shows it without --showkeys: every character zeroed, a keyring key as it is. */
function maskedKeyWord(word: string): string {
  return word.startsWith(':') ? word : '0'.repeat(word.length);
}

// ---- the target -----------------------------------------------------------------------------

const INSPECT = Symbol.for('nodejs.util.inspect.custom');

/** util.inspect of a crypt target: its fields, with the key zeroed in `key` and `params`. */
function inspectMasked(this: CryptTarget): object {
  const key = this.key.kind === 'hex' ? { ...this.key, hex: '0'.repeat(this.key.hex.length) } : this.key;
  return { ...this, key, params: cryptMaskedParams(this) };
}

function ivOffsetOption(value: unknown, name: string): bigint {
  if (typeof value === 'bigint') {
    if (value < 0n || value > U64_MAX) throw expectedRange('an unsigned 64-bit integer', name, value);
    return value;
  }
  return BigInt(sectors(value, name));
}

/** '16, 24 or 32'. */
function orList(items: readonly number[]): string {
  const first = items[0];
  const last = items[items.length - 1];
  // A whole range (serpent's 0 to 32 bytes) reads better as one.
  if (items.length > 4 && first !== undefined && last !== undefined && last - first === items.length - 1) return `${first} to ${last}`;
  return items.length <= 1 || last === undefined ? items.join('') : `${items.slice(0, -1).join(', ')} or ${last}`;
}

/** A rule across fields that a crypt table breaks: the option and the kernel's field at fault. */
interface Fault {
  readonly option: 'key' | 'ivOffset' | 'offset' | 'sectorSize';
  readonly field: string;
  readonly what: string;
  readonly received: string;
}

/** The kernel's rules across fields: the key's size for the cipher, alignment to the encryption sector. */
function acrossFields(cipher: CryptCipher, key: CryptKey, ivOffset: bigint, offset: number, sectorSize: number): Fault | undefined {
  const sizes = cryptKeySizes(cipher);
  if (sizes !== undefined && !sizes.includes(key.keySize)) {
    return { option: 'key', field: 'key', what: `a key of ${orList(sizes)} bytes (the sizes ${cipher.spec} takes)`, received: `a key of ${key.keySize} bytes` };
  }
  const per = sectorSize / 512;
  if (ivOffset % BigInt(per) !== 0n) return { option: 'ivOffset', field: 'iv_offset', what: `a multiple of ${per} (sectorSize ${sectorSize} / 512)`, received: `bigint ${ivOffset}` };
  if (offset % per !== 0) return { option: 'offset', field: 'offset', what: `a multiple of ${per} (sectorSize ${sectorSize} / 512)`, received: `number ${offset}` };
  if (sectorSize !== 512 && (cipher.ivMode === 'lmk' || cipher.ivMode === 'tcw')) return { option: 'sectorSize', field: 'opt_params', what: `512 (the ${cipher.ivMode} IV mode works on 512-byte sectors only)`, received: `number ${sectorSize}` };
  return undefined;
}

function makeCrypt(options: CryptOptions): CryptTarget {
  const o = builderOptions(options, 'crypt options', ['cipher', 'key', 'ivOffset', 'device', 'offset', 'allowDiscards', 'sameCpuCrypt', 'submitFromCryptCpus', 'noReadWorkqueue', 'noWriteWorkqueue', 'integrity', 'sectorSize', 'ivLargeSectors']);
  const cipher = cipherOptions(o.cipher, 'crypt.cipher');
  const key = keyInput(o.key, 'crypt.key');
  const ivOffset = o.ivOffset === undefined ? 0n : ivOffsetOption(o.ivOffset, 'crypt.ivOffset');
  const dev = device(o.device, 'crypt.device');
  const offset = sectors(o.offset, 'crypt.offset');
  const allowDiscards = flag(o.allowDiscards, 'crypt.allowDiscards');
  const sameCpuCrypt = flag(o.sameCpuCrypt, 'crypt.sameCpuCrypt');
  const submitFromCryptCpus = flag(o.submitFromCryptCpus, 'crypt.submitFromCryptCpus');
  const noReadWorkqueue = flag(o.noReadWorkqueue, 'crypt.noReadWorkqueue');
  const noWriteWorkqueue = flag(o.noWriteWorkqueue, 'crypt.noWriteWorkqueue');
  let integrity: CryptIntegrity | null = null;
  if (o.integrity !== undefined) {
    const i = builderOptions(o.integrity, 'crypt.integrity', ['tagSize', 'type']);
    integrity = { tagSize: integer(i.tagSize, 'crypt.integrity.tagSize', 1, MAX_TAG_SIZE), type: choice(i.type, 'crypt.integrity.type', ['aead', 'none'] as const) };
  }
  const sectorSize = o.sectorSize === undefined ? 512 : powerOfTwo(o.sectorSize, 'crypt.sectorSize', 512, 4096);
  const ivLargeSectors = flag(o.ivLargeSectors, 'crypt.ivLargeSectors');
  const fault = acrossFields(cipher, key, ivOffset, offset, sectorSize);
  if (fault !== undefined) throw new RangeError(`Expected ${fault.what} for crypt.${fault.option} but received ${fault.received}`);
  const flags: Record<CryptFlag, boolean> = { allow_discards: allowDiscards, same_cpu_crypt: sameCpuCrypt, submit_from_crypt_cpus: submitFromCryptCpus, no_read_workqueue: noReadWorkqueue, no_write_workqueue: noWriteWorkqueue, iv_large_sectors: ivLargeSectors };
  // The kernel's order of print-back: the flags, integrity, sector_size, iv_large_sectors.
  const opt = [
    ...FLAGS_BEFORE.filter((f) => flags[f]),
    integrity === null ? undefined : `integrity:${integrity.tagSize}:${integrity.type}`,
    sectorSize === 512 ? undefined : `sector_size:${sectorSize}`,
    ivLargeSectors ? 'iv_large_sectors' : undefined,
  ].filter((w): w is string => w !== undefined);
  const params = join([cipher.spec, keyWord(key), ivOffset.toString(), dev, offset, opt.length > 0 ? `${opt.length} ${opt.join(' ')}` : undefined]);
  const target = { type: 'crypt' as const, cipher, key, ivOffset, device: dev, offset, allowDiscards, sameCpuCrypt, submitFromCryptCpus, noReadWorkqueue, noWriteWorkqueue, integrity, sectorSize, ivLargeSectors, params };
  Object.defineProperty(target, INSPECT, { value: inspectMasked, enumerable: false });
  return typedTarget(target);
}

/**
 * Builds a crypt target: `<cipher> <key> <iv_offset> <device> <offset> [<#opt_params>
 * <opt_params>]`, the optional params in the kernel's order. Throws TypeError/RangeError naming
 * the field at fault (never quoting the key). Create or load it with `{ secure: true }`.
 */
export function crypt(options: CryptOptions): CryptTarget {
  return makeCrypt(options);
}

/**
 * The params text with its key word zeroed (for errors and display), and any other word of 32
 * or more hex digits too: a key out of its place (the cipher left out) is still a key.
 */
function maskParamsText(params: string): string {
  let word = 0;
  return params.replace(/\S+/g, (w) => (word++ === 1 ? maskedKeyWord(w) : /^[0-9a-fA-F]{32,}$/.test(w) ? '0'.repeat(w.length) : w));
}

/**
 * Parses crypt parameters ('aes-xts-plain64 <hex key> 0 7:0 0 1 allow_discards'): hex keys in
 * either case (the kernel prints lowercase), keyring keys, `-`; optional params in any order,
 * repeated, and in any case (as the kernel takes them). Throws DmParseError naming the field;
 * its text has the key zeroed.
 */
export function parseCrypt(params: string): CryptTarget {
  const at = new ArgReader(params, 'crypt', maskParamsText(params));
  const spec = at.word('cipher');
  const cipher = readCipher(spec);
  if (typeof cipher === 'string') throw at.fail(`<cipher> ${JSON.stringify(spec)}: ${cipher}`, 'cipher');
  const keyText = at.word('key');
  let key: CryptKey;
  if (keyText === '-') key = { kind: 'none', keySize: 0 };
  else if (keyText.startsWith(':')) {
    const m = /^:(\d+):([^:]+):(.+)$/.exec(keyText);
    if (m === null) throw at.fail('<key> is :<key_size>:<key_type>:<key_description>', 'key');
    const size = Number(m[1]);
    if (!Number.isSafeInteger(size) || size < 1 || size > 0x7fffffff) throw at.fail('<key_size> is out of range', 'key');
    const type = KEYRING_TYPES.find((t) => t === m[2]);
    if (type === undefined) throw at.fail(`<key_type> is one of ${KEYRING_TYPES.join(', ')}`, 'key');
    const description = m[3] ?? '';
    if (type === 'logon' && !/^[^:]+:./.test(description)) throw at.fail('a logon key description has a service prefix ("service:name")', 'key');
    key = { kind: 'keyring', keySize: size, keyType: type, description };
  } else {
    if (!/^(?:[0-9a-fA-F]{2})+$/.test(keyText)) throw at.fail('<key> is an even number of hex digits, - or :<key_size>:<key_type>:<key_description>', 'key');
    key = { kind: 'hex', keySize: keyText.length / 2, hex: keyText.toLowerCase() };
  }
  const ivOffset = at.u64('iv_offset');
  const dev = at.device('device path');
  const offset = at.uint('offset');
  const set = new Set<CryptFlag>();
  let integrity: CryptIntegrity | undefined;
  let sectorSize: number | undefined;
  if (at.remaining > 0) {
    for (const w of at.group('opt_params', MAX_OPT_PARAMS)) {
      // The kernel compares flag names ignoring case; `integrity:` and `sector_size:` exactly.
      const f = FLAGS.find((x) => x === w.toLowerCase());
      if (f !== undefined) {
        set.add(f);
        continue;
      }
      const im = /^integrity:(\d+):(.*)$/.exec(w);
      if (im !== null) {
        const size = Number(im[1]);
        if (!(size >= 1 && size <= MAX_TAG_SIZE)) throw at.fail(`integrity tag size is 1 to ${MAX_TAG_SIZE}`, 'opt_params');
        const type = im[2] === 'aead' ? 'aead' : im[2] === 'none' ? 'none' : undefined;
        if (type === undefined) throw at.fail(`integrity type is aead or none, not ${JSON.stringify(im[2])}`, 'opt_params');
        integrity = { tagSize: size, type };
        continue;
      }
      const sm = /^sector_size:(\d+)$/.exec(w);
      if (sm !== null) {
        const size = Number(sm[1]);
        if (!(size >= 512 && size <= 4096 && (size & (size - 1)) === 0)) throw at.fail('sector_size is a power of two from 512 to 4096', 'opt_params');
        sectorSize = size;
        continue;
      }
      throw at.fail(`unknown optional param ${JSON.stringify(w)}`, 'opt_params');
    }
  }
  at.done();
  const fault = acrossFields(cipher, key, ivOffset, offset, sectorSize ?? 512);
  if (fault !== undefined) throw at.fail(`<${fault.field}>: expected ${fault.what}, not ${fault.received}`, fault.field);
  return makeCrypt({
    cipher: cipher.spec,
    key,
    ivOffset,
    device: dev,
    offset,
    allowDiscards: set.has('allow_discards'),
    sameCpuCrypt: set.has('same_cpu_crypt'),
    submitFromCryptCpus: set.has('submit_from_crypt_cpus'),
    noReadWorkqueue: set.has('no_read_workqueue'),
    noWriteWorkqueue: set.has('no_write_workqueue'),
    integrity,
    sectorSize,
    ivLargeSectors: set.has('iv_large_sectors'),
  });
}

/** Parses a crypt target's status (the kernel reports nothing; any words are kept in `extra`). */
export function parseCryptStatus(text: string): CryptStatus {
  const at = new ArgReader(text, 'crypt status');
  return freeze({ type: 'crypt', raw: text, known: true, extra: at.rest() });
}

/** A crypt target's params with the key zeroed, as `dmsetup table` shows them without `--showkeys`. */
export function cryptMaskedParams(target: Target): string {
  return maskParamsText(target.params);
}

/**
 * A table's text with the key of every crypt row zeroed, as `dmsetup table` shows it without
 * `--showkeys` (a hex key or `-` becomes zeroes of its length; a keyring key is shown as it
 * is): for logs and display.
 */
export function maskCryptKeys(table: { readonly rows: readonly { readonly start: number; readonly length: number; readonly type: string; readonly params: string }[] }): string {
  return table.rows.map((r) => {
    const params = r.type === 'crypt' ? maskParamsText(r.params) : r.params;
    return params === '' ? `${r.start} ${r.length} ${r.type}` : `${r.start} ${r.length} ${r.type} ${params}`;
  }).join('\n');
}

/**
 * Messages a crypt target takes (`dm.message(name, cryptMessages.keyWipe(), { secure: true })`).
 * Both work only while the device is suspended (EINVAL otherwise), and both should be sent
 * with `{ secure: true }`: `key set` carries the key, and DM_SECURE_DATA makes the kernel and
 * the library wipe their copies of the message. A device whose key was wiped cannot be resumed
 * (EAGAIN, "crypt key is not set") until `key set` gives one.
 */
export const cryptMessages = Object.freeze({
  /**
   * `key set <key>`: sets the key of a suspended crypt device (hex, or a keyring key, looked
   * up then). The size must be the device's key size (EINVAL otherwise). Send with
   * `{ secure: true }`. Throws TypeError/RangeError naming `key` (never quoting it).
   */
  keySet(key: CryptKeyInput): string {
    return `key set ${keyWord(keyInput(key, 'key'))}`;
  },
  /**
   * `key wipe`: wipes the key of a suspended crypt device (the table then shows a key of
   * zeroes); resume is refused until `key set`. Send with `{ secure: true }`.
   */
  keyWipe(): string {
    return 'key wipe';
  },
});

/** The crypt target type. */
export const cryptModule: TargetModule<CryptTarget, CryptStatus> = {
  type: 'crypt',
  parse: parseCrypt,
  parseStatus: parseCryptStatus,
  redact: maskParamsText,
  holdsSecret: () => true,
  // The kernel's rule: the row is whole encryption sectors ("Device size is not multiple of sector_size feature").
  checkLength(target, length, name) {
    const t = parseCrypt(target.params);
    const per = t.sectorSize / 512;
    if (length % per !== 0) throw expectedRange(`a length of whole ${t.sectorSize}-byte sectors (a multiple of ${per})`, name, length);
  },
};
