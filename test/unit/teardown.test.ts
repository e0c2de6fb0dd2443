import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '..', '..');

describe('teardown', function () {
  this.timeout(180000);

  it('worker threads terminated while addon calls, waits and watches are in flight never abort the process', () => {
    // In a child process: an abort there must not take mocha with it.
    const r = spawnSync(process.execPath, [join(root, 'test', 'fixtures', 'terminate-workers.js'), join(root, 'dist'), 'host', '60'], { encoding: 'utf8', timeout: 170000 });
    expect(r.signal, r.stderr).to.equal(null);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout.trim()).to.equal('survived 60');
  });
});
