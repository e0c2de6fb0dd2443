/**
 * Why a sandbox run failed (the command's own failure is not an error: it is
 * {@link SandboxResult.exitCode}).
 *
 * - `ENOLINUX`: a host program the sandbox needs is missing (`linux.uml`, `modprobe`, `perl`,
 *   `systemd-udevd`); the message names the Debian package to install.
 * - `EBOOT`: the kernel never reached the command (see {@link SandboxError.consoleTail}).
 * - `EMODULE`: a kernel module could not be loaded inside the sandbox.
 * - `ESPAWN`: the command could not be started inside (not found, not executable, bad cwd).
 * - `ECRASH`: the sandbox ended while the command ran without reporting its status
 *   (kernel panic, out of memory, the instance was killed from outside).
 * - `ETIMEDOUT`: {@link SandboxOptions.timeout} expired; the instance was killed.
 * - `EABORT`: {@link SandboxOptions.signal} was aborted; the instance was killed.
 */
export type SandboxErrorCode = 'ENOLINUX' | 'EBOOT' | 'EMODULE' | 'ESPAWN' | 'ECRASH' | 'ETIMEDOUT' | 'EABORT';

/** Fields of a {@link SandboxError} besides its message. */
export interface SandboxErrorDetails {
  /** The last lines of the kernel console (empty when the kernel never started). */
  consoleTail?: string;
  /** What the command had written before the failure. */
  output?: string;
}

/**
 * A failure of the sandbox itself, with a string {@link SandboxError.code} to branch on.
 *
 * @example
 * ```ts
 * try { await runInSandbox(['true']); }
 * catch (e) { if (e instanceof SandboxError && e.code === 'ENOLINUX') console.error(e.message); }
 * ```
 */
export class SandboxError extends Error {
  /** What went wrong, see {@link SandboxErrorCode}. */
  readonly code: SandboxErrorCode;
  /** The last lines of the kernel console, for diagnosing boot failures and crashes. */
  readonly consoleTail: string;
  /** What the command had written before the failure (empty when it never started). */
  readonly output: string;

  /**
   * A sandbox failure.
   * @param code - what went wrong.
   * @param message - a sentence for people.
   * @param details - the kernel console's last lines and the command's output, when known.
   */
  constructor(code: SandboxErrorCode, message: string, details: SandboxErrorDetails = {}) {
    super(message);
    this.name = 'SandboxError';
    this.code = code;
    this.consoleTail = details.consoleTail ?? '';
    this.output = details.output ?? '';
  }
}
