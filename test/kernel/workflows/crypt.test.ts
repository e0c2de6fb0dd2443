import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Crypt, DmError, Table, maskCryptKeys, targets } from '../../../ts/index';
import { PREFIX, TestContext, devName, dmsetup, scratchDir, timeoutAtLeast } from '../helpers';
import { rejectionOf, root } from './kit';

const MiB = 1 << 20;
/** ENOKEY, "Required key not available": Node's errno table has no name for it. */
const ENOKEY = 'E126';

/** dd with direct I/O, so every request reaches the target. */
function dd(args: string[]): void {
  execFileSync('dd', [...args, 'status=none'], { stdio: 'ignore' });
}

function writeThrough(dev: string, data: Buffer, dir: string, seekBytes = 0): void {
  const file = join(dir, `in-${randomBytes(4).toString('hex')}`);
  writeFileSync(file, data);
  dd([`if=${file}`, `of=${dev}`, 'bs=64k', `seek=${seekBytes}`, 'oflag=direct,seek_bytes', 'conv=fsync']);
  rmSync(file);
}

function readThrough(dev: string, bytes: number, dir: string, skipBytes = 0): Buffer {
  const file = join(dir, `out-${randomBytes(4).toString('hex')}`);
  dd([`if=${dev}`, `of=${file}`, 'bs=64k', `count=${bytes}`, `skip=${skipBytes}`, 'iflag=direct,count_bytes,skip_bytes']);
  const data = readFileSync(file);
  rmSync(file);
  return data;
}

/** No 64-byte piece of `plain` (one every 64 KiB) is found in `stored`. */
function holdsNoneOf(stored: Buffer, plain: Buffer): boolean {
  for (let at = 0; at + 64 <= plain.length; at += 65536) if (stored.includes(plain.subarray(at, at + 64))) return false;
  return true;
}

/** add_key(2) into the user keyring, with perl's syscall (keyctl is not installed, and Node has no call for it). */
function addKey(type: 'user' | 'logon', description: string, payload: Buffer): number {
  const out = execFileSync('perl', ['-e', 'my ($t, $d, $p) = @ARGV; $p = pack("H*", $p); my $r = syscall(248, $t, $d, $p, length($p), -4); die "add_key: $!\\n" if $r < 0; print $r', type, description, payload.toString('hex')], { encoding: 'utf8' });
  return Number(out);
}

/** keyctl(KEYCTL_UNLINK) from the user keyring; for cleanup. */
function unlinkKey(serial: number): void {
  try {
    execFileSync('perl', ['-e', 'syscall(250, 9, $ARGV[0], -4) == 0 or die "keyctl: $!\\n"', String(serial)], { stdio: 'ignore' });
  } catch {
    // already gone
  }
}

/** `cryptsetup open --type plain` with these args and a key file, for the test's body; closed after. */
async function withPlain(dir: string, device: string, key: Buffer, args: string[], body: (name: string) => Promise<void>): Promise<void> {
  const keyFile = join(dir, `key-${randomBytes(4).toString('hex')}`);
  writeFileSync(keyFile, key);
  const name = devName('crypt-peer');
  execFileSync('cryptsetup', ['open', '--type', 'plain', '--key-file', keyFile, '--key-size', String(key.length * 8), ...args, device, name], { stdio: 'ignore' });
  try {
    await body(name);
  } finally {
    execFileSync('cryptsetup', ['close', name], { stdio: 'ignore' });
    rmSync(keyFile);
  }
}

describe('Crypt: plain dm-crypt volumes', () => {
  const t = TestContext.perTest();
  let dir = '';
  beforeEach(() => {
    dir = scratchDir();
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('aes-xts-plain64 with a hex key: the table read back is the one built, table() zeroes the key as dmsetup does, data goes through encrypted, and cryptsetup plain with the same key makes the same table and reads the same data', async () => {
    const loop = await t.fx.loop(16384);
    const key = randomBytes(64);
    const name = devName('crypt');
    const volume = await Crypt.open(t.dm, name, { device: loop.dev, key });
    expect(volume.name).to.equal(name);
    expect(volume.uuid).to.match(/^DEVMAPPER-CRYPT-[0-9a-f]{16}$/);
    const built = new Table([{ start: 0, length: 16384, target: targets.crypt({ cipher: 'aes-xts-plain64', key, device: loop.dev, offset: 0 }) }]);
    const shown = await volume.table({ showKeys: true });
    expect(shown.equals(built)).to.equal(true);
    expect(shown.toString()).to.equal(dmsetup('table', '--showkeys', name).trimEnd());
    const masked = await volume.table();
    expect(masked.toString()).to.equal(dmsetup('table', name).trimEnd());
    expect(masked.toString()).to.equal(maskCryptKeys(built));
    expect(masked.toString()).to.not.contain(key.toString('hex'));
    expect((await volume.target()).key).to.deep.equal({ kind: 'hex', keySize: 64, hex: '0'.repeat(128) });
    expect((await volume.target({ showKeys: true })).key).to.deep.equal({ kind: 'hex', keySize: 64, hex: key.toString('hex') });
    const [row] = await t.dm.status(name);
    expect(row?.status).to.deep.equal({ type: 'crypt', raw: '', known: true, extra: [] });

    const plain = randomBytes(MiB);
    writeThrough(volume.path, plain, dir);
    expect(readThrough(volume.path, MiB, dir).equals(plain)).to.equal(true);
    // Through the backing device, only ciphertext.
    expect(holdsNoneOf(readFileSync(loop.file), plain)).to.equal(true);
    expect(holdsNoneOf(readThrough(loop.path, MiB, dir), plain)).to.equal(true);
    await volume.close();
    expect((await t.dm.listDevices()).some((d) => d.name === name)).to.equal(false);

    await withPlain(dir, loop.path, key, ['--cipher', 'aes-xts-plain64'], async (peer) => {
      expect((await t.dm.table(peer, { secure: true }))?.equals(built)).to.equal(true);
      expect(readThrough((await t.dm.info(peer)).path, MiB, dir).equals(plain)).to.equal(true);
      // A volume cryptsetup made is attached by name; its key stays hidden the same way.
      const theirs = await Crypt.attach(t.dm, peer);
      expect((await theirs.table()).toString()).to.equal(dmsetup('table', peer).trimEnd());
    });
  });

  it('an offset, an IV offset and 4 KiB encryption sectors are cryptsetup plain\'s --offset, --skip, --sector-size and --iv-large-sectors: the same table and the same data, the length the rest of the device', async () => {
    const loop = await t.fx.loop(8192 + 2048);
    const key = randomBytes(32);
    const name = devName('crypt-offset');
    const volume = await Crypt.open(t.dm, name, { device: loop.path, key, offset: 2048, ivOffset: 16, sectorSize: 4096, ivLargeSectors: true });
    const target = await volume.target({ showKeys: true });
    expect(target).to.deep.include({ offset: 2048, ivOffset: 16n, sectorSize: 4096, ivLargeSectors: true, device: loop.devString });
    const table = await volume.table({ showKeys: true });
    expect(table.size).to.equal(8192);
    const plain = randomBytes(MiB);
    writeThrough(volume.path, plain, dir);
    // The first MiB of the disk (before the offset) is left alone.
    expect(readFileSync(loop.file).subarray(0, MiB).equals(Buffer.alloc(MiB))).to.equal(true);
    await volume.close();

    await withPlain(dir, loop.path, key, ['--cipher', 'aes-xts-plain64', '--offset', '2048', '--skip', '16', '--sector-size', '4096', '--iv-large-sectors'], async (peer) => {
      expect((await t.dm.table(peer, { secure: true }))?.toString()).to.equal(table.toString());
      expect(readThrough((await t.dm.info(peer)).path, MiB, dir).equals(plain)).to.equal(true);
    });
  });

  it('a key of the kernel keyring (logon, added with add_key): the table names the key and never holds it, the data is that of the same key in hex, and cryptsetup plain with the key\'s bytes reads it', async () => {
    const loop = await t.fx.loop(8192);
    const key = randomBytes(64);
    const description = `dmt:${randomBytes(4).toString('hex')}`;
    const serial = addKey('logon', description, key);
    try {
      const name = devName('crypt-keyring');
      const volume = await Crypt.open(t.dm, name, { device: loop.dev, key: { keySize: 64, keyType: 'logon', description } });
      const text = `0 8192 crypt aes-xts-plain64 :64:logon:${description} 0 ${loop.devString} 0`;
      expect((await volume.table()).toString()).to.equal(text);
      expect((await volume.table({ showKeys: true })).toString()).to.equal(text);
      expect(dmsetup('table', '--showkeys', name).trimEnd()).to.equal(text);
      const plain = randomBytes(256 * 1024);
      writeThrough(volume.path, plain, dir);
      await volume.close();

      const hex = await Crypt.open(t.dm, devName('crypt-hex'), { device: loop.dev, key: key.toString('hex') });
      expect(readThrough(hex.path, plain.length, dir).equals(plain)).to.equal(true);
      await hex.close();
      await withPlain(dir, loop.path, key, ['--cipher', 'aes-xts-plain64'], async (peer) => {
        expect(readThrough((await t.dm.info(peer)).path, plain.length, dir).equals(plain)).to.equal(true);
      });
    } finally {
      unlinkKey(serial);
    }
  });

  it('bad options are refused before any ioctl, never quoting the key; a table the kernel refuses (an unknown cipher, a missing keyring key) leaves no device; a name in use is EBUSY and the volume under it is untouched', async () => {
    const loop = await t.fx.loop(4096);
    const key = randomBytes(64);
    const hex = key.toString('hex');
    const refusals: [unknown, RegExp][] = [
      [{ device: loop.dev, key, keysize: 512 }, /^Expected one of device, key, .* for options but received unknown option "keysize"$/],
      [{ device: loop.dev, key: key.subarray(0, 20) }, /^Expected a key of 32, 48 or 64 bytes .* for crypt\.key but received a key of 20 bytes$/],
      [{ device: loop.dev, key: `${hex}zz` }, /for crypt\.key but received a string of length 130$/],
      [{ device: loop.dev, key, offset: -1 }, /^Expected a non-negative safe integer for options\.offset but received number -1$/],
      [{ device: loop.dev, key, offset: 4096 }, /^Expected an offset inside the device \(4096 sectors\) for options\.offset but received number 4096$/],
      [{ key }, /^Expected 'major:minor', a \/dev path or \{ major, minor \} for options\.device but received undefined$/],
      [{ device: loop.dev, key, readOnly: 'yes' }, /^Expected a boolean for options\.readOnly but received "yes"$/],
    ];
    const before = (await t.dm.listDevices()).length;
    for (const [options, message] of refusals) {
      const e = await rejectionOf(Crypt.open(t.dm, devName('crypt-bad'), options as Parameters<typeof Crypt.open>[2]));
      expect(e.message, JSON.stringify(Object.keys(options as object))).to.match(message);
      expect(e.message).to.not.contain(hex);
      expect(e).to.satisfy((x: Error) => x instanceof TypeError || x instanceof RangeError);
    }
    const notDm = await rejectionOf(Crypt.open({} as never, devName('crypt-nodm'), { device: loop.dev, key }));
    expect(notDm).to.be.instanceOf(TypeError);
    expect(notDm.message).to.equal('Expected a DeviceMapper (DeviceMapper.open()) for dm but received object');
    // A device number with no block device behind it: its size cannot be read (sysfs, ENOENT).
    const noDevice = await rejectionOf(Crypt.open(t.dm, devName('crypt-nodev'), { device: '7:200', key }));
    expect(noDevice).to.be.instanceOf(DmError);
    expect(noDevice).to.include({ code: 'ENOENT', device: '/sys/dev/block/7:200/size' });
    expect((await t.dm.listDevices()).length).to.equal(before);

    const unknownCipher = await rejectionOf(Crypt.open(t.dm, devName('crypt-nocipher'), { device: loop.dev, key, cipher: 'nosuchcipher-xts-plain64' }));
    expect(unknownCipher).to.be.instanceOf(DmError);
    expect(unknownCipher).to.be.instanceOf(DmError).and.have.property('command', 'DM_TABLE_LOAD');
    expect(unknownCipher.message).to.not.contain(hex);
    const missing = await rejectionOf(Crypt.open(t.dm, devName('crypt-nokey'), { device: loop.dev, key: { keySize: 64, keyType: 'logon', description: `dmt:missing-${randomBytes(4).toString('hex')}` } }));
    expect(missing).to.be.instanceOf(DmError).and.have.property('code', ENOKEY);
    expect((await t.dm.listDevices()).length).to.equal(before);

    const name = devName('crypt-taken');
    const first = await Crypt.open(t.dm, name, { device: loop.dev, key });
    const plain = randomBytes(65536);
    writeThrough(first.path, plain, dir);
    const busy = await rejectionOf(Crypt.open(t.dm, name, { device: loop.dev, key: randomBytes(64) }));
    expect(busy).to.be.instanceOf(DmError).and.have.property('code', 'EBUSY');
    expect((await first.table({ showKeys: true })).rows[0]?.target).to.deep.include({ key: { kind: 'hex', keySize: 64, hex } });
    expect((await first.info()).suspended).to.equal(false);
    expect(readThrough(first.path, plain.length, dir).equals(plain)).to.equal(true);
  });

  it('close of an open volume fails with EBUSY and leaves it working; a deferred close removes it when its last opener closes it', async () => {
    const loop = await t.fx.loop(4096);
    const volume = await Crypt.open(t.dm, devName('crypt-open'), { device: loop.dev, key: randomBytes(64) });
    const fd = openSync(volume.path, 'r');
    try {
      const e = await rejectionOf(volume.close());
      expect(e).to.be.instanceOf(DmError).and.have.property('code', 'EBUSY');
      expect(await t.dm.info(volume.name)).to.deep.include({ suspended: false, activeTable: true });
      await volume.close({ deferred: true });
      expect((await t.dm.info(volume.name)).deferredRemove).to.equal(true);
    } finally {
      closeSync(fd);
    }
    expect((await t.dm.listDevices()).some((d) => d.name === volume.name)).to.equal(false);
    // The volume is gone: its calls say so rather than act on another device.
    expect(await rejectionOf(volume.table())).to.include({ code: 'ENXIO' });
  });

  it('a read-only volume with another cipher, discards passed down and a uuid of our own: the table says so, the data reads, writes are refused', async () => {
    const loop = await t.fx.loop(4096);
    const key = randomBytes(32);
    const plain = randomBytes(65536);
    const rw = await Crypt.open(t.dm, devName('crypt-rw'), { device: loop.dev, key, cipher: { capi: 'cbc(aes)', ivMode: 'essiv', ivOptions: 'sha256' } });
    writeThrough(rw.path, plain, dir);
    await rw.close();
    const uuid = `DMT-CRYPT-${randomBytes(4).toString('hex')}`;
    const ro = await Crypt.open(t.dm, devName('crypt-ro'), { device: loop.dev, key, cipher: 'capi:cbc(aes)-essiv:sha256', readOnly: true, allowDiscards: true, uuid });
    expect(ro.uuid).to.equal(uuid);
    expect((await ro.info()).readOnly).to.equal(true);
    expect(await ro.target()).to.deep.include({ allowDiscards: true, cipher: { spec: 'capi:cbc(aes)-essiv:sha256', form: 'capi', cipher: null, chainMode: null, api: 'cbc(aes)', keyCount: 1, ivMode: 'essiv', ivOptions: 'sha256' } });
    expect(readThrough(ro.path, plain.length, dir).equals(plain)).to.equal(true);
    expect(() => writeThrough(ro.path, plain, dir)).to.throw();
    expect(holdsNoneOf(readFileSync(loop.file), plain)).to.equal(true);
  });

  it('Crypt.attach refuses a device that is not a crypt volume', async () => {
    const loop = await t.fx.loop(2048);
    const name = devName('crypt-linear');
    await t.dm.create(name, { table: new Table([{ start: 0, length: 2048, target: targets.linear({ device: loop.dev, offset: 0 }) }]) });
    const e = await rejectionOf(Crypt.attach(t.dm, name));
    expect(e).to.be.instanceOf(RangeError);
    expect(e.message).to.equal(`Expected a crypt volume for id but received "${name} (rows of type linear)"`);
  });

  it('examples/crypt.js runs, and every table it loads or reads goes with DM_SECURE_DATA', function () {
    timeoutAtLeast(this, 120000);
    const trace = join(dir, 'strace.txt');
    const env = { ...process.env, DEVMAPPER_EXAMPLE_PREFIX: `${PREFIX}example-` };
    const r = spawnSync('strace', ['-f', '-e', 'trace=ioctl', '-o', trace, process.execPath, join(root, 'examples', 'crypt.js')], { cwd: root, env, encoding: 'utf8', timeout: 110000 });
    expect(r.status, `${r.stdout}${r.stderr}`).to.equal(0);
    const out = r.stdout;
    expect(out).to.match(/^opened dmt-example-crypt-demo at \/dev\/dm-\d+ over \/dev\/loop\d+$/m);
    expect(out).to.match(/^table: 0 16384 crypt aes-xts-plain64 0{128} 0 7:\d+ 0$/m);
    expect(out).to.contain('table with showKeys holds the key: true');
    expect(out).to.contain('read back through the volume: "a secret written through dm-crypt"');
    expect(out).to.contain('the backing disk holds the plaintext: false');
    expect(out).to.match(/^closed$/m);
    const lines = readFileSync(trace, 'utf8').split('\n').filter((l) => / DM_[A-Z_]+, /.test(l));
    const loads = lines.filter((l) => l.includes(' DM_TABLE_LOAD, '));
    expect(loads).to.have.length(1);
    expect(loads[0]).to.contain('DM_SECURE_DATA_FLAG');
    const reads = lines.filter((l) => l.includes(' DM_TABLE_STATUS, ') && l.split(' => ')[0]?.includes('DM_STATUS_TABLE_FLAG'));
    expect(reads.length).to.be.at.least(2);
    for (const l of reads) expect(l.split(' => ')[0]).to.contain('DM_SECURE_DATA_FLAG');
  });
});
