#!/usr/bin/env node
'use strict';
// Cost of the basic operations, measured inside one boot of the kernel sandbox (or on the
// host as root with BENCH_HOST=1): ioctls per command (the machine-independent figure), time
// per operation as a ratio to `dmsetup` doing the same in the same boot, and the synchronous
// client against the asynchronous one and against Node's own threadpool round trip
// (fs.fstat) and a synchronous system call (fs.fstatSync) in the same boot.
//   npm run build && node bench/ioctl.js
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

/**
 * Mean µs of `n` calls of `op` awaited one at a time, after `warm` warm-up calls (the JIT
 * compiles the path first, as it does in a long-running program).
 */
async function timeOf(n, op, warm = Math.min(n, 100)) {
  for (let i = 0; i < Math.max(1, warm); i++) await op();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await op();
  return Number(process.hrtime.bigint() - t0) / n / 1e3;
}

/** Mean µs of `n` calls of the synchronous `op` in a plain loop, after `warm` warm-up calls. */
function timeSync(n, op, warm = Math.min(n, 500)) {
  for (let i = 0; i < Math.max(1, warm); i++) op();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) op();
  return Number(process.hrtime.bigint() - t0) / n / 1e3;
}

/**
 * Rounds each timing is taken in, the best kept: the sandbox shares its host's CPUs, and a
 * round that another process slowed down says nothing about the code. Rounds of the things
 * compared with each other are interleaved, so that a slow stretch of the boot hits them alike.
 */
const ROUNDS = 5;

/** The least of `rounds` results of `f` (a time: the round least disturbed). */
function best(rounds, f) {
  let least = Infinity;
  for (let r = 0; r < rounds; r++) least = Math.min(least, f());
  return least;
}

async function bestAsync(rounds, f) {
  let least = Infinity;
  for (let r = 0; r < rounds; r++) least = Math.min(least, await f());
  return least;
}

/** Page faults (first touches of a page) per call of the synchronous `op`, over `n` calls. */
function faultsPerCall(n, op) {
  const before = process.resourceUsage().minorPageFault;
  for (let i = 0; i < n; i++) op();
  return (process.resourceUsage().minorPageFault - before) / n;
}

/**
 * What one page fault costs in this boot, in µs: 16 MiB allocated and touched a page at a time
 * (under User-Mode Linux a fault is a round trip through the host, tens of µs; on a host, 1-2).
 */
function pageFaultCost() {
  const before = process.resourceUsage().minorPageFault;
  const t0 = process.hrtime.bigint();
  const b = Buffer.allocUnsafeSlow(16 << 20);
  for (let i = 0; i < b.length; i += 4096) b[i] = 1;
  const us = Number(process.hrtime.bigint() - t0) / 1e3;
  return us / Math.max(1, process.resourceUsage().minorPageFault - before);
}

/** The synchronous and the asynchronous client, and Node's own sync and threadpool calls. */
async function syncAndAsync(DeviceMapper, Table, targets) {
  const dm = await DeviceMapper.open();
  // The same client without recording each call's stack (OpenOptions.stackTraces).
  const qdm = await DeviceMapper.open({ stackTraces: 'async' });
  const sdm = DeviceMapper.openSync();
  sdm.create('bench-sync', { table: new Table([{ start: 0, length: 8, target: targets.zero() }]) });
  const fd = fs.openSync('/dev/mapper/control', 'r');
  const n = 2000;
  const fstatSync = best(ROUNDS, () => timeSync(n, () => fs.fstatSync(fd)));
  const fstat = await bestAsync(ROUNDS, () => timeOf(n, () => new Promise((resolve, reject) => fs.fstat(fd, (e) => (e ? reject(e) : resolve())))));
  const rows = [];
  // The same operation by the C programs (bench/c), in this boot: the raw ioctl with a
  // prepared buffer (the limit) and libdevmapper's dm_task API.
  const peer = (program, op) => Number(execFileSync(path.join(CBIN, program), [op, 'bench-sync', String(3000)], { encoding: 'utf8' }).trim());
  const row = async (label, syncOp, asyncOp, op, count = n, quickOp = undefined, rounds = ROUNDS) => {
    // ioctls per call in steady state (after warm-up calls: buffers have their size).
    for (let i = 0; i < Math.min(count, 100); i++) syncOp();
    const before = sdm.ioctlStats;
    for (let i = 0; i < 10; i++) syncOp();
    const after = sdm.ioctlStats;
    const faults = faultsPerCall(Math.min(count, 200), syncOp);
    let s = Infinity;
    let a = Infinity;
    let q = quickOp === undefined ? undefined : Infinity;
    let raw = op === undefined ? undefined : Infinity;
    let libdm = op === undefined ? undefined : Infinity;
    for (let r = 0; r < rounds; r++) {
      s = Math.min(s, timeSync(count, syncOp));
      a = Math.min(a, await timeOf(count, asyncOp));
      if (quickOp !== undefined) q = Math.min(q, await timeOf(count, quickOp));
      if (op !== undefined) {
        raw = Math.min(raw, peer('raw_ioctl', op));
        libdm = Math.min(libdm, peer('libdm', op));
      }
    }
    rows.push({
      operation: label,
      'ioctls/call (sync)': +((after.ioctls - before.ioctls) / 10).toFixed(2),
      'page faults/call (sync)': +faults.toFixed(2),
      'sync µs': +s.toFixed(1),
      'async µs': +a.toFixed(1),
      'raw ioctl µs': raw,
      'libdevmapper µs': libdm,
      'sync/raw': raw === undefined ? undefined : +(s / raw).toFixed(2),
      'sync/libdm': libdm === undefined ? undefined : +(s / libdm).toFixed(2),
      'async/sync': +(a / s).toFixed(2),
      'async/fs.fstat': +(a / fstat).toFixed(2),
      "async, stackTraces 'async', /fs.fstat": q === undefined ? undefined : +(q / fstat).toFixed(2),
    });
  };
  await row('info', () => sdm.info('bench-sync'), () => dm.info('bench-sync'), 'info', n, () => qdm.info('bench-sync'));
  await row('status', () => sdm.status('bench-sync'), () => dm.status('bench-sync'), 'status', n, () => qdm.status('bench-sync'));
  await row('table', () => sdm.table('bench-sync'), () => dm.table('bench-sync'), 'table', n, () => qdm.table('bench-sync'));
  await row('message @stats_list', () => sdm.message('bench-sync', '@stats_list'), () => dm.message('bench-sync', '@stats_list'), 'message', n, () => qdm.message('bench-sync', '@stats_list'));
  let k = 0;
  const cycleTable = new Table([{ start: 0, length: 8, target: targets.zero() }]);
  await row('create + remove', () => {
    sdm.create(`bench-c${k}`, { table: cycleTable });
    sdm.remove(`bench-c${k++}`);
  }, async () => {
    await dm.create(`bench-c${k}`, { table: cycleTable });
    await dm.remove(`bench-c${k++}`);
  }, undefined, 200, undefined, 2);
  // The floor under the clients: the addon's own call, without the TypeScript above it.
  const { binding } = require('../dist/binding.js');
  const { Command } = require('..');
  const control = new (binding().Control)('/dev/mapper/control');
  const header = new Float64Array(11);
  const statusRequest = { cmd: Command.DEV_STATUS, flags: 0, name: 'bench-sync' };
  let bare = Infinity;
  let bareAsync = Infinity;
  let rawInfo = Infinity;
  for (let r = 0; r < ROUNDS; r++) {
    bare = Math.min(bare, timeSync(n, () => control.ioctlSync(statusRequest, header)));
    bareAsync = Math.min(bareAsync, await timeOf(n, () => control.ioctl(statusRequest)));
    rawInfo = Math.min(rawInfo, peer('raw_ioctl', 'info'));
  }
  rows.push({
    operation: 'info, the addon alone',
    'sync µs': +bare.toFixed(1),
    'async µs': +bareAsync.toFixed(1),
    'raw ioctl µs': rawInfo,
    'sync/raw': +(bare / rawInfo).toFixed(2),
    'async/fs.fstat': +(bareAsync / fstat).toFixed(2),
  });
  await control.close();
  fs.closeSync(fd);
  sdm.remove('bench-sync');
  sdm.close();
  await dm.close();
  await qdm.close();
  console.log(`\nsync and async clients, one call at a time, beside the C raw ioctl and libdevmapper (fs.fstatSync ${fstatSync.toFixed(1)} µs, fs.fstat through the threadpool ${fstat.toFixed(1)} µs in this boot):`);
  console.table(rows);
}

/** Mean µs of the C peer `program` doing `op` on `name` `count` times (one exec, in this boot). */
function peerTime(program, op, name, count) {
  return Number(execFileSync(path.join(CBIN, program), [op, name, String(count)], { encoding: 'utf8' }).trim());
}

const round = (x) => (x === undefined ? undefined : +x.toFixed(x < 10 ? 2 : 1));

/** Many devices, a 100,000-row table, 64 calls in flight, and what they cost the event loop. */
async function scale(DeviceMapper, Table, targets) {
  const { monitorEventLoopDelay } = require('node:perf_hooks');
  const faultCost = pageFaultCost();
  const dm = await DeviceMapper.open();
  const sdm = DeviceMapper.openSync();
  const zero8 = new Table([{ start: 0, length: 8, target: targets.zero() }]);
  const rows = [];
  const add = (label, sync, async_, raw, libdm) =>
    rows.push({ operation: label, 'sync µs': round(sync), 'async µs': round(async_), 'raw ioctl µs': round(raw), 'libdevmapper µs': round(libdm), 'sync/raw': raw ? round(sync / raw) : undefined, 'sync/libdm': libdm ? round(sync / libdm) : undefined });
  const listFaults = [];
  let made = 0;
  for (const count of [1000, 10000]) {
    for (; made < count; made++) sdm.create(`bench-n${made}`, { table: zero8 });
    let [ls, la, lraw, llibdm] = [Infinity, Infinity, Infinity, Infinity];
    for (let r = 0; r < ROUNDS; r++) {
      ls = Math.min(ls, timeSync(20, () => sdm.listDevices(), 5));
      la = Math.min(la, await timeOf(20, () => dm.listDevices(), 5));
      lraw = Math.min(lraw, peerTime('raw_ioctl', 'list', '-', 20));
      llibdm = Math.min(llibdm, peerTime('libdm', 'list', '-', 20));
    }
    add(`listDevices, ${count} devices`, ls, la, lraw, llibdm);
    listFaults.push({ measure: `page faults per sync listDevices, ${count} devices`, value: round(faultsPerCall(10, () => sdm.listDevices())) });
    const t0 = process.hrtime.bigint();
    for (const d of sdm.listDevices()) sdm.status(d.name);
    add(`list + status of every device, ${count} devices`, Number(process.hrtime.bigint() - t0) / 1e3, undefined, undefined, undefined);
  }
  sdm.removeAll({ prefix: 'bench-n' });

  // A 100,000-row table: loaded, and read back (the first read grows the buffer).
  const big = new Table(Array.from({ length: 100000 }, (_, i) => ({ start: i * 8, length: 8, target: targets.zero() })));
  const delay = monitorEventLoopDelay({ resolution: 5 });
  let t0 = process.hrtime.bigint();
  sdm.create('bench-big-s', { table: big });
  const syncLoad = Number(process.hrtime.bigint() - t0) / 1e3;
  await dm.create('bench-big-a');
  delay.enable();
  t0 = process.hrtime.bigint();
  await dm.load('bench-big-a', big);
  const asyncLoad = Number(process.hrtime.bigint() - t0) / 1e3;
  delay.disable();
  const loadBlockMs = delay.max / 1e6;
  add('load a 100,000-row table', syncLoad, asyncLoad, undefined, undefined);
  const syncRead = timeSync(3, () => sdm.table('bench-big-s'), 1);
  delay.reset();
  const readFaultsBefore = process.resourceUsage().minorPageFault;
  delay.enable();
  const asyncRead = await timeOf(3, () => dm.table('bench-big-s'), 1);
  delay.disable();
  const readFaults = (process.resourceUsage().minorPageFault - readFaultsBefore) / 4;
  const readBlockMs = delay.max / 1e6;
  add('read back a 100,000-row table', syncRead, asyncRead, peerTime('raw_ioctl', 'table', 'bench-big-s', 5), peerTime('libdm', 'table', 'bench-big-s', 5));
  sdm.remove('bench-big-s');
  sdm.remove('bench-big-a');

  // 64 calls in flight, and what a fs.promises.stat waits meanwhile.
  sdm.create('bench-fly', { table: zero8 });
  const rounds = 100;
  const qdm = await DeviceMapper.open({ stackTraces: 'async' });
  // The addon alone, 64 in flight: the floor under the client's rate.
  const { binding } = require('../dist/binding.js');
  const { Command } = require('..');
  const control = new (binding().Control)('/dev/mapper/control');
  const flyRequest = { cmd: Command.DEV_STATUS, flags: 0, name: 'bench-fly' };
  const flights = { client: () => dm.info('bench-fly'), quick: () => qdm.info('bench-fly'), bare: () => control.ioctl(flyRequest) };
  // Calls per second of 100 rounds of 64, after 50 that warm the JIT (the first thousands of
  // calls would time it compiling the call path); the best of ROUNDS, interleaved.
  const rate = async (call) => {
    t0 = process.hrtime.bigint();
    for (let r = 0; r < rounds; r++) await Promise.all(Array.from({ length: 64 }, call));
    return (64 * rounds) / (Number(process.hrtime.bigint() - t0) / 1e9);
  };
  for (const call of Object.values(flights)) for (let r = 0; r < 50; r++) await Promise.all(Array.from({ length: 64 }, call));
  let perSecond = 0;
  let quickPerSecond = 0;
  let barePerSecond = 0;
  let rawPerSecond = 0;
  for (let r = 0; r < ROUNDS; r++) {
    perSecond = Math.max(perSecond, await rate(flights.client));
    quickPerSecond = Math.max(quickPerSecond, await rate(flights.quick));
    barePerSecond = Math.max(barePerSecond, await rate(flights.bare));
    rawPerSecond = Math.max(rawPerSecond, 1e6 / peerTime('raw_ioctl', 'info', 'bench-fly', 3000));
  }
  await qdm.close();
  await control.close();
  // The addon's I/O threads right after them (a worker and the pool's supervisor, unless a call
  // blocked in the kernel made the pool grow).
  const ioThreads = fs.readdirSync('/proc/self/task').filter((task) => {
    try {
      return fs.readFileSync(`/proc/self/task/${task}/comm`, 'utf8').trim() === 'devmapper-io';
    } catch {
      return false;
    }
  }).length;
  const { stat } = require('node:fs/promises');
  // 200 each: a mean over fewer is one scheduling hiccup of the machine.
  const idleStat = await timeOf(200, () => stat('/'));
  let busy = true;
  const pump = (async () => {
    while (busy) await Promise.all(Array.from({ length: 64 }, () => dm.info('bench-fly')));
  })();
  const loadedStat = await timeOf(200, () => stat('/'));
  busy = false;
  await pump;
  sdm.remove('bench-fly');
  sdm.close();
  await dm.close();
  console.log('\nat scale, in this boot:');
  console.table(rows);
  console.table([
    { measure: 'info, 64 in flight (async), calls/s', value: Math.round(perSecond), 'against raw ioctl one at a time': round(perSecond / rawPerSecond) },
    { measure: "info, 64 in flight (async, stackTraces 'async'), calls/s", value: Math.round(quickPerSecond), 'against raw ioctl one at a time': round(quickPerSecond / rawPerSecond) },
    { measure: 'info, 64 in flight, the addon alone, calls/s', value: Math.round(barePerSecond), 'against raw ioctl one at a time': round(barePerSecond / rawPerSecond) },
    { measure: 'devmapper-io threads after 64 in flight', value: ioThreads },
    { measure: 'fs.promises.stat, idle, µs', value: round(idleStat) },
    { measure: 'fs.promises.stat while 64 DM calls are queued, µs', value: round(loadedStat), 'against idle': round(loadedStat / idleStat) },
    { measure: 'event loop\'s longest block while loading 100,000 rows (async), ms', value: round(loadBlockMs) },
    { measure: 'event loop\'s longest block while reading 100,000 rows (async), ms', value: round(readBlockMs) },
    { measure: 'page faults per async read of 100,000 rows', value: Math.round(readFaults) },
    ...listFaults,
    { measure: 'one page fault in this boot, µs', value: round(faultCost) },
    { measure: 'peak RSS of this process, MiB', value: round(process.resourceUsage().maxRSS / 1024) },
  ]);
}

async function inside() {
  const { DeviceMapper, Table, targets } = require('..');
  // First: the one-call rows, before the other rows have made thousands of devices and large
  // tables (the C peers they are compared with run in fresh processes).
  await syncAndAsync(DeviceMapper, Table, targets);
  const dm = await DeviceMapper.open();
  const rows = Array.from({ length: 4000 }, (_, i) => ({ start: i * 8, length: 8, target: targets.zero() }));
  await dm.create('bench-small', { table: new Table([{ start: 0, length: 8, target: targets.zero() }]) });
  await dm.create('bench-big', { table: new Table(rows) });
  const report = [];
  async function measure(label, n, op, peerArgs) {
    await op(); // warm: the buffer size that works is remembered from here on
    const before = dm.ioctlStats;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await op();
    const ours = Number(process.hrtime.bigint() - t0) / n / 1e3;
    const after = dm.ioctlStats;
    const perCommand = (after.ioctls - before.ioctls) / (after.commands - before.commands);
    const p0 = process.hrtime.bigint();
    const m = 5;
    for (let i = 0; i < m; i++) execFileSync('dmsetup', peerArgs, { stdio: ['ignore', 'pipe', 'ignore'] });
    const peer = Number(process.hrtime.bigint() - p0) / m / 1e3;
    report.push({ operation: label, 'ioctls/command': perCommand, 'devmapper µs': Math.round(ours), 'dmsetup µs': Math.round(peer), 'dmsetup/devmapper': +(peer / ours).toFixed(1) });
  }
  await measure('info', 200, () => dm.info('bench-small'), ['info', 'bench-small']);
  await measure('status', 200, () => dm.status('bench-small'), ['status', 'bench-small']);
  await measure('table, 4000 rows', 20, () => dm.table('bench-big'), ['table', 'bench-big']);
  await measure('listDevices', 200, () => dm.listDevices(), ['ls']);
  await dm.remove('bench-small');
  await dm.remove('bench-big');
  await dm.close();
  console.log('\noperations against dmsetup (the asynchronous client, awaited one at a time):');
  console.table(report);
  await scale(DeviceMapper, Table, targets);
  console.log('\nsystem calls per operation (strace -f -c over every thread; a run of 0 operations subtracted):');
  console.table(require('./syscalls').syscallsPerOperation());
}

/** Where the C peers are built (on the host, before the boot: the guest shares the tree). */
const CBIN = path.resolve(__dirname, '..', 'build', 'bench');

function buildPeers() {
  fs.mkdirSync(CBIN, { recursive: true });
  const src = path.join(__dirname, 'c');
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', path.join(CBIN, 'raw_ioctl'), path.join(src, 'raw_ioctl.c')], { stdio: 'inherit' });
  // libdevmapper-dev (scripts/setup.sh installs it): a benchmark-only dependency.
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', path.join(CBIN, 'libdm'), path.join(src, 'libdm.c'), '-ldevmapper'], { stdio: 'inherit' });
}

async function main() {
  if (process.env.DEVMAPPER_SANDBOX === '1') return inside();
  buildPeers();
  if (process.env.BENCH_HOST === '1') return inside();
  const { runInSandbox } = require('../dist/sandbox');
  const r = await runInSandbox([process.execPath, __filename], { cwd: path.resolve(__dirname, '..'), memory: 2048, timeout: 30 * 60 * 1000 });
  process.exitCode = r.exitCode;
  if (r.exitCode === 0) {
    const when = new Date().toISOString().slice(0, 10);
    const text = `# Benchmark results\n\n\`npm run bench\` on ${when}, in one boot of the kernel sandbox (User-Mode Linux ${r.kernelRelease}, one CPU; ${os.cpus()[0]?.model ?? 'unknown CPU'} host). What each row and column means: README.md beside this file. Only counts and ratios within this boot mean anything.\n\n\`\`\`\n${r.output.trim()}\n\`\`\`\n`;
    fs.writeFileSync(path.join(__dirname, 'RESULTS.md'), text);
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
