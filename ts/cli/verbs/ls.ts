/**
 * `devmapper ls`: the devices, by name with their numbers; `--tree`: how they stack (from
 * each table's DEPS), as `dmsetup ls --tree` draws it.
 * @packageDocumentation
 */
import { readFileSync } from 'node:fs';
import type { DeviceListEntry } from '../../client';
import { formatDev, type DevNumber } from '../../dev';
import { deviceTree, type DeviceTree } from '../../workflows/tree';
import { ExitCode, defineVerb } from '../verb';

/** A node of `ls --tree --json`: a device-mapper device with what it is built on, or another block device. */
export interface TreeNode {
  /** The device-mapper device's name; absent for other block devices (a loop device, a disk). */
  name?: string;
  /** The device-mapper device's uuid, when it has one. */
  uuid?: string;
  /** Its number. */
  dev: DevNumber;
  /** For another block device: the kernel's name of it (`loop0`, `sda`), when sysfs has one. */
  devname?: string;
  /** What it is built on (its table's DEPS), in the kernel's order. */
  children: TreeNode[];
}

function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/**
 * The kernel's name of a block device (`loop0`), from DEVNAME in /sys/dev/block/M:m/uevent;
 * undefined when sysfs has none. For display only: it names, it does not identify.
 */
export function blockDeviceName(dev: DevNumber): string | undefined {
  try {
    const name = /^DEVNAME=(.+)$/m.exec(readFileSync(`/sys/dev/block/${formatDev(dev)}/uevent`, 'utf8'))?.[1];
    return name === undefined || name === '' ? undefined : name;
  } catch {
    return undefined; // gone, or no sysfs here
  }
}

/**
 * The devices as trees: each device no other uses at the top, what it is built on below it.
 * `devname` names the other block devices (see {@link blockDeviceName}).
 */
export function treeNodes(tree: DeviceTree, devname: (dev: DevNumber) => string | undefined = blockDeviceName): TreeNode[] {
  const byDev = new Map<string, string>();
  for (const n of tree.nodes.values()) byDev.set(formatDev(n.dev), n.name);
  const build = (name: string, seen: ReadonlySet<string>): TreeNode => {
    const node = tree.get(name);
    if (node === undefined) throw new Error(`the tree has no ${name}`);
    const children = node.deps.map((d): TreeNode => {
      const child = byDev.get(formatDev(d));
      // A cycle cannot be built in the kernel; the guard keeps a bad answer from looping.
      if (child !== undefined && !seen.has(child)) return build(child, new Set([...seen, child]));
      const name = devname(d);
      return { dev: d, ...(name !== undefined ? { devname: name } : {}), children: [] };
    });
    return { name, ...(node.uuid !== '' ? { uuid: node.uuid } : {}), dev: node.dev, children };
  };
  return [...tree.tops].sort().map((name) => build(name, new Set([name])));
}

/**
 * The lines `ls --tree` prints for some trees: `name (major:minor)`, children drawn under;
 * other block devices as ` (major:minor)`, or `devname (major:minor)` with `devnames`.
 */
export function drawTree(nodes: readonly TreeNode[], devnames = false): string[] {
  const lines: string[] = [];
  const label = (n: TreeNode): string => `${n.name ?? (devnames ? n.devname ?? '' : '')} (${formatDev(n.dev)})`;
  const children = (n: TreeNode, prefix: string): void => {
    n.children.forEach((c, i) => {
      const last = i === n.children.length - 1;
      lines.push(`${prefix}${last ? '└─' : '├─'}${label(c)}`);
      children(c, `${prefix}${last ? '   ' : '│  '}`);
    });
  };
  for (const n of nodes) {
    lines.push(label(n));
    children(n, ' ');
  }
  return lines;
}

/** `devmapper ls`. */
export const ls = defineVerb({
  name: 'ls',
  summary: 'List the devices (--tree: how they stack)',
  usage: '',
  description: `Text: "NAME (MAJOR:MINOR)" a line, by name. --tree: each device that no other uses, with the
devices its table uses drawn below it (device-mapper devices by name, others by number, and
with --devnames by the kernel's name too: loop0).
JSON: [{ "name", "uuid"?, "dev": { "major", "minor" }, "eventNr"? }, ...]; with --tree nested
{ "name"?, "uuid"?, "dev", "devname"?, "children": [...] } objects ("devname": other block devices).`,
  options: {
    tree: { type: 'boolean', help: 'draw the devices as trees of what they are built on' },
    devnames: { type: 'boolean', help: 'with --tree: name the other block devices (loop0, sda)' },
  },
  positionals: { min: 0, max: 0 },
  async run(ctx) {
    if (ctx.options.devnames === true && ctx.options.tree !== true) throw ctx.usageError('--devnames goes with --tree');
    if (ctx.options.tree === true) {
      const nodes = treeNodes(await deviceTree(await ctx.client()));
      if (ctx.global.json) ctx.out.json(nodes);
      else for (const line of drawTree(nodes, ctx.options.devnames === true)) ctx.out.line(line);
      return ExitCode.ok;
    }
    const list: DeviceListEntry[] = ctx.syncClient().listDevices().sort(byName);
    if (ctx.global.json) ctx.out.json(list);
    else ctx.out.table([{ heading: 'Name' }, { heading: 'Dev' }], list.map((d) => [d.name, `(${formatDev(d.dev)})`]), { headings: false });
    return ExitCode.ok;
  },
});
