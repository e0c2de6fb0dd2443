#!/usr/bin/env node
'use strict';
// A plain dm-crypt volume over a loop disk: aes-xts-plain64 with a random 512-bit key, data
// written through the volume, the backing disk holding only ciphertext, the table shown with
// its key zeroed. Run as root on a kernel with device-mapper, or inside the sandbox:
// node dist/sandbox/cli.js -- node examples/crypt.js
const { randomBytes } = require('node:crypto');
const { closeSync, fsyncSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, truncateSync, writeFileSync, writeSync } = require('node:fs');
const { join } = require('node:path');
const { Crypt, DeviceMapper, LoopDevice } = require('..');

// Device names, with $DEVMAPPER_EXAMPLE_PREFIX before them (the tests run this with theirs).
const n = (name) => `${process.env.DEVMAPPER_EXAMPLE_PREFIX || ''}${name}`;

async function main() {
  const dm = await DeviceMapper.open();
  const dir = mkdtempSync(join(process.env.DEVMAPPER_SCRATCH || '/run', 'crypt-'));
  let loop;
  let volume;
  try {
    const file = join(dir, 'disk.img');
    writeFileSync(file, '');
    truncateSync(file, 8 << 20);
    loop = await LoopDevice.attach(file);

    const key = randomBytes(64);
    volume = await Crypt.open(dm, n('crypt-demo'), { device: loop.dev, key });
    console.log(`opened ${volume.name} at ${volume.path} over ${loop.path}`);
    // The kernel prints the key back in the table; table() zeroes it unless asked.
    console.log(`table: ${(await volume.table()).toString()}`);
    const shown = (await volume.table({ showKeys: true })).toString();
    console.log(`table with showKeys holds the key: ${shown.includes(key.toString('hex'))}`);

    const message = Buffer.from('a secret written through dm-crypt');
    const fd = openSync(volume.path, 'r+');
    writeSync(fd, message, 0, message.length, 4096);
    fsyncSync(fd);
    closeSync(fd);
    const back = Buffer.alloc(message.length);
    const rfd = openSync(volume.path, 'r');
    readSync(rfd, back, 0, back.length, 4096);
    closeSync(rfd);
    console.log(`read back through the volume: "${back.toString()}"`);
    console.log(`the backing disk holds the plaintext: ${readFileSync(file).includes(message)}`);

    await volume.close();
    volume = undefined;
    console.log('closed');
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
