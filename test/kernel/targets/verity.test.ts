import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DmError, Table, targets, type LoopDevice, type VerityOptions, type VerityStatus } from '../../../ts/index';
import { TestContext, devName, dmsetup, expectReadBack, scratchDir } from '../helpers';

/** The typed status of a verity target, the device's only row. */
async function statusOf(t: TestContext, name: string): Promise<VerityStatus> {
  const [row] = await t.dm.status(name);
  if (row === undefined || !row.status.known || row.status.type !== 'verity') throw new Error(`no typed verity status for ${name}`);
  return row.status;
}

/** dd; true when it succeeded. */
function dd(args: string[]): boolean {
  try {
    execFileSync('dd', [...args, 'status=none'], { stdio: ['ignore', 'ignore', 'ignore'] });
    return true;
  } catch {
    return false;
  }
}

/**
 * `veritysetup format` over a data device filled with random bytes and a hash device: the
 * data, and the options of a verity target from its root hash and salt.
 */
async function formatted(t: TestContext, blocks: number): Promise<{ data: Buffer; dataDisk: LoopDevice; hashDisk: LoopDevice; options: VerityOptions }> {
  const dataDisk = await t.fx.loop(blocks * 8);
  const hashDisk = await t.fx.loop(2048);
  const data = randomBytes(blocks * 4096);
  writeAt(dataDisk.file, data, 0);
  const out = execFileSync('veritysetup', ['format', dataDisk.path, hashDisk.path], { encoding: 'utf8' });
  const root = /^Root hash:\s*([0-9a-f]+)$/m.exec(out)?.[1];
  const salt = /^Salt:\s*([0-9a-f]+)$/m.exec(out)?.[1];
  if (root === undefined || salt === undefined) throw new Error(`no root hash or salt in: ${out}`);
  const options = { dataDevice: dataDisk.dev, hashDevice: hashDisk.dev, dataBlockSize: 4096, hashBlockSize: 4096, dataBlocks: blocks, hashStartBlock: 1, algorithm: 'sha256', digest: root, salt };
  return { data, dataDisk, hashDisk, options };
}

/** Writes `data` into a backing file at `offset`, in place (the loop device keeps its size). */
function writeAt(file: string, data: Buffer, offset: number): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, data, 0, data.length, offset);
  } finally {
    closeSync(fd);
  }
}

/** Overwrites data block `block` of the backing file (4 KiB blocks). */
function tamper(file: string, block: number): void {
  writeAt(file, randomBytes(4096), block * 4096);
}

describe('verity in the kernel', () => {
  const t = TestContext.perTest();

  it('a verity over veritysetup\'s hash tree built with targets.verity loads read-only, reads back equal, serves the data, and fails a read of a tampered block (status C)', async () => {
    const { data, dataDisk, options } = await formatted(t, 2048);
    const target = targets.verity(options);
    const table = new Table([{ start: 0, length: 16384, target }]);
    const name = devName('verity');
    await t.dm.create(name, { table, readOnly: true });
    const info = await t.dm.info(name);
    expect(info.readOnly).to.equal(true);
    await expectReadBack(t.dm, name, table);
    const dir = scratchDir();
    try {
      const copy = join(dir, 'copy');
      expect(dd([`if=${info.path}`, `of=${copy}`, 'bs=1M', 'iflag=direct'])).to.equal(true);
      expect(readFileSync(copy).equals(data)).to.equal(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const s0 = await statusOf(t, name);
    expect(s0).to.deep.include({ corrupted: false, fecCorrected: undefined, extra: [] });
    expect(dmsetup('status', name).trimEnd()).to.equal(`0 16384 verity ${s0.raw}`);

    tamper(dataDisk.file, 7);
    expect(dd([`if=${info.path}`, 'of=/dev/null', 'bs=4096', 'skip=6', 'count=1', 'iflag=direct'])).to.equal(true);
    expect((await statusOf(t, name)).corrupted).to.equal(false);
    expect(dd([`if=${info.path}`, 'of=/dev/null', 'bs=4096', 'skip=7', 'count=1', 'iflag=direct'])).to.equal(false);
    const s1 = await statusOf(t, name);
    expect(s1.corrupted).to.equal(true);
    expect(s1.raw).to.equal('C');
    expect(dmsetup('status', name).trimEnd()).to.equal('0 16384 verity C');
  });

  it('ignore_corruption with ignore_zero_blocks, check_at_most_once and try_verify_in_tasklet reads back equal; a tampered block then reads, and the status says C', async () => {
    const { dataDisk, options } = await formatted(t, 1024);
    const target = targets.verity({ ...options, onCorruption: 'ignore', ignoreZeroBlocks: true, checkAtMostOnce: true, tryVerifyInTasklet: true });
    const table = new Table([{ start: 0, length: 8192, target }]);
    const name = devName('verity-opts');
    tamper(dataDisk.file, 3);
    await t.dm.create(name, { table, readOnly: true });
    expect((await t.dm.table(name))?.equals(table)).to.equal(true);
    expect(dmsetup('table', name).trimEnd()).to.equal(table.toString());
    expect((await statusOf(t, name)).corrupted).to.equal(false);
    expect(dd([`if=${(await t.dm.info(name)).path}`, 'of=/dev/null', 'bs=4096', 'skip=3', 'count=1', 'iflag=direct'])).to.equal(true);
    expect((await statusOf(t, name)).corrupted).to.equal(true);

    // The other corruption modes load too (never triggered here: they restart or panic).
    for (const onCorruption of ['restart', 'panic'] as const) {
      const other = new Table([{ start: 0, length: 8192, target: targets.verity({ ...options, onCorruption }) }]);
      const n = devName(`verity-${onCorruption}`);
      await t.dm.create(n, { table: other, readOnly: true });
      expect((await t.dm.table(n))?.equals(other)).to.equal(true);
      await t.dm.remove(n);
    }
  });

  it('the kernel refuses a verity table loaded writable, and FEC and signature options this kernel was built without; nothing is left behind', async () => {
    const { options } = await formatted(t, 256);
    const cases: [string, Table, boolean][] = [
      ['writable', new Table([{ start: 0, length: 2048, target: targets.verity(options) }]), false],
      ['fec', new Table([{ start: 0, length: 2048, target: targets.verity({ ...options, fec: { device: options.hashDevice, blocks: 300, start: 100, roots: 2 } }) }]), true],
      ['sig', new Table([{ start: 0, length: 2048, target: targets.verity({ ...options, rootHashSigKeyDesc: 'verity:root' }) }]), true],
    ];
    for (const [what, table, readOnly] of cases) {
      const name = devName(`verity-${what}`);
      let error: unknown;
      try {
        await t.dm.create(name, { table, readOnly });
      } catch (e) {
        error = e;
      }
      expect(error, what).to.be.instanceOf(DmError);
      expect((error as DmError).code, what).to.equal('EINVAL');
      expect((await t.dm.listDevices()).some((d) => d.name === name), what).to.equal(false);
    }
  });

  it('a device opened by veritysetup parses to the target our builder makes', async () => {
    const { dataDisk, hashDisk, options } = await formatted(t, 512);
    const name = devName('verity-setup');
    execFileSync('veritysetup', ['open', dataDisk.path, name, hashDisk.path, options.digest], { stdio: 'ignore' });
    try {
      const back = await t.dm.table(name);
      expect(back?.rows[0]?.target).to.deep.equal(targets.verity(options));
      expect((await t.dm.info(name)).readOnly).to.equal(true);
      expect((await statusOf(t, name)).corrupted).to.equal(false);
    } finally {
      execFileSync('veritysetup', ['close', name], { stdio: 'ignore' });
    }
  });
});
