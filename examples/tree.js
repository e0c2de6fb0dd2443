#!/usr/bin/env node
'use strict';
// The dependency tree of a stack (two thin volumes over a thin-pool over two linears over loop
// disks), its activation and teardown orders, and a teardown. Run as root on a kernel with
// device-mapper, or inside the sandbox:
//   node dist/sandbox/cli.js -- node examples/tree.js
const { closeSync, mkdtempSync, openSync, rmSync, truncateSync, writeFileSync, writeSync } = require('node:fs');
const { join } = require('node:path');
const { DeviceMapper, LoopDevice, Table, deviceTree, teardown, targets, thinPoolMessages } = require('..');

// Device names, with $DEVMAPPER_EXAMPLE_PREFIX before them (the tests run this with theirs).
const n = (name) => `${process.env.DEVMAPPER_EXAMPLE_PREFIX || ''}${name}`;
const one = (length, target) => new Table([{ start: 0, length, target }]);

async function main() {
  const dm = await DeviceMapper.open();
  const dir = mkdtempSync(join(process.env.DEVMAPPER_SCRATCH || '/run', 'tree-'));
  const loops = [];
  const ours = [n('tree-meta'), n('tree-data'), n('tree-pool'), n('tree-thin0'), n('tree-thin1')];
  try {
    for (const [file, sectors] of [['meta.img', 8192], ['data.img', 16384]]) {
      writeFileSync(join(dir, file), '');
      truncateSync(join(dir, file), sectors * 512);
      loops.push(await LoopDevice.attach(join(dir, file)));
    }
    // A new pool's metadata starts with a zeroed superblock.
    const fd = openSync(loops[0].path, 'r+');
    writeSync(fd, Buffer.alloc(4096), 0, 4096, 0);
    closeSync(fd);
    const meta = await dm.create(n('tree-meta'), { table: one(8192, targets.linear({ device: loops[0].dev, offset: 0 })) });
    const data = await dm.create(n('tree-data'), { table: one(16384, targets.linear({ device: loops[1].dev, offset: 0 })) });
    const pool = await dm.create(n('tree-pool'), { table: one(16384, targets.thinPool({ metadataDevice: meta.dev, dataDevice: data.dev, blockSize: 128, lowWaterMark: 0 })) });
    for (const id of [0, 1]) {
      await dm.message(pool.name, thinPoolMessages.createThin(id));
      await dm.create(n(`tree-thin${id}`), { table: one(8192, targets.thin({ poolDevice: pool.dev, deviceId: id })) });
    }

    const tree = await deviceTree(dm);
    const mine = (list) => list.filter((name) => ours.includes(name)).join(', ');
    console.log(`${pool.name} is built on ${tree.get(pool.name).dependencies.join(', ')} and used by ${tree.get(pool.name).dependents.join(', ')}`);
    console.log(`activation order: ${mine(tree.activationOrder())}`);
    console.log(`teardown order: ${mine(tree.teardownOrder())}`);

    // An open volume stops the teardown before anything is removed.
    const open = openSync((await dm.info(n('tree-thin0'))).path, 'r');
    try {
      await teardown(dm, n('tree-meta'));
    } catch (e) {
      console.log(`refused: ${e.message} (${e.code})`);
    } finally {
      closeSync(open);
    }
    const removed = await teardown(dm, [n('tree-thin0'), n('tree-thin1')], { withDependencies: true });
    console.log(`removed: ${removed.join(', ')}`);
  } finally {
    for (const name of [...ours].reverse()) await dm.remove(name).catch(() => undefined);
    for (const l of loops) await l.detach().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    await dm.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
