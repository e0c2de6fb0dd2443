#!/usr/bin/env node
'use strict';
// A standalone dm-integrity volume over a loop disk: formatted with 4-byte crc32c tags in
// journal mode, data written and read back, then one byte of the backing disk changed behind
// its back: the read of that sector fails and the status counts the mismatch. Run as root on a
// kernel with device-mapper, or inside the sandbox:
// node dist/sandbox/cli.js -- node examples/integrity.js
const { closeSync, fsyncSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, truncateSync, writeFileSync, writeSync } = require('node:fs');
const { join } = require('node:path');
const { DeviceMapper, Integrity, LoopDevice } = require('..');

// Device names, with $DEVMAPPER_EXAMPLE_PREFIX before them (the tests run this with theirs).
const n = (name) => `${process.env.DEVMAPPER_EXAMPLE_PREFIX || ''}${name}`;

function readSector(path, sector) {
  const buf = Buffer.alloc(512);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buf, 0, 512, sector * 512);
  } finally {
    closeSync(fd);
  }
  return buf;
}

async function main() {
  const dm = await DeviceMapper.open();
  const dir = mkdtempSync(join(process.env.DEVMAPPER_SCRATCH || '/run', 'integrity-'));
  let loop;
  let volume;
  try {
    const file = join(dir, 'disk.img');
    writeFileSync(file, '');
    truncateSync(file, 8 << 20);
    loop = await LoopDevice.attach(file);

    volume = await Integrity.format(dm, n('integrity-demo'), { device: loop.dev, tagSize: 4, internalHash: 'crc32c' });
    const target = await volume.target();
    console.log(`formatted ${volume.name} at ${volume.path}: ${volume.providedDataSectors} data sectors, ${target.tagSize}-byte ${target.internalHash.name} tags, ${target.mode} mode`);

    const sector = Buffer.alloc(512);
    sector.write('checked on every read');
    const fd = openSync(volume.path, 'r+');
    writeSync(fd, sector, 0, 512, 64 * 512);
    fsyncSync(fd);
    closeSync(fd);
    console.log(`read back: "${readSector(volume.path, 64).toString().replace(/\0+$/, '')}"`);
    // Removing the device commits its journal: the sector is then in the data area.
    await volume.close();
    volume = undefined;

    const raw = readFileSync(file);
    const at = raw.lastIndexOf(sector);
    const tampered = openSync(file, 'r+');
    writeSync(tampered, Buffer.from('X'), 0, 1, at);
    closeSync(tampered);

    volume = await Integrity.open(dm, n('integrity-demo'), { device: loop.dev, tagSize: 4, internalHash: 'crc32c' });
    let outcome = 'read succeeded';
    try {
      readSector(volume.path, 64);
    } catch (e) {
      // Through the page cache the failed page reads as EIO; a direct read gets dm-integrity's EILSEQ.
      outcome = `read failed with ${e.code}`;
    }
    console.log(`after tampering with the backing disk: ${outcome}, mismatch counted: ${(await volume.status()).mismatches > 0}`);
    await volume.close();
    volume = undefined;
  } finally {
    if (volume !== undefined) await volume.close().catch(() => undefined);
    if (loop !== undefined) await loop.detach();
    rmSync(dir, { recursive: true, force: true });
    await dm.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
