#!/usr/bin/env node
'use strict';
// Cost of the basic operations, measured inside one boot of the kernel sandbox (or on the
// host as root with BENCH_HOST=1): ioctls per command (the machine-independent figure), and
// time per operation as a ratio to `dmsetup` doing the same in the same boot.
//   npm run build && node bench/ioctl.js
const path = require('node:path');
const { execFileSync } = require('node:child_process');

async function inside() {
  const { DeviceMapper, Table, targets } = require('..');
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
  console.table(report);
}

async function main() {
  if (process.env.DEVMAPPER_SANDBOX === '1' || process.env.BENCH_HOST === '1') return inside();
  const { runInSandbox } = require('../dist/sandbox');
  const r = await runInSandbox([process.execPath, __filename], { cwd: path.resolve(__dirname, '..') });
  process.exitCode = r.exitCode;
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
