import { expect } from 'chai';
import { truncateSync } from 'node:fs';
import { DmError, Linear, blockDeviceSize, resizeLinear } from '../../../ts/index';
import { TestContext, devName, dmsetup, rejection } from '../helpers';
import { readBack, stamped, writeThrough } from './block-io';
import { thrownBy } from './kit';

describe('Linear in the kernel', () => {
  const t = TestContext.perTest();

  it('two disks concatenated read back as two segments, dmsetup agrees, and data written across the seam lands on each disk', async () => {
    const [a, b] = [await t.fx.loop(2048), await t.fx.loop(4096)];
    const name = devName('concat');
    const l = await Linear.create(t.dm, name, { segments: [{ device: a.dev, length: 2048 }, { device: b.dev, offset: 1024, length: 3072 }] });
    expect(l.segments).to.deep.equal([
      { start: 0, length: 2048, device: a.devString, offset: 0 },
      { start: 2048, length: 3072, device: b.devString, offset: 1024 },
    ]);
    expect(l.size).to.equal(5120);
    expect(dmsetup('table', name)).to.equal(`0 2048 linear ${a.devString} 0\n2048 3072 linear ${b.devString} 1024\n`);
    expect(await blockDeviceSize(l.info.path)).to.equal(5120 * 512);
    const data = stamped(64, 7, 2016);
    writeThrough(l.info.path, data, 2016 * 512);
    expect(readBack(l.info.path, data.length, 2016 * 512).equals(data)).to.equal(true);
    expect(readBack(a.file, 32 * 512, 2016 * 512).equals(data.subarray(0, 32 * 512))).to.equal(true);
    expect(readBack(b.file, 32 * 512, 1024 * 512).equals(data.subarray(32 * 512))).to.equal(true);
  });

  it('resize: the loop file grown, its capacity refreshed, the identity mapping reloaded larger; the new size shows in the table and the block device, and the new space holds data', async () => {
    const disk = await t.fx.loop(2048);
    const name = devName('grow');
    const l = await Linear.create(t.dm, name, { segments: [{ device: disk.dev, length: 2048 }] });
    const old = stamped(8, 1, 0);
    writeThrough(l.info.path, old, 0);
    truncateSync(disk.file, 6144 * 512);
    await disk.refreshCapacity();
    expect(await disk.size()).to.equal(6144 * 512);
    const segments = await l.resize(6144);
    expect(segments).to.deep.equal([{ start: 0, length: 6144, device: disk.devString, offset: 0 }]);
    expect(l.size).to.equal(6144);
    expect(dmsetup('table', name)).to.equal(`0 6144 linear ${disk.devString} 0\n`);
    expect(await blockDeviceSize(l.info.path)).to.equal(6144 * 512);
    const info = await t.dm.info(name);
    expect(info).to.deep.include({ suspended: false, inactiveTable: false });
    const fresh = stamped(16, 2, 6000);
    writeThrough(l.info.path, fresh, 6000 * 512);
    expect(readBack(disk.file, fresh.length, 6000 * 512).equals(fresh)).to.equal(true);
    expect(readBack(l.info.path, old.length, 0).equals(old)).to.equal(true);
    // Shrunk again by the free function, and grown with a second disk appended.
    expect(await resizeLinear(t.dm, name, 4096)).to.deep.equal([{ start: 0, length: 4096, device: disk.devString, offset: 0 }]);
    const other = await t.fx.loop(1024);
    await l.append({ device: other.dev, length: 1024 });
    expect(dmsetup('table', name)).to.equal(`0 4096 linear ${disk.devString} 0\n4096 1024 linear ${other.devString} 0\n`);
    expect(await blockDeviceSize(l.info.path)).to.equal(5120 * 512);
  });

  it('a resize past the end of the disk is refused by the kernel (EINVAL) and the device runs on its old table, not suspended; a shrink that empties the last segment is refused before any ioctl', async () => {
    const [a, b] = [await t.fx.loop(1024), await t.fx.loop(1024)];
    const name = devName('grow-refused');
    const l = await Linear.create(t.dm, name, { segments: [{ device: a.dev, length: 1024 }, { device: b.dev, length: 1024 }] });
    const e = await rejection(l.resize(4096));
    expect(e.code).to.equal('EINVAL');
    expect(await t.dm.info(name)).to.deep.include({ suspended: false, inactiveTable: false, activeTable: true });
    expect(dmsetup('table', name)).to.equal(`0 1024 linear ${a.devString} 0\n1024 1024 linear ${b.devString} 0\n`);
    expect(dmsetup('info', '-c', '--noheadings', '-o', 'attr', name).trim()).to.match(/^L--w/);
    expect(await blockDeviceSize(l.info.path)).to.equal(2048 * 512);
    let caught: unknown;
    try {
      await l.resize(1024);
    } catch (err) {
      caught = err;
    }
    expect(caught).to.be.instanceOf(RangeError);
    expect((caught as Error).message).to.match(/Expected a size above 1024 \(the start of the last segment\) for size but received number 1024/);
    expect((await l.refresh()).map((s) => s.length)).to.deep.equal([1024, 1024]);
    const calls = t.dm.ioctlStats.commands;
    for (const bad of [0, 1.5, -1]) {
      const err = await thrownBy(() => resizeLinear(t.dm, name, bad));
      expect(err).to.be.instanceOf(RangeError);
    }
    expect(t.dm.ioctlStats.commands).to.equal(calls);
  });

  it('a segment past the end of its disk fails the create with EINVAL and leaves no device; bad segments are refused before any ioctl', async () => {
    const a = await t.fx.loop(1024);
    const name = devName('concat-short');
    const e = await rejection(Linear.create(t.dm, name, { segments: [{ device: a.dev, length: 512 }, { device: a.dev, offset: 512, length: 1024 }] }));
    expect(e).to.be.instanceOf(DmError);
    expect(e.code).to.equal('EINVAL');
    expect((await t.dm.listDevices()).some((d) => d.name === name)).to.equal(false);
    const calls = t.dm.ioctlStats.commands;
    for (const [segments, message] of [
      [[], /Expected a non-empty array of segments for options.segments/],
      [[{ device: a.dev, length: 0 }], /Expected a length of at least 1 sector for options.segments\[0\].length/],
      [[{ device: a.dev, length: 8, size: 8 }], /unknown option "size"/],
      [[{ device: 'no-such-device', length: 8 }], /linear.device/],
    ] as const) {
      const err = await thrownBy(() => Linear.create(t.dm, name, { segments: segments as unknown as [] }));
      expect(err, String(message)).to.be.instanceOf(Error);
      expect((err as Error).message).to.match(message);
    }
    expect(t.dm.ioctlStats.commands).to.equal(calls);
  });
});
