import { expect } from 'chai';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { DeviceMapperSync, Table, LoopDevice, parseStatsList, statsMessages, targets, type StatusRow } from '../../../ts/index';
import { runCli } from '../../unit/cli/harness';
import { TestContext, devName, dmsetup, scratchDir } from '../helpers';

const run = promisify(execFile);
const root = resolve(__dirname, '..', '..', '..', '..', '..');

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}

describe('devmapper status, wait, watch, stats and loop in the kernel', () => {
  const t = TestContext.perTest();

  it('status: readable typed rows, --raw as dmsetup status prints them (one device and all), --json the typed rows, --target filters; no such device is exit 3', async () => {
    const loop = await t.fx.loop(4096);
    const name = devName('cli-status');
    await t.dm.create(name, { table: new Table([
      { start: 0, length: 2048, target: targets.linear({ device: loop.dev, offset: 0 }) },
      { start: 2048, length: 2048, target: targets.striped({ chunkSize: 8, stripes: [{ device: loop.dev, offset: 2048 }] }) },
      { start: 4096, length: 8, target: targets.zero() },
    ]) });
    const text = await runCli(['status', name]);
    expect(text.code, text.stderr).to.equal(0);
    expect(text.stdout).to.equal(`0 2048 linear (1 MiB)\n2048 2048 striped (1 MiB)\n  stripes  ${loop.devString} alive\n4096 8 zero (4 KiB)\n`);

    const raw = await runCli(['status', '--raw', name]);
    expect(raw.code).to.equal(0);
    expect(raw.stdout).to.equal(dmsetup('status', name));

    const json = await runCli(['status', name, '--json']);
    const rows: unknown = JSON.parse(json.stdout);
    expect(rows).to.deep.equal(JSON.parse(JSON.stringify(await t.dm.status(name))));
    expect((rows as StatusRow[]).map((r) => r.status.known)).to.deep.equal([true, true, true]);

    const striped = await runCli(['status', name, '--target', 'striped', '--raw']);
    expect(striped.stdout).to.equal(dmsetup('status', name, '--target', 'striped'));

    // Every device: our device's lines are dmsetup's.
    const all = await runCli(['status', '--raw']);
    const ours = (out: string): string[] => lines(out).filter((l) => l.startsWith(`${name}: `));
    expect(ours(all.stdout)).to.deep.equal(ours(dmsetup('status')));
    expect(ours(all.stdout)).to.have.length(3);
    const allJson = JSON.parse((await runCli(['status', '--json'])).stdout) as { name: string; rows: unknown[] }[];
    expect(allJson.find((d) => d.name === name)?.rows).to.deep.equal(rows);

    const missing = await runCli(['status', devName('cli-nobody')]);
    expect(missing.code).to.equal(3);
    expect(missing.stderr).to.match(/ENXIO/);
  });

  it('status of every device leaves out a thin pool removed between its status read and the table read its text needs (no ENXIO exit)', async () => {
    const [meta, data] = [await t.fx.loop(8192), await t.fx.loop(65536)];
    const pool = devName('cli-gone-pool');
    await t.dm.create(pool, { table: new Table([{ start: 0, length: 65536, target: targets.thinPool({ metadataDevice: meta.dev, dataDevice: data.dev, blockSize: 128, lowWaterMark: 0 }) }]) });
    // The method itself, put back after: called only through .call with a client as `this`.
    // eslint-disable-next-line @typescript-eslint/unbound-method
    const original = DeviceMapperSync.prototype.status;
    let removed = false;
    DeviceMapperSync.prototype.status = function statusThenRemove(this: DeviceMapperSync, id, options) {
      const rows = original.call(this, id, options);
      if (typeof id === 'object' && 'name' in id && id.name === pool) {
        this.remove(pool);
        removed = true;
      }
      return rows;
    };
    try {
      const r = await runCli(['status']);
      expect(removed, 'the pool was removed after its status read').to.equal(true);
      expect([r.code, r.stderr]).to.deep.equal([0, '']);
      expect(r.stdout).to.not.contain(pool);
    } finally {
      DeviceMapperSync.prototype.status = original;
    }
  });

  it('status of a thin pool and a thin volume: used/total, percentages and sizes from the kernel\'s numbers, as dmsetup reports them', async () => {
    const [meta, data] = [await t.fx.loop(8192), await t.fx.loop(65536)];
    const pool = devName('cli-pool');
    await t.dm.create(pool, { table: new Table([{ start: 0, length: 65536, target: targets.thinPool({ metadataDevice: meta.dev, dataDevice: data.dev, blockSize: 128, lowWaterMark: 0 }) }]) });
    await t.dm.message(pool, 'create_thin 0');
    const poolDev = (await t.dm.info(pool)).dev;
    const thin = devName('cli-thin');
    const thinInfo = await t.dm.create(thin, { table: new Table([{ start: 0, length: 131072, target: targets.thin({ poolDevice: `${poolDev.major}:${poolDev.minor}`, deviceId: 0 }) }]) });
    const fd = openSync(thinInfo.path, 'r+');
    try {
      // 3 blocks of 64 KiB, apart.
      for (const at of [0, 10, 20]) writeSync(fd, Buffer.alloc(65536, 7), 0, 65536, at * 65536);
    } finally {
      closeSync(fd);
    }
    const peer = dmsetup('status', pool).trim().split(' ');
    // 0 65536 thin-pool <transaction> <meta used>/<total> <data used>/<total> ...
    const [mUsed, mTotal] = (peer[4] ?? '').split('/').map(Number);
    const [dUsed, dTotal] = (peer[5] ?? '').split('/').map(Number);
    expect(dUsed).to.equal(3);
    const text = (await runCli(['status', pool])).stdout;
    expect(text).to.contain(`\n  data           ${dUsed}/${dTotal} blocks (0.5%, 192 KiB of 32 MiB)\n`);
    expect(text).to.contain(`\n  metadata       ${mUsed}/${mTotal} blocks (`);
    expect(text).to.match(/\n {2}mode +read-write\n {2}needs check +no\n/);
    const thinText = (await runCli(['status', thin])).stdout;
    const thinPeer = dmsetup('status', thin).trim().split(' ');
    expect(thinPeer[3]).to.equal('384');
    expect(thinText).to.equal(`0 131072 thin (64 MiB)\n  mapped          384 sectors (192 KiB)\n  highest mapped  sector ${thinPeer[4] ?? ''}\n`);
  });

  it('status never reads a table it does not need: no table (and no key) is read back for a crypt device, by the bin under strace', async () => {
    const loop = await t.fx.loop(2048);
    const name = devName('cli-crypt');
    const key = randomBytes(64);
    await t.dm.create(name, { table: new Table([{ start: 0, length: 2048, target: targets.crypt({ cipher: 'aes-xts-plain64', key, device: loop.dev, offset: 0 }) }]), secure: true });
    const trace = join(scratchDir(), 'cli-strace.txt');
    const bin = join(root, 'dist', 'cli', 'main.js');
    const r = spawnSync('strace', ['-f', '-e', 'trace=ioctl', '-o', trace, process.execPath, bin, 'status', name], { encoding: 'utf8', timeout: 110000 });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.equal('0 2048 crypt (1 MiB)\n');
    const requests = readFileSync(trace, 'utf8').split('\n').filter((l) => / DM_TABLE_STATUS, /.test(l)).map((l) => l.split(' => ')[0] ?? '');
    // One status read, and no table read (DM_STATUS_TABLE_FLAG).
    expect(requests).to.have.length(1);
    expect(requests.filter((l) => l.includes('DM_STATUS_TABLE_FLAG'))).to.deep.equal([]);
    expect(readFileSync(trace, 'utf8')).to.not.contain(key.toString('hex'));
  });

  it('wait prints the event number the kernel moved to, as dmsetup info reports it, and dmsetup wait agrees; watch streams the event (text and --json) until interrupted', async () => {
    const loop = await t.fx.loop(2048);
    const name = devName('cli-wait');
    await t.dm.create(name, { table: new Table([{ start: 0, length: 2048, type: 'multipath', params: `0 0 1 1 round-robin 0 1 1 ${loop.devString} 1` }]) });
    const { eventNr, dev } = await t.dm.info(name);
    const stop = new AbortController();
    const text = runCli(['watch', name], { signal: stop.signal });
    const json = runCli(['watch', '--json'], { signal: stop.signal });
    try {
      let early = 0;
      const waiting = runCli(['wait', name, String(eventNr)]).finally(() => early++);
      const peer = run('dmsetup', ['wait', name, String(eventNr)]).finally(() => early++);
      await new Promise((r) => setTimeout(r, 300));
      // Neither returned before the event.
      expect(early).to.equal(0);
      await t.dm.message(name, `fail_path ${loop.devString}`);
      const w = await waiting;
      await peer;
      expect(w.code, w.stderr).to.equal(0);
      const now = Number(dmsetup('info', '-c', '--noheadings', '-o', 'events', name).trim());
      expect(now).to.be.greaterThan(eventNr);
      expect(w.stdout).to.equal(`${now}\n`);
      // The failed path, as the status verb reads the kernel's status and table.
      const mp = (await runCli(['status', name])).stdout;
      expect(mp).to.match(new RegExp(`\\n    path ${loop.devString} +failed, 1 failure\\n`));
      expect(mp).to.match(/\n {2}queue if no path +no\n/);
      expect(mp).to.match(/\n {2}group 1 +\w+, 0\/1 paths active\n/);
      expect(dmsetup('status', name)).to.match(new RegExp(` ${loop.devString} F 1 `));
      // Already past the number given: at once.
      const past = await runCli(['wait', name, String(eventNr), '--json']);
      expect(JSON.parse(past.stdout)).to.deep.equal({ name, eventNr: now });

      const until = Date.now() + 10000;
      // watch lists, then arms: give it until the event shows or 10 s.
      for (;;) {
        const seen = await Promise.race([text.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 100))]);
        if (seen || Date.now() > until) break;
        if ((await t.dm.info(name)).eventNr > eventNr) break;
      }
      await new Promise((r) => setTimeout(r, 500));
      stop.abort();
      const [wt, wj] = await Promise.all([text, json]);
      expect(wt.code).to.equal(130);
      expect(lines(wt.stdout)).to.include(`${name} ${now} ${dev.major}:${dev.minor}`);
      expect(lines(wt.stdout).every((l) => l.startsWith(`${name} `))).to.equal(true);
      const events = lines(wj.stdout).map((l) => JSON.parse(l) as { name: string; eventNr: number; dev: unknown });
      expect(events.find((e) => e.name === name)).to.deep.include({ eventNr: now, dev });
    } finally {
      // A failed check must not leave the watches running.
      stop.abort();
      await Promise.all([text, json]);
    }
  });

  it('stats create, list, print, clear and delete agree with the kernel\'s @stats answers; a usage error creates no region', async () => {
    const loop = await t.fx.loop(2048);
    const name = devName('cli-stats');
    const info = await t.dm.create(name, { table: new Table([{ start: 0, length: 2048, target: targets.linear({ device: loop.dev, offset: 0 }) }]) });
    const bad = await runCli(['stats', 'create', name, '--areas', '0']);
    expect(bad.code).to.equal(2);
    expect(dmsetup('message', name, '0', '@stats_list')).to.equal('');

    const made = await runCli(['stats', 'create', name, '--areas', '2', '--program-id', 'cli', '--aux-data', 'two words']);
    expect(made.code, made.stderr).to.equal(0);
    const id = Number(made.stdout.trim());
    expect(dmsetup('message', name, '0', '@stats_list').trim()).to.equal(`${id}: 0+2048 1024 cli two words`);
    const listed = JSON.parse((await runCli(['stats', 'list', name, '--json'])).stdout) as unknown;
    expect(listed).to.deep.equal([{ name, regions: parseStatsList(await t.dm.message(name, statsMessages.list())) }]);
    const table = await runCli(['stats', 'list']);
    expect(lines(table.stdout)[0]).to.match(/^Name +RgID +RStart +RSize +ASize +ProgID +AuxData$/);
    expect(lines(table.stdout).find((l) => l.startsWith(`${name} `))?.split(/ +/)).to.deep.equal([name, String(id), '0', '2048', '1024', 'cli', 'two', 'words']);

    // 8 KiB into the second area.
    const fd = openSync(info.path, 'r+');
    try {
      writeSync(fd, Buffer.alloc(8192, 1), 0, 8192, 1024 * 512);
    } finally {
      closeSync(fd);
    }
    const printed = JSON.parse((await runCli(['stats', 'print', name, String(id), '--json'])).stdout) as { regionId: number; areas: { start: number; sectorsWritten: string }[] }[];
    expect(printed.map((p) => p.regionId)).to.deep.equal([id]);
    expect(printed[0]?.areas.map((a) => [a.start, a.sectorsWritten])).to.deep.equal([[0, '0'], [1024, '16']]);
    // The text table's counters are the kernel's @stats_print words.
    const kernel = lines(dmsetup('message', name, '0', `@stats_print ${id}`)).map((l) => l.split(' '));
    const text = lines((await runCli(['stats', 'print', name])).stdout).slice(1).map((l) => l.trim().split(/ +/));
    expect(text.map((r) => [r[1], ...r.slice(2)])).to.deep.equal(kernel.map((k) => [k[0], ...k.slice(1, 12)]));

    // Every verb answers --json with one JSON document, these too.
    const cleared = await runCli(['stats', 'clear', name, String(id), '--json']);
    expect(cleared.code, cleared.stderr).to.equal(0);
    expect(JSON.parse(cleared.stdout)).to.deep.equal({ regionId: id, cleared: true });
    expect(lines(dmsetup('message', name, '0', `@stats_print ${id}`))[1]?.split(' ')[7]).to.equal('0');
    const deleted = await runCli(['stats', 'delete', name, String(id), '--json']);
    expect(deleted.code, deleted.stderr).to.equal(0);
    expect(JSON.parse(deleted.stdout)).to.deep.equal({ regionId: id, deleted: true });
    expect(dmsetup('message', name, '0', '@stats_list')).to.equal('');
    const gone = await runCli(['stats', 'delete', name, String(id)]);
    expect(gone.code).to.equal(1);
    expect(gone.stderr).to.match(/ENOENT|EINVAL/);
  });

  it('loop attach, ls, refresh and detach: losetup sees what they did', async () => {
    const file = join(scratchDir(), 'cli-loop.img');
    writeFileSync(file, '');
    truncateSync(file, 1 << 20);
    const made = await runCli(['loop', 'attach', file, '--readonly', '--offset', '4096', '--sizelimit', '65536', '--json']);
    expect(made.code, made.stderr).to.equal(0);
    const attached = JSON.parse(made.stdout) as { path: string; offset: number; sizeLimit: number; readOnly: boolean; fileName: string };
    let detached = false;
    try {
      expect(attached).to.deep.include({ offset: 4096, sizeLimit: 65536, readOnly: true, fileName: file });
      const peer = JSON.parse(execFileSync('losetup', ['--json', '--list', '-O', 'NAME,OFFSET,SIZELIMIT,RO,BACK-FILE', attached.path], { encoding: 'utf8' })) as { loopdevices: Record<string, unknown>[] };
      const row = peer.loopdevices[0] ?? {};
      expect([row['name'], Number(row['offset']), Number(row['sizelimit']), row['ro'] === true || row['ro'] === '1' || row['ro'] === 1, row['back-file']]).to.deep.equal([attached.path, 4096, 65536, true, file]);

      const ls = await runCli(['loop', 'ls']);
      expect(lines(ls.stdout)[0]).to.match(/^NAME +SIZELIMIT +OFFSET +RO +BACK-FILE$/);
      expect(lines(ls.stdout).find((l) => l.startsWith(`${attached.path} `))?.split(/ +/)).to.deep.equal([attached.path, '65536', '4096', '1', file]);
      const all = JSON.parse((await runCli(['loop', 'ls', '--json'])).stdout) as { path: string }[];
      const losetup = lines(execFileSync('losetup', ['--noheadings', '--list', '-O', 'NAME'], { encoding: 'utf8' })).map((l) => l.trim()).sort();
      expect(all.map((d) => d.path).sort()).to.deep.equal(losetup);

      // Without a size limit, refresh picks up the file's new size.
      const grow = await runCli(['loop', 'attach', file]);
      const growPath = grow.stdout.trim();
      const loop = await LoopDevice.open(growPath);
      try {
        truncateSync(file, 2 << 20);
        expect(await loop.size()).to.equal(1 << 20);
        const refreshed = await runCli(['loop', 'refresh', growPath.replace('/dev/', ''), '--json']);
        expect(refreshed.code, refreshed.stderr).to.equal(0);
        expect(JSON.parse(refreshed.stdout)).to.deep.equal({ path: growPath, refreshed: true });
        expect(await loop.size()).to.equal(2 << 20);
        expect(execFileSync('blockdev', ['--getsize64', growPath], { encoding: 'utf8' }).trim()).to.equal(String(2 << 20));
      } finally {
        expect((await runCli(['loop', 'detach', growPath])).code).to.equal(0);
      }
      const d = await runCli(['loop', 'detach', attached.path, '--json']);
      expect(d.code, d.stderr).to.equal(0);
      expect(JSON.parse(d.stdout)).to.deep.equal({ path: attached.path, detached: true });
      detached = true;
      expect(execFileSync('losetup', ['--noheadings', '--list', '-O', 'NAME'], { encoding: 'utf8' })).to.not.contain(attached.path);
      const again = await runCli(['loop', 'detach', attached.path]);
      // Not bound any more: "no such device".
      expect(again.code).to.equal(3);
      expect(again.stderr).to.match(/ENXIO/);
    } finally {
      if (!detached) execFileSync('losetup', ['-d', attached.path]);
    }
  });
});
