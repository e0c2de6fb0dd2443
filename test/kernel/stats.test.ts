import { expect } from 'chai';
import { closeSync, openSync, writeSync } from 'node:fs';
import { Table, parseStatsList, parseStatsPrint, parseStatsRegionId, statsMessages, targets } from '../../ts/index';
import { TestContext, devName, dmsetup } from './helpers';

describe('dm-stats in the kernel', () => {
  const t = TestContext.perTest();

  it('a region with areas and a histogram counts writes as the kernel reports them, and lists, clears and deletes as dmsetup sees', async () => {
    const loop = await t.fx.loop(2048);
    const name = devName('stats');
    const info = await t.dm.create(name, { table: new Table([{ start: 0, length: 2048, target: targets.linear({ device: loop.dev, offset: 0 }) }]) });
    const id = parseStatsRegionId(await t.dm.message(name, statsMessages.create({ step: { areas: 2 }, histogram: [1, 1000], programId: 'devmapper', auxData: 'two words' })));
    const listed = parseStatsList(await t.dm.message(name, statsMessages.list('devmapper')));
    expect(listed).to.deep.equal([{ regionId: id, start: 0, length: 2048, areaSize: 1024, programId: 'devmapper', auxData: 'two words', preciseTimestamps: false, histogram: [1, 1000] }]);
    expect(dmsetup('message', name, '0', '@stats_list').trim()).to.equal(`${id}: 0+2048 1024 devmapper two words histogram:1,1000`);
    // 8 KiB written to the second area only.
    const fd = openSync(info.path, 'r+');
    try {
      writeSync(fd, Buffer.alloc(8192, 1), 0, 8192, 1024 * 512);
    } finally {
      closeSync(fd);
    }
    const [first, second] = parseStatsPrint(await t.dm.message(name, statsMessages.print(id)));
    expect(first).to.include({ start: 0, length: 1024, sectorsWritten: 0n, writes: 0n });
    expect(second).to.include({ start: 1024, length: 1024, sectorsWritten: 16n });
    expect((second?.writes ?? 0n) > 0n).to.equal(true);
    expect(second?.histogram).to.have.length(3);
    expect((second?.histogram ?? []).reduce((a, b) => a + b, 0n)).to.equal(second?.writes);
    const cleared = parseStatsPrint(await t.dm.message(name, statsMessages.printClear(id, { start: 1, count: 1 })));
    expect(cleared).to.have.length(1);
    expect(cleared[0]?.sectorsWritten).to.equal(16n);
    expect(parseStatsPrint(await t.dm.message(name, statsMessages.print(id)))[1]?.sectorsWritten).to.equal(0n);
    await t.dm.message(name, statsMessages.setAux(id, 'group:a'));
    expect(parseStatsList(await t.dm.message(name, statsMessages.list()))[0]?.auxData).to.equal('group:a');
    await t.dm.message(name, statsMessages.delete(id));
    expect(parseStatsList(await t.dm.message(name, statsMessages.list()))).to.deep.equal([]);
  });
});
