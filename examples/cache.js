#!/usr/bin/env node
'use strict';
// dm-cache: a fast device caching a slow one (here a `delay` device that holds every read back
// 50 ms), smq policy, writeback. Hot blocks are promoted and then read from the cache; writes
// leave dirty blocks on it; the safe flush switches to the cleaner policy, waits until no block
// is dirty, and removes the cache, leaving every byte on the origin. Run as root on a kernel
// with device-mapper, or inside the kernel sandbox:
//   npx devmapper-sandbox -- node examples/cache.js
const { closeSync, fsyncSync, mkdtempSync, openSync, readSync, rmSync, truncateSync, writeFileSync, writeSync } = require('node:fs');
const { join } = require('node:path');
const { Cache, DeviceMapper, LoopDevice, Table, targets } = require('..');

// Device names, with $DEVMAPPER_EXAMPLE_PREFIX before them (the tests run this with theirs).
const n = (name) => `${process.env.DEVMAPPER_EXAMPLE_PREFIX || ''}${name}`;
const BLOCK = 128; // cache block size, sectors (64 KiB)
const HOT = [0, 1, 2, 3, 4, 5, 6, 7];

async function disk(dir, file, sectors) {
  const path = join(dir, file);
  writeFileSync(path, '');
  truncateSync(path, sectors * 512);
  return LoopDevice.attach(path);
}

/** Reads 4 KiB of each block through a fresh open (the page cache goes at the last close): milliseconds taken. */
function timedReads(path, blocks) {
  const b = Buffer.alloc(4096);
  const t0 = process.hrtime.bigint();
  for (const k of blocks) {
    const fd = openSync(path, 'r');
    readSync(fd, b, 0, 4096, k * BLOCK * 512);
    closeSync(fd);
  }
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function main() {
  const dm = await DeviceMapper.open();
  const dir = mkdtempSync(join(process.env.DEVMAPPER_SCRATCH || '/run', 'cache-'));
  const loops = [];
  let slow;
  let cache;
  try {
    const [meta, fast, disk0] = [await disk(dir, 'meta.img', 8192), await disk(dir, 'fast.img', 8192), await disk(dir, 'slow.img', 16384)];
    loops.push(meta, fast, disk0);
    slow = await dm.create(n('slow'), {
      table: new Table([{ start: 0, length: 16384, target: targets.delay({ read: { device: disk0.dev, offset: 0, delay: 50 }, write: { device: disk0.dev, offset: 0, delay: 0 } }) }]),
    });
    cache = await Cache.create(dm, n('cache'), { metadataDevice: meta.dev, cacheDevice: fast.dev, originDevice: slow.dev, blockSize: BLOCK });
    console.log(`table: ${(await dm.table(cache.id)).toString()}`);

    // smq promotes blocks that are read again and again: read them until one pass is all hits.
    let s = await cache.runningStatus();
    for (let pass = 0; pass < 20; pass++) {
      timedReads(cache.path, HOT);
      const next = await cache.runningStatus();
      const hits = next.readHits - s.readHits;
      s = next;
      if (hits === HOT.length) break;
    }
    console.log(`hot blocks cached: ${s.cacheBlocks.used}/${s.cacheBlocks.total} cache blocks in use`);
    const hotMs = timedReads(cache.path, HOT);
    const after = await cache.runningStatus();
    const coldMs = timedReads(cache.path, [40, 41, 42, 43, 44, 45, 46, 47]);
    console.log(`hot re-read served by the cache: ${after.readHits - s.readHits} read hits, faster than a cold read: ${hotMs * 4 < coldMs}`);
    console.log(`(hot ${hotMs.toFixed(1)} ms, cold ${coldMs.toFixed(1)} ms for ${HOT.length} reads)`);

    const fd = openSync(cache.path, 'r+');
    HOT.forEach((k, i) => writeSync(fd, Buffer.alloc(BLOCK * 512, 0x41 + i), 0, BLOCK * 512, k * BLOCK * 512));
    fsyncSync(fd);
    closeSync(fd);
    console.log(`dirty after writes: ${(await cache.runningStatus()).dirty} blocks`);

    const last = await cache.flushAndRemove({ timeout: 30000 });
    console.log(`flushed: ${last.dirty} dirty, policy ${last.policy}`);
    cache = undefined;
    console.log(`removed ${n('cache')}`);

    const b = Buffer.alloc(BLOCK * 512);
    const origin = openSync(disk0.path, 'r');
    const same = HOT.every((k, i) => {
      readSync(origin, b, 0, b.length, k * BLOCK * 512);
      return b.every((x) => x === 0x41 + i);
    });
    closeSync(origin);
    console.log(`origin holds every byte written: ${same}`);
  } finally {
    if (cache) await cache.remove({ leaveDirty: true }).catch(() => undefined);
    if (slow) await dm.remove(n('slow')).catch(() => undefined);
    for (const l of loops) await l.detach().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    await dm.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
