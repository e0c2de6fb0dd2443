import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DmError, Table, blockDiscard, cryptMessages, maskCryptKeys, targets, type CryptTarget } from '../../../ts/index';
import { TestContext, devName, dmsetup, scratchDir } from '../helpers';

/** Direct I/O with dd, so every request reaches the target (no page cache). */
function dd(args: string[]): void {
  execFileSync('dd', [...args, 'status=none'], { stdio: 'ignore' });
}

/** Writes `data` at byte 0 of `dev`, bypassing the page cache. */
function writeThrough(dev: string, data: Buffer, dir: string): void {
  const file = join(dir, `in-${randomBytes(4).toString('hex')}`);
  writeFileSync(file, data);
  dd([`if=${file}`, `of=${dev}`, 'bs=64k', 'oflag=direct', 'conv=fsync']);
  rmSync(file);
}

/** Reads `bytes` from byte 0 of `dev`, bypassing the page cache. */
function readThrough(dev: string, bytes: number, dir: string): Buffer {
  const file = join(dir, `out-${randomBytes(4).toString('hex')}`);
  dd([`if=${dev}`, `of=${file}`, 'bs=64k', `count=${bytes / 65536}`, 'iflag=direct']);
  const data = readFileSync(file);
  rmSync(file);
  return data;
}

/** The device's only row's typed status. */
async function statusOf(t: TestContext, name: string) {
  const [row] = await t.dm.status(name);
  if (row === undefined || !row.status.known || row.status.type !== 'crypt') throw new Error(`no typed crypt status for ${name}`);
  return row.status;
}

/** Adds a key to the user keyring with add_key(2) (keyctl is not installed; perl's syscall is). Returns its serial. */
function addKey(type: 'user' | 'logon', description: string, payload: Buffer): number {
  const out = execFileSync('perl', ['-e', 'my ($t, $d, $p) = @ARGV; $p = pack("H*", $p); my $r = syscall(248, $t, $d, $p, length($p), -4); die "add_key: $!\\n" if $r < 0; print $r', type, description, payload.toString('hex')], { encoding: 'utf8' });
  return Number(out);
}

/** Unlinks a key from the user keyring (keyctl(KEYCTL_UNLINK)); best effort, for cleanup. */
function unlinkKey(serial: number): void {
  try {
    execFileSync('perl', ['-e', 'syscall(250, 9, $ARGV[0], -4) == 0 or die "keyctl: $!\\n"', String(serial)], { stdio: 'ignore' });
  } catch {
    // already gone
  }
}

/** The error code of a rejected promise. */
async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof DmError) return e.code;
    throw e;
  }
  throw new Error('no error');
}

const MiB = 1024 * 1024;
/** ENOKEY, "Required key not available": Node's errno table has no name for it. */
const ENOKEY = 'E126';

describe('crypt in the kernel', () => {
  const t = TestContext.perTest();
  let dir = '';
  beforeEach(() => {
    dir = scratchDir();
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('aes-xts-plain64 with a hex key built with targets.crypt, created with { secure: true }: reads back equal, dmsetup agrees, data goes through encrypted, and cryptsetup plain reads it', async () => {
    const loop = await t.fx.loop(16384);
    const key = randomBytes(64);
    const target = targets.crypt({ cipher: 'aes-xts-plain64', key, device: loop.dev, offset: 0 });
    const table = new Table([{ start: 0, length: 16384, target }]);
    const name = devName('crypt');
    await t.dm.create(name, { table, secure: true });
    const back = await t.dm.table(name);
    expect(back?.equals(table)).to.equal(true);
    expect(back?.rows[0]?.target).to.deep.equal(target);
    expect(back?.toString()).to.equal(table.toString());
    expect((back?.rows[0]?.target as CryptTarget).key).to.deep.equal({ kind: 'hex', keySize: 64, hex: key.toString('hex') });
    expect(dmsetup('table', '--showkeys', name).trimEnd()).to.equal(table.toString());
    // Without --showkeys dmsetup zeroes the key, as maskCryptKeys does.
    expect(dmsetup('table', name).trimEnd()).to.equal(maskCryptKeys(table));
    const s = await statusOf(t, name);
    expect(s).to.deep.equal({ type: 'crypt', raw: '', known: true, extra: [] });
    expect(dmsetup('status', name).trimEnd()).to.equal('0 16384 crypt');

    const path = (await t.dm.info(name)).path;
    const plain = randomBytes(MiB);
    writeThrough(path, plain, dir);
    expect(readThrough(path, MiB, dir).equals(plain)).to.equal(true);
    // The backing device holds ciphertext: not the plaintext, nor any 64-byte piece of it.
    const stored = readFileSync(loop.file).subarray(0, MiB);
    expect(stored.equals(plain)).to.equal(false);
    for (let at = 0; at < MiB; at += 65536) expect(stored.indexOf(plain.subarray(at, at + 64))).to.equal(-1);
    await t.dm.remove(name);

    // cryptsetup's plain mode with the same cipher and key makes the same mapping, and reads the same data.
    const keyFile = join(dir, 'key');
    writeFileSync(keyFile, key);
    const peer = devName('crypt-plain');
    execFileSync('cryptsetup', ['open', '--type', 'plain', '--cipher', 'aes-xts-plain64', '--key-size', '512', '--key-file', keyFile, loop.path, peer], { stdio: 'ignore' });
    try {
      const theirs = await t.dm.table(peer);
      expect(theirs?.equals(table)).to.equal(true);
      expect(readThrough((await t.dm.info(peer)).path, MiB, dir).equals(plain)).to.equal(true);
    } finally {
      execFileSync('cryptsetup', ['close', peer], { stdio: 'ignore' });
    }
  });

  it('suspend, key wipe, key set and resume: resume is refused without a key, and the data reads again with it', async () => {
    const loop = await t.fx.loop(8192);
    const key = randomBytes(64);
    const target = targets.crypt({ cipher: 'aes-xts-plain64', key, device: loop.dev, offset: 0 });
    const name = devName('crypt-key');
    await t.dm.create(name, { table: new Table([{ start: 0, length: 8192, target }]), secure: true });
    const path = (await t.dm.info(name)).path;
    const plain = randomBytes(256 * 1024);
    writeThrough(path, plain, dir);

    // Key messages are refused while the device is live.
    expect(await codeOf(t.dm.message(name, cryptMessages.keyWipe(), { secure: true }))).to.equal('EINVAL');
    await t.dm.suspend(name);
    await t.dm.message(name, cryptMessages.keyWipe(), { secure: true });
    // After a wipe the table shows a key of zeroes of the key's size.
    const wiped = (await t.dm.table(name))?.rows[0]?.target as CryptTarget;
    expect(wiped.key).to.deep.equal({ kind: 'hex', keySize: 64, hex: '0'.repeat(128) });
    expect(await codeOf(t.dm.resume(name))).to.equal('EAGAIN');
    // A key of another size is refused.
    expect(await codeOf(t.dm.message(name, cryptMessages.keySet(randomBytes(32)), { secure: true }))).to.equal('EINVAL');
    await t.dm.message(name, cryptMessages.keySet(key), { secure: true });
    await t.dm.resume(name);
    expect((await t.dm.table(name))?.rows[0]?.target).to.deep.equal(target);
    expect(readThrough(path, plain.length, dir).equals(plain)).to.equal(true);
  });

  it('a key of the kernel keyring (logon and user, added with add_key): the table reads back equal, key set swaps keys, and the data is that of the same hex key', async () => {
    const loop = await t.fx.loop(8192);
    const key = randomBytes(64);
    const tag = randomBytes(4).toString('hex');
    const serials = [addKey('logon', `dmt:${tag}`, key), addKey('user', `dmt-${tag}`, key)];
    try {
      const target = targets.crypt({ cipher: 'aes-xts-plain64', key: { keySize: 64, keyType: 'logon', description: `dmt:${tag}` }, device: loop.dev, offset: 0 });
      expect(target.params).to.equal(`aes-xts-plain64 :64:logon:dmt:${tag} 0 ${loop.devString} 0`);
      const table = new Table([{ start: 0, length: 8192, target }]);
      const name = devName('crypt-kr');
      await t.dm.create(name, { table, secure: true });
      expect((await t.dm.table(name))?.equals(table)).to.equal(true);
      // dmsetup shows a keyring key as it is, with or without --showkeys.
      expect(dmsetup('table', name).trimEnd()).to.equal(table.toString());
      expect(maskCryptKeys(table)).to.equal(table.toString());
      const plain = randomBytes(256 * 1024);
      writeThrough((await t.dm.info(name)).path, plain, dir);

      await t.dm.suspend(name);
      const user = { keySize: 64, keyType: 'user' as const, description: `dmt-${tag}` };
      await t.dm.message(name, cryptMessages.keySet(user), { secure: true });
      await t.dm.resume(name);
      expect(((await t.dm.table(name))?.rows[0]?.target as CryptTarget).key).to.deep.equal({ kind: 'keyring', ...user });
      await t.dm.remove(name);

      // The keyring key is the key's bytes: a mapping with the same key in hex reads the data.
      const hex = targets.crypt({ cipher: 'aes-xts-plain64', key: key.toString('hex'), device: loop.dev, offset: 0 });
      const other = devName('crypt-hex');
      await t.dm.create(other, { table: new Table([{ start: 0, length: 8192, target: hex }]), secure: true });
      expect(readThrough((await t.dm.info(other)).path, plain.length, dir).equals(plain)).to.equal(true);
      await t.dm.remove(other);

      // A key the keyring does not hold is refused at load (ENOKEY).
      const missing = targets.crypt({ cipher: 'aes-xts-plain64', key: { keySize: 64, keyType: 'logon', description: `dmt:missing-${tag}` }, device: loop.dev, offset: 0 });
      expect(await codeOf(t.dm.create(devName('crypt-nokey'), { table: new Table([{ start: 0, length: 8192, target: missing }]), secure: true }))).to.equal(ENOKEY);
    } finally {
      for (const s of serials) unlinkKey(s);
    }
  });

  it('sector_size:4096 with iv_large_sectors and every flag, and allow_discards: read back equal, 4 KiB logical blocks, discards reach the device', async () => {
    const loop = await t.fx.loop(8192 + 8);
    const target = targets.crypt({
      cipher: 'aes-xts-plain64',
      key: randomBytes(32),
      ivOffset: 16,
      device: loop.dev,
      offset: 8,
      sectorSize: 4096,
      ivLargeSectors: true,
      allowDiscards: true,
      sameCpuCrypt: true,
      submitFromCryptCpus: true,
      noReadWorkqueue: true,
      noWriteWorkqueue: true,
    });
    expect(target.params).to.match(/ 16 7:\d+ 8 7 allow_discards same_cpu_crypt submit_from_crypt_cpus no_read_workqueue no_write_workqueue sector_size:4096 iv_large_sectors$/);
    const table = new Table([{ start: 0, length: 8192, target }]);
    const name = devName('crypt-4k');
    await t.dm.create(name, { table, secure: true });
    expect((await t.dm.table(name))?.equals(table)).to.equal(true);
    expect((await t.dm.table(name))?.rows[0]?.target).to.deep.equal(target);
    expect(dmsetup('table', '--showkeys', name).trimEnd()).to.equal(table.toString());
    const info = await t.dm.info(name);
    const blkdev = info.path.replace('/dev/', '');
    expect(readFileSync(`/sys/block/${blkdev}/queue/logical_block_size`, 'utf8').trim()).to.equal('4096');
    const plain = randomBytes(MiB);
    writeThrough(info.path, plain, dir);
    expect(readThrough(info.path, MiB, dir).equals(plain)).to.equal(true);
    // The data starts at sector 8 of the device; a discard through the mapping frees it there.
    const before = readFileSync(loop.file).subarray(4096, 4096 + 65536);
    expect(before.equals(Buffer.alloc(65536))).to.equal(false);
    await blockDiscard(info.path, 0, 65536);
    expect(readFileSync(loop.file).subarray(4096, 4096 + 65536).equals(Buffer.alloc(65536))).to.equal(true);
    await t.dm.remove(name);

    // Without allow_discards, the mapping takes no discards.
    const plainTarget = targets.crypt({ cipher: 'aes-xts-plain64', key: randomBytes(64), device: loop.dev, offset: 0 });
    const name2 = devName('crypt-nodiscard');
    await t.dm.create(name2, { table: new Table([{ start: 0, length: 8192, target: plainTarget }]), secure: true });
    expect(await codeOf(blockDiscard((await t.dm.info(name2)).path, 0, 65536))).to.equal('ENOTSUP'); // EOPNOTSUPP, the same errno on Linux
  });

  it('capi:cbc(aes)-essiv:sha256, aes:2-cbc-plain and cipher_null-ecb with no key read back equal', async () => {
    const loop = await t.fx.loop(8192);
    const variants = [
      targets.crypt({ cipher: { capi: 'cbc(aes)', ivMode: 'essiv', ivOptions: 'sha256' }, key: randomBytes(32), device: loop.dev, offset: 0 }),
      targets.crypt({ cipher: { cipher: 'aes', keyCount: 2, chainMode: 'cbc', ivMode: 'plain' }, key: randomBytes(32), device: loop.dev, offset: 0 }),
      targets.crypt({ cipher: 'cipher_null-ecb', key: null, device: loop.dev, offset: 0 }),
    ];
    for (const target of variants) {
      const table = new Table([{ start: 0, length: 8192, target }]);
      const name = devName('crypt-v');
      await t.dm.create(name, { table, secure: true });
      expect((await t.dm.table(name))?.equals(table)).to.equal(true);
      expect(dmsetup('table', '--showkeys', name).trimEnd()).to.equal(table.toString());
      await t.dm.remove(name);
    }
    // cipher_null stores the plaintext as it is (it is not encryption).
    const name = devName('crypt-null');
    const nul = variants[2];
    if (nul === undefined) throw new Error('no variant');
    await t.dm.create(name, { table: new Table([{ start: 0, length: 8192, target: nul }]), secure: true });
    const plain = randomBytes(65536);
    writeThrough((await t.dm.info(name)).path, plain, dir);
    expect(readFileSync(loop.file).subarray(0, 65536).equals(plain)).to.equal(true);
  });

  it('a cryptsetup LUKS2 mapping (keyring key, data after the header) reads back; its table cannot be reloaded as read, cryptsetup having dropped the key from the keyring', async () => {
    const loop = await t.fx.loop(65536);
    const pw = join(dir, 'pw');
    writeFileSync(pw, 'passphrase');
    execFileSync('cryptsetup', ['luksFormat', '-q', '--type', 'luks2', '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000', '--key-file', pw, loop.path], { stdio: 'ignore' });
    const name = devName('crypt-luks');
    execFileSync('cryptsetup', ['open', '--key-file', pw, loop.path, name], { stdio: 'ignore' });
    try {
      const table = await t.dm.table(name);
      const target = table?.rows[0]?.target as CryptTarget;
      expect(target.type).to.equal('crypt');
      expect(target.key).to.deep.include({ kind: 'keyring', keySize: 64, keyType: 'logon' });
      expect(target.key.kind === 'keyring' && target.key.description).to.match(/^cryptsetup:[0-9a-f-]+-d0$/);
      expect(target.offset).to.equal(32768);
      expect(table?.toString()).to.equal(dmsetup('table', '--showkeys', name).trimEnd());
      if (table === undefined) throw new Error('no table');
      // A load looks the keyring key up again, and cryptsetup unlinks it after activation: a
      // reload of the table as read back is refused (ENOKEY) and the live table stays.
      expect(await codeOf(t.dm.reload(name, table, { secure: true }))).to.equal(ENOKEY);
      expect((await t.dm.table(name))?.equals(table)).to.equal(true);
      expect((await t.dm.info(name)).suspended).to.equal(false);
    } finally {
      execFileSync('cryptsetup', ['close', name], { stdio: 'ignore' });
    }
  });
});
