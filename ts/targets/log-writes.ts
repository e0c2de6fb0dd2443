import type { DeviceRef } from '../dev';
import { expected, expectedRange } from '../validate';
import { ArgReader, builderOptions, device, freeze, typedTarget } from './args';
import type { Target, TargetModule, TargetStatusBase } from './types';

/** Options of a log-writes target. */
export interface LogWritesOptions {
  /** `<dev_path>`: the device written through to. */
  device: DeviceRef;
  /** `<log_dev_path>`: the device every write (and flush, FUA, discard, mark) is logged to, in order. */
  logDevice: DeviceRef;
}

/** `log-writes <device> <log device>`: passes I/O to `device` and logs each write to `logDevice`. */
export interface LogWritesTarget extends Target {
  readonly type: 'log-writes';
  /** `<dev_path>`, 'major:minor' or a /dev path: the device I/O passes to. */
  readonly device: string;
  /** `<log_dev_path>`, 'major:minor' or a /dev path: the device the writes are logged to. */
  readonly logDevice: string;
}

/** The status of a log-writes target: `<#logged entries> <highest allocated sector> [logging_disabled]`. */
export interface LogWritesStatus extends TargetStatusBase {
  readonly type: 'log-writes';
  readonly known: true;
  /** `<#logged entries>`: entries logged so far (a count of writes, flushes, discards and marks). */
  readonly loggedEntries: number;
  /** `<highest allocated sector>`: the last sector of the log device in use (512-byte sectors). */
  readonly highestSector: number;
  /** False when the status ends in `logging_disabled`: logging stopped (the log device is full or failed). */
  readonly loggingEnabled: boolean;
  /** Words after the known fields (a newer kernel's), kept as given. */
  readonly extra: readonly string[];
}

/** Builds a log-writes target. Throws TypeError/RangeError on bad options. */
export function logWrites(options: LogWritesOptions): LogWritesTarget {
  const o = builderOptions(options, 'log-writes options', ['device', 'logDevice']);
  const dev = device(o.device, 'logWrites.device');
  const logDevice = device(o.logDevice, 'logWrites.logDevice');
  return typedTarget({ type: 'log-writes', device: dev, logDevice, params: `${dev} ${logDevice}` });
}

/** Parses log-writes parameters ('7:0 7:1'). Throws DmParseError naming the field. */
export function parseLogWrites(params: string): LogWritesTarget {
  const at = new ArgReader(params, 'log-writes');
  const dev = at.device('device');
  const logDevice = at.device('log device');
  at.done();
  return logWrites({ device: dev, logDevice });
}

/** Parses a log-writes status ('12 96', '12 96 logging_disabled'). Throws DmParseError naming the field. */
export function parseLogWritesStatus(text: string): LogWritesStatus {
  const at = new ArgReader(text, 'log-writes status');
  const loggedEntries = at.uint('logged entries');
  const highestSector = at.uint('highest sector');
  const disabled = at.peek() === 'logging_disabled';
  if (disabled) at.word('logging state');
  return freeze({ type: 'log-writes', raw: text, known: true, loggedEntries, highestSector, loggingEnabled: !disabled, extra: at.rest() });
}

/** The log-writes target type. */
export const logWritesModule: TargetModule<LogWritesTarget, LogWritesStatus> = { type: 'log-writes', parse: parseLogWrites, parseStatus: parseLogWritesStatus };

/** Builders of the log-writes target's messages. */
export const logWritesMessages = Object.freeze({
  /** `mark <name>`: a named entry in the log (a point a replay can stop at). One word, no whitespace. */
  mark(name: string): string {
    if (typeof name !== 'string') throw expected('a string', 'name', name);
    if (!/^\S+$/.test(name) || name.includes('\\')) throw expectedRange('one word without whitespace or backslashes', 'name', name);
    return `mark ${name}`;
  },
});
