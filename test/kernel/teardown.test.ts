import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DeviceMapper } from '../../ts/index';
import { scratchDir, timeoutAtLeast } from './helpers';

// Compiled tests run from build/js/test/kernel: the library is build/js/ts.
const root = resolve(__dirname, '..', '..', '..', '..');

describe('teardown in the kernel', function () {
  timeoutAtLeast(this, 300000);

  it('worker threads terminated in the middle of create, reload, waits, watches and loop calls never abort the process', async () => {
    const dir = scratchDir();
    const r = spawnSync(process.execPath, [join(root, 'test', 'fixtures', 'terminate-workers.js'), join(root, 'build', 'js', 'ts'), 'kernel', '20', dir], { encoding: 'utf8', timeout: 280000 });
    const dm = await DeviceMapper.open();
    try {
      // A worker stopped between two steps is like a process killed there: recover, then remove.
      await dm.recover({ prefix: 'dmt-term-', repair: true });
      await dm.removeAll({ prefix: 'dmt-term-' });
    } finally {
      await dm.close();
      for (const f of readdirSync(dir)) {
        const bound = execFileSync('losetup', ['-j', join(dir, f)], { encoding: 'utf8' });
        for (const line of bound.split('\n')) {
          const dev = line.split(':')[0];
          if (dev !== undefined && dev !== '') execFileSync('losetup', ['-d', dev]);
        }
      }
    }
    expect(r.signal, r.stderr).to.equal(null);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout.trim()).to.equal('survived 20');
  });
});
