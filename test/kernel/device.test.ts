import { expect } from 'chai';
import { open, readFile } from 'node:fs/promises';
import { Command, DeviceMapper, DmError, Table, blockDeviceSize, blockGeometry, targets, type DevId, type DevNumber } from '../../ts/index';
import { closeSync, openSync } from 'node:fs';
import { hookControl } from './hooks';
import { Fixture, devName, dmsetup, eventually } from './helpers';

/** dmsetup prints a space after the type of a row without params; compare without it. */
function lines(text: string): string {
  return text.trim().split('\n').map((l) => l.trimEnd()).join('\n');
}

describe('device lifecycle in the kernel', function () {
  let dm: DeviceMapper;
  let fx: Fixture;

  before(async () => {
    dm = await DeviceMapper.open();
  });
  after(async () => {
    await dm.close();
  });
  beforeEach(() => {
    fx = new Fixture(dm);
  });
  afterEach(async () => {
    await fx.cleanup();
  });

  it('reports the driver version dmsetup reports', () => {
    const line = dmsetup('version').split('\n').find((l) => l.startsWith('Driver version:')) ?? '';
    expect(line.replace(/\s+/g, ' ')).to.equal(`Driver version: ${dm.driverVersion.join('.')}`);
  });

  it('lists the target types dmsetup targets lists, and their versions', async () => {
    const ours = (await dm.listTargets()).map((t) => `${t.name} v${t.version.join('.')}`).sort();
    const theirs = dmsetup('targets').trim().split('\n').map((l) => l.trim().replace(/\s+/, ' ')).sort();
    expect(ours).to.deep.equal(theirs);
    expect(ours.length).to.be.greaterThan(3);
    const linear = (await dm.listTargets()).find((t) => t.name === 'linear');
    expect(await dm.targetVersion('linear')).to.deep.equal(linear?.version);
  });

  it('an unknown target type has no version (EINVAL)', async () => {
    const e: unknown = await dm.targetVersion('no-such-target').catch((x: unknown) => x);
    expect(e).to.be.instanceOf(DmError);
    expect(e).to.include({ code: 'EINVAL', command: 'DM_GET_TARGET_VERSION' });
  });

  it('creates a linear device whose table, status, info, deps and ls agree with dmsetup, and data goes through it', async () => {
    const loop = await fx.loop(4096);
    const name = devName('lin');
    const table = new Table([
      { start: 0, length: 2048, target: targets.linear({ device: loop.dev, offset: 1024 }) },
      { start: 2048, length: 512, target: targets.zero() },
      { start: 2560, length: 8, target: targets.error() },
    ]);
    const info = await dm.create(name, { table, uuid: `DMT-${name}` });
    expect(info).to.include({ name, uuid: `DMT-${name}`, suspended: false, activeTable: true, inactiveTable: false, targetCount: 3, openCount: 0 });
    expect(info.path).to.equal(`/dev/dm-${info.dev.minor}`);

    const back = await dm.table(name);
    expect(back?.toString()).to.equal(table.toString());
    expect(lines(dmsetup('table', name))).to.equal(table.toString());
    expect(back?.rows[0]?.target).to.deep.include({ type: 'linear', device: loop.devString, offset: 1024 });

    const status = await dm.status(name);
    expect(status.map((r) => `${r.start} ${r.length} ${r.type}${r.status.raw ? ' ' + r.status.raw : ''}`).join('\n')).to.equal(lines(dmsetup('status', name)));

    expect(await dm.deps({ uuid: `DMT-${name}` })).to.deep.equal([loop.dev]);
    expect(dmsetup('deps', name)).to.contain(`(${loop.dev.major}, ${loop.dev.minor})`);

    const infoText = dmsetup('info', '-c', '--noheadings', '--separator', ';', '-o', 'name,uuid,major,minor,open,segments,events,attr', name).trim();
    expect(infoText).to.equal(`${name};DMT-${name};${info.dev.major};${info.dev.minor};0;3;${info.eventNr};L--w`);

    const listed = (await dm.listDevices()).find((d) => d.name === name);
    expect(listed).to.deep.include({ name, uuid: `DMT-${name}`, dev: info.dev, eventNr: info.eventNr });
    expect(dmsetup('ls')).to.contain(`${name}\t(${info.dev.major}:${info.dev.minor})`);

    expect(await blockDeviceSize(info.path)).to.equal(2568 * 512);

    // Write through the device and read the loop's file at the linear offset.
    const pattern = Buffer.alloc(4096, 0);
    for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 7) & 0xff;
    const fh = await open(info.path, 'r+');
    try {
      await fh.write(pattern, 0, pattern.length, 512 * 10);
      await fh.sync();
      const zeroes = Buffer.alloc(512, 1);
      await fh.read(zeroes, 0, 512, 2048 * 512);
      expect(zeroes.every((b) => b === 0)).to.equal(true);
    } finally {
      await fh.close();
    }
    const backing = await readFile(loop.file);
    expect(backing.subarray((1024 + 10) * 512, (1024 + 10) * 512 + 4096).equals(pattern)).to.equal(true);
  });

  it('status({ ima: true }) returns each target\'s IMA measurement text', async () => {
    const loop = await fx.loop(64);
    const name = devName('ima');
    await dm.create(name, { table: new Table([{ start: 0, length: 64, target: targets.linear({ device: loop.dev, offset: 0 }) }]) });
    const rows = await dm.status(name, { ima: true });
    expect(rows).to.have.length(1);
    expect(rows[0]?.status.raw).to.match(new RegExp(`^target_name=linear,target_version=\\d+\\.\\d+\\.\\d+,device_name=${loop.devString},start=0;$`));
  });

  it('every DevId form reaches the same device', async () => {
    const name = devName('ids');
    const info = await dm.create(name, { table: new Table([{ start: 0, length: 8, target: targets.zero() }]), uuid: `DMT-${name}` });
    const ids: DevId[] = [name, { name }, { uuid: `DMT-${name}` }, { dev: info.dev }];
    for (const id of ids) expect((await dm.info(id)).dev).to.deep.equal(info.dev);
  });

  it('a duplicate create fails with EBUSY and leaves the first device intact', async () => {
    const name = devName('dup');
    const table = new Table([{ start: 0, length: 16, target: targets.zero() }]);
    await dm.create(name, { table });
    const e: unknown = await dm.create(name, { table: new Table([{ start: 0, length: 32, target: targets.zero() }]) }).catch((x: unknown) => x);
    expect(e).to.be.instanceOf(DmError);
    expect(e).to.include({ code: 'EBUSY', errno: 16, syscall: 'ioctl', command: 'DM_DEV_CREATE', device: name });
    expect((e as DmError).message).to.equal(`DM_DEV_CREATE ${name}: Device or resource busy`);
    expect((e as DmError).stack).to.contain('device.test');
    expect((await dm.table(name))?.toString()).to.equal(table.toString());
  });

  it("a failure's stack starts at the line that awaited the call (default), a bad argument's at the line that made it; with stackTraces 'call', even through a detached .catch()", async function awaitingCaller() {
    const name = devName('stacks');
    // A handler that settles another promise: no await links the failed call to this function.
    const detached = (client: DeviceMapper): Promise<unknown> => new Promise((resolve) => void client.info(name).catch(resolve));
    let awaited: unknown;
    try {
      await dm.info(name);
    } catch (x) {
      awaited = x;
    }
    expect(awaited).to.be.instanceOf(DmError).and.include({ code: 'ENXIO', device: name });
    // The library's own frames are left out: the first frame is the caller's.
    expect((awaited as Error).stack?.split('\n')[1]).to.match(/at async (Context\.)?awaitingCaller .*device\.test/);
    const early: unknown = await dm.create(name, { table: 'no table' as never }).catch((x: unknown) => x);
    expect(early).to.be.instanceOf(TypeError);
    expect((early as Error).stack?.split('\n')[1]).to.match(/at (Context\.)?awaitingCaller .*device\.test/);
    // Nothing was recorded when the call was made.
    const unrecorded = await detached(dm);
    expect(unrecorded).to.be.instanceOf(DmError).and.include({ code: 'ENXIO' });
    expect((unrecorded as Error).stack).not.to.contain('device.test');
    const recording = await DeviceMapper.open({ stackTraces: 'call' });
    try {
      const recorded = await detached(recording);
      expect(recorded).to.be.instanceOf(DmError).and.include({ code: 'ENXIO', device: name });
      expect((recorded as Error).stack?.split('\n')[1]).to.contain('device.test');
    } finally {
      await recording.close();
    }
  });

  it('a missing device gives ENXIO', async () => {
    const name = devName('missing');
    for (const call of [() => dm.info(name), () => dm.remove(name), () => dm.table(name), () => dm.resume(name)]) {
      const e: unknown = await call().catch((x: unknown) => x);
      expect(e).to.be.instanceOf(DmError);
      expect(e).to.include({ code: 'ENXIO', device: name });
      expect((e as Error).message).to.match(new RegExp(`^DM_\\w+ ${name}: No such device or address$`));
    }
  });

  it('create with an unknown target type fails with EINVAL at the load and removes the device again', async () => {
    const name = devName('badtype');
    const e: unknown = await dm.create(name, { table: new Table([{ start: 0, length: 8, type: 'no-such-tgt', params: '' }]) }).catch((x: unknown) => x);
    expect(e).to.be.instanceOf(DmError);
    expect(e).to.include({ code: 'EINVAL', command: 'DM_TABLE_LOAD', device: name });
    expect((await dm.listDevices()).some((d) => d.name === name)).to.equal(false);
  });

  it('create with a row past the end of its device fails at the load (EINVAL) and removes the device again', async () => {
    const loop = await fx.loop(64);
    const name = devName('pastend');
    const e: unknown = await dm.create(name, { table: new Table([{ start: 0, length: 1000, target: targets.linear({ device: loop.dev, offset: 0 }) }]) }).catch((x: unknown) => x);
    expect(e).to.be.instanceOf(DmError);
    // A new device checks its first table's limits at the load (dm_setup_md_queue).
    expect(e).to.include({ code: 'EINVAL', command: 'DM_TABLE_LOAD', device: name });
    expect((await dm.listDevices()).some((d) => d.name === name)).to.equal(false);
  });

  it('reload replaces the live table, and the new mapping is what the kernel reads back', async () => {
    const name = devName('reload');
    await dm.create(name, { table: new Table([{ start: 0, length: 16, target: targets.zero() }]) });
    const next = new Table([
      { start: 0, length: 16, target: targets.zero() },
      { start: 16, length: 16, target: targets.error() },
    ]);
    const info = await dm.reload(name, next, { noFlush: true });
    expect(info).to.include({ suspended: false, inactiveTable: false, targetCount: 2 });
    expect((await dm.table(name))?.toString()).to.equal(next.toString());
  });

  it('reload with an unknown target type fails with EINVAL and leaves the live table intact', async () => {
    const name = devName('reloadbad');
    const table = new Table([{ start: 0, length: 16, target: targets.zero() }]);
    await dm.create(name, { table });
    const e: unknown = await dm.reload(name, new Table([{ start: 0, length: 16, type: 'no-such-tgt', params: 'x' }])).catch((x: unknown) => x);
    expect(e).to.include({ code: 'EINVAL', command: 'DM_TABLE_LOAD', device: name });
    expect((e as Error).message).to.equal(`DM_TABLE_LOAD ${name}: Invalid argument`);
    const info = await dm.info(name);
    expect(info).to.include({ suspended: false, activeTable: true, inactiveTable: false });
    expect((await dm.table(name))?.toString()).to.equal(table.toString());
  });

  it('reload with a row past the end of its device fails with EINVAL and comes back resumed on its old table', async () => {
    const loop = await fx.loop(128);
    const name = devName('reloadpast');
    const table = new Table([{ start: 0, length: 128, target: targets.linear({ device: loop.dev, offset: 0 }) }]);
    await dm.create(name, { table });
    const e: unknown = await dm.reload(name, new Table([{ start: 0, length: 4096, target: targets.linear({ device: loop.dev, offset: 0 }) }])).catch((x: unknown) => x);
    expect(e).to.be.instanceOf(DmError);
    expect(e).to.include({ code: 'EINVAL', command: 'DM_DEV_SUSPEND', device: name });
    expect((e as DmError).rollbackError).to.equal(undefined);
    const info = await dm.info(name);
    expect(info).to.include({ suspended: false, activeTable: true, inactiveTable: false });
    expect((await dm.table(name))?.toString()).to.equal(table.toString());
    expect(dmsetup('info', '-c', '--noheadings', '-o', 'attr', name).trim()).to.equal('L--w');
  });

  it('load, table({inactive}), clear and resume work on the inactive table; suspend flags reach the kernel', async () => {
    const name = devName('inactive');
    const live = new Table([{ start: 0, length: 8, target: targets.zero() }]);
    await dm.create(name, { table: live });
    const next = new Table([{ start: 0, length: 24, target: targets.error() }]);
    let info = await dm.load(name, next);
    expect(info).to.include({ activeTable: true, inactiveTable: true });
    expect((await dm.table(name, { inactive: true }))?.toString()).to.equal(next.toString());
    expect(lines(dmsetup('table', '--inactive', name))).to.equal(next.toString());
    expect((await dm.status(name, { inactive: true }))[0]?.type).to.equal('error');
    info = await dm.clear(name);
    expect(info.inactiveTable).to.equal(false);
    expect(await dm.table(name, { inactive: true })).to.equal(undefined);

    await dm.load(name, next, { readOnly: true });
    info = await dm.suspend(name, { noFlush: true, noLockfs: true });
    expect(info.suspended).to.equal(true);
    expect(dmsetup('info', '-c', '--noheadings', '-o', 'attr', name).trim()).to.match(/^LIs/);
    info = await dm.resume(name);
    expect(info).to.include({ suspended: false, readOnly: true, inactiveTable: false, targetCount: 1 });
    expect((await dm.table(name))?.toString()).to.equal(next.toString());
  });

  it('create without a table, or with activate: false, leaves the device as asked', async () => {
    const bare = devName('bare');
    let info = await dm.create(bare);
    expect(info).to.include({ activeTable: false, inactiveTable: false });
    expect(await dm.deps(bare)).to.deep.equal([]);
    expect(await dm.status(bare)).to.deep.equal([]);
    const idle = devName('idle');
    info = await dm.create(idle, { table: new Table([{ start: 0, length: 8, target: targets.zero() }]), activate: false });
    expect(info).to.include({ activeTable: false, inactiveTable: true });
  });

  it('rename and setUuid change what the kernel reports; a taken name is EBUSY, a second uuid EINVAL', async () => {
    const a = devName('ren-a');
    const b = devName('ren-b');
    await dm.create(a);
    await dm.create(b);
    const renamed = devName('ren-c');
    let info = await dm.rename(a, renamed);
    expect(info.name).to.equal(renamed);
    expect(dmsetup('info', '-c', '--noheadings', '-o', 'name', renamed).trim()).to.equal(renamed);
    const busy: unknown = await dm.rename(renamed, b).catch((x: unknown) => x);
    expect(busy).to.include({ code: 'EBUSY', command: 'DM_DEV_RENAME' });
    info = await dm.setUuid(renamed, `DMT-${renamed}`);
    expect((await dm.info({ uuid: `DMT-${renamed}` })).name).to.equal(renamed);
    const again: unknown = await dm.setUuid(renamed, 'DMT-other').catch((x: unknown) => x);
    expect(again).to.include({ code: 'EINVAL', command: 'DM_DEV_RENAME' });
  });

  it('remove of an open device fails with EBUSY after its retries and leaves it intact', async () => {
    const name = devName('open');
    const info = await dm.create(name, { table: new Table([{ start: 0, length: 8, target: targets.zero() }]) });
    const fh = await open(info.path, 'r');
    try {
      const started = Date.now();
      const e: unknown = await dm.remove(name, { retries: 2 }).catch((x: unknown) => x);
      expect(e).to.include({ code: 'EBUSY', command: 'DM_DEV_REMOVE', device: name });
      expect(Date.now() - started).to.be.at.least(25); // two pauses: 10 ms and 20 ms
      expect((await dm.info(name)).openCount).to.equal(1);
    } finally {
      await fh.close();
    }
    await dm.remove(name);
    expect((await dm.listDevices()).some((d) => d.name === name)).to.equal(false);
  });

  it('remove with force: an open device gets an error table over its whole length (as dmsetup remove --force gives it), its I/O fails, the remove fails with EBUSY while it stays open and goes through once closed', async () => {
    const sectors = 8192;
    const zero = new Table([{ start: 0, length: sectors, target: targets.zero() }]);
    const [ours, theirs] = [devName('force'), devName('force-peer')];
    const info = await dm.create(ours, { table: zero });
    const peer = await dm.create(theirs, { table: zero });
    const [fh, ph] = [await open(info.path, 'r'), await open(peer.path, 'r')];
    try {
      const e = await dm.remove(ours, { force: true, retries: 1 }).catch((x: unknown) => x);
      expect(e).to.be.instanceOf(DmError).and.include({ code: 'EBUSY', command: 'DM_DEV_REMOVE', device: ours });
      expect((e as Error).message).to.contain('its table is now an error table');
      const now = await dm.info(ours);
      expect(now).to.include({ readOnly: false, suspended: false, openCount: 1, inactiveTable: false });
      expect(now.dev).to.deep.equal(info.dev);
      expect((await dm.table(ours))?.rows.map((r) => [r.start, r.length, r.type, r.params])).to.deep.equal([[0, sectors, 'error', '']]);
      // dmsetup's own force on the same kind of device leaves the same table and flags.
      expect(() => dmsetup('remove', '--force', theirs)).to.throw();
      expect(lines(dmsetup('table', ours))).to.equal(lines(dmsetup('table', theirs)));
      expect(dmsetup('info', '-c', '--noheadings', '-o', 'attr', ours)).to.equal(dmsetup('info', '-c', '--noheadings', '-o', 'attr', theirs));
      // What the opener reads now fails (a part of the device it never read: nothing cached).
      const read = await fh.read(Buffer.alloc(4096), 0, 4096, 2 * 1024 * 1024).catch((x: unknown) => x);
      expect(read).to.include({ code: 'EIO' });
    } finally {
      await fh.close();
      await ph.close();
    }
    await dm.remove(ours, { force: true });
    await dm.remove(theirs);
    expect((await dm.listDevices()).map((d) => d.name)).to.not.include.members([ours, theirs]);
  });

  it('remove with force acts only on the device it read: another made under the name before the swap is left as it is (ESTALE)', async () => {
    const name = devName('force-swap');
    const zero = new Table([{ start: 0, length: 2048, target: targets.zero() }]);
    const first = await dm.create(name, { table: zero });
    const fd = openSync(first.path, 'r');
    const held = { open: true };
    const other = DeviceMapper.openSync();
    let replaced: DevNumber | undefined;
    const unhook = hookControl(dm, {
      before: (request) => {
        // The reload's own read: the device goes, and another takes its name (and, the number
        // taken by a filler first, another number).
        if (request.cmd === Command.TABLE_STATUS && replaced === undefined) {
          closeSync(fd);
          held.open = false;
          other.remove(name);
          other.create(devName('force-fill'), { table: zero });
          replaced = other.create(name, { table: zero }).dev;
        }
      },
    });
    try {
      const e = await dm.remove(name, { force: true }).catch((x: unknown) => x);
      expect(e).to.be.instanceOf(DmError).and.include({ code: 'ESTALE', device: name });
      expect((e as Error).message).to.not.contain('error table');
    } finally {
      unhook();
      if (held.open) closeSync(fd);
      other.close();
    }
    // The device that took the name kept its table and is still there.
    const now = await dm.info(name);
    expect(now.dev).to.deep.equal(replaced);
    expect(now.dev).to.not.deep.equal(first.dev);
    expect((await dm.table(name))?.rows.map((r) => r.type)).to.deep.equal(['zero']);
  });

  it('remove with force of a device nobody holds removes it as it is; with deferred, an open one fails I/O at once and goes at its last close; force is checked before any ioctl', async () => {
    const name = devName('force-free');
    await dm.create(name, { table: new Table([{ start: 0, length: 8, target: targets.zero() }]) });
    await dm.remove(name, { force: true });
    expect((await dm.listDevices()).some((d) => d.name === name)).to.equal(false);

    const later = devName('force-deferred');
    const info = await dm.create(later, { table: new Table([{ start: 0, length: 2048, target: targets.zero() }]) });
    const fh = await open(info.path, 'r');
    let closed = false;
    try {
      await dm.remove(later, { force: true, deferred: true });
      const now = await dm.info(later);
      expect(now).to.include({ deferredRemove: true });
      expect((await dm.table(later))?.rows.map((r) => r.type)).to.deep.equal(['error']);
      await fh.close();
      closed = true;
      expect(await eventually(async () => !(await dm.listDevices()).some((d) => d.name === later))).to.equal(true);
    } finally {
      if (!closed) await fh.close();
    }
    const missing = devName('force-missing');
    expect(await dm.remove(missing, { force: true }).catch((x: unknown) => x)).to.include({ code: 'ENXIO' });
    let bad: unknown;
    try {
      await dm.remove(missing, { force: 1 } as never);
    } catch (x) {
      bad = x;
    }
    expect(bad).to.be.instanceOf(TypeError);
  });

  it('deferred remove of an open device marks it, and it goes when the last opener closes it', async () => {
    const name = devName('deferred');
    const info = await dm.create(name, { table: new Table([{ start: 0, length: 8, target: targets.zero() }]) });
    const fh = await open(info.path, 'r');
    let closed = false;
    try {
      await dm.remove(name, { deferred: true });
      expect((await dm.info(name)).deferredRemove).to.equal(true);
      expect(dmsetup('info', name)).to.contain('ACTIVE (DEFERRED REMOVE)');
      await fh.close();
      closed = true;
      const gone = await eventually(async () => !(await dm.listDevices()).some((d) => d.name === name));
      expect(gone).to.equal(true);
    } finally {
      if (!closed) await fh.close();
    }
  });

  it('setGeometry sets what HDIO_GETGEO reports; out-of-range geometry is refused before any ioctl', async () => {
    const name = devName('geo');
    const info = await dm.create(name, { table: new Table([{ start: 0, length: 20480, target: targets.zero() }]) });
    await dm.setGeometry(name, { cylinders: 10, heads: 64, sectors: 32, start: 0 });
    expect(await blockGeometry(info.path)).to.deep.equal({ cylinders: 10, heads: 64, sectors: 32, start: 0 });
    const before = dm.ioctlStats.commands;
    const e: unknown = await dm.setGeometry(name, { cylinders: 10, heads: 256, sectors: 32, start: 0 }).catch((x: unknown) => x);
    expect(e).to.be.instanceOf(RangeError);
    expect(dm.ioctlStats.commands).to.equal(before);
  });

  it('message: dm core @stats messages answer through DATA_OUT, as dmsetup message shows', async () => {
    const name = devName('msg');
    await dm.create(name, { table: new Table([{ start: 0, length: 64, target: targets.zero() }]) });
    expect(await dm.message(name, '@stats_create - /2')).to.equal('0');
    const ours = await dm.message(name, '@stats_list');
    expect(ours).to.be.a('string').and.contain('0: 0+64 32');
    expect(dmsetup('message', name, '0', '@stats_list')).to.equal(ours);
    expect(await dm.message(name, '@stats_delete 0')).to.equal(undefined);
    const e: unknown = await dm.message(name, 'no-such-message').catch((x: unknown) => x);
    expect(e).to.include({ command: 'DM_TARGET_MSG', device: name });
  });

  it('removeAll removes every device that is not open', async function () {
    if (process.env.DEVMAPPER_TEST_HOST === '1') this.skip(); // never on a host whose devices are not ours
    await dm.create(devName('all-a'));
    await dm.create(devName('all-b'), { table: new Table([{ start: 0, length: 8, target: targets.zero() }]) });
    await dm.removeAll();
    expect(await dm.listDevices()).to.deep.equal([]);
  });
});
