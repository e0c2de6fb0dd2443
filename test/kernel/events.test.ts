import { expect } from 'chai';
import { getEventListeners } from 'node:events';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stat } from 'node:fs/promises';
import { hookControl } from './hooks';
import { DeviceMapper, DmError, Table, type DeviceEvent, type LoopDevice } from '../../ts/index';
import { TestContext, devName, threadsButIo, timeoutAtLeast } from './helpers';

// A multipath device over one loop path: failing the path is a table event (dm-mpath
// raises it), which is what DEV_WAIT and DM_DEV_ARM_POLL report.
async function multipath(dm: DeviceMapper, loop: LoopDevice, sectors: number): Promise<string> {
  const name = devName('mp');
  const params = `0 0 1 1 round-robin 0 1 1 ${loop.devString} 1`;
  await dm.create(name, { table: new Table([{ start: 0, length: sectors, type: 'multipath', params }]) });
  return name;
}

describe('events in the kernel', function () {
  const t = TestContext.perTest();

  it('waitEvent returns after an event, with the new event number', async () => {
    const loop = await t.fx.loop(2048);
    const name = await multipath(t.dm, loop, 2048);
    const { eventNr } = await t.dm.info(name);
    let settled = false;
    const waiting = t.dm.waitEvent(name, eventNr).then((info) => {
      settled = true;
      return info;
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(settled).to.equal(false);
    await t.dm.message(name, `fail_path ${loop.devString}`);
    const info = await waiting;
    expect(info.name).to.equal(name);
    expect(info.eventNr).to.be.greaterThan(eventNr);
    expect((await t.dm.status(name))[0]?.status.raw).to.match(/ F /);
    // Already past: returns at once.
    expect((await t.dm.waitEvent(name, eventNr)).eventNr).to.equal(info.eventNr);
  });

  it('waitEvent ends with the abort reason when its signal aborts, and the event loop stays free meanwhile', async () => {
    const name = devName('waitabort');
    await t.dm.create(name, { table: new Table([{ start: 0, length: 8, type: 'zero', params: '' }]) });
    const { eventNr } = await t.dm.info(name);
    const controller = new AbortController();
    const waiting = t.dm.waitEvent(name, eventNr, { signal: controller.signal }).catch((x: unknown) => x);
    // Other calls go on while the wait is parked (it is on the addon's own thread).
    const infos = await Promise.all(Array.from({ length: 8 }, () => t.dm.info(name)));
    expect(infos.length).to.equal(8);
    controller.abort();
    const e = await waiting;
    expect(e).to.be.instanceOf(Error);
    expect(e).to.have.property('name', 'AbortError');
  });

  it('parked waits never hold Node\'s threadpool: with more waits than pool threads, fs and device calls still complete', async () => {
    const name = devName('pool');
    await t.dm.create(name, { table: new Table([{ start: 0, length: 8, type: 'zero', params: '' }]) });
    const { eventNr } = await t.dm.info(name);
    const poolSize = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
    const controller = new AbortController();
    const waits = Array.from({ length: poolSize * 2 }, () => t.dm.waitEvent(name, eventNr, { signal: controller.signal }).catch((x: unknown) => x));
    await new Promise((r) => setTimeout(r, 100));
    // Waits sharing one signal share one 'abort' listener (no MaxListenersExceededWarning).
    expect(getEventListeners(controller.signal, 'abort')).to.have.length(1);
    const work = Promise.all([...Array.from({ length: 8 }, () => stat('/proc/self/status')), ...Array.from({ length: 8 }, () => t.dm.info(name))]);
    const outcome = await Promise.race([work.then(() => 'done'), new Promise((r) => setTimeout(() => r('starved'), 10000))]);
    controller.abort();
    for (const e of await Promise.all(waits)) expect(e).to.have.property('name', 'AbortError');
    expect(outcome).to.equal('done');
  });

  it('watch reports an event that happens between its first arm and its first listing', async () => {
    const loop = await t.fx.loop(2048);
    const name = await multipath(t.dm, loop, 2048);
    let fired = false;
    const unhook = hookControl(t.dm, {
      onArmed: (onArmed) => () => {
        if (fired) {
          onArmed();
          return;
        }
        fired = true;
        // The event falls after the arm and before the listing that follows it.
        void t.dm.message(name, `fail_path ${loop.devString}`).then(onArmed, onArmed);
      },
    });
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 10000);
    const seen: DeviceEvent[] = [];
    try {
      for await (const ev of t.dm.watch({ signal: controller.signal })) {
        seen.push(ev);
        if (ev.name === name) controller.abort();
      }
    } finally {
      clearTimeout(timer);
      unhook();
    }
    expect(fired).to.equal(true);
    expect(seen.map((e) => e.name)).to.include(name);
  });

  it('watch forgets a removed device: a new device that reuses its number is not an event', async () => {
    const loop = await t.fx.loop(2048);
    const first = await multipath(t.dm, loop, 2048);
    const firstDev = (await t.dm.info(first)).dev;
    const controller = new AbortController();
    const seen: DeviceEvent[] = [];
    const marker = devName('marker');
    const watching = (async () => {
      for await (const ev of t.dm.watch({ signal: controller.signal })) {
        seen.push(ev);
        if (ev.name === marker) controller.abort();
      }
    })();
    await new Promise((r) => setTimeout(r, 200));
    await t.dm.message(first, `fail_path ${loop.devString}`);
    await new Promise((r) => setTimeout(r, 300));
    await t.dm.remove(first);
    const second = devName('reuse');
    const reused = await t.dm.create(second, { table: new Table([{ start: 0, length: 8, type: 'zero', params: '' }]) });
    expect(reused.dev).to.deep.equal(firstDev);
    await new Promise((r) => setTimeout(r, 300));
    // A device whose counter really moves ends the watch.
    const loop2 = await t.fx.loop(2048);
    await t.dm.create(marker, { table: new Table([{ start: 0, length: 2048, type: 'multipath', params: `0 0 1 1 round-robin 0 1 1 ${loop2.devString} 1` }]) });
    await t.dm.message(marker, `fail_path ${loop2.devString}`);
    const timer = setTimeout(() => controller.abort(), 10000);
    await watching;
    clearTimeout(timer);
    expect(seen.map((e) => e.name)).to.include(first);
    expect(seen.map((e) => e.name)).to.include(marker);
    expect(seen.map((e) => e.name)).to.not.include(second);
  });

  it('watch closes its fds and ends its thread when it stops, not at garbage collection', async () => {
    const fds = (): number => readdirSync('/proc/self/fd').length;
    const threads = threadsButIo;
    const before = { fds: fds(), threads: threads() };
    for (let i = 0; i < 300; i++) {
      const controller = new AbortController();
      const it = t.dm.watch({ signal: controller.signal })[Symbol.asyncIterator]();
      const next = it.next();
      await new Promise((r) => setImmediate(r));
      controller.abort();
      await next;
      await it.return();
    }
    expect(fds()).to.be.at.most(before.fds + 2);
    expect(threads()).to.be.at.most(before.threads + 1);
  });

  it('waits and watches in flight on one DeviceMapper are bounded (EAGAIN past 256), and all is released after', async () => {
    const name = devName('bound');
    const { eventNr } = await t.dm.create(name, { table: new Table([{ start: 0, length: 8, type: 'zero', params: '' }]) });
    const fds = (): number => readdirSync('/proc/self/fd').length;
    const threads = threadsButIo;
    const before = { fds: fds(), threads: threads() };
    const controller = new AbortController();
    const waits = Array.from({ length: 300 }, () => t.dm.waitEvent(name, eventNr, { signal: controller.signal }).catch((x: unknown) => x));
    await new Promise((r) => setTimeout(r, 500));
    expect(threads() - before.threads).to.be.at.most(256);
    // A watch counts against the same bound.
    const watching = t.dm.watch({ signal: controller.signal }).next().catch((x: unknown) => x);
    const watchOutcome = await Promise.race([watching, new Promise((r) => setTimeout(() => r('not refused'), 2000))]);
    expect(watchOutcome).to.be.instanceOf(DmError).and.include({ code: 'EAGAIN' });
    controller.abort();
    const outcomes = await Promise.all(waits);
    const refused = outcomes.filter((e) => e instanceof DmError && e.code === 'EAGAIN');
    expect(refused).to.have.length(300 - 256);
    expect(outcomes.filter((e) => e instanceof Error && e.name === 'AbortError')).to.have.length(256);
    await new Promise((r) => setTimeout(r, 100));
    expect(fds()).to.be.at.most(before.fds + 2);
    expect(threads()).to.be.at.most(before.threads + 1);
  });

  it('close cancels a parked wait (ECANCELED)', async () => {
    const name = devName('waitclose');
    await t.dm.create(name);
    const waiting = t.dm.waitEvent(name, 0).catch((x: unknown) => x);
    await new Promise((r) => setTimeout(r, 50));
    const other = await DeviceMapper.open();
    await t.dm.close();
    const e = await waiting;
    expect(e).to.be.instanceOf(DmError);
    expect(e).to.include({ code: 'ECANCELED', command: 'DM_DEV_WAIT', device: name });
    t.use(other);
  });

  it('a wait on a device that is then removed ends with ENXIO', async () => {
    const name = devName('waitgone');
    await t.dm.create(name);
    const waiting = t.dm.waitEvent(name, 0).catch((x: unknown) => x);
    await new Promise((r) => setTimeout(r, 50));
    await t.dm.remove(name);
    const e = await waiting;
    expect(e).to.be.instanceOf(DmError);
    expect(e).to.include({ code: 'ENXIO', device: name });
  });

  it('watch yields the device whose event counter moved', async () => {
    const loop = await t.fx.loop(2048);
    const name = await multipath(t.dm, loop, 2048);
    const controller = new AbortController();
    const seen: DeviceEvent[] = [];
    const watching = (async () => {
      for await (const ev of t.dm.watch({ signal: controller.signal })) {
        seen.push(ev);
        if (ev.name === name) controller.abort();
      }
    })();
    await new Promise((r) => setTimeout(r, 200));
    const before = (await t.dm.info(name)).eventNr;
    await t.dm.message(name, `fail_path ${loop.devString}`);
    const timer = setTimeout(() => controller.abort(), 10000);
    await watching;
    clearTimeout(timer);
    const ev = seen.find((e) => e.name === name);
    expect(ev).to.not.equal(undefined);
    expect(ev?.eventNr).to.be.greaterThan(before);
  });
});

describe('waits and watches whose thread cannot start', function () {
  const t = TestContext.perTest();

  it('reject with EAGAIN from pthread_create, leak no fd, and keep nothing alive', async function () {
    timeoutAtLeast(this, 60000);
    // A pids cgroup (cgroup v2) limits the threads a process may start, root or not.
    const top = '/sys/fs/cgroup';
    if (!existsSync(join(top, 'cgroup.controllers'))) {
      mkdirSync(top, { recursive: true });
      execFileSync('mount', ['-t', 'cgroup2', 'none', top]);
    }
    writeFileSync(join(top, 'cgroup.subtree_control'), '+pids');
    const cgroup = join(top, `devmapper-threads-${process.pid}`);
    mkdirSync(cgroup);
    try {
      const name = devName('threads');
      await t.dm.create(name, { table: Table.parse('0 8 zero') });
      const fixture = join(__dirname, '..', '..', '..', '..', 'test', 'kernel', 'fixtures', 'thread-limit.js');
      const r = spawnSync(process.execPath, [fixture, name, cgroup], { encoding: 'utf8', timeout: 40000 });
      expect(r.signal, `${r.stdout}${r.stderr}`).to.equal(null); // ended by itself, not by the timeout
      expect(r.status, r.stderr).to.equal(0);
      const out = JSON.parse(r.stdout) as { results: { code?: string; syscall?: string; name?: string }[]; watchFailure?: { code?: string; syscall?: string }; fdsBefore: number; fdsAfter: number };
      const refused = out.results.filter((x) => x.syscall === 'pthread_create');
      expect(refused.length, r.stdout).to.be.greaterThan(0);
      for (const x of refused) expect(x.code).to.equal('EAGAIN');
      // The waits that did start ended with the abort.
      for (const x of out.results.filter((y) => y.syscall !== 'pthread_create')) expect(x.name, r.stdout).to.equal('AbortError');
      expect(out.watchFailure, r.stdout).to.deep.include({ code: 'EAGAIN', syscall: 'pthread_create' });
      expect(out.fdsAfter, r.stdout).to.equal(out.fdsBefore);
    } finally {
      rmdirSync(cgroup);
    }
  });
});
