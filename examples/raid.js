#!/usr/bin/env node
'use strict';
// Linear, striped, mirror and RAID devices over small loop disks: two disks concatenated and
// the device grown after its disk grew; a striped set and where a sector lands; a mirror with a
// disk log waited into sync; a raid5 in sync with its parity checked; and a raid4 created with
// its last leg missing, running degraded. Run as root on a kernel with device-mapper (and the
// md raid modules loaded), or inside the kernel sandbox:
//   npx devmapper-sandbox -- node examples/raid.js
const { closeSync, fsyncSync, mkdtempSync, openSync, readSync, rmSync, truncateSync, writeFileSync, writeSync } = require('node:fs');
const { join } = require('node:path');
const { DeviceMapper, Linear, LoopDevice, Mirror, Raid, Striped, blockDeviceSize } = require('..');

// Device names, with $DEVMAPPER_EXAMPLE_PREFIX before them (the tests run this with theirs).
const n = (name) => `${process.env.DEVMAPPER_EXAMPLE_PREFIX || ''}${name}`;

function write(path, text, sector) {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, Buffer.from(text), 0, Buffer.byteLength(text), sector * 512);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function read(path, bytes, sector) {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(bytes);
    readSync(fd, b, 0, bytes, sector * 512);
    return b.toString();
  } finally {
    closeSync(fd);
  }
}

async function main() {
  const dm = await DeviceMapper.open();
  const dir = mkdtempSync(join(process.env.DEVMAPPER_SCRATCH || '/run', 'raid-'));
  const loops = [];
  const made = [];
  const disk = async (sectors) => {
    const file = join(dir, `disk${loops.length}.img`);
    writeFileSync(file, '');
    truncateSync(file, sectors * 512);
    const loop = await LoopDevice.attach(file);
    loops.push(loop);
    return loop;
  };
  try {
    // Two disks concatenated, then the second one grown and the device with it.
    const [a, b] = [await disk(2048), await disk(4096)];
    const lin = await Linear.create(dm, n('concat'), { segments: [{ device: a.dev, length: 2048 }, { device: b.dev, length: 4096 }] });
    made.push(lin);
    console.log(`linear: ${lin.segments.length} segments, ${lin.size} sectors`);
    truncateSync(b.file, 6144 * 512);
    await b.refreshCapacity();
    await lin.resize(2048 + 6144);
    console.log(`linear grown: ${lin.size} sectors, blockDeviceSize ${await blockDeviceSize(lin.info.path)}`);

    // Three stripes of 16-sector chunks: chunk c goes to stripe c mod 3, as its chunk floor(c / 3).
    const stripes = [await disk(1024), await disk(1024), await disk(1024)];
    const st = await Striped.create(dm, n('striped'), { size: 3072, chunkSize: 16, stripes: stripes.map((d) => ({ device: d.dev, offset: 0 })) });
    made.push(st);
    write(st.info.path, 'stripe-1', 72);
    const at = st.locate(72);
    console.log(`striped: sector 72 is on stripe ${at.stripe} at sector ${at.sector}, read back "${read(stripes[at.stripe].file, 8, at.sector)}"`);

    // A mirror with a disk log: the kernel copies leg 0 to leg 1, and says when it is done.
    const [l0, l1, log] = [await disk(8192), await disk(8192), await disk(64)];
    const mirror = await Mirror.create(dm, n('mirror'), { size: 8192, log: { type: 'disk', device: log.dev, regionSize: 1024, sync: 'sync' }, legs: [{ device: l0.dev, offset: 0 }, { device: l1.dev, offset: 0 }] });
    made.push(mirror);
    const ms = await mirror.waitForSync({ timeout: 30000 });
    write(mirror.info.path, 'mirrored', 100);
    const both = read(l0.file, 8, 100) === 'mirrored' && read(l1.file, 8, 100) === 'mirrored';
    console.log(`mirror: in sync ${ms.regions.used}/${ms.regions.total} regions, ${both ? 'both legs hold' : 'NOT on both legs:'} "mirrored"`);

    // A raid5 over three legs with metadata devices, waited into sync, then checked.
    const legs = [];
    for (let i = 0; i < 3; i++) legs.push({ metadata: (await disk(1024)).dev, data: (await disk(2048)).dev });
    const r5 = await Raid.create(dm, n('raid5'), { size: 2048, raidType: 'raid5_ls', chunkSize: 64, devices: legs });
    made.push(r5);
    await r5.waitForSync({ timeout: 30000 });
    const checked = await r5.check({ timeout: 30000 });
    console.log(`raid5: ${checked.syncAction} ${checked.syncRatio.used}/${checked.syncRatio.total}, ${checked.devices.map((d) => (d === 'in-sync' ? 'A' : d)).join('')}, mismatches ${checked.mismatchCount}`);

    // A raid4 whose parity leg was never there: no metadata devices, the last leg '-'.
    const data = [await disk(1024), await disk(1024), await disk(1024)];
    const r4 = await Raid.create(dm, n('raid4'), { size: 3072, raidType: 'raid4', chunkSize: 64, devices: [...data.map((d) => ({ data: d.dev })), { data: null }] });
    made.push(r4);
    const s4 = await r4.waitForSync({ timeout: 10000 });
    write(r4.info.path, 'degraded but whole', 1000);
    console.log(`raid4 degraded: ${s4.devices.join(' ')}, read back "${read(r4.info.path, 18, 1000)}"`);

    const count = made.length;
    for (const d of made.splice(0).reverse()) await d.remove();
    console.log(`removed ${count} devices`);
  } finally {
    for (const d of made.reverse()) await d.remove().catch(() => undefined);
    for (const l of loops) await l.detach().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    await dm.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
