#!/usr/bin/env node
'use strict';
// Fault injection: a disk wrapped in a FaultyDevice that fails, loses blocks and slows down on
// demand, then heals. Run as root on a kernel with device-mapper, or inside the sandbox:
//   node dist/sandbox/cli.js -- node examples/faults.js
const { closeSync, fsyncSync, mkdtempSync, openSync, readSync, rmSync, truncateSync, writeFileSync, writeSync } = require('node:fs');
const { join } = require('node:path');
const { DeviceMapper, FaultyDevice, LoopDevice } = require('..');

// Device names, with $DEVMAPPER_EXAMPLE_PREFIX before them (the tests run this with theirs).
const n = (name) => `${process.env.DEVMAPPER_EXAMPLE_PREFIX || ''}${name}`;

// A fresh open each time: the block device's page cache goes at its last close, so the read reaches the device.
function read(path) {
  const buf = Buffer.alloc(4096);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buf, 0, buf.length, 0);
  } finally {
    closeSync(fd);
  }
  return `"${buf.toString().replace(/\0+$/, '')}"`;
}

function tryRead(path) {
  try {
    return read(path);
  } catch (e) {
    return `read failed with ${e.code}`;
  }
}

async function main() {
  const dm = await DeviceMapper.open();
  const dir = mkdtempSync(join(process.env.DEVMAPPER_SCRATCH || '/run', 'faults-'));
  let loop;
  try {
    writeFileSync(join(dir, 'disk.img'), '');
    truncateSync(join(dir, 'disk.img'), 4 << 20);
    loop = await LoopDevice.attach(join(dir, 'disk.img'));
    const disk = await FaultyDevice.create(dm, n('faults-disk'), { device: loop.dev });
    const fd = openSync(disk.path, 'r+');
    writeSync(fd, Buffer.from('hello from a healthy disk'), 0, 25, 0);
    fsyncSync(fd);
    closeSync(fd);
    console.log(`healthy read: ${read(disk.path)}`);

    await disk.error();
    console.log(`error: ${tryRead(disk.path)}`);

    await disk.dust({ badBlocks: [0] });
    console.log(`dust: block 0 ${tryRead(disk.path)}; bad blocks [${(await disk.badBlocks()).join(', ')}]`);

    await disk.delay({ read: 300 });
    const t0 = Date.now();
    read(disk.path);
    console.log(`delay: a read took ${Date.now() - t0} ms (asked 300)`);

    await disk.healthy();
    console.log(`healthy again: ${read(disk.path)}`);
    await disk.remove();
  } finally {
    await dm.remove(n('faults-disk')).catch(() => undefined);
    if (loop !== undefined) await loop.detach().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    await dm.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
