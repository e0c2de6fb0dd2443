import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, openSync } from 'node:fs';
import { DmError, Mirror, Table, targets, type MirrorState } from '../../../ts/index';
import { TestContext, devName, dmsetup, rejection } from '../helpers';
import { readBack, writeThrough } from './block-io';
import { thrownBy } from './kit';

describe('Mirror in the kernel', () => {
  const t = TestContext.perTest();

  it('a mirror with a disk log resyncs its legs, waitForSync ends on the kernel event in sync, dmsetup agrees, and data written is on both legs', async () => {
    const [a, b, log] = [await t.fx.loop(8192), await t.fx.loop(8192 + 1024), await t.fx.loop(64)];
    // Different data on the legs, so that the resync has something to copy.
    writeThrough(a.path, Buffer.alloc(8192 * 512, 0x11), 0);
    writeThrough(b.path, Buffer.alloc(8192 * 512, 0x22), 1024 * 512);
    const name = devName('mirror');
    const m = await Mirror.create(t.dm, name, { size: 8192, log: { type: 'disk', device: log.dev, regionSize: 1024, sync: 'sync' }, legs: [{ device: a.dev, offset: 0 }, { device: b.dev, offset: 1024 }] });
    expect(m.target.log).to.deep.equal({ type: 'disk', device: log.devString, regionSize: 1024, sync: 'sync' });
    expect(m.target.legs).to.deep.equal([{ device: a.devString, offset: 0 }, { device: b.devString, offset: 1024 }]);
    expect(dmsetup('table', name).trimEnd()).to.equal(`0 8192 mirror ${m.target.params}`);
    const seen: MirrorState[] = [];
    const s = await m.waitForSync({ timeout: 30000, onProgress: (x) => seen.push(x), progressInterval: 100 });
    // Progress is reported only while out of sync; the end came with the kernel's event.
    expect(seen.every((x) => !x.inSync && x.regions.used < x.regions.total)).to.equal(true);
    expect((await t.dm.info(name)).eventNr).to.be.greaterThan(m.info.eventNr);
    expect(s).to.deep.include({ inSync: true, progress: 1 });
    expect(s.regions).to.deep.equal({ used: 8, total: 8 });
    expect(s.legs).to.deep.equal([{ device: a.devString, health: 'alive' }, { device: b.devString, health: 'alive' }]);
    expect(s.log).to.deep.equal({ type: 'disk', device: log.devString, health: 'alive' });
    expect(dmsetup('status', name).trimEnd()).to.equal(`0 8192 mirror ${s.status.raw}`);
    // The resync copied the first leg over the second.
    expect(readBack(b.file, 4096, 1024 * 512 + 7 * 1024 * 512).every((x) => x === 0x11)).to.equal(true);

    const data = randomBytes(32 * 1024);
    writeThrough(m.info.path, data, 4096 * 512);
    expect(readBack(m.info.path, data.length, 4096 * 512).equals(data)).to.equal(true);
    expect(readBack(a.file, data.length, 4096 * 512).equals(data)).to.equal(true);
    expect(readBack(b.file, data.length, (1024 + 4096) * 512).equals(data)).to.equal(true);
    // The disk log keeps the record: the same table again starts in sync, with nothing to copy.
    await m.remove();
    const again = await Mirror.create(t.dm, name, { size: 8192, log: { type: 'disk', device: log.dev, regionSize: 1024 }, legs: [{ device: a.dev, offset: 0 }, { device: b.dev, offset: 1024 }] });
    expect((await again.waitForSync({ timeout: 10000 })).regions).to.deep.equal({ used: 8, total: 8 });
  });

  it('a leg too small for the size fails the create with EINVAL and no device is left behind', async () => {
    const [a, b] = [await t.fx.loop(4096), await t.fx.loop(2048)];
    const name = devName('mirror-short');
    const e = await rejection(Mirror.create(t.dm, name, { size: 4096, log: { type: 'core', regionSize: 512 }, legs: [{ device: a.dev, offset: 0 }, { device: b.dev, offset: 0 }] }));
    expect(e.code).to.equal('EINVAL');
    expect((await t.dm.listDevices()).some((d) => d.name === name)).to.equal(false);
  });

  it('a leg held open exclusively by another opener fails the create with EBUSY, and no device is left behind', async () => {
    const [a, b] = [await t.fx.loop(2048), await t.fx.loop(2048)];
    const name = devName('mirror-busy');
    // O_EXCL on a block device claims it: the kernel's open of the leg at table load then fails.
    const held = openSync(b.path, constants.O_RDONLY | constants.O_EXCL);
    try {
      const e = await rejection(Mirror.create(t.dm, name, { size: 2048, log: { type: 'core', regionSize: 512 }, legs: [{ device: a.dev, offset: 0 }, { device: b.dev, offset: 0 }] }));
      expect(e.code).to.equal('EBUSY');
      expect(e.command).to.equal('DM_TABLE_LOAD');
    } finally {
      closeSync(held);
    }
    expect((await t.dm.listDevices()).some((d) => d.name === name)).to.equal(false);
    // Released, the same legs make the mirror.
    const m = await Mirror.create(t.dm, name, { size: 2048, log: { type: 'core', regionSize: 512 }, legs: [{ device: a.dev, offset: 0 }, { device: b.dev, offset: 0 }] });
    expect((await m.waitForSync({ timeout: 10000 })).inSync).to.equal(true);
  });

  it('open refuses a device that is not a mirror, and bad options are refused before any ioctl', async () => {
    const a = await t.fx.loop(2048);
    const name = devName('not-mirror');
    await t.dm.create(name, { table: new Table([{ start: 0, length: 2048, target: targets.linear({ device: a.dev, offset: 0 }) }]) });
    let caught: unknown;
    try {
      await Mirror.open(t.dm, name);
    } catch (e) {
      caught = e;
    }
    expect(caught).to.be.instanceOf(TypeError);
    expect((caught as Error).message).to.match(/Expected a device with one mirror row for .* but received linear/);
    const calls = t.dm.ioctlStats.commands;
    for (const [options, message] of [
      [{ size: 2048, log: { type: 'core', regionSize: 500 }, legs: [{ device: a.dev, offset: 0 }, { device: a.dev, offset: 0 }] }, /power of two/],
      [{ size: 2048, log: { type: 'core', regionSize: 512 }, legs: [{ device: a.dev, offset: 0 }] }, /mirror.legs/],
      [{ size: 2048, log: { type: 'core', regionSize: 512 }, legs: [], extra: 1 }, /unknown option "extra"/],
    ] as const) {
      const err = await thrownBy(() => Mirror.create(t.dm, devName('mirror-bad'), options as unknown as Parameters<typeof Mirror.create>[2]));
      expect(err).to.be.instanceOf(Error);
      expect(err).to.not.be.instanceOf(DmError);
      expect((err as Error).message).to.match(message);
    }
    expect(t.dm.ioctlStats.commands).to.equal(calls);
  });
});
