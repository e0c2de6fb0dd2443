// A real udev for the kernel tests that need one: systemd-udevd started with dmsetup's rules,
// stopped again (and /run/udev cleaned) after, so that the other tests see no udev (the
// sandbox's /run is a tmpfs of its own: udev is absent there unless a test starts it).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';

const UDEVD = ['/usr/lib/systemd/systemd-udevd', '/lib/systemd/systemd-udevd'];
/** dmsetup's rules (Debian's names for 10-dm, 13-dm-disk and 95-dm-notify). */
export const DM_RULES = ['/lib/udev/rules.d/55-dm.rules', '/lib/udev/rules.d/60-persistent-storage-dm.rules', '/lib/udev/rules.d/95-dm-notify.rules'];

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Waits (bounded) for `check`; false when it never held. */
function until(check: () => boolean, ms: number): boolean {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) return false;
    sleep(20);
  }
  return true;
}

/** Starts systemd-udevd as a daemon and waits for its control socket; throws if it cannot. */
export function startUdev(): void {
  if (existsSync('/run/udev/control')) throw new Error('udev already runs (/run/udev/control exists): the udev tests start their own');
  for (const rule of DM_RULES) if (!existsSync(rule)) throw new Error(`dmsetup's udev rule ${rule} is not installed (Debian package dmsetup)`);
  const udevd = UDEVD.find((p) => existsSync(p));
  if (udevd === undefined) throw new Error(`systemd-udevd not found at ${UDEVD.join(', ')} (Debian package udev)`);
  execFileSync('mkdir', ['-p', '/run/udev/rules.d']);
  // lvm2's 69-lvm.rules would run pvscan and vgchange -aay with the host's /etc/lvm on every
  // loop and device-mapper event: an empty rule of the same name in /run masks it.
  writeFileSync('/run/udev/rules.d/69-lvm.rules', '# masked for the kernel tests: see udev-helpers.ts\n');
  const r = spawnSync(udevd, ['--daemon'], { encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) throw new Error(`${udevd} --daemon failed (${String(r.status ?? r.signal)}): ${r.stderr}`);
  if (!until(() => existsSync('/run/udev/control'), 10_000)) throw new Error('systemd-udevd started but /run/udev/control never appeared');
}

/**
 * Waits until udev has handled every queued event (`udevadm settle`): bounded generously, since
 * a busy machine (a sanitizer run, other sandboxes) can hold udev's workers up for seconds.
 * Between tries of 10 s udevd is pinged: an event it puts back in its queue (a device it found
 * locked) is only taken up again when something else wakes it, as systemd issue 24439
 * describes, and udevd was once seen idle, no worker left, its queue not empty, for the whole
 * 120 s beside a busy Valgrind boot. A settle that needed a ping says so on
 * stderr; one that never ends says what udevd, its queue, the devices and the semaphores were
 * doing, with udevd's log from the first ping on.
 */
export function settleUdev(): void {
  const end = Date.now() + 120_000;
  let pings = 0;
  for (;;) {
    const r = spawnSync('udevadm', ['settle', '--timeout=10'], { stdio: 'ignore', timeout: 20_000 });
    if (r.status === 0) {
      if (pings > 0) {
        process.stderr.write(`      (udev settled after ${pings} ping${pings === 1 ? '' : 's'} to udevd)\n`);
        spawnSync('udevadm', ['control', '--log-priority=info'], { stdio: 'ignore', timeout: 10_000 });
      }
      return;
    }
    if (Date.now() > end) throw new Error(`udevadm settle did not return within 120 s (status ${String(r.status ?? r.signal)}; ${pings} pings to udevd between tries)\n${udevState()}`);
    if (pings === 0) spawnSync('udevadm', ['control', '--log-priority=debug'], { stdio: 'ignore', timeout: 10_000 });
    spawnSync('udevadm', ['control', '--ping'], { stdio: 'ignore', timeout: 10_000 });
    pings++;
  }
}

/** What udev and the devices were doing (for a settle that did not end): each part best-effort. */
function udevState(): string {
  const part = (title: string, command: string, args: string[]): string => {
    const r = spawnSync(command, args, { encoding: 'utf8', timeout: 10_000 });
    return `--- ${title} (${[command, ...args].join(' ')}):\n${r.stdout + r.stderr || `(nothing; ${r.error?.message ?? `status ${String(r.status)}`})`}`;
  };
  return [
    part("udevd and its workers' children", 'ps', ['-eo', 'pid,ppid,stat,etimes,wchan:24,args']),
    part('queued events', 'ls', ['-la', '/run/udev']),
    part('devices', 'dmsetup', ['info', '-c', '-o', 'name,attr,open,events,devno']),
    part('semaphores', 'ipcs', ['-s']),
    part("udevd's log", 'sh', ['-c', 'dmesg | grep -i udev | tail -n 80']),
  ].join('\n');
}

/**
 * Runs `body` with udev's exec queue stopped (its events queued, none handled), then starts
 * the queue and waits for udev to settle. A failure of `body` is the one reported; a settle
 * that fails after it is written to stderr beside it, never put in its place.
 */
export async function withExecQueueStopped(body: () => Promise<void>): Promise<void> {
  execFileSync('udevadm', ['control', '--stop-exec-queue']);
  let failure: { error: unknown } | undefined;
  try {
    await body();
  } catch (e) {
    failure = { error: e };
  }
  execFileSync('udevadm', ['control', '--start-exec-queue']);
  try {
    settleUdev();
  } catch (settle) {
    if (failure === undefined) throw settle;
    process.stderr.write(`      (after the test's failure: ${settle instanceof Error ? settle.message : String(settle)})\n`);
  }
  if (failure !== undefined) throw failure.error;
}

/** Stops udevd (udevadm control --exit), waits for it to go, and removes /run/udev. */
export function stopUdev(): void {
  try {
    execFileSync('udevadm', ['control', '--start-exec-queue'], { stdio: 'ignore', timeout: 10_000 });
    settleUdev();
    execFileSync('udevadm', ['control', '--exit'], { stdio: 'ignore', timeout: 15_000 });
  } finally {
    until(() => spawnSync('pgrep', ['-x', 'systemd-udevd']).status !== 0, 10_000);
    rmSync('/run/udev', { recursive: true, force: true });
  }
  if (existsSync('/run/udev/control')) throw new Error('/run/udev/control is still there after stopping udev');
}

/** The SysV semaphores whose key carries libdevmapper's cookie magic (`ipcs -s`). */
export function cookieSemaphores(): string[] {
  const out = execFileSync('ipcs', ['-s'], { encoding: 'utf8' });
  return out.split('\n').filter((line) => /^0x0d4d[0-9a-f]{4}\s/i.test(line.trim()));
}

/** The cookies `dmsetup udevcookies` lists (its header left out). */
export function udevCookies(): string[] {
  const out = execFileSync('dmsetup', ['udevcookies'], { encoding: 'utf8' });
  return out.split('\n').filter((line) => /^0x/i.test(line.trim()));
}

/** `udevadm info`'s properties of a device node (E: lines) as a map. */
export function udevProperties(node: string): Map<string, string> {
  const out = execFileSync('udevadm', ['info', '--query=property', node], { encoding: 'utf8' });
  const props = new Map<string, string>();
  for (const line of out.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) props.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return props;
}
