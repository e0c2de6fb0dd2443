import { closeSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';

/** Writes `data` at byte `offset` of a block device and fsyncs it, so it is on the device below when this returns. */
export function writeThrough(path: string, data: Buffer, offset: number): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, data, 0, data.length, offset);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Overwrites bytes of a file (a loop device's backing file) in place, beneath the device. */
export function writeAt(file: string, data: Buffer, offset: number): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, data, 0, data.length, offset);
  } finally {
    closeSync(fd);
  }
}

/** Reads `bytes` at byte `offset` of a file or device through a fresh open. */
export function readBack(path: string, bytes: number, offset: number): Buffer {
  const buf = Buffer.alloc(bytes);
  const fd = openSync(path, 'r');
  try {
    const n = readSync(fd, buf, 0, bytes, offset);
    if (n !== bytes) throw new Error(`read ${n} of ${bytes} bytes at ${offset} of ${path}`);
  } finally {
    closeSync(fd);
  }
  return buf;
}

/** `sectors` sectors, each stamped with its own number and `tag` (little-endian u32 at 0 and 4), the rest a fixed fill. */
export function stamped(sectors: number, tag: number, first = 0): Buffer {
  const b = Buffer.alloc(sectors * 512, 0xa5);
  for (let i = 0; i < sectors; i++) {
    b.writeUInt32LE(first + i, i * 512);
    b.writeUInt32LE(tag, i * 512 + 4);
  }
  return b;
}
