import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Cache, FaultyDevice, Mirror, Snapshot, Table, targets } from '../../../ts/index';
import { runCli } from '../../unit/cli/harness';
import { TestContext, devName, dmsetup } from '../helpers';

const root = resolve(__dirname, '..', '..', '..', '..', '..');
const SECTOR = 512;

/** Status text as dmsetup prints it, as one typed row's raw text. */
function peerStatus(name: string): string {
  return dmsetup('status', name).trimEnd();
}

function fill(path: string, bytes: number, offset: number, value: number): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, Buffer.alloc(bytes, value), 0, bytes, offset);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function onPath(program: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0;
}

describe('devmapper wait-sync in the kernel', () => {
  const t = TestContext.perTest();

  /** A mirror whose second leg holds each write back `ms` ms, so that its resync takes a while. */
  async function slowMirror(what: string, ms: number): Promise<{ name: string; leg: FaultyDevice }> {
    const [a, b] = [await t.fx.loop(4096), await t.fx.loop(4096)];
    fill(a.path, 4096 * SECTOR, 0, 0x5a);
    const leg = await FaultyDevice.create(t.dm, devName(`${what}-leg`), { device: b.dev });
    await leg.delay({ read: 0, write: ms });
    const name = devName(what);
    await Mirror.create(t.dm, name, { size: 4096, log: { type: 'core', regionSize: 512 }, legs: [{ device: a.dev, offset: 0 }, { device: leg.dev, offset: 0 }] });
    return { name, leg };
  }

  it('a mirror resyncing: piped, nothing is printed and it exits 0 once dmsetup too says every region is in sync; on a terminal a bar is redrawn in place; --timeout ends a sync that outlasts it with exit 1', async () => {
    const { name, leg } = await slowMirror('cli-mirror', 1000);
    const late = await runCli(['wait-sync', name, '--timeout', '1']);
    expect(late.code).to.equal(1);
    expect(late.stderr).to.match(/not done after 1 s/);
    expect(late.stdout).to.equal('');
    expect(peerStatus(name)).to.not.match(/ 8\/8 /);

    await leg.delay({ read: 0, write: 20 });
    const tty = runCli(['wait-sync', name], { tty: true });
    const piped = runCli(['wait-sync', name]);
    const [a, b] = await Promise.all([tty, piped]);
    expect(b.code, b.stderr).to.equal(0);
    expect(b.stdout).to.equal('');
    expect(a.code, a.stderr).to.equal(0);
    const draws = a.stdout.split('\r').filter((s) => s !== '');
    expect(draws.length).to.be.at.least(1);
    for (const d of draws) expect(d).to.match(new RegExp(`^${name} sync \\[[#-]+\\] +\\d+\\.\\d% .*\\x1b\\[K\\n?$`));
    // eslint-disable-next-line no-control-regex -- the bar's erase-to-end-of-line escape (ESC [K) is what is checked
    expect(draws[draws.length - 1]).to.match(/\] 100\.0% 8\/8 regions\x1b\[K\n$/);
    expect(peerStatus(name)).to.match(new RegExp(`^0 4096 mirror 2 \\S+ \\S+ 8/8 1 AA 1 core$`));
    const json = JSON.parse((await runCli(['wait-sync', name, '--json'])).stdout) as { kind: string; done: boolean; ratio: number; rows: { status: { raw: string } }[] };
    expect(json).to.deep.include({ kind: 'mirror-sync', done: true, ratio: 1 });
    expect(`0 4096 mirror ${json.rows[0]?.status.raw ?? ''}`.trimEnd()).to.equal(peerStatus(name));
    // Nothing to wait for on a plain device: a usage error.
    const nothing = await runCli(['wait-sync', leg.name]);
    expect(nothing.code).to.equal(2);
    expect(nothing.stderr).to.match(/runs nothing to wait for \(its targets: delay\)/);
  });

  it('a snapshot merging: exits 0 when the merge is done, the origin\'s status (dmsetup\'s too) then showing no data left', async () => {
    const length = 8192;
    const data = await t.fx.loop(length);
    const origin = devName('cli-origin');
    await t.dm.create(origin, { table: new Table([{ start: 0, length, target: targets.linear({ device: data.dev, offset: 0 }) }]) });
    const cowLoop = await t.fx.loop(2048);
    const cow = await FaultyDevice.create(t.dm, devName('cli-cow'), { device: cowLoop.dev });
    const snap = await Snapshot.create(t.dm, origin, { name: devName('cli-snap'), cowDevice: cow.dev, chunkSize: 8 });
    const snapPath = (await t.dm.info(snap.name)).path;
    for (const block of [0, 200, 400, 600]) fill(snapPath, 4096, block * 4096, 0x77);
    // Each COW read held back: the merge goes on past the handover's short wait.
    await cow.delay({ read: 300 });
    const handover = await snap.merge({ timeout: 50 }).catch((e: unknown) => e);
    expect(handover).to.have.property('code', 'ETIMEDOUT');
    const before = /^0 8192 snapshot-merge (\d+)\/2048 (\d+)$/.exec(peerStatus(origin));
    // Still merging when the wait starts: data chunks left beyond the metadata.
    expect(Number(before?.[1]), peerStatus(origin)).to.be.above(Number(before?.[2]));
    const r = await runCli(['wait-sync', origin]);
    expect(r.code, r.stderr).to.equal(0);
    const m = /^0 8192 snapshot-merge (\d+)\/2048 (\d+)$/.exec(peerStatus(origin));
    expect(m?.[1], peerStatus(origin)).to.equal(m?.[2]);
    // The merged data is the origin's.
    const block = Buffer.alloc(4096);
    const fd = openSync((await t.dm.info(origin)).path, 'r');
    try {
      readSync(fd, block, 0, 4096, 200 * 4096);
    } finally {
      closeSync(fd);
    }
    expect(block.every((x) => x === 0x77)).to.equal(true);
    await cow.healthy();
    await Snapshot.finishMerge(t.dm, origin, { timeout: 30000 });
  });

  /** Reads 4 KiB at the start of each 64 KiB block, each through a fresh open (the page cache goes at the last close). */
  function readBlocks(path: string, blocks: readonly number[]): void {
    const b = Buffer.alloc(4096);
    for (const k of blocks) {
      const fd = openSync(path, 'r');
      try {
        readSync(fd, b, 0, 4096, k * 65536);
      } finally {
        closeSync(fd);
      }
    }
  }

  /**
   * Promotes the blocks (smq caches blocks read again and again), then overwrites them: dirty
   * blocks on the cache. smq ranks its hot spots once a second, so the reads go on, paced,
   * for up to 30 s of the clock rather than a count of passes (fast passes can all fall
   * inside one period and promote nothing).
   */
  async function dirty(cache: Cache, blocks: readonly number[]): Promise<void> {
    const until = Date.now() + 30000;
    while ((await cache.runningStatus()).cacheBlocks.used < blocks.length && Date.now() < until) {
      readBlocks(cache.path, blocks);
      await new Promise((r) => setTimeout(r, 100));
    }
    const fd = openSync(cache.path, 'r+');
    try {
      for (const k of blocks) writeSync(fd, Buffer.alloc(65536, 0x30 + k), 0, 65536, k * 65536);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  it('a cache cleaning on the cleaner policy: exits 0 at no dirty block, as dmsetup status says too; the origin holds the data', async () => {
    const [meta, fast, slow] = [await t.fx.loop(8192), await t.fx.loop(8192), await t.fx.loop(16384)];
    const originName = devName('cli-slow');
    const delayed = (ms: number): Table => new Table([{ start: 0, length: 16384, target: targets.delay({ read: { device: slow.dev, offset: 0, delay: 0 }, write: { device: slow.dev, offset: 0, delay: ms } }) }]);
    const origin = await t.dm.create(originName, { table: delayed(0) });
    const name = devName('cli-cache');
    const cache = await Cache.create(t.dm, name, { metadataDevice: meta.dev, cacheDevice: fast.dev, originDevice: origin.dev, blockSize: 128 });
    const hot = [0, 1, 2, 3, 4, 5, 6, 7];
    await dirty(cache, hot);
    const s = await cache.runningStatus();
    if (s.dirty === 0) throw new Error(`no dirty block to clean: ${s.raw}`);
    // Written back slowly: each write to the origin held 1 s, so the cleaning outlasts the start of the wait.
    await t.dm.reload(originName, delayed(1000));
    await cache.setPolicy('cleaner');
    expect((await cache.runningStatus()).dirty, 'dirty blocks when the wait starts').to.be.above(0);
    const r = await runCli(['wait-sync', name, '--json']);
    expect(r.code, r.stderr).to.equal(0);
    const last = JSON.parse(r.stdout) as { kind: string; left: number; done: boolean };
    expect(last).to.deep.include({ kind: 'cache-clean', left: 0, done: true });
    const words = peerStatus(name).split(' ');
    expect(words[2]).to.equal('cache');
    // <#dirty> is the 14th word of the cache's status (after start, length and type).
    expect(words[3 + 10]).to.equal('0');
    const disk = execFileSync('dd', [`if=${slow.path}`, 'bs=65536', 'skip=3', 'count=1', 'iflag=direct', 'status=none']);
    expect(disk.every((x) => x === 0x33)).to.equal(true);
    await t.dm.reload(originName, delayed(0));
  });

  it('the bin on a real terminal (script -qc) draws the bar', async () => {
    // util-linux's script, which the sandbox has from the host: never skipped.
    expect(onPath('script'), 'script(1) on PATH').to.equal(true);
    // The sandbox mounts no devpts: script needs one for its pseudo-terminal.
    const mounted = !existsSync('/dev/pts/ptmx');
    if (mounted) {
      mkdirSync('/dev/pts', { recursive: true });
      execFileSync('mount', ['-t', 'devpts', '-o', 'newinstance,ptmxmode=0666', 'devpts', '/dev/pts']);
    }
    try {
      const { name, leg } = await slowMirror('cli-tty', 50);
      const bin = join(root, 'dist', 'cli', 'main.js');
      if (!existsSync(bin)) throw new Error(`${bin} is missing: npm run build first`);
      const r = spawnSync('script', ['-qec', `${process.execPath} ${bin} wait-sync ${name}`, '/dev/null'], { encoding: 'utf8', timeout: 120000, env: { ...process.env, COLUMNS: '60' } });
      expect(r.status, r.stdout + r.stderr).to.equal(0);
      expect(r.stdout).to.match(new RegExp(`\\r${name} sync \\[#+\\] 100\\.0% 8/8 regions\\x1b\\[K\\r?\\n`));
      expect(peerStatus(name)).to.match(/ 8\/8 1 AA 1 core$/);
      await leg.healthy();
    } finally {
      if (mounted) execFileSync('umount', ['/dev/pts']);
    }
  });
});
