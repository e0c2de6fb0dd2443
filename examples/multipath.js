#!/usr/bin/env node
'use strict';
// A multipath map over two paths to one disk (two loop devices over the same file): a path
// fails and the data still goes through the other; with every path failed a write is queued
// in the kernel until a path is reinstated; path changes followed through the kernel's events.
// Run as root on a kernel with device-mapper, or inside the kernel sandbox:
//   npx devmapper-sandbox -- node examples/multipath.js
const { spawn } = require('node:child_process');
const { closeSync, fsyncSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, truncateSync, writeFileSync, writeSync } = require('node:fs');
const { join } = require('node:path');
const { DeviceMapper, LoopDevice, Multipath } = require('..');

// Device names, with $DEVMAPPER_EXAMPLE_PREFIX before them (the tests run this with theirs).
const n = (name) => `${process.env.DEVMAPPER_EXAMPLE_PREFIX || ''}${name}`;
const SECTORS = 8192;

function writeAt(path, text, byteOffset) {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, Buffer.from(text), 0, text.length, byteOffset);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function readAt(path, length, byteOffset) {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(length);
    readSync(fd, b, 0, length, byteOffset);
    return b.toString();
  } finally {
    closeSync(fd);
  }
}

/** Writes the kernel counts in flight on the device (/sys/block/dm-N/inflight). */
function writesInFlight(devPath) {
  return Number(readFileSync(`/sys/block/${devPath.replace('/dev/', '')}/inflight`, 'utf8').trim().split(/\s+/)[1]);
}

async function main() {
  const dm = await DeviceMapper.open();
  const dir = mkdtempSync(join(process.env.DEVMAPPER_SCRATCH || '/run', 'mpath-'));
  const lun = join(dir, 'lun.img');
  writeFileSync(lun, '');
  truncateSync(lun, SECTORS * 512);
  const loops = [await LoopDevice.attach(lun), await LoopDevice.attach(lun)];
  const [p1, p2] = loops;
  let mp;
  try {
    mp = await Multipath.create(dm, n('mpath'), {
      size: SECTORS,
      queueIfNoPath: true,
      // bio mode: the kernel counts a queued write among the device's writes in flight.
      queueMode: 'bio',
      groups: [{ selector: 'round-robin', paths: [{ device: p1.dev }, { device: p2.dev }] }],
    });
    console.log(`table: 0 ${SECTORS} multipath ${mp.target.params}`);

    // Follow the paths through the kernel's events while we fail one.
    const ac = new AbortController();
    const watch = mp.watchPaths({ signal: ac.signal });
    for (let i = 0; i < mp.paths.length; i++) await watch.next(); // the paths as they are now
    await mp.failPath(p1.dev);
    const { value: change } = await watch.next();
    console.log(`path ${change.device} ${change.health} (${change.failCount} failures)`);

    writeAt(mp.info.path, 'written while a path was down', 0);
    console.log(`read back while a path was down: "${readAt(mp.info.path, 29, 0)}"`);

    // Every path down: with queue_if_no_path the write waits in the kernel.
    await mp.failPath(p2.dev);
    await mp.waitFor((s) => s.paths.every((p) => p.health === 'failed'), { timeout: 10000 });
    const dd = spawn('dd', ['if=/dev/zero', `of=${mp.info.path}`, 'bs=4096', 'count=1', 'seek=1', 'oflag=direct', 'status=none']);
    const done = new Promise((resolve) => dd.on('exit', (code) => resolve(code)));
    let finished = false;
    done.then(() => (finished = true));
    // The write is queued once the kernel counts it in flight.
    for (const until = Date.now() + 10000; writesInFlight(mp.info.path) === 0 && Date.now() < until; ) await new Promise((r) => setTimeout(r, 20));
    const queued = writesInFlight(mp.info.path) === 1 && !finished;
    await mp.reinstatePath(p2.dev);
    console.log(`queued write completed after reinstate_path: ${queued && (await done) === 0}`);

    await mp.reinstatePath(p1.dev);
    await mp.waitForPath(p1.dev, 'active', { timeout: 10000 });
    ac.abort();
    await watch.return();
    const state = await mp.state();
    console.log(`paths: ${state.paths.map((p) => `${p.device} ${p.health}`).join(', ')}`);
    await mp.remove();
    mp = undefined;
    console.log(`removed ${n('mpath')}`);
  } finally {
    if (mp) {
      await mp.failIfNoPath().catch(() => undefined);
      await mp.remove().catch(() => undefined);
    }
    for (const l of loops.reverse()) await l.detach().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    await dm.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
