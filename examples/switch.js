#!/usr/bin/env node
'use strict';
// A dm-switch device over three paths, its 3000 regions moved with one set_region_mappings
// message of a few words (the protocol's next-region and repeat forms). Each path here is a
// distinct extent of one loop device, filled with its own letter, so what a region reads names
// its path. Run as root on a kernel with device-mapper, or inside the kernel sandbox:
//   npx devmapper-sandbox -- node examples/switch.js
const { closeSync, mkdtempSync, openSync, readSync, rmSync, truncateSync, writeFileSync, writeSync } = require('node:fs');
const { join } = require('node:path');
const { DeviceMapper, LoopDevice, Switch } = require('..');

// Device names, with $DEVMAPPER_EXAMPLE_PREFIX before them (the tests run this with theirs).
const n = (name) => `${process.env.DEVMAPPER_EXAMPLE_PREFIX || ''}${name}`;
const REGIONS = 3000;
const REGION = 8; // sectors
const EXTENT = REGIONS * REGION; // sectors of each path

/** The letter at the start of each of the first `count` regions, read through a fresh open. */
function letters(path, count) {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(1);
    let s = '';
    for (let r = 0; r < count; r++) {
      readSync(fd, b, 0, 1, r * REGION * 512);
      s += b.toString();
    }
    return s;
  } finally {
    closeSync(fd);
  }
}

async function main() {
  const dm = await DeviceMapper.open();
  const dir = mkdtempSync(join(process.env.DEVMAPPER_SCRATCH || '/run', 'switch-'));
  const file = join(dir, 'paths.img');
  writeFileSync(file, '');
  truncateSync(file, 3 * EXTENT * 512);
  const fd = openSync(file, 'r+');
  for (let p = 0; p < 3; p++) writeSync(fd, Buffer.alloc(EXTENT * 512, 'ABC'[p]), 0, EXTENT * 512, p * EXTENT * 512);
  closeSync(fd);
  const loop = await LoopDevice.attach(file);
  let sw;
  try {
    sw = await Switch.create(dm, n('switch'), {
      size: EXTENT,
      regionSize: REGION,
      paths: [0, 1, 2].map((p) => ({ device: loop.dev, offset: p * EXTENT })),
    });
    console.log(`table: ${(await dm.table(sw.id)).toString()}`);
    // The kernel deals the regions out to the paths in turn.
    console.log(`before: ${letters(sw.info.path, 12)}`);

    const map = Array.from({ length: REGIONS }, (_, r) => [0, 0, 1, 2][r % 4]);
    const result = await sw.setRegionMappings(map);
    const [message] = require('..').regionMappingMessages(map);
    console.log(`${REGIONS} regions in ${result.messages} message(s) of ${result.words} words: ${message}`);
    console.log(`after:  ${letters(sw.info.path, 12)}`);
    await sw.remove();
    sw = undefined;
    console.log(`removed ${n('switch')}`);
  } finally {
    if (sw) await sw.remove().catch(() => undefined);
    await loop.detach().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    await dm.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
