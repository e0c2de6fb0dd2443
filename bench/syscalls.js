'use strict';
// System calls per operation, counted by `strace -f -c` (every thread of the process): a
// child runs an operation N times and once 0 times, and the difference, divided by N, is what
// one operation costs in system calls (the start-up of node and of the client cancels out).
// Run inside the kernel sandbox by bench/ioctl.js; strace comes with scripts/setup.sh.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

/** The child: opens both clients, makes `name`, runs `op` `n` times. */
const CHILD = `
const { DeviceMapper, Table, targets } = require(process.argv[1]);
const [op, name, n] = [process.argv[2], process.argv[3], Number(process.argv[4])];
(async () => {
  const dm = await DeviceMapper.open();
  const sdm = DeviceMapper.openSync();
  sdm.create(name, { table: new Table([{ start: 0, length: 8, target: targets.zero() }]) });
  // Warm-up, in the run of 0 operations too: the JIT compiles the paths (its mprotect calls
  // and the like) before counting, as in a long-running program.
  for (let i = 0; i < 2000; i++) sdm.info(name);
  for (let i = 0; i < 200; i++) await dm.info(name);
  for (let i = 0; i < 5; i++) await Promise.all(Array.from({ length: 64 }, () => dm.info(name)));
  if (op === 'sync') for (let i = 0; i < n; i++) sdm.info(name);
  if (op === 'async') for (let i = 0; i < n; i++) await dm.info(name);
  if (op === 'flight') for (let i = 0; i < n / 64; i++) await Promise.all(Array.from({ length: 64 }, () => dm.info(name)));
  // Node's own threadpool round trip, for comparison: fs.fstat of the control node.
  if (op === 'fstat') {
    const fd = require('node:fs').openSync('/dev/mapper/control', 'r');
    const once = () => new Promise((resolve, reject) => require('node:fs').fstat(fd, (e) => (e ? reject(e) : resolve())));
    for (let i = 0; i < 200; i++) await once();
    for (let i = 0; i < n; i++) await once();
  }
  sdm.remove(name);
  sdm.close();
  await dm.close();
})();
`;

/** { syscall: calls } of one `strace -f -c` run of the child. */
function counts(op, n) {
  const out = path.join(os.tmpdir(), `devmapper-strace-${process.pid}-${op}-${n}.txt`);
  const lib = path.resolve(__dirname, '..');
  execFileSync('strace', ['-f', '-c', '-o', out, process.execPath, '-e', CHILD, lib, op, `bench-sc-${op}-${n}`, String(n)], { stdio: 'ignore' });
  const table = {};
  for (const line of fs.readFileSync(out, 'utf8').split('\n')) {
    // % time, seconds, usecs/call, calls, [errors,] syscall
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$/.exec(line);
    if (m && m[2] !== 'total') table[m[2]] = Number(m[1]);
  }
  fs.rmSync(out, { force: true });
  return table;
}

/** Rows of system calls per `info` call, for the sync client, async one at a time, and 64 in flight, and per fs.fstat. */
function syscallsPerOperation(n = 1280) {
  const rows = [];
  for (const [op, label] of [['sync', 'info, sync'], ['async', 'info, async, one at a time'], ['flight', 'info, async, 64 in flight'], ['fstat', "Node's fs.fstat, one at a time (its threadpool)"]]) {
    const base = counts(op, 0);
    const many = counts(op, n);
    const per = {};
    let total = 0;
    for (const [name, calls] of Object.entries(many)) {
      const d = (calls - (base[name] ?? 0)) / n;
      if (d >= 0.05) {
        per[name] = +d.toFixed(2);
        total += d;
      }
    }
    rows.push({ operation: label, 'syscalls/op': +total.toFixed(2), ...per });
  }
  return rows;
}

module.exports = { syscallsPerOperation };
