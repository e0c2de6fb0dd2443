import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DmError, Table, Verity, targets, type LoopDevice, type VerityHashTree } from '../../../ts/index';
import { PREFIX, TestContext, devName, dmsetup, scratchDir, timeoutAtLeast } from '../helpers';
import { writeAt } from './block-io';
import { ddStatus, rejectionOf, root } from './kit';

/** veritysetup's arguments for a tree without a superblock. */
function peerArgs(tree: VerityHashTree): string[] {
  return [
    '--no-superblock', '--format', String(tree.version), '--hash', tree.algorithm, '--salt', tree.salt ?? '-',
    '--data-block-size', String(tree.dataBlockSize), '--hash-block-size', String(tree.hashBlockSize),
    '--data-blocks', String(tree.dataBlocks), '--hash-offset', String(tree.hashStartBlock * tree.hashBlockSize),
  ];
}

/** A data disk of random blocks and an empty hash disk. */
async function disks(t: TestContext, blocks: number): Promise<{ data: Buffer; dataDisk: LoopDevice; hashDisk: LoopDevice }> {
  const dataDisk = await t.fx.loop(blocks * 8);
  const hashDisk = await t.fx.loop(2048);
  const data = randomBytes(blocks * 4096);
  writeAt(dataDisk.file, data, 0);
  return { data, dataDisk, hashDisk };
}

describe('Verity: hash trees built here, checked by the kernel', () => {
  const t = TestContext.perTest();
  let dir = '';
  beforeEach(() => {
    dir = scratchDir();
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('the tree written to a hash disk is veritysetup\'s byte for byte and passes veritysetup verify; the device opens read-only with the table veritysetup makes, serves the data, and a changed data block fails its read with EIO (status C)', async () => {
    const { data, dataDisk, hashDisk } = await disks(t, 640);
    const tree = await Verity.format(dataDisk.path, hashDisk.path);
    expect(tree).to.deep.include({ version: 1, algorithm: 'sha256', dataBlockSize: 4096, hashBlockSize: 4096, dataBlocks: 640, hashStartBlock: 0, levels: 2, hashBlocks: 6 });
    const ours = readFileSync(hashDisk.file);
    // veritysetup's tree, with our salt, on a second hash disk.
    const other = await t.fx.loop(2048);
    const out = execFileSync('veritysetup', ['format', ...peerArgs(tree), dataDisk.path, other.path], { encoding: 'utf8' });
    expect(/^Root hash:\s*([0-9a-f]+)$/m.exec(out)?.[1]).to.equal(tree.rootHash);
    expect(readFileSync(other.file).equals(ours)).to.equal(true);
    execFileSync('veritysetup', ['verify', ...peerArgs(tree), dataDisk.path, hashDisk.path, tree.rootHash], { stdio: 'ignore' });

    const table = new Table([{ start: 0, length: 5120, target: targets.verity({ dataDevice: dataDisk.dev, hashDevice: hashDisk.dev, dataBlockSize: 4096, hashBlockSize: 4096, dataBlocks: 640, hashStartBlock: 0, algorithm: 'sha256', digest: tree.rootHash, salt: tree.salt }) }]);
    // veritysetup opens the same tree with the same table (before ours: it wants the disks to itself).
    const peer = devName('verity-peer');
    execFileSync('veritysetup', ['open', ...peerArgs(tree), dataDisk.path, peer, hashDisk.path, tree.rootHash], { stdio: 'ignore' });
    try {
      expect((await t.dm.table(peer))?.equals(table)).to.equal(true);
    } finally {
      execFileSync('veritysetup', ['close', peer], { stdio: 'ignore' });
    }

    const name = devName('verity');
    const volume = await Verity.open(t.dm, name, { dataDevice: dataDisk.dev, hashDevice: hashDisk.dev, tree });
    expect(volume.uuid).to.match(/^DEVMAPPER-VERITY-[0-9a-f]{16}$/);
    expect((await volume.info()).readOnly).to.equal(true);
    expect((await t.dm.table(name))?.equals(table)).to.equal(true);
    expect(await volume.target()).to.deep.equal(table.rows[0]?.target);
    expect(dmsetup('table', name).trimEnd()).to.equal(table.toString());

    expect(ddStatus([`if=${volume.path}`, `of=${join(dir, 'copy')}`, 'bs=1M', 'iflag=direct']).ok).to.equal(true);
    expect(readFileSync(join(dir, 'copy')).equals(data)).to.equal(true);
    const s0 = await volume.status();
    expect(s0).to.deep.include({ corrupted: false });
    expect(dmsetup('status', name).trimEnd()).to.equal(`0 5120 verity ${s0.raw}`);

    writeAt(dataDisk.file, Buffer.from('changed'), 500 * 4096 + 123);
    const bad = ddStatus([`if=${volume.path}`, 'of=/dev/null', 'bs=4096', 'skip=500', 'count=1', 'iflag=direct']);
    expect(bad.ok).to.equal(false);
    expect(bad.stderr).to.match(/Input\/output error/);
    expect((await volume.status()).corrupted).to.equal(true);
    expect(dmsetup('status', name).trimEnd()).to.equal('0 5120 verity C');
    // Its neighbours still read and check.
    expect(ddStatus([`if=${volume.path}`, 'of=/dev/null', 'bs=4096', 'skip=499', 'count=1', 'iflag=direct']).ok).to.equal(true);
    expect(ddStatus([`if=${volume.path}`, 'of=/dev/null', 'bs=4096', 'skip=501', 'count=1', 'iflag=direct']).ok).to.equal(true);
    // veritysetup finds the same block bad.
    const verify = spawnSync('veritysetup', ['verify', ...peerArgs(tree), dataDisk.path, hashDisk.path, tree.rootHash], { encoding: 'utf8' });
    expect(verify.status).to.not.equal(0);
  });

  it('the tree on the data disk itself, after the data (hashStartBlock), in 512-byte hash blocks with a salt of our own: veritysetup agrees and the device reads', async () => {
    const dataDisk = await t.fx.loop(256 * 8 + 128);
    const data = randomBytes(256 * 4096);
    writeAt(dataDisk.file, data, 0);
    const tree = await Verity.format(dataDisk.path, dataDisk.path, { dataBlocks: 256, hashBlockSize: 512, hashStartBlock: 256 * 8, salt: 'c0ffee' });
    expect(tree).to.deep.include({ salt: 'c0ffee', hashStartBlock: 2048, levels: 2, hashBlockSize: 512 });
    // The data blocks are untouched.
    expect(readFileSync(dataDisk.file).subarray(0, data.length).equals(data)).to.equal(true);
    execFileSync('veritysetup', ['verify', ...peerArgs(tree), dataDisk.path, dataDisk.path, tree.rootHash], { stdio: 'ignore' });
    const volume = await Verity.open(t.dm, devName('verity-inline'), { dataDevice: dataDisk.dev, hashDevice: dataDisk.dev, tree });
    expect(ddStatus([`if=${volume.path}`, `of=${join(dir, 'copy')}`, 'bs=64k', 'iflag=direct']).ok).to.equal(true);
    expect(readFileSync(join(dir, 'copy')).equals(data)).to.equal(true);
    expect((await volume.status()).corrupted).to.equal(false);
  });

  it('format 0 with sha1, check_at_most_once and ignore_zero_blocks over a data disk with zero blocks, a uuid of our own: the table says so and the data reads', async () => {
    const dataDisk = await t.fx.loop(128 * 8);
    const hashDisk = await t.fx.loop(256);
    const data = Buffer.concat([randomBytes(64 * 4096), Buffer.alloc(64 * 4096)]);
    writeAt(dataDisk.file, data, 0);
    const tree = await Verity.format(dataDisk.path, hashDisk.path, { version: 0, algorithm: 'sha1', salt: '5a17' });
    execFileSync('veritysetup', ['verify', ...peerArgs(tree), dataDisk.path, hashDisk.path, tree.rootHash], { stdio: 'ignore' });
    const uuid = `DMT-VERITY-${randomBytes(4).toString('hex')}`;
    const volume = await Verity.open(t.dm, devName('verity-v0'), { dataDevice: dataDisk.dev, hashDevice: hashDisk.dev, tree, checkAtMostOnce: true, ignoreZeroBlocks: true, uuid });
    expect(volume.uuid).to.equal(uuid);
    expect(await volume.target()).to.deep.include({ version: 0, algorithm: 'sha1', salt: '5a17', checkAtMostOnce: true, ignoreZeroBlocks: true, dataBlocks: 128 });
    expect(ddStatus([`if=${volume.path}`, `of=${join(dir, 'copy')}`, 'bs=64k', 'iflag=direct']).ok).to.equal(true);
    expect(readFileSync(join(dir, 'copy')).equals(data)).to.equal(true);
    expect((await volume.status()).corrupted).to.equal(false);
  });

  it('a changed hash block fails the reads of the data blocks under it; with onCorruption: ignore the data is served and the status still says C', async () => {
    const { data, dataDisk, hashDisk } = await disks(t, 512);
    const tree = await Verity.format(dataDisk.path, hashDisk.path);
    // Levels from the top: block 0 is the root block, blocks 1..4 hash data blocks 0-127, 128-255 ...
    expect(tree).to.deep.include({ levels: 2, hashBlocks: 5 });
    writeAt(hashDisk.file, randomBytes(32), 2 * 4096);
    const volume = await Verity.open(t.dm, devName('verity-hash'), { dataDevice: dataDisk.dev, hashDevice: hashDisk.dev, tree });
    expect(ddStatus([`if=${volume.path}`, 'of=/dev/null', 'bs=4096', 'count=128', 'iflag=direct']).ok).to.equal(true);
    expect(ddStatus([`if=${volume.path}`, 'of=/dev/null', 'bs=4096', 'skip=128', 'count=1', 'iflag=direct']).ok).to.equal(false);
    expect((await volume.status()).corrupted).to.equal(true);
    await volume.close();

    const ignoring = await Verity.open(t.dm, devName('verity-ignore'), { dataDevice: dataDisk.dev, hashDevice: hashDisk.dev, tree, onCorruption: 'ignore' });
    expect((await ignoring.target()).onCorruption).to.equal('ignore');
    expect(ddStatus([`if=${ignoring.path}`, `of=${join(dir, 'copy')}`, 'bs=4096', 'skip=128', 'count=1', 'iflag=direct']).ok).to.equal(true);
    expect(readFileSync(join(dir, 'copy')).equals(data.subarray(128 * 4096, 129 * 4096))).to.equal(true);
    expect((await ignoring.status()).corrupted).to.equal(true);
  });

  it('bad options are refused before any ioctl; a data disk smaller than the tree says is refused by the kernel and leaves no device; a wrong root hash loads and every read fails', async () => {
    const { dataDisk, hashDisk } = await disks(t, 64);
    const tree = await Verity.format(dataDisk.path, hashDisk.path);
    const refusals: [unknown, RegExp][] = [
      [{ dataDevice: dataDisk.dev, hashDevice: hashDisk.dev, tree, readOnly: false }, /^Expected one of dataDevice, .* for options but received unknown option "readOnly"$/],
      [{ dataDevice: dataDisk.dev, tree }, /^Expected 'major:minor', a \/dev path or \{ major, minor \} for options\.hashDevice but received undefined$/],
      [{ dataDevice: dataDisk.dev, hashDevice: hashDisk.dev }, /^Expected a hash tree \(from Verity\.format\) for options\.tree but received undefined$/],
      [{ dataDevice: dataDisk.dev, hashDevice: hashDisk.dev, tree: { ...tree, rootHash: 'xyz' } }, /^Expected whole bytes in hexadecimal for verity\.digest but received "xyz"$/],
      [{ dataDevice: dataDisk.dev, hashDevice: hashDisk.dev, tree, onCorruption: 'shrug' }, /for verity\.onCorruption but received "shrug"$/],
    ];
    const names = async (): Promise<string[]> => (await t.dm.listDevices()).map((d) => d.name).filter((n) => n.startsWith(PREFIX));
    for (const [options, message] of refusals) {
      const e = await rejectionOf(Verity.open(t.dm, devName('verity-bad'), options as Parameters<typeof Verity.open>[2]));
      expect(e.message, JSON.stringify(Object.keys(options as object))).to.match(message);
    }
    const notDm = await rejectionOf(Verity.open({} as never, devName('verity-nodm'), { dataDevice: dataDisk.dev, hashDevice: hashDisk.dev, tree }));
    expect(notDm).to.be.instanceOf(TypeError);
    expect(notDm.message).to.equal('Expected a DeviceMapper (DeviceMapper.open()) for dm but received object');
    expect(await names()).to.deep.equal([]);

    const tooSmall = await rejectionOf(Verity.open(t.dm, devName('verity-small'), { dataDevice: hashDisk.dev, hashDevice: hashDisk.dev, tree: { ...tree, dataBlocks: 4096 } }));
    expect(tooSmall).to.be.instanceOf(DmError);
    expect(tooSmall).to.be.instanceOf(DmError).and.have.property('code', 'EINVAL');
    expect(await names()).to.deep.equal([]);

    const wrong = await Verity.open(t.dm, devName('verity-wrong'), { dataDevice: dataDisk.dev, hashDevice: hashDisk.dev, tree: { ...tree, rootHash: '00'.repeat(32) } });
    expect(ddStatus([`if=${wrong.path}`, 'of=/dev/null', 'bs=4096', 'count=1', 'iflag=direct']).ok).to.equal(false);
    expect((await wrong.status()).corrupted).to.equal(true);
  });

  it('examples/verity.js runs: the data reads, a changed block fails with EIO and the status says C', function () {
    timeoutAtLeast(this, 120000);
    const env = { ...process.env, DEVMAPPER_EXAMPLE_PREFIX: `${PREFIX}example-` };
    const r = spawnSync(process.execPath, [join(root, 'examples', 'verity.js')], { cwd: root, env, encoding: 'utf8', timeout: 110000 });
    expect(r.status, `${r.stdout}${r.stderr}`).to.equal(0);
    expect(r.stdout).to.match(/^hash tree: 1024 data blocks, 2 levels, 9 hash blocks, root [0-9a-f]{64}$/m);
    expect(r.stdout).to.match(/^opened dmt-example-verity-demo at \/dev\/dm-\d+, read-only true$/m);
    expect(r.stdout).to.contain('block 10 reads: "a block the hash tree vouches for"');
    expect(r.stdout).to.contain('status: V (verified)');
    expect(r.stdout).to.contain('after tampering with block 20: read failed with EIO; status: C (corrupted)');
  });
});
