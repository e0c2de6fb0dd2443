// The runnable examples the README points to, run as a user would (node, the built package).
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { PREFIX, timeoutAtLeast } from './helpers';

// Compiled tests run from build/js/test/kernel; the examples stay in the source tree.
const root = resolve(__dirname, '..', '..', '..', '..');

function runExample(file: string): string {
  // Their devices get the tests' own prefix, so that a run on a host touches nothing else.
  const env = { ...process.env, DEVMAPPER_EXAMPLE_PREFIX: `${PREFIX}example-` };
  const r = spawnSync(process.execPath, [join(root, 'examples', file)], { cwd: root, env, encoding: 'utf8', timeout: 120000 });
  expect(r.status, `${r.stdout}${r.stderr}`).to.equal(0);
  return r.stdout;
}

describe('the examples', function () {
  timeoutAtLeast(this, 180000);

  it('typed-tour.js: a thin pool, a thin volume and its snapshot, and a multipath map that survives a failed path', () => {
    const out = runExample('typed-tour.js');
    expect(out).to.match(/^pool: \d+\/1024 data blocks, \d+\/2048 metadata blocks, mode rw, error_if_no_space$/m);
    expect(out).to.match(/^thin: \d+ sectors mapped, highest \d+$/m);
    expect(out).to.match(/^pool table: 0 131072 thin-pool \d+:\d+ \d+:\d+ 128 32 1 error_if_no_space$/m);
    expect(out).to.contain('snapshot keeps: "data in a thin volume"; origin now: "changed after the snap"');
    expect(out).to.match(/^multipath paths: \d+:\d+ failed \(1 failures\), \d+:\d+ active \(0 failures\)$/m);
    expect(out).to.contain('read through the map: "written while a path was down"');
    expect(out).to.match(/^multipath table: 0 32768 multipath 0 0 1 1 round-robin 0 2 1 \d+:\d+ 1 \d+:\d+ 1$/m);
  });

  it('volume-demo.js: a linear volume across two disks, grown, renamed and removed', () => {
    const out = runExample('volume-demo.js');
    expect(out).to.contain('read from');
    expect(out).to.match(/created dmt-example-demo-vol at \/dev\/dm-\d+/);
    expect(out).to.match(/reloaded and renamed: dmt-example-demo-grown, 3 rows, suspended=false/);
    expect(out).to.match(/kernel refused: .*Device or resource busy \(code EBUSY, errno 16\)/);
  });
});
