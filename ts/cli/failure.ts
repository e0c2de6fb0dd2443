/**
 * How a verb's failure is told: its exit code and the line on stderr
 * (`devmapper: remove vol: EBUSY (device or resource busy)`).
 * @packageDocumentation
 */
import { DmClosedError, DmError, DmParseError } from '../errors';
import { CliError, ExitCode, UsageError } from './verb';

/** A failure as the command reports it. */
export interface Failure {
  /** The exit code. */
  readonly exitCode: number;
  /** The device the failure is about (printed after the verb), when known. */
  readonly device?: string;
  /** The text after `devmapper: VERB DEVICE: ` (or `devmapper: VERB: `, `devmapper: `). */
  readonly message: string;
  /** Print the usage of this verb after the message ('' for the command's own usage). */
  readonly usageOf: string | undefined;
}

/** The errno part of a DmError: `EBUSY (device or resource busy)`, and the kernel's detail if any. */
export function describeDmError(error: DmError): string {
  let rest = error.message;
  const prefix = [error.command ?? error.syscall, error.device].filter((s) => s !== undefined).join(' ');
  if (rest.startsWith(`${prefix}: `)) rest = rest.slice(prefix.length + 2);
  else {
    const colon = rest.indexOf(': ');
    if (colon >= 0 && error.command !== undefined && rest.startsWith(error.command)) rest = rest.slice(colon + 2);
  }
  if (rest === '' || rest === error.code) return error.code;
  return `${error.code} (${rest.charAt(0).toLowerCase()}${rest.slice(1)})`;
}

/**
 * Maps an error thrown by a verb to its exit code and message. `device` names what the verb
 * was about when the error does not (the first operand, usually).
 */
export function failureOf(error: unknown, verb: string | undefined, device: string | undefined): Failure {
  if (error instanceof UsageError) return { exitCode: ExitCode.usage, message: error.message, usageOf: error.verb ?? verb ?? '' };
  if (error instanceof CliError) return { exitCode: error.exitCode, message: error.message, usageOf: undefined };
  if (error instanceof DmError) {
    const about = error.device ?? device;
    const rollback = error.rollbackError === undefined ? '' : `; rolling back failed too: ${error.rollbackError.message}`;
    return {
      // A table load's ENXIO may be about a device the table names, not the one being loaded.
      exitCode: error.code === 'ENXIO' && error.command !== 'DM_TABLE_LOAD' ? ExitCode.notFound : ExitCode.failure,
      ...(about !== undefined ? { device: about } : {}),
      message: describeDmError(error) + rollback,
      usageOf: undefined,
    };
  }
  // The library's checks of input, made before any ioctl ("Expected X for Y but received Z"):
  // bad arguments, nothing was done. Another TypeError is a fault, not the user's: exit 1.
  if (error instanceof DmParseError || ((error instanceof TypeError || error instanceof RangeError) && error.message.startsWith('Expected '))) {
    return { exitCode: ExitCode.usage, message: error.message, usageOf: verb ?? '' };
  }
  if (error instanceof DmClosedError) return { exitCode: ExitCode.failure, message: error.message, usageOf: undefined };
  if (error instanceof Error && error.name === 'AbortError') return { exitCode: ExitCode.interrupted, message: 'interrupted', usageOf: undefined };
  const message = error instanceof Error ? error.message : String(error);
  return { exitCode: ExitCode.failure, message, usageOf: undefined };
}
