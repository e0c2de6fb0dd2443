import { expect } from 'chai';
import { DmError, Table, targets } from '../../../ts/index';
import { waitForState } from '../../../ts/workflows/one-row';
import { TestContext, devName, rejection } from '../helpers';

/**
 * The wait that Mirror, Raid and `devmapper wait-sync` share reads a state by name: a state
 * read after the name has passed to another device must not end the wait as if it were the
 * device's own.
 */
describe('the sync wait of the one-row recipes in the kernel', () => {
  const t = TestContext.perTest();
  const zero = new Table([{ start: 0, length: 8, target: targets.zero() }]);

  /**
   * Fills every free device-mapper minor below `minor` with a device: the kernel gives a new
   * device the lowest free minor, so that the next one made after `minor` is freed gets it.
   */
  async function fillBelow(minor: number): Promise<void> {
    const used = (await t.dm.listDevices()).filter((d) => d.dev.minor < minor).length;
    for (let k = used; k < minor; k++) await t.dm.create(devName('wait-hole'), { table: zero });
  }

  it('a state read after the device was removed and another made under its name (another number) ends the wait with ESTALE, not done', async () => {
    const name = devName('wait-swap');
    const filler = devName('wait-fill');
    const info = await t.dm.create(name, { table: zero });
    await fillBelow(info.dev.minor);
    let reads = 0;
    const read = async (): Promise<string> => {
      reads++;
      // The number is taken by another device first: the name's new device gets another.
      await t.dm.remove(name);
      await t.dm.create(filler, { table: zero });
      await t.dm.create(name, { table: zero });
      return 'done';
    };
    const e = await rejection(waitForState(t.dm, name, name, info.dev, read, (s) => s === 'done', (s) => s, { timeout: 5000 }, 'the test'));
    expect(reads).to.equal(1);
    expect(e).to.be.instanceOf(DmError).and.include({ code: 'ESTALE', device: name });
    const now = await t.dm.info(name);
    expect(now.dev).to.not.deep.equal(info.dev);
    expect((await t.dm.info(filler)).dev).to.deep.equal(info.dev);
  });

  it('the same under the same number: the event counter that went back gives it away (ESTALE)', async () => {
    const loop = await t.fx.loop(2048);
    const name = devName('wait-renum');
    const multipath = new Table([{ start: 0, length: 2048, type: 'multipath', params: `0 0 1 1 round-robin 0 1 1 ${loop.devString} 1` }]);
    const first = await t.dm.create(name, { table: multipath });
    await fillBelow(first.dev.minor);
    // A failed path raises an event: the counter moves past 0.
    await t.dm.message(name, `fail_path ${loop.devString}`);
    const before = await t.dm.waitEvent(name, first.eventNr);
    expect(before.eventNr).to.be.greaterThan(0);
    const read = async (): Promise<string> => {
      await t.dm.remove(name);
      const again = await t.dm.create(name, { table: zero });
      // The kernel gave the new device the number just freed.
      expect(again.dev).to.deep.equal(first.dev);
      expect(again.eventNr).to.equal(0);
      return 'done';
    };
    const e = await rejection(waitForState(t.dm, name, name, first.dev, read, (s) => s === 'done', (s) => s, { timeout: 5000 }, 'the test'));
    expect(e).to.be.instanceOf(DmError).and.include({ code: 'ESTALE', device: name });
    expect(e.message).to.match(/event counter went back/);
  });

  it('a state read of the device it means ends the wait, on the kernel event when the first read was not done', async () => {
    const loop = await t.fx.loop(2048);
    const name = devName('wait-same');
    const multipath = new Table([{ start: 0, length: 2048, type: 'multipath', params: `0 0 1 1 round-robin 0 1 1 ${loop.devString} 1` }]);
    const info = await t.dm.create(name, { table: multipath });
    let reads = 0;
    const read = async (): Promise<string> => {
      reads++;
      const raw = (await t.dm.status(name))[0]?.status.raw ?? '';
      if (reads === 1) await t.dm.message(name, `fail_path ${loop.devString}`);
      return / F /.test(raw) ? 'failed' : 'active';
    };
    expect(await waitForState(t.dm, name, name, info.dev, read, (s) => s === 'failed', (s) => s, { timeout: 5000 }, 'the test')).to.equal('failed');
    expect(reads).to.equal(2);
  });
});
