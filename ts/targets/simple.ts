import { DmParseError } from '../errors';
import type { Target } from './types';

/** `zero`: reads return zeroes, writes are discarded. */
export interface ZeroTarget extends Target {
  readonly type: 'zero';
}

/** `error`: every I/O fails. */
export interface ErrorTarget extends Target {
  readonly type: 'error';
}

/** Builds a zero target (no parameters). */
export function zero(): ZeroTarget {
  return { type: 'zero', params: '' };
}

/** Builds an error target (no parameters). */
export function error(): ErrorTarget {
  return { type: 'error', params: '' };
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
