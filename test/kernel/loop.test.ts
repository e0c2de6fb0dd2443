import { expect } from 'chai';
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { open, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DmError, LoopDevice, blockDeviceSize, blockDiscard } from '../../ts/index';
import { scratchDir, timeoutAtLeast } from './helpers';

describe('loop devices in the kernel', function () {
  const dir = scratchDir();
  const made: LoopDevice[] = [];

  afterEach(async () => {
    for (const loop of made.splice(0)) await loop.detach().catch(() => undefined);
  });

  async function file(name: string, bytes: number): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, '');
    await truncate(path, bytes);
    return path;
  }

  it('attach binds a file: status, size and data agree with the file; detach unbinds it', async () => {
    const path = await file('a.img', 1 << 20);
    const loop = await LoopDevice.attach(path);
    made.push(loop);
    expect(loop.path).to.match(/^\/dev\/loop\d+$/);
    expect(loop.dev.major).to.equal(7);
    const st = await loop.status();
    expect(st).to.include({ fileName: path, offset: 0, sizeLimit: 0, readOnly: false, autoclear: false });
    expect(await loop.size()).to.equal(1 << 20);
    const fh = await open(loop.path, 'r+');
    await fh.write(Buffer.from('through the loop'), 0, 16, 4096);
    await fh.close();
    expect((await readFile(path)).subarray(4096, 4112).toString()).to.equal('through the loop');
    await loop.detach();
    made.pop();
    const e: unknown = await loop.status().catch((x: unknown) => x);
    expect(e).to.be.instanceOf(DmError);
    expect(e).to.include({ code: 'ENXIO', syscall: 'ioctl' });
  });

  it('offset, sizeLimit and readOnly reach the kernel', async () => {
    const path = await file('b.img', 1 << 20);
    const loop = await LoopDevice.attach(path, { offset: 65536, sizeLimit: 262144, readOnly: true });
    made.push(loop);
    expect(await loop.status()).to.include({ offset: 65536, sizeLimit: 262144, readOnly: true });
    expect(await blockDeviceSize(loop.path)).to.equal(262144);
    const fh = await open(loop.path, 'r+');
    try {
      const e: unknown = await fh.write(Buffer.alloc(512), 0, 512, 0).catch((x: unknown) => x);
      expect(e).to.have.property('code', 'EPERM');
    } finally {
      await fh.close();
    }
  });

  it('refreshCapacity picks up a grown file', async () => {
    const path = await file('c.img', 1 << 20);
    const loop = await LoopDevice.attach(path);
    made.push(loop);
    await truncate(path, 4 << 20);
    expect(await loop.size()).to.equal(1 << 20);
    await loop.refreshCapacity();
    expect(await loop.size()).to.equal(4 << 20);
  });

  it('autoclear devices stay bound while held and detach on release', async () => {
    const path = await file('d.img', 1 << 20);
    const loop = await LoopDevice.attach(path, { autoclear: true });
    expect((await loop.status()).autoclear).to.equal(true);
    await loop.release();
    const e: unknown = await loop.status().catch((x: unknown) => x);
    expect(e).to.include({ code: 'ENXIO' });
  });

  it('blockDiscard zeroes a range of a loop device', async () => {
    const path = await file('e.img', 1 << 20);
    await writeFile(path, Buffer.alloc(1 << 20, 0xab));
    const loop = await LoopDevice.attach(path);
    made.push(loop);
    await blockDiscard(loop.path, 0, 65536);
    const data = await readFile(path);
    expect(data.subarray(0, 65536).every((b) => b === 0)).to.equal(true);
    expect(data[65536]).to.equal(0xab);
  });

  it('a missing backing file is ENOENT naming the file', async () => {
    const e: unknown = await LoopDevice.attach(join(dir, 'missing.img')).catch((x: unknown) => x);
    expect(e).to.be.instanceOf(DmError);
    expect(e).to.include({ code: 'ENOENT', errno: 2, device: join(dir, 'missing.img') });
  });

  it('a bad path makes no loop device: the file is checked before LOOP_CTL_GET_FREE', async () => {
    const count = (): number => readdirSync('/sys/block').filter((d) => /^loop\d+$/.test(d)).length;
    // Bind every loop device the kernel has, so that GET_FREE would have to make a new one.
    const free = readdirSync('/sys/block').filter((d) => /^loop\d+$/.test(d) && readFileSync(`/sys/block/${d}/size`, 'utf8').trim() === '0');
    for (const [i] of free.entries()) made.push(await LoopDevice.attach(await file(`fill${i}.img`, 65536)));
    const before = count();
    for (const bad of [join(dir, 'missing.img'), dir, '/dev/null']) {
      const e: unknown = await LoopDevice.attach(bad).catch((x: unknown) => x);
      expect(e, bad).to.be.instanceOf(Error);
    }
    expect(count()).to.equal(before);
  });

  it('detach of an autoclear device succeeds, also after release() and a second time', async () => {
    for (const releaseFirst of [false, true]) {
      const path = await file(`auto${String(releaseFirst)}.img`, 1 << 20);
      const loop = await LoopDevice.attach(path, { autoclear: true });
      if (releaseFirst) await loop.release();
      await loop.detach();
      await loop.detach();
      const e: unknown = await loop.status().catch((x: unknown) => x);
      expect(e).to.include({ code: 'ENXIO' });
    }
  });

  it('detach never clears a loop device that another tool has bound to another file since', async () => {
    const mine = await file('mine.img', 1 << 20);
    const theirs = await file('theirs.img', 1 << 20);
    const loop = await LoopDevice.attach(mine);
    execFileSync('losetup', ['-d', loop.path]);
    execFileSync('losetup', [loop.path, theirs]);
    try {
      await loop.detach();
      expect((await loop.status()).fileName).to.equal(theirs);
    } finally {
      execFileSync('losetup', ['-d', loop.path]);
    }
  });

  it('64 concurrent attaches in one process all succeed', async () => {
    const files = await Promise.all(Array.from({ length: 64 }, (_, i) => file(`many${i}.img`, 65536)));
    const loops = await Promise.all(files.map((f) => LoopDevice.attach(f)));
    made.push(...loops);
    expect(new Set(loops.map((l) => l.path)).size).to.equal(64);
    for (const [i, l] of loops.entries()) expect((await l.status()).fileName).to.equal(files[i]);
  });

  it('attaches racing with other processes retry until they get a device', async function () {
    timeoutAtLeast(this, 120000);
    const child = join(__dirname, '..', '..', '..', '..', 'test', 'kernel', 'fixtures', 'attach-many.js');
    const run = (): Promise<string> =>
      new Promise((resolve, reject) => {
        execFile(process.execPath, [child, dir, '16'], { encoding: 'utf8' }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
      });
    const files = await Promise.all(Array.from({ length: 16 }, (_, i) => file(`race${i}.img`, 65536)));
    const [a, b, ours] = await Promise.all([run(), run(), Promise.allSettled(files.map((f) => LoopDevice.attach(f)))]);
    for (const r of ours) if (r.status === 'fulfilled') made.push(r.value);
    expect(ours.filter((r) => r.status === 'rejected').map((r) => String(r.reason))).to.deep.equal([]);
    expect(a.trim()).to.equal('attached 16');
    expect(b.trim()).to.equal('attached 16');
  });
});
