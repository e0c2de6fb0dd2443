import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { Table } from '../../ts/index';
import { PREFIX, TestContext, devName } from './helpers';

// Compiled tests run from build/js/test/kernel; the fixture stays in the source tree.
const root = resolve(__dirname, '..', '..', '..', '..');
const fixture = join(root, 'test', 'kernel', 'fixtures', 'die-at-step.js');

function dieAt(mode: 'create' | 'reload', name: string, step: number): { signal: NodeJS.Signals | null; output: string } {
  const r = spawnSync(process.execPath, [fixture, mode, name, String(step)], { encoding: 'utf8', timeout: 60000 });
  return { signal: r.signal, output: `${r.stdout}${r.stderr}` };
}

describe('recover after a process died in the middle of an operation', function () {
  const t = TestContext.perTest();

  // create: DEV_CREATE, TABLE_LOAD, resume. reload: TABLE_STATUS, TABLE_LOAD, suspend, resume.
  const cases: { mode: 'create' | 'reload'; step: number; suspended: boolean; inactiveTable: boolean; activeTable: boolean }[] = [
    { mode: 'create', step: 2, suspended: false, inactiveTable: false, activeTable: false },
    { mode: 'create', step: 3, suspended: false, inactiveTable: true, activeTable: false },
    { mode: 'reload', step: 3, suspended: false, inactiveTable: true, activeTable: true },
    { mode: 'reload', step: 4, suspended: true, inactiveTable: true, activeTable: true },
  ];
  for (const c of cases) {
    it(`${c.mode} killed before step ${c.step}: recover finds the device, and repair ${c.activeTable ? 'brings it back running' : 'removes it (it never went live)'}`, async () => {
      const name = devName(`die-${c.mode}-${c.step}`);
      if (c.mode === 'reload') await t.dm.create(name, { table: Table.parse('0 8 zero') });
      const died = dieAt(c.mode, name, c.step);
      expect(died.signal, died.output).to.equal('SIGKILL');
      const found = await t.dm.recover({ prefix: PREFIX });
      const mine = found.filter((d) => d.name === name);
      expect(mine).to.have.length(1);
      expect(mine[0]).to.include({ suspended: c.suspended, inactiveTable: c.inactiveTable, activeTable: c.activeTable, repaired: false });
      const repaired = await t.dm.recover({ prefix: name, repair: true });
      expect(repaired.map((d) => ({ name: d.name, repaired: d.repaired }))).to.deep.equal([{ name, repaired: true }]);
      expect(await t.dm.recover({ prefix: name })).to.deep.equal([]);
      if (!c.activeTable) {
        expect((await t.dm.listDevices()).map((d) => d.name)).to.not.include(name);
        return;
      }
      expect(await t.dm.info(name)).to.include({ suspended: false, inactiveTable: false });
      if (c.mode === 'reload') expect((await t.dm.table(name))?.toString()).to.equal('0 8 zero');
    });
  }

  // Killed before its first ioctl (create: DEV_CREATE; reload: the read of the old table) or
  // before a reload's load: nothing changed, so there is nothing to recover.
  for (const c of [
    { mode: 'create', step: 1 },
    { mode: 'reload', step: 1 },
    { mode: 'reload', step: 2 },
  ] as const) {
    it(`${c.mode} killed before step ${c.step}: nothing is left to recover`, async () => {
      const name = devName(`die-${c.mode}-${c.step}`);
      if (c.mode === 'reload') await t.dm.create(name, { table: Table.parse('0 8 zero') });
      const died = dieAt(c.mode, name, c.step);
      expect(died.signal, died.output).to.equal('SIGKILL');
      expect((await t.dm.recover({ prefix: PREFIX })).filter((d) => d.name === name)).to.deep.equal([]);
      if (c.mode === 'create') expect((await t.dm.listDevices()).map((d) => d.name)).to.not.include(name);
      else expect(await t.dm.info(name)).to.include({ suspended: false, inactiveTable: false, activeTable: true });
    });
  }

  it('the steps counted above are the real ones: a process that is not killed finishes', () => {
    const name = devName('die-never');
    expect(dieAt('create', name, 99).output).to.contain('finished');
  });

  it('repair without a filter is refused: other tools suspend their own devices on purpose', async () => {
    const e: unknown = await t.dm.recover({ repair: true }).catch((x: unknown) => x);
    expect(e).to.be.instanceOf(RangeError);
  });
});
