#!/usr/bin/env node
'use strict';
// Changed-block tracking for incremental backups with dm-era: a full backup, then writes, then
// "which blocks changed since the backup?" answered from a metadata snapshot the kernel takes,
// and only those blocks copied. Run as root on a kernel with device-mapper, or inside the
// kernel sandbox:
//   npx devmapper-sandbox -- node examples/era.js
const { closeSync, fsyncSync, mkdtempSync, openSync, readSync, rmSync, truncateSync, writeFileSync, writeSync } = require('node:fs');
const { join } = require('node:path');
const { DeviceMapper, Era, LoopDevice } = require('..');

// Device names, with $DEVMAPPER_EXAMPLE_PREFIX before them (the tests run this with theirs).
const n = (name) => `${process.env.DEVMAPPER_EXAMPLE_PREFIX || ''}${name}`;
const BLOCK = 128; // era block size, sectors (64 KiB)

async function disk(dir, file, sectors) {
  const path = join(dir, file);
  writeFileSync(path, '');
  truncateSync(path, sectors * 512);
  return LoopDevice.attach(path);
}

function write(path, block, text) {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, Buffer.from(text), 0, text.length, block * BLOCK * 512);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Copies the sector ranges from one device to another: what an incremental backup does. */
function copyRanges(from, to, ranges) {
  const src = openSync(from, 'r');
  const dst = openSync(to, 'r+');
  try {
    for (const r of ranges) {
      const b = Buffer.alloc(r.length * 512);
      readSync(src, b, 0, b.length, r.start * 512);
      writeSync(dst, b, 0, b.length, r.start * 512);
    }
    fsyncSync(dst);
  } finally {
    closeSync(src);
    closeSync(dst);
  }
}

async function main() {
  const dm = await DeviceMapper.open();
  const dir = mkdtempSync(join(process.env.DEVMAPPER_SCRATCH || '/run', 'era-'));
  const loops = [];
  let era;
  try {
    const meta = await disk(dir, 'meta.img', 8192);
    const origin = await disk(dir, 'origin.img', 16384);
    const backup = await disk(dir, 'backup.img', 16384);
    loops.push(meta, origin, backup);
    era = await Era.create(dm, n('era'), { metadataDevice: meta.dev, originDevice: origin.dev, blockSize: BLOCK });
    console.log(`table: ${(await dm.table(era.id)).toString()}`);

    write(era.path, 0, 'monday');
    write(era.path, 5, 'monday');
    // The full backup: every block, then the era to ask from next time.
    const full = await era.writtenSince(1);
    copyRanges(era.path, backup.path, [{ start: 0, length: era.sectors }]);
    console.log(`full backup: ${era.sectors} sectors; ${full.count} blocks were written; next era ${full.nextSince}`);

    write(era.path, 5, 'tuesday');
    write(era.path, 9, 'tuesday');
    const inc = await era.writtenSince(full.nextSince);
    console.log(`changed since era ${inc.since}: blocks ${inc.ranges.map((r) => (r.end - r.begin === 1 ? r.begin : `${r.begin}-${r.end - 1}`)).join(' ')}`);
    console.log(`sector ranges: ${inc.sectorRanges.map((r) => `${r.start}+${r.length}`).join(' ')}`);
    copyRanges(era.path, backup.path, inc.sectorRanges);

    const same = Buffer.compare(readAll(era.path, era.sectors), readAll(backup.path, era.sectors)) === 0;
    console.log(`backup equals the device after copying ${inc.count} of ${inc.blocks} blocks: ${same}`);
    const s = await era.status();
    console.log(`status: era ${s.currentEra}, metadata ${s.metadataBlocks.used}/${s.metadataBlocks.total} blocks, snapshot held: ${s.heldMetadataRoot !== null}`);
    await era.remove();
    era = undefined;
    console.log(`removed ${n('era')}`);
  } finally {
    if (era) await era.remove().catch(() => undefined);
    for (const l of loops) await l.detach().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    await dm.close();
  }
}

function readAll(path, sectors) {
  const b = Buffer.alloc(sectors * 512);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, b, 0, b.length, 0);
  } finally {
    closeSync(fd);
  }
  return b;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
