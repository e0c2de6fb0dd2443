import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Cache, DmError, Table, targets, type CacheCreateOptions, type CacheRunningStatus, type DeviceInfo, type LoopDevice } from '../../../ts/index';
import { PREFIX, TestContext, devName, dmsetup, expectReadBack, readAt, rejection } from '../helpers';

// Compiled tests run from build/js/test/kernel/workflows; the examples stay in the source tree.
const root = resolve(__dirname, '..', '..', '..', '..', '..');

const BLOCK = 128; // sectors: 64 KiB cache blocks
const BLOCK_BYTES = BLOCK * 512;
const ORIGIN = 16384; // sectors: 128 cache blocks of origin
const READ_DELAY = 50; // ms each read bio of the origin is held back

interface Stack {
  meta: LoopDevice;
  fast: LoopDevice;
  slow: LoopDevice;
  /** The delay device over `slow`: the cache's origin. */
  origin: DeviceInfo;
  options: CacheCreateOptions;
}

/** A slow origin (reads delayed, writes after `writeDelay` ms) over one loop device, a fast one and a metadata one. */
async function stack(t: TestContext, writeDelay = 0): Promise<Stack> {
  const [meta, fast, slow] = [await t.fx.loop(8192), await t.fx.loop(8192), await t.fx.loop(ORIGIN)];
  const origin = await t.dm.create(devName('slow'), {
    table: new Table([{ start: 0, length: ORIGIN, target: targets.delay({ read: { device: slow.dev, offset: 0, delay: READ_DELAY }, write: { device: slow.dev, offset: 0, delay: writeDelay } }) }]),
  });
  return { meta, fast, slow, origin, options: { metadataDevice: meta.dev, cacheDevice: fast.dev, originDevice: origin.dev, blockSize: BLOCK } };
}

/**
 * Reads 4 KiB at the start of each block, each through a fresh open: a block device's page
 * cache goes at its last close, so every read reaches the device, one bio at a time.
 * Resolves with the milliseconds it took.
 */
function timedReads(path: string, blocks: readonly number[]): number {
  const b = Buffer.alloc(4096);
  const t0 = process.hrtime.bigint();
  for (const k of blocks) {
    const fd = openSync(path, 'r');
    try {
      readSync(fd, b, 0, 4096, k * BLOCK_BYTES);
    } finally {
      closeSync(fd);
    }
  }
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Writes whole blocks of `fill` (fill + i for the i-th), then fsync. */
function writeBlocks(path: string, blocks: readonly number[], fill: number): void {
  const fd = openSync(path, 'r+');
  try {
    blocks.forEach((k, i) => writeSync(fd, Buffer.alloc(BLOCK_BYTES, fill + i), 0, BLOCK_BYTES, k * BLOCK_BYTES));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Block `block` of a device the test alone opens (its page cache goes at each close) is all `fill`. */
function blockIs(path: string, block: number, fill: number): boolean {
  return readAt(path, BLOCK_BYTES, block * BLOCK_BYTES).every((x) => x === fill);
}

/**
 * Block `block` of the origin's own disk is all `fill`, read with O_DIRECT: the delay device
 * holds that disk open, so its page cache would outlive our close, and the kernel's writes
 * (bios) do not update it.
 */
function diskBlockIs(path: string, block: number, fill: number): boolean {
  const data = execFileSync('dd', [`if=${path}`, `bs=${BLOCK_BYTES}`, `skip=${block}`, 'count=1', 'iflag=direct', 'status=none'], { maxBuffer: 2 * BLOCK_BYTES });
  return data.length === BLOCK_BYTES && data.every((x) => x === fill);
}

/**
 * Reads `hot` until one pass is all read hits (smq promotes blocks read again and again), at
 * most `passes` times; resolves with the status after that pass.
 */
async function promote(cache: Cache, hot: readonly number[], passes = 20): Promise<CacheRunningStatus> {
  let s = await cache.runningStatus();
  for (let i = 0; i < passes; i++) {
    timedReads(cache.path, hot);
    const next = await cache.runningStatus();
    const hits = next.readHits - s.readHits;
    s = next;
    if (hits === hot.length) return s;
  }
  throw new Error(`smq did not serve all ${hot.length} hot blocks from the cache after ${passes} passes (${s.cacheBlocks.used} cached)`);
}

describe('Cache recipe in the kernel', () => {
  const t = TestContext.perTest();
  const hot = [0, 1, 2, 3, 4, 5, 6, 7];

  it('smq writeback over a slow origin: hot blocks are read from the cache many times faster than cold ones; writes leave dirty blocks; flushAndRemove writes them all back, and the origin holds every byte; cache_check passes', async () => {
    const s0 = await stack(t);
    const name = devName('cache');
    const cache = await Cache.create(t.dm, name, { ...s0.options, policyArgs: { migration_threshold: 2048 } });
    const built = targets.cache({ metadataDevice: s0.meta.dev, cacheDevice: s0.fast.dev, originDevice: s0.origin.dev, blockSize: BLOCK, mode: 'writeback', policy: 'smq', policyArgs: { migration_threshold: 2048 } });
    await expectReadBack(t.dm, name, new Table([{ start: 0, length: ORIGIN, target: built }]));
    const first = await cache.runningStatus();
    expect(first).to.deep.include({ mode: 'writeback', policy: 'smq', cacheBlockSize: BLOCK, dirty: 0, readHits: 0, metadataMode: 'rw', needsCheck: false });
    expect(first.cacheBlocks.total).to.equal(8192 / BLOCK);
    expect(dmsetup('status', name).trimEnd()).to.equal(`0 ${ORIGIN} cache ${first.raw}`.trimEnd());

    const warm = await promote(cache, hot);
    const hotMs = timedReads(cache.path, hot);
    const afterHot = await cache.runningStatus();
    // Each of those reads was a hit: none went to the slow origin.
    expect(afterHot.readHits - warm.readHits).to.be.at.least(hot.length);
    expect(afterHot.readMisses).to.equal(warm.readMisses);
    const coldMs = timedReads(cache.path, [40, 41, 42, 43, 44, 45, 46, 47]);
    // A cold read waits for the origin's delay, one after another: never less than this.
    expect(coldMs).to.be.at.least(hot.length * READ_DELAY * 0.9);
    expect(hotMs, `hot ${hotMs.toFixed(1)} ms, cold ${coldMs.toFixed(1)} ms`).to.be.below(coldMs / 4);

    // Writes to cached blocks stay on the cache (dirty) until written back.
    writeBlocks(cache.path, hot, 0x40);
    writeBlocks(cache.path, [20, 90], 0x60);
    const dirty = await cache.runningStatus();
    expect(dirty.dirty).to.be.greaterThan(0);
    expect(dirty.writeHits).to.be.greaterThan(0);
    expect(diskBlockIs(s0.slow.path, 0, 0x40)).to.equal(false);
    hot.forEach((k, i) => expect(blockIs(cache.path, k, 0x40 + i)).to.equal(true));

    const last = await cache.flushAndRemove({ timeout: 30000 });
    expect(last).to.deep.include({ dirty: 0, policy: 'cleaner', mode: 'writeback' });
    expect((await t.dm.listDevices()).map((d) => d.name)).to.not.include(name);
    // Straight from the loop device under the origin: every byte written through the cache.
    hot.forEach((k, i) => expect(diskBlockIs(s0.slow.path, k, 0x40 + i), `block ${k}`).to.equal(true));
    expect(diskBlockIs(s0.slow.path, 20, 0x60)).to.equal(true);
    expect(diskBlockIs(s0.slow.path, 90, 0x61)).to.equal(true);
    expect(diskBlockIs(s0.slow.path, 50, 0)).to.equal(true);
    execFileSync('cache_check', [s0.meta.path], { stdio: ['ignore', 'pipe', 'pipe'] });
  });

  it('remove refuses a dirty cache (EBUSY) and leaves it running; with leaveDirty the dirty blocks stay on the cache, and activate on the same metadata serves them again', async () => {
    const s0 = await stack(t);
    // Below one block of migration bandwidth smq never writes back on its own when idle: the blocks stay dirty.
    const options: CacheCreateOptions = { ...s0.options, policyArgs: { migration_threshold: 0 } };
    const cache = await Cache.create(t.dm, devName('cache-d'), options);
    await promote(cache, hot);
    writeBlocks(cache.path, hot, 0x70);
    const dirty = (await cache.runningStatus()).dirty;
    expect(dirty).to.be.greaterThan(0);
    const e = await rejection(cache.remove());
    expect(e.code).to.equal('EBUSY');
    expect(e.message).to.match(/dirty/);
    const info = await t.dm.info(cache.id);
    expect(info.suspended).to.equal(false);
    await cache.remove({ leaveDirty: true });
    expect(diskBlockIs(s0.slow.path, 0, 0x70)).to.equal(false);

    const again = await Cache.activate(t.dm, devName('cache-d2'), options);
    expect((await again.runningStatus()).dirty).to.equal(dirty);
    hot.forEach((k, i) => expect(blockIs(again.path, k, 0x70 + i)).to.equal(true));
    await again.flushAndRemove();
    hot.forEach((k, i) => expect(diskBlockIs(s0.slow.path, k, 0x70 + i)).to.equal(true));
  });

  it('flushAndRemove of an open cache cleans it, fails with EBUSY at the remove, and leaves it resumed on the cleaner; setPolicy and setMode reload it', async () => {
    const s0 = await stack(t);
    const cache = await Cache.create(t.dm, devName('cache-open'), s0.options);
    await promote(cache, hot);
    writeBlocks(cache.path, hot, 0x20);
    const fd = openSync(cache.path, 'r');
    try {
      const e = await rejection(cache.flushAndRemove({ timeout: 30000 }));
      expect(e.code).to.equal('EBUSY');
    } finally {
      closeSync(fd);
    }
    const info = await t.dm.info(cache.id);
    expect(info).to.deep.include({ suspended: false, inactiveTable: false });
    const s = await cache.runningStatus();
    expect(s).to.deep.include({ dirty: 0, policy: 'cleaner' });
    expect(diskBlockIs(s0.slow.path, 3, 0x23)).to.equal(true);

    expect((await cache.setPolicy('smq')).policy).to.equal('smq');
    expect((await cache.setMode('writethrough')).mode).to.equal('writethrough');
    const table = await t.dm.table(cache.id);
    expect(table?.rows[0]?.target).to.deep.include({ policy: 'smq', mode: 'writethrough' });
    // writethrough: a write reaches the origin before it completes.
    writeBlocks(cache.path, [5], 0x55);
    expect(diskBlockIs(s0.slow.path, 5, 0x55)).to.equal(true);
    expect((await cache.runningStatus()).dirty).to.equal(0);
    await cache.remove();
  });

  it('a writeback that cannot finish in time fails with ETIMEDOUT (or the abort) and leaves the cache resumed; once the origin takes writes again, flushAndRemove ends', async () => {
    const s0 = await stack(t);
    const cache = await Cache.create(t.dm, devName('cache-slow'), { ...s0.options, policyArgs: { migration_threshold: 0 } });
    await promote(cache, hot);
    writeBlocks(cache.path, hot, 0x11);
    expect((await cache.runningStatus()).dirty).to.equal(hot.length);
    // Now the origin holds each write back for 3 s: longer than the waits below.
    const held = (ms: number): Table => new Table([{ start: 0, length: ORIGIN, target: targets.delay({ read: { device: s0.slow.dev, offset: 0, delay: 0 }, write: { device: s0.slow.dev, offset: 0, delay: ms } }) }]);
    await t.dm.reload(s0.origin.name, held(3000));

    const e = await rejection(cache.flushAndRemove({ timeout: 500 }));
    expect(e.code).to.equal('ETIMEDOUT');
    expect(await t.dm.info(cache.id)).to.deep.include({ suspended: false });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    let aborted: unknown;
    await cache.clean({ signal: ac.signal }).catch((x: unknown) => {
      aborted = x;
    });
    expect(aborted).to.be.instanceOf(Error).with.property('name', 'AbortError');
    expect(await t.dm.info(cache.id)).to.deep.include({ suspended: false });

    // The delay device's suspend sends its held writes on; then writes pass at once.
    await t.dm.reload(s0.origin.name, held(0));
    const last = await cache.flushAndRemove({ timeout: 30000 });
    expect(last.dirty).to.equal(0);
    hot.forEach((k, i) => expect(diskBlockIs(s0.slow.path, k, 0x11 + i)).to.equal(true));
  });

  it('bad arguments are refused before any ioctl; a metadata device a table holds is refused with EBUSY before a byte is written', async () => {
    const [a, b, c] = [await t.fx.loop(8192), await t.fx.loop(8192), await t.fx.loop(8192)];
    const ok: CacheCreateOptions = { metadataDevice: a.dev, cacheDevice: b.dev, originDevice: c.dev, blockSize: BLOCK };
    const refused = async (p: Promise<unknown>): Promise<Error> => p.then(
      () => {
        throw new Error('resolved');
      },
      (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
    );
    const ioctls = t.dm.ioctlStats.ioctls;
    expect(await refused(Cache.create(t.dm, devName('x'), { ...ok, blockSize: 100 }))).to.be.instanceOf(RangeError).with.property('message').that.matches(/blockSize/);
    expect(await refused(Cache.create(t.dm, devName('x'), { ...ok, policy: 'lru' as never }))).to.be.instanceOf(RangeError);
    expect(await refused(Cache.create(t.dm, devName('x'), { ...ok, size: 5 } as never))).to.be.instanceOf(TypeError).with.property('message').that.matches(/size/);
    expect(await refused(Cache.create(t.dm, devName('x'), { ...ok, cacheDevice: a.dev }))).to.be.instanceOf(RangeError).with.property('message').that.matches(/three different devices/);
    expect(await refused(Cache.create(t.dm, devName('x'), { ...ok, policyArgs: { sequential_threshold: 4 } }))).to.be.instanceOf(TypeError);
    expect(t.dm.ioctlStats.ioctls).to.equal(ioctls);

    const fd = openSync(a.path, 'r+');
    try {
      writeSync(fd, Buffer.alloc(4096, 0x77), 0, 4096, 0);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    const holder = devName('holder');
    await t.dm.create(holder, { table: new Table([{ start: 0, length: 8192, target: targets.linear({ device: a.dev, offset: 0 }) }]) });
    const e = await rejection(Cache.create(t.dm, devName('cache-busy'), ok));
    expect(e).to.be.instanceOf(DmError);
    expect(e.code).to.equal('EBUSY');
    expect((await t.dm.listDevices()).map((d) => d.name).filter((n) => n.startsWith(PREFIX))).to.deep.equal([holder]);
    await t.dm.remove(holder);
    expect(readAt(a.path, 4096, 0).every((x) => x === 0x77)).to.equal(true);

    const cache = await Cache.create(t.dm, devName('cache-args'), ok);
    expect(await refused(cache.setPolicy('cleaner', { read_promote_adjustment: 1 }))).to.be.instanceOf(TypeError);
    expect(await refused(cache.clean({ timeout: 0 }))).to.be.instanceOf(RangeError);
    expect(await refused(cache.remove({ force: true } as never))).to.be.instanceOf(TypeError);
    expect((await t.dm.table(cache.id))?.rows[0]?.target).to.deep.include({ policy: 'smq' });
  });

  it('examples/cache.js runs against the built package', () => {
    const env = { ...process.env, DEVMAPPER_EXAMPLE_PREFIX: `${PREFIX}example-` };
    const r = spawnSync(process.execPath, [join(root, 'examples', 'cache.js')], { cwd: root, env, encoding: 'utf8', timeout: 120000 });
    expect(r.status, `${r.stdout}${r.stderr}`).to.equal(0);
    expect(r.stdout).to.match(/^table: 0 16384 cache \d+:\d+ \d+:\d+ \d+:\d+ 128 1 writeback smq 0$/m);
    expect(r.stdout).to.match(/^hot blocks cached: 8\/64 cache blocks in use$/m);
    expect(r.stdout).to.contain('hot re-read served by the cache: 8 read hits, faster than a cold read: true');
    expect(r.stdout).to.match(/^dirty after writes: [1-9]\d* blocks$/m);
    expect(r.stdout).to.contain('flushed: 0 dirty, policy cleaner');
    expect(r.stdout).to.match(/^removed dmt-example-cache$/m);
    expect(r.stdout).to.contain('origin holds every byte written: true');
  });
});
