/**
 * The dependency tree of the device-mapper devices, from each table's DEPS (the devices the
 * kernel holds open for it): which devices are stacked on which, the order a stack is built
 * in and the order it can be torn down in, and a teardown that removes a stack top-down.
 */
import { constants } from 'node:os';
import { DeviceMapper, type DeviceInfo } from '../client';
import { formatDev, type DevNumber } from '../dev';
import { DmError } from '../errors';
import { checkBoolean, checkName, checkOptions, expected } from '../validate';
import { checkDeviceMapper } from './common';

/** One device-mapper device and its place in the stack. */
export interface DeviceNode {
  /** The device's name. */
  readonly name: string;
  /** '' when the device has no uuid. */
  readonly uuid: string;
  /** Its device number. */
  readonly dev: DevNumber;
  /** What DEV_STATUS said of it when the tree was read. */
  readonly info: DeviceInfo;
  /**
   * Every device its tables use (TABLE_DEPS of the live table and of the inactive one, if
   * loaded): device-mapper devices and others (loop devices, disks).
   */
  readonly deps: readonly DevNumber[];
  /** The device-mapper devices among `deps`, by name, sorted: what it is stacked on. */
  readonly dependencies: readonly string[];
  /** The device-mapper devices whose tables use this one, by name, sorted: what is stacked on it. */
  readonly dependents: readonly string[];
}

/** Options of `teardown`. */
export interface TeardownOptions {
  /**
   * Also remove, once the stack above is gone, the device-mapper devices the named ones are
   * built on, all the way down, except those another device outside the teardown still uses.
   * Default false: only the named devices and what is stacked on them go.
   */
  withDependencies?: boolean;
}

const EBUSY = constants.errno.EBUSY;
const ENXIO = constants.errno.ENXIO;
const ESTALE = constants.errno.ESTALE;

function key(d: DevNumber): string {
  return formatDev(d);
}

function names(value: string | readonly string[], name: string): string[] {
  if (typeof value === 'string') return [checkName(value, name)];
  if (!Array.isArray(value)) throw expected('a device name or an array of names', name, value);
  return value.map((v: unknown, i) => checkName(v, `${name}[${i}]`));
}

/**
 * The device-mapper devices as one snapshot of the kernel's answers: each with the devices it
 * uses and the devices that use it.
 */
export class DeviceTree {
  /** Every device, by name. */
  readonly nodes: ReadonlyMap<string, DeviceNode>;

  /** @internal */
  constructor(nodes: readonly DeviceNode[]) {
    this.nodes = new Map(nodes.map((n) => [n.name, n]));
  }

  /** The device named `name`, or undefined. */
  get(name: string): DeviceNode | undefined {
    return this.nodes.get(name);
  }

  /** The devices nothing is stacked on (the tops of the stacks), sorted by name. */
  get tops(): string[] {
    return [...this.nodes.values()].filter((n) => n.dependents.length === 0).map((n) => n.name).sort();
  }

  /**
   * The order the devices can be removed in, top-down (each after every device stacked on
   * it): the named devices and everything stacked on them, or every device when `of` is not
   * given. Throws ENXIO (DmError) for a name the tree does not have.
   */
  teardownOrder(of?: string | readonly string[]): string[] {
    const start = of === undefined ? [...this.nodes.keys()] : this.#known(names(of, 'of'));
    return this.#order(this.#closure(start, (n) => n.dependents), (n) => n.dependents);
  }

  /**
   * The order the devices can be created in, bottom-up (each after every device it is built
   * on): the named devices and everything they are built on, or every device when `of` is not
   * given. Throws ENXIO (DmError) for a name the tree does not have.
   */
  activationOrder(of?: string | readonly string[]): string[] {
    const start = of === undefined ? [...this.nodes.keys()] : this.#known(names(of, 'of'));
    return this.#order(this.#closure(start, (n) => n.dependencies), (n) => n.dependencies);
  }

  #known(list: readonly string[]): string[] {
    for (const n of list) {
      if (!this.nodes.has(n)) throw new DmError({ errno: ENXIO, syscall: 'ioctl', device: n, message: `${n}: no such device-mapper device` });
    }
    return [...list];
  }

  /** `start` and every device reached from it through `next`. */
  #closure(start: readonly string[], next: (n: DeviceNode) => readonly string[]): Set<string> {
    const seen = new Set<string>();
    const todo = [...start];
    for (let name = todo.pop(); name !== undefined; name = todo.pop()) {
      const node = this.nodes.get(name);
      if (node === undefined || seen.has(name)) continue;
      seen.add(name);
      todo.push(...next(node));
    }
    return seen;
  }

  /** The devices of `set`, each after all of its `before` devices that are in `set`; ties by name. */
  #order(set: Set<string>, before: (n: DeviceNode) => readonly string[]): string[] {
    const out: string[] = [];
    const done = new Set<string>();
    const left = [...set].sort();
    while (left.length > 0) {
      const i = left.findIndex((name) => {
        const node = this.nodes.get(name);
        return node !== undefined && before(node).every((b) => !set.has(b) || done.has(b));
      });
      // Tables cannot form a cycle (the kernel refuses a table over its own device); a stale read could.
      if (i < 0) throw new DmError({ errno: ESTALE, syscall: 'ioctl', message: `the device dependencies form a cycle among ${left.join(', ')}: read the tree again` });
      const [name] = left.splice(i, 1);
      if (name !== undefined) {
        out.push(name);
        done.add(name);
      }
    }
    return out;
  }
}

/**
 * Reads the dependency tree of every device-mapper device: LIST_DEVICES, then for each device
 * DEV_STATUS and TABLE_DEPS (of its inactive table too, when it has one). A device removed
 * while the tree is read is left out; one whose name came to mean another device meanwhile
 * makes the read start again (up to 3 times, then ESTALE).
 */
export async function deviceTree(dm: DeviceMapper): Promise<DeviceTree> {
  checkDeviceMapper(dm);
  for (let attempt = 0; attempt < 3; attempt++) {
    const tree = await readTree(dm);
    if (tree !== undefined) return tree;
  }
  throw new DmError({ errno: ESTALE, syscall: 'ioctl', message: 'the device list kept changing while the dependency tree was read' });
}

async function readTree(dm: DeviceMapper): Promise<DeviceTree | undefined> {
  const listed = await dm.listDevices();
  const read: { info: DeviceInfo; deps: DevNumber[] }[] = [];
  for (const d of listed) {
    try {
      const info = await dm.info(d.name);
      if (key(info.dev) !== key(d.dev)) return undefined;
      const deps = info.activeTable ? await dm.deps(d.name) : [];
      if (info.inactiveTable) deps.push(...(await dm.deps(d.name, { inactive: true })));
      const unique = new Map(deps.map((x) => [key(x), x]));
      read.push({ info, deps: [...unique.values()] });
    } catch (e) {
      // Removed since the list was taken.
      if (e instanceof DmError && e.code === 'ENXIO') continue;
      throw e;
    }
  }
  const byDev = new Map(read.map((r) => [key(r.info.dev), r.info.name]));
  const dependents = new Map<string, string[]>(read.map((r) => [r.info.name, []]));
  for (const r of read) {
    for (const d of r.deps) {
      const lower = byDev.get(key(d));
      if (lower !== undefined) dependents.get(lower)?.push(r.info.name);
    }
  }
  return new DeviceTree(
    read.map((r) => Object.freeze({
      name: r.info.name,
      uuid: r.info.uuid,
      dev: r.info.dev,
      info: r.info,
      deps: Object.freeze(r.deps),
      dependencies: Object.freeze(r.deps.flatMap((d) => byDev.get(key(d)) ?? []).sort()),
      dependents: Object.freeze([...(dependents.get(r.info.name) ?? [])].sort()),
    })),
  );
}

/**
 * Removes the named devices and every device stacked on them, top-down (DEV_REMOVE each,
 * after the devices that use it), and with `withDependencies` the devices they are built on
 * that nothing else uses; resolves with the names removed, in order. Before removing anything
 * it checks that no device to be removed is held open by anything but the devices above it
 * that go too (a mounted filesystem, a process, a device outside the teardown): if one is,
 * it fails with EBUSY naming them and removes nothing. A device removed meanwhile by someone
 * else is skipped; a remove that fails anyway (opened since the check) stops the teardown
 * with its DmError, whose message lists what was removed before it.
 */
export async function teardown(dm: DeviceMapper, of: string | readonly string[], options?: TeardownOptions): Promise<string[]> {
  checkDeviceMapper(dm);
  const start = names(of, 'of');
  const o = checkOptions(options, 'options', ['withDependencies']);
  const below = checkBoolean(o.withDependencies, 'options.withDependencies', false);
  const tree = await deviceTree(dm);
  let order = tree.teardownOrder(start);
  if (below) {
    const going = new Set(order);
    // Downward, a device goes when everything that uses it goes too.
    for (const name of tree.teardownOrder()) {
      const node = tree.get(name);
      if (node === undefined || going.has(name)) continue;
      if (node.dependents.length > 0 && node.dependents.every((d) => going.has(d))) going.add(name);
    }
    order = tree.teardownOrder().filter((n) => going.has(n));
  }
  // Each device-mapper device above holds a lower one open once, whatever its tables say.
  const busy = order.flatMap((name) => {
    const node = tree.get(name);
    return node !== undefined && node.info.openCount > node.dependents.length ? [node] : [];
  });
  if (busy.length > 0) {
    const what = busy.map((n) => `${n.name} (open ${n.info.openCount} time(s), ${n.dependents.length} of them by devices above it)`);
    throw new DmError({ errno: EBUSY, syscall: 'ioctl', command: 'DM_DEV_REMOVE', device: busy.length === 1 ? busy[0]?.name : undefined, message: `cannot tear down: still open: ${what.join(', ')}; nothing was removed` });
  }
  const removed: string[] = [];
  for (const name of order) {
    const node = tree.get(name);
    if (node === undefined) continue;
    try {
      await dm.remove(node.uuid !== '' ? { uuid: node.uuid } : name);
      removed.push(name);
    } catch (e) {
      if (e instanceof DmError && e.code === 'ENXIO') continue;
      if (e instanceof DmError) {
        throw new DmError({ errno: e.errno, syscall: e.syscall, command: e.command, device: e.device, message: `${e.message} (removed before it: ${removed.length === 0 ? 'nothing' : removed.join(', ')})`, cause: e });
      }
      throw e;
    }
  }
  return removed;
}
