import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Verity, verityTreeShape } from '../../../ts/index';

/** `veritysetup format --no-superblock` on files (no device-mapper needed): its root hash and hash file. */
function veritysetup(data: string, hash: string, args: string[]): { rootHash: string; hashFile: Buffer } {
  const out = execFileSync('veritysetup', ['format', '--no-superblock', ...args, data, hash], { encoding: 'utf8' });
  const rootHash = /^Root hash:\s*([0-9a-f]+)$/m.exec(out)?.[1];
  if (rootHash === undefined) throw new Error(`no root hash in: ${out}`);
  return { rootHash, hashFile: readFileSync(hash) };
}

describe('Verity.format: the hash tree in the kernel\'s format, byte for byte veritysetup\'s', () => {
  let dir = '';
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'verity-unit-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const cases: { what: string; blocks: number; args: string[]; options: Parameters<typeof Verity.format>[2] }[] = [
    { what: 'sha256, 4 KiB blocks, 300 data blocks (two levels), a 4-byte salt', blocks: 300, args: ['--salt', '00112233'], options: { salt: '00112233' } },
    { what: 'a 32-byte salt and 129 data blocks (the first level just over one block)', blocks: 129, args: ['--salt', 'ab'.repeat(32)], options: { salt: Buffer.from('ab'.repeat(32), 'hex') } },
    { what: 'no salt, 512-byte data and hash blocks, 3 levels', blocks: 2100, args: ['--salt', '-', '--data-block-size', '512', '--hash-block-size', '512'], options: { salt: null, dataBlockSize: 512, hashBlockSize: 512 } },
    { what: 'sha1 (digest slots padded to 32 bytes) with 1 KiB hash blocks', blocks: 200, args: ['--hash', 'sha1', '--salt', '77', '--hash-block-size', '1024'], options: { algorithm: 'sha1', salt: '77', hashBlockSize: 1024 } },
    { what: 'format 0 (salt last, digests packed) with sha1', blocks: 200, args: ['--format', '0', '--hash', 'sha1', '--salt', '0102'], options: { version: 0, algorithm: 'sha1', salt: '0102' } },
    { what: 'sha512 and a tree that starts 3 hash blocks in (veritysetup --hash-offset)', blocks: 100, args: ['--hash', 'sha512', '--salt', 'ff', '--hash-offset', String(3 * 4096)], options: { algorithm: 'sha512', salt: 'ff', hashStartBlock: 3 } },
  ];
  for (const c of cases) {
    it(`${c.what}: the same root hash and the same hash blocks`, async () => {
      const blockSize = c.options?.dataBlockSize ?? 4096;
      const data = join(dir, 'data');
      writeFileSync(data, randomBytes(c.blocks * blockSize));
      writeFileSync(join(dir, 'theirs'), '');
      writeFileSync(join(dir, 'ours'), '');
      const theirs = veritysetup(data, join(dir, 'theirs'), c.args);
      const tree = await Verity.format(data, join(dir, 'ours'), c.options);
      expect(tree.rootHash).to.equal(theirs.rootHash);
      expect(tree.dataBlocks).to.equal(c.blocks);
      const ours = readFileSync(join(dir, 'ours'));
      // veritysetup leaves the blocks before --hash-offset alone; so do we (a new file: zeroes).
      expect(ours.length).to.equal(theirs.hashFile.length);
      expect(ours.equals(theirs.hashFile)).to.equal(true);
      expect(ours.length).to.equal((tree.hashStartBlock + tree.hashBlocks) * tree.hashBlockSize);
      // veritysetup's own check of our tree.
      const salt = tree.salt ?? '-';
      execFileSync('veritysetup', ['verify', '--no-superblock', '--format', String(tree.version), '--hash', tree.algorithm, '--salt', salt, '--data-block-size', String(tree.dataBlockSize), '--hash-block-size', String(tree.hashBlockSize), '--hash-offset', String(tree.hashStartBlock * tree.hashBlockSize), data, join(dir, 'ours'), tree.rootHash], { stdio: 'ignore' });
    });
  }

  it('a single data block: no hash levels, the root hash is the block\'s salted digest', async () => {
    const data = join(dir, 'data');
    writeFileSync(data, randomBytes(4096));
    writeFileSync(join(dir, 'theirs'), '');
    writeFileSync(join(dir, 'ours'), '');
    const theirs = veritysetup(data, join(dir, 'theirs'), ['--salt', '0a0b']);
    const tree = await Verity.format(data, join(dir, 'ours'), { salt: '0a0b' });
    expect(tree).to.deep.include({ levels: 0, hashBlocks: 0, rootHash: theirs.rootHash });
  });

  it('a random salt of 32 bytes by default, and only the dataBlocks asked for are covered', async () => {
    const data = join(dir, 'data');
    writeFileSync(data, randomBytes(64 * 4096));
    writeFileSync(join(dir, 'ours'), '');
    const tree = await Verity.format(data, join(dir, 'ours'), { dataBlocks: 40 });
    expect(tree.salt).to.match(/^[0-9a-f]{64}$/);
    expect(tree.dataBlocks).to.equal(40);
    writeFileSync(join(dir, 'theirs'), '');
    const theirs = veritysetup(data, join(dir, 'theirs'), ['--salt', tree.salt ?? '-', '--data-blocks', '40']);
    expect(tree.rootHash).to.equal(theirs.rootHash);
  });

  it('the tree\'s shape is the kernel\'s: 128 digests of 32 bytes per 4 KiB block, levels until one block is left', () => {
    expect(verityTreeShape(1, 4096, 32)).to.deep.equal({ perBlockBits: 7, levels: 0, levelBlocks: [] });
    expect(verityTreeShape(128, 4096, 32)).to.deep.equal({ perBlockBits: 7, levels: 1, levelBlocks: [1] });
    expect(verityTreeShape(129, 4096, 32)).to.deep.equal({ perBlockBits: 7, levels: 2, levelBlocks: [2, 1] });
    expect(verityTreeShape(2048, 4096, 32)).to.deep.equal({ perBlockBits: 7, levels: 2, levelBlocks: [16, 1] });
    // sha1: 4096 / 20 = 204 digests fit, the kernel uses 128 (a power of two).
    expect(verityTreeShape(16385, 4096, 20)).to.deep.equal({ perBlockBits: 7, levels: 3, levelBlocks: [129, 2, 1] });
  });

  it('bad options are refused before any file is read or written, and a tree is never written over the data it covers', async () => {
    const data = join(dir, 'data');
    writeFileSync(data, randomBytes(8 * 4096));
    const hash = join(dir, 'hash');
    writeFileSync(hash, '');
    const refusals: [unknown, RegExp][] = [
      [{ dataBlockSize: 3000 }, /^Expected a power of two from 512 to 4096 for options\.dataBlockSize but received number 3000$/],
      [{ hashBlockSize: 8192 }, /^Expected an integer from 512 to 4096 for options\.hashBlockSize but received number 8192$/],
      [{ algorithm: 'nosuchhash' }, /for options\.algorithm but received "nosuchhash"$/],
      [{ salt: 'xyz' }, /^Expected whole bytes in hexadecimal for options\.salt/],
      [{ salt: 'aa'.repeat(257) }, /^Expected a salt of at most 256 bytes for options\.salt/],
      [{ dataBlocks: 9 }, /^Expected at most the 8 data blocks .* holds for options\.dataBlocks but received number 9$/],
      [{ version: 2 }, /^Expected 0 or 1 for options\.version but received number 2$/],
      [{ saltt: 'aa' }, /^Expected one of version, .* for options but received unknown option "saltt"$/],
    ];
    // The tree on the data's own file must start past the data (8 blocks of 4 KiB: block 8 on).
    let overlap: unknown;
    try {
      await Verity.format(data, data, { dataBlocks: 6, hashStartBlock: 5 });
    } catch (e) {
      overlap = e;
    }
    expect((overlap as Error).message).to.equal('Expected a hashStartBlock past the data on the same device (at least 6) for options.hashStartBlock but received number 5');
    const tree = await Verity.format(data, data, { dataBlocks: 6, hashStartBlock: 6, salt: '01' });
    writeFileSync(join(dir, 'theirs'), '');
    expect(tree.rootHash).to.equal(veritysetup(data, join(dir, 'theirs'), ['--salt', '01', '--data-blocks', '6']).rootHash);
    for (const [options, message] of refusals) {
      let error: unknown;
      try {
        await Verity.format(data, hash, options as Parameters<typeof Verity.format>[2]);
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(options)).to.be.instanceOf(Error);
      expect((error as Error).message, JSON.stringify(options)).to.match(message);
      expect(readFileSync(hash).length).to.equal(0);
    }
  });
});
