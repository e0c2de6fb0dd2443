#!/usr/bin/env node
'use strict';
// The typed API on real devices: a thin pool with a thin volume and a snapshot of it, and a
// multipath map over two paths that survives one of them failing, each built with the
// builders and read back through typed tables and statuses. Run as root on a kernel with
// device-mapper, or inside the kernel sandbox: npx devmapper-sandbox -- node examples/typed-tour.js
const { closeSync, fsyncSync, mkdtempSync, openSync, readSync, rmSync, truncateSync, writeFileSync, writeSync } = require('node:fs');
const { join } = require('node:path');
const { DeviceMapper, LoopDevice, Table, multipathMessages, targets, thinPoolMessages } = require('..');

const MiB = 2048; // sectors
// Device names, with $DEVMAPPER_EXAMPLE_PREFIX before them (the tests run this with theirs).
const n = (name) => `${process.env.DEVMAPPER_EXAMPLE_PREFIX || ''}${name}`;

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

async function main() {
  const dm = await DeviceMapper.open();
  const dir = mkdtempSync(join(process.env.DEVMAPPER_SCRATCH || '/run', 'tour-'));
  const loops = [];
  const disk = async (name, sectors) => {
    const file = join(dir, name);
    writeFileSync(file, '');
    truncateSync(file, sectors * 512);
    const loop = await LoopDevice.attach(file);
    loops.push(loop);
    return loop;
  };
  try {
    // --- A thin pool: metadata and data on two loop disks (the metadata's first 4 KiB zeroed,
    // as lvm does, so the kernel formats it), a 10 MiB thin volume, a snapshot of it.
    const meta = await disk('meta.img', 8 * MiB);
    const data = await disk('data.img', 64 * MiB);
    writeAt(meta.path, '\0'.repeat(4096), 0);
    const pool = await dm.create(n('tour-pool'), {
      table: new Table([{ start: 0, length: 64 * MiB, target: targets.thinPool({
        metadataDevice: meta.dev, dataDevice: data.dev, blockSize: 128, lowWaterMark: 32, errorIfNoSpace: true }) }]),
    });
    await dm.message(n('tour-pool'), thinPoolMessages.createThin(0));
    const thin = await dm.create(n('tour-thin'), {
      table: new Table([{ start: 0, length: 10 * MiB, target: targets.thin({ poolDevice: pool.dev, deviceId: 0 }) }]),
    });
    writeAt(thin.path, 'data in a thin volume', 0);
    // A snapshot of an active thin: its origin is suspended around create_snap.
    await dm.suspend(n('tour-thin'));
    await dm.message(n('tour-pool'), thinPoolMessages.createSnap(1, 0));
    await dm.resume(n('tour-thin'));
    const snap = await dm.create(n('tour-snap'), {
      table: new Table([{ start: 0, length: 10 * MiB, target: targets.thin({ poolDevice: pool.dev, deviceId: 1 }) }]),
    });
    writeAt(thin.path, 'changed after the snap', 0);

    const [poolRow] = await dm.status(n('tour-pool'));
    if (poolRow && poolRow.status.known && poolRow.status.type === 'thin-pool' && !poolRow.status.failed) {
      const s = poolRow.status;
      console.log(`pool: ${s.data.used}/${s.data.total} data blocks, ${s.metadata.used}/${s.metadata.total} metadata blocks, mode ${s.mode}, ${s.noSpace}_if_no_space`);
    }
    const [thinRow] = await dm.status(n('tour-thin'));
    if (thinRow && thinRow.status.known && thinRow.status.type === 'thin' && !thinRow.status.failed) {
      console.log(`thin: ${thinRow.status.mappedSectors} sectors mapped, highest ${thinRow.status.highestMappedSector}`);
    }
    const poolTable = await dm.table(n('tour-pool'));
    const [poolTarget] = poolTable.rowsOfType('thin-pool');
    console.log(`pool table: ${poolTable.toString()}`);
    console.log(`pool block size ${poolTarget.target.blockSize} sectors, low water mark ${poolTarget.target.lowWaterMark}`);
    console.log(`snapshot keeps: "${readAt(snap.path, 21, 0)}"; origin now: "${readAt(thin.path, 22, 0)}"`);

    // --- Multipath: two loop devices over the same file are two paths to one disk.
    const lun = join(dir, 'lun.img');
    writeFileSync(lun, '');
    truncateSync(lun, 16 * MiB * 512);
    const p1 = await LoopDevice.attach(lun);
    const p2 = await LoopDevice.attach(lun);
    loops.push(p1, p2);
    const mp = await dm.create(n('tour-mpath'), {
      table: new Table([{ start: 0, length: 16 * MiB, target: targets.multipath({
        queueIfNoPath: false,
        groups: [{ selector: 'round-robin', paths: [{ device: p1.dev }, { device: p2.dev }] }] }) }]),
    });
    await dm.message(n('tour-mpath'), multipathMessages.failPath(p1.dev));
    writeAt(mp.path, 'written while a path was down', 0);
    const [mpRow] = await dm.status(n('tour-mpath'));
    if (mpRow && mpRow.status.known && mpRow.status.type === 'multipath') {
      const paths = mpRow.status.groups.flatMap((g) => g.paths.map((p) => `${p.device} ${p.health} (${p.failCount} failures)`));
      console.log(`multipath paths: ${paths.join(', ')}`);
    }
    await dm.message(n('tour-mpath'), multipathMessages.reinstatePath(p1.dev));
    console.log(`read through the map: "${readAt(mp.path, 29, 0)}"`);
    const mpTable = await dm.table(n('tour-mpath'));
    console.log(`multipath table: ${mpTable.toString()}`);
  } finally {
    for (const name of ['tour-mpath', 'tour-snap', 'tour-thin', 'tour-pool']) await dm.remove(n(name)).catch(() => undefined);
    for (const l of loops.reverse()) await l.detach().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    await dm.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
