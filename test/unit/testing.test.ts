// devmapper/testing on the host: argument checks, the package's entry points, and the mocha
// plugin re-running a suite in the kernel sandbox where this process cannot use device-mapper
// (the test drops to nobody when it is root, so that it cannot on any host).
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DeviceMapper, DmError } from '../../ts/index';
import { Scratch, beginScratchScope, endScratchScope, runPrefix, scratchName, withScratch } from '../../ts/testing/index';

const root = resolve(__dirname, '..', '..');

/** Whether this kernel has no device-mapper (the control node is missing, or nothing answers behind it). */
async function kernelHasNoDeviceMapper(): Promise<boolean> {
  try {
    await (await DeviceMapper.open()).close();
    return false;
  } catch (e) {
    return e instanceof DmError && ['ENOENT', 'ENODEV', 'ENXIO'].includes(e.code);
  }
}
const mocha = join(root, 'node_modules', 'mocha', 'bin', 'mocha.js');
const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function run(args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const started = Date.now();
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], ...asNobody });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', fail);
    child.once('close', (status) => done({ status, stdout, stderr, ms: Date.now() - started }));
  });
}

describe('devmapper/testing', function () {
  this.timeout(90000);

  it('refuses bad sizes, prefixes, names and unknown options before making anything', async () => {
    const s = new Scratch({ dir: '/nonexistent/never-made' });
    for (const [options, error, pattern] of [
      [{}, TypeError, /exactly one of options\.sectors and options\.bytes/],
      [{ sectors: 8, bytes: 4096 }, TypeError, /exactly one of options\.sectors and options\.bytes/],
      [{ sectors: 0 }, RangeError, /Expected a positive number of sectors for options\.sectors but received number 0/],
      [{ sectors: 1.5 }, RangeError, /options\.sectors/],
      [{ bytes: 1000 }, RangeError, /Expected a positive multiple of 512 for options\.bytes but received number 1000/],
      [{ sectors: '8' }, TypeError, /options\.sectors but received "8"/],
      [{ sectors: 8, size: 8 }, TypeError, /unknown option "size"/],
      [{ sectors: 8, blockSize: 100 }, RangeError, /options\.blockSize/],
      [undefined, TypeError, /Expected \{ sectors \} or \{ bytes \} for options but received undefined/],
    ] as const) {
      const e: unknown = await s.disk(options as never).catch((x: unknown) => x);
      expect(e, JSON.stringify(options)).to.be.instanceOf(error);
      expect((e as Error).message).to.match(pattern);
    }
    expect(existsSync('/nonexistent/never-made')).to.equal(false);
    expect(() => new Scratch({ prefix: '' })).to.throw(RangeError, /options\.prefix/);
    expect(() => new Scratch({ prefix: 'ab-' })).to.throw(RangeError, /4 to 64/);
    expect(() => new Scratch({ prefix: 'a/b-c' })).to.throw(RangeError);
    expect(() => new Scratch({ dir: 'relative' })).to.throw(TypeError, /absolute directory path/);
    expect(() => new Scratch({ prefx: 'abcd-' } as never)).to.throw(TypeError, /unknown option "prefx"/);
    expect(await withScratch(3 as never).catch((x: unknown) => x)).to.be.instanceOf(TypeError).with.property('message', 'Expected a function for work but received number 3');
    expect(() => s.name('a/b')).to.throw(RangeError, /what/);
    expect(() => s.name('')).to.throw(RangeError, /what/);
    // Names: under the prefix, one of a kind; nothing made, so cleanup asks the kernel nothing.
    const scratch = new Scratch({ prefix: 'dmtk-unit-' });
    expect([scratch.name('vol'), scratch.name('vol'), scratch.name()]).to.deep.equal(['dmtk-unit-vol-1', 'dmtk-unit-vol-2', 'dmtk-unit-dev-3']);
    expect(new Scratch().prefix).to.match(new RegExp(`^${runPrefix()}\\d+-$`));
    expect(await new Scratch().cleanup()).to.deep.equal({ devices: [], loops: [] });
    if (await kernelHasNoDeviceMapper()) {
      // No device-mapper in this kernel: no device can carry a name it handed out.
      expect(await scratch.cleanup()).to.deep.equal({ devices: [], loops: [] });
    }
  });

  it('a test scope names its devices under a prefix of its own, inside the run prefix', async () => {
    const scope = beginScratchScope();
    try {
      expect(scope.prefix.startsWith(runPrefix())).to.equal(true);
      expect(scratchName('x')).to.equal(`${scope.prefix}x-1`);
    } finally {
      // Without device-mapper in the kernel, no device can carry the name: nothing to remove.
      const ended = endScratchScope();
      if (await kernelHasNoDeviceMapper()) expect(await ended).to.deep.equal({ devices: [], loops: [] });
      else await ended.catch(() => undefined);
    }
    expect(scratchName('y').startsWith(`${runPrefix()}run-`)).to.equal(true);
  });

  it("a run's prefix is unique per process: $DEVMAPPER_TESTING_PREFIX and the process id when set", async () => {
    const script = `const t = require(${JSON.stringify(join(root, 'dist', 'testing', 'index.js'))}); try { console.log(process.pid.toString(36), t.runPrefix()); } catch (e) { console.log(e.name, e.message); }`;
    const given = await run(['-e', script], tmpdir(), { DEVMAPPER_TESTING_PREFIX: 'ci-job7-' });
    const [pid, prefix] = given.stdout.trim().split(' ');
    expect(prefix).to.equal(`ci-job7-${pid}-`);
    const generated = await run(['-e', script], tmpdir(), { DEVMAPPER_TESTING_PREFIX: '' });
    expect(generated.stdout.trim()).to.match(/^([0-9a-z]+) dmtk-\1[0-9a-f]{6}-$/);
    const bad = await run(['-e', script], tmpdir(), { DEVMAPPER_TESTING_PREFIX: 'a/b' });
    expect(bad.stdout.trim()).to.equal('RangeError Expected 1 to 48 letters, digits, ".", "_", "+" or "-" (not first) for $DEVMAPPER_TESTING_PREFIX but received "a/b"');
  });

  it('the package exports devmapper/testing and devmapper/testing/mocha, with their types', async () => {
    const app = mkdtempSync(join(tmpdir(), 'devmapper-kit-'));
    try {
      mkdirSync(join(app, 'node_modules'));
      symlinkSync(root, join(app, 'node_modules', 'devmapper'));
      const script = "for (const m of ['devmapper/testing', 'devmapper/testing/mocha']) console.log(require.resolve(m));" +
        "const k = require('devmapper/testing'); const p = require('devmapper/testing/mocha');" +
        'console.log(typeof k.Scratch, typeof k.scratchDisk, typeof p.mochaHooks, typeof p.scratchHooks.afterEach)';
      chmodSync(app, 0o755);
      const r = await run(['-e', script], app);
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stdout.trim().split('\n')).to.deep.equal([
        join(root, 'dist', 'testing', 'index.js'),
        join(root, 'dist', 'testing', 'mocha.js'),
        'function function function function',
      ]);
      expect(existsSync(join(root, 'dist', 'testing', 'index.d.ts'))).to.equal(true);
      expect(existsSync(join(root, 'dist', 'testing', 'mocha.d.ts'))).to.equal(true);
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  });

  describe('the mocha plugin, where this process cannot use device-mapper', () => {
    let app: string;
    before(() => {
      app = mkdtempSync(join(tmpdir(), 'devmapper-kit-'));
      chmodSync(app, 0o755);
      writeFileSync(
        join(app, 'kit.test.js'),
        `'use strict';
const assert = require('node:assert/strict');
const { Table, targets } = require(${JSON.stringify(join(root, 'dist', 'index.js'))});
const { scratchDeviceMapper, scratchDisk, scratchName } = require(${JSON.stringify(join(root, 'dist', 'testing', 'index.js'))});
describe('in the sandbox', () => {
  it('is root with device-mapper, and a device on a scratch disk reads back what was written', async () => {
    assert.equal(process.env.DEVMAPPER_SANDBOX, '1');
    assert.equal(process.getuid(), 0);
    const disk = await scratchDisk({ sectors: 2048 });
    const dm = await scratchDeviceMapper();
    const name = scratchName('vol');
    await dm.create(name, { table: new Table([{ start: 0, length: 2048, target: targets.linear({ device: disk.devString, offset: 0 }) }]) });
    require('node:fs').writeFileSync('/dev/mapper/' + name, 'inside', { flag: 'r+' });
    const back = Buffer.alloc(6);
    const fd = require('node:fs').openSync(disk.file, 'r');
    require('node:fs').readSync(fd, back, 0, 6, 0);
    require('node:fs').closeSync(fd);
    console.log('read back: ' + back.toString() + ' through ' + name);
  });
  it('fails when asked to', () => {
    assert.equal(process.env.KIT_FAIL, undefined);
  });
});
`,
      );
      writeFileSync(join(app, '.mocharc.json'), JSON.stringify({ require: [join(root, 'dist', 'testing', 'mocha.js')], spec: ['kit.test.js'], reporter: 'spec' }));
      chmodSync(join(app, 'kit.test.js'), 0o644);
      chmodSync(join(app, '.mocharc.json'), 0o644);
    });
    after(() => {
      rmSync(app, { recursive: true, force: true });
    });

    it('runs the same command (options from .mocharc.json) once, in the kernel sandbox, and passes because the suite ran there', async () => {
      const r = await run([mocha], app);
      expect(r.status, `${r.stdout}${r.stderr}`).to.equal(0);
      expect(r.stderr).to.match(/^devmapper\/testing: device-mapper is not usable here \(open \/dev\/mapper\/control: .*\); running the suite in the kernel sandbox$/m);
      expect(r.stdout).to.match(/^read back: inside through dmtk-[a-z0-9]+-t1-vol-1$/m);
      expect(r.stdout).to.match(/^\s*2 passing/m);
      // Once: one suite, one run.
      expect(r.stdout.match(/in the sandbox/g)).to.have.length(1);
      expect(r.ms).to.be.below(60000);
    });

    it('exits with the status of the run in the sandbox (a failing test fails the host command)', async () => {
      const r = await run([mocha, '--no-config', '--require', join(root, 'dist', 'testing', 'mocha.js'), 'kit.test.js'], app, { KIT_FAIL: '1' });
      expect(r.status, `${r.stdout}${r.stderr}`).to.equal(1);
      expect(r.stdout).to.match(/^\s*1 passing/m).and.match(/^\s*1 failing/m);
    });

    it('refuses --watch, from the command line or the config file, before booting anything', async () => {
      writeFileSync(join(app, 'watch.json'), JSON.stringify({ require: [join(root, 'dist', 'testing', 'mocha.js')], spec: ['kit.test.js'], watch: true }));
      chmodSync(join(app, 'watch.json'), 0o644);
      for (const args of [['--watch'], ['--config', 'watch.json']]) {
        const r = await run([mocha, ...args], app);
        expect(r.status, `${r.stdout}${r.stderr}`).to.equal(1);
        expect(r.stderr).to.contain('devmapper/testing: --watch cannot run in the kernel sandbox');
        expect(r.stdout).to.not.contain('passing');
        expect(r.ms).to.be.below(10000);
      }
    });

    it('inside the sandbox (DEVMAPPER_SANDBOX=1) a device-mapper it cannot use is an error, never a second re-run', async () => {
      const r = await run([mocha], app, { DEVMAPPER_SANDBOX: '1' });
      expect(r.status, `${r.stdout}${r.stderr}`).to.equal(1);
      expect(r.stderr).to.match(/^devmapper\/testing: device-mapper is not usable inside the kernel sandbox either: open \/dev\/mapper\/control/m);
      expect(r.stderr).to.not.contain('running the suite in the kernel sandbox');
      expect(r.ms).to.be.below(10000);
    });
  });
});
