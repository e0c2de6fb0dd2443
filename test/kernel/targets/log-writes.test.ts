import { expect } from 'chai';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { Table, logWritesMessages, targets, type LogWritesStatus } from '../../../ts/index';
import { TestContext, devName, dmsetup, eventually } from '../helpers';

describe('log-writes in the kernel', () => {
  const t = TestContext.perTest();

  async function statusOf(name: string): Promise<LogWritesStatus> {
    const [row] = await t.dm.status(name);
    if (row === undefined || !row.status.known || row.status.type !== 'log-writes') throw new Error('no typed log-writes status');
    return row.status;
  }

  it('logs writes and marks: entries grow, dmsetup agrees with our table and status', async () => {
    const [dev, log] = [await t.fx.loop(2048), await t.fx.loop(4096)];
    const table = new Table([{ start: 0, length: 2048, target: targets.logWrites({ device: dev.dev, logDevice: log.dev }) }]);
    const name = devName('lw');
    const info = await t.dm.create(name, { table });
    expect((await t.dm.table(name))?.equals(table)).to.equal(true);
    expect(dmsetup('table', name).trimEnd()).to.equal(table.toString());
    expect(await statusOf(name)).to.deep.include({ loggedEntries: 0, loggingEnabled: true });
    const fd = openSync(info.path, 'r+');
    try {
      for (let i = 0; i < 4; i++) writeSync(fd, Buffer.alloc(4096, i + 1), 0, 4096, i * 4096);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    await t.dm.message(name, logWritesMessages.mark('four-writes'));
    let last: LogWritesStatus | undefined;
    expect(await eventually(async () => ((last = await statusOf(name)).loggedEntries >= 5))).to.equal(true);
    expect(last?.highestSector).to.be.greaterThan(0);
    expect(dmsetup('status', name).trimEnd()).to.equal(`0 2048 log-writes ${(await statusOf(name)).raw}`);
  });
});
