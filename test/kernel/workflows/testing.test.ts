// devmapper/testing in the kernel: scratch disks, names, cleanup (in this process, after a
// failing test in a mocha child run through the plugin, and at the exit of a process that never
// cleaned up), and the kit's example test file run as a user would.
import { expect } from 'chai';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Table, targets, type DeviceMapper } from '../../../ts/index';
import { Scratch, ScratchCleanupError, withScratch } from '../../../ts/testing/index';
import { PREFIX, TestContext, devName, dmsetup, eventually, readAt, scratchDir, timeoutAtLeast } from '../helpers';
import { root } from './kit';

const mocha = join(root, 'node_modules', 'mocha', 'bin', 'mocha.js');
const plugin = join(root, 'dist', 'testing', 'mocha.js');
const kit = join(root, 'dist', 'testing', 'index.js');

function linear(device: string, sectors: number): Table {
  return new Table([{ start: 0, length: sectors, target: targets.linear({ device, offset: 0 }) }]);
}

/** losetup's list of bound loop devices: /dev/loopN → backing file. */
function boundLoops(): Map<string, string> {
  const out = new Map<string, string>();
  const text = execFileSync('losetup', ['--list', '--noheadings', '--raw', '--output', 'NAME,BACK-FILE'], { encoding: 'utf8' });
  for (const line of text.split('\n')) {
    const [name, file] = line.split(' ');
    if (name !== undefined && name !== '' && file !== undefined) out.set(name, file.replace(/(\\x20| )\(deleted\)$/, ''));
  }
  return out;
}

/** Nothing of `prefix` is left: no device (by the client and by dmsetup), no loop device on a file in `dirs`, no dir. */
async function expectNothingLeft(dm: DeviceMapper, prefix: string, loops: readonly string[], dirs: readonly string[]): Promise<void> {
  expect((await dm.listDevices()).map((d) => d.name).filter((n) => n.startsWith(prefix))).to.deep.equal([]);
  expect(dmsetup('ls').split('\n').filter((l) => l.startsWith(prefix))).to.deep.equal([]);
  // Autoclear detaches at the last close, which the kernel may finish a moment after the exit.
  const gone = await eventually(() => {
    const bound = boundLoops();
    return loops.every((l) => !bound.has(l)) && [...bound.values()].every((f) => !dirs.some((d) => f.startsWith(d)));
  });
  expect(gone, `loop devices still bound: ${JSON.stringify([...boundLoops()])}`).to.equal(true);
  for (const d of dirs) expect(existsSync(d), d).to.equal(false);
}

interface Child {
  status: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

/**
 * Runs node with `args` from the project root, stdout and stderr as one text; with
 * `killOnReady`, sends it that signal once it printed a line `ready`.
 */
function runNode(args: readonly string[], env: NodeJS.ProcessEnv, killOnReady?: NodeJS.Signals): Promise<Child> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => {
      output += c.toString();
      if (killOnReady !== undefined && /^ready$/m.test(output)) child.kill(killOnReady);
    });
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60000);
    child.once('error', fail);
    child.once('close', (status, signal) => {
      clearTimeout(timer);
      done({ status, signal, output });
    });
  });
}

/** The values of `key=value` lines a child printed. */
function printed(output: string, key: string): string[] {
  return [...output.matchAll(new RegExp(`^${key}=(\\S+)$`, 'gm'))].map((m) => m[1] ?? '');
}

describe('devmapper/testing', function () {
  timeoutAtLeast(this, 120000);
  const t = TestContext.perTest();

  it('a scratch disk is a sparse file of the size asked on an autoclear loop device; data written through a device on it lands in the file; cleanup leaves nothing', async () => {
    const scratch = new Scratch({ dir: scratchDir() });
    let removedDir: string | undefined;
    try {
      const disk = await scratch.disk({ sectors: 4096 });
      expect(await disk.size()).to.equal(4096 * 512);
      expect((await disk.status()).autoclear).to.equal(true);
      expect(statSync(disk.file).blocks).to.equal(0);
      expect(boundLoops().get(disk.path)).to.equal(disk.file);
      const name = scratch.name('lin');
      expect(name.startsWith(scratch.prefix)).to.equal(true);
      const dm = await scratch.dm();
      await dm.create(name, { table: linear(disk.devString, 4096) });
      expect(dmsetup('table', name).trim()).to.equal(`0 4096 linear ${disk.devString} 0`);
      writeFileSync(`/dev/mapper/${name}`, 'through the kit', { flag: 'r+' });
      expect(readAt(disk.file, 15, 0).toString()).to.equal('through the kit');

      const removed = await scratch.cleanup();
      expect(removed.devices).to.deep.equal([name]);
      expect(removed.loops).to.deep.equal([disk.path]);
      removedDir = removed.dir;
      expect(removedDir).to.be.a('string');
      expect(dm.closed).to.equal(true);
      await expectNothingLeft(t.dm, scratch.prefix, [disk.path], [removedDir ?? '']);
    } finally {
      await scratch.cleanup().catch(() => undefined);
    }
  });

  it('cleanup removes a stack top-down by its dependencies, whatever the order of names and list', async () => {
    const scratch = new Scratch({ dir: scratchDir() });
    try {
      const disk = await scratch.disk({ bytes: 2 * 1024 * 1024 });
      const dm = await scratch.dm();
      const bottom = scratch.name('a-bottom');
      const middle = scratch.name('z-middle');
      const top = scratch.name('m-top');
      const b = await dm.create(bottom, { table: linear(disk.devString, 4096) });
      const m = await dm.create(middle, { table: linear(`${b.dev.major}:${b.dev.minor}`, 4096) });
      await dm.create(top, { table: linear(`${m.dev.major}:${m.dev.minor}`, 4096) });
      const removed = await scratch.cleanup();
      expect(removed.devices).to.deep.equal([top, middle, bottom]);
      await expectNothingLeft(t.dm, scratch.prefix, [disk.path], [removed.dir ?? '']);
    } finally {
      await scratch.cleanup().catch(() => undefined);
    }
  });

  it('cleanup resumes a device left suspended with a write queued on it: the writer finishes and the stack goes', async () => {
    const scratch = new Scratch({ dir: scratchDir() });
    try {
      const disk = await scratch.disk({ sectors: 2048 });
      const dm = await scratch.dm();
      const bottom = scratch.name('bottom');
      const top = scratch.name('top');
      const b = await dm.create(bottom, { table: linear(disk.devString, 2048) });
      await dm.create(top, { table: linear(`${b.dev.major}:${b.dev.minor}`, 2048) });
      await dm.suspend(bottom);
      const dd = spawn('dd', ['if=/dev/urandom', `of=/dev/mapper/${top}`, 'bs=4096', 'count=1', 'oflag=direct', 'status=none'], { stdio: 'ignore' });
      const ended = new Promise<number | null>((done) => dd.once('close', (code) => done(code)));
      const state = (): string => readFileSync(`/proc/${dd.pid ?? 0}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[0] ?? '';
      // dd waits in the kernel (D) for its write, which the suspended device holds back.
      expect(await eventually(() => state() === 'D')).to.equal(true);
      const removed = await scratch.cleanup();
      expect(await ended).to.equal(0);
      expect(removed.devices).to.deep.equal([top, bottom]);
      await expectNothingLeft(t.dm, scratch.prefix, [disk.path], [removed.dir ?? '']);
    } finally {
      await scratch.cleanup().catch(() => undefined);
    }
  });

  it('cleanup never touches a device outside its prefix: it says which one still maps its disk, and the loop device goes when that one does', async () => {
    const scratch = new Scratch({ dir: scratchDir() });
    try {
      const disk = await scratch.disk({ sectors: 2048 });
      const ours = scratch.name('ours');
      await t.dm.create(ours, { table: linear(disk.devString, 2048) });
      const other = devName('not-the-kits');
      await t.dm.create(other, { table: linear(disk.devString, 2048) });
      const e: unknown = await scratch.cleanup().catch((x: unknown) => x);
      expect(e).to.be.instanceOf(ScratchCleanupError);
      expect((e as ScratchCleanupError).message).to.contain(`${disk.path} still mapped by ${other}`);
      expect((e as ScratchCleanupError).removed.devices).to.deep.equal([ours]);
      // The other device is intact and still reads its disk.
      expect((await t.dm.info(other)).suspended).to.equal(false);
      expect((await t.dm.table(other))?.equals(linear(disk.devString, 2048))).to.equal(true);
      expect(boundLoops().has(disk.path)).to.equal(true);
      await t.dm.remove(other);
      expect(await eventually(() => !boundLoops().has(disk.path))).to.equal(true);
      // Nothing is left to retry: the next cleanup is clean.
      expect((await scratch.cleanup()).devices).to.deep.equal([]);
    } finally {
      await scratch.cleanup().catch(() => undefined);
    }
  });

  it('withScratch cleans up after work that throws, and rejects with the work\'s own error', async () => {
    const made = { prefix: '', loop: '', dir: '' };
    const e: unknown = await withScratch(
      async (s) => {
        made.prefix = s.prefix;
        const disk = await s.disk({ sectors: 1024 });
        made.loop = disk.path;
        made.dir = dirname(disk.file);
        await (await s.dm()).create(s.name('vol'), { table: linear(disk.devString, 1024) });
        throw new Error('the work failed');
      },
      { dir: scratchDir() },
    ).catch((x: unknown) => x);
    expect(e).to.be.instanceOf(Error).with.property('message', 'the work failed');
    expect((e as Error).cause).to.equal(undefined);
    await expectNothingLeft(t.dm, made.prefix, [made.loop], [made.dir]);
    expect(await withScratch(async (s) => (await s.disk({ sectors: 8 })).size())).to.equal(4096);
  });

  it('the mocha plugin cleans up after a test that fails, keeps what a before hook made for the later tests, and mocha exits with the failure', async () => {
    const dir = scratchDir();
    const suite = join(dir, 'failing.test.js');
    writeFileSync(
      suite,
      `'use strict';
const assert = require('node:assert/strict');
const { Table, targets } = require(${JSON.stringify(join(root, 'dist', 'index.js'))});
const kit = require(${JSON.stringify(kit)});
const linear = (dev, n) => new Table([{ start: 0, length: n, target: targets.linear({ device: dev, offset: 0 }) }]);
let shared;
before(async () => {
  shared = await kit.scratchDisk({ sectors: 1024 });
  console.log('loop=' + shared.path);
  console.log('dir=' + require('node:path').dirname(shared.file));
});
describe('a suite with a failing test', () => {
  let made;
  it('fails after making disks and a stack', async () => {
    const disk = await kit.scratchDisk({ sectors: 2048 });
    const dm = await kit.scratchDeviceMapper();
    const low = await dm.create(kit.scratchName('low'), { table: linear(disk.devString, 2048) });
    made = kit.scratchName('high');
    await dm.create(made, { table: linear(low.dev.major + ':' + low.dev.minor, 2048) });
    console.log('loop=' + disk.path);
    console.log('dir=' + require('node:path').dirname(disk.file));
    console.log('device=' + made);
    throw new Error('failing on purpose');
  });
  it('runs after it, with its devices gone and the before hook disk still there', async () => {
    const dm = await kit.scratchDeviceMapper();
    assert.equal((await dm.listDevices()).some((d) => d.name === made), false);
    assert.equal(await shared.size(), 1024 * 512);
  });
});
`,
    );
    const prefix = `dmtk-kt${process.pid}-`;
    const r = await runNode([mocha, '--no-config', '--require', plugin, '--reporter', 'spec', '--no-color', suite], { DEVMAPPER_TESTING_PREFIX: prefix, DEVMAPPER_SCRATCH: dir });
    expect(r.status, r.output).to.equal(1);
    expect(r.output).to.match(/^\s*1 passing/m).and.match(/^\s*1 failing/m).and.contain('Error: failing on purpose');
    expect(printed(r.output, 'device')).to.have.length(1);
    expect(printed(r.output, 'device')[0]).to.match(new RegExp(`^${prefix}[0-9a-z]+-t1-high-2$`));
    const loops = printed(r.output, 'loop');
    const dirs = printed(r.output, 'dir');
    expect(loops).to.have.length(2);
    expect(dirs.every((d) => d.startsWith(dir))).to.equal(true);
    await expectNothingLeft(t.dm, prefix, loops, dirs);
  });

  for (const [how, end, kill, wanted] of [
    ['exits', 'process.exit(3)', undefined, { status: 3, signal: null }],
    // Waiting, as a test does, when the signal comes.
    ['is ended by SIGTERM', "console.log('ready'); setInterval(() => undefined, 1000)", 'SIGTERM', { status: null, signal: 'SIGTERM' }],
  ] as const) {
    it(`a process that ${how} without cleaning up leaves no device, loop device or file of its prefix`, async () => {
      const dir = scratchDir();
      const prefix = `dmtk-ke${kill === undefined ? 0 : 1}-${process.pid}-`;
      const script = `
const { Table, targets } = require(${JSON.stringify(join(root, 'dist', 'index.js'))});
const { Scratch } = require(${JSON.stringify(kit)});
(async () => {
  const s = new Scratch({ dir: ${JSON.stringify(dir)} });
  const disk = await s.disk({ sectors: 2048 });
  const dm = await s.dm();
  const low = await dm.create(s.name('low'), { table: new Table([{ start: 0, length: 2048, target: targets.linear({ device: disk.devString, offset: 0 }) }]) });
  await dm.create(s.name('high'), { table: new Table([{ start: 0, length: 2048, target: targets.linear({ device: low.dev.major + ':' + low.dev.minor, offset: 0 }) }]) });
  console.log('loop=' + disk.path);
  console.log('dir=' + require('node:path').dirname(disk.file));
  ${end};
})();
`;
      const r = await runNode(['-e', script], { DEVMAPPER_TESTING_PREFIX: prefix }, kill);
      expect({ status: r.status, signal: r.signal }, r.output).to.deep.equal(wanted);
      const loops = printed(r.output, 'loop');
      expect(loops, r.output).to.have.length(1);
      await expectNothingLeft(t.dm, prefix, loops, printed(r.output, 'dir'));
    });
  }

  it('examples/testing-kit.test.js: runs through the plugin, and its devices, loop devices and files are gone afterwards', async () => {
    const prefix = `${PREFIX}example-kit-`;
    const before = new Set(boundLoops().keys());
    const r = await runNode([mocha, '--no-config', '--require', plugin, '--reporter', 'spec', '--no-color', join(root, 'examples', 'testing-kit.test.js')], {
      DEVMAPPER_TESTING_PREFIX: prefix,
    });
    expect(r.status, r.output).to.equal(0);
    expect(r.output).to.match(/^\s*2 passing/m);
    expect(r.output).to.match(new RegExp(`^volume ${prefix}[0-9a-z]+-t1-span-1 at /dev/dm-\\d+: 4096 sectors over /dev/loop\\d+ and /dev/loop\\d+$`, 'm'));
    expect(r.output).to.contain(`read back from the second disk's file: "on the second disk"`);
    expect(r.output).to.match(new RegExp(`^kernel refused a row past the end of its disk: EINVAL; ${prefix}[0-9a-z]+-t2-toolong-1 listed: false$`, 'm'));
    const loops = [...new Set([...r.output.matchAll(/\/dev\/loop\d+/g)].map((m) => m[0]))].filter((l) => !before.has(l));
    expect(loops).to.have.length(2);
    await expectNothingLeft(t.dm, prefix, loops, []);
  });
});
