// /dev/mapper/<name>: the library's own nodes when udev is absent (fallback), libdevmapper's
// cookies with a real udev (sync), and mknodes.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readlinkSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { binding } from '../../ts/binding';
import { decodeRdev } from '../../ts/dev';
import { DeviceMapper, DmError, Table, targets, type DevNumber } from '../../ts/index';
import { PREFIX, TestContext, devName, dmsetup, eventually, rejection, timeoutAtLeast } from './helpers';
import { cookieSemaphores, settleUdev, startUdev, stopUdev, udevCookies, udevProperties, withExecQueueStopped } from './udev-helpers';

const zero = (sectors = 8): Table => new Table([{ start: 0, length: sectors, target: targets.zero() }]);

function rdevOf(path: string, follow = false): DevNumber {
  return decodeRdev((follow ? statSync(path) : lstatSync(path)).rdev);
}

/** The path is a block node (not a symlink) of `dev`, mode 0600, root's. */
function expectOwnNode(path: string, dev: DevNumber): void {
  const st = lstatSync(path);
  expect(st.isBlockDevice(), `${path} is a block node`).to.equal(true);
  expect(rdevOf(path)).to.deep.equal(dev);
  expect(st.mode & 0o7777).to.equal(0o600);
  expect(st.uid).to.equal(0);
}

function expectAbsent(path: string): void {
  expect(existsSync(path) || isLink(path), `${path} is gone`).to.equal(false);
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

describe('/dev/mapper nodes without udev (fallback)', function () {
  const t = TestContext.perTest();
  before(() => {
    if (existsSync('/run/udev/control')) throw new Error('udev runs in the sandbox: the fallback tests need it absent');
  });

  it("'auto' is fallback here: the node exists when create resolves, follows a rename and is gone when remove resolves", async () => {
    const name = devName('fb');
    const info = await t.dm.create(name, { table: zero() });
    expect(info.mapperPath).to.equal(`/dev/mapper/${name}`);
    expectOwnNode(info.mapperPath, info.dev);
    const renamed = devName('fb-renamed');
    const after = await t.dm.rename(name, renamed);
    expectAbsent(`/dev/mapper/${name}`);
    expectOwnNode(after.mapperPath, info.dev);
    expect(dmsetup('info', '-c', '--noheadings', '-o', 'major,minor', renamed).trim()).to.equal(`${info.dev.major}:${info.dev.minor}`);
    await t.dm.remove(renamed);
    expectAbsent(after.mapperPath);
  });

  it('the synchronous client makes and removes the same nodes', () => {
    const sdm = DeviceMapper.openSync({ udev: 'fallback' });
    const name = devName('fb-sync');
    try {
      const info = sdm.create(name, { table: zero() });
      expectOwnNode(info.mapperPath, info.dev);
      sdm.suspend(name);
      unlinkSync(info.mapperPath);
      sdm.resume(name);
      expectOwnNode(info.mapperPath, info.dev);
      sdm.remove(name);
      expectAbsent(info.mapperPath);
    } finally {
      try {
        sdm.remove(name);
      } catch {
        // removed by the test
      }
      sdm.close();
    }
  });

  it("'off' makes no node, and a create with no resume makes none until the resume", async () => {
    const off = devName('off');
    const info = await t.dm.create(off, { table: zero(), udev: 'off' });
    expectAbsent(info.mapperPath);
    await t.dm.remove(off);
    const later = devName('later');
    const made = await t.dm.create(later, { table: zero(), activate: false });
    expectAbsent(made.mapperPath);
    await t.dm.resume(later);
    expectOwnNode(made.mapperPath, made.dev);
  });

  it('a node of another device number under the name is replaced; a regular file is never touched', async () => {
    const name = devName('wrong');
    const path = `/dev/mapper/${name}`;
    binding().mknodBlock(path, 7, 200, 0o600);
    const info = await t.dm.create(name, { table: zero() });
    expectOwnNode(path, info.dev);
    await t.dm.remove(name);
    expectAbsent(path);
    const file = devName('file');
    writeFileSync(`/dev/mapper/${file}`, 'not a node');
    try {
      const e = await rejection(t.dm.create(file, { table: zero() }));
      expect(e.code).to.equal('EEXIST');
      expect(e.message).to.include('a regular file');
      expect(lstatSync(`/dev/mapper/${file}`).isFile()).to.equal(true);
      // The device itself was made: the node is what failed.
      expect((await t.dm.info(file)).activeTable).to.equal(true);
      await t.dm.remove(file);
      expect(lstatSync(`/dev/mapper/${file}`).isFile()).to.equal(true);
    } finally {
      rmSync(`/dev/mapper/${file}`, { force: true });
    }
  });

  it('a deferred remove of an open device keeps its node until the device goes; mknodes then removes it', async () => {
    const name = devName('deferred');
    const info = await t.dm.create(name, { table: zero() });
    const fd = (await import('node:fs')).openSync(info.path, 'r');
    try {
      await t.dm.remove(name, { deferred: true });
      expectOwnNode(info.mapperPath, info.dev);
    } finally {
      (await import('node:fs')).closeSync(fd);
    }
    for (let i = 0; i < 100 && (await t.dm.listDevices()).some((d) => d.name === name); i++) await new Promise((r) => setTimeout(r, 20));
    const result = await t.dm.mknodes();
    expect(result.removed).to.include(name);
    expectAbsent(info.mapperPath);
  });

  it('mknodes makes a deleted node, fixes one of the wrong device, removes a stale one and leaves control and other files alone', async () => {
    const a = devName('mk-a');
    const b = devName('mk-b');
    const ia = await t.dm.create(a, { table: zero() });
    const ib = await t.dm.create(b, { table: zero() });
    unlinkSync(ia.mapperPath);
    unlinkSync(ib.mapperPath);
    binding().mknodBlock(ib.mapperPath, 7, 201, 0o600);
    const stale = `${PREFIX}stale-${process.pid}`;
    binding().mknodBlock(`/dev/mapper/${stale}`, 253, 250, 0o600);
    const note = `${PREFIX}note-${process.pid}`;
    writeFileSync(`/dev/mapper/${note}`, 'a file');
    const control = lstatSync('/dev/mapper/control');
    try {
      const result = await t.dm.mknodes();
      expect(result.created).to.include(a);
      expect(result.fixed).to.include(b);
      expect(result.removed).to.include(stale);
      expect(result.skipped).to.deep.include({ name: note, reason: 'a regular file' });
      expectOwnNode(ia.mapperPath, ia.dev);
      expectOwnNode(ib.mapperPath, ib.dev);
      expectAbsent(`/dev/mapper/${stale}`);
      expect(lstatSync(`/dev/mapper/${note}`).isFile()).to.equal(true);
      const now = lstatSync('/dev/mapper/control');
      expect([now.ino, now.rdev, now.mode]).to.deep.equal([control.ino, control.rdev, control.mode]);
      // A second run finds nothing to do.
      const sdm = DeviceMapper.openSync();
      try {
        const again = sdm.mknodes();
        expect([again.created, again.fixed, again.removed]).to.deep.equal([[], [], []]);
      } finally {
        sdm.close();
      }
    } finally {
      rmSync(`/dev/mapper/${note}`, { force: true });
      rmSync(`/dev/mapper/${stale}`, { force: true });
    }
  });

  it('unknown udev modes and options are refused before any ioctl', async () => {
    const name = devName('refused');
    const refusal = async (p: () => Promise<unknown>): Promise<unknown> => {
      try {
        await p();
      } catch (e) {
        return e;
      }
      return undefined;
    };
    expect(await refusal(() => t.dm.create(name, { table: zero(), udev: 'always' as never }))).to.be.instanceOf(TypeError);
    expect(await refusal(() => t.dm.resume(name, { wait: true } as never))).to.be.instanceOf(TypeError);
    expect(await refusal(() => DeviceMapper.open({ udevTimeout: 0 }))).to.be.instanceOf(RangeError);
    expect((await t.dm.listDevices()).some((d) => d.name === name)).to.equal(false);
  });
});

describe('/dev/mapper with a real udev (sync, libdevmapper cookies)', function () {
  timeoutAtLeast(this, 300_000);
  const t = TestContext.perTest();
  before(() => {
    startUdev();
  });
  after(() => {
    stopUdev();
    expect(cookieSemaphores()).to.deep.equal([]);
  });
  afterEach(() => {
    // Every call took its cookie's semaphore with it, failed and aborted ones too.
    expect(cookieSemaphores(), 'ipcs -s').to.deep.equal([]);
    expect(udevCookies(), 'dmsetup udevcookies').to.deep.equal([]);
  });

  function expectUdevLink(name: string, dev: DevNumber): void {
    const path = `/dev/mapper/${name}`;
    expect(lstatSync(path).isSymbolicLink(), `${path} is udev's symlink`).to.equal(true);
    expect(readlinkSync(path)).to.equal(`../dm-${dev.minor}`);
    expect(rdevOf(path, true)).to.deep.equal(dev);
  }

  it("'auto' is sync: udev's symlink exists when create and resume resolve, follows a rename, and is gone when remove resolves", async () => {
    const name = devName('sync');
    const info = await t.dm.create(name, { table: zero() });
    expectUdevLink(name, info.dev);
    await t.dm.suspend(name);
    await t.dm.resume(name);
    expectUdevLink(name, info.dev);
    const renamed = devName('sync-renamed');
    await t.dm.rename(name, renamed);
    expectUdevLink(renamed, info.dev);
    expectAbsent(`/dev/mapper/${name}`);
    await t.dm.reload(renamed, zero(16));
    expectUdevLink(renamed, info.dev);
    await t.dm.remove(renamed);
    expectAbsent(`/dev/mapper/${renamed}`);
  });

  it("'fallback' chosen while udev runs makes the library's own node, and tells udev's dm rules to keep off it", async () => {
    const name = devName('forced');
    const info = await t.dm.create(name, { table: zero(), udev: 'fallback' });
    expectOwnNode(info.mapperPath, info.dev);
    settleUdev();
    expectOwnNode(info.mapperPath, info.dev);
    expect(udevProperties(info.path).get('DM_UDEV_DISABLE_DM_RULES_FLAG')).to.equal('1');
    // A sync-mode remove takes the library's block node of the device with it.
    await t.dm.remove(name, { udev: 'sync' });
    expectAbsent(info.mapperPath);
  });

  it('the synchronous client waits for the same cookies', () => {
    const sdm = DeviceMapper.openSync();
    const name = devName('sync-s');
    try {
      const info = sdm.create(name, { table: zero() });
      expectUdevLink(name, info.dev);
      sdm.remove(name);
      expectAbsent(info.mapperPath);
    } finally {
      sdm.close();
    }
  });

  it('failing commands and a resume that makes no uevent leave no semaphore behind', async () => {
    const missing = devName('missing');
    expect((await rejection(t.dm.resume(missing))).code).to.equal('ENXIO');
    expect((await rejection(t.dm.remove(missing, { udev: 'sync' }))).code).to.equal('ENXIO');
    expect((await rejection(t.dm.rename(missing, devName('x')))).code).to.equal('ENXIO');
    const name = devName('live');
    await t.dm.create(name, { table: zero() });
    // Not suspended: the resume changes nothing and the kernel sends no uevent.
    const started = Date.now();
    await t.dm.resume(name);
    expect(Date.now() - started).to.be.below(5000);
    const sdm = DeviceMapper.openSync();
    try {
      expect(() => sdm.resume(missing)).to.throw(DmError);
    } finally {
      sdm.close();
    }
  });

  it('removeAll({ prefix }) stopped by a failure other than EBUSY says what it had removed before it', async () => {
    const prefix = devName('stalled-all');
    for (const k of ['a', 'b']) await t.dm.create(`${prefix}-${k}`, { table: zero() });
    await withExecQueueStopped(async () => {
      const short = await DeviceMapper.open({ udevTimeout: 300 });
      try {
        const e = await rejection(short.removeAll({ prefix }));
        expect(e.code).to.equal('ETIMEDOUT');
        expect(e.message).to.match(/\(removed before it: none\)$/);
      } finally {
        await short.close();
      }
    });
    // The kernel removed the first all the same; the second was not tried.
    const left = (await t.dm.listDevices()).map((d) => d.name).filter((n) => n.startsWith(prefix));
    expect(left).to.have.length(1);
  });

  it('a wait udev does not answer ends with ETIMEDOUT naming the cookie, or with the abort of its signal, its semaphore removed', async () => {
    const name = devName('stalled');
    await t.dm.create(name, { table: zero() });
    await t.dm.suspend(name);
    await withExecQueueStopped(async () => {
      const short = await DeviceMapper.open({ udevTimeout: 300 });
      const patient = await DeviceMapper.open({ udevTimeout: 60_000 });
      try {
        const e = await rejection(short.resume(name));
        expect(e.code).to.equal('ETIMEDOUT');
        expect(e.message).to.match(/cookie 0x0d4d[0-9a-f]{4}/);
        expect(cookieSemaphores()).to.deep.equal([]);
        await short.suspend(name);
        // Aborted while it waits (its semaphore made), long before its own timeout, however
        // slowly the machine runs.
        const controller = new AbortController();
        const pending = patient.resume(name, { signal: controller.signal });
        expect(await eventually(() => cookieSemaphores().length === 1, 30_000), 'the resume made its cookie').to.equal(true);
        controller.abort();
        let caught: unknown;
        try {
          await pending;
        } catch (err) {
          caught = err;
        }
        expect(caught).to.be.instanceOf(Error).and.have.property('name', 'AbortError');
        expect(cookieSemaphores()).to.deep.equal([]);
        // The kernel did the resumes all the same.
        expect((await short.info(name)).suspended).to.equal(false);
      } finally {
        await short.close();
        await patient.close();
      }
    });
  });

  it('a worker terminated while it waits for udev leaves no semaphore behind', async () => {
    const name = devName('orphan');
    await t.dm.create(name, { table: zero() });
    await t.dm.suspend(name);
    await withExecQueueStopped(async () => {
      // The compiled library the tests run on (build/js/ts), loaded in the worker.
      const lib = join(__dirname, '..', '..', 'ts', 'index.js');
      // The worker says when its resume's ioctl has answered (its control wrapped the way the
      // tests' hooks wrap one), so that it is terminated in the wait for udev, with no call in
      // flight (a call's promise cannot be settled, nor its Node-API handle freed, once its
      // environment is gone).
      const worker = new Worker(
        `const { DeviceMapper } = require(${JSON.stringify(lib)});
         const { parentPort } = require('node:worker_threads');
         DeviceMapper.open({ udevTimeout: 60000 }).then((dm) => {
           const control = dm.control;
           dm.control = new Proxy(control, {
             get(target, property) {
               if (property === 'call') return (...args) => target.call(...args).then((r) => { parentPort.postMessage('answered'); return r; });
               const value = target[property];
               return typeof value === 'function' ? value.bind(target) : value;
             },
           });
           return dm.resume(${JSON.stringify(name)});
         }).catch(() => {});`,
        { eval: true },
      );
      const answered = new Promise<boolean>((r) => worker.once('message', () => r(true)));
      try {
        // The worker's resume is waiting on its cookie: one semaphore of ours exists (a worker
        // starts slowly under Valgrind), and its ioctl has answered.
        expect(await eventually(() => cookieSemaphores().length === 1, 120_000), 'the worker made its cookie').to.equal(true);
        expect(await Promise.race([answered, new Promise<boolean>((r) => setTimeout(() => r(false), 120_000))]), 'the worker\'s resume answered').to.equal(true);
        await worker.terminate();
        expect(cookieSemaphores(), 'ipcs -s after the worker ended').to.deep.equal([]);
      } finally {
        await worker.terminate();
      }
    });
    // The resume itself was done by the kernel.
    expect((await t.dm.info(name)).suspended).to.equal(false);
  });

  it('a device made by dmsetup and one made by us are the same to udev (symlinks and DM_* properties)', async () => {
    const ours = devName('ours');
    const theirs = devName('theirs');
    const t0 = process.hrtime.bigint();
    const info = await t.dm.create(ours, { table: zero(), uuid: `${PREFIX}U-${ours}` });
    const t1 = process.hrtime.bigint();
    execFileSync('dmsetup', ['create', theirs, '--uuid', `${PREFIX}U-${theirs}`, '--table', '0 8 zero']);
    const t2 = process.hrtime.bigint();
    process.stdout.write(`      (create with its cookie wait: ours ${Number(t1 - t0) / 1e6} ms, dmsetup's process ${Number(t2 - t1) / 1e6} ms)\n`);
    const theirInfo = await t.dm.info(theirs);
    expectUdevLink(ours, info.dev);
    expectUdevLink(theirs, theirInfo.dev);
    const normalise = (props: Map<string, string>, name: string, dev: DevNumber): Record<string, string> => {
      const out: Record<string, string> = {};
      for (const [k, v] of props) {
        if (k === 'USEC_INITIALIZED' || k === 'SEQNUM' || k === 'DISKSEQ') continue;
        const value = v.split(name).join('NAME').split(`dm-${dev.minor}`).join('dm-N').replace(/^\d+$/, (n) => (k === 'MINOR' ? 'N' : n));
        // udev lists a device's links in no particular order.
        out[k] = k === 'DEVLINKS' ? value.split(' ').sort().join(' ') : value;
      }
      return out;
    };
    const a = normalise(udevProperties(info.path), ours, info.dev);
    const b = normalise(udevProperties(theirInfo.path), theirs, theirInfo.dev);
    expect(a).to.deep.equal(b);
    expect(a['DM_UDEV_PRIMARY_SOURCE_FLAG']).to.equal('1');
    expect(a['DEVLINKS']).to.include('/dev/mapper/NAME');
    await t.dm.remove(ours);
    execFileSync('dmsetup', ['remove', theirs]);
    expectAbsent(`/dev/mapper/${ours}`);
    expectAbsent(`/dev/mapper/${theirs}`);
  });
});
