#!/usr/bin/env node
'use strict';
// A device-mapper session from Node: two loop disks, one linear volume across both, data
// written through it, a live table reload, a rename, and cleanup. Run as root on a kernel
// with device-mapper, or inside the sandbox: npm run demo.
const { execFileSync } = require('node:child_process');
const { mkdtempSync, openSync, readSync, writeSync, closeSync, truncateSync, writeFileSync, rmSync } = require('node:fs');
const { join } = require('node:path');
const { DeviceMapper, LoopDevice, Table, targets } = require('..');

const MiB = 2048; // sectors
// Device names, with $DEVMAPPER_EXAMPLE_PREFIX before them (the tests run this with theirs).
const n = (name) => `${process.env.DEVMAPPER_EXAMPLE_PREFIX || ''}${name}`;

async function main() {
  const dm = await DeviceMapper.open();
  console.log(`device-mapper interface ${dm.driverVersion.join('.')}`);
  const targetTypes = await dm.listTargets();
  console.log(`${targetTypes.length} target types: ${targetTypes.map((t) => t.name).sort().join(', ')}`);

  const dir = mkdtempSync(join(process.env.DEVMAPPER_SCRATCH || '/run', 'demo-'));
  const loops = [];
  try {
    for (const name of ['a.img', 'b.img']) {
      const file = join(dir, name);
      writeFileSync(file, '');
      truncateSync(file, 8 * MiB * 512);
      loops.push(await LoopDevice.attach(file));
    }
    console.log(`loop disks: ${loops.map((l) => `${l.path} (${l.devString})`).join(', ')}`);

    // One 16 MiB volume: the first 8 MiB on disk a, the next 8 MiB on disk b.
    const table = new Table([
      { start: 0, length: 8 * MiB, target: targets.linear({ device: loops[0].dev, offset: 0 }) },
      { start: 8 * MiB, length: 8 * MiB, target: targets.linear({ device: loops[1].dev, offset: 0 }) },
    ]);
    const vol = await dm.create(n('demo-vol'), { table, uuid: n('DEMO-VOL-0001') });
    console.log(`\ncreated ${vol.name} at ${vol.path} (${vol.dev.major}:${vol.dev.minor}), ${table.size} sectors`);
    console.log(`table (read back from the kernel):\n  ${(await dm.table(n('demo-vol'))).toString().replace(/\n/g, '\n  ')}`);
    console.log(`dmsetup table agrees:\n  ${execFileSync('dmsetup', ['table', n('demo-vol')], { encoding: 'utf8' }).trim().replace(/\n/g, '\n  ')}`);

    // Write across the boundary between the two disks and read it back from the second disk.
    const message = Buffer.from('written through /dev/dm-N across two loop disks');
    const fd = openSync(vol.path, 'r+');
    writeSync(fd, message, 0, message.length, 8 * MiB * 512);
    closeSync(fd);
    const back = Buffer.alloc(message.length);
    const lfd = openSync(loops[1].path, 'r');
    readSync(lfd, back, 0, back.length, 0);
    closeSync(lfd);
    console.log(`\nread from ${loops[1].path} at sector 0: "${back.toString()}"`);

    // Grow the volume live: append a zero segment, then rename.
    const grown = new Table([...table.rows, { start: 16 * MiB, length: MiB, target: targets.zero() }]);
    await dm.reload(n('demo-vol'), grown);
    await dm.rename(n('demo-vol'), n('demo-grown'));
    const info = await dm.info({ uuid: n('DEMO-VOL-0001') });
    console.log(`reloaded and renamed: ${info.name}, ${info.targetCount} rows, suspended=${info.suspended}`);
    for (const row of await dm.status(n('demo-grown'))) console.log(`  status ${row.start} ${row.length} ${row.type} ${row.status.raw}`);

    // A mistake is refused before it reaches the kernel, and a kernel refusal keeps its errno.
    try {
      new Table([{ start: 0, length: 8, target: targets.zero() }, { start: 4, length: 8, target: targets.zero() }]);
    } catch (e) {
      console.log(`\nrefused before any ioctl: ${e.message}`);
    }
    try {
      await dm.create(n('demo-grown'));
    } catch (e) {
      console.log(`kernel refused: ${e.message} (code ${e.code}, errno ${e.errno})`);
    }

    await dm.remove(n('demo-grown'));
    console.log(`\nremoved; devices left: ${(await dm.listDevices()).length}`);
  } finally {
    for (const l of loops) await l.detach().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    await dm.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
