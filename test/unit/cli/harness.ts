import { Readable } from 'node:stream';
import { main } from '../../../ts/cli/main';
import type { CliWritable } from '../../../ts/cli/verb';

/** A stream that keeps what is written to it. */
export class Capture implements CliWritable {
  text = '';
  readonly isTTY: boolean;
  readonly columns: number | undefined;

  constructor(tty = false, columns?: number) {
    this.isTTY = tty;
    this.columns = columns;
  }

  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
}

/** What one in-process run of the command printed, and its exit code. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@link runCli}. */
export interface RunOptions {
  /** Text on stdin (empty by default). */
  stdin?: string;
  env?: Record<string, string | undefined>;
  /** stdout is a terminal. */
  tty?: boolean;
  signal?: AbortSignal;
}

/** Runs `devmapper ARGV` in this process (the same code path as the bin) and captures its output. */
export async function runCli(argv: readonly string[], options: RunOptions = {}): Promise<CliRun> {
  const stdout = new Capture(options.tty ?? false, options.tty === true ? 100 : undefined);
  const stderr = new Capture();
  const code = await main(argv, {
    stdout,
    stderr,
    stdin: Readable.from([Buffer.from(options.stdin ?? '')]),
    env: options.env ?? {},
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
  });
  return { code, stdout: stdout.text, stderr: stderr.text };
}
