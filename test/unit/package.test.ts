import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '..', '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(cmd, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('packaging', function () {
  this.timeout(240000);
  let work: string;

  before(() => {
    work = mkdtempSync(join(tmpdir(), 'devmapper-pack-'));
  });
  after(() => {
    rmSync(work, { recursive: true, force: true });
  });

  it('prebuildify makes prebuilds/linux-x64/*.node, and it loads with PREBUILDS_ONLY=1', () => {
    run(npm, ['run', 'prebuildify'], root);
    const dir = join(root, 'prebuilds', `linux-${process.arch}`);
    const files = readdirSync(dir).filter((f) => f.endsWith('.node'));
    expect(files.length).to.equal(1);
    const out = run(process.execPath, ['-e', `const b = require('node-gyp-build'); console.log(b.resolve(${JSON.stringify(root)})); console.log(typeof b(${JSON.stringify(root)}).Control)`], root, {
      ...process.env,
      PREBUILDS_ONLY: '1',
    });
    const [path, kind] = out.trim().split('\n');
    expect(path).to.contain(join('prebuilds', `linux-${process.arch}`));
    expect(kind).to.equal('function');
  });

  it('npm pack + install of the tarball into an empty folder works without a compiler build', () => {
    const packed = run(npm, ['pack', '--silent', '--pack-destination', work], root).trim().split('\n').pop() ?? '';
    const tarball = join(work, packed);
    expect(existsSync(tarball), tarball).to.equal(true);
    const app = join(work, 'app');
    run('mkdir', ['-p', app], work);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    // No compiler: an install that tried to build would fail.
    const env = { ...process.env, CXX: '/bin/false', CC: '/bin/false', PATH: `${join(work, 'nobuild')}:${process.env.PATH ?? ''}` };
    run('mkdir', ['-p', join(work, 'nobuild')], work);
    writeFileSync(join(work, 'nobuild', 'cmake'), '#!/bin/sh\necho "cmake must not run" >&2\nexit 1\n', { mode: 0o755 });
    run(npm, ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], app, env);
    const installed = join(app, 'node_modules', 'devmapper');
    expect(existsSync(join(installed, 'build'))).to.equal(false);
    const out = run(process.execPath, ['-e', "const d = require('devmapper'); const s = require('devmapper/sandbox'); console.log(typeof d.DeviceMapper.open, typeof d.Table.parse, typeof s.runInSandbox, d.Table.parse('0 8 zero').toString())"], app);
    expect(out.trim()).to.equal('function function function 0 8 zero');
  });
});
