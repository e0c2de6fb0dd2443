/**
 * A target of a table row: its kernel type name and its parameter string. Typed targets
 * (made by the builders in `targets`, or parsed) add their fields, and their `params` is
 * always formatted from those fields the way the kernel prints them back; a row of a type the
 * library does not model stays a plain `{ type, params }`.
 */
export interface Target {
  /** The kernel's target type ('linear', 'thin-pool'). */
  readonly type: string;
  /** The parameter string, exactly as the kernel takes it. */
  readonly params: string;
}

/** A target type's parser: params text to its typed target. Throws DmParseError. */
export type TargetParser = (params: string) => Target;

/** What every status has: its type, the kernel's text, and whether the library typed it. */
export interface TargetStatusBase {
  /** The target type the status belongs to. */
  readonly type: string;
  /** The status text exactly as the kernel gave it. */
  readonly raw: string;
  /** True for a typed status (its fields follow), false for a raw one. */
  readonly known: boolean;
}

/**
 * The status of a target type the library does not model, or whose text it could not read
 * (a newer kernel's shape): the words as the kernel gave them.
 */
export interface RawTargetStatus extends TargetStatusBase {
  readonly known: false;
  /** The status words. */
  readonly words: readonly string[];
}

/** One target type's module: its parsers, registered by kernel type name. */
export interface TargetModule<T extends Target = Target, S extends TargetStatusBase = TargetStatusBase> {
  /** The kernel's type name. */
  readonly type: string;
  /** Params text to the typed target. Throws DmParseError. */
  readonly parse: (params: string) => T;
  /** Status text (`dmsetup status` after the row's start, length and type) to the typed status. Throws DmParseError. */
  readonly parseStatus: (text: string) => S;
  /**
   * The kernel's rules on a row's length for this type (striped: whole chunks on every
   * stripe), checked by `Table` before any ioctl. Throws RangeError naming `name`.
   */
  readonly checkLength?: (target: Target, length: number, name: string) => void;
  /**
   * The params text with its secrets hidden (crypt: the key zeroed, as `dmsetup table` shows
   * it without `--showkeys`), for the text that errors carry and for display
   * (`Table#redacted`). Absent: nothing to hide.
   */
  readonly redact?: (params: string) => string;
  /**
   * Whether these params carry a secret (crypt: always; integrity: an algorithm key), so that
   * a table holding them goes with DM_SECURE_DATA (`Table#holdsSecrets`). Absent: never.
   */
  readonly holdsSecret?: (params: string) => boolean;
}
