import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { TestContext, devName, scratchDir, timeoutAtLeast } from './helpers';

const root = resolve(__dirname, '..', '..', '..', '..');

describe('secrets go with DM_SECURE_DATA', function () {
  const t = TestContext.perTest();

  it('create, reload, table and message with secure: true send the flag on every request that carries or returns the key', async function () {
    timeoutAtLeast(this, 120000);
    const loop = await t.fx.loop(64);
    const name = devName('secure');
    const trace = join(scratchDir(), 'strace.txt');
    const r = spawnSync('strace', ['-f', '-e', 'trace=ioctl', '-o', trace, process.execPath, join(root, 'test', 'kernel', 'fixtures', 'secure-calls.js'), name, loop.devString], { encoding: 'utf8', timeout: 110000 });
    expect(`${r.stdout}${r.stderr}`).to.contain('finished');
    const lines = readFileSync(trace, 'utf8').split('\n').filter((l) => l.includes('ioctl(') && / DM_[A-Z_]+, /.test(l));
    const of = (command: string): string[] => lines.filter((l) => l.includes(` ${command}, `));
    const loads = of('DM_TABLE_LOAD');
    expect(loads.length).to.be.at.least(2);
    for (const l of loads) expect(l).to.contain('DM_SECURE_DATA_FLAG');
    const messages = of('DM_TARGET_MSG');
    expect(messages).to.have.length(2);
    expect(messages[0]).to.contain('DM_SECURE_DATA_FLAG');
    expect(messages[1]?.split(' => ')[0]).to.not.contain('DM_SECURE_DATA_FLAG');
    // reload reads the old table (which holds the key) to be able to put it back; table() reads it too.
    const reads = of('DM_TABLE_STATUS').filter((l) => l.split(' => ')[0]?.includes('DM_STATUS_TABLE_FLAG'));
    expect(reads.length).to.be.at.least(2);
    for (const l of reads) expect(l.split(' => ')[0]).to.contain('DM_SECURE_DATA_FLAG');
  });

  it('without the option, a table that holds a key goes with the flag by default (create, load; both clients), a reload and an update always, reads of the live table too; a load of a table without one, or secure: false, without it', async function () {
    timeoutAtLeast(this, 120000);
    const loop = await t.fx.loop(64);
    const name = devName('secure-default');
    const trace = join(scratchDir(), 'strace-defaults.txt');
    const r = spawnSync('strace', ['-f', '-e', 'trace=ioctl', '-o', trace, process.execPath, join(root, 'test', 'kernel', 'fixtures', 'secure-calls.js'), name, loop.devString, 'defaults'], { encoding: 'utf8', timeout: 110000 });
    expect(`${r.stdout}${r.stderr}`).to.contain('finished');
    const lines = readFileSync(trace, 'utf8').split('\n').filter((l) => l.includes('ioctl('));
    const loads = lines.filter((l) => l.includes(' DM_TABLE_LOAD, '));
    // create, reload, the sync load, a zero table's load, secure: false, update, reload with secure: false.
    expect(loads.map((l) => l.includes('DM_SECURE_DATA_FLAG'))).to.deep.equal([true, true, true, false, false, true, false]);
    // The reads of the live table: the first reload's and the update's with the flag (it held
    // the key), the last reload's (asked not to) without.
    const reads = lines.filter((l) => l.includes(' DM_TABLE_STATUS, ') && (l.split(' => ')[0] ?? '').includes('DM_STATUS_TABLE_FLAG'));
    expect(reads.map((l) => (l.split(' => ')[0] ?? '').includes('DM_SECURE_DATA_FLAG'))).to.deep.equal([true, true, false]);
  });
});
