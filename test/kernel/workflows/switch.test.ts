import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DmError, SWITCH_MESSAGE_WORDS, Switch, regionMappingMessages, type LoopDevice } from '../../../ts/index';
import { PREFIX, TestContext, devName, dmsetup, timeoutAtLeast } from '../helpers';
import { root } from './kit';

/**
 * One loop device whose sector q begins with the number q (little-endian u32), for `paths`
 * extents of `regions` sectors: path p of a switch of 1-sector regions is the extent at
 * offset p * regions, so what a region reads names the path it went to.
 */
async function stampedDisk(t: TestContext, paths: number, regions: number, only?: readonly number[]): Promise<LoopDevice> {
  const loop = await t.fx.loop(paths * regions);
  const fd = openSync(loop.file, 'r+');
  try {
    if (only !== undefined) {
      const b = Buffer.alloc(512);
      for (let p = 0; p < paths; p++) {
        for (const r of only) {
          b.writeUInt32LE(p * regions + r, 0);
          writeSync(fd, b, 0, 512, (p * regions + r) * 512);
        }
      }
    } else {
      const chunk = Buffer.alloc(2048 * 512);
      for (let q = 0; q < paths * regions; q += 2048) {
        const n = Math.min(2048, paths * regions - q);
        for (let i = 0; i < n; i++) chunk.writeUInt32LE(q + i, i * 512);
        writeSync(fd, chunk, 0, n * 512, q * 512);
      }
    }
  } finally {
    closeSync(fd);
  }
  return loop;
}

/** The path each 1-sector region of the switch reads from, read with direct I/O. */
function pathsReadThrough(sw: Switch, regions: number): number[] {
  const out = execFileSync('dd', [`if=${sw.info.path}`, 'bs=1M', 'iflag=direct', 'status=none'], { maxBuffer: sw.size * 512 + 4096 });
  expect(out.length).to.equal(sw.size * 512);
  return Array.from({ length: sw.size }, (_, r) => {
    const v = out.readUInt32LE(r * 512);
    return v % regions === r ? Math.floor(v / regions) : -1;
  });
}

/** The path of single 1-sector regions, read one by one. */
function pathsOfRegions(sw: Switch, regions: number, which: readonly number[]): number[] {
  const fd = openSync(sw.info.path, 'r');
  try {
    const b = Buffer.alloc(4);
    return which.map((r) => {
      readSync(fd, b, 0, 4, r * 512);
      const v = b.readUInt32LE(0);
      return v % regions === r ? Math.floor(v / regions) : -1;
    });
  } finally {
    closeSync(fd);
  }
}

/** A deterministic pseudo-random path sequence (xorshift), with no long regular stretch. */
function scrambled(length: number, paths: number, seed: number): number[] {
  let x = seed;
  return Array.from({ length }, () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % paths;
  });
}

function words(message: string): number {
  return message.split(' ').length;
}

async function refusal(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('resolved, expected a refusal');
    },
    (e: unknown) => e,
  );
}

describe('workflows: Switch', function () {
  const t = TestContext.perTest();

  it('a regular map of 100,000 regions loads in one message of a few words, and every region reads from the path the map names', async () => {
    const R = 100000;
    const disk = await stampedDisk(t, 3, R);
    const name = devName('wf-sw');
    const sw = await Switch.create(t.dm, name, { size: R, regionSize: 1, paths: [0, 1, 2].map((p) => ({ device: disk.dev, offset: p * R })) });
    expect(sw.regions).to.equal(R);
    expect(dmsetup('table', name).trimEnd()).to.equal(`0 ${R} switch 3 1 0 ${disk.devString} 0 ${disk.devString} ${R} ${disk.devString} ${2 * R}`);
    expect(sw.target).to.deep.include({ regionSize: 1 });
    // The kernel's own map first: region r on path r mod 3.
    expect(pathsOfRegions(sw, R, [0, 1, 2, 3, 99999])).to.deep.equal([0, 1, 2, 0, 99999 % 3]);

    const period = [0, 1, 2, 2, 1, 0, 0];
    const map = Array.from({ length: R }, (_, r) => period[r % period.length] ?? 0);
    const messages = regionMappingMessages(map);
    expect(messages).to.deep.equal(['set_region_mappings 0:0 :1 :2 :2 :1 :0 :0 R7,18699']);
    const result = await sw.setRegionMappings(map);
    expect(result).to.deep.equal({ messages: 1, words: 9, largestBytes: Buffer.byteLength(messages[0] ?? '') });
    const read = pathsReadThrough(sw, R);
    expect(read.findIndex((p, r) => p !== map[r]), 'the first region on another path than the map').to.equal(-1);
  });

  it('a map that needs more words than maxWords is cut into messages that each restart at an explicit region, a repeat cut included, and the kernel maps what was asked', async () => {
    const R = 4096;
    const disk = await stampedDisk(t, 4, R);
    const name = devName('wf-sw-cut');
    // Paths named by the loop's node: the kernel prints them back as 'major:minor'.
    await Switch.create(t.dm, name, { size: R, regionSize: 1, uuid: `${PREFIX}uuid-${name}`, paths: [0, 1, 2, 3].map((p) => ({ device: disk.path, offset: p * R })) });
    const sw = await Switch.open(t.dm, { uuid: `${PREFIX}uuid-${name}` });
    expect(sw.id).to.deep.equal({ uuid: `${PREFIX}uuid-${name}` });
    expect(sw.target.paths.map((p) => p.device)).to.deep.equal([disk.devString, disk.devString, disk.devString, disk.devString]);

    // A repeat cut by the word limit goes on after an explicit word for its first region.
    const alternating = Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? 3 : 2));
    expect(regionMappingMessages(alternating, { start: 10, maxWords: 3 })).to.deep.equal(['set_region_mappings a:3 :2', 'set_region_mappings c:3 R2,61']);
    const r1 = await sw.setRegionMappings(alternating, { start: 10, maxWords: 3 });
    expect(r1).to.deep.include({ messages: 2, words: 6 });

    // Scrambled regions with regular stretches: many words, cut at 500.
    const map = [...scrambled(1500, 4, 7), ...Array.from({ length: 1000 }, (_, i) => i % 3), ...scrambled(1596, 4, 11)];
    const messages = regionMappingMessages(map, { maxWords: 500 });
    expect(messages.length).to.be.greaterThan(3);
    for (const m of messages) {
      expect(words(m)).to.be.at.most(500);
      expect(m).to.match(/^set_region_mappings [0-9a-f]+:[0-3]( |$)/);
    }
    const r2 = await sw.setRegionMappings(map, { maxWords: 500 });
    expect(r2).to.deep.equal({ messages: messages.length, words: messages.reduce((n, m) => n + words(m), 0), largestBytes: Math.max(...messages.map((m) => m.length)) });
    const read = pathsReadThrough(sw, R);
    expect(read.findIndex((p, r) => p !== map[r]), 'the first region on another path than the map').to.equal(-1);

    // dmsetup agrees: the same table made by dmsetup create, the same messages sent by dmsetup message, the same data.
    const peer = devName('wf-sw-peer');
    const peerTable = dmsetup('table', name);
    execFileSync('dmsetup', ['create', peer], { input: peerTable, stdio: ['pipe', 'ignore', 'pipe'] });
    for (const m of messages) dmsetup('message', peer, '0', ...m.split(' '));
    expect(dmsetup('table', peer)).to.equal(peerTable);
    const viaPeer = await Switch.open(t.dm, peer);
    expect(viaPeer.target).to.deep.equal(sw.target);
    expect(pathsReadThrough(viaPeer, R)).to.deep.equal(read);

    // A map from a later region leaves the regions before it alone.
    await sw.setRegionMappings([1, 1, 1, 1], { start: 4092 });
    expect(pathsReadThrough(sw, R)).to.deep.equal([...map.slice(0, 4092), 1, 1, 1, 1]);
  });

  it(`the kernel takes ${SWITCH_MESSAGE_WORDS} words in one message and refuses one more (ENOMEM); a map that needs more is sent in two messages`, async function () {
    timeoutAtLeast(this, 180000);
    // Eight paths in scrambled order: few repeats, so about a word a region.
    const R = 600000;
    const sample = [0, 1, 2, 524286, 524287, 524288, 524289, 550000, R - 1];
    const disk = await stampedDisk(t, 8, R, sample);
    const name = devName('wf-sw-max');
    const sw = await Switch.create(t.dm, name, { size: R, regionSize: 1, paths: [0, 1, 2, 3, 4, 5, 6, 7].map((p) => ({ device: disk.dev, offset: p * R })) });
    // The limit itself, in explicit words (each sets region 0).
    await t.dm.message(name, `set_region_mappings${' 0:1'.repeat(SWITCH_MESSAGE_WORDS - 1)}`);
    const e = await refusal(t.dm.message(name, `set_region_mappings${' 0:1'.repeat(SWITCH_MESSAGE_WORDS)}`));
    expect(e).to.be.instanceOf(DmError).and.include({ code: 'ENOMEM', command: 'DM_TARGET_MSG' });

    const map = scrambled(R, 8, 3);
    const result = await sw.setRegionMappings(map);
    // More words than one message takes, and no more than two messages' worth.
    expect(result.messages).to.equal(2);
    expect(result.words).to.be.within(SWITCH_MESSAGE_WORDS + 2, 2 * SWITCH_MESSAGE_WORDS);
    expect(pathsOfRegions(sw, R, sample)).to.deep.equal(sample.map((r) => map[r]));
  });

  it('bad input is refused before any ioctl; a table the kernel refuses (a path past the end of its device) leaves no device', async () => {
    const disk = await t.fx.loop(256);
    const name = devName('wf-sw-bad');
    const paths = [{ device: disk.dev, offset: 0 }, { device: disk.dev, offset: 128 }];
    const before = t.dm.ioctlStats.commands;
    const cases: [unknown, RegExp][] = [
      [{ size: 100, regionSize: 8, paths }, /^Expected a size in whole 8-sector regions for options.size but received number 100$/],
      [{ size: 128, regionSize: 8, paths, regions: [0, 2] }, /^Expected a path number from 0 to 1 for options.regions\[1\] but received number 2$/],
      [{ size: 128, regionSize: 8, paths, regions: new Array<number>(17).fill(0) }, /^Expected 1 to 16 path number\(s\) \(regions 0 to 15\) for options.regions but received array$/],
      [{ size: 128, regionSize: 8, paths, regions: [0, '1'] }, /^Expected a path number from 0 to 1 for options.regions\[1\] but received "1"$/],
      [{ size: 128, regionSize: 8, paths, maxWords: 1 }, /^Expected an integer from 2 to 524288 for options.maxWords but received number 1$/],
      [{ size: 128, regionSize: 8, paths, region: 3 }, /unknown option "region"/],
    ];
    for (const [options, message] of cases) {
      const e = await refusal(Switch.create(t.dm, name, options as never));
      expect(e, String(message)).to.be.instanceOf(Error).with.property('message').that.matches(message);
    }
    expect(t.dm.ioctlStats.commands).to.equal(before);

    const sw = await Switch.create(t.dm, name, { size: 128, regionSize: 8, paths });
    const sent = t.dm.ioctlStats.commands;
    expect(await refusal(sw.setRegionMappings([0, 1], { start: 15 }))).to.be.instanceOf(RangeError);
    expect(await refusal(sw.setRegionMappings([5]))).to.be.instanceOf(RangeError);
    expect(t.dm.ioctlStats.commands).to.equal(sent);
    await sw.remove();

    // A path extent past the end of its device: the kernel refuses the table, and nothing is left.
    const bad = devName('wf-sw-past');
    const e = await refusal(Switch.create(t.dm, bad, { size: 128, regionSize: 8, paths: [{ device: disk.dev, offset: 0 }, { device: disk.dev, offset: 200 }], regions: [1, 0] }));
    expect(e).to.be.instanceOf(DmError).and.include({ code: 'EINVAL' });
    expect((await t.dm.listDevices()).map((d) => d.name)).to.not.include(bad);
  });

  it('when the kernel refuses a message of the initial map, create removes the device it made', async () => {
    const disk = await t.fx.loop(256);
    const name = devName('wf-sw-rollback');
    const dm = t.dm;
    // Another actor reloads the device with a one-path table just before the first message: the kernel then refuses path 1.
    const racing = new Proxy(dm, {
      get(target, property) {
        if (property === 'message') {
          return async (...args: Parameters<typeof dm.message>): Promise<string | undefined> => {
            const one = dmsetup('table', name).replace(/^0 128 switch 2 8 0 (\S+) 0 \S+ 128\n$/, '0 128 switch 1 8 0 $1 0');
            execFileSync('dmsetup', ['reload', name], { input: one, stdio: ['pipe', 'ignore', 'pipe'] });
            dmsetup('resume', name);
            return dm.message(...args);
          };
        }
        const value: unknown = Reflect.get(target, property);
        return typeof value === 'function' ? (...args: unknown[]): unknown => Reflect.apply(value, target, args) : value;
      },
    });
    const e = await refusal(Switch.create(racing, name, { size: 128, regionSize: 8, paths: [{ device: disk.dev, offset: 0 }, { device: disk.dev, offset: 128 }], regions: [1, 1, 0] }));
    expect(e).to.be.instanceOf(DmError).and.include({ code: 'EINVAL', command: 'DM_TARGET_MSG' });
    expect(e instanceof DmError ? e.rollbackError : 'not a DmError').to.equal(undefined);
    expect((await t.dm.listDevices()).map((d) => d.name)).to.not.include(name);
  });

  it('examples/switch.js runs against the built package', () => {
    const env = { ...process.env, DEVMAPPER_EXAMPLE_PREFIX: `${PREFIX}example-` };
    const r = spawnSync(process.execPath, [join(root, 'examples', 'switch.js')], { cwd: root, env, encoding: 'utf8', timeout: 120000 });
    expect(r.status, `${r.stdout}${r.stderr}`).to.equal(0);
    expect(r.stdout).to.match(/^table: 0 24000 switch 3 8 0 \d+:\d+ 0 \d+:\d+ 24000 \d+:\d+ 48000$/m);
    expect(r.stdout).to.contain('before: ABCABCABCABC');
    expect(r.stdout).to.contain('3000 regions in 1 message(s) of 6 words: set_region_mappings 0:0 :0 :1 :2 R4,bb4');
    expect(r.stdout).to.contain('after:  AABCAABCAABC');
    expect(r.stdout).to.match(/^removed dmt-example-switch$/m);
  });
});
