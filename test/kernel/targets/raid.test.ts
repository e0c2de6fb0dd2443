import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { Table, raidMessages, targets, type RaidStatus } from '../../../ts/index';
import { TestContext, devName, dmsetup, eventually, expectReadBack, readAt } from '../helpers';

/** The typed status of a raid target, the device's only row. */
async function statusOf(t: TestContext, name: string): Promise<RaidStatus> {
  const [row] = await t.dm.status(name);
  if (row === undefined || !row.status.known || row.status.type !== 'raid') throw new Error(`no typed raid status for ${name}`);
  return row.status;
}

async function inSync(t: TestContext, name: string, ms = 30000): Promise<boolean> {
  return eventually(async () => {
    const s = await statusOf(t, name);
    return s.syncAction === 'idle' && s.syncRatio.used === s.syncRatio.total && s.devices.every((d) => d === 'in-sync' || d === 'missing');
  }, ms);
}

describe('raid in the kernel', () => {
  const t = TestContext.perTest();

  it('a raid1 with metadata legs built with targets.raid reads back equal, dmsetup agrees, its sync ratio reaches the total, and a check finds no mismatch', async () => {
    const [m0, d0, m1, d1] = [await t.fx.loop(2048), await t.fx.loop(16384), await t.fx.loop(2048), await t.fx.loop(16384)];
    const target = targets.raid({ raidType: 'raid1', devices: [{ metadata: m0.dev, data: d0.dev }, { metadata: m1.dev, data: d1.dev }], regionSize: 1024, daemonSleep: 1000 });
    const table = new Table([{ start: 0, length: 8192, target }]);
    const name = devName('raid1');
    await t.dm.create(name, { table });
    await expectReadBack(t.dm, name, table);
    expect(await inSync(t, name)).to.equal(true);
    const s = await statusOf(t, name);
    expect(dmsetup('status', name).trimEnd()).to.equal(`0 8192 raid ${s.raw}`.trimEnd());
    expect(s).to.deep.include({ raidType: 'raid1', syncAction: 'idle', mismatchCount: 0, journal: 'none' });
    expect(s.syncRatio).to.deep.equal({ used: 8192, total: 8192 });

    const data = randomBytes(64 * 1024);
    const fd = openSync((await t.dm.info(name)).path, 'r+');
    try {
      writeSync(fd, data, 0, data.length, 4096);
    } finally {
      closeSync(fd);
    }
    await t.dm.suspend(name);
    await t.dm.resume(name);
    const offset = s.dataOffset * 512 + 4096;
    expect(readAt(d0.path, data.length, offset).equals(data)).to.equal(true);
    expect(readAt(d1.path, data.length, offset).equals(data)).to.equal(true);

    await t.dm.message(name, raidMessages.check());
    expect(await inSync(t, name)).to.equal(true);
    expect((await statusOf(t, name)).mismatchCount).to.equal(0);
    // reshape is a status action, not a message: the kernel refuses it.
    let refused = false;
    try {
      await t.dm.message(name, 'reshape');
    } catch {
      refused = true;
    }
    expect(refused).to.equal(true);
  });

  it("a raid1 check's mismatch count is in sectors: one corrupted 4 KiB block on a leg counts at least 8", async () => {
    const [m0, d0, m1, d1] = [await t.fx.loop(2048), await t.fx.loop(16384), await t.fx.loop(2048), await t.fx.loop(16384)];
    const target = targets.raid({ raidType: 'raid1', devices: [{ metadata: m0.dev, data: d0.dev }, { metadata: m1.dev, data: d1.dev }], regionSize: 1024 });
    const name = devName('raid1-mismatch');
    await t.dm.create(name, { table: new Table([{ start: 0, length: 8192, target }]) });
    expect(await inSync(t, name)).to.equal(true);
    const { dataOffset } = await statusOf(t, name);
    // Behind the array's back, one 4 KiB block of the second leg's data changes.
    const fd = openSync(d1.path, 'r+');
    try {
      writeSync(fd, randomBytes(4096), 0, 4096, dataOffset * 512 + 8192);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    await t.dm.message(name, raidMessages.check());
    expect(await inSync(t, name)).to.equal(true);
    const { mismatchCount } = await statusOf(t, name);
    // md counts the sectors of each resync window found to differ (128 here), never the windows.
    expect(mismatchCount).to.be.at.least(8);
    expect(mismatchCount % 8).to.equal(0);
  });

  it('a throttled raid5 reports its initial resync under way, then in sync once unthrottled', async () => {
    const legs = [];
    for (let i = 0; i < 3; i++) legs.push({ metadata: (await t.fx.loop(2048)).dev, data: (await t.fx.loop(16384)).dev });
    const slow = targets.raid({ raidType: 'raid5_ls', chunkSize: 64, devices: legs, maxRecoveryRate: 64, stripeCache: 256 });
    const table = new Table([{ start: 0, length: 16384, target: slow }]);
    const name = devName('raid5');
    await t.dm.create(name, { table });
    expect((await t.dm.table(name))?.equals(table)).to.equal(true);
    expect(dmsetup('table', name).trimEnd()).to.equal(table.toString());
    expect(await eventually(async () => {
      const s = await statusOf(t, name);
      return s.syncAction === 'resync' && s.syncRatio.used < s.syncRatio.total && s.devices.every((d) => d === 'out-of-sync');
    })).to.equal(true);
    expect((await statusOf(t, name)).syncRatio.total).to.equal(8192);
    // The same array without the throttle (a reload: load, suspend, resume) finishes its resync.
    await t.dm.reload(name, new Table([{ start: 0, length: 16384, target: targets.raid({ raidType: 'raid5_ls', chunkSize: 64, devices: legs }) }]));
    expect(await inSync(t, name)).to.equal(true);
    expect((await statusOf(t, name)).devices).to.deep.equal(['in-sync', 'in-sync', 'in-sync']);
  });

  it('a degraded raid5 with a missing leg (-) works and reports the leg missing', async () => {
    const [a, b] = [await t.fx.loop(16384), await t.fx.loop(16384)];
    const target = targets.raid({ raidType: 'raid5_ls', chunkSize: 64, devices: [{ data: a.dev }, { data: b.dev }, { data: null }] });
    const table = new Table([{ start: 0, length: 16384, target }]);
    const name = devName('raid5-degraded');
    await t.dm.create(name, { table });
    expect((await t.dm.table(name))?.equals(table)).to.equal(true);
    expect(dmsetup('table', name).trimEnd()).to.equal(table.toString());
    const s = await statusOf(t, name);
    expect(s.devices).to.deep.equal(['in-sync', 'in-sync', 'missing']);
  });
});
