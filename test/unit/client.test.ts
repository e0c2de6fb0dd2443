import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceMapper, DmError } from '../../ts/index';
import { errnoCode } from '../../ts/errors';

describe('DeviceMapper.open on a host without device-mapper', () => {
  it('says what is missing (dm-mod) and points to the kernel sandbox', async function () {
    const path = '/nonexistent/mapper/control';
    const e: unknown = await DeviceMapper.open({ path }).catch((x: unknown) => x);
    expect(e).to.be.instanceOf(DmError);
    expect(e).to.include({ code: 'ENOENT', syscall: 'open', device: path });
    expect((e as Error).message).to.contain('modprobe dm-mod').and.contain('devmapper-sandbox');
    if (!existsSync('/dev/mapper/control')) {
      const d: unknown = await DeviceMapper.open().catch((x: unknown) => x);
      expect((d as Error).message).to.match(/^open \/dev\/mapper\/control: .*does not exist: this kernel has no device-mapper loaded/);
    }
  });

  it('says that a control node it may not open needs root (EACCES), and points to the kernel sandbox', () => {
    // A root-only node opened by an unprivileged process (the test drops to nobody when it is root).
    const dir = mkdtempSync(join(tmpdir(), 'devmapper-perm-'));
    try {
      chmodSync(dir, 0o755);
      const path = join(dir, 'control');
      writeFileSync(path, '', { mode: 0o600 });
      const script = `require(${JSON.stringify(join(__dirname, '..', '..', 'dist', 'index.js'))}).DeviceMapper.open({ path: ${JSON.stringify(path)} })` +
        '.then(() => console.log("opened"), (e) => console.log(JSON.stringify({ code: e.code, syscall: e.syscall, message: e.message })))';
      const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', ...asNobody });
      expect(r.status, r.stderr).to.equal(0);
      const e = JSON.parse(r.stdout) as { code: string; syscall: string; message: string };
      expect(e).to.include({ code: 'EACCES', syscall: 'open' });
      expect(e.message).to.contain('needs root').and.contain('devmapper-sandbox');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('openSync says the same, thrown instead of rejected, and refuses unknown options', () => {
    const path = '/nonexistent/mapper/control';
    let e: unknown;
    try {
      DeviceMapper.openSync({ path });
    } catch (x) {
      e = x;
    }
    expect(e).to.be.instanceOf(DmError);
    expect(e).to.include({ code: 'ENOENT', syscall: 'open', device: path });
    expect((e as Error).message).to.contain('modprobe dm-mod').and.contain('devmapper-sandbox');
    expect((e as Error).stack?.split('\n')[1]).to.contain('client.test');
    expect(() => DeviceMapper.openSync({ pth: '/dev/null' } as never)).to.throw(TypeError, /unknown option "pth"/);
    expect(() => DeviceMapper.openSync({ path: '' })).to.throw(TypeError, /options\.path/);
  });

  it('refuses unknown and malformed options before opening anything', async () => {
    for (const [options, pattern] of [
      [{ pth: '/dev/null' }, /unknown option "pth"/],
      [{ path: 3 }, /options\.path/],
      [{ stackTraces: 'eager' }, /Expected 'call' or 'async' for options\.stackTraces but received "eager"/],
      [new Date(), /plain options object/],
      [[], /options object/],
    ] as const) {
      const e: unknown = await DeviceMapper.open(options as never).catch((x: unknown) => x);
      expect(e).to.be.instanceOf(TypeError);
      expect((e as Error).message).to.match(pattern);
    }
  });

  it('names every errno the kernel can answer with, ESTALE and EOVERFLOW included', () => {
    expect(errnoCode(116)).to.equal('ESTALE');
    expect(errnoCode(75)).to.equal('EOVERFLOW');
    expect(errnoCode(11)).to.equal('EAGAIN');
    expect(errnoCode(99999)).to.equal('E99999');
  });
});
