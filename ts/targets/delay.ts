/**
 * dm-delay: a linear mapping that holds reads, writes and flushes back for a while before
 * sending them on, each class possibly to a device of its own. Pure data: nothing here
 * touches the kernel.
 */
import type { DeviceRef } from '../dev';
import { expected } from '../validate';
import { ArgReader, U32_MAX, builderOptions, device, freeze, integer, sectors, typedTarget } from './args';
import type { Target, TargetModule, TargetStatusBase } from './types';

/** Where one class of I/O (reads, writes or flushes) goes, and how long it is held first. */
export interface DelayClass {
  /** `<device>`, 'major:minor' or a /dev path. */
  readonly device: string;
  /** `<offset>`: the sector of `device` where the mapping starts (512-byte sectors). */
  readonly offset: number;
  /** `<delay>`: how long each bio is held before it is sent on, in milliseconds (0 sends it at once). */
  readonly delay: number;
}

/** A class's options: device, offset (sectors) and delay (milliseconds, 0 to 2^32 − 1). */
export interface DelayClassOptions {
  /** `<device>`: the device this class of I/O goes to. */
  device: DeviceRef;
  /** `<offset>`: start sector on `device` (512-byte sectors). */
  offset: number;
  /** `<delay>`: milliseconds each bio is held back (0 to 2^32 − 1). */
  delay: number;
}

/** Options of a delay target. */
export interface DelayOptions {
  /** `<device> <offset> <delay>`: reads; also writes and flushes when `write` is not given. */
  read: DelayClassOptions;
  /** Writes (`<write_device> <write_offset> <write_delay>`); also flushes when `flush` is not given. */
  write?: DelayClassOptions;
  /** Flushes (`<flush_device> <flush_offset> <flush_delay>`); only with `write`, as the table has it. */
  flush?: DelayClassOptions;
}

/**
 * `delay <device> <offset> <delay> [<write_device> <write_offset> <write_delay>
 * [<flush_device> <flush_offset> <flush_delay>]]`. The kernel prints back the triplets the
 * table gave (one, two or three).
 */
export interface DelayTarget extends Target {
  readonly type: 'delay';
  /** The first triplet, `<device> <offset> <delay>`: reads (and writes and flushes when the table gives no more triplets). */
  readonly read: DelayClass;
  /** `<write_device> <write_offset> <write_delay>`: writes (and flushes when the table gives no flush triplet), or null: writes go as reads. */
  readonly write: DelayClass | null;
  /** `<flush_device> <flush_offset> <flush_delay>`: flushes (writes with REQ_PREFLUSH), or null: flushes go as writes. */
  readonly flush: DelayClass | null;
}

/** The status of a delay target, `<#reads> <#writes> <#flushes>`: bios being held back right now, by class. */
export interface DelayStatus extends TargetStatusBase {
  readonly type: 'delay';
  readonly known: true;
  /** `<#reads>`: read bios being held back (a count, not yet sent on). */
  readonly reads: number;
  /** `<#writes>`: write bios being held back (a count). */
  readonly writes: number;
  /** `<#flushes>`: flush bios being held back (a count). */
  readonly flushes: number;
  /** Words after the known fields (a newer kernel's), kept as given. */
  readonly extra: readonly string[];
}

function delayClass(value: unknown, name: string): DelayClass {
  if (typeof value !== 'object' || value === null) throw expected('{ device, offset, delay }', name, value);
  const c = builderOptions(value as DelayClassOptions, name, ['device', 'offset', 'delay']);
  return { device: device(c.device, `${name}.device`), offset: sectors(c.offset, `${name}.offset`), delay: integer(c.delay, `${name}.delay`, 0, U32_MAX) };
}

function triplet(c: DelayClass): string {
  return `${c.device} ${c.offset} ${c.delay}`;
}

/** Builds a delay target. Throws TypeError/RangeError naming the field at fault. */
export function delay(options: DelayOptions): DelayTarget {
  const o = builderOptions(options, 'delay options', ['read', 'write', 'flush']);
  const read = delayClass(o.read, 'delay.read');
  const write = o.write === undefined ? null : delayClass(o.write, 'delay.write');
  const flush = o.flush === undefined ? null : delayClass(o.flush, 'delay.flush');
  // The table has no way to give a flush triplet without a write triplet before it.
  if (flush !== null && write === null) throw expected('a write class alongside flush', 'delay.write', undefined);
  const params = [read, write, flush].flatMap((c) => (c === null ? [] : [triplet(c)])).join(' ');
  return typedTarget({ type: 'delay', read, write, flush, params });
}

/**
 * Parses delay parameters ('7:0 0 200', '7:0 0 0 7:1 0 500', or nine words). A delay above
 * 32 bits is refused (the 6.1 kernel's own reader wraps it: 4294967296 loads as 0). Throws
 * DmParseError naming the field.
 */
export function parseDelay(params: string): DelayTarget {
  const at = new ArgReader(params, 'delay');
  if (![3, 6, 9].includes(at.remaining)) throw at.fail(`takes exactly 3, 6 or 9 arguments, not ${at.remaining}`, 'params');
  const readClass = (what: string): DelayClassOptions => ({ device: at.device(`${what}device`), offset: at.uint(`${what}offset`), delay: at.uint(`${what}delay`, 0, U32_MAX) });
  const read = readClass('');
  const write = at.remaining > 0 ? readClass('write_') : undefined;
  const flush = at.remaining > 0 ? readClass('flush_') : undefined;
  at.done();
  return delay({ read, write, flush });
}

/** Parses a delay target's status ('0 1 0': reads, writes and flushes held back). Throws DmParseError naming the field. */
export function parseDelayStatus(text: string): DelayStatus {
  const at = new ArgReader(text, 'delay status');
  const reads = at.uint('reads', 0, U32_MAX);
  const writes = at.uint('writes', 0, U32_MAX);
  const flushes = at.uint('flushes', 0, U32_MAX);
  return freeze({ type: 'delay', raw: text, known: true, reads, writes, flushes, extra: at.rest() });
}

/** The delay target type. */
export const delayModule: TargetModule<DelayTarget, DelayStatus> = { type: 'delay', parse: parseDelay, parseStatus: parseDelayStatus };
