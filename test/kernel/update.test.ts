import { expect } from 'chai';
import { Table, targets } from '../../ts/index';
import { TestContext, devName, dmsetup } from './helpers';

describe('update: a reload made from the live table', () => {
  const t = TestContext.perTest();

  it('grows a device in one call: the change sees the live table, the kernel runs the new one', async () => {
    const loop = await t.fx.loop(4096);
    const name = devName('upd');
    await t.dm.create(name, { table: new Table([{ start: 0, length: 1024, target: targets.linear({ device: loop.dev, offset: 0 }) }]) });
    let seen: string | undefined;
    const info = await t.dm.update(name, (table) => {
      seen = table?.toString();
      if (table === undefined) throw new Error('no live table');
      return table.grow(1024).append(8, targets.zero());
    });
    expect(seen).to.equal(`0 1024 linear ${loop.devString} 0`);
    expect(info.suspended).to.equal(false);
    expect(dmsetup('table', name).trimEnd()).to.equal(`0 2048 linear ${loop.devString} 0\n2048 8 zero`);
  });

  it('a change that throws, or returns something that is not a Table, changes nothing', async () => {
    const name = devName('upd-bad');
    const table = new Table([{ start: 0, length: 8, target: targets.zero() }]);
    await t.dm.create(name, { table });
    const boom = new Error('the change refused');
    const e1: unknown = await t.dm.update(name, () => {
      throw boom;
    }).catch((e: unknown) => e);
    expect(e1).to.equal(boom);
    const e2: unknown = await t.dm.update(name, () => 'not a table' as never).catch((e: unknown) => e);
    expect(e2).to.be.instanceOf(TypeError);
    expect(String(e2)).to.match(/Expected a Table for the table change returned/);
    const info = await t.dm.info(name);
    expect(info).to.include({ suspended: false, inactiveTable: false });
    expect((await t.dm.table(name))?.equals(table)).to.equal(true);
    const e3: unknown = await t.dm.update(name, (x) => x ?? table, { noFlush: true, typo: true } as never).catch((e: unknown) => e);
    expect(e3).to.be.instanceOf(TypeError);
  });

  it('updates of one device are serialized: each change sees the table the previous one made', async () => {
    const name = devName('upd-race');
    await t.dm.create(name, { table: new Table([{ start: 0, length: 8, target: targets.zero() }]) });
    const sizes: number[] = [];
    await Promise.all(
      Array.from({ length: 10 }, () =>
        t.dm.update(name, (table) => {
          if (table === undefined) throw new Error('no live table');
          sizes.push(table.size);
          return table.grow(8);
        }),
      ),
    );
    expect(sizes).to.deep.equal([8, 16, 24, 32, 40, 48, 56, 64, 72, 80]);
    expect((await t.dm.table(name))?.size).to.equal(88);
  });
});
