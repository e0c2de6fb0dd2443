import { expect } from 'chai';
import { Command, DeviceMapper, DmClosedError, DmError, Flag, LoopDevice, Table, decodeDev, targets, type DevId, type DevNumber, type DeviceInfo } from '../../ts/index';
import { hookControl } from './hooks';
import { Fixture, devName, dmsetup } from './helpers';

const zero = (sectors: number): Table => new Table([{ start: 0, length: sectors, target: targets.zero() }]);

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => expect.fail('expected a rejection'),
    (e: unknown) => e,
  );
}

describe('transactions in the kernel', function () {
  let dm: DeviceMapper;
  let other: DeviceMapper;
  let fx: Fixture;
  let unhook: (() => void) | undefined;

  beforeEach(async () => {
    dm = await DeviceMapper.open();
    other = await DeviceMapper.open();
    fx = new Fixture(dm);
  });
  afterEach(async () => {
    unhook?.();
    unhook = undefined;
    await fx.cleanup();
    await other.close();
    if (!dm.closed) await dm.close();
  });

  describe('a call acts only on the device it means', () => {
    it('create: another actor removing x and creating y (which gets x\'s number) between the steps leaves y untouched', async () => {
      const x = devName('idx');
      const y = devName('idy');
      let reused: DeviceInfo | undefined;
      let xDev: DevNumber | undefined;
      unhook = hookControl(dm, {
        after: async (request, result) => {
          if (request.cmd === Command.DEV_CREATE && request.name === x) {
            xDev = decodeDev(Number(result.dev));
            await other.remove(x);
            reused = await other.create(y);
          }
        },
      });
      const e = await rejection(dm.create(x, { table: zero(8) }));
      unhook();
      unhook = undefined;
      // The actor's device really took x's number: the test exercised the reuse.
      expect(reused?.dev).to.deep.equal(xDev);
      expect(e).to.be.instanceOf(DmError);
      expect(e).to.include({ code: 'ENXIO', command: 'DM_TABLE_LOAD', device: x });
      expect((e as DmError).rollbackError).to.equal(undefined);
      const info = await dm.info(y);
      expect(info).to.include({ name: y, activeTable: false, inactiveTable: false, suspended: false });
    });

    it('create by uuid: a device that takes the uuid between the steps is reported (ESTALE) and not rolled back', async () => {
      const x = devName('uidx');
      const intruder = devName('uidy');
      const uuid = `DMT-${x}`;
      unhook = hookControl(dm, {
        after: async (request) => {
          if (request.cmd === Command.DEV_CREATE && request.name === x) {
            await other.remove(x);
            await other.create(intruder, { uuid });
          }
        },
      });
      const e = await rejection(dm.create(x, { table: zero(8), uuid }));
      unhook();
      unhook = undefined;
      expect(e).to.be.instanceOf(DmError);
      expect(e).to.include({ code: 'ESTALE', command: 'DM_TABLE_LOAD', device: x });
      expect((e as Error).message).to.contain('changed identity');
      expect((e as Error).message).to.contain('this DM_TABLE_LOAD reached that device');
      // Not ours: still there, never resumed, never removed. The load that answered for it
      // reached it (its inactive table, as the message says), and nothing after it did.
      const info = await dm.info({ uuid });
      expect(info).to.include({ name: intruder, activeTable: false, inactiveTable: true, suspended: false });
    });

    it('reload: another actor replacing the device between the steps keeps its own pending table', async () => {
      const x = devName('rlx');
      const y = devName('rly');
      await dm.create(x, { table: zero(8) });
      const pending = new Table([{ start: 0, length: 16, target: targets.error() }]);
      let done = false;
      unhook = hookControl(dm, {
        after: async (request) => {
          if (!done && request.cmd === Command.TABLE_STATUS && request.name === x) {
            done = true;
            await other.remove(x);
            await other.create(y, { table: zero(24) });
            await other.load(y, pending);
          }
        },
      });
      const e = await rejection(dm.reload(x, zero(32)));
      unhook();
      unhook = undefined;
      expect(e).to.include({ code: 'ENXIO', device: x });
      const info = await dm.info(y);
      expect(info).to.include({ activeTable: true, inactiveTable: true, suspended: false });
      expect((await dm.table(y))?.toString()).to.equal(zero(24).toString());
      expect((await dm.table(y, { inactive: true }))?.toString()).to.equal(pending.toString());
    });
  });

  it('concurrent reloads of one device are serialized: each result describes its own table', async () => {
    const loop = await fx.loop(64);
    const name = devName('pairs');
    await dm.create(name, { table: zero(8) });
    const results: string[] = [];
    for (let round = 0; round < 4; round++) {
      const pairs = Array.from({ length: 25 }, (_, i) => {
        const length = 8 + ((round * 25 + i) % 50);
        // Past the end of its 64-sector device: loads, then cannot go live (resume fails).
        const bad = dm.reload(name, new Table([{ start: 0, length: 4096, target: targets.linear({ device: loop.dev, offset: 0 }) }])).then(
          () => 'bad resolved',
          (e: unknown) => (e instanceof DmError && e.code === 'EINVAL' && e.rollbackError === undefined ? 'bad rejected' : `bad: ${String(e)}`),
        );
        const good = dm.reload(name, zero(length)).then(
          (info) => (info.suspended || info.inactiveTable ? 'good left a mess' : 'good resolved'),
          (e: unknown) => `good: ${String(e)}`,
        );
        return Promise.all([bad, good]);
      });
      for (const [b, g] of await Promise.all(pairs)) results.push(b, g);
    }
    expect(results.filter((r) => r !== 'bad rejected' && r !== 'good resolved')).to.deep.equal([]);
    const info = await dm.info(name);
    expect(info).to.include({ suspended: false, inactiveTable: false });
    expect((await dm.table(name))?.rows[0]?.type).to.equal('zero');
  });

  it('a failed reload of a device the caller had suspended leaves it suspended, on its old table', async () => {
    const loop = await fx.loop(64);
    const name = devName('keepsusp');
    const table = new Table([{ start: 0, length: 64, target: targets.linear({ device: loop.dev, offset: 0 }) }]);
    await dm.create(name, { table });
    await dm.suspend(name);
    const e = await rejection(dm.reload(name, new Table([{ start: 0, length: 4096, target: targets.linear({ device: loop.dev, offset: 0 }) }])));
    expect(e).to.include({ code: 'EINVAL', command: 'DM_DEV_SUSPEND' });
    expect((e as DmError).rollbackError).to.equal(undefined);
    expect(await dm.info(name)).to.include({ suspended: true, inactiveTable: false, activeTable: true });
    expect((await dm.table(name))?.toString()).to.equal(table.toString());
    await dm.resume(name);
  });

  it('a rollback step the kernel fails reaches the caller as rollbackError, beside the first error', async () => {
    const loop = await fx.loop(64);
    const name = devName('rbfail');
    const table = new Table([{ start: 0, length: 64, target: targets.linear({ device: loop.dev, offset: 0 }) }]);
    await dm.create(name, { table });
    // The reload's resume fails for real (a row past the end of its device); the rollback's
    // resume after it is failed by injection, as a kernel refusing it would.
    let resumes = 0;
    unhook = hookControl(dm, {
      before: (request) => {
        if (request.cmd !== Command.DEV_SUSPEND || (request.flags & Flag.SUSPEND) !== 0 || request.name !== name) return;
        resumes++;
        if (resumes === 2) throw new DmError({ errno: 5, syscall: 'ioctl', command: 'DM_DEV_SUSPEND', device: name, message: 'injected: resume refused' });
      },
    });
    const e = await rejection(dm.reload(name, new Table([{ start: 0, length: 4096, target: targets.linear({ device: loop.dev, offset: 0 }) }])));
    unhook();
    unhook = undefined;
    expect(e).to.include({ code: 'EINVAL', command: 'DM_DEV_SUSPEND' });
    expect((e as DmError).rollbackError).to.be.instanceOf(DmError).and.include({ code: 'EIO', command: 'DM_DEV_SUSPEND' });
    // What the failed rollback left: suspended on the old table, which a resume brings back.
    expect(await dm.info(name)).to.include({ suspended: true, activeTable: true });
    await dm.resume(name);
    expect((await dm.table(name))?.toString()).to.equal(table.toString());
  });

  it('close() in the middle of a reload\'s rollback lets the rollback finish', async () => {
    fx = new Fixture(other); // dm is closed by the end: the fixture cleans up through the other
    const loop = await fx.loop(64);
    const name = devName('closerb');
    const table = new Table([{ start: 0, length: 64, target: targets.linear({ device: loop.dev, offset: 0 }) }]);
    await dm.create(name, { table });
    let resumes = 0;
    let closing: Promise<void> | undefined;
    unhook = hookControl(dm, {
      before: (request) => {
        if (request.cmd !== Command.DEV_SUSPEND || (request.flags & Flag.SUSPEND) !== 0 || request.name !== name) return;
        if (++resumes === 2) closing = dm.close(); // the rollback's resume is about to go
      },
    });
    const e = await rejection(dm.reload(name, new Table([{ start: 0, length: 4096, target: targets.linear({ device: loop.dev, offset: 0 }) }])));
    unhook();
    unhook = undefined;
    expect(closing).to.not.equal(undefined);
    await closing;
    expect(e).to.include({ code: 'EINVAL', command: 'DM_DEV_SUSPEND' });
    expect((e as DmError).rollbackError).to.equal(undefined);
    expect(await other.info(name)).to.include({ suspended: false, activeTable: true, inactiveTable: false });
    expect((await other.table(name))?.toString()).to.equal(table.toString());
    expect(await rejection(dm.info(name))).to.be.instanceOf(DmClosedError);
  });

  it('a failed reload puts the caller\'s own pending inactive table back', async () => {
    const loop = await fx.loop(64);
    const name = devName('pending');
    await dm.create(name, { table: new Table([{ start: 0, length: 64, target: targets.linear({ device: loop.dev, offset: 0 }) }]) });
    const pending = new Table([{ start: 0, length: 16, target: targets.error() }]);
    await dm.load(name, pending, { readOnly: true });
    await rejection(dm.reload(name, new Table([{ start: 0, length: 4096, target: targets.linear({ device: loop.dev, offset: 0 }) }])));
    expect(await dm.info(name)).to.include({ suspended: false, inactiveTable: true });
    expect((await dm.table(name, { inactive: true }))?.toString()).to.equal(pending.toString());
    expect((await dm.info(name, { inactive: true })).readOnly).to.equal(true);
  });

  it('reload whose resume fails after the swap (thin-pool refusing a shorter data device) puts the old table back live', async () => {
    const meta = await fx.loop(8192);
    const data = await fx.loop(131072);
    const name = devName('pool');
    const pool = (length: number): Table => new Table([{ start: 0, length, type: 'thin-pool', params: `${meta.devString} ${data.devString} 128 0` }]);
    await dm.create(name, { table: pool(131072) });
    const before = (await dm.table(name))?.toString();
    const e = await rejection(dm.reload(name, pool(65536)));
    expect(e).to.include({ code: 'EINVAL', command: 'DM_DEV_SUSPEND', device: name });
    expect((e as DmError).rollbackError).to.equal(undefined);
    expect(await dm.info(name)).to.include({ suspended: false, activeTable: true, inactiveTable: false });
    expect((await dm.table(name))?.toString()).to.equal(before);
    expect(dmsetup('status', name)).to.match(/thin-pool 0 /);
  });

  it('every DevId form works for every command, rename and setUuid included', async () => {
    const forms: ((info: DeviceInfo) => DevId)[] = [(i) => i.name, (i) => ({ name: i.name }), (i) => ({ uuid: i.uuid }), (i) => ({ dev: i.dev })];
    for (const [n, form] of forms.entries()) {
      const name = devName(`form${n}`);
      const created = await dm.create(name, { table: zero(64), uuid: `DMT-${name}` });
      let id = form(created);
      expect((await dm.info(id)).dev).to.deep.equal(created.dev);
      expect((await dm.load(id, zero(32))).inactiveTable).to.equal(true);
      expect((await dm.table(id, { inactive: true }))?.size).to.equal(32);
      expect((await dm.clear(id)).inactiveTable).to.equal(false);
      expect((await dm.suspend(id)).suspended).to.equal(true);
      expect((await dm.resume(id)).suspended).to.equal(false);
      expect((await dm.reload(id, zero(48))).targetCount).to.equal(1);
      expect((await dm.table(id))?.size).to.equal(48);
      expect((await dm.status(id))[0]?.type).to.equal('zero');
      expect(await dm.deps(id)).to.deep.equal([]);
      expect(await dm.message(id, '@stats_create - /1')).to.equal('0');
      expect((await dm.setGeometry(id, { cylinders: 1, heads: 1, sectors: 1, start: 0 })).dev).to.deep.equal(created.dev);
      expect((await dm.waitEvent(id, created.eventNr + 1000)).dev).to.deep.equal(created.dev);
      const renamed = devName(`renamed${n}`);
      const afterRename = await dm.rename(id, renamed);
      expect(afterRename).to.include({ name: renamed });
      expect(afterRename.dev).to.deep.equal(created.dev);
      expect(dmsetup('info', '-c', '--noheadings', '-o', 'name', renamed).trim()).to.equal(renamed);
      if (typeof id === 'string' || 'name' in id) id = typeof id === 'string' ? renamed : { name: renamed };
      await dm.remove(id);
      expect((await dm.listDevices()).some((d) => d.dev.minor === created.dev.minor && d.dev.major === created.dev.major)).to.equal(false);
    }
    // setUuid names the device by name, { name } or { dev } (a device with a uuid cannot get another).
    for (const [n, form] of [(i: DeviceInfo): DevId => i.name, (i: DeviceInfo): DevId => ({ name: i.name }), (i: DeviceInfo): DevId => ({ dev: i.dev })].entries()) {
      const name = devName(`setuuid${n}`);
      const created = await dm.create(name);
      const info = await dm.setUuid(form(created), `DMT-${name}`);
      expect(info).to.include({ name, uuid: `DMT-${name}` });
      expect(dmsetup('info', '-c', '--noheadings', '-o', 'uuid', name).trim()).to.equal(`DMT-${name}`);
    }
  });

  it('close() between a reload\'s suspend and its resume lets the reload finish, then refuses new calls', async () => {
    const name = devName('closemid');
    await dm.create(name, { table: zero(8) });
    let closing: Promise<void> | undefined;
    unhook = hookControl(dm, {
      after: (request) => {
        if (closing === undefined && request.cmd === Command.DEV_SUSPEND && (request.flags & Flag.SUSPEND) !== 0 && request.name === name) closing = dm.close();
      },
    });
    const info = await dm.reload(name, zero(16));
    unhook();
    unhook = undefined;
    expect(closing).to.not.equal(undefined);
    await closing;
    expect(info).to.include({ suspended: false, inactiveTable: false });
    const now = await other.info(name);
    expect(now).to.include({ suspended: false, inactiveTable: false, activeTable: true });
    expect((await other.table(name))?.size).to.equal(16);
    const e = await rejection(dm.info(name));
    expect(e).to.be.instanceOf(DmClosedError);
    expect(e).to.include({ code: 'ERR_DM_CLOSED' });
    fx = new Fixture(other);
  });

  it('close() right after create() lets the create finish: the device has its table', async () => {
    const name = devName('closecreate');
    const creating = dm.create(name, { table: zero(8) });
    const closing = dm.close();
    const info = await creating;
    await closing;
    expect(info).to.include({ activeTable: true, suspended: false });
    expect((await other.table(name))?.size).to.equal(8);
    fx = new Fixture(other);
  });

  it('unknown option names are refused before any ioctl', async () => {
    const name = devName('opts');
    await dm.create(name, { table: zero(8) });
    const before = dm.ioctlStats.commands;
    const bogus = { prefx: 'x' } as never;
    const calls: (() => Promise<unknown>)[] = [
      () => dm.removeAll(bogus),
      () => dm.create(devName('o'), bogus),
      () => dm.info(name, bogus),
      () => dm.load(name, zero(8), bogus),
      () => dm.suspend(name, bogus),
      () => dm.reload(name, zero(8), bogus),
      () => dm.table(name, bogus),
      () => dm.status(name, bogus),
      () => dm.deps(name, bogus),
      () => dm.message(name, '@stats_list', bogus),
      () => dm.remove(name, bogus),
      () => dm.recover(bogus),
      () => dm.waitEvent(name, 0, bogus),
      () => dm.update(name, (tb) => tb ?? zero(8), bogus),
      () => dm.watch(bogus).next(),
      () => DeviceMapper.open(bogus),
      () => LoopDevice.attach('/dev/null', bogus),
    ];
    for (const c of calls) {
      const e = await rejection(c());
      expect(e).to.be.instanceOf(TypeError);
      expect((e as Error).message).to.match(/unknown option "prefx"$/);
    }
    // setGeometry's geometry is its options: an unknown field is refused the same way.
    const g = await rejection(dm.setGeometry(name, { cylinders: 1, heads: 1, sectors: 1, start: 0, prefx: 'x' } as never));
    expect(g).to.be.instanceOf(TypeError);
    expect((g as Error).message).to.match(/unknown option "prefx"$/);
    expect(dm.ioctlStats.commands).to.equal(before);
    expect((await dm.info(name)).activeTable).to.equal(true);
  });

  it('removeAll({ prefix }) removes only the devices whose name starts with it', async () => {
    const mine = devName('mine');
    const a = await dm.create(`${mine}-a`, { table: zero(8) });
    await dm.create(`${mine}-b`, { table: new Table([{ start: 0, length: 8, target: targets.linear({ device: a.dev, offset: 0 }) }]) });
    const theirs = devName('theirs');
    await dm.create(theirs);
    const removed = await dm.removeAll({ prefix: mine });
    expect(removed.sort()).to.deep.equal([`${mine}-a`, `${mine}-b`]);
    const names = (await dm.listDevices()).map((d) => d.name);
    expect(names).to.include(theirs);
    expect(names.filter((n) => n.startsWith(mine))).to.deep.equal([]);
  });

  it('a 64-bit length that a JavaScript number cannot hold is refused (EOVERFLOW), never rounded', async () => {
    const name = devName('huge');
    dmsetup('create', name, '--table', '0 9007199254740995 zero');
    for (const call of [() => dm.table(name), () => dm.status(name)]) {
      const e = await rejection(call());
      expect(e).to.be.instanceOf(DmError);
      expect(e).to.include({ code: 'EOVERFLOW' });
      expect((e as Error).message).to.contain('9007199254740995');
    }
    expect((await dm.info(name)).activeTable).to.equal(true);
  });
});
