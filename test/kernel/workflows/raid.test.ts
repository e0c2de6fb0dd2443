import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { DmError, Raid, type RaidState } from '../../../ts/index';
import { PREFIX, TestContext, devName, dmsetup, rejection } from '../helpers';
import { readBack, stamped, writeThrough } from './block-io';
import { root } from './kit';

/** The name is free: no device of ours is left by that name. */
async function gone(t: TestContext, name: string): Promise<boolean> {
  return !(await t.dm.listDevices()).some((d) => d.name === name);
}

describe('Raid in the kernel', () => {
  const t = TestContext.perTest();

  it('a raid1 over metadata legs resyncs in the background; waitForSync reports the progress from the status and ends on the kernel event, in sync with a check finding no mismatch, and data is on both legs', async () => {
    const [m0, d0, m1, d1] = [await t.fx.loop(1024), await t.fx.loop(8192), await t.fx.loop(1024), await t.fx.loop(8192)];
    const name = devName('raid1');
    // Throttled, so that the resync of 4 MiB takes a few seconds and shows its progress.
    const r = await Raid.create(t.dm, name, { size: 8192, raidType: 'raid1', devices: [{ metadata: m0.dev, data: d0.dev }, { metadata: m1.dev, data: d1.dev }], regionSize: 1024, maxRecoveryRate: 1024 });
    expect(r.target.devices).to.deep.equal([{ metadata: m0.devString, data: d0.devString }, { metadata: m1.devString, data: d1.devString }]);
    expect(r.size).to.equal(8192);
    expect(dmsetup('table', name).trimEnd()).to.equal(`0 8192 raid ${r.target.params}`);
    const seen: RaidState[] = [];
    const done = await r.waitForSync({ onProgress: (s) => seen.push(s), progressInterval: 200, timeout: 30000 });
    expect(seen.length).to.be.greaterThan(1);
    // Before md's sync thread starts, the status can say idle with both legs still out of sync.
    expect(seen.every((s) => !s.inSync && s.devices.every((d) => d === 'out-of-sync'))).to.equal(true);
    expect(seen.some((s) => s.syncAction === 'resync' && s.syncRatio.used > 0 && s.syncRatio.used < s.syncRatio.total)).to.equal(true);
    for (let i = 1; i < seen.length; i++) expect(seen[i]?.syncRatio.used).to.be.at.least(seen[i - 1]?.syncRatio.used ?? 0);
    expect(done).to.deep.include({ inSync: true, degraded: false, syncAction: 'idle', devices: ['in-sync', 'in-sync'], progress: 1 });
    expect(done.syncRatio).to.deep.equal({ used: 8192, total: 8192 });
    expect(dmsetup('status', name).trimEnd()).to.equal(`0 8192 raid ${done.status.raw}`);

    const data = randomBytes(64 * 1024);
    writeThrough(r.info.path, data, 1024 * 512);
    expect(readBack(r.info.path, data.length, 1024 * 512).equals(data)).to.equal(true);
    const at = done.status.dataOffset * 512 + 1024 * 512;
    expect(readBack(d0.file, data.length, at).equals(data)).to.equal(true);
    expect(readBack(d1.file, data.length, at).equals(data)).to.equal(true);

    const checked = await r.check({ timeout: 30000 });
    expect(checked).to.deep.include({ inSync: true, mismatchCount: 0, syncAction: 'idle' });
    expect((await t.dm.info(name)).suspended).to.equal(false);
    await r.remove();
    expect(await gone(t, name)).to.equal(true);
  });

  it('a raid5 of three legs gets in sync, a pattern written through it reads back, and its parity checks clean', async () => {
    const legs = [];
    for (let i = 0; i < 3; i++) legs.push({ metadata: (await t.fx.loop(1024)).dev, data: (await t.fx.loop(4096)).dev });
    const name = devName('raid5');
    const r = await Raid.create(t.dm, name, { size: 6144, raidType: 'raid5_ls', chunkSize: 64, devices: legs });
    expect(r.target.raidType).to.equal('raid5_ls');
    expect(dmsetup('table', name).trimEnd()).to.equal(`0 6144 raid ${r.target.params}`);
    const s = await r.waitForSync({ timeout: 30000 });
    expect(s).to.deep.include({ inSync: true, degraded: false, devices: ['in-sync', 'in-sync', 'in-sync'] });
    const data = stamped(6144, 5);
    writeThrough(r.info.path, data, 0);
    expect(readBack(r.info.path, data.length, 0).equals(data)).to.equal(true);
    const checked = await r.check({ timeout: 30000 });
    expect(checked.mismatchCount).to.equal(0);
    expect(dmsetup('status', name).trimEnd()).to.equal(`0 6144 raid ${checked.status.raw}`);
  });

  it('a raid4 created with its last leg missing and no metadata devices runs degraded, and data written reads back with the leg missing: on the data legs present chunk by chunk, the chunks of the missing leg in the parity on the first leg', async () => {
    const disks = [await t.fx.loop(2048), await t.fx.loop(2048), await t.fx.loop(2048)];
    const name = devName('raid4');
    const r = await Raid.create(t.dm, name, { size: 6144, raidType: 'raid4', chunkSize: 64, devices: [...disks.map((d) => ({ data: d.dev })), { data: null }] });
    expect(dmsetup('table', name).trimEnd()).to.equal(`0 6144 raid raid4 1 64 4 - ${disks[0]?.devString} - ${disks[1]?.devString} - ${disks[2]?.devString} - -`);
    const s = await r.waitForSync({ timeout: 10000 });
    expect(s).to.deep.include({ raidType: 'raid4', inSync: true, degraded: true, devices: ['in-sync', 'in-sync', 'in-sync', 'missing'] });
    expect(s.status.dataOffset).to.equal(0);
    expect(dmsetup('status', name).trimEnd()).to.equal(`0 6144 raid ${s.status.raw}`);

    const data = stamped(6144, 4);
    writeThrough(r.info.path, data, 0);
    expect(readBack(r.info.path, data.length, 0).equals(data)).to.equal(true);
    // The kernel's raid4 keeps its parity on the first leg (md's ALGORITHM_PARITY_0), its doc's
    // "last parity disk" notwithstanding: chunk c is chunk ⌊c/3⌋ of data leg 1 + c mod 3, and the
    // chunks of the missing leg 3 live on only as parity, the XOR of each stripe's three chunks.
    const CHUNK = 64 * 512;
    const chunkOf = (c: number): Buffer => data.subarray(c * CHUNK, (c + 1) * CHUNK);
    const legChunk = (leg: number, stripe: number): Buffer => readBack(disks[leg]?.file ?? '', CHUNK, stripe * CHUNK);
    for (const stripe of [0, 1, 5, 31]) {
      expect(legChunk(1, stripe).equals(chunkOf(3 * stripe)), `chunk ${3 * stripe}`).to.equal(true);
      expect(legChunk(2, stripe).equals(chunkOf(3 * stripe + 1)), `chunk ${3 * stripe + 1}`).to.equal(true);
      const parity = legChunk(0, stripe);
      const rebuilt = Buffer.alloc(CHUNK);
      const [x, y] = [chunkOf(3 * stripe), chunkOf(3 * stripe + 1)];
      for (let i = 0; i < CHUNK; i++) rebuilt[i] = (parity[i] ?? 0) ^ (x[i] ?? 0) ^ (y[i] ?? 0);
      expect(rebuilt.equals(chunkOf(3 * stripe + 2)), `chunk ${3 * stripe + 2} from parity`).to.equal(true);
    }
  });

  it('a raid4 with a missing leg over fresh metadata devices is refused by the kernel, and no device is left behind', async () => {
    const legs = [];
    for (let i = 0; i < 3; i++) legs.push({ metadata: (await t.fx.loop(1024)).dev, data: (await t.fx.loop(2048)).dev });
    const name = devName('raid4-refused');
    const e = await rejection(Raid.create(t.dm, name, { size: 6144, raidType: 'raid4', chunkSize: 64, devices: [...legs, { data: null }] }));
    expect(e).to.be.instanceOf(DmError);
    expect(e.code).to.equal('EINVAL');
    expect(await gone(t, name)).to.equal(true);
  });

  it('waitForSync is bounded: a throttled resync fails the wait with ETIMEDOUT, an abort ends it with the reason, and the array is left running', async () => {
    const [d0, d1] = [await t.fx.loop(8192), await t.fx.loop(8192)];
    const name = devName('raid1-slow');
    const r = await Raid.create(t.dm, name, { size: 8192, raidType: 'raid1', devices: [{ metadata: (await t.fx.loop(1024)).dev, data: d0.dev }, { metadata: (await t.fx.loop(1024)).dev, data: d1.dev }], maxRecoveryRate: 16 });
    const started = Date.now();
    const late = await rejection(r.waitForSync({ timeout: 400 }));
    expect(late.code).to.equal('ETIMEDOUT');
    expect(late.message).to.match(/the sync did not end within 400 ms \(last: (idle|resync) \d+\/8192, legs out-of-sync out-of-sync\)/);
    expect(Date.now() - started).to.be.below(5000);
    const controller = new AbortController();
    const reason = new Error('stop waiting');
    const waiting = r.waitForSync({ signal: controller.signal });
    setTimeout(() => controller.abort(reason), 100);
    let caught: unknown;
    try {
      await waiting;
    } catch (err) {
      caught = err;
    }
    expect(caught).to.equal(reason);
    const s = await r.state();
    expect(s.inSync).to.equal(false);
    expect(s.devices).to.deep.equal(['out-of-sync', 'out-of-sync']);
    expect((await t.dm.info(name)).suspended).to.equal(false);
  });

  it('bad options are refused before any ioctl: unknown keys, a missing chunk size, a size of 0, a bad wait option', async () => {
    const [a, b] = [await t.fx.loop(2048), await t.fx.loop(2048)];
    const name = devName('raid-bad');
    const devices = [{ data: a.dev }, { data: b.dev }, { data: null }];
    const calls = t.dm.ioctlStats.commands;
    const bad: [unknown, RegExp][] = [
      [{ size: 4096, raidType: 'raid5_ls', devices }, /Expected a chunk size for raid5_ls for raid.chunkSize/],
      [{ size: 0, raidType: 'raid1', devices: devices.slice(0, 2) }, /Expected a size of at least 1 sector for options.size/],
      [{ size: 4096, raidType: 'raid1', devices: devices.slice(0, 2), colour: 'red' }, /unknown option "colour"/],
      [{ size: 4096, raidType: 'raid6_zr', chunkSize: 64, devices }, /raid.devices/],
    ];
    for (const [options, message] of bad) {
      let caught: unknown;
      try {
        await Raid.create(t.dm, name, options as Parameters<typeof Raid.create>[2]);
      } catch (e) {
        caught = e;
      }
      expect(caught, String(message)).to.be.instanceOf(Error);
      expect(caught).to.not.be.instanceOf(DmError);
      expect((caught as Error).message).to.match(message);
    }
    expect(t.dm.ioctlStats.commands).to.equal(calls);
    const r = await Raid.create(t.dm, name, { size: 2048, raidType: 'raid1', devices: devices.slice(0, 2) });
    const before = t.dm.ioctlStats.commands;
    let caught: unknown;
    try {
      await r.waitForSync({ progressInterval: 10 });
    } catch (e) {
      caught = e;
    }
    expect((caught as Error).message).to.match(/Expected no value without onProgress for options.progressInterval/);
    expect(t.dm.ioctlStats.commands).to.equal(before);
  });

  it('examples/raid.js runs: concatenation and its growth, a striped set, a mirror with a disk log, a raid5 and a degraded raid4', () => {
    const env = { ...process.env, DEVMAPPER_EXAMPLE_PREFIX: `${PREFIX}example-` };
    const r = spawnSync(process.execPath, [join(root, 'examples', 'raid.js')], { cwd: root, env, encoding: 'utf8', timeout: 120000 });
    expect(r.status, `${r.stdout}${r.stderr}`).to.equal(0);
    expect(r.stdout).to.match(/^linear: 2 segments, 6144 sectors$/m);
    expect(r.stdout).to.match(/^linear grown: 8192 sectors, blockDeviceSize 4194304$/m);
    expect(r.stdout).to.match(/^striped: sector 72 is on stripe 1 at sector 24, read back "stripe-1"$/m);
    expect(r.stdout).to.match(/^mirror: in sync 8\/8 regions, both legs hold "mirrored"$/m);
    expect(r.stdout).to.match(/^raid5: idle 1024\/1024, AAA, mismatches 0$/m);
    expect(r.stdout).to.match(/^raid4 degraded: in-sync in-sync in-sync missing, read back "degraded but whole"$/m);
    expect(r.stdout).to.match(/^removed 5 devices$/m);
  });
});
