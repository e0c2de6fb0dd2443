import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Table, targets, type IntegrityStatus, type IntegrityTarget } from '../../../ts/index';
import { TestContext, devName, dmsetup, eventually, scratchDir } from '../helpers';

/** The typed status of an integrity target, the device's only row. */
async function statusOf(t: TestContext, name: string): Promise<IntegrityStatus> {
  const [row] = await t.dm.status(name);
  if (row === undefined || !row.status.known || row.status.type !== 'integrity') throw new Error(`no typed integrity status for ${name}`);
  return row.status;
}

async function targetOf(t: TestContext, name: string): Promise<IntegrityTarget> {
  const target = (await t.dm.table(name))?.rows[0]?.target;
  if (target === undefined || target.type !== 'integrity') throw new Error(`no integrity row in ${name}`);
  return target as IntegrityTarget;
}

/** dd with direct I/O; returns its stderr on failure instead of throwing. */
function dd(args: string[]): { ok: boolean; stderr: string } {
  try {
    execFileSync('dd', [...args, 'status=none'], { stdio: ['ignore', 'ignore', 'pipe'] });
    return { ok: true, stderr: '' };
  } catch (e) {
    const stderr = (e as { stderr?: Buffer }).stderr;
    return { ok: false, stderr: stderr === undefined ? String(e) : stderr.toString() };
  }
}

describe('integrity in the kernel', () => {
  const t = TestContext.perTest();

  it('a journaled crc32c integrity built with targets.integrity reads back equal, dmsetup agrees, keeps data, and fails reads of tampered data with EILSEQ, counting the mismatch', async () => {
    const disk = await t.fx.loop(65536);
    // Every size the kernel prints back is given (for 32 MiB and 4-byte tags: two 176-sector
    // journal sections), so the table read back is the one built.
    const target = targets.integrity({ device: disk.dev, offset: 0, tagSize: 4, mode: 'journal', journalSectors: 352, interleaveSectors: 32768, bufferSectors: 128, journalWatermark: 50, commitTime: 10000, internalHash: 'crc32c' });
    const name = devName('integrity');
    // Formatting tells how many sectors the device provides: map one first, then all of them.
    await t.dm.create(name, { table: new Table([{ start: 0, length: 8, target }]) });
    const s0 = await statusOf(t, name);
    expect(s0).to.deep.include({ mismatches: 0, recalculatingSector: null });
    expect(s0.providedDataSectors).to.be.greaterThan(60000).and.lessThan(65536);
    const table = new Table([{ start: 0, length: s0.providedDataSectors, target }]);
    await t.dm.reload(name, table);
    const back = await t.dm.table(name);
    expect(back?.equals(table)).to.equal(true);
    expect(back?.rows[0]?.target).to.deep.equal(target);
    expect(dmsetup('table', '--showkeys', name).trimEnd()).to.equal(table.toString());
    const s1 = await statusOf(t, name);
    expect(dmsetup('status', name).trimEnd()).to.equal(`0 ${s0.providedDataSectors} integrity ${s1.raw}`);

    const dir = scratchDir();
    try {
      const data = randomBytes(1 << 20);
      const file = join(dir, 'data');
      const copy = join(dir, 'copy');
      writeFileSync(file, data);
      const path = (await t.dm.info(name)).path;
      expect(dd([`if=${file}`, `of=${path}`, 'bs=64k', 'oflag=direct']).ok).to.equal(true);
      expect(dd([`if=${path}`, `of=${copy}`, 'bs=64k', 'count=16', 'iflag=direct']).ok).to.equal(true);
      expect(readFileSync(copy).equals(data)).to.equal(true);
      expect((await statusOf(t, name)).mismatches).to.equal(0);

      // Removing the device commits the journal: sector 100's data then sits in the data area
      // (after the journal, which also holds a copy but split by its commit ids).
      await t.dm.remove(name);
      const raw = readFileSync(disk.file);
      const at = raw.lastIndexOf(data.subarray(100 * 512, 101 * 512));
      expect(at).to.be.greaterThan(0);
      const fd = openSync(disk.file, 'r+');
      try {
        writeSync(fd, Buffer.from([(raw[at + 17] ?? 0) ^ 0xff]), 0, 1, at + 17);
      } finally {
        closeSync(fd);
      }
      await t.dm.create(name, { table });
      const again = (await t.dm.info(name)).path;
      // The sectors before it still read; sector 100 fails with EILSEQ ("Invalid or incomplete multibyte or wide character").
      expect(dd([`if=${again}`, 'of=/dev/null', 'bs=512', 'count=96', 'iflag=direct']).ok).to.equal(true);
      const bad = dd([`if=${again}`, 'of=/dev/null', 'bs=512', 'skip=100', 'count=1', 'iflag=direct']);
      expect(bad.ok).to.equal(false);
      expect(bad.stderr).to.match(/Invalid or incomplete multibyte or wide character/);
      const s2 = await statusOf(t, name);
      expect(s2.mismatches).to.be.greaterThan(0);
      expect(dmsetup('status', name).trimEnd()).to.equal(`0 ${s0.providedDataSectors} integrity ${s2.raw}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('tag size - reads back as the hash\'s digest size; bitmap mode with 4 KiB blocks reads back equal', async () => {
    const disk = await t.fx.loop(16384);
    const dash = targets.integrity({ device: disk.dev, offset: 0, tagSize: null, mode: 'journal', internalHash: 'sha256' });
    const name = devName('integrity-dash');
    await t.dm.create(name, { table: new Table([{ start: 0, length: 8, target: dash }]) });
    const read = await targetOf(t, name);
    expect(read.tagSize).to.equal(32);
    expect(read).to.deep.include({ mode: 'journal', interleaveSectors: 32768, bufferSectors: 128, journalWatermark: 50, commitTime: 10000 });
    expect(read.internalHash).to.deep.equal({ name: 'sha256', key: undefined });
    await t.dm.remove(name);

    const other = await t.fx.loop(16384);
    const bitmap = targets.integrity({ device: other.dev, offset: 0, tagSize: 32, mode: 'bitmap', blockSize: 4096, journalSectors: 264, interleaveSectors: 32768, bufferSectors: 128, sectorsPerBit: 65536, bitmapFlushInterval: 5000, internalHash: 'sha256' });
    const table = new Table([{ start: 0, length: 8192, target: bitmap }]);
    const bname = devName('integrity-bitmap');
    await t.dm.create(bname, { table });
    expect((await t.dm.table(bname))?.equals(table)).to.equal(true);
    expect(dmsetup('table', bname).trimEnd()).to.equal(table.toString());
    const path = (await t.dm.info(bname)).path;
    expect(dd(['if=/dev/urandom', `of=${path}`, 'bs=4k', 'count=64', 'oflag=direct']).ok).to.equal(true);
    expect(dd([`if=${path}`, 'of=/dev/null', 'bs=4k', 'count=64', 'iflag=direct']).ok).to.equal(true);
    expect((await statusOf(t, bname)).mismatches).to.equal(0);
  });

  it('keyed tags, an encrypted and MACed journal, discards and a meta device with recalculation load as built', async () => {
    const key = randomBytes(32).toString('hex');
    const disk = await t.fx.loop(16384);
    const keyed = {
      device: disk.dev, offset: 0, tagSize: 32, mode: 'journal' as const, allowDiscards: true, fixPadding: true, fixHmac: true, interleaveSectors: 32768, bufferSectors: 128, journalWatermark: 50, commitTime: 500,
      journalSectors: 1000, internalHash: { name: 'hmac(sha256)', key }, journalCrypt: { name: 'cbc(aes)', key }, journalMac: { name: 'hmac(sha256)', key },
    };
    const name = devName('integrity-keyed');
    await t.dm.create(name, { table: new Table([{ start: 0, length: 8192, target: targets.integrity(keyed) }]) });
    const read = await targetOf(t, name);
    // The kernel keeps whole journal sections of the size asked for and prints that size.
    expect(read.journalSectors).to.be.greaterThan(0).and.at.most(1000);
    expect(read).to.deep.equal(targets.integrity({ ...keyed, journalSectors: read.journalSectors }));
    expect(dmsetup('table', '--showkeys', name).trimEnd()).to.equal(`0 8192 integrity ${read.params}`);
    const path = (await t.dm.info(name)).path;
    const dir = scratchDir();
    try {
      const data = randomBytes(64 * 1024);
      writeFileSync(join(dir, 'data'), data);
      expect(dd([`if=${join(dir, 'data')}`, `of=${path}`, 'bs=4k', 'oflag=direct']).ok).to.equal(true);
      // -f: blkdiscard's probe would read sectors never written, whose tags do not match.
      execFileSync('blkdiscard', ['-f', '-o', '0', '-l', '32768', path], { stdio: 'ignore' });
      expect(dd([`if=${path}`, `of=${join(dir, 'copy')}`, 'bs=4k', 'count=16', 'iflag=direct']).ok).to.equal(true);
      const copy = readFileSync(join(dir, 'copy'));
      // The loop device punches the discarded half out: it reads back as zeroes, and passes.
      expect(copy.subarray(0, 32768).every((b) => b === 0)).to.equal(true);
      expect(copy.subarray(32768).equals(data.subarray(32768))).to.equal(true);
      expect((await statusOf(t, name)).mismatches).to.equal(0);
      // Without recalculate, a block never written has no valid tag: its read fails and counts.
      expect(dd([`if=${path}`, 'of=/dev/null', 'bs=4k', 'skip=100', 'count=1', 'iflag=direct']).ok).to.equal(false);
      expect((await statusOf(t, name)).mismatches).to.equal(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }

    const data = await t.fx.loop(16384);
    const meta = await t.fx.loop(4096);
    const recalc = targets.integrity({ device: data.dev, offset: 0, tagSize: 4, mode: 'journal', metaDevice: meta.dev, recalculate: true, journalSectors: 352, interleaveSectors: 1, bufferSectors: 64, journalWatermark: 50, commitTime: 10000, legacyRecalculate: true, internalHash: 'crc32c' });
    const table = new Table([{ start: 0, length: 16384, target: recalc }]);
    const mname = devName('integrity-meta');
    await t.dm.create(mname, { table });
    expect((await t.dm.table(mname))?.equals(table)).to.equal(true);
    // With a meta device the whole data device is provided; the recalculation reports its
    // sector, which reaches the end; the table still says recalculate afterwards.
    expect((await statusOf(t, mname)).recalculatingSector).to.be.a('number');
    expect(await eventually(async () => (await statusOf(t, mname)).recalculatingSector === 16384, 20000)).to.equal(true);
    const s = await statusOf(t, mname);
    expect(s).to.deep.include({ providedDataSectors: 16384, mismatches: 0 });
    expect(dmsetup('status', mname).trimEnd()).to.equal(`0 16384 integrity ${s.raw}`);
    expect((await t.dm.table(mname))?.equals(table)).to.equal(true);
  });

  it('a device made by integritysetup parses to the target our builder makes, and our client reopens it with its data', async () => {
    const disk = await t.fx.loop(65536);
    execFileSync('integritysetup', ['format', '-q', '--integrity', 'crc32c', '--tag-size', '4', '--sector-size', '4096', disk.path], { stdio: 'ignore' });
    const theirs = devName('integrity-setup');
    execFileSync('integritysetup', ['open', '--integrity', 'crc32c', disk.path, theirs], { stdio: 'ignore' });
    let table: Table | undefined;
    const data = randomBytes(256 * 1024);
    const dir = scratchDir();
    try {
      table = await t.dm.table(theirs);
      const read = table?.rows[0]?.target as IntegrityTarget | undefined;
      expect(read).to.deep.include({ type: 'integrity', device: disk.devString, tagSize: 4, mode: 'journal', blockSize: 4096, fixPadding: true, fixHmac: true });
      const ours = targets.integrity({
        device: disk.dev, offset: 0, tagSize: 4, mode: 'journal', blockSize: 4096, fixPadding: true, fixHmac: true, internalHash: 'crc32c',
        journalSectors: read?.journalSectors, interleaveSectors: read?.interleaveSectors, bufferSectors: read?.bufferSectors, journalWatermark: read?.journalWatermark, commitTime: read?.commitTime,
      });
      expect(read).to.deep.equal(ours);
      writeFileSync(join(dir, 'data'), data);
      expect(dd([`if=${join(dir, 'data')}`, `of=${(await t.dm.info(theirs)).path}`, 'bs=64k', 'oflag=direct']).ok).to.equal(true);
    } finally {
      execFileSync('integritysetup', ['close', theirs], { stdio: 'ignore' });
    }
    if (table === undefined) throw new Error('no table');
    const name = devName('integrity-ours');
    await t.dm.create(name, { table });
    try {
      expect(dd([`if=${(await t.dm.info(name)).path}`, `of=${join(dir, 'copy')}`, 'bs=64k', 'count=4', 'iflag=direct']).ok).to.equal(true);
      expect(readFileSync(join(dir, 'copy')).equals(data)).to.equal(true);
      expect((await statusOf(t, name)).mismatches).to.equal(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
