#!/usr/bin/env node
'use strict';
// A dm-verity device over two loop disks: the hash tree of the data disk built in JavaScript
// (salted SHA-256, the kernel's format) and written to the hash disk, the device activated
// read-only and read, then one data block changed behind its back: its read fails with EIO and
// the status turns from V to C. Run as root on a kernel with device-mapper, or inside the
// sandbox: node dist/sandbox/cli.js -- node examples/verity.js
const { randomBytes } = require('node:crypto');
const { closeSync, mkdtempSync, openSync, readSync, rmSync, truncateSync, writeFileSync, writeSync } = require('node:fs');
const { join } = require('node:path');
const { DeviceMapper, LoopDevice, Verity } = require('..');

// Device names, with $DEVMAPPER_EXAMPLE_PREFIX before them (the tests run this with theirs).
const n = (name) => `${process.env.DEVMAPPER_EXAMPLE_PREFIX || ''}${name}`;

function readBlock(path, block) {
  const buf = Buffer.alloc(4096);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buf, 0, 4096, block * 4096);
  } finally {
    closeSync(fd);
  }
  return buf;
}

async function main() {
  const dm = await DeviceMapper.open();
  const dir = mkdtempSync(join(process.env.DEVMAPPER_SCRATCH || '/run', 'verity-'));
  const loops = [];
  let volume;
  try {
    const dataFile = join(dir, 'data.img');
    const hashFile = join(dir, 'hash.img');
    const data = randomBytes(4 << 20);
    data.write('a block the hash tree vouches for', 10 * 4096);
    writeFileSync(dataFile, data);
    writeFileSync(hashFile, '');
    truncateSync(hashFile, 1 << 20);
    for (const file of [dataFile, hashFile]) loops.push(await LoopDevice.attach(file));

    const tree = await Verity.format(loops[0].path, loops[1].path);
    console.log(`hash tree: ${tree.dataBlocks} data blocks, ${tree.levels} levels, ${tree.hashBlocks} hash blocks, root ${tree.rootHash}`);

    volume = await Verity.open(dm, n('verity-demo'), { dataDevice: loops[0].dev, hashDevice: loops[1].dev, tree });
    console.log(`opened ${volume.name} at ${volume.path}, read-only ${(await volume.info()).readOnly}`);
    console.log(`block 10 reads: "${readBlock(volume.path, 10).subarray(0, 33).toString()}"`);
    console.log(`status: ${(await volume.status()).corrupted ? 'C (corrupted)' : 'V (verified)'}`);

    // Change block 20 on the data disk itself, under the device.
    const fd = openSync(dataFile, 'r+');
    writeSync(fd, Buffer.from('tampered'), 0, 8, 20 * 4096);
    closeSync(fd);
    let outcome = 'read succeeded';
    try {
      readBlock(volume.path, 20);
    } catch (e) {
      outcome = `read failed with ${e.code}`;
    }
    console.log(`after tampering with block 20: ${outcome}; status: ${(await volume.status()).corrupted ? 'C (corrupted)' : 'V (verified)'}`);
    await volume.close();
    volume = undefined;
  } finally {
    if (volume !== undefined) await volume.close().catch(() => undefined);
    for (const loop of loops) await loop.detach();
    rmSync(dir, { recursive: true, force: true });
    await dm.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
