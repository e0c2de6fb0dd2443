import { expect } from 'chai';
import { Command, DeviceMapper, Flag, Table, targets } from '../../ts/index';
import { hookControl, nativeControl } from './hooks';
import { TestContext, devName, dmsetup, timeoutAtLeast } from './helpers';

/** The status row types of the zero/error table in the slices test. */
function status0(rows: number): string[] {
  return Array.from({ length: rows }, (_, i) => (i % 2 === 0 ? 'zero' : 'error'));
}

describe('buffer growth and concurrency in the kernel', function () {
  const t = TestContext.perTest();

  it('a table of more than 64 KiB loads and reads back whole; the grown buffer is remembered (one ioctl per command after)', async () => {
    const loop = await t.fx.loop(8192);
    const rows = Array.from({ length: 4000 }, (_, i) => ({ start: i * 2, length: 2, target: targets.linear({ device: loop.dev, offset: 8190 - i * 2 }) }));
    const table = new Table(rows);
    expect(table.toString().length).to.be.greaterThan(64 * 1024);
    const name = devName('big');
    await t.dm.create(name, { table });

    const first = t.dm.ioctlStats;
    const back = await t.dm.table(name);
    const grown = t.dm.ioctlStats;
    expect(back?.toString()).to.equal(table.toString());
    expect(grown.ioctls - first.ioctls).to.be.greaterThan(1); // 16 KiB, 32, 64, 128: it had to grow
    expect(t.dm.bufferSizes()[Command.TABLE_STATUS]).to.be.at.least(128 * 1024);

    await t.dm.table(name);
    const steady = t.dm.ioctlStats;
    expect(steady.ioctls - grown.ioctls).to.equal(1);
    expect(steady.commands - grown.commands).to.equal(1);
    expect(dmsetup('table', name).trim()).to.equal(table.toString());
  });

  it('a large table and its status are turned into rows in slices: other callbacks run between them, and the sync client reads the same', async function () {
    timeoutAtLeast(this, 120000);
    const rows = 50000;
    const table = new Table(Array.from({ length: rows }, (_, i) => ({ start: i * 8, length: 8, target: i % 2 === 0 ? targets.zero() : targets.error() })));
    const name = devName('sliced');
    await t.dm.create(name, { table });
    let turns = 0;
    let on = true;
    const spin = (): void => {
      turns++;
      if (on) setImmediate(spin);
    };
    // The turns counted from the kernel's answer on: while the rows are made.
    let answered = -1;
    const unhook = hookControl(t.dm, { after: () => void (answered = turns) });
    let status;
    try {
      setImmediate(spin);
      const back = await t.dm.table(name);
      const duringTable = turns - answered;
      status = await t.dm.status(name);
      expect(back?.equals(table)).to.equal(true);
      expect(back?.rows[1]?.target).to.deep.equal(targets.error());
      expect(status).to.have.length(rows);
      expect(status[rows - 1]).to.deep.include({ start: (rows - 1) * 8, length: 8, type: 'error' });
      // Made in one piece, no turn would fall between the answer and the table.
      expect(answered).to.be.at.least(0);
      expect(duringTable, 'event-loop turns while 50,000 rows were made').to.be.greaterThan(2);
    } finally {
      on = false;
      unhook();
    }
    const sync = DeviceMapper.openSync();
    try {
      expect(sync.table(name)?.toString()).to.equal(table.toString());
      expect(sync.status(name).map((r) => r.type)).to.deep.equal(status0(rows));
    } finally {
      sync.close();
    }
  });

  it("a large answer's memory goes back to the addon once read: its ArrayBuffers read as empty after, and the next large answers are copied into it, whole and right, one at a time or many at once", async function () {
    timeoutAtLeast(this, 120000);
    const rows = 20000;
    const table = new Table(Array.from({ length: rows }, (_, i) => ({ start: i * 8, length: 8, target: i % 2 === 0 ? targets.zero() : targets.error() })));
    const other = new Table(Array.from({ length: rows }, (_, i) => ({ start: i * 8, length: 8, target: i % 2 === 0 ? targets.error() : targets.zero() })));
    const [a, b] = [devName('reused-a'), devName('reused-b')];
    await t.dm.create(a, { table });
    await t.dm.create(b, { table: other });
    const control = nativeControl(t.dm);
    const memory = (): { reused: number; keptBytes: number; lent: number } => control.answerMemory();
    const lent: ArrayBufferLike[] = [];
    const unhook = hookControl(t.dm, {
      after: (_request, r) => {
        const rowsOf = r.targets ?? r.devices;
        if (rowsOf !== undefined) lent.push(rowsOf.bytes, rowsOf.index.buffer);
      },
    });
    try {
      const before = memory();
      for (let i = 0; i < 3; i++) expect((await t.dm.table(a))?.equals(table), `read ${i}`).to.equal(true);
      const status = await t.dm.status(a);
      expect(status.map((r) => r.type)).to.deep.equal(status0(rows));
      const sequential = memory();
      // Each answer's bytes and index: 64 KiB and more, lent without a copy, given back after.
      expect(lent).to.have.length(8);
      expect(lent.every((buffer) => buffer.byteLength === 0), 'every ArrayBuffer given back (detached)').to.equal(true);
      expect(sequential.lent).to.equal(0);
      // The first read's memory served the later ones (its bytes and its index, each time).
      expect(sequential.reused - before.reused).to.be.at.least(4);
      expect(sequential.keptBytes).to.be.greaterThan(0).and.at.most(16 * 1024 * 1024);
      // Sixteen reads of two tables at once, on the I/O threads: each its own table, whole.
      const reads = await Promise.all(Array.from({ length: 16 }, (_, i) => t.dm.table(i % 2 === 0 ? a : b)));
      reads.forEach((r, i) => expect(r?.equals(i % 2 === 0 ? table : other), `read ${i} at once`).to.equal(true));
      expect(memory().lent).to.equal(0);
      expect(lent.every((buffer) => buffer.byteLength === 0)).to.equal(true);
    } finally {
      unhook();
    }
    // dmsetup ends a row without params with a space.
    expect(dmsetup('table', b).trim().split('\n').map((l) => l.trimEnd())).to.deep.equal(other.toString().split('\n'));
  });

  it('a large table is handed to the addon as a target list, and the kernel holds every row (load, reload, sync create)', async function () {
    timeoutAtLeast(this, 180000);
    const rows = 20000;
    const table = new Table(Array.from({ length: rows }, (_, i) => ({ start: i * 8, length: 8, target: i % 2 === 0 ? targets.zero() : targets.error() })));
    const name = devName('load-sliced');
    await t.dm.create(name);
    // What each TABLE_LOAD carried: a target list (rows taken a range at a time) or an array.
    const carried: string[] = [];
    const unhook = hookControl(t.dm, { before: (request) => {
      if (request.cmd === Command.TABLE_LOAD) carried.push(Array.isArray(request.targets) ? 'array' : 'list');
    } });
    try {
      await t.dm.load(name, table);
      await t.dm.resume(name);
      expect((await t.dm.table(name))?.equals(table)).to.equal(true);
      const swapped = new Table(table.rows.map((r, i) => ({ start: r.start, length: r.length, target: i % 2 === 0 ? targets.error() : targets.zero() })));
      await t.dm.reload(name, swapped);
      expect((await t.dm.table(name))?.equals(swapped)).to.equal(true);
      await t.dm.load(name, new Table([{ start: 0, length: 8, target: targets.zero() }]));
      expect(carried).to.deep.equal(['list', 'list', 'array']);
    } finally {
      unhook();
    }
    const sync = DeviceMapper.openSync();
    const syncName = devName('load-sliced-s');
    try {
      sync.create(syncName, { table });
      expect(sync.table(syncName)?.equals(table)).to.equal(true);
    } finally {
      try {
        sync.remove(syncName);
      } finally {
        sync.close();
      }
    }
  });

  it('a long device list grows the LIST_DEVICES buffer and lists every device with its uuid', async () => {
    const names = Array.from({ length: 300 }, (_, i) => devName(`many${i}-${'x'.repeat(60)}`));
    for (const name of names) await t.dm.create(name, { uuid: `DMT-UUID-${name}` });
    const before = t.dm.ioctlStats;
    const listed = await t.dm.listDevices();
    expect(t.dm.ioctlStats.ioctls - before.ioctls).to.be.greaterThan(1);
    const byName = new Map(listed.map((d) => [d.name, d]));
    for (const name of names) expect(byName.get(name)?.uuid).to.equal(`DMT-UUID-${name}`);
    const again = t.dm.ioctlStats;
    await t.dm.listDevices();
    expect(t.dm.ioctlStats.ioctls - again.ioctls).to.equal(1);
    const ls = dmsetup('ls').trim().split('\n').map((l) => l.split('\t')[0]);
    expect(ls.filter((n) => n !== undefined && names.includes(n)).length).to.equal(300);
  });

  it('20 parallel creates, infos, status reads and removes all complete', async () => {
    const names = Array.from({ length: 20 }, (_, i) => devName(`par${i}`));
    const table = new Table([{ start: 0, length: 8, target: targets.zero() }]);
    const infos = await Promise.all(names.map((n) => t.dm.create(n, { table })));
    expect(new Set(infos.map((i) => i.dev.minor)).size).to.equal(20);
    const [again, statuses] = await Promise.all([Promise.all(names.map((n) => t.dm.info(n))), Promise.all(names.map((n) => t.dm.status(n)))]);
    expect(again.map((i) => i.name)).to.deep.equal(names);
    expect(statuses.every((s) => s[0]?.type === 'zero')).to.equal(true);
    await Promise.all(names.map((n) => t.dm.remove(n)));
    const left = (await t.dm.listDevices()).filter((d) => names.includes(d.name));
    expect(left).to.deep.equal([]);
  });

  it('close waits for pending calls, then later calls reject', async () => {
    const name = devName('closing');
    await t.dm.create(name);
    const pending = Promise.all(Array.from({ length: 10 }, () => t.dm.info(name)));
    await t.dm.close();
    expect((await pending).length).to.equal(10);
    const e: unknown = await t.dm.info(name).catch((x: unknown) => x);
    expect(e).to.be.instanceOf(Error);
    expect(e).to.have.property('code', 'ERR_DM_CLOSED');
    t.use(await DeviceMapper.open());
  });

  it('a message whose answer does not fit is not sent twice unless it only reports', async () => {
    const name = devName('bigmsg');
    await t.dm.create(name, { table: new Table([{ start: 0, length: 4000, target: targets.zero() }]) });
    expect(await t.dm.message(name, '@stats_create - /2000')).to.equal('0'); // 2000 areas of 2 sectors
    // @stats_print only reports: it is sent again with a larger buffer, in one call.
    const before = t.dm.ioctlStats;
    const printed = await t.dm.message(name, '@stats_print 0');
    expect(printed?.split('\n').filter((l) => l !== '').length).to.equal(2000);
    expect(t.dm.ioctlStats.ioctls - before.ioctls).to.be.greaterThan(1);
    // Marked as not repeatable, a short buffer is ENOBUFS: delivered once, not sent again.
    const other = await DeviceMapper.open();
    try {
      const e: unknown = await other.message(name, '@stats_print 0', { repeatable: false }).catch((x: unknown) => x);
      expect(e).to.include({ code: 'ENOBUFS', command: 'DM_TARGET_MSG' });
      expect((e as Error).message).to.contain('not sent again');
      expect(other.ioctlStats).to.deep.equal({ commands: 1, ioctls: 1 });
      // The buffer grew meanwhile: asked again, it fits (eventually) without repeating on its own.
      let answer: string | undefined;
      for (let i = 0; i < 8 && answer === undefined; i++) {
        answer = await other.message(name, '@stats_print 0', { repeatable: false }).catch(() => undefined);
      }
      expect(answer).to.equal(printed);
    } finally {
      await other.close();
    }
  });

  it("a large table is read in two ioctls the first time (the kernel's row count sizes the second) and in one after, in a buffer of its size; a device's inactive and live tables keep their own sizes", () => {
    const rows = 30000;
    const name = devName('fit');
    const sync = DeviceMapper.openSync();
    const seen: { flags: number; ioctls: number; bufferSize: number }[] = [];
    const unhook = hookControl(sync, { after: (request, result) => void seen.push({ flags: request.flags, ioctls: result.ioctls, bufferSize: result.bufferSize }) });
    try {
      sync.create(name, { table: new Table([{ start: 0, length: 8, target: targets.zero() }]) });
      const table = new Table(Array.from({ length: rows }, (_, i) => ({ start: i * 8, length: 8, target: i % 2 === 0 ? targets.zero() : targets.error() })));
      sync.load(name, table);
      // What the kernel writes: a 40-byte dm_target_spec and an empty text per row, each row
      // but the last padded to 8 bytes, after the 312-byte header.
      const used = 312 + (rows - 1) * 48 + 41;
      const room = Math.ceil((used + Math.floor(used / 16)) / 4096) * 4096;
      seen.length = 0;
      const reads: (Table | undefined)[] = [];
      for (const inactive of [true, true, false, true, false, true]) reads.push(sync.table(name, { inactive }));
      const tables = seen.filter((s) => (s.flags & Flag.STATUS_TABLE) !== 0);
      expect(tables.map((s) => s.ioctls)).to.deep.equal([2, 1, 1, 1, 1, 1]);
      expect(tables[0]?.bufferSize).to.be.within(used, 2 * room);
      for (const i of [1, 3, 5]) expect(tables[i]?.bufferSize).to.equal(room);
      for (const i of [2, 4]) expect(tables[i]?.bufferSize).to.equal(16 * 1024);
      expect(reads[5]?.equals(table)).to.equal(true);
      expect(reads[4]?.rows).to.have.length(1);
      sync.resume(name);
      expect(dmsetup('table', name).trim().split('\n')).to.have.length(rows);
    } finally {
      unhook();
      try {
        sync.remove(name);
      } finally {
        sync.close();
      }
    }
  });

  it("a device's status and its IMA measurement keep buffer sizes of their own: read in turn, each takes one ioctl", async () => {
    const loop = await t.fx.loop(8192);
    const name = devName('fit-ima');
    const rows = 2000;
    // Each row's status is empty (48 bytes an answer row); its IMA text some 70 bytes more.
    await t.dm.create(name, { table: new Table(Array.from({ length: rows }, (_, i) => ({ start: i * 4, length: 4, target: targets.linear({ device: loop.dev, offset: i * 4 }) }))) });
    const sync = DeviceMapper.openSync();
    const seen: { flags: number; ioctls: number }[] = [];
    const unhook = hookControl(sync, { after: (request, result) => void seen.push({ flags: request.flags, ioctls: result.ioctls }) });
    try {
      for (let i = 0; i < 3; i++) {
        expect(sync.status(name)).to.have.length(rows);
        const ima = sync.status(name, { ima: true });
        expect(ima[rows - 1]?.status.raw).to.match(/^target_name=linear,.*;$/);
      }
      expect(seen.map((s) => s.ioctls).slice(2)).to.deep.equal([1, 1, 1, 1]);
    } finally {
      unhook();
      sync.close();
    }
  });

  it('a large answer does not make small ones pay: buffer sizes are remembered per device and shrink', async () => {
    const loop = await t.fx.loop(8192);
    const big = devName('hint-big');
    const small = devName('hint-small');
    const rows = Array.from({ length: 4000 }, (_, i) => ({ start: i * 2, length: 2, target: targets.linear({ device: loop.dev, offset: i * 2 }) }));
    await t.dm.create(big, { table: new Table(rows) });
    await t.dm.create(small, { table: new Table([{ start: 0, length: 8, target: targets.zero() }]) });
    const seen: { name: string | undefined; cmd: number; ioctls: number; bufferSize: number }[] = [];
    const unhook = hookControl(t.dm, { after: (request, result) => void seen.push({ name: request.name, cmd: request.cmd, ioctls: result.ioctls, bufferSize: result.bufferSize }) });
    try {
      await t.dm.table(big);
      await t.dm.table(big);
      await t.dm.status(small);
      await t.dm.table(small);
      const [first, second, status, table] = seen;
      expect(first?.ioctls).to.be.greaterThan(1);
      expect(second?.ioctls).to.equal(1);
      expect(status).to.include({ ioctls: 1, bufferSize: 16 * 1024 });
      expect(table).to.include({ ioctls: 1, bufferSize: 16 * 1024 });
      // The big device's table gets small: its hint goes once the default is enough again.
      await t.dm.reload(big, new Table([{ start: 0, length: 8, target: targets.zero() }]));
      seen.length = 0;
      for (let i = 0; i < 8; i++) await t.dm.table(big);
      const sizes = seen.filter((s) => s.cmd === Command.TABLE_STATUS).map((s) => s.bufferSize);
      expect(sizes[sizes.length - 1]).to.equal(16 * 1024);
      expect(seen.every((s) => s.ioctls === 1)).to.equal(true);
    } finally {
      unhook();
    }
  });
});
