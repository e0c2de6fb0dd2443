import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DmError, Integrity, Table, targets } from '../../../ts/index';
import { PREFIX, TestContext, devName, dmsetup, scratchDir, timeoutAtLeast } from '../helpers';
import { writeAt } from './block-io';
import { ddStatus, rejectionOf, root } from './kit';

/** `integritysetup dump`: its `key value` lines. */
function dump(device: string): Record<string, string> {
  const out = execFileSync('integritysetup', ['dump', device], { encoding: 'utf8' });
  const fields: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const m = /^(\w+) (.*)$/.exec(line.trim());
    if (m?.[1] !== undefined && m[2] !== undefined) fields[m[1]] = m[2].trim();
  }
  return fields;
}

/** Flips one byte of a file in place. */
function flipByte(file: string, at: number): void {
  const byte = readFileSync(file).subarray(at, at + 1);
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, Buffer.from([(byte[0] ?? 0) ^ 0xff]), 0, 1, at);
  } finally {
    closeSync(fd);
  }
}

describe('Integrity: standalone dm-integrity volumes', () => {
  const t = TestContext.perTest();
  let dir = '';
  beforeEach(() => {
    dir = scratchDir();
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('format (journal, crc32c, 4-byte tags) lays out the device as integritysetup does, every sector reads, data reads back, and a tampered byte on the backing device fails its read with EILSEQ and counts a mismatch', async () => {
    const disk = await t.fx.loop(16384);
    // integritysetup's layout of the same disk first, as the reference (superblock only).
    execFileSync('integritysetup', ['format', '-q', '--integrity', 'crc32c', '--tag-size', '4', '--no-wipe', disk.path], { stdio: 'ignore' });
    const theirs = dump(disk.path);

    const name = devName('integrity');
    const volume = await Integrity.format(t.dm, name, { device: disk.dev, tagSize: 4, internalHash: 'crc32c' });
    const status = await volume.status();
    expect(status).to.deep.include({ mismatches: 0, providedDataSectors: volume.providedDataSectors, recalculatingSector: null });
    expect(volume.providedDataSectors).to.equal(Number(theirs.provided_data_sectors));
    const target = await volume.target();
    expect(target).to.deep.include({ device: disk.devString, offset: 0, tagSize: 4, mode: 'journal', fixPadding: true, fixHmac: true, internalHash: { name: 'crc32c', key: undefined } });
    const table = new Table([{ start: 0, length: volume.providedDataSectors, target }]);
    expect(dmsetup('table', name).trimEnd()).to.equal(table.toString());
    expect(dmsetup('status', name).trimEnd()).to.equal(`0 ${volume.providedDataSectors} integrity ${status.raw}`);
    // The wipe gave every sector a valid tag: the whole device reads.
    expect(ddStatus([`if=${volume.path}`, 'of=/dev/null', 'bs=1M', 'iflag=direct']).ok).to.equal(true);
    expect((await volume.status()).mismatches).to.equal(0);

    const data = randomBytes(1 << 20);
    writeFileSync(join(dir, 'data'), data);
    expect(ddStatus([`if=${join(dir, 'data')}`, `of=${volume.path}`, 'bs=64k', 'oflag=direct', 'conv=fsync']).ok).to.equal(true);
    expect(ddStatus([`if=${volume.path}`, `of=${join(dir, 'copy')}`, 'bs=64k', 'count=16', 'iflag=direct']).ok).to.equal(true);
    expect(readFileSync(join(dir, 'copy')).equals(data)).to.equal(true);
    await volume.close();
    // The superblock we had the kernel write reads as integritysetup's.
    expect(dump(disk.path)).to.deep.equal(theirs);

    // Closing committed the journal: sector 100's data sits in the data area (the last copy).
    const raw = readFileSync(disk.file);
    const at = raw.lastIndexOf(data.subarray(100 * 512, 101 * 512));
    expect(at).to.be.greaterThan(0);
    flipByte(disk.file, at + 17);
    const again = await Integrity.open(t.dm, name, { device: disk.path, tagSize: 4, internalHash: 'crc32c' });
    expect(again.providedDataSectors).to.equal(volume.providedDataSectors);
    expect(ddStatus([`if=${again.path}`, 'of=/dev/null', 'bs=512', 'count=100', 'iflag=direct']).ok).to.equal(true);
    const bad = ddStatus([`if=${again.path}`, 'of=/dev/null', 'bs=512', 'skip=100', 'count=1', 'iflag=direct']);
    expect(bad.ok).to.equal(false);
    // EILSEQ: "Invalid or incomplete multibyte or wide character".
    expect(bad.stderr).to.match(/Invalid or incomplete multibyte or wide character/);
    expect((await again.status()).mismatches).to.be.at.least(1);
    // The sectors after it are intact.
    expect(ddStatus([`if=${again.path}`, `of=${join(dir, 'rest')}`, 'bs=512', 'skip=101', 'count=100', 'iflag=direct']).ok).to.equal(true);
    expect(readFileSync(join(dir, 'rest')).equals(data.subarray(101 * 512, 201 * 512))).to.equal(true);
  });

  it('integritysetup opens a volume we formatted and reads our data; we open one integritysetup formatted and read its data', async () => {
    const disk = await t.fx.loop(16384);
    const data = randomBytes(256 * 1024);
    writeFileSync(join(dir, 'data'), data);
    const ours = await Integrity.format(t.dm, devName('integrity-ours'), { device: disk.dev, tagSize: 4 });
    expect(ddStatus([`if=${join(dir, 'data')}`, `of=${ours.path}`, 'bs=64k', 'oflag=direct', 'conv=fsync']).ok).to.equal(true);
    await ours.close();
    const peer = devName('integrity-peer');
    execFileSync('integritysetup', ['open', '--integrity', 'crc32c', disk.path, peer], { stdio: 'ignore' });
    try {
      const path = (await t.dm.info(peer)).path;
      expect(ddStatus([`if=${path}`, `of=${join(dir, 'copy')}`, 'bs=64k', 'count=4', 'iflag=direct']).ok).to.equal(true);
      expect(readFileSync(join(dir, 'copy')).equals(data)).to.equal(true);
      // The same superblock gives the same table.
      expect((await t.dm.table(peer))?.rows[0]?.target).to.deep.include({ tagSize: 4, mode: 'journal', fixPadding: true, fixHmac: true });
    } finally {
      execFileSync('integritysetup', ['close', peer], { stdio: 'ignore' });
    }

    const other = await t.fx.loop(16384);
    execFileSync('integritysetup', ['format', '-q', '--integrity', 'sha256', '--tag-size', '32', '--sector-size', '4096', other.path], { stdio: 'ignore' });
    const theirs = devName('integrity-theirs');
    execFileSync('integritysetup', ['open', '--integrity', 'sha256', other.path, theirs], { stdio: 'ignore' });
    try {
      expect(ddStatus([`if=${join(dir, 'data')}`, `of=${(await t.dm.info(theirs)).path}`, 'bs=64k', 'oflag=direct', 'conv=fsync']).ok).to.equal(true);
    } finally {
      execFileSync('integritysetup', ['close', theirs], { stdio: 'ignore' });
    }
    const volume = await Integrity.open(t.dm, devName('integrity-open'), { device: other.dev, tagSize: 32, internalHash: 'sha256', blockSize: 4096 });
    expect(volume.providedDataSectors).to.equal(Number(dump(other.path).provided_data_sectors));
    expect(ddStatus([`if=${volume.path}`, `of=${join(dir, 'copy2')}`, 'bs=64k', 'count=4', 'iflag=direct']).ok).to.equal(true);
    expect(readFileSync(join(dir, 'copy2')).equals(data)).to.equal(true);
    expect((await volume.status()).mismatches).to.equal(0);
  });

  it('bitmap mode with sha256 tags on 4 KiB blocks after an offset, opened again read-only: the table has them, the sectors before the offset are left alone, the data reads and writes are refused', async () => {
    const disk = await t.fx.loop(16384 + 64);
    writeAt(disk.file, Buffer.alloc(32768, 0xa5), 0);
    const uuid = `DMT-INTEGRITY-${randomBytes(4).toString('hex')}`;
    const volume = await Integrity.format(t.dm, devName('integrity-bitmap'), { device: disk.dev, offset: 64, tagSize: 32, internalHash: 'sha256', mode: 'bitmap', blockSize: 4096, journalSectors: 264, fixHmac: false, uuid });
    expect(volume.uuid).to.equal(uuid);
    expect(await volume.target()).to.deep.include({ offset: 64, tagSize: 32, mode: 'bitmap', blockSize: 4096, fixPadding: true, fixHmac: false, internalHash: { name: 'sha256', key: undefined } });
    expect(readFileSync(disk.file).subarray(0, 32768).equals(Buffer.alloc(32768, 0xa5))).to.equal(true);
    const data = randomBytes(128 * 1024);
    writeFileSync(join(dir, 'data'), data);
    expect(ddStatus([`if=${join(dir, 'data')}`, `of=${volume.path}`, 'bs=64k', 'oflag=direct', 'conv=fsync']).ok).to.equal(true);
    await volume.close();
    const ro = await Integrity.open(t.dm, devName('integrity-ro'), { device: disk.dev, offset: 64, tagSize: 32, internalHash: 'sha256', mode: 'bitmap', blockSize: 4096, readOnly: true });
    expect((await ro.info()).readOnly).to.equal(true);
    expect(ro.providedDataSectors).to.equal(volume.providedDataSectors);
    expect(ddStatus([`if=${ro.path}`, `of=${join(dir, 'copy')}`, 'bs=64k', 'count=2', 'iflag=direct']).ok).to.equal(true);
    expect(readFileSync(join(dir, 'copy')).equals(data)).to.equal(true);
    expect(ddStatus([`if=${join(dir, 'data')}`, `of=${ro.path}`, 'bs=64k', 'count=1', 'oflag=direct']).ok).to.equal(false);
    expect((await ro.status()).mismatches).to.equal(0);
  });

  it('without the wipe, a sector never written fails its read with EILSEQ: why format wipes', async () => {
    const disk = await t.fx.loop(8192);
    const volume = await Integrity.format(t.dm, devName('integrity-nowipe'), { device: disk.dev, tagSize: 4, wipe: false });
    const r = ddStatus([`if=${volume.path}`, 'of=/dev/null', 'bs=4k', 'skip=10', 'count=1', 'iflag=direct']);
    expect(r.ok).to.equal(false);
    expect(r.stderr).to.match(/Invalid or incomplete multibyte or wide character/);
    expect((await volume.status()).mismatches).to.be.at.least(1);
  });

  it('bad options are refused before any I/O; open of a device holding no integrity superblock, and format of a device in use, touch nothing; format under a name in use or with a table the kernel refuses writes the device\'s first 4 KiB back; an aborted wipe removes the device; a tag size the superblock does not have is refused by the kernel and leaves no device', async () => {
    const disk = await t.fx.loop(8192);
    writeFileSync(join(dir, 'marker'), 'not an integrity superblock');
    expect(ddStatus([`if=${join(dir, 'marker')}`, `of=${disk.path}`, 'conv=fsync']).ok).to.equal(true);
    const before = readFileSync(disk.file).subarray(0, 4096);
    const refusals: [unknown, RegExp][] = [
      [{ device: disk.dev, tagsize: 4 }, /^Expected one of device, .* for options but received unknown option "tagsize"$/],
      [{ device: disk.dev, tagSize: 1000 }, /^Expected an integer from 1 to 424 for integrity\.tagSize but received number 1000$/],
      [{ device: disk.dev, mode: 'recovery' }, /^Expected "journal", "bitmap" or "direct" for options\.mode but received "recovery"$/],
      [{ device: disk.dev, blockSize: 1000 }, /for integrity\.blockSize but received number 1000$/],
      [{ device: disk.dev, readOnly: true }, /^Expected no readOnly .* for options\.readOnly but received boolean true$/],
      [{ device: disk.dev, onProgress: 1 }, /^Expected a function for options\.onProgress but received number 1$/],
      [{}, /^Expected 'major:minor', a \/dev path or \{ major, minor \} for options\.device but received undefined$/],
    ];
    for (const [options, message] of refusals) {
      const e = await rejectionOf(Integrity.format(t.dm, devName('integrity-bad'), options as Parameters<typeof Integrity.format>[2]));
      expect(e.message, JSON.stringify(options)).to.match(message);
    }
    // A device with other data at its start: open refuses it (the kernel would refuse it too, or format a zeroed one).
    const notOurs = await rejectionOf(Integrity.open(t.dm, devName('integrity-notours'), { device: disk.dev }));
    expect(notOurs).to.be.instanceOf(RangeError);
    expect(notOurs.message).to.equal(`Expected a device holding an integrity superblock at sector 0 for options.device but received "${disk.path}"`);
    expect(readFileSync(disk.file).subarray(0, 4096).equals(before)).to.equal(true);

    // A device a mapping holds is busy: format neither writes nor creates anything.
    const holder = devName('integrity-holder');
    await t.dm.create(holder, { table: new Table([{ start: 0, length: 8192, target: targets.linear({ device: disk.dev, offset: 0 }) }]) });
    const busy = await rejectionOf(Integrity.format(t.dm, devName('integrity-busy'), { device: disk.dev }));
    expect(busy).to.be.instanceOf(DmError);
    expect(busy).to.include({ code: 'EBUSY', syscall: 'open', device: disk.path });
    expect(readFileSync(disk.file).subarray(0, 4096).equals(before)).to.equal(true);
    // A name in use, and a table the kernel refuses (a hash it lacks): what the device held at
    // its start is written back.
    const taken = await rejectionOf(Integrity.format(t.dm, holder, { device: '/dev/null' }));
    expect(taken.message).to.equal(`Expected a block device for options.device but received "/dev/null"`);
    await t.dm.remove(holder);
    await t.dm.create(holder, { table: new Table([{ start: 0, length: 8, target: targets.zero() }]) });
    const nameInUse = await rejectionOf(Integrity.format(t.dm, holder, { device: disk.dev }));
    expect(nameInUse).to.include({ code: 'EBUSY', command: 'DM_DEV_CREATE' });
    expect(readFileSync(disk.file).subarray(0, 4096).equals(before)).to.equal(true);
    await t.dm.remove(holder);
    const refused = await rejectionOf(Integrity.format(t.dm, devName('integrity-nohash'), { device: disk.dev, internalHash: 'nosuchhash' }));
    expect(refused).to.be.instanceOf(DmError);
    expect(refused).to.include({ command: 'DM_TABLE_LOAD' });
    expect(readFileSync(disk.file).subarray(0, 4096).equals(before)).to.equal(true);
    const names = async (): Promise<string[]> => (await t.dm.listDevices()).map((d) => d.name).filter((n) => n.startsWith(PREFIX));
    expect(await names()).to.deep.equal([]);
    await rejectionOf(Integrity.format({} as never, devName('integrity-nodm'), { device: disk.dev })).then((e) => {
      expect(e).to.be.instanceOf(TypeError);
      expect(e.message).to.equal('Expected a DeviceMapper (DeviceMapper.open()) for dm but received object');
    });
    expect(readFileSync(disk.file).subarray(0, 4096).equals(before)).to.equal(true);

    // Aborted after the first MiB of the wipe: the device made is removed, the reason is the rejection.
    const controller = new AbortController();
    const reason = new Error('stop the wipe');
    let calls = 0;
    const aborted = await rejectionOf(Integrity.format(t.dm, devName('integrity-abort'), {
      device: disk.dev,
      signal: controller.signal,
      onProgress: (written, total) => {
        calls++;
        expect(written).to.equal(2048);
        expect(total).to.be.greaterThan(2048);
        controller.abort(reason);
      },
    }));
    expect(aborted).to.equal(reason);
    expect(calls).to.equal(1);
    expect(await names()).to.deep.equal([]);

    // The disk holds a crc32c superblock with 4-byte tags now: 8-byte tags are the kernel's to refuse.
    const wrongTag = await rejectionOf(Integrity.open(t.dm, devName('integrity-wrongtag'), { device: disk.dev, tagSize: 8 }));
    expect(wrongTag).to.be.instanceOf(DmError);
    expect(wrongTag).to.be.instanceOf(DmError).and.have.property('code', 'EINVAL');
    expect(await names()).to.deep.equal([]);
  });

  it('examples/integrity.js runs: a tampered sector fails its read and is counted', function () {
    timeoutAtLeast(this, 120000);
    const env = { ...process.env, DEVMAPPER_EXAMPLE_PREFIX: `${PREFIX}example-` };
    const r = spawnSync(process.execPath, [join(root, 'examples', 'integrity.js')], { cwd: root, env, encoding: 'utf8', timeout: 110000 });
    expect(r.status, `${r.stdout}${r.stderr}`).to.equal(0);
    expect(r.stdout).to.match(/^formatted dmt-example-integrity-demo at \/dev\/dm-\d+: \d+ data sectors, 4-byte crc32c tags, journal mode$/m);
    expect(r.stdout).to.contain('read back: "checked on every read"');
    expect(r.stdout).to.match(/^after tampering with the backing disk: read failed with EIO, mismatch counted: true$/m);
  });
});
