// Asynchronous ioctls run on the addon's own I/O threads: never on Node's threadpool, and a
// slow one (a suspend that waits for delayed I/O to flush) holds up nothing else.
import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { NativeCallResult, NativeRequest, NativeResult } from '../../binding';
import { fromCall } from '../../ts/answer';
import { binding } from '../../ts/binding';
import { Command, DeviceMapper, Table, targets, type DeviceInfo } from '../../ts/index';
import { TestContext, devName, eventually, readAnswer, requestsOfEveryPayload, scratchDir, timeoutAtLeast } from './helpers';

const root = resolve(__dirname, '..', '..', '..', '..');

/**
 * This process's threads. All of them, not only those named devmapper-io: a thread just made
 * may not have named itself yet (the pool's supervisor sleeps until work waits).
 */
function threads(): number {
  return readdirSync('/proc/self/task').length;
}

/** The nice value of a thread of this process, as the kernel reports it (/proc/self/task/<tid>/stat, field 19). */
function niceOf(tid: string): number {
  return Number(statFields(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8'))[19 - 3]);
}

/** A /proc stat line's fields from field 3 (state) on: "tid (comm) state ...", the comm may hold anything. */
function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/**
 * The nice values of this process's devmapper-io threads, but those in `others` (the ids of
 * the threads that were there before: other clients' pools).
 */
function ioThreadNices(others: ReadonlySet<string> = new Set()): number[] {
  return readdirSync('/proc/self/task')
    .filter((tid) => {
      if (others.has(tid)) return false;
      try {
        return readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() === 'devmapper-io';
      } catch {
        return false; // a thread that has just ended
      }
    })
    .map(niceOf);
}

/**
 * Each of this process's threads, a line each: its id, name, state (field 3), nice value and
 * kernel wait channel, and whether it is in `others` (a failure's own account of the pool).
 */
function threadReport(others: ReadonlySet<string>): string {
  const read = (tid: string, file: string): string => {
    try {
      return readFileSync(`/proc/self/task/${tid}/${file}`, 'utf8').trim();
    } catch {
      return '?';
    }
  };
  return readdirSync('/proc/self/task')
    .map((tid) => {
      const stat = read(tid, 'stat');
      const fields = stat === '?' ? [] : statFields(stat);
      const state = fields[0] ?? '?';
      const nice = fields[19 - 3] ?? '?';
      return `  ${tid} ${read(tid, 'comm')} state ${state} nice ${nice} wchan ${read(tid, 'wchan') || '-'}${others.has(tid) ? ' (there before)' : ''}`;
    })
    .join('\n');
}

/** The ids of this process's threads now. */
function threadIds(): Set<string> {
  return new Set(readdirSync('/proc/self/task'));
}

/** The process's nice value (its main thread's). */
const processNice = (): number => niceOf(String(process.pid));

/** A niced I/O thread's nice value: 10 above the main thread's, at most 19. */
const nicedIo = (): number => Math.min(processNice() + 10, 19);

/** The writes in flight on a device, as the kernel counts them (/sys/block/dm-N/inflight). */
function writesInFlight(d: DeviceInfo): number {
  const [, writes] = readFileSync(`/sys/block/${d.path.replace('/dev/', '')}/inflight`, 'utf8').trim().split(/\s+/);
  return Number(writes);
}

/**
 * Waits until each device has its write in flight (held in the delay device below it): spawning
 * dd costs a lot inside the sandbox, the more so on a loaded host, so a fixed pause may end
 * before the writes reach the kernel, and a suspend would then have nothing to wait for.
 */
async function writesHeld(devices: readonly DeviceInfo[]): Promise<void> {
  const held = await eventually(() => devices.every((d) => writesInFlight(d) >= 1), 30000);
  expect(held, 'the direct writes never reached the kernel').to.equal(true);
}

/** Longer than any test waits: a write held this long is released by suspending its delay device. */
const HOLD_MS = 60000;

describe('the I/O threads of asynchronous calls', function () {
  const t = TestContext.perTest();

  it('slow suspends occupy neither Node\'s threadpool nor the calls on other devices', async function () {
    timeoutAtLeast(this, 60000);
    const under = await t.dm.create(devName('io-zero'), { table: new Table([{ start: 0, length: 2048, target: targets.zero() }]) });
    // More slow devices than Node's threadpool has threads (4): each a linear device over a
    // delay device. A suspend of the linear one waits for its I/O held in the delay below
    // (a delay device's own suspend would flush its queue at once: that is how the test
    // releases them, so no hold ends on a timer while the calls below are still being made).
    const delays: DeviceInfo[] = [];
    const slow: DeviceInfo[] = [];
    for (let i = 0; i < 6; i++) {
      const delay = await t.dm.create(devName(`io-delay${i}`), { table: new Table([{ start: 0, length: 2048, target: targets.delay({ read: { device: under.dev, offset: 0, delay: HOLD_MS } }) }]) });
      delays.push(delay);
      slow.push(await t.dm.create(devName(`io-slow${i}`), { table: new Table([{ start: 0, length: 2048, target: targets.linear({ device: delay.dev, offset: 0 }) }]) }));
    }
    const other = await t.dm.create(devName('io-other'), { table: new Table([{ start: 0, length: 8, target: targets.zero() }]) });
    // A direct write to each is held in its delay device; a suspend waits for it.
    const writers: ChildProcess[] = slow.map((d) => spawn('dd', ['if=/dev/zero', `of=${d.path}`, 'bs=4096', 'count=1', 'oflag=direct', 'status=none'], { stdio: 'ignore' }));
    const exited = writers.map((w) => new Promise<void>((r) => w.once('exit', () => r())));
    try {
      await writesHeld(slow);
      let done = 0;
      const suspends = slow.map((d) => t.dm.suspend(d.name).then((info) => {
        done++;
        return info;
      }));
      await new Promise((r) => setTimeout(r, 100)); // the suspends are in the kernel now
      // Node's threadpool: were the suspends on it, this would wait for their release below.
      let timer: NodeJS.Timeout | undefined;
      const statted = await Promise.race([stat(root).then(() => 'done'), new Promise((r) => (timer = setTimeout(() => r('starved'), 20000)))]);
      clearTimeout(timer);
      expect(statted, 'fs.stat waited for a suspend').to.equal('done');
      expect(done, 'a suspend ended while its write was held').to.equal(0);
      expect((await t.dm.info(other.name)).name).to.equal(other.name); // another device
      expect(done, 'info of another device waited for a suspend').to.equal(0);
      for (const d of delays) await t.dm.suspend(d.name); // sends the held writes on
      const infos = await Promise.all(suspends);
      for (const info of infos) expect(info.suspended).to.equal(true);
    } finally {
      for (const d of delays) await t.dm.suspend(d.name).catch(() => undefined);
      for (const d of [...delays, ...slow]) await t.dm.resume(d.name).catch(() => undefined);
      await Promise.all(exited);
    }
  });

  it('call() answers in the compact form what ioctl() answers as an object, payloads included; answers settled together share one header', async () => {
    const name = devName('io-compact');
    await t.dm.create(name, { table: new Table([{ start: 0, length: 8, target: targets.zero() }, { start: 8, length: 8, target: targets.error() }]) });
    const control = new (binding().Control)('/dev/mapper/control');
    try {
      const requests = requestsOfEveryPayload(name);
      const read = (r: NativeResult): Record<string, unknown> => readAnswer(r, name);
      const positional = (r: NativeRequest): Promise<NativeCallResult> =>
        control.call(r.cmd, r.flags, r.dev ?? 0, r.eventNr ?? 0, r.name ?? '', r.uuid ?? '', r.targets !== undefined || r.message !== undefined ? r : undefined);
      // All sent in one run of JavaScript: answered together, their numbers in one array.
      const [objects, compacts] = await Promise.all([Promise.all(requests.map((r) => control.ioctl(r))), Promise.all(requests.map(positional))]);
      for (const [i, request] of requests.entries()) {
        const object = read(objects[i] as NativeResult);
        const compact = read(fromCall(compacts[i] as NativeCallResult));
        for (const [key, value] of Object.entries(object)) expect(compact[key], `${request.cmd} ${key}`).to.deep.equal(value);
        for (const [key, value] of Object.entries(compact)) if (value !== undefined) expect(object[key], `${request.cmd} ${key}`).to.deep.equal(value);
      }
      const headers = new Set(compacts.map((c) => c[7]));
      expect(headers.size, 'headers of the answers settled together').to.be.below(requests.length);
      const ids = [...headers];
      expect(new Set(compacts.map((c) => `${ids.indexOf(c[7])}:${c[8]}`)).size, 'each answer its own words').to.equal(requests.length);
    } finally {
      await control.close();
    }
  });

  it('a Control dropped while its calls are in flight still answers them all (it is kept until the last answer)', async () => {
    const name = devName('io-dropped');
    await t.dm.create(name, { table: new Table([{ start: 0, length: 8, target: targets.zero() }]) });
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    if (typeof gc !== 'function') throw new Error('no gc()');
    for (let round = 0; round < 3; round++) {
      // The only reference to the Control is the one its calls keep.
      const answers = ((): Promise<NativeCallResult[]> => {
        const control = new (binding().Control)('/dev/mapper/control');
        return Promise.all(Array.from({ length: 64 }, () => control.call(Command.DEV_STATUS, 0, 0, 0, name, '', undefined)));
      })();
      Reflect.apply(gc, undefined, []);
      const done = await Promise.race([answers, new Promise<'stuck'>((r) => setTimeout(() => r('stuck'), 10000))]);
      expect(done, `round ${round}`).to.not.equal('stuck');
      if (done === 'stuck') return;
      expect(done.map((a) => a[0])).to.deep.equal(Array.from({ length: 64 }, () => name));
      Reflect.apply(gc, undefined, []);
    }
  });

  it('a burst of 64 fast calls starts no thread per call: one worker runs them (beside the pool\'s supervisor), niced while a queue waits behind it', async function () {
    const d = await t.dm.create(devName('io-burst'), { table: new Table([{ start: 0, length: 8, target: targets.zero() }]) });
    const before = threads();
    const others = threadIds();
    const dm = await DeviceMapper.open(); // a pool of its own
    try {
      for (let round = 0; round < 3; round++) {
        const infos = await Promise.all(Array.from({ length: 64 }, () => dm.info(d.name)));
        expect(infos.every((i) => i.name === d.name)).to.equal(true);
        expect(threads() - before, `I/O threads after burst ${round + 1}`).to.be.at.most(2);
      }
      // A worker with a queue behind its request runs niced, so that Node's threadpool and
      // this thread win the CPU when they wake: seen between two turns of the event loop while
      // a burst is answered (the answers come a group at a time, the loop let run between).
      const burst = Promise.all(Array.from({ length: 2000 }, () => dm.info(d.name)));
      const burstState = { ended: false };
      void burst.finally(() => (burstState.ended = true));
      let nicedDuringBurst = false;
      while (!burstState.ended && !nicedDuringBurst) {
        const nices = ioThreadNices(others);
        nicedDuringBurst = nices.length === 2 && nices.every((n) => n === nicedIo());
        await new Promise((r) => setImmediate(r));
      }
      await burst;
      expect(nicedDuringBurst, 'the worker ran niced while a burst waited behind it').to.equal(true);
      // A worker stays niced for 64 requests after the last with a queue behind it (bursts one
      // after another renice it twice in all), then runs at the process's priority (a call
      // awaited at a time is answered sooner so); the supervisor stays niced.
      for (let i = 0; i < 32; i++) await dm.info(d.name);
      expect(ioThreadNices(others), 'a worker 32 requests after the burst').to.deep.equal([nicedIo(), nicedIo()]);
      for (let i = 0; i < 64; i++) await dm.info(d.name);
      const nices = ioThreadNices(others).sort((a, b) => a - b);
      expect(nices, 'worker and supervisor').to.deep.equal([processNice(), nicedIo()].sort((a, b) => a - b));
    } finally {
      await dm.close();
    }
    expect(threads(), 'a closed client\'s pool has ended its threads').to.equal(before);
  });

  it('a niced worker gives the CPU away every 32 requests of a burst, and never for calls awaited one at a time (strace)', function () {
    timeoutAtLeast(this, 120000);
    // Per run: the DM_DEV_STATUS ioctls and the sched_yield calls of the threads that made them.
    const traced = (mode: string, count: number): { infos: number; yields: number } => {
      const trace = join(scratchDir(), `io-burst-${mode}.txt`);
      const r = spawnSync('strace', ['-f', '--seccomp-bpf', '-e', 'trace=ioctl,sched_yield', '-o', trace, process.execPath, join(root, 'test', 'kernel', 'fixtures', 'io-burst.js'), devName(`io-${mode}`), mode, String(count)], { encoding: 'utf8', timeout: 110000 });
      expect(`${r.stdout}${r.stderr}`).to.contain('finished');
      const lines = readFileSync(trace, 'utf8').split('\n');
      const pidOf = (line: string): string => /^(\d+)\s/.exec(line)?.[1] ?? '';
      const io = new Set(lines.filter((l) => l.includes(' DM_DEV_STATUS, ')).map(pidOf));
      io.delete('');
      return {
        infos: lines.filter((l) => l.includes(' DM_DEV_STATUS, ') && io.has(pidOf(l))).length,
        yields: lines.filter((l) => l.includes('sched_yield(') && io.has(pidOf(l))).length,
      };
    };
    // All 512 queued at once: the worker runs niced from the first, and yields before the
    // 33rd, the 65th and so on, 15 times (a second worker, were one started, counts its own).
    const burst = traced('burst', 512);
    expect(burst.infos, 'the burst\'s ioctls, on the I/O threads').to.equal(512);
    expect(burst.yields, 'yields during a burst of 512').to.be.within(12, 15);
    const serial = traced('serial', 100);
    expect(serial.infos, 'the awaited calls\' ioctls, on the I/O threads').to.equal(100);
    expect(serial.yields, 'yields for calls awaited one at a time').to.equal(0);
  });

  it('keeps the order of the calls on one device while another device\'s suspend stalls and the pool has grown', async function () {
    timeoutAtLeast(this, 60000);
    const under = await t.dm.create(devName('io-zero'), { table: new Table([{ start: 0, length: 2048, target: targets.zero() }]) });
    const delays: DeviceInfo[] = [];
    const slowDevice = async (i: number): Promise<DeviceInfo> => {
      const d = await t.dm.create(devName(`io-delay${i}`), { table: new Table([{ start: 0, length: 2048, target: targets.delay({ read: { device: under.dev, offset: 0, delay: HOLD_MS } }) }]) });
      delays.push(d);
      return t.dm.create(devName(`io-slow${i}`), { table: new Table([{ start: 0, length: 2048, target: targets.linear({ device: d.dev, offset: 0 }) }]) });
    };
    // Four suspends that stall, all over the same pool, until the test releases their writes
    // (the suspend of a delay device sends its held writes on): three short ones (the pool
    // grows a worker for each, idle again afterwards) and a long one.
    const short = [await slowDevice(0), await slowDevice(1), await slowDevice(2)];
    const long = await slowDevice(3);
    const [shortDelays, longDelay] = [delays.slice(0, 3), delays[3]];
    if (longDelay === undefined) throw new Error('the long delay device was not made');
    const b = await t.dm.create(devName('io-b'), { table: new Table([{ start: 0, length: 8, target: targets.zero() }]) });
    const writers: ChildProcess[] = [...short, long].map((d) => spawn('dd', ['if=/dev/zero', `of=${d.path}`, 'bs=4096', 'count=1', 'oflag=direct', 'status=none'], { stdio: 'ignore' }));
    const exited = writers.map((w) => new Promise<void>((r) => w.once('exit', () => r())));
    const before = threads();
    const others = threadIds();
    const dm = await DeviceMapper.open();
    try {
      await writesHeld([...short, long]);
      let longDone = false;
      const longSuspend = dm.suspend(long.name).then((info) => {
        longDone = true;
        return info;
      });
      const shortSuspends = short.map((d) => dm.suspend(d.name));
      // The supervisor and a worker, and at least one more worker beside the stalled one.
      const grown = await eventually(() => threads() - before >= 3, 10000);
      expect(grown, `the pool grew while the suspends stalled (${threads() - before} more threads)`).to.equal(true);
      // The workers the supervisor started run at the process's priority (no queue waits
      // behind their requests), not at the supervisor's own: only the supervisor is niced. A
      // thread it starts has its name and nice value from the clone, and resets the nice value
      // as its first step: read once every new thread has (bounded: one that never did fails).
      const onlySupervisorNiced = (): boolean => {
        const n = ioThreadNices(others);
        return n.length >= 3 && n.filter((x) => x === nicedIo()).length === 1;
      };
      await eventually(onlySupervisorNiced, 5000);
      const nices = ioThreadNices(others);
      const report = `the process's threads (niced: ${nicedIo()}):\n${threadReport(others)}`;
      expect(nices.length, `devmapper-io threads; ${report}`).to.be.at.least(3);
      expect(nices.filter((n) => n === nicedIo()), `niced threads (the supervisor); ${report}`).to.have.length(1);
      expect(nices.filter((n) => n !== nicedIo()), 'the workers').to.deep.equal(nices.filter((n) => n !== nicedIo()).map(processNice));
      for (const d of shortDelays) await t.dm.suspend(d.name);
      for (const info of await Promise.all(shortSuspends)) expect(info.suspended).to.equal(true);
      expect(longDone, 'the long suspend is over already: the test proves nothing').to.equal(false);
      for (let i = 0; i < 3; i++) {
        // Issued together, without awaiting: the info runs after the suspend (resume) of B.
        const [suspended, afterSuspend] = await Promise.all([dm.suspend(b.name), dm.info(b.name)]);
        expect(suspended.suspended).to.equal(true);
        expect(afterSuspend.suspended, 'info issued after suspend saw B not suspended').to.equal(true);
        const [resumed, afterResume] = await Promise.all([dm.resume(b.name), dm.info(b.name)]);
        expect(resumed.suspended).to.equal(false);
        expect(afterResume.suspended, 'info issued after resume saw B suspended').to.equal(false);
      }
      expect(longDone, 'the calls on B waited for the long suspend').to.equal(false);
      await t.dm.suspend(longDelay.name);
      expect((await longSuspend).suspended).to.equal(true);
      for (const d of [...delays, ...short, long]) await dm.resume(d.name);
      // Idle workers end after 2 s; the last one (and the supervisor) stay. Waited for, not
      // slept on: on a loaded host their exit can come later than 2 s.
      await eventually(() => threads() - before <= 2, 10000);
      expect(threads() - before, 'idle workers have ended').to.be.at.most(2);
    } finally {
      for (const d of delays) await t.dm.suspend(d.name).catch(() => undefined);
      for (const d of [...delays, ...short, long]) await dm.resume(d.name).catch(() => undefined);
      await dm.close();
      await Promise.all(exited);
    }
  });

  it('an idle client keeps nothing alive: a script that never closes it still ends', () => {
    const lib = join(root, 'build', 'js', 'ts', 'index.js');
    const script = `const { DeviceMapper } = require(${JSON.stringify(lib)}); DeviceMapper.open().then(async (dm) => { await dm.listDevices(); await dm.info('${devName('nobody')}').catch(() => undefined); console.log('done'); });`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30000 });
    expect(r.signal, 'killed by the timeout: something kept the event loop alive').to.equal(null);
    expect(r.stdout.trim()).to.equal('done');
    expect(r.status).to.equal(0);
  });
});
