#!/usr/bin/env node
'use strict';
// A classic snapshot of a live volume, then merged back: the Snapshot recipe. Run as root on a
// kernel with device-mapper, or inside the sandbox:
//   node dist/sandbox/cli.js -- node examples/snapshot.js
const { closeSync, fsyncSync, mkdtempSync, openSync, readSync, rmSync, truncateSync, writeFileSync, writeSync } = require('node:fs');
const { join } = require('node:path');
const { DeviceMapper, LoopDevice, Snapshot, Table, targets } = require('..');

// Device names, with $DEVMAPPER_EXAMPLE_PREFIX before them (the tests run this with theirs).
const n = (name) => `${process.env.DEVMAPPER_EXAMPLE_PREFIX || ''}${name}`;

function write(path, text) {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, Buffer.from(text.padEnd(32, '\0')), 0, 32, 0);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function read(path) {
  const buf = Buffer.alloc(32);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buf, 0, 32, 0);
  } finally {
    closeSync(fd);
  }
  return buf.toString().replace(/\0+$/, '');
}

async function main() {
  const dm = await DeviceMapper.open();
  const dir = mkdtempSync(join(process.env.DEVMAPPER_SCRATCH || '/run', 'snapshot-'));
  const loops = [];
  try {
    for (const [file, sectors] of [['data.img', 8192], ['cow.img', 2048]]) {
      writeFileSync(join(dir, file), '');
      truncateSync(join(dir, file), sectors * 512);
      loops.push(await LoopDevice.attach(join(dir, file)));
    }
    const [data, cow] = loops;
    const vol = await dm.create(n('snapdemo-vol'), { table: new Table([{ start: 0, length: 8192, target: targets.linear({ device: data.dev, offset: 0 }) }]) });
    write(vol.path, 'before the snapshot');

    // The volume stays live: it becomes a snapshot-origin over a hidden -real device.
    const snap = await Snapshot.create(dm, vol.name, { name: n('snapdemo-snap'), cowDevice: cow.dev, chunkSize: 8 });
    console.log(`origin table: ${(await dm.table(vol.name)).toString()}`);
    write(vol.path, 'after the snapshot');
    const snapPath = (await dm.info(snap.name)).path;
    const status = await snap.status();
    console.log(`snapshot status: ${status.state}, ${status.state === 'valid' ? `${status.usage.used}/${status.usage.total} sectors used` : ''}`);
    console.log(`snapshot reads: "${read(snapPath)}"; origin reads: "${read(vol.path)}"`);

    // Merge the snapshot back: the origin then holds what the snapshot held.
    write(snapPath, 'written to the snapshot');
    const merged = await snap.merge({ timeout: 60000 });
    console.log(`merged ${merged.mergedSectors} sectors; origin table: ${(await dm.table(vol.name)).toString()}`);
    console.log(`origin reads after the merge: "${read(vol.path)}"`);
    await dm.remove(vol.name);
  } finally {
    // Whatever a failure left, top-down.
    for (const name of [n('snapdemo-snap'), n('snapdemo-vol'), n('snapdemo-vol-real')]) await dm.remove(name).catch(() => undefined);
    for (const l of loops) await l.detach().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    await dm.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
