import { DmParseError } from '../errors';
import { freeze, typedTarget } from './args';
import type { Target, TargetModule, TargetStatusBase } from './types';

/** `zero`: reads return zeroes, writes are discarded. */
export interface ZeroTarget extends Target {
  readonly type: 'zero';
}

/** `error`: every I/O fails. */
export interface ErrorTarget extends Target {
  readonly type: 'error';
}

/** The status of a zero target: the kernel reports nothing. */
export interface ZeroStatus extends TargetStatusBase {
  readonly type: 'zero';
  readonly known: true;
}

/** The status of an error target: the kernel reports nothing. */
export interface ErrorStatus extends TargetStatusBase {
  readonly type: 'error';
  readonly known: true;
}

// Targets and statuses without parameters are values: one frozen object each serves every row
// (a 100,000-row fill table holds one target, not 100,000 equal ones).
const ZERO: ZeroTarget = typedTarget({ type: 'zero', params: '' });
const ERROR: ErrorTarget = typedTarget({ type: 'error', params: '' });
const ZERO_STATUS: ZeroStatus = freeze({ type: 'zero', raw: '', known: true });
const ERROR_STATUS: ErrorStatus = freeze({ type: 'error', raw: '', known: true });

/** Builds a zero target (no parameters; the same frozen object every time). */
export function zero(): ZeroTarget {
  return ZERO;
}

/** Builds an error target (no parameters; the same frozen object every time). */
export function error(): ErrorTarget {
  return ERROR;
}

/** Parses zero parameters (there are none). */
export function parseZero(params: string): ZeroTarget {
  if (params.trim() !== '') throw new DmParseError('zero takes no parameters', params, 'params');
  return zero();
}

/** Parses error parameters (there are none). */
export function parseError(params: string): ErrorTarget {
  if (params.trim() !== '') throw new DmParseError('error takes no parameters', params, 'params');
  return error();
}

/** `empty` for the empty text the kernel gives; the same with `text` for blanks; else a DmParseError. */
function emptyStatus<S extends ZeroStatus | ErrorStatus>(empty: S, text: string): S {
  if (text === '') return empty;
  if (text.trim() !== '') throw new DmParseError(`${empty.type} has no status fields`, text, 'status');
  return freeze({ ...empty, raw: text });
}

/** Parses a zero target's status (empty). */
export function parseZeroStatus(text: string): ZeroStatus {
  return emptyStatus(ZERO_STATUS, text);
}

/** Parses an error target's status (empty). */
export function parseErrorStatus(text: string): ErrorStatus {
  return emptyStatus(ERROR_STATUS, text);
}

/** The zero target type. */
export const zeroModule: TargetModule<ZeroTarget, ZeroStatus> = { type: 'zero', parse: parseZero, parseStatus: parseZeroStatus };
/** The error target type. */
export const errorModule: TargetModule<ErrorTarget, ErrorStatus> = { type: 'error', parse: parseError, parseStatus: parseErrorStatus };
