import { expect } from 'chai';
import { DmError, Striped, blockDeviceSize, stripeLocation } from '../../../ts/index';
import { TestContext, devName, dmsetup, rejection } from '../helpers';
import { readBack, stamped, writeThrough } from './block-io';

describe('Striped in the kernel', () => {
  const t = TestContext.perTest();

  it('a set of three stripes reads back as built, dmsetup agrees, and every chunk written lands on the backing file where the stripe math says', async () => {
    const disks = [await t.fx.loop(1024), await t.fx.loop(1024 + 128), await t.fx.loop(1024)];
    const offsets = [0, 128, 0];
    const name = devName('striped');
    const s = await Striped.create(t.dm, name, { size: 3072, chunkSize: 16, stripes: disks.map((d, i) => ({ device: d.dev, offset: offsets[i] ?? 0 })) });
    expect(s.size).to.equal(3072);
    expect(s.target.stripes).to.deep.equal(disks.map((d, i) => ({ device: d.devString, offset: offsets[i] })));
    expect(dmsetup('table', name).trimEnd()).to.equal(`0 3072 striped 3 16 ${disks.map((d, i) => `${d.devString} ${offsets[i]}`).join(' ')}`);
    expect(await blockDeviceSize(s.info.path)).to.equal(3072 * 512);

    const data = stamped(3072, 3);
    writeThrough(s.info.path, data, 0);
    expect(readBack(s.info.path, data.length, 0).equals(data)).to.equal(true);
    const files = new Map(disks.map((d) => [d.devString, d.file]));
    const perStripe = [0, 0, 0];
    for (let sector = 0; sector < 3072; sector += 5) {
      const at = s.locate(sector);
      const got = readBack(files.get(at.device) ?? '', 512, at.sector * 512);
      expect(got.readUInt32LE(0), `sector ${sector} on stripe ${at.stripe} at ${at.sector}`).to.equal(sector);
      perStripe[at.stripe] = (perStripe[at.stripe] ?? 0) + 1;
    }
    expect(perStripe.every((n) => n > 0)).to.equal(true);
    // The chunk math itself: chunk 4 (sectors 64..79) is the second chunk of stripe 1.
    expect(stripeLocation(s.target, 70)).to.deep.equal({ stripe: 1, device: disks[1]?.devString, sector: 128 + 16 + 6 });

    const st = await s.status();
    expect(st.stripes.map((x) => x.health)).to.deep.equal(['alive', 'alive', 'alive']);
    expect(dmsetup('status', name).trimEnd()).to.equal(`0 3072 striped ${st.raw}`);
    await s.remove();
    expect((await t.dm.listDevices()).some((d) => d.name === name)).to.equal(false);
  });

  it('a size that is not whole chunks per stripe is refused before any ioctl; a stripe too small fails with EINVAL and no device is left', async () => {
    const [a, b] = [await t.fx.loop(1024), await t.fx.loop(512)];
    const calls = t.dm.ioctlStats.commands;
    let caught: unknown;
    try {
      await Striped.create(t.dm, devName('striped-odd'), { size: 1000, chunkSize: 16, stripes: [{ device: a.dev, offset: 0 }, { device: b.dev, offset: 0 }] });
    } catch (e) {
      caught = e;
    }
    expect(caught).to.be.instanceOf(RangeError);
    expect((caught as Error).message).to.match(/Expected a length that divides into 2 stripes of whole 16-sector chunks/);
    expect(t.dm.ioctlStats.commands).to.equal(calls);

    const name = devName('striped-short');
    const e = await rejection(Striped.create(t.dm, name, { size: 2048, chunkSize: 16, stripes: [{ device: a.dev, offset: 0 }, { device: b.dev, offset: 0 }] }));
    expect(e).to.be.instanceOf(DmError);
    expect(e.code).to.equal('EINVAL');
    expect((await t.dm.listDevices()).some((d) => d.name === name)).to.equal(false);
  });
});
