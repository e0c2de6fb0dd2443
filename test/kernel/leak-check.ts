/**
 * Root hooks for the kernel suite (mocha --require): once every test and its cleanup has run,
 * the process has no more file descriptors and no more threads than before the suite (after a
 * garbage collection, where `--expose-gc` allows one: nothing may wait for it). A leak fails
 * the run here, naming what leaked.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { stat } from 'node:fs/promises';

interface Snapshot {
  fds: Map<string, string>;
  threads: number;
}

function snapshot(): Snapshot {
  const fds = new Map<string, string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      fds.set(fd, readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      // the directory's own fd, gone by now
    }
  }
  return { fds, threads: readdirSync('/proc/self/task').length };
}

let baseline: Snapshot | undefined;

function leaks(now: Snapshot, base: Snapshot): string[] {
  const out: string[] = [];
  if (now.threads > base.threads) out.push(`${now.threads - base.threads} more thread(s)`);
  for (const [fd, target] of now.fds) if (base.fds.get(fd) !== target) out.push(`fd ${fd} -> ${target}`);
  return out;
}

export const mochaHooks = {
  async beforeAll(): Promise<void> {
    // What Node opens once, at first use, is not a leak: libuv's threadpool (all its threads
    // start at once) and, at the first asynchronous child process, its /dev/null and SIGCHLD
    // fds. Start them before counting.
    await Promise.all(Array.from({ length: 8 }, () => stat('/')));
    await new Promise((resolve) => execFile('true', resolve));
    baseline = snapshot();
  },
  async afterAll(): Promise<void> {
    if (baseline === undefined) return;
    const base = baseline;
    let found: string[] = [];
    // Handles close asynchronously (child process pipes, FileHandles): give them a moment.
    for (let i = 0; i < 100; i++) {
      found = leaks(snapshot(), base);
      if (found.length === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`leak check: the kernel suite left ${found.join(', ')}`);
  },
};
