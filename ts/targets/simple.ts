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

/** Builds a zero target (no parameters). */
export function zero(): ZeroTarget {
  return typedTarget({ type: 'zero', params: '' });
}

/** Builds an error target (no parameters). */
export function error(): ErrorTarget {
  return typedTarget({ type: 'error', params: '' });
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

function emptyStatus<T extends 'zero' | 'error'>(type: T, text: string): TargetStatusBase & { readonly type: T; readonly known: true } {
  if (text.trim() !== '') throw new DmParseError(`${type} has no status fields`, text, 'status');
  return freeze({ type, raw: text, known: true as const });
}

/** Parses a zero target's status (empty). */
export function parseZeroStatus(text: string): ZeroStatus {
  return emptyStatus('zero', text);
}

/** Parses an error target's status (empty). */
export function parseErrorStatus(text: string): ErrorStatus {
  return emptyStatus('error', text);
}

/** The zero target type. */
export const zeroModule: TargetModule<ZeroTarget, ZeroStatus> = { type: 'zero', parse: parseZero, parseStatus: parseZeroStatus };
/** The error target type. */
export const errorModule: TargetModule<ErrorTarget, ErrorStatus> = { type: 'error', parse: parseError, parseStatus: parseErrorStatus };
