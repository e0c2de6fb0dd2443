/**
 * dm-flakey: a linear mapping that misbehaves periodically, for testing. From the time the
 * table is loaded the device is up (works) for `upInterval` seconds, then down (fails as its
 * features say) for `downInterval` seconds, and the cycle repeats. Pure data: nothing here
 * touches the kernel.
 */
import type { DeviceRef } from '../dev';
import { expected, expectedRange } from '../validate';
import { ArgReader, U32_MAX, builderOptions, choice, device, flag, freeze, integer, sectors, typedTarget } from './args';
import type { Target, TargetModule, TargetStatusBase } from './types';

/** The probability the random corruption features take at most: 10^9, "always". */
export const FLAKEY_PROBABILITY_BASE = 1_000_000_000;

/**
 * The direction of bios `corrupt_bio_byte` corrupts: `r` reads (the data is changed after it
 * was read, on its way up), `w` writes (the data is changed before it is written).
 */
export type FlakeyCorruptDirection = 'r' | 'w';

/** `corrupt_bio_byte <Nth_byte> <direction> <value> <flags>`: one byte of each matching bio while down. */
export interface FlakeyCorruptBioByte {
  /** `<Nth_byte>`: which byte of the bio's data is overwritten, counted from 1 (1 to 2^32 − 1). */
  readonly nthByte: number;
  /**
   * `<direction>`: reads (`r`) or writes (`w`). The 6.1 kernel takes `r` but leaves reads intact:
   * it looks for the byte in the bio's remaining segments after the read completed, when none
   * remain (later kernels save the bio's position first and do corrupt it).
   */
  readonly direction: FlakeyCorruptDirection;
  /** `<value>`: the byte value written in its place (0 to 255). */
  readonly value: number;
  /**
   * `<flags>`: only bios with all these request flags set (a mask of the kernel's REQ_* bits of
   * bi_opf, which change between kernel versions) are corrupted; 0 corrupts every bio.
   */
  readonly flags: number;
}

/** Options of a flakey target. */
export interface FlakeyOptions {
  /** `<dev path>`: the device mapped to. */
  device: DeviceRef;
  /** `<offset>`: the sector of `device` where the mapping starts (512-byte sectors). */
  offset: number;
  /** `<up interval>`: seconds the device works, from table load, in each cycle (0 to 2^32 − 1). */
  upInterval: number;
  /** `<down interval>`: seconds the device misbehaves in each cycle (0 to 2^32 − 1; up + down is 1 to 2^32 − 1). */
  downInterval: number;
  /**
   * `drop_writes`: while down, writes are silently dropped (reported done, never written) and
   * reads work.
   */
  dropWrites?: boolean;
  /** `error_writes`: while down, writes fail with an I/O error and reads work. */
  errorWrites?: boolean;
  /** `corrupt_bio_byte`: while down, one byte of each matching read or write is overwritten. */
  corruptBioByte?: {
    /** `<Nth_byte>`: the byte of the bio's data overwritten, counted from 1 (1 to 2^32 − 1). */
    nthByte: number;
    /** `<direction>`: `r` reads or `w` writes. */
    direction: FlakeyCorruptDirection;
    /** `<value>`: the byte written in its place (0 to 255). */
    value: number;
    /** `<flags>`: a mask of REQ_* bits a bio must all have to be corrupted (default 0: every bio). */
    flags?: number;
  };
  /**
   * `error_reads`: while down, reads fail with an I/O error. Newer kernels only (6.5 and
   * later); the 6.1 kernel refuses it ("Unrecognised flakey feature requested").
   */
  errorReads?: boolean;
  /**
   * `random_read_corrupt <probability>`: while down, each read has one random byte replaced
   * by a random value with this probability, in parts per 10^9 (1 to 10^9). Newer kernels
   * only (6.5 and later); 6.1 refuses it.
   */
  randomReadCorrupt?: number;
  /**
   * `random_write_corrupt <probability>`: the same for writes (parts per 10^9). Newer kernels
   * only (6.5 and later); 6.1 refuses it.
   */
  randomWriteCorrupt?: number;
}

/**
 * `flakey <dev path> <offset> <up interval> <down interval> [<num_features> [<feature
 * arguments>]]`. Without features, every read and write fails while down. The kernel prints
 * the features back in its own order (error_reads, drop_writes or error_writes,
 * corrupt_bio_byte, random_read_corrupt, random_write_corrupt), which `params` follows.
 */
export interface FlakeyTarget extends Target {
  readonly type: 'flakey';
  /** `<dev path>`, 'major:minor' or a /dev path: the device mapped to. */
  readonly device: string;
  /** `<offset>`: start sector on `device` (512-byte sectors). */
  readonly offset: number;
  /** `<up interval>`: seconds up in each cycle. */
  readonly upInterval: number;
  /** `<down interval>`: seconds down in each cycle. */
  readonly downInterval: number;
  /** Feature `error_reads` (newer kernels): reads fail while down. */
  readonly errorReads: boolean;
  /** Feature `drop_writes`: writes are dropped while down. */
  readonly dropWrites: boolean;
  /** Feature `error_writes`: writes fail while down. */
  readonly errorWrites: boolean;
  /** Feature `corrupt_bio_byte <Nth_byte> <direction> <value> <flags>`, or null without it. */
  readonly corruptBioByte: FlakeyCorruptBioByte | null;
  /** Feature `random_read_corrupt <probability>`: parts per 10^9 (newer kernels), or null without it. */
  readonly randomReadCorrupt: number | null;
  /** Feature `random_write_corrupt <probability>`: probability in parts per 10^9 (newer kernels), or null without it. */
  readonly randomWriteCorrupt: number | null;
}

/** The status of a flakey target: the kernel reports none. */
export interface FlakeyStatus extends TargetStatusBase {
  readonly type: 'flakey';
  readonly known: true;
  /** Words a newer kernel prints, kept as given. */
  readonly extra: readonly string[];
}

const KEYS = ['device', 'offset', 'upInterval', 'downInterval', 'dropWrites', 'errorWrites', 'corruptBioByte', 'errorReads', 'randomReadCorrupt', 'randomWriteCorrupt'] as const;

function probability(value: unknown, name: string): number | null {
  return value === undefined ? null : integer(value, name, 1, FLAKEY_PROBABILITY_BASE);
}

interface Features {
  errorReads: boolean;
  dropWrites: boolean;
  errorWrites: boolean;
  corruptBioByte: FlakeyCorruptBioByte | null;
  randomReadCorrupt: number | null;
  randomWriteCorrupt: number | null;
}

/** The kernel's rules between features (flakey_ctr): the conflict and the option it lies in, or undefined. */
function conflict(t: Features): { message: string; field: keyof Features | 'corruptBioByte.direction' } | undefined {
  const writes = t.corruptBioByte?.direction === 'w' ? 'corruptBioByte.direction' : t.randomWriteCorrupt !== null ? 'randomWriteCorrupt' : undefined;
  const reads = t.corruptBioByte?.direction === 'r' ? 'corruptBioByte.direction' : t.randomReadCorrupt !== null ? 'randomReadCorrupt' : undefined;
  if (t.dropWrites && t.errorWrites) return { message: 'drop_writes conflicts with error_writes', field: 'errorWrites' };
  if (t.dropWrites && writes !== undefined) return { message: 'drop_writes is incompatible with corrupting writes', field: writes };
  if (t.errorWrites && writes !== undefined) return { message: 'error_writes is incompatible with corrupting writes', field: writes };
  if (t.errorReads && reads !== undefined) return { message: 'error_reads is incompatible with corrupting reads', field: reads };
  return undefined;
}

/**
 * Builds a flakey target. Throws TypeError/RangeError naming the field at fault, also for
 * features the kernel refuses together (drop_writes with error_writes; dropping or failing
 * writes while also corrupting them; failing reads while also corrupting them).
 */
export function flakey(options: FlakeyOptions): FlakeyTarget {
  const o = builderOptions(options, 'flakey options', [...KEYS]);
  const dev = device(o.device, 'flakey.device');
  const offset = sectors(o.offset, 'flakey.offset');
  const upInterval = integer(o.upInterval, 'flakey.upInterval', 0, U32_MAX);
  const downInterval = integer(o.downInterval, 'flakey.downInterval', 0, U32_MAX);
  // The kernel adds them in 32 bits: the sum must be 1 or more and not wrap.
  if (upInterval + downInterval === 0) throw expectedRange('an up or down interval above 0', 'flakey.downInterval', downInterval);
  if (upInterval + downInterval > U32_MAX) throw expectedRange(`an up + down interval of at most ${U32_MAX} seconds`, 'flakey.downInterval', downInterval);
  const errorReads = flag(o.errorReads, 'flakey.errorReads');
  const dropWrites = flag(o.dropWrites, 'flakey.dropWrites');
  const errorWrites = flag(o.errorWrites, 'flakey.errorWrites');
  let corruptBioByte: FlakeyCorruptBioByte | null = null;
  if (o.corruptBioByte !== undefined) {
    const name = 'flakey.corruptBioByte';
    if (typeof o.corruptBioByte !== 'object' || o.corruptBioByte === null) throw expected('{ nthByte, direction, value, flags? }', name, o.corruptBioByte);
    const c = builderOptions(o.corruptBioByte, name, ['nthByte', 'direction', 'value', 'flags']);
    corruptBioByte = {
      nthByte: integer(c.nthByte, `${name}.nthByte`, 1, U32_MAX),
      direction: choice(c.direction, `${name}.direction`, ['r', 'w'] as const),
      value: integer(c.value, `${name}.value`, 0, 255),
      flags: c.flags === undefined ? 0 : integer(c.flags, `${name}.flags`, 0, U32_MAX),
    };
  }
  const randomReadCorrupt = probability(o.randomReadCorrupt, 'flakey.randomReadCorrupt');
  const randomWriteCorrupt = probability(o.randomWriteCorrupt, 'flakey.randomWriteCorrupt');
  const fields: Features = { errorReads, dropWrites, errorWrites, corruptBioByte, randomReadCorrupt, randomWriteCorrupt };
  const bad = conflict(fields);
  if (bad !== undefined) {
    const value = bad.field === 'corruptBioByte.direction' ? corruptBioByte?.direction : fields[bad.field];
    throw expectedRange(`features the kernel takes together (${bad.message})`, `flakey.${bad.field}`, value);
  }
  const features: (string | number)[] = [];
  if (errorReads) features.push('error_reads');
  if (dropWrites) features.push('drop_writes');
  else if (errorWrites) features.push('error_writes');
  if (corruptBioByte !== null) features.push('corrupt_bio_byte', corruptBioByte.nthByte, corruptBioByte.direction, corruptBioByte.value, corruptBioByte.flags);
  if (randomReadCorrupt !== null) features.push('random_read_corrupt', randomReadCorrupt);
  if (randomWriteCorrupt !== null) features.push('random_write_corrupt', randomWriteCorrupt);
  // The kernel prints the feature count even when it is 0: the explicit form.
  const params = [dev, offset, upInterval, downInterval, features.length, ...features].join(' ');
  return typedTarget({ type: 'flakey', device: dev, offset, upInterval, downInterval, ...fields, params });
}

/**
 * Parses flakey parameters ('7:0 0 0 5 1 error_writes', and the 6.1 kernel's print-back with
 * its trailing blank). Feature names and the direction are read without regard to case, as
 * the kernel reads them. Throws DmParseError naming the field.
 */
export function parseFlakey(params: string): FlakeyTarget {
  const at = new ArgReader(params, 'flakey');
  const dev = at.device('dev path');
  const offset = at.uint('offset');
  const upInterval = at.uint('up interval', 0, U32_MAX);
  const downInterval = at.uint('down interval', 0, U32_MAX);
  if (upInterval + downInterval === 0) throw at.fail('the total (up + down) interval is zero', 'down interval');
  if (upInterval + downInterval > U32_MAX) throw at.fail('the total (up + down) interval overflows 32 bits', 'down interval');
  const o: FlakeyOptions = { device: dev, offset, upInterval, downInterval };
  if (at.remaining > 0) {
    // 11 is the newer kernels' bound (6.1's is 6); a longer group is refused by both.
    const count = at.uint('feature args count', 0, 11);
    if (count > at.remaining) throw at.fail(`<feature args count> says ${count} but only ${at.remaining} word(s) follow`, 'feature args count');
    const end = at.remaining - count;
    const left = (): number => at.remaining - end;
    const twice = (name: string): never => {
      throw at.fail(`feature ${name} is given twice`, 'feature args');
    };
    while (left() > 0) {
      const name = at.word('feature').toLowerCase();
      if (name === 'error_reads') o.errorReads = o.errorReads === true ? twice(name) : true;
      else if (name === 'drop_writes') o.dropWrites = o.dropWrites === true ? twice(name) : true;
      else if (name === 'error_writes') o.errorWrites = o.errorWrites === true ? twice(name) : true;
      else if (name === 'corrupt_bio_byte') {
        if (o.corruptBioByte !== undefined) twice(name);
        if (left() < 4) throw at.fail('corrupt_bio_byte takes 4 args (<Nth_byte> <direction> <value> <flags>) inside the feature count', 'corrupt_bio_byte');
        const nthByte = at.uint('Nth_byte', 1, U32_MAX);
        const dir = at.word('direction').toLowerCase();
        if (dir !== 'r' && dir !== 'w') throw at.fail(`<direction> is r or w, not ${JSON.stringify(dir)}`, 'direction');
        o.corruptBioByte = { nthByte, direction: dir, value: at.uint('value', 0, 255), flags: at.uint('flags', 0, U32_MAX) };
      } else if (name === 'random_read_corrupt' || name === 'random_write_corrupt') {
        const key = name === 'random_read_corrupt' ? 'randomReadCorrupt' : 'randomWriteCorrupt';
        if (o[key] !== undefined) twice(name);
        if (left() < 1) throw at.fail(`${name} takes a probability inside the feature count`, name);
        const p = at.uint(name, 0, FLAKEY_PROBABILITY_BASE);
        // A probability of 0 is the feature off: the kernel takes it and prints nothing back.
        if (p > 0) o[key] = p;
      } else throw at.fail(`unknown feature ${JSON.stringify(name)} (error_reads, drop_writes, error_writes, corrupt_bio_byte, random_read_corrupt, random_write_corrupt)`, 'feature args');
    }
    const bad = conflict({
      errorReads: o.errorReads === true,
      dropWrites: o.dropWrites === true,
      errorWrites: o.errorWrites === true,
      corruptBioByte: o.corruptBioByte === undefined ? null : { flags: 0, ...o.corruptBioByte },
      randomReadCorrupt: o.randomReadCorrupt ?? null,
      randomWriteCorrupt: o.randomWriteCorrupt ?? null,
    });
    if (bad !== undefined) throw at.fail(bad.message, 'feature args');
  }
  at.done();
  return flakey(o);
}

/** Parses a flakey target's status (the kernel prints none). */
export function parseFlakeyStatus(text: string): FlakeyStatus {
  return freeze({ type: 'flakey', raw: text, known: true, extra: new ArgReader(text, 'flakey status').rest() });
}

/** The flakey target type. */
export const flakeyModule: TargetModule<FlakeyTarget, FlakeyStatus> = { type: 'flakey', parse: parseFlakey, parseStatus: parseFlakeyStatus };
