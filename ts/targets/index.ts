import { linear, parseLinear } from './linear';
import { error, parseError, parseZero, zero } from './simple';
import type { TargetParser } from './types';

export type { Target, TargetParser } from './types';
export type { LinearOptions, LinearTarget } from './linear';
export type { ZeroTarget, ErrorTarget } from './simple';

/** Builders of typed targets, named after the kernel's target types. */
export const targets = {
  /** `linear <device> <offset>`. */
  linear,
  /** `zero`. */
  zero,
  /** `error`. */
  error,
};

/** Parsers of the target types the library models, by kernel type name. */
export const targetParsers: Readonly<Record<string, TargetParser>> = {
  linear: parseLinear,
  zero: parseZero,
  error: parseError,
};
