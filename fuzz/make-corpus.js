#!/usr/bin/env node
'use strict';
// Writes the fuzzer's seed corpus (fuzz/corpus/): realistic kernel answers for each payload
// kind (status rows, a name list with event numbers and uuids, target versions, deps, message
// output), a few requests, and fake-ioctl runs. Run it again after changing the harness's format.
const fs = require('node:fs');
const path = require('node:path');

const out = path.join(__dirname, 'corpus');
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out);

const HEADER = 312;
const align8 = (n) => (n + 7) & ~7;

function header({ version = [4, 47, 0], dataSize, dataStart = HEADER, targetCount = 0, flags = 0, name = '', uuid = '', dev = 0 }) {
  const b = Buffer.alloc(HEADER);
  version.forEach((v, i) => b.writeUInt32LE(v, i * 4));
  b.writeUInt32LE(dataSize, 12);
  b.writeUInt32LE(dataStart, 16);
  b.writeUInt32LE(targetCount, 20);
  b.writeUInt32LE(flags, 28);
  b.writeBigUInt64LE(BigInt(dev), 40);
  b.write(name, 48);
  b.write(uuid, 176);
  return b;
}

function specs(rows) {
  // Output specs: `next` is the offset from the start of the data.
  const parts = [];
  let at = 0;
  rows.forEach(([start, length, type, params], i) => {
    const size = align8(40 + Buffer.byteLength(params) + 1);
    const s = Buffer.alloc(size);
    s.writeBigUInt64LE(BigInt(start), 0);
    s.writeBigUInt64LE(BigInt(length), 8);
    s.writeUInt32LE(i + 1 < rows.length ? at + size : 0, 20);
    s.write(type, 24);
    s.write(params, 40);
    parts.push(s);
    at += size;
  });
  return Buffer.concat(parts);
}

function names(devices) {
  const parts = [];
  devices.forEach(([dev, name, eventNr, uuid], i) => {
    const nameEnd = align8(12 + Buffer.byteLength(name) + 1);
    const withFlags = nameEnd + 8;
    const size = align8(withFlags + (uuid ? Buffer.byteLength(uuid) + 1 : 0));
    const r = Buffer.alloc(size);
    r.writeBigUInt64LE(BigInt(dev), 0);
    r.writeUInt32LE(i + 1 < devices.length ? size : 0, 8);
    r.write(name, 12);
    r.writeUInt32LE(eventNr, nameEnd);
    r.writeUInt32LE(uuid ? 1 : 2, nameEnd + 4);
    if (uuid) r.write(uuid, withFlags);
    parts.push(r);
  });
  return Buffer.concat(parts);
}

function versions(list) {
  const parts = [];
  list.forEach(([name, v], i) => {
    const size = align8(16 + Buffer.byteLength(name) + 1);
    const r = Buffer.alloc(size);
    r.writeUInt32LE(i + 1 < list.length ? size : 0, 0);
    v.forEach((x, j) => r.writeUInt32LE(x, 4 + 4 * j));
    r.write(name, 16);
    parts.push(r);
  });
  return Buffer.concat(parts);
}

function answer(cmd, payload, fields = {}) {
  const h = header({ dataSize: HEADER + payload.length, ...fields });
  return Buffer.concat([Buffer.from([0, cmd]), h, payload]);
}

const seeds = {
  'status-thin-pool': answer(12, specs([[0, 2048, 'thin-pool', '1 20/1024 0/2048 - rw discard_passdown queue_if_no_space - 1024'], [2048, 8, 'error', '']]), { targetCount: 2, name: 'pool', dev: 0xfd00 }),
  'table-linear': answer(12, specs([[0, 2048, 'linear', '7:0 0']]), { targetCount: 1, flags: 1 << 4 }),
  'wait-multipath': answer(8, specs([[0, 2048, 'multipath', '2 0 0 0 1 1 A 0 1 2 7:0 F 1 0 1']]), { targetCount: 1 }),
  'names': answer(2, names([[0xfd00, 'vol', 3, 'LVM-abc'], [0xfd01, 'other', 0, null]])),
  'names-empty': answer(2, Buffer.alloc(16)),
  'versions': answer(13, versions([['linear', [1, 4, 0]], ['thin-pool', [1, 22, 0]]])),
  'deps': answer(11, (() => { const b = Buffer.alloc(24); b.writeUInt32LE(2, 0); b.writeBigUInt64LE(0x700n, 8); b.writeBigUInt64LE(0x701n, 16); return b; })()),
  'message-out': answer(14, Buffer.from('0: 0+64 32 dm-stats\n\0'), { flags: 1 << 16 }),
  'huge-length': answer(12, specs([[0, '9007199254740995', 'zero', '']]), { targetCount: 1 }),
};

// Requests (mode 1) and fake runs (mode 2): cmd, flags, name, uuid, dev, event_nr, rows...
function request(mode, cmd, { flags = 0, name = '', rows = [] } = {}) {
  const parts = [Buffer.from([mode, cmd])];
  const u32 = (v) => { const b = Buffer.alloc(4); b.writeUInt32BE(v >>> 0); return b; };
  const str = (s) => Buffer.concat([Buffer.from([Buffer.byteLength(s)]), Buffer.from(s)]);
  parts.push(u32(flags), str(name), str(''), u32(0), u32(0), u32(0), Buffer.from([rows.length]));
  for (const [start, length, type, params] of rows) parts.push(u32(0), u32(start), u32(0), u32(length), str(type), str(params));
  parts.push(Buffer.from([0]), str(''), Buffer.from([0]), u32(0), u32(0), str(''), Buffer.from([0]));
  return Buffer.concat(parts);
}

seeds['load-two-rows'] = request(1, 9, { name: 'vol', rows: [[0, 8, 'zero', ''], [8, 8, 'linear', '7:0 0']] });
seeds['status-request'] = request(1, 12, { flags: 1 << 4, name: 'vol' });
// A run whose first answer says BUFFER_FULL, then a full answer.
const full = header({ dataSize: HEADER, flags: 1 << 8 });
const done = header({ dataSize: HEADER + 8, targetCount: 0 });
const chunk = (b) => Buffer.concat([Buffer.from([0, b.length >> 8, b.length & 0xff]), b]);
seeds['run-grow'] = Buffer.concat([request(2, 12, { name: 'vol' }), chunk(full), chunk(done)]);

for (const [name, data] of Object.entries(seeds)) fs.writeFileSync(path.join(out, name), data);
process.stdout.write(`fuzz corpus: ${Object.keys(seeds).length} seeds in ${path.relative(process.cwd(), out) || out}\n`);
