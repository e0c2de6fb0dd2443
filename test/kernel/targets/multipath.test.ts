import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readSync } from 'node:fs';
import { LoopDevice, Table, multipathMessages, targets, type MultipathStatus, type MultipathTarget } from '../../../ts/index';
import { TestContext, devName, dmsetup } from '../helpers';

const SECTORS = 8192;

/** The typed status of a multipath device's only row. */
async function statusOf(t: TestContext, name: string): Promise<MultipathStatus> {
  const [row] = await t.dm.status(name);
  if (row === undefined || !row.status.known || row.status.type !== 'multipath') throw new Error(`no typed multipath status for ${name}`);
  return row.status;
}

/** The typed target of a multipath device's only row, as the kernel prints it back. */
async function tableOf(t: TestContext, name: string): Promise<MultipathTarget> {
  const target = (await t.dm.table(name))?.rows[0]?.target;
  if (target === undefined || target.type !== 'multipath') throw new Error(`no multipath table for ${name}`);
  return target as MultipathTarget;
}

/** Two paths to the same storage: two loop devices over one backing file. */
async function twoPaths(t: TestContext): Promise<[LoopDevice, LoopDevice]> {
  const a = await t.fx.loop(SECTORS);
  const b = await LoopDevice.attach(a.file);
  t.fx.loops.push(b);
  return [a, b];
}

/** Writes `data` at `offset` bytes with direct I/O (no page cache between us and the target). */
function writeDirect(path: string, data: Buffer, offset = 0): void {
  execFileSync('dd', [`of=${path}`, 'bs=4096', `seek=${offset / 4096}`, 'oflag=direct', 'iflag=fullblock', 'conv=notrunc', 'status=none'], { input: data, stdio: ['pipe', 'ignore', 'pipe'] });
}

/** Reads `length` bytes at `offset` with direct I/O. */
function readDirect(path: string, length: number, offset = 0): Buffer {
  return execFileSync('dd', [`if=${path}`, 'bs=4096', `skip=${offset / 4096}`, `count=${length / 4096}`, 'iflag=direct', 'status=none'], { maxBuffer: length + 4096, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Bytes of the backing file itself. */
function readFile(file: string, length: number, offset = 0): Buffer {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(length);
    readSync(fd, b, 0, length, offset);
    return b;
  } finally {
    closeSync(fd);
  }
}

function pattern(seed: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/** The kernel's answer to a message: its errno code, or 'ok'. */
async function answer(t: TestContext, name: string, message: string): Promise<string> {
  try {
    await t.dm.message(name, message);
    return 'ok';
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
}

describe('multipath in the kernel', () => {
  const t = TestContext.perTest();

  it('a round-robin group over two paths built with targets.multipath reads back equal, dmsetup agrees, and data survives a failed path', async () => {
    const [a, b] = await twoPaths(t);
    const target = targets.multipath({ groups: [{ selector: 'round-robin', paths: [{ device: a.dev }, { device: b.dev }] }] });
    const table = new Table([{ start: 0, length: SECTORS, target }]);
    const name = devName('mpath');
    const info = await t.dm.create(name, { table });
    const back = await t.dm.table(name);
    expect(back?.equals(table)).to.equal(true);
    expect(back?.rows[0]?.target).to.deep.equal(target);
    expect(dmsetup('table', name).trimEnd()).to.equal(table.toString());

    const s0 = await statusOf(t, name);
    expect(dmsetup('status', name).trimEnd()).to.equal(`0 ${SECTORS} multipath ${s0.raw}`.trimEnd());
    // Fresh: I/O is held until the first path is chosen, and no group is active yet.
    expect(s0).to.deep.include({ queueIo: true, pgInitCount: 0, nextGroup: 1, extra: [] });
    expect(s0.groups.map((g) => g.state)).to.deep.equal(['enabled']);
    expect(s0.groups[0]?.paths.map((p) => [p.device, p.health, p.failCount])).to.deep.equal([[a.devString, 'active', 0], [b.devString, 'active', 0]]);

    const one = pattern(1, 65536);
    writeDirect(info.path, one);
    expect(readDirect(info.path, one.length).equals(one)).to.equal(true);
    expect(readFile(a.file, one.length).equals(one), 'the data reached the storage').to.equal(true);
    const s1 = await statusOf(t, name);
    expect(s1).to.deep.include({ queueIo: false });
    expect(s1.groups[0]?.state).to.equal('active');

    await t.dm.message(name, multipathMessages.failPath(a.dev));
    const s2 = await statusOf(t, name);
    expect(s2.groups[0]?.paths.map((p) => [p.health, p.failCount])).to.deep.equal([['failed', 1], ['active', 0]]);
    expect(dmsetup('status', name).trimEnd()).to.equal(`0 ${SECTORS} multipath ${s2.raw}`.trimEnd());
    // Written while path a is failed: it all goes through b, and reads back.
    const two = pattern(2, 65536);
    writeDirect(info.path, two, 65536);
    expect(readDirect(info.path, two.length, 65536).equals(two)).to.equal(true);
    expect(readFile(b.file, two.length, 65536).equals(two)).to.equal(true);
    expect((await statusOf(t, name)).groups[0]?.paths[0]?.health).to.equal('failed');

    await t.dm.message(name, multipathMessages.reinstatePath(a.path));
    const s3 = await statusOf(t, name);
    expect(s3.groups[0]?.paths.map((p) => [p.health, p.failCount])).to.deep.equal([['active', 1], ['active', 0]]);
    // Now only a: what was written through b reads back through a.
    await t.dm.message(name, multipathMessages.failPath(b.dev));
    expect(readDirect(info.path, two.length, 65536).equals(two)).to.equal(true);
    expect(readDirect(info.path, one.length).equals(one)).to.equal(true);
    const s4 = await statusOf(t, name);
    expect(s4.groups[0]?.paths.map((p) => [p.health, p.failCount])).to.deep.equal([['active', 1], ['failed', 1]]);
  });

  it('two groups: disable_group, enable_group and switch_group show in the status, and a failed path fails over to the other group', async () => {
    const [a, b] = await twoPaths(t);
    const target = targets.multipath({
      groups: [
        { selector: 'round-robin', paths: [{ device: a.dev }] },
        { selector: 'service-time', paths: [{ device: b.dev, relativeThroughput: 4 }] },
      ],
    });
    const table = new Table([{ start: 0, length: SECTORS, target }]);
    const name = devName('mpath-2g');
    const info = await t.dm.create(name, { table });
    expect((await t.dm.table(name))?.equals(table)).to.equal(true);
    expect(dmsetup('table', name).trimEnd()).to.equal(table.toString());
    const data = pattern(3, 16384);
    writeDirect(info.path, data);
    const s0 = await statusOf(t, name);
    expect(s0.groups.map((g) => g.state)).to.deep.equal(['active', 'enabled']);
    expect(s0.groups[1]?.paths[0]).to.deep.include({ inFlightSize: 0, relativeThroughput: 4 });

    await t.dm.message(name, multipathMessages.disableGroup(1));
    expect((await statusOf(t, name)).groups.map((g) => g.state)).to.deep.equal(['disabled', 'enabled']);
    // A bypassed group is skipped: the next I/O goes to group 2.
    expect(readDirect(info.path, data.length).equals(data)).to.equal(true);
    expect((await statusOf(t, name)).groups.map((g) => g.state)).to.deep.equal(['disabled', 'active']);
    await t.dm.message(name, multipathMessages.enableGroup(1));
    expect((await statusOf(t, name)).groups[0]?.state).to.equal('enabled');

    await t.dm.message(name, multipathMessages.switchGroup(1));
    expect((await statusOf(t, name)).nextGroup).to.equal(1);
    readDirect(info.path, 4096);
    expect((await statusOf(t, name)).groups.map((g) => g.state)).to.deep.equal(['active', 'enabled']);
    await t.dm.message(name, multipathMessages.switchGroup(2));
    readDirect(info.path, 4096);
    const s1 = await statusOf(t, name);
    expect(s1).to.deep.include({ nextGroup: 2 });
    expect(s1.groups.map((g) => g.state)).to.deep.equal(['enabled', 'active']);
    // The kernel prints the group in use as the table's initial group.
    expect((await tableOf(t, name)).initialGroup).to.equal(2);
    expect(dmsetup('table', name).trimEnd()).to.equal(`0 ${SECTORS} multipath ${(await tableOf(t, name)).params}`);

    await t.dm.message(name, multipathMessages.failPath(b.dev));
    expect(readDirect(info.path, data.length).equals(data)).to.equal(true);
    const s2 = await statusOf(t, name);
    expect(s2).to.deep.include({ nextGroup: 1 });
    expect(s2.groups.map((g) => g.state)).to.deep.equal(['active', 'enabled']);
    expect(s2.groups[1]?.paths[0]).to.deep.include({ health: 'failed', failCount: 1 });
    expect(dmsetup('status', name).trimEnd()).to.equal(`0 ${SECTORS} multipath ${s2.raw}`.trimEnd());
  });

  it('queue_if_no_path and fail_if_no_path show in the table\'s features; with no path and fail_if_no_path, I/O fails', async () => {
    const [a, b] = await twoPaths(t);
    const target = targets.multipath({ queueIfNoPath: true, pgInitRetries: 5, pgInitDelayMsecs: 500, groups: [{ selector: 'queue-length', paths: [{ device: a.dev, repeatCount: 0 }, { device: b.dev }] }] });
    const table = new Table([{ start: 0, length: SECTORS, target }]);
    const name = devName('mpath-q');
    const info = await t.dm.create(name, { table });
    expect((await t.dm.table(name))?.equals(table)).to.equal(true);
    expect(dmsetup('table', name).trimEnd()).to.equal(table.toString());
    expect(await tableOf(t, name)).to.deep.include({ queueIfNoPath: true, pgInitRetries: 5, pgInitDelayMsecs: 500 });
    readDirect(info.path, 4096);
    expect((await statusOf(t, name)).groups[0]?.paths.map((p) => p.inFlight)).to.deep.equal([0, 0]);

    await t.dm.message(name, multipathMessages.failIfNoPath());
    expect((await tableOf(t, name)).queueIfNoPath).to.equal(false);
    expect(dmsetup('table', name)).to.not.include('queue_if_no_path');
    await t.dm.message(name, multipathMessages.queueIfNoPath());
    expect((await tableOf(t, name)).queueIfNoPath).to.equal(true);
    expect(dmsetup('table', name)).to.include(' 5 queue_if_no_path pg_init_retries 5 pg_init_delay_msecs 500 ');
    // Without queue_if_no_path, I/O with every path failed ends in an error instead of waiting.
    await t.dm.message(name, multipathMessages.failIfNoPath());
    await t.dm.message(name, multipathMessages.failPath(a.dev));
    await t.dm.message(name, multipathMessages.failPath(b.dev));
    expect(() => readDirect(info.path, 4096)).to.throw();
    await t.dm.message(name, multipathMessages.reinstatePath(b.dev));
    expect(readDirect(info.path, 4096)).to.have.length(4096);
  });

  it('the kernel normalises: bio mode reads back with retain_attached_hw_handler, a repeat count above 1 as 1; bad messages are refused', async () => {
    const [a, b] = await twoPaths(t);
    const bio = targets.multipath({ queueMode: 'bio', groups: [{ selector: 'round-robin', paths: [{ device: a.dev }, { device: b.dev }] }] });
    expect(bio.retainAttachedHwHandler).to.equal(true);
    const name = devName('mpath-bio');
    const table = new Table([{ start: 0, length: SECTORS, target: bio }]);
    const info = await t.dm.create(name, { table });
    expect((await t.dm.table(name))?.equals(table)).to.equal(true);
    expect(dmsetup('table', name).trimEnd()).to.equal(table.toString());
    const data = pattern(4, 8192);
    writeDirect(info.path, data);
    expect(readDirect(info.path, data.length).equals(data)).to.equal(true);

    // Messages naming a path or group the map does not have, or of a wrong shape: EINVAL.
    const other = await t.fx.loop(64);
    expect(await answer(t, name, multipathMessages.failPath(other.dev))).to.equal('EINVAL');
    expect(await answer(t, name, multipathMessages.switchGroup(2))).to.equal('EINVAL');
    expect(await answer(t, name, 'fail_path')).to.equal('EINVAL');
    // And any message while suspended: EBUSY.
    await t.dm.suspend(name);
    expect(await answer(t, name, multipathMessages.failPath(a.dev))).to.equal('EBUSY');
    await t.dm.resume(name);
    await t.dm.remove(name);

    // What users may write, the kernel takes and prints back its own way.
    const user = Table.parse(`0 ${SECTORS} multipath 2 queue_mode mq 0 1 1 round-robin 0 2 1 ${a.devString} 1000 ${b.devString} 1000`);
    const name2 = devName('mpath-user');
    await t.dm.create(name2, { table: user });
    const back = await tableOf(t, name2);
    expect(back.params).to.equal(`0 0 1 1 round-robin 0 2 1 ${a.devString} 1 ${b.devString} 1`);
    expect(back).to.deep.include({ queueMode: 'rq' });
  });
});
