import { expect } from 'chai';
import { open, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DmError, LoopDevice, blockDeviceSize, blockDiscard } from '../../ts/index';
import { scratchDir } from './helpers';

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
    expect(e).to.include({ code: 'ENOENT', syscall: 'open', device: join(dir, 'missing.img') });
  });
});
