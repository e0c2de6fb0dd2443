#!/usr/bin/env node
'use strict';
// The thin pool recipe: a pool on two loop disks, a thin volume and a snapshot of it taken
// while it is active, and a pool that grows itself when the kernel's low water event says it
// is nearly full. Run as root on a kernel with device-mapper, or inside the kernel sandbox:
// npx devmapper-sandbox -- node examples/thin-pool.js
const { mkdtempSync, rmSync, truncateSync, writeFileSync } = require('node:fs');
const { open } = require('node:fs/promises');
const { join } = require('node:path');
const { DeviceMapper, LoopDevice, ThinPool } = require('..');

const BLOCK = 128; // sectors in a data block (64 KiB)
// Device names, with $DEVMAPPER_EXAMPLE_PREFIX before them (the tests run this with theirs).
const n = (name) => `${process.env.DEVMAPPER_EXAMPLE_PREFIX || ''}${name}`;

// Asynchronous writes: a write that waits for the pool to grow must not block the event loop
// that runs the grow.
async function writeAt(path, data, byteOffset) {
  const fh = await open(path, 'r+');
  try {
    await fh.write(data, 0, data.length, byteOffset);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function readAt(path, length, byteOffset) {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(length);
    await fh.read(b, 0, length, byteOffset);
    return b.toString();
  } finally {
    await fh.close();
  }
}

async function main() {
  const dm = await DeviceMapper.open();
  const dir = mkdtempSync(join(process.env.DEVMAPPER_SCRATCH || '/run', 'thin-pool-'));
  const loops = [];
  const disk = async (name, sectors) => {
    const file = join(dir, name);
    writeFileSync(file, '');
    truncateSync(file, sectors * 512);
    const loop = await LoopDevice.attach(file);
    loops.push(loop);
    return loop;
  };
  let pool;
  const volumes = [];
  try {
    const meta = await disk('meta.img', 8192);
    const data = await disk('data.img', 16 * BLOCK);
    // create() zeroes the metadata's first 4 KiB, so the kernel formats it.
    pool = await ThinPool.create(dm, n('thin-pool'), { metadataDevice: meta.dev, dataDevice: data.dev, blockSize: BLOCK, lowWaterMark: 4 });
    const s0 = await pool.runningStatus();
    console.log(`pool: ${s0.data.used}/${s0.data.total} data blocks, transaction ${s0.transactionId}`);

    console.log(`volume 1: transaction ${await pool.createThin(1)}`);
    const vol = await pool.activateThin(n('thin-vol'), { deviceId: 1, sectors: 64 * BLOCK });
    volumes.push(vol);
    await writeAt(vol.path, Buffer.from('before the snapshot'), 0);
    // The volume is active: createSnapshot suspends it around create_snap.
    const tid = await pool.createSnapshot(2, 1);
    const snap = await pool.activateThin(n('thin-snap'), { deviceId: 2, sectors: 64 * BLOCK });
    volumes.push(snap);
    await writeAt(vol.path, Buffer.from('after the snapshot!'), 0);
    console.log(`snapshot 2 of 1: transaction ${tid}, reads "${await readAt(snap.path, 19, 0)}"`);

    // Grow the pool when the kernel says it is nearly full, as a storage daemon would.
    const stop = new AbortController();
    const watching = pool.onLowWater(async (event, p) => {
      truncateSync(data.file, 32 * BLOCK * 512);
      await data.refreshCapacity();
      const grown = await p.grow();
      console.log(`low water: ${event.freeDataBlocks} free of ${event.status.data.total} blocks; grown to ${grown.data.total}`);
    }, { signal: stop.signal });
    // 20 blocks more than the 14 left: the write waits (queue_if_no_space) until the pool grew.
    await writeAt(vol.path, Buffer.alloc(20 * BLOCK * 512, 'x'), 16 * BLOCK * 512);
    stop.abort();
    await watching;
    const s1 = await pool.runningStatus();
    console.log(`pool: ${s1.data.used}/${s1.data.total} data blocks, mode ${s1.mode}`);
  } finally {
    for (const v of volumes.reverse()) await pool.deactivateThin(v).catch(() => undefined);
    if (pool) await pool.remove().catch(() => undefined);
    for (const l of loops.reverse()) await l.detach().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    const left = (await dm.listDevices()).filter((d) => d.name.startsWith(n('thin-')));
    console.log(left.length === 0 ? 'removed' : `left behind: ${left.map((d) => d.name).join(', ')}`);
    await dm.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
