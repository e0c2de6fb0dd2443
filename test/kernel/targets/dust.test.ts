import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { closeSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { Table, dustMessages, parseDustClearBadBlocks, parseDustCountBadBlocks, parseDustListBadBlocks, parseDustQueryBlock, targets, type DustStatus } from '../../../ts/index';
import { TestContext, devName, dmsetup, expectReadBack, rejection } from '../helpers';

/** The typed status of a dust target, the device's only row. */
async function statusOf(t: TestContext, name: string): Promise<DustStatus> {
  const [row] = await t.dm.status(name);
  if (row === undefined || !row.status.known || row.status.type !== 'dust') throw new Error(`no typed dust status for ${name}`);
  return row.status;
}

const BS = 4096;

/** One 4 KiB block read or written with direct I/O (dd), so the request reaches the target: null on success, else dd's complaint. */
function dd(direction: 'read' | 'write', path: string, block: number, fill = 0): string | null {
  const args =
    direction === 'read'
      ? [`if=${path}`, 'of=/dev/null', `bs=${BS}`, `skip=${block}`, 'count=1', 'iflag=direct', 'status=none']
      : [`of=${path}`, `bs=${BS}`, `seek=${block}`, 'count=1', 'iflag=fullblock', 'oflag=direct', 'status=none'];
  const r = spawnSync('dd', args, { input: Buffer.alloc(BS, fill), encoding: 'utf8' });
  return r.status === 0 ? null : r.stderr;
}

/** Block `block` of `path`, read through the page cache. */
function readBlock(path: string, block: number): Buffer {
  const buf = Buffer.alloc(BS);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buf, 0, BS, block * BS);
  } finally {
    closeSync(fd);
  }
  return buf;
}

describe('dust in the kernel', () => {
  const t = TestContext.perTest();

  it('a dust built with targets.dust reads back equal and dmsetup agrees', async () => {
    const dev = await t.fx.loop(16384);
    const target = targets.dust({ device: dev.dev, offset: 2048, blockSize: 512 });
    const table = new Table([{ start: 0, length: 8192, target }]);
    const name = devName('dust');
    await t.dm.create(name, { table });
    await expectReadBack(t.dm, name, table);
    const s = await statusOf(t, name);
    expect(s).to.deep.include({ device: dev.devString, mode: 'bypass', failReadOnBadBlock: false, quiet: false, extra: [] });
    expect(dmsetup('status', name).trimEnd()).to.equal(`0 8192 dust ${s.raw}`);
  });

  it('bad blocks: listed and counted by message, failing reads only once enabled, cleared by writes, cleared all at once', async () => {
    const dev = await t.fx.loop(16384);
    const name = devName('dust-bad');
    const info = await t.dm.create(name, { table: new Table([{ start: 0, length: 16384, target: targets.dust({ device: dev.dev, offset: 0, blockSize: BS }) }]) });
    const fd = openSync(info.path, 'r+');
    try {
      for (let b = 0; b < 16; b++) writeSync(fd, Buffer.alloc(BS, b + 1), 0, BS, b * BS);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    expect(parseDustListBadBlocks(await t.dm.message(name, dustMessages.listBadBlocks()))).to.deep.equal([]);
    expect(parseDustClearBadBlocks(await t.dm.message(name, dustMessages.clearBadBlocks()))).to.equal(false);

    for (const m of [dustMessages.addBadBlock(7), dustMessages.addBadBlock(3), dustMessages.addBadBlock(5, 1)]) expect(await t.dm.message(name, m)).to.equal(undefined);
    expect((await rejection(t.dm.message(name, dustMessages.addBadBlock(3)))).code).to.equal('EINVAL');
    // The device has 2048 blocks; the kernel refuses a block past its end.
    expect((await rejection(t.dm.message(name, dustMessages.addBadBlock(2049)))).code).to.equal('EINVAL');
    expect(parseDustCountBadBlocks(await t.dm.message(name, dustMessages.countBadBlocks()))).to.equal(3);
    expect(parseDustListBadBlocks(await t.dm.message(name, dustMessages.listBadBlocks(), { repeatable: true }))).to.deep.equal([3, 5, 7]);
    expect(parseDustQueryBlock(await t.dm.message(name, dustMessages.queryBlock(3)))).to.deep.equal({ block: 3, bad: true });
    expect(parseDustQueryBlock(await t.dm.message(name, dustMessages.queryBlock(4)))).to.deep.equal({ block: 4, bad: false });

    // Bypass: bad blocks read fine.
    expect(dd('read', info.path, 3)).to.equal(null);
    await t.dm.message(name, dustMessages.enable());
    expect(await statusOf(t, name)).to.deep.include({ mode: 'fail_read_on_bad_block', failReadOnBadBlock: true });
    expect(dd('read', info.path, 3)).to.match(/Input\/output error/);
    expect(dd('read', info.path, 4)).to.equal(null);

    // A write to a bad block succeeds and takes it off the list: it reads again, with the new data.
    expect(dd('write', info.path, 3, 0xee)).to.equal(null);
    expect(parseDustQueryBlock(await t.dm.message(name, dustMessages.queryBlock(3))).bad).to.equal(false);
    expect(dd('read', info.path, 3)).to.equal(null);
    expect(readBlock(info.path, 3).every((x) => x === 0xee)).to.equal(true);
    // With a write fail count of 1, the first write fails and the second clears the block.
    expect(dd('write', info.path, 5, 0xdd)).to.match(/Input\/output error/);
    expect(parseDustQueryBlock(await t.dm.message(name, dustMessages.queryBlock(5))).bad).to.equal(true);
    expect(dd('write', info.path, 5, 0xdd)).to.equal(null);
    expect(parseDustListBadBlocks(await t.dm.message(name, dustMessages.listBadBlocks()))).to.deep.equal([7]);

    await t.dm.message(name, dustMessages.quiet());
    expect((await statusOf(t, name)).quiet).to.equal(true);
    await t.dm.message(name, dustMessages.quiet());
    expect((await statusOf(t, name)).quiet).to.equal(false);

    // Disabled: the bad block reads through again, its old data intact.
    expect(dd('read', info.path, 7)).to.match(/Input\/output error/);
    await t.dm.message(name, dustMessages.disable());
    expect((await statusOf(t, name)).mode).to.equal('bypass');
    expect(dd('read', info.path, 7)).to.equal(null);
    expect(readBlock(dev.path, 7).every((x) => x === 8)).to.equal(true);

    await t.dm.message(name, dustMessages.removeBadBlock(7));
    expect((await rejection(t.dm.message(name, dustMessages.removeBadBlock(7)))).code).to.equal('EINVAL');
    await t.dm.message(name, dustMessages.addBadBlock(9));
    expect(parseDustClearBadBlocks(await t.dm.message(name, dustMessages.clearBadBlocks()))).to.equal(true);
    expect(parseDustCountBadBlocks(await t.dm.message(name, dustMessages.countBadBlocks()))).to.equal(0);
  });
});
