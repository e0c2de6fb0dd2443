// Shared pieces of the thin-pool and thin kernel tests: a pool on two loop devices, direct I/O
// with dd, and the typed statuses.
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { Table, targets, type LoopDevice, type ThinPoolOptions, type ThinPoolRunningStatus, type ThinPoolTarget, type ThinRunningStatus } from '../../../ts/index';
import { type TestContext, devName } from '../helpers';

/** A pool made by `makePool`. */
export interface Pool {
  readonly name: string;
  readonly target: ThinPoolTarget;
  readonly table: Table;
  readonly meta: LoopDevice;
  readonly data: LoopDevice;
  /** The pool's device number, as thin tables name it. */
  readonly dev: { major: number; minor: number };
}

/** Zeroes the first 4 KiB of a device, as thin-provisioning.rst asks of a new metadata device. */
export function zeroSuperblock(path: string): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, Buffer.alloc(4096), 0, 4096, 0);
  } finally {
    closeSync(fd);
  }
}

/**
 * A thin-pool over a new metadata loop device (4 MiB, its superblock zeroed) and a new data
 * loop device of `dataSectors`, built with targets.thinPool.
 */
export async function makePool(t: TestContext, dataSectors: number, options: Partial<ThinPoolOptions> = {}, metaSectors = 8192): Promise<Pool> {
  const meta = await t.fx.loop(metaSectors);
  const data = await t.fx.loop(dataSectors);
  zeroSuperblock(meta.path);
  const target = targets.thinPool({ metadataDevice: meta.dev, dataDevice: data.dev, blockSize: 128, lowWaterMark: 0, ...options });
  const table = new Table([{ start: 0, length: dataSectors, target }]);
  const name = devName('pool');
  const info = await t.dm.create(name, { table });
  return { name, target, table, meta, data, dev: info.dev };
}

/** The typed status of a working pool, the device's only row. */
export async function poolStatus(t: TestContext, name: string): Promise<ThinPoolRunningStatus> {
  const [row] = await t.dm.status(name);
  if (row === undefined || !row.status.known || row.status.type !== 'thin-pool' || row.status.failed !== false) throw new Error(`no typed working thin-pool status for ${name}: ${row?.status.raw}`);
  return row.status;
}

/** The typed status of a working thin device, the device's only row. */
export async function thinStatus(t: TestContext, name: string): Promise<ThinRunningStatus> {
  const [row] = await t.dm.status(name);
  if (row === undefined || !row.status.known || row.status.type !== 'thin' || row.status.failed !== false) throw new Error(`no typed working thin status for ${name}: ${row?.status.raw}`);
  return row.status;
}

/** Writes `data` (whole 4 KiB blocks) at byte `offset` (a multiple of 4096) of `path` with direct I/O (dd), so it reaches the target at once. */
export function writeAt(path: string, data: Buffer, offset: number): void {
  execFileSync('dd', [`of=${path}`, 'bs=4096', 'iflag=fullblock', `seek=${offset / 4096}`, 'oflag=direct', 'conv=notrunc', 'status=none'], { input: data, stdio: ['pipe', 'ignore', 'pipe'] });
}

/** The error dd reports writing `data` at `offset` (as `writeAt`); throws when the write succeeds. */
export function writeError(path: string, data: Buffer, offset: number): string {
  try {
    writeAt(path, data, offset);
  } catch (e) {
    const stderr: unknown = typeof e === 'object' && e !== null ? Reflect.get(e, 'stderr') : undefined;
    return Buffer.isBuffer(stderr) ? stderr.toString('utf8') : String(e);
  }
  throw new Error(`a write at ${offset} of ${path} succeeded`);
}

/** Reads `bytes` at byte `offset` of `path` with direct I/O (dd). */
export function readAt(path: string, bytes: number, offset: number): Buffer {
  return execFileSync('dd', [`if=${path}`, 'bs=4096', `skip=${offset}`, `count=${bytes}`, 'iflag=direct,skip_bytes,count_bytes', 'status=none'], { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: bytes + 4096 });
}

/** Runs a thin-provisioning-tools command; its stdout, or throws with its stderr. */
export function thinTool(command: string, ...args: string[]): string {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
