'use strict';
// A mocha test file written with devmapper/testing: scratch disks and device names that are
// cleaned up after each test, passed or failed. Run it with the kit's plugin:
//   npx mocha --require devmapper/testing/mocha examples/testing-kit.test.js
// As root on a kernel with device-mapper it runs right there; anywhere else the plugin runs the
// same command in the kernel sandbox. Device names start with the run's prefix
// ($DEVMAPPER_TESTING_PREFIX and the process id, when that is set).
const assert = require('node:assert/strict');
const { closeSync, fsyncSync, openSync, readSync, writeSync } = require('node:fs');
const { DmError, Table, targets } = require('devmapper');
const { runPrefix, scratchDeviceMapper, scratchDisk, scratchName } = require('devmapper/testing');

/** Writes `text` at byte `offset` of a block device, and fsync: it is on the disk below when this returns. */
function writeThrough(path, offset, text) {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, Buffer.from(text), 0, text.length, offset);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function readText(path, offset, length) {
  const buf = Buffer.alloc(length);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buf, 0, length, offset);
  } finally {
    closeSync(fd);
  }
  return buf.toString();
}

describe('a linear volume on scratch disks', () => {
  it('spans two disks: what is written past the first lands at the start of the second', async () => {
    const first = await scratchDisk({ sectors: 2048 });
    const second = await scratchDisk({ bytes: 1024 * 1024 });
    const dm = await scratchDeviceMapper();
    const name = scratchName('span');
    const table = new Table([
      { start: 0, length: 2048, target: targets.linear({ device: first.devString, offset: 0 }) },
      { start: 2048, length: 2048, target: targets.linear({ device: second.devString, offset: 0 }) },
    ]);
    const info = await dm.create(name, { table });
    console.log(`volume ${name} at ${info.path}: ${(await dm.table(name)).size} sectors over ${first.path} and ${second.path}`);
    writeThrough(`/dev/mapper/${name}`, 2048 * 512, 'on the second disk');
    // The backing file itself: the volume's sector 2048 is sector 0 of the second disk.
    const back = readText(second.file, 0, 18);
    console.log(`read back from the second disk's file: "${back}"`);
    assert.equal(back, 'on the second disk');
    assert.ok(name.startsWith(runPrefix()));
  });

  it('a table the kernel refuses leaves no device behind', async () => {
    const disk = await scratchDisk({ sectors: 1024 });
    const dm = await scratchDeviceMapper();
    const name = scratchName('toolong');
    const table = new Table([{ start: 0, length: 4096, target: targets.linear({ device: disk.devString, offset: 0 }) }]);
    const e = await dm.create(name, { table }).catch((x) => x);
    assert.ok(e instanceof DmError, String(e));
    console.log(`kernel refused a row past the end of its disk: ${e.code}; ${name} listed: ${(await dm.listDevices()).some((d) => d.name === name)}`);
  });
});
