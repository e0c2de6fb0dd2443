import { expect } from 'chai';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { DmError, LoopDevice, Multipath, type MultipathPathChange } from '../../../ts/index';
import { PREFIX, TestContext, devName, dmsetup, eventually } from '../helpers';
import { root } from './kit';

const SECTORS = 8192;
/** Two paths to the same storage: two loop devices over one backing file. */
async function twoPaths(t: TestContext): Promise<[LoopDevice, LoopDevice]> {
  const a = await t.fx.loop(SECTORS);
  const b = await LoopDevice.attach(a.file);
  t.fx.loops.push(b);
  return [a, b];
}

function pattern(seed: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/** Writes `data` at byte `offset` with direct I/O (no page cache between us and the target). */
function writeDirect(path: string, data: Buffer, offset: number): void {
  execFileSync('dd', [`of=${path}`, 'bs=4096', `seek=${offset / 4096}`, 'oflag=direct', 'iflag=fullblock', 'conv=notrunc', 'status=none'], { input: data, stdio: ['pipe', 'ignore', 'pipe'] });
}

/** Reads `length` bytes at byte `offset` with direct I/O. */
function readDirect(path: string, length: number, offset: number): Buffer {
  return execFileSync('dd', [`if=${path}`, 'bs=4096', `skip=${offset / 4096}`, `count=${length / 4096}`, 'iflag=direct', 'status=none'], { maxBuffer: length + 4096, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Bytes of the backing file itself. */
function readFile(file: string, length: number, offset: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(length);
    readSync(fd, b, 0, length, offset);
    return b;
  } finally {
    closeSync(fd);
  }
}

/** The writes in flight on a block device, as the kernel counts them (/sys/block/<dm-N>/inflight). */
function writesInFlight(devPath: string): number {
  const [, writes] = readFileSync(`/sys/block/${devPath.replace('/dev/', '')}/inflight`, 'utf8').trim().split(/\s+/);
  return Number(writes);
}

/** A direct write of `data` by a child dd, and a promise of its exit code and stderr. */
function writeInChild(path: string, data: Buffer, offset: number): { child: ChildProcess; done: Promise<{ code: number | null; stderr: string }> } {
  const child = spawn('dd', [`of=${path}`, 'bs=4096', `seek=${offset / 4096}`, 'oflag=direct', 'iflag=fullblock', 'conv=notrunc', 'status=none'], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; stderr: string }>((res) => child.on('exit', (code) => res({ code, stderr })));
  child.stdin.end(data);
  return { child, done };
}

/** The error `p` rejects with (fails when it resolves). */
async function refusal(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('resolved, expected a refusal');
    },
    (e: unknown) => e,
  );
}

/** The next `n` reports of a path watch. */
async function take(it: AsyncGenerator<MultipathPathChange>, n: number): Promise<MultipathPathChange[]> {
  const out: MultipathPathChange[] = [];
  while (out.length < n) {
    const r = await it.next();
    if (r.done === true) break;
    out.push(r.value);
  }
  return out;
}

describe('workflows: Multipath', function () {
  const t = TestContext.perTest();

  it('create builds a round-robin map over two paths: the table reads back, the typed state names every path, and data written while a path is failed reads back through the other', async () => {
    const [a, b] = await twoPaths(t);
    const name = devName('wf-mp');
    const mp = await Multipath.create(t.dm, name, { size: SECTORS, uuid: `${PREFIX}uuid-${name}`, groups: [{ selector: 'round-robin', paths: [{ device: a.dev }, { device: b.dev }] }] });
    expect(mp.id).to.deep.equal({ uuid: `${PREFIX}uuid-${name}` });
    expect(mp.paths).to.deep.equal([a.devString, b.devString]);
    expect(dmsetup('table', name).trimEnd()).to.equal(`0 ${SECTORS} multipath ${mp.target.params}`);
    expect(mp.target.params).to.equal(`0 0 1 1 round-robin 0 2 1 ${a.devString} 1 ${b.devString} 1`);

    const s0 = await mp.state();
    expect(dmsetup('status', name).trimEnd()).to.equal(`0 ${SECTORS} multipath ${s0.status.raw}`.trimEnd());
    expect(s0).to.deep.include({ queueIfNoPath: false, nextGroup: 1 });
    expect(s0.groups.map((g) => [g.group, g.selector, g.state])).to.deep.equal([[1, 'round-robin', 'enabled']]);
    expect(s0.paths).to.deep.equal([
      { device: a.devString, group: 1, health: 'active', failCount: 0 },
      { device: b.devString, group: 1, health: 'active', failCount: 0 },
    ]);

    const one = pattern(1, 65536);
    writeDirect(mp.info.path, one, 0);
    expect(readFile(a.file, one.length, 0).equals(one), 'the data reached the storage').to.equal(true);

    await mp.failPath(a.path);
    expect(await mp.waitForPath(a.dev, 'failed', { timeout: 5000 })).to.deep.equal({ device: a.devString, group: 1, health: 'failed', failCount: 1 });
    expect(dmsetup('status', name)).to.include(` ${a.devString} F 1 `);
    const two = pattern(2, 65536);
    writeDirect(mp.info.path, two, 65536);
    expect(readDirect(mp.info.path, two.length, 65536).equals(two)).to.equal(true);
    expect((await mp.state()).paths.map((p) => p.health)).to.deep.equal(['failed', 'active']);

    await mp.reinstatePath(a.devString);
    await mp.failPath(b.dev);
    // Only path a now: what was written through b alone reads back through a.
    expect(readDirect(mp.info.path, two.length, 65536).equals(two)).to.equal(true);
    expect(readDirect(mp.info.path, one.length, 0).equals(one)).to.equal(true);
    expect((await mp.state()).paths.map((p) => [p.health, p.failCount])).to.deep.equal([['active', 1], ['failed', 1]]);
    expect(dmsetup('status', name)).to.include(` ${a.devString} A 1 ${b.devString} F 1 `);
  });

  it('two groups (queue-length, service-time): disableGroup, enableGroup and switchGroup show in the typed state, and a failed path fails over to the other group', async () => {
    const [a, b] = await twoPaths(t);
    const name = devName('wf-mp-2g');
    await Multipath.create(t.dm, name, {
      size: SECTORS,
      groups: [
        { selector: 'queue-length', paths: [{ device: a.dev }] },
        // A path named by its node: the kernel prints it back as 'major:minor'.
        { selector: 'service-time', paths: [{ device: b.path, relativeThroughput: 4 }] },
      ],
    });
    // Taken over by name, as another process would.
    const mp = await Multipath.open(t.dm, name);
    expect(mp.id).to.deep.equal({ name });
    expect(mp.paths).to.deep.equal([a.devString, b.devString]);
    expect(dmsetup('table', name).trimEnd()).to.equal(`0 ${SECTORS} multipath ${mp.target.params}`);
    const data = pattern(3, 16384);
    writeDirect(mp.info.path, data, 0);
    const s0 = await mp.state();
    expect(s0.groups.map((g) => [g.selector, g.state])).to.deep.equal([['queue-length', 'active'], ['service-time', 'enabled']]);
    expect(s0.status.groups[1]?.paths[0]).to.deep.include({ relativeThroughput: 4 });

    await mp.disableGroup(1);
    expect((await mp.state()).groups.map((g) => g.state)).to.deep.equal(['disabled', 'enabled']);
    // A bypassed group is skipped: the next I/O goes to group 2.
    expect(readDirect(mp.info.path, data.length, 0).equals(data)).to.equal(true);
    expect((await mp.state()).groups.map((g) => g.state)).to.deep.equal(['disabled', 'active']);
    await mp.enableGroup(1);
    // The kernel drops its current group here: it picks one again at the next I/O.
    expect((await mp.state()).groups.map((g) => g.state)).to.deep.equal(['enabled', 'enabled']);

    await mp.switchGroup(1);
    expect((await mp.state()).nextGroup).to.equal(1);
    readDirect(mp.info.path, 4096, 0);
    expect((await mp.state()).groups.map((g) => g.state)).to.deep.equal(['active', 'enabled']);
    expect(dmsetup('status', name).trimEnd()).to.equal(`0 ${SECTORS} multipath ${(await mp.state()).status.raw}`.trimEnd());

    // Group 1's only path fails: the I/O goes to group 2, and the data is there.
    await mp.failPath(a.dev);
    expect(readDirect(mp.info.path, data.length, 0).equals(data)).to.equal(true);
    const s1 = await mp.state();
    expect(s1.nextGroup).to.equal(2);
    expect(s1.groups.map((g) => g.state)).to.deep.equal(['enabled', 'active']);
    expect(s1.paths.map((p) => [p.group, p.health])).to.deep.equal([[1, 'failed'], [2, 'active']]);
  });

  it('queue_if_no_path: with every path failed a write waits, queued in the kernel, and completes when a path is reinstated; fail_if_no_path fails queued and new I/O with EIO', async () => {
    const [a, b] = await twoPaths(t);
    const name = devName('wf-mp-q');
    // queue_mode bio: the kernel counts a queued bio in the device's in-flight writes.
    const mp = await Multipath.create(t.dm, name, { size: SECTORS, queueIfNoPath: true, queueMode: 'bio', groups: [{ selector: 'round-robin', paths: [{ device: a.dev }, { device: b.dev }] }] });
    expect((await mp.state()).queueIfNoPath).to.equal(true);
    expect(dmsetup('table', name)).to.include(' queue_if_no_path ');
    await mp.failPath(a.dev);
    await mp.failPath(b.dev);
    await mp.waitFor((s) => s.paths.every((p) => p.health === 'failed'), { timeout: 5000 });

    const data = pattern(5, 4096);
    const w = writeInChild(mp.info.path, data, 8192);
    let exited = false;
    void w.done.then(() => (exited = true));
    try {
      expect(await eventually(() => writesInFlight(mp.info.path) === 1, 10000), 'the write is queued in the kernel').to.equal(true);
      expect(exited, 'the write waits while no path works').to.equal(false);
      await mp.reinstatePath(b.dev);
      const r = await w.done;
      expect(r, r.stderr).to.deep.include({ code: 0 });
    } finally {
      // Never leave a writer stuck in the kernel: with fail_if_no_path its I/O ends.
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- set by the writer's exit, in a callback
      if (!exited) await mp.failIfNoPath().catch(() => undefined);
      await w.done;
    }
    expect(writesInFlight(mp.info.path)).to.equal(0);
    expect(readDirect(mp.info.path, 4096, 8192).equals(data)).to.equal(true);
    expect(readFile(a.file, 4096, 8192).equals(data), 'the queued write reached the storage').to.equal(true);

    // queued, then fail_if_no_path: the queued write ends with EIO.
    await mp.failPath(b.dev);
    const w2 = writeInChild(mp.info.path, pattern(6, 4096), 12288);
    expect(await eventually(() => writesInFlight(mp.info.path) === 1, 10000), 'the second write is queued').to.equal(true);
    await mp.failIfNoPath();
    const r2 = await w2.done;
    expect(r2.code).to.not.equal(0);
    expect(r2.stderr).to.match(/Input\/output error/);
    expect((await mp.state()).queueIfNoPath).to.equal(false);
    expect(dmsetup('table', name)).to.not.include('queue_if_no_path');
    // And a new write fails at once.
    const r3 = await writeInChild(mp.info.path, data, 0).done;
    expect(r3.code).to.not.equal(0);
    expect(r3.stderr).to.match(/Input\/output error/);
    await mp.queueIfNoPath();
    expect((await mp.state()).queueIfNoPath).to.equal(true);
    await mp.reinstatePath(a.dev);
    expect(readDirect(mp.info.path, 4096, 8192).equals(data)).to.equal(true);
  });

  it('watchPaths reports every path, then each failure and reinstatement the kernel raises an event for', async () => {
    const [a, b] = await twoPaths(t);
    const mp = await Multipath.create(t.dm, devName('wf-mp-w'), { size: SECTORS, groups: [{ selector: 'round-robin', paths: [{ device: a.dev }, { device: b.dev }] }] });
    const ac = new AbortController();
    const it = mp.watchPaths({ signal: ac.signal });
    try {
      const first = await take(it, 2);
      expect(first.map((c) => [c.device, c.health, c.previous])).to.deep.equal([[a.devString, 'active', undefined], [b.devString, 'active', undefined]]);
      await mp.failPath(b.dev);
      const [failed] = await take(it, 1);
      expect(failed).to.deep.include({ device: b.devString, group: 1, health: 'failed', previous: 'active', failCount: 1 });
      expect(failed?.eventNr).to.be.greaterThan(first[0]?.eventNr ?? Infinity);
      await mp.reinstatePath(b.dev);
      const [back] = await take(it, 1);
      expect(back).to.deep.include({ device: b.devString, health: 'active', previous: 'failed', failCount: 1 });
      expect(back?.eventNr).to.be.greaterThan(failed?.eventNr ?? Infinity);
      // Abort ends the watch without an error.
      const pending = it.next();
      ac.abort();
      expect(await pending).to.deep.equal({ done: true, value: undefined });
    } finally {
      ac.abort();
      await it.return(undefined);
    }
  });

  it('waits are bounded: a state that never comes fails with ETIMEDOUT, and an aborted signal ends the wait with its reason', async () => {
    const [a, b] = await twoPaths(t);
    const mp = await Multipath.create(t.dm, devName('wf-mp-t'), { size: SECTORS, groups: [{ selector: 'round-robin', paths: [{ device: a.dev }, { device: b.dev }] }] });
    const started = Date.now();
    const e = await mp.waitForPath(a.dev, 'failed', { timeout: 300 }).catch((x: unknown) => x);
    expect(e).to.be.instanceOf(DmError).and.include({ code: 'ETIMEDOUT', errno: 110 });
    expect(Date.now() - started).to.be.within(250, 5000);
    const ac = new AbortController();
    const waiting = mp.waitForPath(b.dev, 'failed', { signal: ac.signal }).catch((x: unknown) => x);
    ac.abort(new Error('stop waiting'));
    expect(await waiting).to.be.instanceOf(Error).and.have.property('message', 'stop waiting');
    // Neither wait changed the map.
    expect((await mp.state()).paths.map((p) => p.health)).to.deep.equal(['active', 'active']);
  });

  it('bad input is refused before any ioctl; a map over a path the kernel cannot open is refused at load and leaves no device', async () => {
    const [a, b] = await twoPaths(t);
    const name = devName('wf-mp-bad');
    const before = t.dm.ioctlStats.commands;
    const groups = [{ selector: 'round-robin' as const, paths: [{ device: a.dev }, { device: b.dev }] }];
    const e1 = await refusal(Multipath.create(t.dm, name, { size: -1, groups }));
    expect(e1).to.be.instanceOf(RangeError).with.property('message', 'Expected a non-negative safe integer for options.size but received number -1');
    const e2 = await refusal(Multipath.create(t.dm, name, { size: SECTORS, groups, queueIfNoPth: true } as never));
    expect(e2).to.be.instanceOf(TypeError).with.property('message').that.matches(/unknown option "queueIfNoPth"/);
    expect(t.dm.ioctlStats.commands).to.equal(before);

    const mp = await Multipath.create(t.dm, name, { size: SECTORS, groups });
    const sent = t.dm.ioctlStats.commands;
    const other = await t.fx.loop(64);
    expect(await refusal(mp.failPath(other.dev))).to.be.instanceOf(RangeError).with.property('message').that.matches(/^Expected one of the map's paths \(\d+:\d+, \d+:\d+\) for path but received object$/);
    expect(await refusal(mp.switchGroup(2))).to.be.instanceOf(RangeError).with.property('message', 'Expected an integer from 1 to 1 for group but received number 2');
    expect(t.dm.ioctlStats.commands).to.equal(sent);
    // Another spelling of a path's number, or its /dev node, is that path.
    await mp.failPath(`0${a.dev.major}:00${a.dev.minor}`);
    await mp.failPath(b.path);
    expect((await mp.state()).paths.map((p) => p.health)).to.deep.equal(['failed', 'failed']);
    expect(await refusal(mp.reinstatePath('/dev/null'))).to.be.instanceOf(RangeError);
    await mp.remove();

    // The kernel opens every path at load: a path that is not a block device fails it.
    const bad = devName('wf-mp-nopath');
    const e = await Multipath.create(t.dm, bad, { size: SECTORS, groups: [{ selector: 'round-robin', paths: [{ device: a.dev }, { device: '/dev/null' }] }] }).catch((x: unknown) => x);
    expect(e).to.be.instanceOf(DmError).and.include({ command: 'DM_TABLE_LOAD', code: 'ENODEV' });
    expect((await t.dm.listDevices()).map((d) => d.name)).to.not.include(bad);
  });

  it('examples/multipath.js runs against the built package', () => {
    const env = { ...process.env, DEVMAPPER_EXAMPLE_PREFIX: `${PREFIX}example-` };
    const r = spawnSync(process.execPath, [join(root, 'examples', 'multipath.js')], { cwd: root, env, encoding: 'utf8', timeout: 120000 });
    expect(r.status, `${r.stdout}${r.stderr}`).to.equal(0);
    expect(r.stdout).to.match(/^table: 0 8192 multipath 4 queue_if_no_path retain_attached_hw_handler queue_mode bio 0 1 1 round-robin 0 2 1 \d+:\d+ 1 \d+:\d+ 1$/m);
    expect(r.stdout).to.match(/^path \d+:\d+ failed \(1 failures\)$/m);
    expect(r.stdout).to.contain('read back while a path was down: "written while a path was down"');
    expect(r.stdout).to.match(/^queued write completed after reinstate_path: true$/m);
    expect(r.stdout).to.match(/^paths: \d+:\d+ active, \d+:\d+ active$/m);
    expect(r.stdout).to.match(/^removed dmt-example-mpath$/m);
  });
});
