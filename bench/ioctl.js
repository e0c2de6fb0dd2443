#!/usr/bin/env node
'use strict';
// Cost of the basic operations, measured inside one boot of the kernel sandbox (or on the
// host as root with BENCH_HOST=1): ioctls per command (the machine-independent figure), and
// timings as ratios taken in the same boot: the synchronous and the asynchronous client
// against the same ioctl from C (bench/c), against libdevmapper, against Node's own calls
// (fs.fstatSync, fs.fstat through the threadpool), and the floor under all of them (an empty
// Node-API call, fstat(2) from C).
//   npm run build && node bench/ioctl.js
//   BENCH_ONLY=calls,flight node bench/ioctl.js     only some tables (see README.md)
//   BENCH_TRACE_GC=1 node bench/ioctl.js            with V8's own trace of each collection
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync, spawn } = require('node:child_process');

/** Where the C peers are built (on the host, before the boot: the guest shares the tree). */
const CBIN = path.resolve(__dirname, '..', 'build', 'bench');

/** The tables, in the order they run; BENCH_ONLY (comma-separated) narrows a run to some. */
const SECTIONS = ['calls', 'floor', 'dmsetup', 'scale', 'flight', 'syscalls'];

/** The sections this run measures (all unless BENCH_ONLY names some). */
function sections() {
  const only = (process.env.BENCH_ONLY ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const s of only) if (!SECTIONS.includes(s)) throw new Error(`BENCH_ONLY: unknown table ${JSON.stringify(s)} (known: ${SECTIONS.join(', ')})`);
  return only.length === 0 ? SECTIONS : only;
}

/**
 * Interleaved rounds of what is compared: the boot shares its host's 2 CPUs with other work,
 * and a slow stretch (tens of ms) hits whichever batch runs then. Short batches, A,B,C,A,B,C...
 * (the order rotating from round to round), and ratios taken per round, so a ratio compares
 * batches that ran within milliseconds of each other; the median of those ratios is the
 * figure, the least and the greatest say how much the boot disturbed it.
 */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 101);

/** µs per call of `count` calls of the synchronous `op` in a plain loop. */
function syncBatch(count, op) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < count; i++) op();
  return Number(process.hrtime.bigint() - t0) / count / 1e3;
}

/** µs per call of `count` calls of `op` awaited one at a time. */
async function asyncBatch(count, op) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await op();
  return Number(process.hrtime.bigint() - t0) / count / 1e3;
}

/** µs per call of `batches` batches of 64 calls of `op` in flight (awaited together). */
async function flightBatch(batches, op) {
  const t0 = process.hrtime.bigint();
  for (let b = 0; b < batches; b++) await Promise.all(Array.from({ length: 64 }, op));
  return Number(process.hrtime.bigint() - t0) / (64 * batches) / 1e3;
}

/**
 * Runs `rounds` rounds, each one batch of every contestant (a function returning its µs per
 * call for one batch) in turn, the order rotating; returns each contestant's per-round figures.
 */
async function interleave(rounds, contestants) {
  const names = Object.keys(contestants);
  const out = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(r + i) % names.length];
      out[name].push(await contestants[name]());
    }
  }
  return out;
}

function median(values) {
  const v = [...values].sort((a, b) => a - b);
  const m = v.length >> 1;
  return v.length % 2 === 1 ? v[m] : (v[m - 1] + v[m]) / 2;
}

const round = (x) => (x === undefined ? undefined : +x.toFixed(Math.abs(x) < 10 ? 2 : 1));

/**
 * The per-round ratios a[i] / b[i]: { median, min, max }, and `best`: the ratio of each side's
 * least disturbed round (its least time). On a loaded host most rounds may be disturbed; the
 * fastest of 101 short rounds of each is then the closer to its undisturbed cost.
 */
function ratios(a, b) {
  const r = a.map((x, i) => x / b[i]);
  return { median: median(r), min: Math.min(...r), max: Math.max(...r), best: Math.min(...a) / Math.min(...b) };
}

/** A ratio as printed: "median (least-greatest) best B" over the rounds. */
function shown(r) {
  return `${round(r.median)} (${round(r.min)}-${round(r.max)}) best ${round(r.best)}`;
}

/**
 * A C program of bench/c kept running in `serve` mode: `time(op, name, count)` has it run
 * `count` operations and answers its mean µs per operation. It talks over two FIFOs, read and
 * written synchronously: a round of the C peer costs no exec (hundreds of ms under UML), so it
 * can be interleaved with the JavaScript's rounds.
 */
class Peer {
  constructor(program) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `devmapper-bench-${program}-`));
    const inPath = path.join(this.dir, 'in');
    const outPath = path.join(this.dir, 'out');
    execFileSync('mkfifo', [inPath, outPath]);
    this.child = spawn(path.join(CBIN, program), ['serve', inPath, outPath], { stdio: ['ignore', 'ignore', 'inherit'] });
    // Opened read-write: a FIFO opened so never waits for its other end.
    this.requests = fs.openSync(inPath, 'r+');
    this.answers = fs.openSync(outPath, 'r+');
    this.buffer = Buffer.alloc(64);
    this.program = program;
  }

  /** Mean µs of `count` operations `op` on device `name`, measured by the C program. */
  time(op, name, count) {
    fs.writeSync(this.requests, `${op} ${name} ${count}\n`);
    let text = '';
    while (!text.includes('\n')) {
      const n = fs.readSync(this.answers, this.buffer, 0, this.buffer.length, null);
      text += this.buffer.toString('latin1', 0, n);
    }
    const us = Number(text);
    if (!(us >= 0)) throw new Error(`${this.program} ${op} ${name} failed (${text.trim()})`);
    return us;
  }

  close() {
    fs.closeSync(this.requests);
    fs.closeSync(this.answers);
    this.child.kill();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
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

/**
 * Calls in a batch of one contestant. Each batch starts just after another contestant's (a
 * round of C calls is another process): its first calls find the caches cold and the garbage
 * of the batch before waiting to be collected. A batch of 200 calls is long enough that each
 * contestant pays for its own garbage and its own cache refills (in batches of 20 the
 * synchronous client read 0.1-0.15 slower against C; 20 asynchronous calls beside 200
 * synchronous ones paid for the synchronous ones' garbage), short enough (4 ms synchronous,
 * 40-50 ms asynchronous) for the median over the rounds to leave the host's stretches out.
 */
const BATCH = Number(process.env.BENCH_BATCH ?? 200);

/** fs.fstat of `fd` through Node's threadpool, as a promise (the callback form, no FileHandle). */
function fstatCallback(fd) {
  return new Promise((resolve, reject) => fs.fstat(fd, (e) => (e ? reject(e) : resolve())));
}

/**
 * The synchronous and the asynchronous clients one call at a time, each operation's rounds
 * interleaved with the same ioctl from C, libdevmapper, and Node's fs.fstat through its
 * threadpool.
 */
async function calls(DeviceMapper, Table, targets, raw, libdm) {
  const dm = await DeviceMapper.open();
  // The same client recording each call's stack as it is made (OpenOptions.stackTraces).
  const qdm = await DeviceMapper.open({ stackTraces: 'call' });
  const sdm = DeviceMapper.openSync();
  sdm.create('bench-sync', { table: new Table([{ start: 0, length: 8, target: targets.zero() }]) });
  const fd = fs.openSync('/dev/mapper/control', 'r');
  const rows = [];
  const row = async (label, op, syncOp, asyncOp, quickOp) => {
    // Warm-up: the JIT compiles the paths, the buffers get their size, and V8's heap grows to
    // its steady size (until some 10,000 calls have run, its new pages fault in: under UML a
    // fault costs several ioctls).
    for (let i = 0; i < 10000; i++) syncOp();
    for (let i = 0; i < 1000; i++) await asyncOp();
    for (let i = 0; i < 1000; i++) await quickOp();
    for (let i = 0; i < 1000; i++) await fstatCallback(fd);
    const before = sdm.ioctlStats;
    for (let i = 0; i < 10; i++) syncOp();
    const after = sdm.ioctlStats;
    const faults = faultsPerCall(200, syncOp);
    const t = await interleave(ROUNDS, {
      sync: () => syncBatch(BATCH, syncOp),
      raw: () => raw.time(op, 'bench-sync', BATCH),
      libdm: () => libdm.time(op, 'bench-sync', BATCH),
      async: () => asyncBatch(BATCH, asyncOp),
      quick: () => asyncBatch(BATCH, quickOp),
      fstat: () => asyncBatch(BATCH, () => fstatCallback(fd)),
    });
    rows.push({
      operation: label,
      'ioctls/call': +((after.ioctls - before.ioctls) / 10).toFixed(2),
      'faults/call': +faults.toFixed(2),
      'sync µs': round(median(t.sync)),
      'raw ioctl µs': round(median(t.raw)),
      'libdm µs': round(median(t.libdm)),
      'async µs': round(median(t.async)),
      'fs.fstat µs': round(median(t.fstat)),
      'sync/raw': shown(ratios(t.sync, t.raw)),
      'sync/libdm': shown(ratios(t.sync, t.libdm)),
      'async/fs.fstat': shown(ratios(t.async, t.fstat)),
      "stackTraces 'call': async/fs.fstat": shown(ratios(t.quick, t.fstat)),
    });
  };
  await row('info', 'info', () => sdm.info('bench-sync'), () => dm.info('bench-sync'), () => qdm.info('bench-sync'));
  await row('status', 'status', () => sdm.status('bench-sync'), () => dm.status('bench-sync'), () => qdm.status('bench-sync'));
  await row('table', 'table', () => sdm.table('bench-sync'), () => dm.table('bench-sync'), () => qdm.table('bench-sync'));
  await row('message @stats_list', 'message', () => sdm.message('bench-sync', '@stats_list'), () => dm.message('bench-sync', '@stats_list'), () => qdm.message('bench-sync', '@stats_list'));
  // The floor under both clients: the addon's own call of each of the same commands, without the
  // TypeScript above it (the positional forms the clients use: callSync, and call's promise).
  const { binding } = require('../dist/binding.js');
  const { Command, Flag } = require('..');
  const control = new (binding().Control)('/dev/mapper/control');
  const header = new Float64Array(11);
  // Each with the arguments its client's call hands over (a message's request is its payload).
  const msg = { cmd: Command.TARGET_MSG, flags: 0, name: 'bench-sync', sector: 0, message: '@stats_list', repeatable: true };
  const bareCalls = [
    ['info', [Command.DEV_STATUS, 0, 0, 0, 'bench-sync', '', undefined]],
    ['status', [Command.TABLE_STATUS, 0, 0, 0, 'bench-sync', '', undefined]],
    ['table', [Command.TABLE_STATUS, Flag.STATUS_TABLE, 0, 0, 'bench-sync', '', undefined]],
    ['message', [Command.TARGET_MSG, 0, 0, 0, 'bench-sync', '', msg]],
  ];
  for (const [op, args] of bareCalls) {
    const bareSync = () => control.callSync(...args, header);
    const bare = () => control.call(...args);
    await row(`${op === 'message' ? 'message @stats_list' : op}, the addon alone`, op, bareSync, bare, bare);
    rows[rows.length - 1]['ioctls/call'] = undefined;
  }
  await control.close();
  // A create + remove cycle (create + load + resume, then remove: 4 ioctls), sync and async.
  let k = 0;
  const cycleTable = new Table([{ start: 0, length: 8, target: targets.zero() }]);
  const before = sdm.ioctlStats;
  const cycle = await interleave(5, {
    sync: () =>
      syncBatch(20, () => {
        sdm.create(`bench-c${k}`, { table: cycleTable });
        sdm.remove(`bench-c${k++}`);
      }),
    async: () =>
      asyncBatch(20, async () => {
        await dm.create(`bench-c${k}`, { table: cycleTable });
        await dm.remove(`bench-c${k++}`);
      }),
  });
  const after = sdm.ioctlStats;
  rows.push({
    operation: 'create + remove',
    'ioctls/call': (after.ioctls - before.ioctls) / 100,
    'sync µs': round(median(cycle.sync)),
    'async µs': round(median(cycle.async)),
  });
  fs.closeSync(fd);
  sdm.remove('bench-sync');
  sdm.close();
  await dm.close();
  await qdm.close();
  console.log(`\nthe clients one call at a time, beside the same ioctl from C and libdevmapper, and Node's fs.fstat through its threadpool (medians of ${ROUNDS} interleaved rounds of ${BATCH} calls; ratios: the median of the per-round ratios, (least-greatest), and the ratio of the two sides' fastest rounds):`);
  console.table(rows);
}

/**
 * The floor in this boot: what Node itself costs over a system call, sync and async, and
 * what an empty Node-API call costs, beside the C programs' fstat(2) and DEV_STATUS.
 */
async function floor(DeviceMapper, Table, targets, raw) {
  const sdm = DeviceMapper.openSync();
  sdm.create('bench-floor', { table: new Table([{ start: 0, length: 8, target: targets.zero() }]) });
  const fd = fs.openSync('/dev/mapper/control', 'r');
  const fsp = require('node:fs/promises');
  const handle = await fsp.open('/dev/mapper/control', 'r');
  const { binding } = require('../dist/binding.js');
  const control = new (binding().Control)('/dev/mapper/control');
  // An accessor of the addon's Control: an N-API call that does nothing but answer a boolean.
  let sink = 0;
  const empty = () => {
    if (control.closed) sink++;
  };
  const flights = 5;
  for (let i = 0; i < 2000; i++) empty();
  for (let i = 0; i < 500; i++) fs.fstatSync(fd);
  for (let i = 0; i < 200; i++) await fstatCallback(fd);
  for (let i = 0; i < 50; i++) await flightBatch(1, () => handle.stat());
  const t = await interleave(ROUNDS, {
    empty: () => syncBatch(10 * BATCH, empty),
    fstatSync: () => syncBatch(BATCH, () => fs.fstatSync(fd)),
    cFstat: () => raw.time('fstat', '-', BATCH),
    rawInfo: () => raw.time('info', 'bench-floor', BATCH),
    fstat: () => asyncBatch(BATCH, () => fstatCallback(fd)),
    promisesFlight: () => flightBatch(flights, () => handle.stat()),
  });
  if (sink !== 0) throw new Error('the control closed itself');
  await control.close();
  await handle.close();
  fs.closeSync(fd);
  sdm.remove('bench-floor');
  sdm.close();
  const perSecond = (us) => Math.round(1e6 / median(us));
  const rows = [
    { measure: 'an empty Node-API call (the Control#closed accessor), µs', value: round(median(t.empty)), against: 'the raw DEV_STATUS from C', ratio: shown(ratios(t.empty, t.rawInfo)) },
    { measure: 'fs.fstatSync, µs', value: round(median(t.fstatSync)), against: 'fstat(2) from C', ratio: shown(ratios(t.fstatSync, t.cFstat)) },
    { measure: 'fstat(2) from C, µs', value: round(median(t.cFstat)), against: 'the raw DEV_STATUS from C', ratio: shown(ratios(t.cFstat, t.rawInfo)) },
    { measure: 'the raw DEV_STATUS from C, µs', value: round(median(t.rawInfo)) },
    { measure: 'fs.fstat through the threadpool, one at a time, µs', value: round(median(t.fstat)), against: 'fs.fstatSync', ratio: shown(ratios(t.fstat, t.fstatSync)) },
    // A rate against a rate: the C loop's time per call over the 64 in flight's.
    { measure: 'fs.promises (FileHandle.stat), 64 in flight, calls/s', value: perSecond(t.promisesFlight), against: 'fstat(2) from C, one after another (rate)', ratio: shown(ratios(t.cFstat, t.promisesFlight)) },
  ];
  console.log(`\nthe floor in this boot: Node's own calls and an empty Node-API call beside the same system calls from C (medians of ${ROUNDS} interleaved rounds; ratios as in the table above):`);
  console.table(rows);
}

/** Rounds of the rows at scale, each timing the best of them (a round is seconds long there). */
const SCALE_ROUNDS = 5;

/** Mean µs of `n` calls of `op` awaited one at a time, after `warm` warm-up calls. */
async function timeOf(n, op, warm = Math.min(n, 100)) {
  for (let i = 0; i < Math.max(1, warm); i++) await op();
  return asyncBatch(n, op);
}

/** Mean µs of `n` calls of the synchronous `op` in a plain loop, after `warm` warm-up calls. */
function timeSync(n, op, warm = Math.min(n, 500)) {
  for (let i = 0; i < Math.max(1, warm); i++) op();
  return syncBatch(n, op);
}

/** Mean µs of the C peer `program` doing `op` on `name` `count` times (one exec, in this boot). */
function peerTime(program, op, name, count) {
  return Number(execFileSync(path.join(CBIN, program), [op, name, String(count)], { encoding: 'utf8' }).trim());
}

/** `info` and the others against dmsetup spawned per operation (mostly what an exec costs). */
async function againstDmsetup(DeviceMapper, Table, targets) {
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
}

/**
 * The longest pause of V8's garbage collector while it is on (PerformanceObserver 'gc'
 * entries: the main thread stopped for a scavenge or a mark-compact), to set beside the
 * event loop's longest block over the same calls.
 */
function gcPauses() {
  const { PerformanceObserver } = require('node:perf_hooks');
  let pauses = [];
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) pauses.push(e);
  });
  observer.observe({ entryTypes: ['gc'] });
  let from = 0;
  return {
    start() {
      pauses = [];
      from = performance.now();
    },
    /** The longest pause that began since start, ms (entries come a turn late: wait one). */
    async stop() {
      const to = performance.now();
      await new Promise((resolve) => setImmediate(resolve));
      return pauses.filter((e) => e.startTime >= from && e.startTime <= to).reduce((most, e) => Math.max(most, e.duration), 0);
    },
    close() {
      observer.disconnect();
    },
  };
}

/**
 * What JavaScript alone costs the event loop for the answer a 100,000-row read gives: the
 * same 100,000 frozen row objects (start, length, type, params, one shared target) made in
 * slices of 4 ms with the event loop let run between them, as the library does, but with no
 * call at all: the floor under a read's longest block (V8's collector on the same heap).
 */
async function jsRows(count) {
  const out = [];
  const target = Object.freeze({ type: 'zero', params: '' });
  let i = 0;
  while (i < count) {
    const end = performance.now() + 4;
    while (i < count && performance.now() < end) {
      for (let k = 0; k < 256 && i < count; k++, i++) out.push(Object.freeze({ start: i * 8, length: 8, type: 'zero', params: '', target }));
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  return Object.freeze(out);
}

/**
 * What the sync listDevices costs without its ioctl: one LIST_DEVICES answer of `count`
 * devices taken from a bare Control once, then handed again and again to the same command
 * program the sync client runs (its entries made, in slices when many, the slices' yields
 * answered at once), timed as the client's list is (the best and the median of SCALE_ROUNDS
 * rounds, each the mean of 20 calls). Beside the client's own time and the C peers', it says
 * how much of a list is its JavaScript in this boot.
 */
function listJavaScriptAlone(count) {
  const { binding } = require('../dist/binding.js');
  const commands = require('../dist/commands.js');
  const { Command, Flag } = require('..');
  const control = new (binding().Control)('/dev/mapper/control');
  try {
    const answer = control.ioctlSync({ cmd: Command.LIST_DEVICES, flags: Flag.UUID });
    const list = () => {
      const { program } = commands.listDevices();
      program.next();
      let step = program.next({ result: answer });
      while (step.done !== true) step = program.next({});
      if (step.value.length < count) throw new Error(`the replayed list has ${step.value.length} devices, not ${count}`);
    };
    const rounds = [];
    for (let r = 0; r < SCALE_ROUNDS; r++) rounds.push(timeSync(20, list, 5));
    return { best: Math.min(...rounds), median: median(rounds) };
  } finally {
    control.closeSync();
  }
}

/** Many devices and a 100,000-row table, and what they cost the event loop. */
async function scale(DeviceMapper, Table, targets, raw, libdm) {
  const { monitorEventLoopDelay } = require('node:perf_hooks');
  const faultCost = pageFaultCost();
  const dm = await DeviceMapper.open();
  const sdm = DeviceMapper.openSync();
  const zero8 = new Table([{ start: 0, length: 8, target: targets.zero() }]);
  const rows = [];
  const add = (label, sync, async_, raw, libdm) =>
    rows.push({ operation: label, 'sync µs': round(sync), 'async µs': round(async_), 'raw ioctl µs': round(raw), 'libdevmapper µs': round(libdm), 'sync/raw': raw ? round(sync / raw) : undefined, 'sync/libdm': libdm ? round(sync / libdm) : undefined });
  const listFaults = [];
  const listJs = [];
  let made = 0;
  for (const count of [1000, 10000]) {
    for (; made < count; made++) sdm.create(`bench-n${made}`, { table: zero8 });
    let [ls, la, lraw, llibdm] = [Infinity, Infinity, Infinity, Infinity];
    for (let r = 0; r < SCALE_ROUNDS; r++) {
      ls = Math.min(ls, timeSync(20, () => sdm.listDevices(), 5));
      la = Math.min(la, await timeOf(20, () => dm.listDevices(), 5));
      // The peers kept running (serve mode): an exec would fork this process, and each of its
      // heap pages written after a fork faults once (copy-on-write), some 40 faults a list
      // of 10,000 for the next dozens of lists, charged to the client timed next.
      lraw = Math.min(lraw, raw.time('list', '-', 20));
      llibdm = Math.min(llibdm, libdm.time('list', '-', 20));
    }
    add(`listDevices, ${count} devices`, ls, la, lraw, llibdm);
    listFaults.push({ measure: `page faults per sync listDevices, ${count} devices`, value: round(faultsPerCall(10, () => sdm.listDevices())) });
    const js = listJavaScriptAlone(count);
    listJs.push({ measure: `the sync listDevices' JavaScript alone, ${count} devices (its answer replayed, no ioctl), µs: best / median of ${SCALE_ROUNDS} rounds`, value: `${round(js.best)} / ${round(js.median)}` });
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
  const gc = gcPauses();
  gc.start();
  delay.enable();
  t0 = process.hrtime.bigint();
  await dm.load('bench-big-a', big);
  const asyncLoad = Number(process.hrtime.bigint() - t0) / 1e3;
  delay.disable();
  const loadBlockMs = delay.max / 1e6;
  const loadGcMs = await gc.stop();
  add('load a 100,000-row table', syncLoad, asyncLoad, undefined, undefined);
  const syncRead = timeSync(3, () => sdm.table('bench-big-s'), 1);
  // The first asynchronous read apart (the JIT compiles its paths, V8's heap grows for its
  // 100,000 rows), then four more.
  delay.reset();
  gc.start();
  delay.enable();
  await dm.table('bench-big-s');
  delay.disable();
  const firstReadBlockMs = delay.max / 1e6;
  const firstReadGcMs = await gc.stop();
  delay.reset();
  const readFaultsBefore = process.resourceUsage().minorPageFault;
  gc.start();
  delay.enable();
  const asyncRead = await timeOf(3, () => dm.table('bench-big-s'), 0);
  delay.disable();
  const readFaults = (process.resourceUsage().minorPageFault - readFaultsBefore) / 4; // timeOf warms up with one read
  const readBlockMs = delay.max / 1e6;
  const readGcMs = await gc.stop();
  // The same rows from JavaScript alone, as many times, the last one kept as a read's is.
  let kept = await jsRows(100000);
  delay.reset();
  gc.start();
  delay.enable();
  for (let i = 0; i < 4; i++) kept = await jsRows(100000);
  delay.disable();
  const jsBlockMs = delay.max / 1e6;
  const jsGcMs = await gc.stop();
  if (kept.length !== 100000) throw new Error(`jsRows made ${kept.length} rows`);
  gc.close();
  const rawRead = peerTime('raw_ioctl', 'table', 'bench-big-s', 5);
  add('read back a 100,000-row table', syncRead, asyncRead, rawRead, peerTime('libdm', 'table', 'bench-big-s', 5));
  sdm.remove('bench-big-s');
  sdm.remove('bench-big-a');
  sdm.close();
  await dm.close();
  console.log(`\nat scale, in this boot (each timing the best of ${SCALE_ROUNDS} interleaved rounds):`);
  console.table(rows);
  console.table([
    { measure: 'event loop\'s longest block while loading 100,000 rows (async), ms', value: round(loadBlockMs) },
    { measure: '  its longest garbage-collection pause meanwhile, ms', value: round(loadGcMs) },
    { measure: 'event loop\'s longest block during the first async read of 100,000 rows, ms', value: round(firstReadBlockMs) },
    { measure: '  its longest garbage-collection pause meanwhile, ms', value: round(firstReadGcMs) },
    { measure: 'event loop\'s longest block while reading 100,000 rows (async, the 4 reads after the first), ms', value: round(readBlockMs) },
    { measure: '  its longest garbage-collection pause meanwhile, ms', value: round(readGcMs) },
    { measure: "the kernel's own 100,000-row TABLE_STATUS (from C), ms: one piece, in which the guest's one CPU runs nothing else", value: round(rawRead / 1e3) },
    { measure: 'event loop\'s longest block while JavaScript alone makes the same 100,000 rows in 4 ms slices (4 times, no call), ms', value: round(jsBlockMs) },
    { measure: '  its longest garbage-collection pause meanwhile, ms', value: round(jsGcMs) },
    { measure: 'page faults per async read of 100,000 rows', value: Math.round(readFaults) },
    ...listJs,
    ...listFaults,
    { measure: 'one page fault in this boot, µs', value: round(faultCost) },
  ]);
}

/**
 * 64 calls in flight against the raw ioctl one after another (and Node's own fs.promises
 * fstat, 64 in flight, against fstat(2) from C), and what an unrelated fs.promises.stat waits
 * while 64 DM calls are queued, against its idle latency: all in interleaved rounds.
 */
async function flight(DeviceMapper, Table, targets, raw) {
  const dm = await DeviceMapper.open();
  const qdm = await DeviceMapper.open({ stackTraces: 'call' });
  const sdm = DeviceMapper.openSync();
  sdm.create('bench-fly', { table: new Table([{ start: 0, length: 8, target: targets.zero() }]) });
  const { binding } = require('../dist/binding.js');
  const { Command } = require('..');
  const control = new (binding().Control)('/dev/mapper/control');
  const fsp = require('node:fs/promises');
  const handle = await fsp.open('/dev/mapper/control', 'r');
  const calls = { client: () => dm.info('bench-fly'), quick: () => qdm.info('bench-fly'), bare: () => control.call(Command.DEV_STATUS, 0, 0, 0, 'bench-fly', '', undefined), fsFstat: () => handle.stat() };
  // 50 batches each first: the JIT compiles the call paths.
  for (const call of Object.values(calls)) await flightBatch(50, call);
  const batches = 5;
  const t = await interleave(ROUNDS, {
    client: () => flightBatch(batches, calls.client),
    quick: () => flightBatch(batches, calls.quick),
    bare: () => flightBatch(batches, calls.bare),
    raw: () => raw.time('info', 'bench-fly', 64 * batches),
    fsFstat: () => flightBatch(batches, calls.fsFstat),
    cFstat: () => raw.time('fstat', '-', 64 * batches),
  });
  // The addon's I/O threads right after them: three pools (the two clients and the bare
  // Control), each a worker and its supervisor unless a call blocked in the kernel made it grow.
  const ioThreads = fs.readdirSync('/proc/self/task').filter((task) => {
    try {
      return fs.readFileSync(`/proc/self/task/${task}/comm`, 'utf8').trim() === 'devmapper-io';
    } catch {
      return false;
    }
  }).length;
  // fs.promises.stat, 20 calls a round, with nothing else to do and while a pump keeps 64 DM
  // calls queued; 200 first to warm both.
  const stats = 5;
  for (let i = 0; i < 200; i++) await fsp.stat('/');
  // A round of stats while a pump keeps 64 of `call` in flight, awaited together.
  const underPump = (call) => async () => {
    let busy = true;
    const pump = (async () => {
      while (busy) await Promise.all(Array.from({ length: 64 }, call));
    })();
    const us = await asyncBatch(stats, () => fsp.stat('/'));
    busy = false;
    await pump;
    return us;
  };
  const loaded = underPump(calls.client);
  // The same with Node's own calls pumped instead: 64 FileHandle.stat() kept in flight on its
  // threadpool (the floor: what Node's own I/O does to an unrelated stat on this one CPU).
  const loadedByNode = underPump(calls.fsFstat);
  await loaded();
  const s = await interleave(ROUNDS, { idle: () => asyncBatch(stats, () => fsp.stat('/')), loaded });
  // Apart, after: its rounds leave the heap and the threadpool busier than the DM pump's do,
  // which would weigh on the rounds beside them.
  await loadedByNode();
  const n = await interleave(ROUNDS, { idle: () => asyncBatch(stats, () => fsp.stat('/')), loadedByNode });
  await handle.close();
  await control.close();
  await qdm.close();
  sdm.remove('bench-fly');
  sdm.close();
  await dm.close();
  const perSecond = (us) => Math.round(1e6 / median(us));
  console.log(`\n64 in flight, and fs.promises.stat while 64 DM calls are queued (medians of ${ROUNDS} interleaved rounds; ratios: the median of the per-round ratios, (least-greatest), and the ratio of the two sides' fastest rounds):`);
  console.table([
    { measure: "info, 64 in flight (async, default stackTraces 'async'), calls/s", value: perSecond(t.client), against: 'raw ioctl one at a time (rate)', ratio: shown(ratios(t.raw, t.client)) },
    { measure: "info, 64 in flight (async, stackTraces 'call'), calls/s", value: perSecond(t.quick), against: 'raw ioctl one at a time (rate)', ratio: shown(ratios(t.raw, t.quick)) },
    { measure: 'info, 64 in flight, the addon alone, calls/s', value: perSecond(t.bare), against: 'raw ioctl one at a time (rate)', ratio: shown(ratios(t.raw, t.bare)) },
    { measure: 'raw ioctl (C) one at a time, calls/s', value: perSecond(t.raw) },
    { measure: "Node's fs.promises fstat (FileHandle.stat), 64 in flight, calls/s", value: perSecond(t.fsFstat), against: 'fstat(2) from C one at a time (rate)', ratio: shown(ratios(t.cFstat, t.fsFstat)) },
    { measure: 'fstat(2) from C one at a time, calls/s', value: perSecond(t.cFstat) },
    { measure: 'devmapper-io threads after 64 in flight (3 pools: the two clients and the bare Control)', value: ioThreads },
    { measure: 'fs.promises.stat, idle, µs', value: round(median(s.idle)) },
    { measure: 'fs.promises.stat while 64 DM calls are queued, µs', value: round(median(s.loaded)), against: 'idle', ratio: shown(ratios(s.loaded, s.idle)) },
    { measure: "fs.promises.stat while 64 of Node's own FileHandle.stat() are queued, µs", value: round(median(n.loadedByNode)), against: 'idle (its own rounds)', ratio: shown(ratios(n.loadedByNode, n.idle)) },
  ]);
}

async function inside() {
  const { DeviceMapper, Table, targets } = require('..');
  const run = sections();
  const raw = new Peer('raw_ioctl');
  const libdm = new Peer('libdm');
  try {
    // First: the one-call rows, before the other rows have made thousands of devices and large
    // tables.
    if (run.includes('calls')) await calls(DeviceMapper, Table, targets, raw, libdm);
    if (run.includes('floor')) await floor(DeviceMapper, Table, targets, raw);
    if (run.includes('dmsetup')) await againstDmsetup(DeviceMapper, Table, targets);
    if (run.includes('scale')) await scale(DeviceMapper, Table, targets, raw, libdm);
    if (run.includes('flight')) await flight(DeviceMapper, Table, targets, raw);
  } finally {
    raw.close();
    libdm.close();
  }
  if (run.includes('syscalls')) {
    console.log('\nsystem calls per operation (strace -f -c over every thread; a run of 0 operations subtracted):');
    console.table(require('./syscalls').syscallsPerOperation());
  }
  console.log(`\npeak RSS of this process: ${round(process.resourceUsage().maxRSS / 1024)} MiB`);
}

function buildPeers() {
  fs.mkdirSync(CBIN, { recursive: true });
  const src = path.join(__dirname, 'c');
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', path.join(CBIN, 'raw_ioctl'), path.join(src, 'raw_ioctl.c')], { stdio: 'inherit' });
  // libdevmapper-dev (scripts/setup.sh installs it): a benchmark-only dependency.
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', path.join(CBIN, 'libdm'), path.join(src, 'libdm.c'), '-ldevmapper'], { stdio: 'inherit' });
}

async function main() {
  if (process.env.DEVMAPPER_SANDBOX === '1') return inside();
  sections(); // a misspelt BENCH_ONLY fails before the boot
  buildPeers();
  if (process.env.BENCH_HOST === '1') return inside();
  const { runInSandbox, allowedCpus } = require('../dist/sandbox');
  // On one host CPU (BENCH_CPU, default the last this process may use; 'none': wherever the
  // host puts it): UML's kernel and the guest's processes hand over at every system call, and
  // spread over two CPUs each hand-over may wait for an idle one to wake.
  const cpuEnv = process.env.BENCH_CPU ?? '';
  const cpu = cpuEnv === 'none' ? undefined : cpuEnv !== '' ? Number(cpuEnv) : allowedCpus()?.at(-1);
  if (cpu !== undefined) console.log(`bench: the sandbox runs on host CPU ${cpu} (BENCH_CPU)`);
  // BENCH_TRACE_GC=1: V8 prints each collection (kind, heap before and after, pause, reason).
  // NODE_OPTIONS refuses --trace-gc, so it goes on the guest's command line.
  const traceGc = process.env.BENCH_TRACE_GC === '1' ? ['--trace-gc'] : [];
  const r = await runInSandbox([process.execPath, ...traceGc, __filename], { cwd: path.resolve(__dirname, '..'), memory: 2048, timeout: 30 * 60 * 1000, cpu });
  process.exitCode = r.exitCode;
  // Only a full run is the record: a narrowed one prints its tables and nothing else.
  if (r.exitCode === 0 && (process.env.BENCH_ONLY ?? '') === '' && process.env.BENCH_ROUNDS === undefined && process.env.BENCH_BATCH === undefined && traceGc.length === 0) {
    const when = new Date().toISOString().slice(0, 10);
    const text = `# Benchmark results\n\n\`npm run bench\` on ${when}, in one boot of the kernel sandbox (User-Mode Linux ${r.kernelRelease}, one CPU; ${os.cpus()[0]?.model ?? 'unknown CPU'} host). What each row and column means: README.md beside this file. Only counts and ratios within this boot mean anything.\n\n\`\`\`\n${r.output.trim()}\n\`\`\`\n`;
    fs.writeFileSync(path.join(__dirname, 'RESULTS.md'), text);
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
