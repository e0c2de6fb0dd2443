/**
 * A target of a table row: its kernel type name and its parameter string. Typed targets
 * (made by the builders in `targets`) add their fields; a row of a type the library does not
 * model yet stays a plain `{ type, params }`.
 */
export interface Target {
  /** The kernel's target type ('linear', 'thin-pool'). */
  readonly type: string;
  /** The parameter string, exactly as the kernel takes it. */
  readonly params: string;
}

/** A target type's parser: params text to its typed target. Throws DmParseError. */
export type TargetParser = (params: string) => Target;
