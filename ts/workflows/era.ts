/**
 * The era recipe (changed-block tracking for backups): an `era` device over an origin, which
 * the kernel maps one to one while it records, on a metadata device, the era in which each
 * block was last written. A backup tool takes a full copy, moves the era on, and later asks
 * which blocks were written since: the recipe has the kernel take a metadata snapshot
 * (`take_metadata_snap`, which also moves on to a new era), reads the snapshot's writesets and
 * era array from the metadata device itself, drops the snapshot, and answers in era blocks and
 * in sector ranges, with the era to ask from next time.
 * Kernel reference: Documentation/admin-guide/device-mapper/era.rst; the on-disk format is
 * drivers/md/dm-era-target.c over drivers/md/persistent-data (btree, array, bitset).
 */
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { DeviceInfo, DeviceMapper } from '../client';
import { formatDev, formatDeviceRef, type DevId, type DevNumber, type DeviceRef } from '../dev';
import { DmError } from '../errors';
import { Table } from '../table';
import { eraMessages, targets, type EraRunningStatus, type EraStatus, type EraTarget, type Target, type TargetStatus } from '../targets/index';
import { checkInteger, checkName, checkOptions, checkUuid, expected, expectedRange } from '../validate';
import { checkDeviceMapper, deviceNumber, fsCall, sameDev } from './common';
import { EBUSY, asError, checkedInfo, createPlanned, deviceSectors, lengthOverOrigin, liveTarget, lookup, openDevice, sectorsOption, statusError, typedStatus, type MetadataPlan } from './metadata-device';

const U32_MAX = 0xffffffff;
/** dm-era's metadata block: 4 KiB (8 sectors), fixed. */
const METADATA_BLOCK = 4096;
const EILSEQ = 84;
/** How the messages name an era device. */
const WHAT = 'the era device';

/** Options of `Era.create` and `Era.activate`: the era table. */
export interface EraCreateOptions {
  /** The device holding the era metadata (`'major:minor'`, a /dev path or `{ major, minor }`). */
  metadataDevice: DeviceRef;
  /** The device whose blocks are tracked; mapped one to one. */
  originDevice: DeviceRef;
  /** The era block size (the unit of tracking), in 512-byte sectors: a multiple of 8 (4 KiB). */
  blockSize: number;
  /** The device's length in sectors; default: the origin's size. */
  sectors?: number;
  /** The era device's uuid; with one, every later call names the device by it. */
  uuid?: string;
}

/** Era blocks `begin` to `end`, `end` excluded (era_invalidate's `<range begin end>`). */
export interface EraBlockRange {
  /** The first era block of the range. */
  readonly begin: number;
  /** The block after the last one. */
  readonly end: number;
}

/** A run of sectors of the era device: `length` sectors from `start`. */
export interface SectorRange {
  /** The first sector (512 bytes each). */
  readonly start: number;
  /** How many sectors. */
  readonly length: number;
}

/** The answer of `Era.writtenSince`. */
export interface EraWrittenBlocks {
  /** The era asked about: the blocks are those last written in this era or a later one. */
  readonly since: number;
  /**
   * The era the kernel moved on to when it took the snapshot: every write after the snapshot
   * is in this era or a later one, so the next incremental backup asks `writtenSince(nextSince)`.
   */
  readonly nextSince: number;
  /** The era block size, sectors. */
  readonly blockSize: number;
  /** Era blocks the device has (its length in blocks, rounded up). */
  readonly blocks: number;
  /** The blocks written, as ranges of era blocks in ascending order. */
  readonly ranges: readonly EraBlockRange[];
  /** How many era blocks the ranges hold. */
  readonly count: number;
  /** The same ranges in sectors of the device (the last block cut at the device's end). */
  readonly sectorRanges: readonly SectorRange[];
}

/**
 * An era device on a `DeviceMapper`. Every call names the device by its uuid when it has one,
 * else by its name, and first checks that the kernel's device is still the one this object was
 * made for (its device number; ESTALE otherwise). Nothing here suspends the device: era's
 * messages work on a live device.
 */
export class Era {
  /** The client every call goes through. */
  readonly dm: DeviceMapper;
  /** The device's name when this object was made. */
  readonly name: string;
  /** Its uuid ('' when it has none). */
  readonly uuid: string;
  /** Its device number. */
  readonly dev: DevNumber;
  /** `/dev/dm-N`. */
  readonly path: string;
  /** `/dev/mapper/<name>`. */
  readonly mapperPath: string;
  /** The era target, devices as 'major:minor'. */
  readonly target: EraTarget;
  /** The device's length, sectors. */
  readonly sectors: number;

  private constructor(dm: DeviceMapper, info: DeviceInfo, target: EraTarget, sectors: number) {
    this.dm = dm;
    this.name = info.name;
    this.uuid = info.uuid;
    this.dev = info.dev;
    this.path = info.path;
    this.mapperPath = info.mapperPath;
    this.target = target;
    this.sectors = sectors;
  }

  /** How the device is named in calls: `{ uuid }` when it has one, else its name. */
  get id(): DevId {
    return this.uuid !== '' ? { uuid: this.uuid } : this.name;
  }

  /** The era block size, sectors. */
  get blockSize(): number {
    return this.target.blockSize;
  }

  /** Era blocks the device has: its length in blocks, the last one possibly partial. */
  get blocks(): number {
    return Math.ceil(this.sectors / this.target.blockSize);
  }

  /**
   * Makes a new era device: writes zeros over the first 4 KiB of the metadata device (opened
   * O_EXCL, so a device a table or a mount holds is refused with EBUSY before anything is
   * written), then creates the device, whose first load formats the metadata (the kernel's
   * rule: an all-zero superblock is new metadata). If the name is taken or DEV_CREATE fails,
   * the old 4 KiB are written back; if the load or resume fails, the device is removed.
   */
  static async create(dm: DeviceMapper, name: string, options: EraCreateOptions): Promise<Era> {
    const plan = await planEra(dm, name, options);
    const info = await createPlanned(dm, name, plan, true);
    return new Era(dm, info, plan.target, plan.table.size);
  }

  /**
   * Activates an era device on metadata an era device has used (nothing is zeroed): the
   * kernel opens the metadata it finds and refuses another block size (EINVAL). The resume
   * moves the era on.
   */
  static async activate(dm: DeviceMapper, name: string, options: EraCreateOptions): Promise<Era> {
    const plan = await planEra(dm, name, options);
    const info = await createPlanned(dm, name, plan, false);
    return new Era(dm, info, plan.target, plan.table.size);
  }

  /** An `Era` for a device that is active already: its live table must be one `era` row. */
  static async open(dm: DeviceMapper, id: DevId): Promise<Era> {
    const o = await openDevice(dm, id, WHAT, eraTargetOf);
    return new Era(o.dm, o.info, o.target, o.sectors);
  }

  /** The device's typed status (narrow on `failed`): the current era, metadata blocks used, the held snapshot's root. */
  async status(): Promise<EraStatus> {
    return typedStatus(this.dm, this.id, this.name, 'era', isEraStatus);
  }

  /** The status of a working device; `Error` (the kernel could not read its metadata) rejects with EIO. */
  async runningStatus(): Promise<EraRunningStatus> {
    const s = await this.status();
    if (s.failed !== false) throw statusError(this.name, `the era metadata could not be read (${s.failed})`);
    return s;
  }

  /**
   * `checkpoint`: the kernel archives the current era's writeset and moves on to a new era.
   * Resolves with the current era the status shows afterwards (the kernel does not promise a
   * new one every time: read it rather than assume it).
   */
  async checkpoint(): Promise<number> {
    await this.#check();
    await this.dm.message(this.id, eraMessages.checkpoint());
    return (await this.runningStatus()).currentEra;
  }

  /**
   * `take_metadata_snap`: the kernel moves on to a new era, commits, and clones the metadata
   * for userspace to read while the device runs (era_invalidate `--metadata-snapshot`).
   * Resolves with the clone's root block (the status's held metadata root). One at a time:
   * EINVAL while one is held.
   */
  async takeMetadataSnap(): Promise<number> {
    await this.#check();
    await this.dm.message(this.id, eraMessages.takeMetadataSnap());
    const held = (await this.runningStatus()).heldMetadataRoot;
    if (held === null) throw statusError(this.name, `no held metadata root after take_metadata_snap`);
    return held;
  }

  /** `drop_metadata_snap`: the kernel frees the held clone (EINVAL when none is held). */
  async dropMetadataSnap(): Promise<void> {
    await this.#check();
    await this.dm.message(this.id, eraMessages.dropMetadataSnap());
  }

  /**
   * Which blocks were written in era `since` or a later one (blocks never written have no
   * era and are never listed). Takes a metadata snapshot, reads it, and drops it whatever the
   * read does. The metadata device is read through a read-only `linear` device made over it
   * for the read and removed after: a new block device has no page cache, so what is read is
   * what the kernel wrote (its metadata writes bypass the page cache of the device it holds).
   * That device is named `<name>-msnap` (the name cut to fit); a device of that name already
   * there is refused (EBUSY) before the snapshot is taken.
   * The snapshot's writesets (eras not yet folded into the era array) and its era array are
   * read as dm-era keeps them: persistent-data btrees and arrays of 4 KiB blocks, each checked
   * against its checksum and its own block number (EILSEQ when one is not what it should be).
   */
  async writtenSince(since: number): Promise<EraWrittenBlocks> {
    const era = checkInteger(since, 'since', 0, U32_MAX);
    const viewName = `${this.name.slice(0, 120)}-msnap`;
    await this.#check();
    const metadataDevice = await deviceNumber(this.target.metadataDevice, 'the metadata device');
    const metadataSectors = await deviceSectors(metadataDevice);
    const viewTable = new Table([{ start: 0, length: metadataSectors, target: targets.linear({ device: metadataDevice, offset: 0 }) }]);
    if ((await lookup(this.dm, viewName)) !== undefined) throw new DmError({ errno: EBUSY, syscall: 'ioctl', command: 'DM_DEV_CREATE', device: viewName, message: `DM_DEV_CREATE ${viewName}: a device of that name exists; no metadata snapshot was taken` });
    const root = await this.takeMetadataSnap();
    let result: EraWrittenBlocks;
    try {
      const view = await this.dm.create(viewName, { table: viewTable, readOnly: true });
      try {
        const snap = await readSnapshot(view.path, root, Math.floor(metadataSectors / 8), era);
        result = writtenBlocks(era, snap, this.target.blockSize, this.sectors);
      } catch (e) {
        await this.dm.remove(viewName).catch((r: unknown) => {
          if (e instanceof DmError) e.rollbackError = asError(r);
        });
        throw e;
      }
      await this.dm.remove(viewName);
    } catch (e) {
      try {
        await this.dropMetadataSnap();
      } catch (r) {
        if (e instanceof DmError && e.rollbackError === undefined) e.rollbackError = asError(r);
      }
      throw e;
    }
    await this.dropMetadataSnap();
    return result;
  }

  /** Removes the era device (its metadata stays on the metadata device; `activate` takes it up again). */
  async remove(): Promise<void> {
    await this.#check();
    await this.dm.remove(this.id);
  }

  async #check(): Promise<DeviceInfo> {
    return checkedInfo(this.dm, this.id, this.name, this.dev, WHAT);
  }
}

interface EraPlan extends MetadataPlan {
  readonly target: EraTarget;
}

/** Checks the options (all before any ioctl or write), resolves the devices and builds the table. */
async function planEra(dm: DeviceMapper, name: string, options: EraCreateOptions): Promise<EraPlan> {
  checkDeviceMapper(dm);
  checkName(name, 'name');
  if (typeof options !== 'object' || options === null) throw expected('era options', 'options', options);
  const o = checkOptions(options, 'options', ['metadataDevice', 'originDevice', 'blockSize', 'sectors', 'uuid']);
  const uuid = o.uuid === undefined ? undefined : checkUuid(o.uuid, 'options.uuid');
  if (o.metadataDevice === undefined) throw expected('a device', 'options.metadataDevice', o.metadataDevice);
  if (o.originDevice === undefined) throw expected('a device', 'options.originDevice', o.originDevice);
  formatDeviceRef(o.metadataDevice, 'options.metadataDevice');
  formatDeviceRef(o.originDevice, 'options.originDevice');
  if (o.blockSize === undefined) throw expected('a block size in sectors', 'options.blockSize', o.blockSize);
  // The builder checks the block size (a multiple of 8 sectors, 32 bits).
  targets.era({ metadataDevice: o.metadataDevice, originDevice: o.originDevice, blockSize: o.blockSize });
  const sectors = sectorsOption(o.sectors);
  const metadataDevice = await deviceNumber(o.metadataDevice, 'options.metadataDevice');
  const originDevice = await deviceNumber(o.originDevice, 'options.originDevice');
  if (sameDev(metadataDevice, originDevice)) throw expectedRange('a metadata device other than the origin', 'options.metadataDevice', formatDev(metadataDevice));
  const length = await lengthOverOrigin(sectors, originDevice);
  const target = targets.era({ metadataDevice, originDevice, blockSize: o.blockSize });
  return { table: new Table([{ start: 0, length, target }]), target, metadataDevice, uuid };
}

function isEraTarget(t: Target): t is EraTarget {
  return t.type === 'era' && typeof Reflect.get(t, 'blockSize') === 'number' && typeof Reflect.get(t, 'metadataDevice') === 'string';
}

function eraTargetOf(table: Table | undefined, name: string): EraTarget {
  return liveTarget(table, name, 'era', isEraTarget, 'id');
}

function isEraStatus(s: TargetStatus): s is EraStatus {
  return s.known && s.type === 'era';
}

/* ---- dm-era's on-disk metadata, read from a held snapshot ---- */

/** The xor each persistent-data block kind folds into its crc32c (drivers/md: dm-era-target.c, dm-btree-spine.c, dm-array.c). */
const SUPERBLOCK_CSUM_XOR = 146538381;
const BTREE_CSUM_XOR = 121107;
const ARRAY_CSUM_XOR = 595846735;
const SUPERBLOCK_MAGIC = 2126579579;
const BTREE_INTERNAL = 1;
const BTREE_LEAF = 2;
const BTREE_HEADER = 32;
const ARRAY_HEADER = 24;
/** A btree of 4 KiB nodes over 2^32 keys is far shallower than this. */
const MAX_DEPTH = 16;

const CRC32C = ((): Uint32Array => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** dm_bm_checksum: crc32c seeded with ~0 and not inverted at the end, over the block after its csum word, xor a constant. */
function blockChecksum(block: Buffer, xor: number): number {
  let c = 0xffffffff;
  for (let i = 4; i < block.length; i++) c = (CRC32C[(c ^ (block[i] ?? 0)) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ xor) >>> 0;
}

/** A little-endian u64 that must fit a safe integer (block numbers, keys). */
function u64(b: Buffer, offset: number, what: string): number {
  const v = b.readBigUInt64LE(offset);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(`${what} ${v} is out of range`);
  return Number(v);
}

function corrupt(message: string): DmError {
  return new DmError({ errno: EILSEQ, syscall: 'read', message: `era metadata snapshot: ${message}` });
}

/** What `writtenBlocks` needs from a snapshot. */
interface EraSnapshot {
  readonly currentEra: number;
  readonly nrBlocks: number;
  /** One byte per era block: 1 when it was written in the era asked about or later. */
  readonly marked: Uint8Array;
}

/** Reads the metadata blocks of a held snapshot through a file handle, each checked. */
class MetadataReader {
  readonly #fh: FileHandle;
  readonly #path: string;
  readonly #blocks: number;

  constructor(fh: FileHandle, path: string, blocks: number) {
    this.#fh = fh;
    this.#path = path;
    this.#blocks = blocks;
  }

  async block(location: number, xor: number, what: string): Promise<Buffer> {
    if (!Number.isSafeInteger(location) || location <= 0 || location >= this.#blocks) throw corrupt(`${what} at block ${location}, outside the ${this.#blocks} metadata blocks`);
    const b = Buffer.alloc(METADATA_BLOCK);
    const { bytesRead } = await fsCall(this.#path, () => this.#fh.read(b, 0, METADATA_BLOCK, location * METADATA_BLOCK));
    if (bytesRead !== METADATA_BLOCK) throw corrupt(`${what} at block ${location}: short read (${bytesRead} bytes)`);
    const sum = blockChecksum(b, xor);
    if (b.readUInt32LE(0) !== sum) throw corrupt(`${what} at block ${location}: checksum ${b.readUInt32LE(0)}, computed ${sum}`);
    return b;
  }

  /** Every leaf entry of a one-level btree of `valueSize`-byte values, in key order. */
  async btree(root: number, valueSize: number, what: string, visit: (key: number, node: Buffer, valueOffset: number) => void | Promise<void>): Promise<void> {
    const seen = new Set<number>();
    const walk = async (location: number, depth: number): Promise<void> => {
      if (depth > MAX_DEPTH || seen.has(location)) throw corrupt(`${what}: a cycle or a btree deeper than ${MAX_DEPTH} at block ${location}`);
      seen.add(location);
      const node = await this.block(location, BTREE_CSUM_XOR, `${what} node`);
      const flags = node.readUInt32LE(4);
      const blocknr = u64(node, 8, 'blocknr');
      const nr = node.readUInt32LE(16);
      const max = node.readUInt32LE(20);
      const size = node.readUInt32LE(24);
      if (blocknr !== location) throw corrupt(`${what} node at block ${location} says it is block ${blocknr}`);
      const internal = flags === BTREE_INTERNAL;
      if (!internal && flags !== BTREE_LEAF) throw corrupt(`${what} node at block ${location}: flags ${flags}`);
      if (size !== (internal ? 8 : valueSize) || nr > max || BTREE_HEADER + max * (8 + size) > METADATA_BLOCK) throw corrupt(`${what} node at block ${location}: ${nr}/${max} entries of ${size} bytes`);
      const values = BTREE_HEADER + max * 8;
      for (let i = 0; i < nr; i++) {
        if (internal) await walk(u64(node, values + i * 8, 'child'), depth + 1);
        else await visit(u64(node, BTREE_HEADER + i * 8, 'key'), node, values + i * size);
      }
    };
    await walk(root, 0);
  }

  /** Every entry of a persistent-data array of `valueSize`-byte values: its index and where it is. */
  async array(root: number, valueSize: number, what: string, visit: (index: number, block: Buffer, offset: number) => void): Promise<void> {
    const perBlock = Math.floor((METADATA_BLOCK - ARRAY_HEADER) / valueSize);
    const locations: [number, number][] = [];
    await this.btree(root, 8, `${what} index`, (key, node, offset) => {
      locations.push([key, u64(node, offset, 'array block')]);
    });
    for (const [key, location] of locations) {
      const b = await this.block(location, ARRAY_CSUM_XOR, `${what} block`);
      const max = b.readUInt32LE(4);
      const nr = b.readUInt32LE(8);
      const size = b.readUInt32LE(12);
      const blocknr = u64(b, 16, 'blocknr');
      if (blocknr !== location) throw corrupt(`${what} block at ${location} says it is block ${blocknr}`);
      if (size !== valueSize || max !== perBlock || nr > max) throw corrupt(`${what} block at ${location}: ${nr}/${max} entries of ${size} bytes`);
      for (let j = 0; j < nr; j++) visit(key * max + j, b, ARRAY_HEADER + j * size);
    }
  }
}

/** Reads the snapshot whose superblock clone is at `root` and marks the blocks written in era `since` or later. */
async function readSnapshot(path: string, root: number, metadataBlocks: number, since: number): Promise<EraSnapshot> {
  const fh = await fsCall(path, () => open(path, 'r'));
  try {
    const md = new MetadataReader(fh, path, metadataBlocks);
    const sb = await md.block(root, SUPERBLOCK_CSUM_XOR, 'superblock clone');
    if (u64(sb, 8, 'blocknr') !== root) throw corrupt(`the superblock clone at block ${root} says it is block ${u64(sb, 8, 'blocknr')}`);
    if (u64(sb, 32, 'magic') !== SUPERBLOCK_MAGIC) throw corrupt(`the block at ${root} is not an era superblock`);
    const version = sb.readUInt32LE(40);
    if (version !== 1) throw corrupt(`metadata version ${version} (only 1 is known)`);
    const nrBlocks = sb.readUInt32LE(180);
    const currentEra = sb.readUInt32LE(184);
    const writesetTreeRoot = u64(sb, 200, 'writeset tree root');
    const eraArrayRoot = u64(sb, 208, 'era array root');
    const marked = new Uint8Array(nrBlocks);

    // Eras not yet folded into the era array: one bitset (an array of u64 words) each.
    const writesets: { era: number; bits: number; root: number }[] = [];
    await md.btree(writesetTreeRoot, 12, 'writeset tree', (era, node, offset) => {
      writesets.push({ era, bits: node.readUInt32LE(offset), root: u64(node, offset + 4, 'writeset root') });
    });
    for (const ws of writesets) {
      if (ws.era < since) continue;
      const limit = Math.min(ws.bits, nrBlocks);
      await md.array(ws.root, 8, `writeset of era ${ws.era}`, (word, b, offset) => {
        for (let half = 0; half < 2; half++) {
          let bits = b.readUInt32LE(offset + half * 4);
          for (let bit = word * 64 + half * 32; bits !== 0; bit++, bits >>>= 1) {
            if (bits & 1 && bit < limit) marked[bit] = 1;
          }
        }
      });
    }
    await md.array(eraArrayRoot, 4, 'era array', (index, b, offset) => {
      const era = b.readUInt32LE(offset);
      // 0: never written (the first era is 1: the first resume moves on from 0).
      if (era !== 0 && era >= since && index < nrBlocks) marked[index] = 1;
    });
    return { currentEra, nrBlocks, marked };
  } finally {
    await fh.close();
  }
}

function writtenBlocks(since: number, snap: EraSnapshot, blockSize: number, sectors: number): EraWrittenBlocks {
  const ranges: EraBlockRange[] = [];
  let count = 0;
  for (let b = 0; b < snap.nrBlocks; b++) {
    if (snap.marked[b] !== 1) continue;
    let e = b + 1;
    while (e < snap.nrBlocks && snap.marked[e] === 1) e++;
    ranges.push(Object.freeze({ begin: b, end: e }));
    count += e - b;
    b = e;
  }
  const sectorRanges = ranges
    .map((r) => ({ start: r.begin * blockSize, end: Math.min(r.end * blockSize, sectors) }))
    .filter((r) => r.end > r.start)
    .map((r) => Object.freeze({ start: r.start, length: r.end - r.start }));
  return Object.freeze({ since, nextSince: snap.currentEra, blockSize, blocks: Math.ceil(sectors / blockSize), ranges: Object.freeze(ranges), count, sectorRanges: Object.freeze(sectorRanges) });
}
