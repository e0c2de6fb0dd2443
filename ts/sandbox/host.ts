/**
 * Facts about the host that a sandbox run depends on.
 * @internal
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { packageRoot } from '../binding';

/** The first of `candidates` that is an executable file, or undefined. */
export function findExecutable(candidates: readonly string[]): string | undefined {
  for (const c of candidates) {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      if (fs.statSync(c).isFile()) return c;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

/** Mount options of the mount at exactly `mountPoint`, from /proc/self/mountinfo. */
function mountOf(mountPoint: string): { fsType: string; options: string[] } | undefined {
  let text: string;
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return undefined;
  }
  let found: { fsType: string; options: string[] } | undefined;
  for (const line of text.split('\n')) {
    // "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue"
    const [left, right] = line.split(' - ');
    if (left === undefined || right === undefined) continue;
    const fields = left.split(' ');
    const [fsType] = right.split(' ');
    if (fields[4] !== mountPoint || fsType === undefined) continue;
    found = { fsType, options: (fields[5] ?? '').split(',') }; // the last one mounted wins
  }
  return found;
}

/**
 * The environment for linux.uml itself. UML backs the guest's memory with a file in $TMPDIR,
 * else /dev/shm when it is a tmpfs, and exits if that place is mounted noexec (Docker's
 * /dev/shm is noexec and 64 MiB): point it at the host's temporary directory in that case.
 */
export function umlEnvironment(memoryMiB: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  const shim = xstateShim();
  if (shim !== undefined) env['LD_PRELOAD'] = [shim, env['LD_PRELOAD']].filter((p) => p !== undefined && p !== '').join(':');
  if (env['TMPDIR'] !== undefined || env['TMP'] !== undefined || env['TEMP'] !== undefined) return env;
  const shm = mountOf('/dev/shm');
  let shmFits = false;
  if (shm !== undefined && shm.fsType === 'tmpfs' && !shm.options.includes('noexec')) {
    try {
      const s = fs.statfsSync('/dev/shm');
      shmFits = s.bavail * s.bsize >= memoryMiB * 1024 * 1024;
    } catch {
      shmFits = false;
    }
  }
  if (!shmFits) env['TMPDIR'] = os.tmpdir();
  return env;
}

/**
 * The FPU-state wrapper preloaded into linux.uml (native/uml_xstate.c: without it UML 6.1
 * panics at its first guest process on hosts with AVX-512 or AMX), as built with the addon or
 * shipped beside the prebuild; undefined when neither is there.
 */
export function xstateShim(): string | undefined {
  const root = packageRoot();
  const candidates = [path.join(root, 'build', 'Release', 'uml_xstate.so'), path.join(root, 'prebuilds', `linux-${process.arch}`, 'uml_xstate.so')];
  return candidates.find((c) => fs.existsSync(c));
}

/** Host directories that the guest does not see as the host does (it mounts over them). */
const GUEST_MOUNTS = ['/run', '/proc', '/sys', '/dev'];

/** Whether the guest sees `path` as the host does, through hostfs. */
export function visibleInGuest(path: string): boolean {
  return !GUEST_MOUNTS.some((m) => path === m || path.startsWith(`${m}/`));
}

/** A parent directory for the run's private directory: visible in the guest, plain path. */
export function privateBase(): string {
  // The path goes on the kernel command line (init=): keep it free of spaces and quotes.
  for (const base of [os.tmpdir(), '/tmp', '/var/tmp']) {
    if (/^\/[A-Za-z0-9._/-]*$/.test(base) && visibleInGuest(base) && isWritableDir(base)) return base;
  }
  return os.tmpdir();
}

function isWritableDir(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
    return fs.statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/** Process ids of the host processes in process group `pgid`. */
export function processGroupMembers(pgid: number): number[] {
  const members: number[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return members;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z') members.push(Number(e));
  }
  return members;
}

/** Kills every process of group `pgid`; ignores a group that is already gone. */
export function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/**
 * Kills group `pgid` until none of its processes is left (UML's ptrace-stopped helpers take a
 * moment to die), for at most `limitMs`. Resolves to the pids still there (none, normally).
 */
export async function killGroupAndWait(pgid: number, limitMs = 5000): Promise<number[]> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    killGroup(pgid);
    const left = processGroupMembers(pgid);
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
