// The synchronous client: the same commands, checks, errors and rollback as the asynchronous
// one (the same code: ts/commands.ts and ts/steps.ts), run on the calling thread.
import { expect } from 'chai';
import { closeSync, openSync } from 'node:fs';
import type { NativeCompactResult, NativeResult } from '../../binding';
import { fromCompact, Lender, RowReader, SYNC_HEADER_WORDS } from '../../ts/answer';
import { binding } from '../../ts/binding';
import { Command, DeviceMapper, DeviceMapperSync, DmClosedError, DmError, Flag, Table, targets, type DevId, type DeviceInfo } from '../../ts/index';
import { hookControl } from './hooks';
import { PREFIX, TestContext, devName, dmsetup, readAnswer, requestsOfEveryPayload } from './helpers';

const zero = (sectors: number): Table => new Table([{ start: 0, length: sectors, target: targets.zero() }]);

/** The error `f` throws (fails when it returns). */
function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw, it returned');
}

describe('the synchronous client (DeviceMapper.openSync)', function () {
  const t = TestContext.perTest();
  let sdm: DeviceMapperSync;
  beforeEach(() => {
    sdm = DeviceMapper.openSync();
  });
  afterEach(() => {
    sdm.close();
  });

  it('the compact answers of the synchronous client carry what the object form does, payloads included', () => {
    const name = devName('compact');
    sdm.create(name, { table: new Table([{ start: 0, length: 8, target: targets.zero() }, { start: 8, length: 8, target: targets.error() }]) });
    const control = new (binding().Control)('/dev/mapper/control');
    try {
      const header = new Float64Array(SYNC_HEADER_WORDS);
      const requests = requestsOfEveryPayload(name);
      // Rows and devices read at once: an answer's buffers are lent only until the next call.
      const read = (r: NativeResult): Record<string, unknown> => readAnswer(r, name);
      for (const request of requests) {
        const object = read(control.ioctlSync(request));
        const compact = read(fromCompact(header, control.ioctlSync(request, header)));
        for (const [key, value] of Object.entries(object)) expect(compact[key], `${request.cmd} ${key}`).to.deep.equal(value);
        for (const [key, value] of Object.entries(compact)) if (value !== undefined) expect(object[key], `${request.cmd} ${key}`).to.deep.equal(value);
      }
      const lender = new Lender();
      const lent = fromCompact(header, control.ioctlSync({ cmd: Command.TABLE_STATUS, flags: Flag.STATUS_TABLE, name }, header), lender);
      const reader = new RowReader(lent, name);
      expect(reader.all()).to.deep.equal([
        { start: 0, length: 8, type: 'zero', params: '' },
        { start: 8, length: 8, type: 'error', params: '' },
      ]);
      // The rows were lent where they lay, through ArrayBuffers made once: the next answer
      // comes in the same ones (no allocation outside V8's heap per call), and a reader of the
      // answer before fails (never reads the next answer's bytes).
      lender.calls++;
      const next = fromCompact(header, control.ioctlSync({ cmd: Command.TABLE_STATUS, flags: Flag.STATUS_TABLE, name }, header), lender);
      expect(next.targets?.bytes).to.equal(lent.targets?.bytes);
      expect(next.targets?.index.buffer).to.equal(lent.targets?.index.buffer);
      expect(() => reader.params(0)).to.throw(/read after the next call/);
      expect(() => reader.start(0)).to.throw(/read after the next call/);
      expect(new RowReader(next, name).all()).to.have.length(2);
      // An answer too large for the buffer moves it: what held the old memory reads nothing.
      const big = devName('compact-big');
      const rows = Array.from({ length: 1200 }, (_, i) => ({ start: i * 8, length: 8, target: i % 2 === 0 ? targets.zero() : targets.error() }));
      sdm.create(big, { table: new Table(rows) });
      const grown = fromCompact(header, control.ioctlSync({ cmd: Command.TABLE_STATUS, flags: Flag.STATUS_TABLE, name: big }, header));
      expect(grown.bufferSize).to.be.above(16384);
      expect(new RowReader(grown, big).all()).to.have.length(1200);
      expect(next.targets?.bytes.byteLength).to.equal(0);
      expect(next.targets?.index.length).to.equal(0);
      expect(grown.targets?.bytes).to.not.equal(next.targets?.bytes);
    } finally {
      control.closeSync();
    }
  });

  it('an answer shaped as the one before comes in the same objects (its rows in the same lent buffers); one that differs, in new ones', () => {
    const name = devName('memo');
    const other = devName('memo-other');
    sdm.create(name, { table: zero(8) });
    sdm.create(other, { table: zero(8) });
    const control = new (binding().Control)('/dev/mapper/control');
    const header = new Float64Array(SYNC_HEADER_WORDS);
    const info = (n: string): NativeCompactResult => control.callSync(Command.DEV_STATUS, 0, 0, 0, n, '', undefined, header);
    const rows = (n: string, flags = Flag.STATUS_TABLE): NativeCompactResult => control.callSync(Command.TABLE_STATUS, flags, 0, 0, n, '', undefined, header);
    try {
      const first = info(name);
      expect(info(name)).to.equal(first);
      expect(first[0]).to.equal(name);
      // Another device's answer: new strings, and the next answer for the first is new again.
      const second = info(other);
      expect(second).to.not.equal(first);
      expect(second[0]).to.equal(other);
      const third = info(name);
      expect(third).to.not.equal(second);
      expect(third[0]).to.equal(name);
      // Rows: the same array and rows object while the answer reads the same.
      const table = rows(name);
      expect(rows(name)).to.equal(table);
      expect(table[2]?.types).to.deep.equal(['zero']);
      // Rows with other types (the table reloaded): a new rows object, with the new types.
      sdm.reload(name, new Table([{ start: 0, length: 4, target: targets.error() }, { start: 4, length: 4, target: targets.zero() }]));
      const reloaded = rows(name);
      expect(reloaded).to.not.equal(table);
      expect(reloaded[2]).to.not.equal(table[2]);
      expect(reloaded[2]?.types).to.deep.equal(['error', 'zero']);
      expect(reloaded[2]?.count).to.equal(2);
      expect(new RowReader(fromCompact(header, reloaded), name).all().map((r) => r.type)).to.deep.equal(['error', 'zero']);
      // Rows of the same count and types (the status of that table): the same objects, which
      // show what lies in the lent buffers, the new answer.
      const status = rows(name, 0);
      expect(status).to.equal(reloaded);
      expect(new RowReader(fromCompact(header, status), name).all()).to.deep.equal([
        { start: 0, length: 4, type: 'error', params: '' },
        { start: 4, length: 4, type: 'zero', params: '' },
      ]);
      // A message's output: the same array for the same output; never one sent with
      // SECURE_DATA, whose output the addon does not keep.
      const stats = (flags = 0): NativeCompactResult => control.callSync(Command.TARGET_MSG, flags, 0, 0, name, '', { cmd: Command.TARGET_MSG, flags, message: '@stats_list', sector: 0 }, header);
      const said = stats();
      expect(said[6]).to.be.a('string');
      expect(stats()).to.equal(said);
      const secret = stats(Flag.SECURE_DATA);
      expect(secret).to.not.equal(said);
      expect(stats(Flag.SECURE_DATA)).to.not.equal(secret);
      expect(stats(Flag.SECURE_DATA)[6]).to.equal(said[6]);
      expect(stats()).to.not.equal(said);
    } finally {
      control.closeSync();
    }
  });

  it('a loop of calls with rows holds no memory outside V8\'s heap per call (the rows are lent through the same buffers)', () => {
    const name = devName('loop');
    sdm.create(name, { table: new Table([{ start: 0, length: 8, target: targets.zero() }, { start: 8, length: 8, target: targets.error() }]) });
    // Memory outside V8's heap: what native allocations hold (a finalizer per answer would
    // hold its allocations until the event loop turns, which a synchronous loop never lets it).
    const native = (): number => {
      const m = process.memoryUsage();
      return m.rss - m.heapTotal;
    };
    // Both calls warmed up first: the JIT's memory while it compiles their paths (more of it
    // under valgrind, which compiles later) is not theirs.
    for (let i = 0; i < 2000; i++) {
      sdm.status(name);
      sdm.table(name);
    }
    const before = native();
    for (let i = 0; i < 10000; i++) {
      sdm.status(name);
      sdm.table(name);
    }
    // Each answer held some 600 bytes until the loop returned, 12 MB over these calls.
    expect(native() - before).to.be.below(3 * 1024 * 1024);
  });

  it('opens with the kernel\'s interface version and answers like the asynchronous client', async () => {
    expect(sdm.driverVersion).to.deep.equal(t.dm.driverVersion);
    expect(sdm.listTargets().map((x) => x.name).sort()).to.deep.equal((await t.dm.listTargets()).map((x) => x.name).sort());
    expect(sdm.targetVersion('zero')).to.deep.equal(await t.dm.targetVersion('zero'));
    expect(sdm.closed).to.equal(false);
  });

  it('create with a table takes three ioctls in either client (create, load, resume: the resume answers with the info), and its info is what the kernel then reports', async () => {
    for (const client of [sdm, t.dm]) {
      const name = devName('three');
      const cmds: number[] = [];
      const unhook = hookControl(client, { after: (request) => void cmds.push(request.cmd) });
      const before = client.ioctlStats;
      let made: DeviceInfo;
      try {
        made = await client.create(name, { table: zero(8) });
      } finally {
        unhook();
      }
      const after = client.ioctlStats;
      expect(cmds).to.deep.equal([Command.DEV_CREATE, Command.TABLE_LOAD, Command.DEV_SUSPEND]);
      expect({ commands: after.commands - before.commands, ioctls: after.ioctls - before.ioctls }).to.deep.equal({ commands: 3, ioctls: 3 });
      const info = sdm.info(name);
      expect(made).to.deep.include({ name, dev: info.dev, uuid: info.uuid, suspended: false, activeTable: true });
      sdm.remove(name);
    }
  });

  it('every command works with every DevId form, checked against the kernel and dmsetup', () => {
    const forms: ((info: DeviceInfo) => DevId)[] = [(i) => i.name, (i) => ({ name: i.name }), (i) => ({ uuid: i.uuid }), (i) => ({ dev: i.dev })];
    for (const [n, form] of forms.entries()) {
      const name = devName(`sync${n}`);
      const created = sdm.create(name, { table: zero(64), uuid: `DMT-${name}` });
      expect(created).to.include({ name, uuid: `DMT-${name}`, suspended: false, activeTable: true });
      expect(dmsetup('table', name).trimEnd()).to.equal('0 64 zero');
      let id = form(created);
      expect(sdm.info(id).dev).to.deep.equal(created.dev);
      expect(sdm.load(id, zero(32)).inactiveTable).to.equal(true);
      expect(sdm.table(id, { inactive: true })?.size).to.equal(32);
      expect(sdm.clear(id).inactiveTable).to.equal(false);
      expect(sdm.suspend(id).suspended).to.equal(true);
      expect(dmsetup('info', '-c', '--noheadings', '-o', 'attr', name).trim()).to.match(/^..s/); // L-sw: live, no inactive table, suspended
      expect(sdm.resume(id).suspended).to.equal(false);
      expect(sdm.reload(id, zero(48)).targetCount).to.equal(1);
      expect(sdm.table(id)?.toString()).to.equal('0 48 zero');
      expect(sdm.update(id, (tb) => (tb ?? zero(8)).grow(16)).targetCount).to.equal(1);
      expect(dmsetup('table', name).trimEnd()).to.equal('0 64 zero');
      expect(sdm.status(id)[0]?.status).to.deep.include({ type: 'zero', known: true });
      expect(sdm.deps(id)).to.deep.equal([]);
      expect(sdm.message(id, '@stats_create - /1')).to.equal('0');
      expect(sdm.message(id, '@stats_list')).to.match(/^0: 0\+64 64 /);
      expect(sdm.setGeometry(id, { cylinders: 1, heads: 1, sectors: 1, start: 0 }).dev).to.deep.equal(created.dev);
      const renamed = devName(`sync-renamed${n}`);
      expect(sdm.rename(id, renamed)).to.include({ name: renamed });
      expect(dmsetup('info', '-c', '--noheadings', '-o', 'name', renamed).trim()).to.equal(renamed);
      if (typeof id === 'string' || 'name' in id) id = typeof id === 'string' ? renamed : { name: renamed };
      expect(sdm.listDevices().map((d) => d.name)).to.include(renamed);
      sdm.remove(id);
      expect(sdm.listDevices().some((d) => d.dev.major === created.dev.major && d.dev.minor === created.dev.minor)).to.equal(false);
    }
    const bare = devName('sync-uuid');
    sdm.create(bare);
    expect(sdm.setUuid(bare, `DMT-${bare}`)).to.include({ uuid: `DMT-${bare}` });
    expect(dmsetup('info', '-c', '--noheadings', '-o', 'uuid', bare).trim()).to.equal(`DMT-${bare}`);
    const mine = devName('sync-all');
    sdm.create(`${mine}-a`, { table: zero(8) });
    sdm.create(`${mine}-b`, { table: zero(8) });
    expect(sdm.removeAll({ prefix: mine }).sort()).to.deep.equal([`${mine}-a`, `${mine}-b`]);
  });

  it('a failed create removes the device it made; a failed reload puts the device back as it was', async () => {
    const name = devName('sync-rb');
    const e = thrown(() => sdm.create(name, { table: new Table([{ start: 0, length: 8, type: 'no-such-target', params: '' }]) }));
    expect(e).to.be.instanceOf(DmError).and.include({ code: 'EINVAL', command: 'DM_TABLE_LOAD' });
    expect(sdm.listDevices().map((d) => d.name)).to.not.include(name);
    const loop = await t.fx.loop(64);
    const table = new Table([{ start: 0, length: 64, target: targets.linear({ device: loop.dev, offset: 0 }) }]);
    sdm.create(name, { table });
    const r = thrown(() => sdm.reload(name, new Table([{ start: 0, length: 4096, target: targets.linear({ device: loop.dev, offset: 0 }) }])));
    expect(r).to.be.instanceOf(DmError).and.include({ code: 'EINVAL', command: 'DM_DEV_SUSPEND' });
    expect((r as DmError).rollbackError).to.equal(undefined);
    expect(sdm.info(name)).to.include({ suspended: false, inactiveTable: false, activeTable: true });
    expect(sdm.table(name)?.toString()).to.equal(table.toString());
    // Suspended before: suspended after.
    sdm.suspend(name);
    thrown(() => sdm.reload(name, new Table([{ start: 0, length: 4096, target: targets.linear({ device: loop.dev, offset: 0 }) }])));
    expect(sdm.info(name)).to.include({ suspended: true, inactiveTable: false });
    sdm.resume(name);
  });

  it('acts only on the device it means: a device that takes the uuid between the steps is reported (ESTALE)', () => {
    const x = devName('sync-idx');
    const intruder = devName('sync-idy');
    const uuid = `DMT-${x}`;
    const other = DeviceMapper.openSync();
    try {
      const unhook = hookControl(sdm, {
        after: (request) => {
          if (request.cmd === Command.DEV_CREATE && request.name === x) {
            other.remove(x);
            other.create(intruder, { uuid });
          }
        },
      });
      const e = thrown(() => sdm.create(x, { table: zero(8), uuid }));
      unhook();
      expect(e).to.be.instanceOf(DmError).and.include({ code: 'ESTALE', command: 'DM_TABLE_LOAD', device: x });
      expect(sdm.info({ uuid })).to.include({ name: intruder, activeTable: false });
    } finally {
      other.close();
    }
  });

  it('bad arguments and unknown options throw before any ioctl; kernel errors are DmError with the caller\'s stack; closed is closed', () => {
    const before = sdm.ioctlStats.commands;
    expect(thrown(() => sdm.create(''))).to.be.instanceOf(RangeError);
    expect(thrown(() => sdm.create(3 as never))).to.be.instanceOf(TypeError);
    expect(thrown(() => sdm.info('x', { inactve: true } as never))).to.be.instanceOf(TypeError).and.have.property('message').that.matches(/unknown option "inactve"$/);
    expect(thrown(() => sdm.removeAll({ prefx: 'x' } as never))).to.be.instanceOf(TypeError);
    expect(thrown(() => sdm.message('x', ''))).to.be.instanceOf(RangeError);
    expect(thrown(() => sdm.setGeometry('x', { cylinders: 70000, heads: 1, sectors: 1, start: 0 }))).to.be.instanceOf(RangeError);
    expect(thrown(() => sdm.recover({ repair: true }))).to.be.instanceOf(RangeError);
    expect(sdm.ioctlStats.commands).to.equal(before);
    const missing = devName('sync-missing');
    const e = thrown(() => sdm.remove(missing));
    expect(e).to.be.instanceOf(DmError).and.include({ code: 'ENXIO', errno: 6, command: 'DM_DEV_REMOVE', device: missing });
    expect((e as Error).stack?.split('\n')[1]).to.contain('sync.test');
    const other = DeviceMapper.openSync();
    other.close();
    other.close();
    expect(other.closed).to.equal(true);
    expect(thrown(() => other.info('x'))).to.be.instanceOf(DmClosedError).and.include({ code: 'ERR_DM_CLOSED' });
  });

  it('remove retries EBUSY with pauses on this thread, then reports it', () => {
    const name = devName('sync-busy');
    const info = sdm.create(name, { table: zero(8) });
    const fd = openSync(info.path, 'r');
    try {
      const before = sdm.ioctlStats.commands;
      const started = Date.now();
      const e = thrown(() => sdm.remove(name, { retries: 2 }));
      expect(e).to.be.instanceOf(DmError).and.include({ code: 'EBUSY' });
      expect(sdm.ioctlStats.commands - before).to.equal(3);
      expect(Date.now() - started).to.be.at.least(25); // 10 ms, then 20 ms between the tries
    } finally {
      closeSync(fd);
    }
    sdm.remove(name);
  });

  it('remove with force swaps an open device to an error table on this thread (its read, the reload\'s own read under the lock, load, suspend, resume, remove: 6 ioctls), then reports the EBUSY; closed, it goes', () => {
    const name = devName('sync-force');
    const info = sdm.create(name, { table: zero(2048) });
    const fd = openSync(info.path, 'r');
    try {
      const sent: [number, number][] = [];
      const unhook = hookControl(sdm, { before: (r) => void sent.push([r.cmd, r.flags]) });
      let e: unknown;
      try {
        e = thrown(() => sdm.remove(name, { force: true, retries: 0 }));
      } finally {
        unhook();
      }
      expect(e).to.be.instanceOf(DmError).and.include({ code: 'EBUSY', command: 'DM_DEV_REMOVE', device: name });
      expect(sent.map(([cmd]) => cmd)).to.deep.equal([Command.DEV_STATUS, Command.TABLE_STATUS, Command.TABLE_LOAD, Command.DEV_SUSPEND, Command.DEV_SUSPEND, Command.DEV_REMOVE]);
      // The swap's suspend is a suspend (not a resume), neither flushing nor freezing a
      // filesystem: dead storage cannot hold it. Then the resume.
      const suspendBits = Flag.SUSPEND | Flag.NOFLUSH | Flag.SKIP_LOCKFS;
      expect((sent[3]?.[1] ?? 0) & suspendBits).to.equal(suspendBits);
      expect((sent[4]?.[1] ?? 0) & Flag.SUSPEND).to.equal(0);
      expect(sdm.info(name)).to.include({ suspended: false, openCount: 1 });
      expect(dmsetup('table', name).trimEnd()).to.equal('0 2048 error');
    } finally {
      closeSync(fd);
    }
    sdm.remove(name, { force: true });
    expect(sdm.listDevices().some((d) => d.name === name)).to.equal(false);
  });

  it('recover finds and repairs a device left suspended with an inactive table', () => {
    const name = devName('sync-recover');
    sdm.create(name, { table: zero(8) });
    sdm.load(name, zero(16));
    sdm.suspend(name);
    const found = sdm.recover({ prefix: PREFIX }).filter((d) => d.name === name);
    expect(found).to.have.length(1);
    expect(found[0]).to.include({ suspended: true, inactiveTable: true, activeTable: true, repaired: false });
    expect(sdm.recover({ prefix: name, repair: true }).map((d) => d.repaired)).to.deep.equal([true]);
    expect(sdm.info(name)).to.include({ suspended: false, inactiveTable: false });
    expect(sdm.table(name)?.toString()).to.equal('0 8 zero');
  });
});
