// Asynchronous ioctls run on the addon's own I/O threads: never on Node's threadpool, and a
// slow one (a suspend that waits for delayed I/O to flush) holds up nothing else.
import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DeviceMapper, Table, targets, type DeviceInfo } from '../../ts/index';
import { TestContext, devName } from './helpers';

const root = resolve(__dirname, '..', '..', '..', '..');

/**
 * This process's threads. All of them, not only those named devmapper-io: a thread just made
 * may not have named itself yet (the pool's supervisor sleeps until work waits).
 */
function threads(): number {
  return readdirSync('/proc/self/task').length;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

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

  it('a burst of 64 fast calls starts no thread per call: one worker runs them (beside the pool\'s supervisor)', async function () {
    const d = await t.dm.create(devName('io-burst'), { table: new Table([{ start: 0, length: 8, target: targets.zero() }]) });
    const before = threads();
    const dm = await DeviceMapper.open(); // a pool of its own
    try {
      for (let round = 0; round < 3; round++) {
        const infos = await Promise.all(Array.from({ length: 64 }, () => dm.info(d.name)));
        expect(infos.every((i) => i.name === d.name)).to.equal(true);
        expect(threads() - before, `I/O threads after burst ${round + 1}`).to.be.at.most(2);
      }
    } finally {
      await dm.close();
    }
    expect(threads(), 'a closed client\'s pool has ended its threads').to.equal(before);
  });

  it('keeps the order of the calls on one device while another device\'s suspend stalls and the pool has grown', async function () {
    this.timeout(60000);
    const SHORT_MS = 400;
    const LONG_MS = 3000;
    const under = await t.dm.create(devName('io-zero'), { table: new Table([{ start: 0, length: 2048, target: targets.zero() }]) });
    const slowDevice = async (i: number, delay: number): Promise<DeviceInfo> => {
      const d = await t.dm.create(devName(`io-delay${i}`), { table: new Table([{ start: 0, length: 2048, target: targets.delay({ read: { device: under.dev, offset: 0, delay } }) }]) });
      return t.dm.create(devName(`io-slow${i}`), { table: new Table([{ start: 0, length: 2048, target: targets.linear({ device: d.dev, offset: 0 }) }]) });
    };
    // Three suspends that stall for SHORT_MS (the pool grows a worker for each, idle again
    // afterwards) and one that stalls for LONG_MS, all over the same pool.
    const short = [await slowDevice(0, SHORT_MS), await slowDevice(1, SHORT_MS), await slowDevice(2, SHORT_MS)];
    const long = await slowDevice(3, LONG_MS);
    const b = await t.dm.create(devName('io-b'), { table: new Table([{ start: 0, length: 8, target: targets.zero() }]) });
    const writers: ChildProcess[] = [...short, long].map((d) => spawn('dd', ['if=/dev/zero', `of=${d.path}`, 'bs=4096', 'count=1', 'oflag=direct', 'status=none'], { stdio: 'ignore' }));
    const exited = writers.map((w) => new Promise<void>((r) => w.once('exit', () => r())));
    const before = threads();
    const dm = await DeviceMapper.open();
    try {
      await sleep(200);
      let longDone = false;
      const longSuspend = dm.suspend(long.name).then((info) => {
        longDone = true;
        return info;
      });
      for (const info of await Promise.all(short.map((d) => dm.suspend(d.name)))) expect(info.suspended).to.equal(true);
      // The supervisor and a worker, and at least one more worker beside the stalled one.
      expect(threads() - before, 'the pool grew while the suspends stalled').to.be.at.least(3);
      expect(longDone, 'the long suspend is over already: the test proves nothing').to.equal(false);
      for (let i = 0; i < 3; i++) {
        // Issued together, without awaiting: the info runs after the suspend (resume) of B.
        const [suspended, afterSuspend] = await Promise.all([dm.suspend(b.name), dm.info(b.name)]);
        expect(suspended.suspended).to.equal(true);
        expect(afterSuspend.suspended, 'info issued after suspend saw B not suspended').to.equal(true);
        const [resumed, afterResume] = await Promise.all([dm.resume(b.name), dm.info(b.name)]);
        expect(resumed.suspended).to.equal(false);
        expect(afterResume.suspended, 'info issued after resume saw B suspended').to.equal(false);
      }
      expect(longDone, 'the calls on B waited for the long suspend').to.equal(false);
      expect((await longSuspend).suspended).to.equal(true);
      for (const d of [...short, long]) await dm.resume(d.name);
      // Idle workers end after 2 s; the last one (and the supervisor) stay. Waited for, not
      // slept on: on a loaded host their exit can come later than 2 s, and often comes sooner.
      for (let waited = 0; threads() - before > 2 && waited < 10000; waited += 100) await sleep(100);
      expect(threads() - before, 'idle workers have ended').to.be.at.most(2);
    } finally {
      for (const d of [...short, long]) await dm.resume(d.name).catch(() => undefined);
      await dm.close();
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
