import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { DmError, Table, deviceTree, teardown, targets, thinPoolMessages, type DevNumber, type LoopDevice } from '../../../ts/index';
import { PREFIX, TestContext, devName, dmsetup, rejection } from '../helpers';
import { readAt, thinTool, writeAt, zeroSuperblock } from '../targets/thin-fixture';
import { root, thrownBy } from './kit';

function dev(d: DevNumber): string {
  return `${d.major}:${d.minor}`;
}

/** `dmsetup deps`' answer for one device, as 'major:minor' strings, sorted. */
function dmsetupDeps(name: string): string[] {
  const out = dmsetup('deps', name);
  return [...out.matchAll(/\((\d+), (\d+)\)/g)].map((m) => `${m[1]}:${m[2]}`).sort();
}

interface Stack {
  meta: LoopDevice;
  data: LoopDevice;
  tmeta: string;
  tdata: string;
  pool: string;
  thins: [string, string];
}

describe('deviceTree and teardown: the dependency tree from DEPS', () => {
  const t = TestContext.perTest();

  /** Two thin volumes over a thin-pool over two linears over two loop devices. */
  async function thinStack(): Promise<Stack> {
    const meta = await t.fx.loop(8192);
    const data = await t.fx.loop(16384);
    zeroSuperblock(meta.path);
    const tmeta = devName('tmeta');
    const tdata = devName('tdata');
    const metaDev = (await t.dm.create(tmeta, { table: new Table([{ start: 0, length: 8192, target: targets.linear({ device: meta.dev, offset: 0 }) }]) })).dev;
    const dataDev = (await t.dm.create(tdata, { table: new Table([{ start: 0, length: 16384, target: targets.linear({ device: data.dev, offset: 0 }) }]) })).dev;
    const pool = devName('pool');
    const poolDev = (await t.dm.create(pool, { table: new Table([{ start: 0, length: 16384, target: targets.thinPool({ metadataDevice: metaDev, dataDevice: dataDev, blockSize: 128, lowWaterMark: 0 }) }]) })).dev;
    const thins: [string, string] = [devName('thin-a'), devName('thin-b')];
    for (const [id, name] of thins.entries()) {
      await t.dm.message(pool, thinPoolMessages.createThin(id));
      await t.dm.create(name, { table: new Table([{ start: 0, length: 8192, target: targets.thin({ poolDevice: poolDev, deviceId: id }) }]) });
    }
    return { meta, data, tmeta, tdata, pool, thins };
  }

  it('a thin stack\'s tree: each device\'s deps (dmsetup agrees), what it is built on and what is stacked on it, and both orders', async () => {
    const s = await thinStack();
    const bystander = devName('bystander');
    const other = await t.fx.loop(2048);
    await t.dm.create(bystander, { table: new Table([{ start: 0, length: 2048, target: targets.linear({ device: other.dev, offset: 0 }) }]) });
    const tree = await deviceTree(t.dm);
    const node = (name: string) => {
      const n = tree.get(name);
      if (n === undefined) throw new Error(`${name} is not in the tree`);
      return n;
    };
    for (const name of [s.tmeta, s.tdata, s.pool, ...s.thins, bystander]) {
      expect(node(name).deps.map(dev).sort(), name).to.deep.equal(dmsetupDeps(name));
      expect(node(name).info).to.include({ name, suspended: false });
    }
    expect(node(s.tmeta).deps.map(dev)).to.deep.equal([s.meta.devString]);
    expect(node(s.tmeta)).to.deep.include({ dependencies: [], dependents: [s.pool] });
    expect(node(s.pool)).to.deep.include({ dependencies: [s.tdata, s.tmeta].sort(), dependents: [...s.thins].sort() });
    expect(node(s.thins[0])).to.deep.include({ dependencies: [s.pool], dependents: [] });
    // Each device above holds the one below open once: the pool is open twice, the linears once.
    expect(node(s.pool).info.openCount).to.equal(2);
    expect(node(s.tmeta).info.openCount).to.equal(1);
    expect(tree.tops.filter((n) => n.startsWith(PREFIX))).to.deep.equal([bystander, ...s.thins].sort());

    expect(tree.teardownOrder(s.tmeta)).to.deep.equal([...[...s.thins].sort(), s.pool, s.tmeta]);
    expect(tree.activationOrder(s.thins[1])).to.deep.equal([...[s.tdata, s.tmeta].sort(), s.pool, s.thins[1]]);
    const all = tree.teardownOrder().filter((n) => n.startsWith(PREFIX));
    for (const name of all) for (const d of node(name).dependents) expect(all.indexOf(d), `${d} before ${name}`).to.be.below(all.indexOf(name));
    const up = tree.activationOrder().filter((n) => n.startsWith(PREFIX));
    for (const name of up) for (const d of node(name).dependencies) expect(up.indexOf(d), `${d} before ${name}`).to.be.below(up.indexOf(name));
    expect((await rejection(Promise.resolve().then(() => tree.teardownOrder(devName('missing'))))).code).to.equal('ENXIO');
  });

  it('teardown of the thins with their dependencies removes the stack top-down and keeps the rest; rebuilt in activation order, the data reads back and thin_check agrees', async () => {
    const s = await thinStack();
    const bystander = devName('bystander');
    const other = await t.fx.loop(2048);
    await t.dm.create(bystander, { table: new Table([{ start: 0, length: 2048, target: targets.linear({ device: other.dev, offset: 0 }) }]) });
    const payload = randomBytes(64 * 1024);
    writeAt((await t.dm.info(s.thins[1])).path, payload, 1 << 20);

    // What it takes to build the stack again: each device's table, in activation order.
    const before = await deviceTree(t.dm);
    const build = before.activationOrder([...s.thins]);
    expect(build).to.deep.equal([...[s.tdata, s.tmeta].sort(), s.pool, ...[...s.thins].sort()]);
    const tables = new Map<string, string>();
    for (const name of build) tables.set(name, (await t.dm.table(name))?.toString() ?? '');

    const removed = await teardown(t.dm, [...s.thins], { withDependencies: true });
    expect(removed).to.deep.equal(before.teardownOrder().filter((n) => build.includes(n)));
    expect(removed).to.deep.equal([...[...s.thins].sort(), s.pool, ...[s.tdata, s.tmeta].sort()]);
    const left = (await t.dm.listDevices()).map((d) => d.name).filter((n) => n.startsWith(PREFIX));
    expect(left).to.deep.equal([bystander]);
    // The pool's metadata, released by the kernel, checks clean and holds both thin devices.
    thinTool('thin_check', s.meta.path);
    expect(thinTool('thin_dump', s.meta.path).match(/<device dev_id="\d+"/g)).to.have.length(2);

    // Bottom-up again, each table naming the new numbers of the devices below it.
    const renumber = new Map<string, string>();
    for (const name of build) {
      const text = (tables.get(name) ?? '').replace(/\b\d+:\d+\b/g, (word) => renumber.get(word) ?? word);
      const info = await t.dm.create(name, { table: Table.parse(text) });
      renumber.set(dev(before.get(name)?.dev ?? { major: 0, minor: 0 }), dev(info.dev));
    }
    expect(readAt((await t.dm.info(s.thins[1])).path, payload.length, 1 << 20).equals(payload)).to.equal(true);
    expect(await teardown(t.dm, s.tmeta)).to.deep.equal([...[...s.thins].sort(), s.pool, s.tmeta]);
    expect(await teardown(t.dm, s.tdata)).to.deep.equal([s.tdata]);
  });

  it('teardown refuses with EBUSY, removing nothing, when a device of the stack is open; a lower device another stack uses is kept', async () => {
    const s = await thinStack();
    const fd = openSync((await t.dm.info(s.thins[0])).path, 'r');
    let e: DmError;
    try {
      e = await rejection(teardown(t.dm, s.tmeta));
    } finally {
      closeSync(fd);
    }
    expect(e.code).to.equal('EBUSY');
    expect(e.device).to.equal(s.thins[0]);
    expect(e.message).to.contain(`still open: ${s.thins[0]} (open 1 time(s), 0 of them by devices above it); nothing was removed`);
    for (const name of [s.tmeta, s.tdata, s.pool, ...s.thins]) expect((await t.dm.info(name)).suspended, name).to.equal(false);

    // A linear over the metadata linear: tmeta stays, used from outside the teardown.
    const outside = devName('outside');
    const metaDev = (await t.dm.info(s.tmeta)).dev;
    await t.dm.create(outside, { table: new Table([{ start: 0, length: 8, target: targets.linear({ device: metaDev, offset: 8000 }) }]) });
    const removed = await teardown(t.dm, [...s.thins], { withDependencies: true });
    expect(removed).to.deep.equal([...[...s.thins].sort(), s.pool, s.tdata]);
    expect((await t.dm.listDevices()).map((d) => d.name).filter((n) => n.startsWith(PREFIX)).sort()).to.deep.equal([outside, s.tmeta].sort());
    expect((await deviceTree(t.dm)).get(s.tmeta)?.dependents).to.deep.equal([outside]);
  });

  it('bad arguments are refused before any ioctl; a name that is not a device fails with ENXIO and removes nothing', async () => {
    const s = await thinStack();
    const tries: [() => Promise<unknown>, RegExp][] = [
      [() => teardown(t.dm, s.tmeta, { below: true } as never), /unknown option "below"/],
      [() => teardown(t.dm, 42 as never), /Expected a device name or an array of names for of/],
      [() => teardown(t.dm, ['a/b']), /of\[0\]/],
      [() => teardown(t.dm, s.tmeta, { withDependencies: 'yes' } as never), /options.withDependencies/],
      [() => teardown({} as never, s.tmeta), /Expected a DeviceMapper \(DeviceMapper.open\(\)\) for dm but received object/],
      [() => deviceTree('dm' as never), /Expected a DeviceMapper \(DeviceMapper.open\(\)\) for dm but received "dm"/],
    ];
    for (const [call, message] of tries) {
      const err = await thrownBy(() => call());
      expect(err).to.satisfy((x: unknown) => x instanceof TypeError || x instanceof RangeError);
      expect(String(err)).to.match(message);
    }
    expect((await rejection(teardown(t.dm, [s.thins[0], devName('missing')]))).code).to.equal('ENXIO');
    expect((await t.dm.listDevices()).filter((d) => d.name.startsWith(PREFIX))).to.have.length(5);
  });

  it('examples/tree.js runs with the built package', () => {
    const env = { ...process.env, DEVMAPPER_EXAMPLE_PREFIX: `${PREFIX}example-` };
    const r = spawnSync(process.execPath, [join(root, 'examples', 'tree.js')], { cwd: root, env, encoding: 'utf8', timeout: 120000 });
    expect(r.status, `${r.stdout}${r.stderr}`).to.equal(0);
    const p = `${PREFIX}example-tree-`;
    expect(r.stdout).to.contain(`activation order: ${p}data, ${p}meta, ${p}pool, ${p}thin0, ${p}thin1`);
    expect(r.stdout).to.contain(`teardown order: ${p}thin0, ${p}thin1, ${p}pool, ${p}data, ${p}meta`);
    expect(r.stdout).to.contain(`refused: cannot tear down: still open: ${p}thin0`);
    expect(r.stdout).to.contain(`removed: ${p}thin0, ${p}thin1, ${p}pool, ${p}data, ${p}meta`);
  });
});
