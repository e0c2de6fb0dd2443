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

  it('a worker thread and the main thread that end with a Control never closed (its pool started, a request just made) end cleanly', () => {
    // The pool's loop handle must be closed before a worker's loop is (Node aborts on a loop
    // closed with handles open), and the teardown must not wait for it forever.
    const lib = JSON.stringify(join(root, 'dist', 'binding.js'));
    const body = `const { binding } = require(${lib}); const c = new (binding().Control)('/dev/null'); c.ioctl({ cmd: 0, flags: 0 }).catch((e) => { c.ioctl({ cmd: 0, flags: 0 }).catch(() => 0); process.stdout.write(e.code + ' '); });`;
    const script = `const { Worker } = require('node:worker_threads'); let n = 0; const next = () => { if (n++ < 20) new Worker(${JSON.stringify(body)}, { eval: true }).once('exit', next); else { ${body} } }; next();`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60000 });
    expect(r.signal, `killed (a teardown that waits forever?) ${r.stderr}`).to.equal(null);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout.trim().split(' ')).to.deep.equal(Array.from({ length: 21 }, () => 'ENOTTY'));
  });
});
