/**
 * The `/dev/mapper/<name>` nodes the library makes itself when udev does not (fallback mode),
 * and their reconciliation with the kernel's device list (`mknodes`). Every step checks what
 * is there before it acts: only block nodes are made, replaced or removed; a symlink is
 * accepted when it leads to the right device (udev makes those) and replaced only by
 * `mknodes`; regular files, directories and other kinds are never touched; `control` is never
 * looked at.
 * @internal
 */
import { chmodSync, lstatSync, mkdirSync, readdirSync, renameSync, statSync, unlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { binding } from './binding';
import { decodeRdev, formatDev, type DevNumber } from './dev';
import { DmError } from './errors';

/** Where device-mapper names live. */
export const MAPPER_DIR = '/dev/mapper';

/** The mode of the nodes the library makes (root's, as libdevmapper makes them). */
export const NODE_MODE = 0o600;

/** `/dev/mapper/<name>`. */
export function mapperPath(name: string, dir = MAPPER_DIR): string {
  // What join gives, without its normalisation pass (most of an info call's own JavaScript
  // time): a name that is not empty, '.', '..' and holds no '/' joins as it is.
  if (dir === MAPPER_DIR && name !== '' && name !== '.' && name !== '..' && !name.includes('/')) return `${MAPPER_DIR}/${name}`;
  return join(dir, name);
}

/** A change to `/dev/mapper` after an ioctl, or the reconciliation of the whole directory. */
export type NodeOp =
  | { readonly kind: 'ensure'; readonly name: string; readonly dev: DevNumber }
  | { readonly kind: 'remove'; readonly name: string; readonly dev: DevNumber }
  | { readonly kind: 'inspect'; readonly name: string }
  | { readonly kind: 'removeSeen'; readonly name: string; readonly seen: NodeSeen | undefined }
  | { readonly kind: 'rename'; readonly from: string; readonly to: string; readonly dev: DevNumber }
  | { readonly kind: 'reconcile'; readonly devices: readonly { readonly name: string; readonly dev: DevNumber }[] };

/** Which block node was at a name (its inode and device number), as `inspect` saw it. */
export interface NodeSeen {
  readonly ino: number;
  readonly rdev: number;
}

/** The block node at `/dev/mapper/<name>` (not a symlink), if there is one. */
export function inspectNode(name: string, dir = MAPPER_DIR): NodeSeen | undefined {
  const st = lstatOrUndefined(mapperPath(name, dir));
  return st !== undefined && st.isBlockDevice() ? { ino: st.ino, rdev: st.rdev } : undefined;
}

/**
 * After the kernel removed the device `name` (so that no device has that name any more):
 * removes the block node there if it is the very node `inspect` saw before the remove (the
 * same inode and device number), never one made since.
 */
export function removeSeenNode(name: string, seen: NodeSeen | undefined, dir = MAPPER_DIR): 'removed' | 'kept' {
  if (seen === undefined) return 'kept';
  const path = mapperPath(name, dir);
  const st = lstatOrUndefined(path);
  if (st === undefined || !st.isBlockDevice() || st.ino !== seen.ino || st.rdev !== seen.rdev) return 'kept';
  unlink(path);
  return 'removed';
}

/** What `mknodes` did. */
export interface MknodesResult {
  /** Names whose node was missing and was made. */
  created: string[];
  /** Names whose node led to another device (or nowhere) and was replaced. */
  fixed: string[];
  /** Nodes and symlinks for names the kernel has no device of, removed. */
  removed: string[];
  /** Entries left as they are, and why (a regular file, a directory, ...). */
  skipped: {
    /** The entry's name in the directory. */
    name: string;
    /** Why it was left alone. */
    reason: string;
  }[];
}

function code(e: unknown): string | undefined {
  const c: unknown = e instanceof Error ? Reflect.get(e, 'code') : undefined;
  return typeof c === 'string' ? c : undefined;
}

/** A file system failure as a DmError about `path`, its errno kept. */
function fsError(e: unknown, path: string): Error {
  if (!(e instanceof Error)) return new Error(String(e));
  const errno: unknown = Reflect.get(e, 'errno');
  const syscall: unknown = Reflect.get(e, 'syscall');
  if (typeof errno !== 'number' || typeof syscall !== 'string') return e;
  return new DmError({ errno: Math.abs(errno), syscall, device: path, message: e.message.includes(path) ? e.message : `${syscall} ${path}: ${e.message}`, cause: e });
}

function refused(path: string, what: string, dev: DevNumber): DmError {
  return new DmError({
    errno: 17,
    syscall: 'lstat',
    device: path,
    message: `${path} is ${what}, not a node of ${formatDev(dev)}: left as it is (the library replaces only block nodes; dm.mknodes() also replaces stale symlinks)`,
  });
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (e) {
    if (code(e) === 'ENOENT') return undefined;
    throw fsError(e, path);
  }
}

function sameDev(st: Stats, dev: DevNumber): boolean {
  const d = decodeRdev(st.rdev);
  return d.major === dev.major && d.minor === dev.minor;
}

/** Where a symlink leads: the block device it resolves to, or undefined (dangling, or not a block device). */
function symlinkTarget(path: string): Stats | undefined {
  try {
    const st = statSync(path);
    return st.isBlockDevice() ? st : undefined;
  } catch {
    return undefined;
  }
}

function describeKind(st: Stats): string {
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isSymbolicLink()) return 'a symlink';
  return 'a block node';
}

/** Makes a block node of `dev` at `path` (mode 0600, whatever the umask). */
function mknod(path: string, dev: DevNumber): void {
  try {
    binding().mknodBlock(path, dev.major, dev.minor, NODE_MODE);
    chmodSync(path, NODE_MODE);
  } catch (e) {
    throw fsError(e, path);
  }
}

/** Puts a block node of `dev` in place of what is at `path`, atomically (made aside, renamed over). */
function replace(dir: string, name: string, dev: DevNumber): void {
  const path = mapperPath(name, dir);
  const aside = join(dir, `.${name}.devmapper-new`);
  if (lstatOrUndefined(aside) !== undefined) unlink(aside);
  mknod(aside, dev);
  try {
    renameSync(aside, path);
  } catch (e) {
    unlink(aside);
    throw fsError(e, path);
  }
}

function unlink(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if (code(e) !== 'ENOENT') throw fsError(e, path);
  }
}

function ensureDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
  } catch (e) {
    throw fsError(e, dir);
  }
}

/**
 * `/dev/mapper/<name>` leads to `dev` when this returns: a missing node is made, a block node
 * of another device (a stale one) is replaced; a symlink that leads to `dev` (udev's) is
 * accepted. Anything else is refused (EEXIST) and left as it is.
 */
export function ensureNode(name: string, dev: DevNumber, dir = MAPPER_DIR): 'created' | 'fixed' | 'present' {
  const path = mapperPath(name, dir);
  const st = lstatOrUndefined(path);
  if (st === undefined) {
    ensureDir(dir);
    mknod(path, dev);
    return 'created';
  }
  if (st.isBlockDevice()) {
    if (sameDev(st, dev)) return 'present';
    replace(dir, name, dev);
    return 'fixed';
  }
  if (st.isSymbolicLink()) {
    const target = symlinkTarget(path);
    if (target !== undefined && sameDev(target, dev)) return 'present';
    throw refused(path, target === undefined ? 'a symlink that leads to no block device' : `a symlink to ${formatDev(decodeRdev(target.rdev))}`, dev);
  }
  throw refused(path, describeKind(st), dev);
}

/**
 * Removes `/dev/mapper/<name>` if it is a block node of `dev`: a node of another device, a
 * symlink (udev's to remove) or anything else is left.
 */
export function removeNode(name: string, dev: DevNumber, dir = MAPPER_DIR): 'removed' | 'absent' | 'kept' {
  const path = mapperPath(name, dir);
  const st = lstatOrUndefined(path);
  if (st === undefined) return 'absent';
  if (!st.isBlockDevice() || !sameDev(st, dev)) return 'kept';
  unlink(path);
  return 'removed';
}

/** After a rename: the old name's node moves to the new name (or the new one is made), the old one goes. */
export function renameNode(from: string, to: string, dev: DevNumber, dir = MAPPER_DIR): void {
  const old = lstatOrUndefined(mapperPath(from, dir));
  const taken = lstatOrUndefined(mapperPath(to, dir));
  if (old !== undefined && old.isBlockDevice() && sameDev(old, dev) && taken === undefined) {
    try {
      renameSync(mapperPath(from, dir), mapperPath(to, dir));
      return;
    } catch (e) {
      throw fsError(e, mapperPath(to, dir));
    }
  }
  ensureNode(to, dev, dir);
  removeNode(from, dev, dir);
}

/**
 * Makes `/dev/mapper` agree with the kernel's device list: missing nodes made, nodes and
 * symlinks that lead elsewhere replaced, block nodes and symlinks of names the kernel has no
 * device of removed. `control` and every entry that is neither a block node nor a symlink are
 * never touched.
 */
export function reconcile(devices: readonly { readonly name: string; readonly dev: DevNumber }[], dir = MAPPER_DIR): MknodesResult {
  const result: MknodesResult = { created: [], fixed: [], removed: [], skipped: [] };
  ensureDir(dir);
  const names = new Set<string>();
  for (const d of devices) {
    names.add(d.name);
    const path = mapperPath(d.name, dir);
    const st = lstatOrUndefined(path);
    if (st === undefined) {
      mknod(path, d.dev);
      result.created.push(d.name);
    } else if (st.isBlockDevice()) {
      if (!sameDev(st, d.dev)) {
        replace(dir, d.name, d.dev);
        result.fixed.push(d.name);
      }
    } else if (st.isSymbolicLink()) {
      const target = symlinkTarget(path);
      if (target === undefined || !sameDev(target, d.dev)) {
        replace(dir, d.name, d.dev);
        result.fixed.push(d.name);
      }
    } else {
      result.skipped.push({ name: d.name, reason: describeKind(st) });
    }
  }
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (e) {
    throw fsError(e, dir);
  }
  for (const entry of entries.sort()) {
    if (entry === 'control' || names.has(entry)) continue;
    const path = join(dir, entry);
    const st = lstatOrUndefined(path);
    if (st === undefined) continue;
    if (st.isBlockDevice() || st.isSymbolicLink()) {
      unlink(path);
      result.removed.push(entry);
    } else {
      result.skipped.push({ name: entry, reason: describeKind(st) });
    }
  }
  return result;
}

/** Carries out a node step. */
export function applyNodeOp(op: NodeOp, dir = MAPPER_DIR): { nodes?: MknodesResult; seen?: NodeSeen } {
  switch (op.kind) {
    case 'inspect': {
      const seen = inspectNode(op.name, dir);
      return seen === undefined ? {} : { seen };
    }
    case 'removeSeen':
      removeSeenNode(op.name, op.seen, dir);
      return {};
    case 'ensure':
      ensureNode(op.name, op.dev, dir);
      return {};
    case 'remove':
      removeNode(op.name, op.dev, dir);
      return {};
    case 'rename':
      renameNode(op.from, op.to, op.dev, dir);
      return {};
    case 'reconcile':
      return { nodes: reconcile(op.devices, dir) };
  }
}
