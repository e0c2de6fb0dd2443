import { expect } from 'chai';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FaultyDevice, Table, targets, type DelayStatus } from '../../../ts/index';
import { PREFIX, TestContext, devName, dmsetup, eventually, rejection } from '../helpers';
import { root, thrownBy } from './kit';

const BS = 4096;

/** One 4 KiB block read with direct I/O (dd): its data, or the Error dd failed with. */
function readBlock(path: string, block: number): Buffer | Error {
  try {
    return execFileSync('dd', [`if=${path}`, `bs=${BS}`, `skip=${block}`, 'count=1', 'iflag=direct', 'status=none'], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}

/** One 4 KiB block written with direct I/O (dd): null, or dd's complaint. */
function writeBlock(path: string, block: number, data: Buffer): string | null {
  try {
    execFileSync('dd', [`of=${path}`, `bs=${BS}`, `seek=${block}`, 'count=1', 'iflag=fullblock', 'oflag=direct', 'conv=notrunc', 'status=none'], { input: data, stdio: ['pipe', 'ignore', 'pipe'] });
    return null;
  } catch (e) {
    const stderr: unknown = typeof e === 'object' && e !== null ? Reflect.get(e, 'stderr') : undefined;
    return Buffer.isBuffer(stderr) ? stderr.toString('utf8') : String(e);
  }
}

function isEio(r: Buffer | Error | string | null): boolean {
  const text = r instanceof Error ? `${r.message} ${String(Reflect.get(r, 'stderr'))}` : typeof r === 'string' ? r : '';
  return text.includes('Input/output error');
}

/** Milliseconds a read of 4 KiB at `offset` takes through a fresh open (the last close dropped the page cache). */
function timedRead(path: string, offset: number): number {
  const buf = Buffer.alloc(BS);
  const t0 = process.hrtime.bigint();
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buf, 0, BS, offset);
  } finally {
    closeSync(fd);
  }
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Milliseconds a synchronous (O_SYNC) 4 KiB write at `offset` takes. */
function timedWrite(path: string, offset: number): number {
  const t0 = process.hrtime.bigint();
  const fd = openSync(path, constants.O_WRONLY | constants.O_SYNC);
  try {
    writeSync(fd, randomBytes(BS), 0, BS, offset);
  } finally {
    closeSync(fd);
  }
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

describe('FaultyDevice: a device that misbehaves on demand', () => {
  const t = TestContext.perTest();

  /** A loop device filled with random data, and a healthy FaultyDevice over it. */
  async function wrapped(sectors = 4096): Promise<{ f: FaultyDevice; content: Buffer; loopPath: string; loopDev: string }> {
    const loop = await t.fx.loop(sectors);
    const content = randomBytes(sectors * 512);
    execFileSync('dd', [`of=${loop.path}`, 'bs=64k', 'oflag=direct', 'status=none'], { input: content });
    const f = await FaultyDevice.create(t.dm, devName('faulty'), { device: loop.path });
    return { f, content, loopPath: loop.path, loopDev: loop.devString };
  }

  async function expectHealthy(f: FaultyDevice, loopDev: string, offset = 0): Promise<void> {
    const info = await t.dm.info(f.name);
    expect(info).to.include({ suspended: false, inactiveTable: false });
    expect(dmsetup('table', f.name).trimEnd()).to.equal(`0 ${f.length} linear ${loopDev} ${offset}`);
    expect(f.mode).to.equal('healthy');
  }

  it('starts healthy over the whole device (its size from sysfs); error() fails every I/O or only a range with EIO; healthy() brings the data back', async () => {
    const { f, content, loopDev } = await wrapped();
    expect(f).to.include({ length: 4096, offset: 0, device: loopDev, mode: 'healthy' });
    await expectHealthy(f, loopDev);
    expect((readBlock(f.path, 7) as Buffer).equals(content.subarray(7 * BS, 8 * BS))).to.equal(true);

    await f.error();
    expect(f.mode).to.equal('error');
    expect(dmsetup('table', f.name).trimEnd()).to.equal(`0 4096 error`);
    expect((await t.dm.info(f.name)).suspended).to.equal(false);
    expect(isEio(readBlock(f.path, 7))).to.equal(true);
    expect(isEio(writeBlock(f.path, 7, randomBytes(BS)))).to.equal(true);

    // Blocks 2 and 3 (sectors 16 to 31) only.
    await f.error({ start: 16, length: 16 });
    expect((await t.dm.table(f.name))?.equals(new Table([
      { start: 0, length: 16, target: targets.linear({ device: loopDev, offset: 0 }) },
      { start: 16, length: 16, target: targets.error() },
      { start: 32, length: 4064, target: targets.linear({ device: loopDev, offset: 32 }) },
    ]))).to.equal(true);
    expect((readBlock(f.path, 1) as Buffer).equals(content.subarray(BS, 2 * BS))).to.equal(true);
    expect(isEio(readBlock(f.path, 2))).to.equal(true);
    expect(isEio(readBlock(f.path, 3))).to.equal(true);
    expect((readBlock(f.path, 4) as Buffer).equals(content.subarray(4 * BS, 5 * BS))).to.equal(true);

    await f.healthy();
    await expectHealthy(f, loopDev);
    expect((readBlock(f.path, 2) as Buffer).equals(content.subarray(2 * BS, 3 * BS))).to.equal(true);
    await f.remove();
    expect((await t.dm.listDevices()).some((d) => d.name === f.name)).to.equal(false);
  });

  it('flakey: always down fails reads and writes; error_writes fails only writes; drop_writes drops them; corrupt_bio_byte changes one byte; an up/down cycle does both', async () => {
    const { f, content, loopPath, loopDev } = await wrapped();
    await f.flakey({ upInterval: 0, downInterval: 3600 });
    expect(dmsetup('table', f.name).trimEnd()).to.equal(`0 4096 flakey ${loopDev} 0 0 3600 0`);
    expect(isEio(readBlock(f.path, 0))).to.equal(true);
    expect(isEio(writeBlock(f.path, 0, randomBytes(BS)))).to.equal(true);

    await f.flakey({ upInterval: 0, downInterval: 3600, errorWrites: true });
    expect(isEio(writeBlock(f.path, 1, randomBytes(BS)))).to.equal(true);
    expect((readBlock(f.path, 1) as Buffer).equals(content.subarray(BS, 2 * BS))).to.equal(true);

    await f.flakey({ upInterval: 0, downInterval: 3600, dropWrites: true });
    expect(writeBlock(f.path, 2, randomBytes(BS))).to.equal(null);
    expect((readBlock(loopPath, 2) as Buffer).equals(content.subarray(2 * BS, 3 * BS))).to.equal(true);

    await f.flakey({ upInterval: 0, downInterval: 3600, corruptBioByte: { nthByte: 10, direction: 'w', value: 0x5a } });
    const data = randomBytes(BS);
    data[9] = 0;
    expect(writeBlock(f.path, 3, data)).to.equal(null);
    const landed = readBlock(loopPath, 3) as Buffer;
    expect(landed[9]).to.equal(0x5a);
    expect(Buffer.concat([landed.subarray(0, 9), landed.subarray(10)]).equals(Buffer.concat([data.subarray(0, 9), data.subarray(10)]))).to.equal(true);

    // Up 1 s, down 1 s: reads work, then fail, then work again.
    await f.flakey({ upInterval: 1, downInterval: 1 });
    const seen = new Set<string>();
    expect(await eventually(() => {
      seen.add(isEio(readBlock(f.path, 5)) ? 'down' : 'up');
      return seen.size === 2;
    }, 8000), `outcomes seen: ${[...seen].join(', ')}`).to.equal(true);
    expect((await t.dm.info(f.name)).suspended).to.equal(false);

    await f.healthy();
    await expectHealthy(f, loopDev);
    expect((readBlock(f.path, 5) as Buffer).equals(content.subarray(5 * BS, 6 * BS))).to.equal(true);
  });

  it('dust: bad blocks fail their reads while enabled, a write clears one, they can be listed, removed and bypassed; quiet shows in the status', async () => {
    const { f, content, loopDev } = await wrapped();
    await f.dust({ badBlocks: [3, 5, 9] });
    expect(f.mode).to.equal('dust');
    expect(dmsetup('table', f.name).trimEnd()).to.equal(`0 4096 dust ${loopDev} 0 4096`);
    expect(await f.dustStatus()).to.deep.include({ failReadOnBadBlock: true, quiet: false });
    expect(dmsetup('status', f.name).trimEnd()).to.equal(`0 4096 dust ${loopDev} fail_read_on_bad_block verbose`);
    expect(await f.badBlocks()).to.deep.equal([3, 5, 9]);
    expect(dmsetup('message', f.name, '0', 'countbadblocks').trim()).to.equal('countbadblocks: 3 badblock(s) found');
    expect(isEio(readBlock(f.path, 3))).to.equal(true);
    expect((readBlock(f.path, 4) as Buffer).equals(content.subarray(4 * BS, 5 * BS))).to.equal(true);

    // A write to a bad block remaps it: it leaves the list and reads back.
    const fresh = randomBytes(BS);
    expect(writeBlock(f.path, 5, fresh)).to.equal(null);
    expect((readBlock(f.path, 5) as Buffer).equals(fresh)).to.equal(true);
    expect(await f.badBlocks()).to.deep.equal([3, 9]);

    await f.removeBadBlocks([3]);
    expect((readBlock(f.path, 3) as Buffer).equals(content.subarray(3 * BS, 4 * BS))).to.equal(true);
    await f.setBadBlocksEnabled(false);
    expect(await f.dustStatus()).to.deep.include({ mode: 'bypass', failReadOnBadBlock: false });
    expect((readBlock(f.path, 9) as Buffer).equals(content.subarray(9 * BS, 10 * BS))).to.equal(true);
    await f.setBadBlocksEnabled(true);
    expect(isEio(readBlock(f.path, 9))).to.equal(true);
    await f.addBadBlocks([1], 2);
    expect(isEio(writeBlock(f.path, 1, randomBytes(BS)))).to.equal(true);
    await f.setQuiet(true);
    await f.setQuiet(true);
    expect(await f.dustStatus()).to.deep.include({ quiet: true });
    expect(dmsetup('status', f.name).trimEnd()).to.equal(`0 4096 dust ${loopDev} fail_read_on_bad_block quiet`);
    await f.clearBadBlocks();
    expect(await f.badBlocks()).to.deep.equal([]);

    await f.healthy();
    await expectHealthy(f, loopDev);
    expect((readBlock(f.path, 9) as Buffer).equals(content.subarray(9 * BS, 10 * BS))).to.equal(true);
    expect((readBlock(f.path, 5) as Buffer).equals(fresh)).to.equal(true);
  });

  it('delay: reads (or only writes) are held back for the time asked, the typed status counts held bios, and a reload sends them on', async () => {
    const DELAY = 400;
    // The lower bounds allow for dm-delay's timer, which counts in jiffies.
    const { f, content, loopDev } = await wrapped();
    const fast = timedRead(f.path, 0);
    await f.delay({ read: DELAY });
    expect(dmsetup('table', f.name).trimEnd()).to.equal(`0 4096 delay ${loopDev} 0 ${DELAY}`);
    const slow = timedRead(f.path, 8 * BS);
    expect(slow, `a delayed read took ${slow} ms`).to.be.within(DELAY - 20, DELAY + 10000);

    await f.delay({ read: 0, write: DELAY });
    expect(dmsetup('table', f.name).trimEnd()).to.equal(`0 4096 delay ${loopDev} 0 0 ${loopDev} 0 ${DELAY}`);
    const write = timedWrite(f.path, 16 * BS);
    expect(write, `a delayed write took ${write} ms`).to.be.within(DELAY - 20, DELAY + 10000);
    const read = timedRead(f.path, 24 * BS);
    expect(read, `an undelayed read took ${read} ms (the first, healthy, took ${fast} ms)`).to.be.below(DELAY);

    // A read held for a minute shows in the status; the reload to healthy sends it on at once.
    await f.delay({ read: 60000 });
    const reader = promisify(execFile)('dd', [`if=${f.path}`, 'of=/dev/null', `bs=${BS}`, 'skip=40', 'count=1', 'iflag=direct', 'status=none']);
    let status: DelayStatus | undefined;
    expect(await eventually(async () => {
      const [row] = await t.dm.status(f.name);
      if (row?.status.known === true && row.status.type === 'delay') status = row.status;
      return status?.reads === 1;
    }, 10000), `status ${status?.raw}`).to.equal(true);
    expect(dmsetup('status', f.name).trimEnd()).to.equal(`0 4096 delay ${status?.raw}`);
    const t0 = Date.now();
    await f.healthy();
    await reader;
    expect(Date.now() - t0).to.be.below(30000);
    await expectHealthy(f, loopDev);
    expect((readBlock(f.path, 40) as Buffer).equals(content.subarray(40 * BS, 41 * BS))).to.equal(true);
  });

  it('a table the kernel refuses leaves the device on its previous table, not suspended; a dust message refused reloads the previous table', async () => {
    const { f, content, loopDev } = await wrapped();
    await f.error({ start: 0, length: 8 });
    // The 6.1 kernel does not know error_reads: TABLE_LOAD fails with EINVAL.
    const e = await rejection(f.flakey({ upInterval: 0, downInterval: 10, errorReads: true }));
    expect(e.code).to.equal('EINVAL');
    expect(f.mode).to.equal('error');
    expect((await t.dm.info(f.name))).to.include({ suspended: false, inactiveTable: false });
    expect(dmsetup('table', f.name).trimEnd().split('\n')[1]).to.equal(`8 4088 linear ${loopDev} 8`);
    expect(isEio(readBlock(f.path, 0))).to.equal(true);

    // Block 5000 lies past the 4096-sector (512-block) device: addbadblock fails with EINVAL.
    const d = await rejection(f.dust({ badBlocks: [1, 5000] }));
    expect(d.code).to.equal('EINVAL');
    expect(d.rollbackError).to.equal(undefined);
    expect(f.mode).to.equal('error');
    expect((await t.dm.table(f.name))?.rows.map((r) => r.type)).to.deep.equal(['error', 'linear']);
    expect((await t.dm.info(f.name))).to.include({ suspended: false, inactiveTable: false });
    expect((readBlock(f.path, 1) as Buffer).equals(content.subarray(BS, 2 * BS))).to.equal(true);
  });

  it('bad arguments are refused before any ioctl', async () => {
    const { f, loopPath } = await wrapped();
    const before = await t.dm.info(f.name);
    const tries: [() => Promise<unknown>, RegExp][] = [
      [() => FaultyDevice.create(t.dm, devName('x'), { device: loopPath, size: 8 } as never), /unknown option "size"/],
      [() => FaultyDevice.create(t.dm, devName('x'), { device: loopPath, offset: 4096 }), /offset below the device's 4096 sectors/],
      [() => f.error({ start: 4000, length: 100 }), /range.length/],
      [() => f.flakey({ upInterval: 1 } as never), /fault.downInterval/],
      [() => f.flakey({ upInterval: 1, downInterval: 1, dropWrites: true, errorWrites: true }), /drop_writes conflicts with error_writes/],
      [() => f.dust({ blockSize: 1000 }), /dust.blockSize/],
      [() => f.delay({ read: -1 }), /fault.read/],
      [() => f.addBadBlocks([1]), /dust mode/],
      [() => FaultyDevice.create(undefined as never, devName('x'), { device: loopPath }), /Expected a DeviceMapper \(DeviceMapper.open\(\)\) for dm but received undefined/],
    ];
    for (const [call, message] of tries) {
      const err = await thrownBy(() => call());
      expect(err, String(message)).to.satisfy((x: unknown) => x instanceof TypeError || x instanceof RangeError);
      expect(String(err)).to.match(message);
    }
    expect(await t.dm.info(f.name)).to.deep.equal(before);
    expect((await t.dm.listDevices()).filter((d) => d.name.startsWith(PREFIX)).map((d) => d.name)).to.deep.equal([f.name]);
  });

  it('examples/faults.js runs with the built package', () => {
    const env = { ...process.env, DEVMAPPER_EXAMPLE_PREFIX: `${PREFIX}example-` };
    const r = spawnSync(process.execPath, [join(root, 'examples', 'faults.js')], { cwd: root, env, encoding: 'utf8', timeout: 120000 });
    expect(r.status, `${r.stdout}${r.stderr}`).to.equal(0);
    expect(r.stdout).to.contain('healthy read: "hello from a healthy disk"');
    expect(r.stdout).to.contain('error: read failed with EIO');
    expect(r.stdout).to.contain('dust: block 0 read failed with EIO; bad blocks [0]');
    expect(r.stdout).to.match(/^delay: a read took \d+ ms \(asked 300\)$/m);
    expect(r.stdout).to.contain('healthy again: "hello from a healthy disk"');
  });
});
