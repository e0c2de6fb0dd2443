import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';

/** The source tree: compiled tests run from build/js/test/kernel/workflows; the package and examples stay in the source tree. */
export const root = resolve(__dirname, '..', '..', '..', '..', '..');

/** The error a promise rejects with (fails when it resolves or rejects with something that is not an Error). */
export async function rejectionOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    if (e instanceof Error) return e;
    throw e;
  }
  throw new Error('resolved, expected a rejection');
}

/** What `call` throws or rejects with (undefined when it does neither). */
export async function thrownBy(call: () => unknown): Promise<unknown> {
  try {
    await call();
  } catch (e) {
    return e;
  }
  return undefined;
}

/** dd with direct I/O; its stderr when it fails. */
export function ddStatus(args: string[]): { ok: boolean; stderr: string } {
  try {
    execFileSync('dd', [...args, 'status=none'], { stdio: ['ignore', 'ignore', 'pipe'] });
    return { ok: true, stderr: '' };
  } catch (e) {
    const stderr: unknown = e instanceof Error && 'stderr' in e ? e.stderr : undefined;
    return { ok: false, stderr: Buffer.isBuffer(stderr) ? stderr.toString() : String(e) };
  }
}
