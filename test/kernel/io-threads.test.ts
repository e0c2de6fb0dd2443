// Asynchronous ioctls run on the addon's own I/O threads: never on Node's threadpool, and a
// slow one (a suspend that waits for delayed I/O to flush) holds up nothing else.
import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Table, targets, type DeviceInfo } from '../../ts/index';
import { TestContext, devName } from './helpers';

const root = resolve(__dirname, '..', '..', '..', '..');

describe('the I/O threads of asynchronous calls', function () {
  const t = TestContext.perTest();

  it('slow suspends occupy neither Node\'s threadpool nor the calls on other devices', async function () {
    this.timeout(60000);
    const DELAY_MS = 1500;
    const under = await t.dm.create(devName('io-zero'), { table: new Table([{ start: 0, length: 2048, target: targets.zero() }]) });
    // More slow devices than Node's threadpool has threads (4): each a linear device over a
    // delay device. A suspend of the linear one waits for its I/O held in the delay below
    // (a delay device's own suspend would flush its queue at once).
    const slow: DeviceInfo[] = [];
    for (let i = 0; i < 6; i++) {
      const delay = await t.dm.create(devName(`io-delay${i}`), { table: new Table([{ start: 0, length: 2048, target: targets.delay({ read: { device: under.dev, offset: 0, delay: DELAY_MS } }) }]) });
      slow.push(await t.dm.create(devName(`io-slow${i}`), { table: new Table([{ start: 0, length: 2048, target: targets.linear({ device: delay.dev, offset: 0 }) }]) }));
    }
    const other = await t.dm.create(devName('io-other'), { table: new Table([{ start: 0, length: 8, target: targets.zero() }]) });
    // A direct write to each is held for DELAY_MS; a suspend waits for it.
    const writers: ChildProcess[] = slow.map((d) => spawn('dd', ['if=/dev/zero', `of=${d.path}`, 'bs=4096', 'count=1', 'oflag=direct', 'status=none'], { stdio: 'ignore' }));
    const exited = writers.map((w) => new Promise<void>((r) => w.once('exit', () => r())));
    try {
      await new Promise((r) => setTimeout(r, 200));
      let done = 0;
      const suspends = slow.map((d) => t.dm.suspend(d.name).then((info) => {
        done++;
        return info;
      }));
      await new Promise((r) => setTimeout(r, 100)); // the suspends are in the kernel now
      await stat(root); // Node's threadpool
      expect(done, 'fs.stat waited for a suspend').to.equal(0);
      expect((await t.dm.info(other.name)).name).to.equal(other.name); // another device
      expect(done, 'info of another device waited for a suspend').to.equal(0);
      const infos = await Promise.all(suspends);
      for (const info of infos) expect(info.suspended).to.equal(true);
    } finally {
      for (const d of slow) await t.dm.resume(d.name).catch(() => undefined);
      await Promise.all(exited);
    }
  });

  it('an idle client keeps nothing alive: a script that never closes it still ends', () => {
    const lib = join(root, 'build', 'js', 'ts', 'index.js');
    const script = `const { DeviceMapper } = require(${JSON.stringify(lib)}); DeviceMapper.open().then(async (dm) => { await dm.listDevices(); await dm.info('${devName('nobody')}').catch(() => undefined); console.log('done'); });`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30000 });
    expect(r.signal, 'killed by the timeout: something kept the event loop alive').to.equal(null);
    expect(r.stdout.trim()).to.equal('done');
    expect(r.status).to.equal(0);
  });
});
