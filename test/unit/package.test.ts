import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '..', '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(cmd, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The symbol versions a shared object needs from the system, by library tag: { GLIBC: ['2.2.5', ...] }. */
function neededVersions(file: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of run('objdump', ['-T', file], root).matchAll(/\((GLIBC|GLIBCXX|CXXABI)_([0-9.]+)\)/g)) {
    const [, tag, version] = m;
    if (tag === undefined || version === undefined) continue;
    const list = out.get(tag) ?? [];
    if (!list.includes(version)) list.push(version);
    out.set(tag, list);
  }
  return out;
}

function newest(versions: readonly string[] | undefined): string {
  const parts = (v: string): number[] => v.split('.').map(Number);
  const sorted = [...(versions ?? [])].sort((a, b) => {
    const x = parts(a);
    const y = parts(b);
    for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
    return 0;
  });
  return sorted[sorted.length - 1] ?? '0';
}

function atMost(version: string, limit: string): boolean {
  const a = version.split('.').map(Number);
  const b = limit.split('.').map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) < (b[i] ?? 0);
  return true;
}

/** glibc 2.28 (Debian 10) and the libstdc++ of gcc 8 (GLIBCXX_3.4.25, CXXABI_1.3.11) or later. */
function expectPortable(file: string): void {
  const needed = neededVersions(file);
  expect(needed.get('GLIBC'), file).to.not.equal(undefined);
  expect(atMost(newest(needed.get('GLIBC')), '2.28'), `GLIBC_${newest(needed.get('GLIBC'))} in ${file}`).to.equal(true);
  expect(atMost(newest(needed.get('GLIBCXX')), '3.4.25'), `GLIBCXX_${newest(needed.get('GLIBCXX'))} in ${file}`).to.equal(true);
  expect(atMost(newest(needed.get('CXXABI')), '1.3.11'), `CXXABI_${newest(needed.get('CXXABI'))} in ${file}`).to.equal(true);
}

describe('packaging', function () {
  this.timeout(240000);
  let work: string;
  let copy: string;

  before(() => {
    work = mkdtempSync(join(tmpdir(), 'devmapper-pack-'));
    // prebuildify rebuilds with cmake-js: do it in a copy, so that build/ (which the kernel tests
    // load) stays the binary `npm run build` made.
    copy = join(work, 'devmapper');
    mkdirSync(copy);
    for (const entry of ['package.json', 'package-lock.json', 'CMakeLists.txt', 'binding.d.ts', 'README.md', 'native', 'scripts', 'dist']) {
      cpSync(join(root, entry), join(copy, entry), { recursive: true });
    }
    symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'));
  });
  after(() => {
    rmSync(work, { recursive: true, force: true });
  });

  it('the build needs no glibc newer than 2.28 and no libstdc++ newer than gcc 8\'s', () => {
    expectPortable(join(root, 'build', 'Release', 'devmapper.node'));
    expectPortable(join(root, 'build', 'Release', 'uml_xstate.so'));
  });

  it('prebuildify makes prebuilds/linux-x64/*.node, it loads with PREBUILDS_ONLY=1, and build/ is left alone', () => {
    const built = join(root, 'build', 'Release', 'devmapper.node');
    const before = statSync(built).mtimeMs;
    run(npm, ['run', 'prebuildify'], copy);
    expect(statSync(built).mtimeMs).to.equal(before);
    const dir = join(copy, 'prebuilds', `linux-${process.arch}`);
    const files = readdirSync(dir).filter((f) => f.endsWith('.node'));
    expect(files.length).to.equal(1);
    expectPortable(join(dir, files[0] ?? ''));
    // The sandbox's FPU-state wrapper for linux.uml ships beside it (prebuildify copies the
    // build's shared libraries).
    expectPortable(join(dir, 'uml_xstate.so'));
    const out = run(process.execPath, ['-e', `const b = require('node-gyp-build'); console.log(b.resolve(${JSON.stringify(copy)})); console.log(typeof b(${JSON.stringify(copy)}).Control)`], copy, {
      ...process.env,
      PREBUILDS_ONLY: '1',
    });
    const [path, kind] = out.trim().split('\n');
    expect(path).to.contain(join('prebuilds', `linux-${process.arch}`));
    expect(kind).to.equal('function');
  });

  it('npm pack + install of the tarball into an empty folder works without a compiler build', () => {
    const packed = run(npm, ['pack', '--silent', '--pack-destination', work], copy).trim().split('\n').pop() ?? '';
    const tarball = join(work, packed);
    expect(existsSync(tarball), tarball).to.equal(true);
    const app = join(work, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    // No compiler: an install that tried to build would fail.
    const env = { ...process.env, CXX: '/bin/false', CC: '/bin/false', PATH: `${join(work, 'nobuild')}:${process.env.PATH ?? ''}` };
    mkdirSync(join(work, 'nobuild'));
    writeFileSync(join(work, 'nobuild', 'cmake'), '#!/bin/sh\necho "cmake must not run" >&2\nexit 1\n', { mode: 0o755 });
    run(npm, ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], app, env);
    const installed = join(app, 'node_modules', 'devmapper');
    expect(existsSync(join(installed, 'build'))).to.equal(false);
    const out = run(process.execPath, ['-e', "const d = require('devmapper'); const s = require('devmapper/sandbox'); console.log(typeof d.DeviceMapper.open, typeof d.Table.parse, typeof s.runInSandbox, d.Table.parse('0 8 zero').toString())"], app);
    expect(out.trim()).to.equal('function function function 0 8 zero');
    const shim = run(process.execPath, ['-e', `console.log(require(${JSON.stringify(join(installed, 'dist', 'sandbox', 'host.js'))}).xstateShim())`], app).trim();
    expect(shim).to.equal(join(installed, 'prebuilds', `linux-${process.arch}`, 'uml_xstate.so'));
  });
});
