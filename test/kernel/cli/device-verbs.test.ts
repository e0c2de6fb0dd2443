import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, lstatSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { decodeRdev } from '../../../ts/dev';
import { DeviceMapperSync, Table, type DeviceInfo } from '../../../ts/index';
import { TestContext, devName, dmsetup, readAt } from '../helpers';
import { root } from '../workflows/kit';
import { runCli, type CliRun } from '../../unit/cli/harness';

/** Runs the command in-process; fails the test unless it exits 0 with nothing on stderr. */
async function ok(...argv: string[]): Promise<string> {
  const r = await runCli(argv);
  expect(r.stderr, argv.join(' ')).to.equal('');
  expect(r.code, argv.join(' ')).to.equal(0);
  return r.stdout;
}

/** A JSON answer of the command, parsed (never cast: checked by the assertions that use it). */
async function json(...argv: string[]): Promise<unknown> {
  return JSON.parse(await ok('--json', ...argv));
}

/** dmsetup's text for our devices only: the blocks of `ls --tree` or lines that name one of them. */
function ourBlocks(text: string, names: readonly string[]): string {
  const blocks: string[][] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (!line.startsWith(' ')) blocks.push([line]);
    else blocks[blocks.length - 1]?.push(line);
  }
  return blocks.filter((b) => names.some((n) => (b[0] ?? '').startsWith(`${n} `))).map((b) => b.join('\n')).join('\n');
}

/** The kernel's state of some devices, to compare before and after a refused call. */
async function state(t: TestContext): Promise<string> {
  const devices = (await t.dm.listDevices()).sort((a, b) => (a.name < b.name ? -1 : 1));
  const out: string[] = [];
  for (const d of devices) {
    const info = await t.dm.info(d.name);
    const table = await t.dm.table(d.name);
    const inactive = info.inactiveTable ? await t.dm.table(d.name, { inactive: true }) : undefined;
    out.push(JSON.stringify({ ...info, eventNr: 0, table: table?.toString(), inactive: inactive?.toString() }));
  }
  return out.join('\n');
}

function expectUsage(r: CliRun, message: RegExp, argv: string): void {
  expect(r.code, argv).to.equal(2);
  expect(r.stdout, argv).to.equal('');
  expect(r.stderr, argv).to.match(message);
  expect(r.stderr, argv).to.match(/^Usage: devmapper /m);
}

const KEY = 'a1'.repeat(64);

describe('devmapper command: device verbs in the kernel', () => {
  const t = TestContext.perTest();

  /** base: linear over a loop disk; top: linear over base and a zero row (with a uuid); empty: no table. */
  async function stack(): Promise<{ base: string; top: string; empty: string; baseInfo: DeviceInfo; loopDev: string; loopPath: string }> {
    const disk = await t.fx.loop(4096);
    const [base, top, empty] = [devName('base'), devName('top'), devName('empty')];
    await ok('create', base, '--table', `0 4096 linear ${disk.devString} 0`);
    const baseInfo = await t.dm.info(base);
    const rows = `0 2048 linear ${baseInfo.dev.major}:${baseInfo.dev.minor} 0\n2048 1024 zero\n`;
    const r = await runCli(['create', top, '--uuid', `CLI-${top}`], { stdin: rows });
    expect([r.code, r.stderr]).to.deep.equal([0, '']);
    await ok('create', empty, '--notable');
    return { base, top, empty, baseInfo, loopDev: disk.devString, loopPath: disk.path };
  }

  it('ls, ls --tree, info, table and deps print what dmsetup prints for the same devices, and --json the library\'s objects', async () => {
    const { base, top, empty, baseInfo, loopDev, loopPath } = await stack();
    // pair stacks on two devices (base, under top too, and base2): the tree's branches.
    const disk2 = await t.fx.loop(1024);
    const [base2, pair] = [devName('base2'), devName('pair')];
    await ok('create', base2, '--table', `0 1024 linear ${disk2.devString} 0`);
    const base2Info = await t.dm.info(base2);
    await ok('create', pair, '--table', `0 1024 linear ${baseInfo.dev.major}:${baseInfo.dev.minor} 0\n1024 1024 linear ${base2Info.dev.major}:${base2Info.dev.minor} 0`);
    const names = [base, top, empty, base2, pair];

    const ls = (await ok('ls')).split('\n').filter((l) => names.some((n) => l.startsWith(`${n} `)));
    const dmLs = dmsetup('ls').split('\n').filter((l) => names.some((n) => l.startsWith(`${n}\t`)));
    expect(ls.map((l) => l.split(/\s+/))).to.deep.equal(dmLs.map((l) => l.split(/\s+/)));
    const listed = await json('ls');
    expect(listed).to.deep.include.members((await t.dm.listDevices()).filter((d) => names.includes(d.name)));

    const tree = await ok('ls', '--tree');
    expect(ourBlocks(tree, names)).to.equal(ourBlocks(dmsetup('ls', '--tree'), names));
    expect(ourBlocks(tree, names)).to.include(`${top} (`);
    expect(ourBlocks(tree, names)).to.include(' ├─');
    expect(ourBlocks(tree, names)).to.include(' │  └─ (');
    const treeJson = await json('ls', '--tree');
    expect(treeJson).to.deep.include({
      name: top,
      uuid: `CLI-${top}`,
      dev: (await t.dm.info(top)).dev,
      children: [{ name: base, dev: baseInfo.dev, children: [{ dev: { major: Number(loopDev.split(':')[0]), minor: Number(loopDev.split(':')[1]) }, devname: basename(loopPath), children: [] }] }],
    });
    expect(await ok('ls', '--tree', '--devnames')).to.include(`\n    └─${basename(loopPath)} (${loopDev})\n`);

    const fields = 'name,major,minor,attr,open,segments,events,uuid';
    expect(await ok('info', '--noheadings', '--separator', ':', '-o', fields, ...names)).to.equal(dmsetup('info', '-c', '--noheadings', '-o', fields, ...names));
    const columns = (await ok('info', base, top, empty)).split('\n');
    expect(columns[0]?.split(/\s+/)).to.deep.equal(['Name', 'Maj', 'Min', 'Stat', 'Open', 'Targ', 'Event', 'UUID']);
    expect(columns.slice(1, 4).map((l) => l.split(/\s+/).filter((w) => w !== ''))).to.deep.equal(
      dmsetup('info', '-c', '--noheadings', '--separator', ' ', base, top, empty).trimEnd().split('\n').map((l) => l.split(/\s+/).filter((w) => w !== '')),
    );
    expect(await json('info', ...names)).to.deep.equal(JSON.parse(JSON.stringify(await Promise.all(names.map((n) => t.dm.info(n))))));
    expect(await json('info', '-u', `CLI-${top}`)).to.deep.equal([JSON.parse(JSON.stringify(await t.dm.info(top)))]);
    expect(await ok('info', '--noheadings', '-o', 'name', '--major', String(baseInfo.dev.major), '--minor', String(baseInfo.dev.minor))).to.equal(`${base}\n`);
    expect(await ok('info', '--noheadings', '-o', 'name', `${baseInfo.dev.major}:${baseInfo.dev.minor}`)).to.equal(`${base}\n`);

    expect(await ok('table', top)).to.equal(dmsetup('table', top).split('\n').map((l) => l.trimEnd()).join('\n'));
    expect(await ok('table', top, base)).to.equal(`${dmsetup('table', top).trimEnd().split('\n').map((l) => `${top}: ${l.trimEnd()}`).join('\n')}\n${base}: ${dmsetup('table', base).trimEnd()}\n`);
    expect(await json('table', top, empty)).to.deep.equal([
      { device: top, rows: JSON.parse(JSON.stringify((await t.dm.table(top))?.rows)) as unknown },
      { device: empty, rows: null },
    ]);

    const depsOf = (name: string): string[] => [...dmsetup('deps', name).matchAll(/\((\d+), (\d+)\)/g)].map((m) => `${m[1]}:${m[2]}`);
    expect(await ok('deps', top)).to.equal(depsOf(top).map((d) => `${d}\n`).join(''));
    expect(await ok('deps', base, empty)).to.equal(`${base}: ${depsOf(base).join(' ')}\n${empty}:\n`);
    expect(await json('deps', top)).to.deep.equal([{ device: top, deps: [baseInfo.dev] }]);
  });

  it('table, deps, status and stats list of every device read each listed device by its name: one removed after the list, its number taken by a new device, is left out, never shown under the old name', async () => {
    // The method itself, put back after: called only through .call with a client as `this`.
    // eslint-disable-next-line @typescript-eslint/unbound-method
    const original = DeviceMapperSync.prototype.listDevices;
    try {
      for (const argv of [['table'], ['deps'], ['status'], ['status', '--raw'], ['stats', 'list']]) {
        const gone = devName('gone');
        const taker = devName('taker');
        const before = await t.dm.create(gone, { table: new Table([{ start: 0, length: 8, type: 'zero', params: '' }]) });
        // Between the command's list and its reads: the listed device goes, and the next device
        // made gets its number (the kernel hands out the lowest free one).
        DeviceMapperSync.prototype.listDevices = function listThenSwap(this: DeviceMapperSync) {
          const listed = original.call(this);
          DeviceMapperSync.prototype.listDevices = original;
          this.remove(gone);
          const made = this.create(taker, { table: new Table([{ start: 0, length: 16, type: 'error', params: '' }]) });
          expect(made.dev, 'the new device took the removed one\'s number').to.deep.equal(before.dev);
          return listed;
        };
        const out = await ok(...argv);
        // eslint-disable-next-line @typescript-eslint/unbound-method
        expect(DeviceMapperSync.prototype.listDevices, 'the list was made').to.equal(original);
        expect(out, argv.join(' ')).to.not.contain(gone).and.not.contain(taker);
        await t.dm.remove(taker);
      }
    } finally {
      DeviceMapperSync.prototype.listDevices = original;
    }
  });

  it('targets and version agree with dmsetup targets and dmsetup version', async () => {
    const ours = (await ok('targets')).trimEnd().split('\n').map((l) => l.split(/\s+/));
    const theirs = dmsetup('targets').trimEnd().split('\n').map((l) => l.split(/\s+/));
    expect(ours).to.deep.equal(theirs);
    expect(await json('targets')).to.deep.equal(await t.dm.listTargets());
    const driver = /Driver version:\s+(\S+)/.exec(dmsetup('version'))?.[1];
    expect(await ok('version')).to.match(new RegExp(`^Driver version: +${driver?.replace(/\./g, '\\.') ?? 'none'}$`, 'm'));
    expect(await json('version')).to.deep.include({ driver: t.dm.driverVersion });
  });

  it('create from --table, FILE and stdin, load, resume, clear, reload, suspend, rename, --setuuid and remove: each change is the kernel\'s, as dmsetup reads it', async () => {
    const disk = await t.fx.loop(8192);
    const [a, b, c] = [devName('a'), devName('b'), devName('c')];
    const file = join(process.env.DEVMAPPER_SCRATCH ?? '/tmp', `${a}.table`);
    writeFileSync(file, `# a comment\n0 1024 linear ${disk.devString} 0\n\n1024 1024 linear ${disk.devString} 4096\n`);
    try {
      await ok('create', a, file, '--readonly');
      expect(dmsetup('table', a)).to.equal(`0 1024 linear ${disk.devString} 0\n1024 1024 linear ${disk.devString} 4096\n`);
      expect(dmsetup('info', '-c', '--noheadings', '-o', 'attr', a).trim()).to.equal('L--r');
      expect(lstatSync(`/dev/mapper/${a}`).isBlockDevice()).to.equal(true);
      // Data written to the disk reads back through the device at the mapped place.
      execFileSync('dd', ['if=/dev/urandom', `of=${disk.path}`, 'bs=512', 'seek=4096', 'count=8', 'oflag=direct', 'status=none']);
      expect(readAt(`/dev/mapper/${a}`, 4096, 1024 * 512).equals(readAt(disk.path, 4096, 4096 * 512))).to.equal(true);

      const created = await json('create', b, '--table', `0 512 zero`);
      expect(created).to.deep.include({ name: b, activeTable: true, suspended: false });

      await ok('load', b, '--table', `0 2048 linear ${disk.devString} 0`);
      expect(dmsetup('table', '--inactive', b)).to.equal(`0 2048 linear ${disk.devString} 0\n`);
      expect(await ok('table', '--inactive', b)).to.equal(dmsetup('table', '--inactive', b));
      expect(await ok('table', b)).to.match(/^0 512 zero\n$/);
      expect(await ok('deps', '--inactive', b)).to.equal(`${disk.devString}\n`);
      expect(await ok('info', '--noheadings', '-o', 'segments', '--inactive', b)).to.equal('1\n');
      expect(dmsetup('info', '-c', '--noheadings', '-o', 'attr', b).trim()).to.equal('LI-w');
      await ok('clear', b);
      expect(dmsetup('info', '-c', '--noheadings', '-o', 'attr', b).trim()).to.equal('L--w');
      expect(dmsetup('table', b)).to.match(/^0 512 zero\s*$/);
      const r = await runCli(['load', b], { stdin: `0 4096 linear ${disk.devString} 0` });
      expect([r.code, r.stderr]).to.deep.equal([0, '']);
      await ok('resume', b);
      expect(dmsetup('table', b)).to.equal(`0 4096 linear ${disk.devString} 0\n`);

      await ok('reload', b, '--table', `0 6144 linear ${disk.devString} 0`);
      expect(dmsetup('table', b)).to.equal(`0 6144 linear ${disk.devString} 0\n`);
      expect(dmsetup('info', '-c', '--noheadings', '-o', 'attr', b).trim()).to.equal('L--w');

      const bInfo = await t.dm.info(b);
      await ok('suspend', '--major', String(bInfo.dev.major), '--minor', String(bInfo.dev.minor), '--noflush');
      expect(dmsetup('info', '-c', '--noheadings', '-o', 'attr', b).trim()).to.equal('L-sw');
      await ok('resume', `${bInfo.dev.major}:${bInfo.dev.minor}`);
      expect((await t.dm.info(b)).suspended).to.equal(false);

      await ok('rename', b, c);
      expect(dmsetup('info', '-c', '--noheadings', '-o', 'name,major,minor', c).trim()).to.equal(`${c}:${bInfo.dev.major}:${bInfo.dev.minor}`);
      expect(lstatSync(`/dev/mapper/${c}`).isBlockDevice()).to.equal(true);
      await ok('rename', c, '--setuuid', `CLI-${c}`);
      expect(dmsetup('info', '-c', '--noheadings', '-o', 'uuid', c).trim()).to.equal(`CLI-${c}`);

      expectUsage(await runCli(['remove', a, '-u', `CLI-${c}`]), /no NAME then/, 'remove NAME -u UUID');
      expect(await json('remove', a)).to.deep.equal({ removed: [a] });
      await ok('remove', '-u', `CLI-${c}`);
      const left = (await t.dm.listDevices()).map((d) => d.name);
      expect(left).to.not.include(a);
      expect(left).to.not.include(c);
      expect(() => lstatSync(`/dev/mapper/${a}`)).to.throw();
    } finally {
      rmSync(file, { force: true });
    }
  });

  it('usage errors exit 2 with the verb\'s usage and leave the kernel as it was', async () => {
    const { base, top } = await stack();
    const before = await state(t);
    const cases: [string[], RegExp][] = [
      [['create', devName('bad'), '--table', '0 10 linear'], /^devmapper: create: bad table from --table: /],
      [['create', devName('bad'), '--table', '0 10 zero\n20 10 zero'], /without gaps/],
      [['create', devName('bad'), '--table', '0 10 zero', '/no/such/file'], /either with --table or as FILE/],
      [['create', devName('bad'), '--notable', '--table', '0 10 zero'], /--notable takes no table/],
      [['create', 'bad/name', '--table', '0 10 zero'], /^devmapper: create: /],
      [['create', devName('bad'), '/no/such/file'], /cannot read the table file \/no\/such\/file: ENOENT/],
      [['reload', top, '--table', '0 2048 linear 7:0 x'], /bad table/],
      [['remove', base, '--froce'], /Unknown option '--froce'/],
      [['remove'], /no device given/],
      [['suspend', '--major', '254'], /--major and --minor go together/],
      [['suspend', '--major', '0x10', '--minor', '1'], /--major expects a whole number/],
      [['message', top, 'first', 'hello'], /SECTOR expects a whole number/],
      [['message', top, '0'], /expects 2 operands|expects NAME SECTOR MESSAGE/],
      [['rename', top], /expects 1 to 2 operands|expects NAME NEW_NAME/],
      [['info', '-o', 'name,colour'], /unknown field "colour"/],
      [['table', top, '-u', 'X'], /no NAME then/],
      [['remove-all', '--prefix', ''], /empty prefix/],
      // DM_REMOVE_ALL takes every device of the machine: never without saying --all.
      [['remove-all'], /give --prefix P, --uuid-prefix P, or --all/],
      [['remove_all', '--deferred'], /give --prefix P, --uuid-prefix P, or --all/],
      [['remove-all', '--all', '--prefix', top], /--all and a prefix exclude each other/],
      // A name that reads as major:minor would later name another device by number.
      [['create', '254:0', '--table', '0 10 zero'], /reads as a device number/],
      [['rename', top, '254:7'], /reads as a device number/],
      [['clear', top, base], /expects 0 to 1 operands/],
    ];
    for (const [argv, message] of cases) expectUsage(await runCli(argv), message, argv.join(' '));
    expect(await state(t)).to.equal(before);
  });

  it('kernel errors exit 1 naming the errno and the device, a missing device exits 3, and nothing else changes', async () => {
    const { base, top, baseInfo } = await stack();
    const before = await state(t);
    let r = await runCli(['remove', base]);
    expect(r).to.deep.equal({ code: 1, stdout: '', stderr: `devmapper: remove ${base}: EBUSY (device or resource busy)\n` });
    r = await runCli(['create', top, '--table', '0 8 zero']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(new RegExp(`^devmapper: create ${top}: EBUSY \\(`));
    r = await runCli(['message', top, '0', 'no-such-message']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(new RegExp(`^devmapper: message ${top}: EINVAL \\(invalid argument`));
    // The kernel refuses the new table (past the end of its disk): the device stays live on its old one.
    r = await runCli(['reload', top, '--table', `0 2048 linear ${baseInfo.dev.major}:${baseInfo.dev.minor} 100000`]);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(new RegExp(`^devmapper: reload ${top}: EINVAL \\(`));
    // A table over a device that does not exist: the create is undone; not a "no such device" of the name.
    const doomed = devName('doomed');
    r = await runCli(['create', doomed, '--table', '0 8 linear 4000:0 0']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(new RegExp(`^devmapper: create ${doomed}: E[A-Z]+ \\(`));
    const missing = devName('missing');
    for (const verb of ['info', 'table', 'deps', 'remove', 'suspend', 'resume', 'clear']) {
      r = await runCli([verb, missing]);
      expect(r, verb).to.deep.equal({ code: 3, stdout: '', stderr: `devmapper: ${verb} ${missing}: ENXIO (no such device or address)\n` });
    }
    r = await runCli(['info', '-u', `NO-${missing}`]);
    expect(r.code).to.equal(3);
    expect(r.stderr).to.match(/ENXIO/);
    expect(await state(t)).to.equal(before);
  });

  it('remove --deferred of an open device leaves it until its last close; remove-all --prefix removes only those names', async () => {
    const { base, top, empty } = await stack();
    const other = devName('other');
    await ok('create', other, '--table', '0 8 zero');
    const fd = openSync(`/dev/mapper/${other}`, 'r');
    try {
      expectUsage(await runCli(['remove', other, '--deferred', 'extra', '--retry=1']), /--retry/, 'bad --retry');
      await ok('remove', other, '--deferred');
      expect(dmsetup('info', '-c', '--noheadings', '-o', 'name', other).trim()).to.equal(other);
      expect((await t.dm.info(other)).deferredRemove).to.equal(true);
    } finally {
      closeSync(fd);
    }
    expect((await t.dm.listDevices()).map((d) => d.name)).to.not.include(other);

    // Each full name is a prefix of that device's name only.
    const kept = devName('kept');
    await ok('create', kept, '--table', '0 8 zero');
    const removed = await json('remove-all', '--prefix', top);
    expect(removed).to.deep.equal({ removed: [top] });
    expect(await ok('remove_all', '--prefix', empty)).to.equal(`${empty}\n`);
    const left = (await t.dm.listDevices()).map((d) => d.name);
    expect(left).to.include.members([base, kept]);
    expect(left).to.not.include.members([top, empty]);
  });

  it('remove, suspend and resume of several devices: the first failure stops, after a warning that names the devices done before it and those not tried', async () => {
    const [a, b, c, d] = [devName('each-a'), devName('each-b'), devName('each-c'), devName('each-d')];
    for (const name of [a, b, c, d]) await ok('create', name, '--table', '0 8 zero');
    const fd = openSync(`/dev/mapper/${b}`, 'r');
    try {
      const r = await runCli(['remove', a, b, c, d]);
      expect(r).to.deep.equal({ code: 1, stdout: '', stderr: `devmapper: remove: removed ${a} before ${b} failed; not tried: ${c}, ${d}\ndevmapper: remove ${b}: EBUSY (device or resource busy)\n` });
      // --force: still held, the remove fails, but the device now fails all I/O.
      expect(await runCli(['remove', '-f', b])).to.deep.equal({ code: 1, stdout: '', stderr: `devmapper: remove ${b}: EBUSY (device or resource busy; its table is now an error table: all its I/O fails)\n` });
      expect(dmsetup('table', b).trimEnd()).to.equal('0 8 error');
    } finally {
      closeSync(fd);
    }
    let names = (await t.dm.listDevices()).map((x) => x.name);
    expect(names).to.not.include(a);
    expect(names).to.include.members([b, c, d]);

    const missing = devName('each-missing');
    let r = await runCli(['suspend', c, missing, d]);
    expect(r).to.deep.equal({ code: 3, stdout: '', stderr: `devmapper: suspend: suspended ${c} before ${missing} failed; not tried: ${d}\ndevmapper: suspend ${missing}: ENXIO (no such device or address)\n` });
    expect((await t.dm.info(c)).suspended).to.equal(true);
    expect((await t.dm.info(d)).suspended).to.equal(false);
    r = await runCli(['resume', missing, c]);
    expect(r).to.deep.equal({ code: 3, stdout: '', stderr: `devmapper: resume: none resumed before ${missing} failed; not tried: ${c}\ndevmapper: resume ${missing}: ENXIO (no such device or address)\n` });
    expect((await t.dm.info(c)).suspended).to.equal(true);
    // The last one failing: nothing is left untried.
    r = await runCli(['resume', c, missing]);
    expect(r.stderr).to.equal(`devmapper: resume: resumed ${c} before ${missing} failed; no other was named\ndevmapper: resume ${missing}: ENXIO (no such device or address)\n`);
    expect((await t.dm.info(c)).suspended).to.equal(false);
    // One device named: its error alone, as before.
    expect((await runCli(['remove', missing])).stderr).to.equal(`devmapper: remove ${missing}: ENXIO (no such device or address)\n`);
    expect(await json('remove', b, c, d)).to.deep.equal({ removed: [b, c, d] });
    names = (await t.dm.listDevices()).map((x) => x.name);
    expect(names).to.not.include.members([b, c, d]);
  });

  it('table hides a crypt key unless --showkeys, as dmsetup does, in text and JSON', async () => {
    const disk = await t.fx.loop(2048);
    const name = devName('crypt');
    await ok('create', name, '--table', `0 2048 crypt aes-xts-plain64 ${KEY} 0 ${disk.devString} 0`);
    const masked = `0 2048 crypt aes-xts-plain64 ${'0'.repeat(KEY.length)} 0 ${disk.devString} 0\n`;
    expect(await ok('table', name)).to.equal(masked);
    expect(dmsetup('table', name)).to.equal(masked);
    expect(await ok('table', name, '--showkeys')).to.equal(dmsetup('table', '--showkeys', name));
    const hidden = JSON.stringify(await json('table', name));
    expect(hidden).to.not.include(KEY);
    expect(hidden).to.include('0'.repeat(KEY.length));
    expect(JSON.stringify(await json('table', name, '--showkeys'))).to.include(KEY);
    expect(Table.parse(dmsetup('table', '--showkeys', name)).toString()).to.include(KEY);
  });

  it('table hides integrity\'s algorithm keys unless --showkeys, as dmsetup does, in text and JSON', async () => {
    const disk = await t.fx.loop(16384);
    const name = devName('integrity-keyed');
    const key = 'b2'.repeat(32);
    await ok('create', name, '--table', `0 8192 integrity ${disk.devString} 0 32 J 2 internal_hash:hmac(sha256):${key} journal_mac:hmac(sha256):${key}`);
    const masked = await ok('table', name);
    expect(masked).to.not.include(key);
    expect(masked).to.equal(dmsetup('table', name));
    expect(masked).to.include(`internal_hash:hmac(sha256):${'0'.repeat(key.length)}`);
    expect(await ok('table', name, '--showkeys')).to.equal(dmsetup('table', '--showkeys', name));
    expect(await ok('table', name, '--showkeys')).to.include(key);
    const hidden = JSON.stringify(await json('table', name));
    expect(hidden).to.not.include(key);
    expect(JSON.stringify(await json('table', name, '--showkeys'))).to.include(key);
  });

  it('message prints the target\'s answer (as dmsetup message does); mknodes makes a missing /dev/mapper node', async () => {
    const { top } = await stack();
    expect(await ok('message', top, '0', '@stats_create', '-', '/1')).to.equal('0\n');
    const listed = await ok('message', top, '0', '@stats_list');
    expect(listed).to.equal(dmsetup('message', top, '0', '@stats_list'));
    expect(listed).to.match(/^0: 0\+3072 3072/);
    expect(await json('message', top, '0', '@stats_delete', '0')).to.deep.equal({ output: null });

    const node = `/dev/mapper/${top}`;
    rmSync(node);
    expect(await ok('mknodes')).to.match(new RegExp(`^created ${top}$`, 'm'));
    const st = lstatSync(node);
    expect(st.isBlockDevice()).to.equal(true);
    expect(decodeRdev(st.rdev)).to.deep.equal((await t.dm.info(top)).dev);
    expect(await json('mknodes')).to.deep.include({ created: [], fixed: [] });

    // --udev off: the library leaves /dev/mapper alone, until mknodes.
    const quiet = devName('quiet');
    await ok('--udev', 'off', 'create', quiet, '--table', '0 8 zero');
    expect(existsSync(`/dev/mapper/${quiet}`)).to.equal(false);
    expect(await json('mknodes')).to.deep.include({ created: [quiet] });
    expect(lstatSync(`/dev/mapper/${quiet}`).isBlockDevice()).to.equal(true);
  });

  it('the bin, spawned with pipes: reads a table on stdin, prints no colour, and exits with the codes main returns', async () => {
    const disk = await t.fx.loop(2048);
    const name = devName('bin');
    const bin = join(root, 'dist', 'cli', 'main.js');
    const created = spawnSync(process.execPath, [bin, 'create', name], { input: `0 2048 linear ${disk.devString} 0\n`, encoding: 'utf8' });
    expect([created.status, created.stderr, created.stdout]).to.deep.equal([0, '', '']);
    expect(dmsetup('table', name)).to.equal(`0 2048 linear ${disk.devString} 0\n`);
    const shown = spawnSync('sh', ['-c', `"$0" "$1" info "$2"; echo "rc=$?"; "$0" "$1" --json info "$3"; echo "rc=$?"`, process.execPath, bin, name, devName('missing')], { encoding: 'utf8', env: { ...process.env, TERM: 'xterm' } });
    const [table, rest] = shown.stdout.split('rc=0\n');
    expect(table).to.equal((await runCli(['info', name])).stdout);
    expect(table).to.not.include('\u001b');
    expect(rest).to.equal('rc=3\n');
    expect(shown.stderr).to.match(/^devmapper: info dmt-missing-\S+: ENXIO \(no such device or address\)\n$/);
    const tty = await runCli(['info', name], { tty: true, env: { TERM: 'xterm' } });
    expect(tty.stdout).to.include('\u001b[1m');
  });
});
