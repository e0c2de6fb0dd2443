/**
 * dm-verity: a read-only device whose every data block is checked, when read, against a hash
 * tree whose root hash is given in the table; a block that does not match fails its read with
 * EIO and the status turns from `V` to `C`.
 *
 * `Verity.format` builds the hash tree itself, in the kernel's on-disk format (what
 * `veritysetup format --no-superblock` writes): each data block's digest is the hash of the
 * salt then the block (format 1; format 0 hashes the salt last), digests are packed into hash
 * blocks (format 1: in slots of a power-of-two size; zero-padded to the end of the block),
 * those blocks are hashed the same way into the level above until one block is left, and the
 * root hash is the hash of that block. The levels lie on the hash device from the top one
 * down, from `hashStartBlock` on. No superblock is written: the table carries every parameter.
 */
import { createHash, getHashes, randomBytes } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { DeviceMapper, type DeviceInfo } from '../client';
import type { DevId, DeviceRef, DevNumber } from '../dev';
import { blockDeviceSize } from '../loop';
import type { StatusRow } from '../status';
import { Table } from '../table';
import type { VerityCorruptionMode, VerityStatus, VerityTarget } from '../targets/verity';
import { targets } from '../targets/index';
import type { Target } from '../targets/types';
import { checkBoolean, checkInteger, checkName, checkOptions, checkSector, checkUuid, expected, expectedRange } from '../validate';
import { checkDeviceMapper, closeDevice, firstTarget, idOf, infoOfSame, oneRowStatus } from './common';

/** The largest block the kernel takes on x86-64 (a page), bytes. */
const MAX_BLOCK = 4096;
/** Data blocks read at a time while hashing. */
const READ_BLOCKS = 256;

/** Options of `Verity.format`. */
export interface VerityFormatOptions {
  /** The hash format: 1 (the default; salt first, digest slots of a power-of-two size) or 0 (Chromium OS's original; salt last). */
  version?: 0 | 1;
  /** Data block size, bytes: a power of two from 512 to 4096 (default 4096). */
  dataBlockSize?: number;
  /** Hash block size, bytes: a power of two from 512 to 4096 (default 4096). */
  hashBlockSize?: number;
  /** The hash, by a name both the kernel's crypto API and node:crypto know ('sha256', the default; 'sha1', 'sha512'). */
  algorithm?: string;
  /** The salt: bytes, hex text, or null for none (default: 32 random bytes). At most 256 bytes. */
  salt?: Uint8Array | string | null;
  /** Data blocks covered (default: as many whole blocks as the data holds). */
  dataBlocks?: number;
  /** Where the tree starts on the hash device, in hash blocks (default 0). */
  hashStartBlock?: number;
}

/** A hash tree as `Verity.format` wrote it: what a verity table needs, and where the tree lies. */
export interface VerityHashTree {
  /** The hash format, 0 or 1. */
  readonly version: 0 | 1;
  /** The hash algorithm. */
  readonly algorithm: string;
  /** Data block size, bytes. */
  readonly dataBlockSize: number;
  /** Hash block size, bytes. */
  readonly hashBlockSize: number;
  /** Data blocks covered (`num_data_blocks`). */
  readonly dataBlocks: number;
  /** The tree's first hash block on the hash device (`hash_start_block`). */
  readonly hashStartBlock: number;
  /** Hash blocks the tree takes, from `hashStartBlock` on. */
  readonly hashBlocks: number;
  /** Levels of the tree (0 for a single data block, whose digest is the root hash). */
  readonly levels: number;
  /** The salt, lower-case hex; null for none. */
  readonly salt: string | null;
  /** The root hash, lower-case hex (the table's `digest`). */
  readonly rootHash: string;
}

/** Options of `Verity.open`. */
export interface VerityOpenOptions {
  /** The device holding the data. */
  dataDevice: DeviceRef;
  /** The device holding the hash tree (may be the data device, the tree after the data). */
  hashDevice: DeviceRef;
  /** The tree `Verity.format` wrote (or the same fields from elsewhere, veritysetup's say). */
  tree: Pick<VerityHashTree, 'version' | 'algorithm' | 'dataBlockSize' | 'hashBlockSize' | 'dataBlocks' | 'hashStartBlock' | 'salt' | 'rootHash'>;
  /** What a corrupted block does: unset, its read fails with EIO; `ignore` logs it and serves the data. */
  onCorruption?: VerityCorruptionMode;
  /** Blocks whose hash is the zero block's are not read, and read as zeroes. */
  ignoreZeroBlocks?: boolean;
  /** Check each data block only the first time it is read. */
  checkAtMostOnce?: boolean;
  /** The device's uuid (default `DEVMAPPER-VERITY-` and 16 random hex digits). */
  uuid?: string;
}

/** Options of `Verity.close`. */
export interface VerityCloseOptions {
  /** Let the kernel remove the device when its last opener closes it. */
  deferred?: boolean;
}

function blockSize(value: unknown, name: string): number {
  if (value === undefined) return MAX_BLOCK;
  const n = checkInteger(value, name, 512, MAX_BLOCK);
  if ((n & (n - 1)) !== 0) throw expectedRange('a power of two from 512 to 4096', name, n);
  return n;
}

function saltOption(value: unknown): Buffer | null {
  if (value === undefined) return randomBytes(32);
  if (value === null) return null;
  let salt: Buffer;
  if (typeof value === 'string') {
    if (!/^(?:[0-9a-fA-F]{2})*$/.test(value)) throw expectedRange('whole bytes in hexadecimal', 'options.salt', value);
    salt = Buffer.from(value, 'hex');
  } else if (value instanceof Uint8Array) {
    salt = Buffer.from(value);
  } else {
    throw expected('the salt bytes, hex text or null', 'options.salt', value);
  }
  // The kernel reads an empty salt as none; veritysetup takes at most 256 bytes.
  if (salt.length > 256) throw expectedRange('a salt of at most 256 bytes', 'options.salt', `${salt.length} bytes`);
  return salt.length === 0 ? null : salt;
}

/** Bytes available at `path`: a block device's size, or a file's. */
async function sizeOf(path: string): Promise<number> {
  const handle = await open(path, 'r');
  try {
    const st = await handle.stat();
    if (st.isBlockDevice()) return await blockDeviceSize(path);
    if (!st.isFile()) throw expectedRange('a block device or a regular file', 'path', path);
    return st.size;
  } finally {
    await handle.close();
  }
}

/** Whether two paths are the same file or the same block device. */
async function sameStorage(a: string, b: string): Promise<boolean> {
  const [sa, sb] = await Promise.all([stat(a), stat(b)]);
  if (sa.isBlockDevice() && sb.isBlockDevice()) return sa.rdev === sb.rdev;
  return sa.dev === sb.dev && sa.ino === sb.ino;
}

/**
 * The tree's shape as the kernel computes it (dm-verity's constructor): digests per hash block
 * (a power of two), the levels, and the blocks of each level, level 0 hashing the data.
 */
export function verityTreeShape(
  dataBlocks: number,
  hashBlockSize: number,
  digestSize: number,
): {
  /** log2 of the digests one hash block holds. */
  perBlockBits: number;
  /** How many levels the tree has (0 for a single data block). */
  levels: number;
  /** The hash blocks of each level, level 0 (hashing the data) first. */
  levelBlocks: number[];
} {
  const per = Math.floor(hashBlockSize / digestSize);
  if (per < 2) throw expectedRange(`a hash block holding at least two ${digestSize}-byte digests`, 'hashBlockSize', hashBlockSize);
  const perBlockBits = Math.floor(Math.log2(per));
  let levels = 0;
  while (perBlockBits * levels < 64 && Math.floor((dataBlocks - 1) / 2 ** (perBlockBits * levels)) > 0) levels++;
  const levelBlocks: number[] = [];
  for (let i = 0; i < levels; i++) levelBlocks.push(Math.ceil(dataBlocks / 2 ** ((i + 1) * perBlockBits)));
  return { perBlockBits, levels, levelBlocks };
}

function isVerityTarget(t: Target): t is VerityTarget {
  return t.type === 'verity' && 'digest' in t && 'dataBlocks' in t;
}

function verityStatus(rows: readonly StatusRow[], name: string): VerityStatus {
  return oneRowStatus(rows, name, 'verity', (s): s is VerityStatus => s.known && s.type === 'verity');
}

/**
 * An active dm-verity device: read-only, `tree.dataBlocks` blocks of checked data. Known by
 * its uuid (else its name) and number.
 */
export class Verity {
  readonly #dm: DeviceMapper;
  readonly #id: DevId;
  /** The device's name. */
  readonly name: string;
  /** The device's uuid ('' for a device made without one). */
  readonly uuid: string;
  /** The device's number. */
  readonly dev: DevNumber;
  /** The device node, `/dev/dm-N`. */
  readonly path: string;

  private constructor(dm: DeviceMapper, info: DeviceInfo) {
    this.#dm = dm;
    this.#id = idOf(info);
    this.name = info.name;
    this.uuid = info.uuid;
    this.dev = info.dev;
    this.path = info.path;
  }

  /**
   * Builds the hash tree of the data at `dataPath` (a block device or a file) and writes it to
   * `hashPath` from block `hashStartBlock` on, in the kernel's format (see the module's note);
   * resolves with the root hash and every parameter a verity table needs. Touches no
   * device-mapper device. The data must not change afterwards: any changed block fails its
   * read once the device is active.
   */
  static async format(dataPath: string, hashPath: string, options?: VerityFormatOptions): Promise<VerityHashTree> {
    if (typeof dataPath !== 'string') throw expected('a path', 'dataPath', dataPath);
    if (typeof hashPath !== 'string') throw expected('a path', 'hashPath', hashPath);
    const o = checkOptions(options, 'options', ['version', 'dataBlockSize', 'hashBlockSize', 'algorithm', 'salt', 'dataBlocks', 'hashStartBlock']);
    const version = o.version ?? 1;
    if (version !== 0 && version !== 1) throw expectedRange('0 or 1', 'options.version', version);
    const dataBlockSize = blockSize(o.dataBlockSize, 'options.dataBlockSize');
    const hashBlockSize = blockSize(o.hashBlockSize, 'options.hashBlockSize');
    const algorithm = o.algorithm ?? 'sha256';
    if (typeof algorithm !== 'string') throw expected('a hash name', 'options.algorithm', algorithm);
    if (!/^[a-z0-9-]+$/.test(algorithm) || !getHashes().includes(algorithm)) throw expectedRange('a hash node:crypto knows by the kernel\'s name (sha256, sha1, sha512)', 'options.algorithm', algorithm);
    const salt = saltOption(o.salt);
    const hashStartBlock = o.hashStartBlock === undefined ? 0 : checkSector(o.hashStartBlock, 'options.hashStartBlock');
    let dataBlocks = o.dataBlocks === undefined ? undefined : checkSector(o.dataBlocks, 'options.dataBlocks');
    const available = Math.floor((await sizeOf(dataPath)) / dataBlockSize);
    if (dataBlocks === undefined) dataBlocks = available;
    else if (dataBlocks > available) throw expectedRange(`at most the ${available} data blocks ${dataPath} holds`, 'options.dataBlocks', dataBlocks);
    if (dataBlocks === 0) throw expectedRange('data of at least one block', 'dataPath', dataPath);
    if (await sameStorage(dataPath, hashPath)) {
      // One device for both: the tree must start past the data it vouches for.
      const first = Math.ceil((dataBlocks * dataBlockSize) / hashBlockSize);
      if (hashStartBlock < first) throw expectedRange(`a hashStartBlock past the data on the same device (at least ${first})`, 'options.hashStartBlock', hashStartBlock);
    }

    const digestOf = (block: Buffer): Buffer => {
      const h = createHash(algorithm);
      if (salt !== null && version === 1) h.update(salt);
      h.update(block);
      if (salt !== null && version === 0) h.update(salt);
      return h.digest();
    };
    const digestSize = createHash(algorithm).digest().length;
    const { perBlockBits, levels, levelBlocks } = verityTreeShape(dataBlocks, hashBlockSize, digestSize);
    const per = 2 ** perBlockBits;
    // Format 1 gives each digest a slot of hash block size / digests per block; format 0 packs them.
    const slot = version === 1 ? hashBlockSize / per : digestSize;
    const levelBuffers = levelBlocks.map((n) => Buffer.alloc(n * hashBlockSize));
    const place = (level: Buffer, index: number, digest: Buffer): void => {
      digest.copy(level, Math.floor(index / per) * hashBlockSize + (index % per) * slot);
    };

    let rootHash: Buffer | undefined;
    const data = await open(dataPath, 'r');
    try {
      const chunk = Buffer.alloc(READ_BLOCKS * dataBlockSize);
      for (let block = 0; block < dataBlocks; block += READ_BLOCKS) {
        const count = Math.min(READ_BLOCKS, dataBlocks - block);
        const want = count * dataBlockSize;
        let got = 0;
        while (got < want) {
          const { bytesRead } = await data.read(chunk, got, want - got, block * dataBlockSize + got);
          if (bytesRead === 0) throw expectedRange(`data of ${dataBlocks} blocks`, 'dataPath', `${dataPath} ending at byte ${block * dataBlockSize + got}`);
          got += bytesRead;
        }
        for (let i = 0; i < count; i++) {
          const digest = digestOf(chunk.subarray(i * dataBlockSize, (i + 1) * dataBlockSize));
          const level0 = levelBuffers[0];
          if (level0 === undefined) rootHash = digest;
          else place(level0, block + i, digest);
        }
      }
    } finally {
      await data.close();
    }
    for (let i = 1; i <= levels; i++) {
      const below = levelBuffers[i - 1];
      if (below === undefined) break;
      const above = levelBuffers[i];
      const blocks = below.length / hashBlockSize;
      for (let b = 0; b < blocks; b++) {
        const digest = digestOf(below.subarray(b * hashBlockSize, (b + 1) * hashBlockSize));
        if (above === undefined) rootHash = digest;
        else place(above, b, digest);
      }
    }
    if (rootHash === undefined) throw new RangeError('the hash tree has no root (no data block was hashed)');

    // The top level first, level 0 last: where the kernel looks for each level.
    const hashBlocks = levelBlocks.reduce((a, b) => a + b, 0);
    const hash = await open(hashPath, 'r+');
    try {
      let at = hashStartBlock;
      for (let i = levels - 1; i >= 0; i--) {
        const level = levelBuffers[i];
        if (level === undefined) continue;
        await hash.write(level, 0, level.length, at * hashBlockSize);
        at += level.length / hashBlockSize;
      }
      await hash.datasync();
    } finally {
      await hash.close();
    }
    return Object.freeze({ version, algorithm, dataBlockSize, hashBlockSize, dataBlocks, hashStartBlock, hashBlocks, levels, salt: salt === null ? null : salt.toString('hex'), rootHash: rootHash.toString('hex') });
  }

  /**
   * Activates a verity device over the data and its tree: one `verity` row of
   * `dataBlocks × dataBlockSize` bytes, created read-only (the kernel refuses a writable
   * verity table). A table the kernel refuses rejects with its DmError and leaves no device.
   * A wrong root hash loads: it is every read that then fails with EIO.
   */
  static async open(dm: DeviceMapper, name: string, options: VerityOpenOptions): Promise<Verity> {
    checkDeviceMapper(dm);
    checkName(name);
    const o = checkOptions(options, 'options', ['dataDevice', 'hashDevice', 'tree', 'onCorruption', 'ignoreZeroBlocks', 'checkAtMostOnce', 'uuid']);
    if (typeof o.tree !== 'object' || o.tree === null) throw expected('a hash tree (from Verity.format)', 'options.tree', o.tree);
    const tree = o.tree;
    if (o.dataDevice === undefined) throw expected("'major:minor', a /dev path or { major, minor }", 'options.dataDevice', o.dataDevice);
    if (o.hashDevice === undefined) throw expected("'major:minor', a /dev path or { major, minor }", 'options.hashDevice', o.hashDevice);
    const uuid = o.uuid === undefined ? `DEVMAPPER-VERITY-${randomBytes(8).toString('hex')}` : checkUuid(o.uuid, 'options.uuid');
    const target = targets.verity({
      version: tree.version,
      dataDevice: o.dataDevice,
      hashDevice: o.hashDevice,
      dataBlockSize: tree.dataBlockSize,
      hashBlockSize: tree.hashBlockSize,
      dataBlocks: tree.dataBlocks,
      hashStartBlock: tree.hashStartBlock,
      algorithm: tree.algorithm,
      digest: tree.rootHash,
      salt: tree.salt,
      onCorruption: o.onCorruption,
      ignoreZeroBlocks: checkBoolean(o.ignoreZeroBlocks, 'options.ignoreZeroBlocks', false),
      checkAtMostOnce: checkBoolean(o.checkAtMostOnce, 'options.checkAtMostOnce', false),
    });
    const table = new Table([{ start: 0, length: (target.dataBlocks * target.dataBlockSize) / 512, target }]);
    return new Verity(dm, await dm.create(name, { table, uuid, readOnly: true }));
  }

  /** Checks that the device under this id is still this one (same number), and gives what DEV_STATUS says of it. */
  async info(): Promise<DeviceInfo> {
    return infoOfSame(this.#dm, this.#id, this.name, this.dev);
  }

  /** The typed status: `corrupted` once any block failed its check (`C`), false while all were valid (`V`). */
  async status(): Promise<VerityStatus> {
    await this.info();
    return verityStatus(await this.#dm.status(this.#id), this.name);
  }

  /** The typed verity target of the live table. */
  async target(): Promise<VerityTarget> {
    await this.info();
    return firstTarget(this.#dm, this.#id, this.name, 'verity', isVerityTarget);
  }

  /** Closes the device: DEV_REMOVE. */
  async close(options?: VerityCloseOptions): Promise<void> {
    await closeDevice(this.#dm, this.#id, this.name, this.dev, options);
  }
}
