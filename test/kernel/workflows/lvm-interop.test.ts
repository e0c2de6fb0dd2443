// Interop with lvm2: the device-mapper devices lvm makes (a thin pool with a thin LV and a thin
// snapshot, a linear LV with a classic snapshot, a striped LV and a raid1 LV) are listed, read,
// parsed and status-reported by the library exactly as dmsetup and lvs report them.
//
// How lvm runs in the sandbox (found by trying; lvm 2.03):
// - it needs a real udev for its /dev/<vg>/<lv> links: the suite starts systemd-udevd, which
//   reads dmsetup's rules and lvm's 56-lvm.rules (Debian's name for 11-dm-lvm.rules);
// - lvm's 69-lvm.rules runs `pvscan --cache` and `vgchange -aay` on every new PV with the
//   host's /etc/lvm: it races the test's own commands and writes its archive to the host's
//   /etc/lvm. startUdev (udev-helpers.ts) masks it with an empty rule of the same name in
//   /run/udev/rules.d (the sandbox's own tmpfs);
// - the test's lvm commands read an lvm.conf of their own (LVM_SYSTEM_DIR in scratch space):
//   a filter that accepts the test's two loop devices only, no devices file, no metadata
//   backup or archive (nothing written under /etc), no dmeventd monitoring and no lvmpolld
//   (neither runs here), udev_sync and udev_rules on (activation waits on udev's cookies).
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeviceMapper, Table, formatDev, parseStatus, targets, type DevNumber, type DeviceInfo, type Target, type TableRow, type TargetModule } from '../../../ts/index';
import { linearModule } from '../../../ts/targets/linear';
import { raidModule } from '../../../ts/targets/raid';
import { snapshotModule } from '../../../ts/targets/snapshot';
import { snapshotOriginModule } from '../../../ts/targets/snapshot-origin';
import { stripedModule } from '../../../ts/targets/striped';
import { thinModule } from '../../../ts/targets/thin';
import { thinPoolModule } from '../../../ts/targets/thin-pool';
import { Fixture, dmsetup, rejection, scratchDir, timeoutAtLeast } from '../helpers';
import { readAt, writeAt } from '../targets/thin-fixture';
import { settleUdev, startUdev, stopUdev, udevCookies } from '../udev-helpers';

/** The VG: its name starts with the tests' prefix, so its dm names (`dmt--lvm--…`) do too. */
const VG = `dmt-lvm-${process.pid}`;
/** lvm's dm name of an LV (and layer): hyphens in the VG and LV names doubled. */
const dmName = (lv: string, layer?: string): string => [VG, lv, layer].filter((p) => p !== undefined).map((p) => p.replace(/-/g, '--')).join('-');

/** Every device lvm makes here: the LV lvm reports it under, its layer (in its name and uuid, or in its uuid only), its target type. */
const DEVICES: readonly { lv: string; layer?: string; uuidLayer?: string; type: string }[] = [
  // A thin pool's hidden legs carry their role in their uuids too (raid legs do not).
  { lv: 'pool_tmeta', uuidLayer: 'tmeta', type: 'linear' },
  { lv: 'pool_tdata', uuidLayer: 'tdata', type: 'linear' },
  { lv: 'pool', layer: 'tpool', type: 'thin-pool' },
  // lvm's visible pool LV: a linear over the -tpool layer, read-only, its uuid ending in -pool.
  { lv: 'pool', uuidLayer: 'pool', type: 'linear' },
  { lv: 'thin', type: 'thin' },
  { lv: 'thinsnap', type: 'thin' },
  { lv: 'lin', type: 'snapshot-origin' },
  { lv: 'lin', layer: 'real', type: 'linear' },
  { lv: 'linsnap', type: 'snapshot' },
  { lv: 'linsnap', layer: 'cow', type: 'linear' },
  { lv: 'str', type: 'striped' },
  { lv: 'r1', type: 'raid' },
  { lv: 'r1_rmeta_0', type: 'linear' },
  { lv: 'r1_rimage_0', type: 'linear' },
  { lv: 'r1_rmeta_1', type: 'linear' },
  { lv: 'r1_rimage_1', type: 'linear' },
];
const NAMES = DEVICES.map((d) => dmName(d.lv, d.layer));


/** What each row of lvm's `lvs --reportformat json` gives, as strings. */
type LvsRow = Readonly<Record<string, string>>;

function stringRecord(value: unknown, what: string): LvsRow {
  if (typeof value !== 'object' || value === null) throw new Error(`${what} is not an object`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw new Error(`${what}.${k} is not a string`);
    out[k] = v;
  }
  return out;
}

/**
 * The row's target typed by `module`: the client's target must equal what the module's own
 * parser makes of its params (a target the client had kept raw would not).
 */
function typed<T extends Target>(row: TableRow | undefined, module: TargetModule<T>): T {
  expect(row?.type).to.equal(module.type);
  const parsed = module.parse(row?.params ?? '');
  expect(row?.target).to.deep.equal(parsed);
  expect(Object.keys(parsed).length, `${module.type} is typed, not raw`).to.be.greaterThan(2);
  return parsed;
}

/** The devices a typed row names, in its table's order. */
function namedDevices(row: TableRow | undefined): string[] {
  switch (row?.type) {
    case 'linear':
      return [typed(row, linearModule).device];
    case 'thin-pool': {
      const t = typed(row, thinPoolModule);
      return [t.metadataDevice, t.dataDevice];
    }
    case 'thin': {
      const t = typed(row, thinModule);
      if ('failed' in t) throw new Error(`thin reads as failed: ${t.params}`);
      return t.externalOriginDevice === null ? [t.poolDevice] : [t.poolDevice, t.externalOriginDevice];
    }
    case 'snapshot-origin':
      return [typed(row, snapshotOriginModule).origin];
    case 'snapshot': {
      const t = typed(row, snapshotModule);
      return [t.origin, t.cowDevice];
    }
    case 'striped':
      return typed(row, stripedModule).stripes.map((s) => s.device);
    case 'raid':
      return typed(row, raidModule).devices.flatMap((d) => [d.metadata, d.data]).filter((d): d is string => d !== null);
    default:
      throw new Error(`no typed target expected of type ${String(row?.type)}`);
  }
}

describe('lvm2 interop: what lvm makes, the library reads as dmsetup and lvs do', function () {
  timeoutAtLeast(this, 240_000);
  let dm: DeviceMapper | undefined;
  let fx: Fixture | undefined;
  let confDir = '';
  let udevStarted = false;
  let loops: string[] = [];
  let loopDevs: DevNumber[] = [];
  /** What was written through lvm's LVs before their snapshots were taken. */
  const thinData = randomBytes(64 * 1024);
  const linData = randomBytes(64 * 1024);

  const client = (): DeviceMapper => {
    if (dm === undefined) throw new Error('no client: the suite setup failed');
    return dm;
  };

  /** Runs an lvm command with the test's lvm.conf; its stdout, or throws with its stderr. */
  function lvm(...args: string[]): string {
    // LVM_SUPPRESS_FD_WARNINGS: node's children inherit fds lvm would warn about on stderr.
    return execFileSync('lvm', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LVM_SYSTEM_DIR: confDir, LVM_SUPPRESS_FD_WARNINGS: '1' } });
  }

  /** `lvs -a` of the VG, one row per LV (by name, without lvm's brackets for hidden LVs). */
  function lvs(fields: string[]): Map<string, LvsRow> {
    const out = lvm('lvs', '-a', '--reportformat', 'json', '--units', 's', '--nosuffix', '-o', ['lv_name', ...fields].join(','), VG);
    const report: unknown = JSON.parse(out);
    const reports: unknown = typeof report === 'object' && report !== null ? Reflect.get(report, 'report') : undefined;
    const first: unknown = Array.isArray(reports) && reports.length === 1 ? reports[0] : undefined;
    const rows: unknown = typeof first === 'object' && first !== null ? Reflect.get(first, 'lv') : undefined;
    if (!Array.isArray(rows)) throw new Error(`lvs printed no lv report: ${out}`);
    const byName = new Map<string, LvsRow>();
    for (const [i, r] of rows.entries()) {
      const row = stringRecord(r, `lv[${i}]`);
      byName.set((row.lv_name ?? '').replace(/^\[(.*)\]$/, '$1'), row);
    }
    return byName;
  }

  /** `dmsetup info -c` of one device: name, uuid, major, minor, attr, open, segments, events. */
  function dmsetupInfo(name: string): string[] {
    return dmsetup('info', '-c', '--noheadings', '--separator', '|', '-o', 'name,uuid,major,minor,attr,open,segments,events', name).trim().split('|');
  }

  before(async function () {
    if (!['/sbin/lvm', '/usr/sbin/lvm'].some((p) => existsSync(p))) throw new Error('lvm is not installed (Debian package lvm2): the lvm2 interop tests need it');
    for (const rule of ['/lib/udev/rules.d/56-lvm.rules', '/lib/udev/rules.d/69-lvm.rules']) {
      if (!existsSync(rule)) throw new Error(`lvm's udev rule ${rule} is not installed (Debian package lvm2)`);
    }
    // startUdev masks 69-lvm.rules (see udev-helpers.ts).
    startUdev();
    udevStarted = true;
    dm = await DeviceMapper.open();
    fx = new Fixture(dm);
    const a = await fx.loop(64 * 2048);
    const b = await fx.loop(64 * 2048);
    loops = [a.path, b.path];
    loopDevs = [a.dev, b.dev];
    confDir = scratchDir();
    writeFileSync(
      join(confDir, 'lvm.conf'),
      [
        `devices { filter = [ ${loops.map((p) => `"a|^${p}$|"`).join(', ')}, "r|.*|" ] use_devicesfile = 0 obtain_device_list_from_udev = 0 }`,
        'activation { monitoring = 0 udev_sync = 1 udev_rules = 1 }',
        'global { use_lvmpolld = 0 event_activation = 0 }',
        'backup { backup = 0 archive = 0 }',
        '',
      ].join('\n'),
    );
    lvm('pvcreate', '-y', ...loops);
    // 1 MiB extents keep every LV (and raid1's metadata legs) small.
    lvm('vgcreate', '-y', '-s', '1m', VG, ...loops);
    lvm('lvcreate', '-y', '--type', 'thin-pool', '-L', '8m', '--poolmetadatasize', '2m', '-n', 'pool', VG);
    lvm('lvcreate', '-y', '-V', '16m', '--thinpool', 'pool', '-n', 'thin', VG);
    writeAt(`/dev/${VG}/thin`, thinData, 0);
    // A thin snapshot is made with lvm's activation skip flag set: -kn activates it.
    lvm('lvcreate', '-y', '-s', '-kn', '-n', 'thinsnap', `${VG}/thin`);
    lvm('lvcreate', '-y', '-L', '4m', '-n', 'lin', VG);
    writeAt(`/dev/${VG}/lin`, linData, 0);
    lvm('lvcreate', '-y', '-s', '-L', '2m', '-n', 'linsnap', `${VG}/lin`);
    lvm('lvcreate', '-y', '-i', '2', '-I', '64k', '-L', '4m', '-n', 'str', VG);
    lvm('lvcreate', '-y', '--type', 'raid1', '-m', '1', '-L', '4m', '-n', 'r1', VG);
    settleUdev();
    // raid1's initial resync: status is read below only once the kernel reports it done.
    const r1 = dmName('r1');
    for (const until = Date.now() + 60_000; ; ) {
      const info = await dm.info(r1);
      const [row] = await dm.status(r1);
      if (row?.status.type === 'raid' && row.status.known && row.status.syncAction === 'idle' && row.status.syncRatio.used === row.status.syncRatio.total) break;
      if (Date.now() > until) throw new Error(`raid1 never finished its resync: ${row?.status.raw ?? 'no status'}`);
      await dm.waitEvent(r1, info.eventNr, { signal: AbortSignal.timeout(Math.max(1, until - Date.now())) });
    }
  });

  after(async function () {
    const errors: unknown[] = [];
    const attempt = (what: () => void): void => {
      try {
        what();
      } catch (e) {
        errors.push(e);
      }
    };
    if (confDir !== '') {
      // lvm's own teardown first; whatever it leaves, the Fixture removes by the tests' prefix.
      attempt(() => {
        if (lvm('vgs', '--noheadings', '-o', 'vg_name').split('\n').some((l) => l.trim() === VG)) lvm('vgremove', '-y', '-ff', VG);
      });
      if (loops.length > 0) attempt(() => lvm('pvremove', '-y', '-ff', ...loops));
    }
    try {
      await fx?.cleanup();
    } catch (e) {
      errors.push(e);
    }
    if (dm !== undefined && !dm.closed) await dm.close();
    if (confDir !== '') rmSync(confDir, { recursive: true, force: true });
    if (udevStarted) attempt(stopUdev);
    if (errors.length > 0) throw errors[0];
  });

  it('lists every device lvm made, with the names, LVM- uuids and device numbers dmsetup and lvs give', async () => {
    const listed = (await client().listDevices()).filter((d) => d.name.startsWith(dmName('')));
    expect(listed.map((d) => d.name).sort()).to.deep.equal([...NAMES].sort());
    const ls = new Map(
      dmsetup('ls')
        .split('\n')
        .map((l) => /^(\S+)\s+\((\d+):(\d+)\)$/.exec(l.trim()))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => [m[1], `${m[2]}:${m[3]}`]),
    );
    const lv = lvs(['lv_uuid', 'vg_uuid', 'lv_kernel_major', 'lv_kernel_minor']);
    for (const d of listed) {
      const [name, uuid, major, minor] = dmsetupInfo(d.name);
      expect(name).to.equal(d.name);
      expect(d.uuid, d.name).to.equal(uuid);
      expect(d.uuid, d.name).to.match(/^LVM-[A-Za-z0-9]{64}(-[a-z]+)?$/);
      expect(`${d.dev.major}:${d.dev.minor}`).to.equal(`${major}:${minor}`);
      expect(ls.get(d.name)).to.equal(formatDev(d.dev));
      // lvm's dm uuid: LVM-, the VG's and the LV's uuids without their hyphens, and the layer.
      const spec = DEVICES[NAMES.indexOf(d.name)];
      const row = lv.get(spec?.lv ?? '');
      expect(row, `lvs row of ${d.name}`).to.not.equal(undefined);
      const suffix = spec?.layer ?? spec?.uuidLayer;
      const layer = suffix === undefined ? '' : `-${suffix}`;
      expect(d.uuid).to.equal(`LVM-${(row?.vg_uuid ?? '').replace(/-/g, '')}${(row?.lv_uuid ?? '').replace(/-/g, '')}${layer}`);
      if (spec?.layer === undefined) expect(`${row?.lv_kernel_major}:${row?.lv_kernel_minor}`).to.equal(formatDev(d.dev));
    }
    expect(udevCookies(), 'udev completed every cookie of lvm and the library').to.deep.equal([]);
  });

  it("reports each device's info as dmsetup info does (open count, rows, event number, read-only pool LV)", async () => {
    for (const name of NAMES) {
      const info: DeviceInfo = await client().info(name);
      const [, uuid, major, minor, attr, open, segments, events] = dmsetupInfo(name);
      const ours = `${info.activeTable ? 'L' : '-'}${info.inactiveTable ? 'I' : '-'}${info.suspended ? 's' : '-'}${info.readOnly ? 'r' : 'w'}`;
      expect([info.name, info.uuid, String(info.dev.major), String(info.dev.minor), ours, String(info.openCount), String(info.targetCount), String(info.eventNr)]).to.deep.equal([
        name,
        uuid,
        major,
        minor,
        attr,
        open,
        segments,
        events,
      ]);
      expect(realpathSync(`/dev/mapper/${name}`)).to.equal(info.path);
    }
    expect((await client().info(dmName('pool'))).readOnly, "lvm's visible pool LV is read-only").to.equal(true);
    for (const lv of ['thin', 'thinsnap', 'lin', 'linsnap', 'str', 'r1']) expect(realpathSync(`/dev/${VG}/${lv}`)).to.equal((await client().info(dmName(lv))).path);
  });

  /** The device number of one of lvm's devices, as tables print it. */
  const devOf = async (name: string): Promise<string> => formatDev((await client().info(name)).dev);

  /** The row of one of lvm's one-row tables. */
  const rowOf = async (name: string): Promise<TableRow | undefined> => {
    const table = await client().table(name);
    expect(table?.rows.length, `${name} has one row`).to.equal(1);
    return table?.rows[0];
  };

  it('reads every table typed, as the text dmsetup table prints, and that text parses to the same table', async () => {
    for (const [i, name] of NAMES.entries()) {
      const table = await client().table(name);
      const text = dmsetup('table', name);
      // The kernel ends a thin-pool row with a space (its feature list): lines compared without it.
      expect(table?.toString(), name).to.equal(text.split('\n').map((l) => l.trimEnd()).filter((l) => l !== '').join('\n'));
      const parsed = Table.parse(text);
      expect(table?.equals(parsed), name).to.equal(true);
      expect(table?.rows.map((r) => r.target)).to.deep.equal(parsed.rows.map((r) => r.target));
      expect(table?.rows.map((r) => r.type), name).to.deep.equal([DEVICES[i]?.type]);
      namedDevices(table?.rows[0]);
    }
  });

  it("the typed tables name the stack lvm reports: pool legs, thin ids, snapshot layers, stripes and raid legs", async () => {
    const lv = lvs(['thin_id', 'transaction_id', 'chunk_size', 'stripes', 'stripe_size', 'region_size', 'lv_size']);
    const loopNames = loopDevs.map(formatDev);

    const pool = typed(await rowOf(dmName('pool', 'tpool')), thinPoolModule);
    expect(pool.metadataDevice).to.equal(await devOf(dmName('pool_tmeta')));
    expect(pool.dataDevice).to.equal(await devOf(dmName('pool_tdata')));
    expect(String(pool.blockSize)).to.equal(lv.get('pool')?.chunk_size);
    const visible = typed(await rowOf(dmName('pool')), linearModule);
    expect([visible.device, visible.offset]).to.deep.equal([await devOf(dmName('pool', 'tpool')), 0]);

    const ids: number[] = [];
    for (const name of ['thin', 'thinsnap']) {
      const thin = typed(await rowOf(dmName(name)), thinModule);
      if ('failed' in thin) throw new Error(`${name} reads as failed`);
      expect(thin.poolDevice).to.equal(await devOf(dmName('pool', 'tpool')));
      expect(String(thin.deviceId), `${name}'s thin_id`).to.equal(lv.get(name)?.thin_id);
      ids.push(thin.deviceId);
    }
    expect(ids[0]).to.not.equal(ids[1]);

    const real = await devOf(dmName('lin', 'real'));
    expect(typed(await rowOf(dmName('lin')), snapshotOriginModule).origin).to.equal(real);
    const snap = typed(await rowOf(dmName('linsnap')), snapshotModule);
    expect([snap.origin, snap.cowDevice, snap.persistent]).to.deep.equal([real, await devOf(dmName('linsnap', 'cow')), 'P']);
    expect(String(snap.chunkSize)).to.equal(lv.get('linsnap')?.chunk_size);

    const str = typed(await rowOf(dmName('str')), stripedModule);
    expect(String(str.stripes.length)).to.equal(lv.get('str')?.stripes);
    expect(String(str.chunkSize)).to.equal(lv.get('str')?.stripe_size);
    expect(str.stripes.map((s) => s.device).sort()).to.deep.equal([...loopNames].sort());

    const r1 = typed(await rowOf(dmName('r1')), raidModule);
    expect(r1.raidType).to.equal('raid1');
    expect(String(r1.regionSize)).to.equal(lv.get('r1')?.region_size);
    const legs: { metadata: string; data: string }[] = [];
    for (const i of [0, 1]) legs.push({ metadata: await devOf(dmName(`r1_rmeta_${i}`)), data: await devOf(dmName(`r1_rimage_${i}`)) });
    expect(r1.devices).to.deep.equal(legs);

    for (const name of ['pool_tmeta', 'pool_tdata', 'lin-real', 'linsnap-cow', 'r1_rmeta_0', 'r1_rimage_0', 'r1_rmeta_1', 'r1_rimage_1']) {
      const [lvName, layer] = name.split('-');
      const leg = typed(await rowOf(dmName(lvName ?? '', layer)), linearModule);
      expect(loopNames, `${name} lies on a PV`).to.include(leg.device);
    }
    expect(String((await rowOf(dmName('thin')))?.length)).to.equal(lv.get('thin')?.lv_size);
  });

  it("gives each device's deps as dmsetup deps does, and they are the devices its typed table names", async () => {
    for (const name of NAMES) {
      const ours = (await client().deps(name)).map(formatDev);
      const theirs = [...dmsetup('deps', '-o', 'devno', name).matchAll(/\((\d+), (\d+)\)/g)].map((m) => `${m[1]}:${m[2]}`);
      expect(ours, name).to.deep.equal(theirs);
      expect([...ours].sort(), name).to.deep.equal([...new Set(namedDevices(await rowOf(name)))].sort());
    }
  });

  it('status-reports every device typed, equal to what dmsetup status prints, and lvs agrees on the pool and raid1', async () => {
    for (const name of NAMES) {
      const rows = await client().status(name);
      expect(rows.map((r) => r.status.known), `${name} status is typed`).to.deep.equal([true]);
      expect(rows, name).to.deep.equal(parseStatus(dmsetup('status', name)));
    }
    const lv = lvs(['transaction_id', 'sync_percent', 'raid_mismatch_count']);
    const [pool] = await client().status(dmName('pool', 'tpool'));
    if (pool?.status.type !== 'thin-pool' || !pool.status.known || pool.status.failed !== false) throw new Error(`pool status: ${pool?.status.raw ?? 'none'}`);
    expect(String(pool.status.transactionId)).to.equal(lv.get('pool')?.transaction_id);
    expect([pool.status.mode, pool.status.needsCheck]).to.deep.equal(['rw', false]);
    const [r1] = await client().status(dmName('r1'));
    if (r1?.status.type !== 'raid' || !r1.status.known) throw new Error(`raid1 status: ${r1?.status.raw ?? 'none'}`);
    expect(r1.status.devices).to.deep.equal(['in-sync', 'in-sync']);
    expect(lv.get('r1')?.sync_percent).to.equal('100.00');
    expect(String(r1.status.mismatchCount)).to.equal(lv.get('r1')?.raid_mismatch_count);
  });

  it("data written through lvm's LVs reads back through /dev/dm-N and the PVs, and lvm's snapshots keep what their origins held", async () => {
    const thin = await client().info(dmName('thin'));
    const thinsnap = await client().info(dmName('thinsnap'));
    expect(readAt(thinsnap.path, thinData.length, 0).equals(thinData), 'the thin snapshot holds what thin held').to.equal(true);
    const later = randomBytes(64 * 1024);
    writeAt(thin.path, later, 0);
    expect(readAt(`/dev/${VG}/thin`, later.length, 0).equals(later)).to.equal(true);
    expect(readAt(thinsnap.path, thinData.length, 0).equals(thinData), 'the thin snapshot kept its copy').to.equal(true);
    const [ts] = await client().status(thin.name);
    if (ts?.status.type !== 'thin' || !ts.status.known || ts.status.failed !== false) throw new Error(`thin status: ${ts?.status.raw ?? 'none'}`);
    expect(ts.status.mappedSectors).to.be.at.least(later.length / 512);
    expect(dmsetup('status', thin.name).trimEnd()).to.equal(`0 ${ts.length} thin ${ts.status.raw}`.trimEnd());

    const snapName = dmName('linsnap');
    const [before] = await client().status(snapName);
    const linLater = randomBytes(64 * 1024);
    writeAt((await client().info(dmName('lin'))).path, linLater, 0);
    expect(readAt((await client().info(snapName)).path, linData.length, 0).equals(linData), 'the classic snapshot kept the origin\'s old data').to.equal(true);
    expect(readAt((await client().info(dmName('lin', 'real'))).path, linLater.length, 0).equals(linLater)).to.equal(true);
    const [after] = await client().status(snapName);
    if (before?.status.type !== 'snapshot' || !before.status.known || before.status.state !== 'valid' || after?.status.type !== 'snapshot' || !after.status.known || after.status.state !== 'valid') throw new Error('snapshot status is not valid');
    expect(after.status.usage.used).to.be.greaterThan(before.status.usage.used);
    expect(after.status.usage.total).to.equal(before.status.usage.total);

    // striped: 64 KiB chunks, the first on the first stripe, the second on the second.
    const str = typed(await rowOf(dmName('str')), stripedModule);
    const chunk = str.chunkSize * 512;
    const stripedData = randomBytes(2 * chunk);
    writeAt((await client().info(dmName('str'))).path, stripedData, 0);
    for (const [i, stripe] of str.stripes.entries()) {
      const loop = loops[loopDevs.map(formatDev).indexOf(stripe.device)] ?? '';
      expect(readAt(loop, chunk, stripe.offset * 512).equals(stripedData.subarray(i * chunk, (i + 1) * chunk)), `chunk ${i} on stripe ${stripe.device}`).to.equal(true);
    }

    // raid1: both data legs hold what was written, at the data offset the status reports.
    const [r1] = await client().status(dmName('r1'));
    if (r1?.status.type !== 'raid' || !r1.status.known) throw new Error('raid1 status is not typed');
    const mirrored = randomBytes(64 * 1024);
    writeAt((await client().info(dmName('r1'))).path, mirrored, 0);
    for (const i of [0, 1]) {
      const leg = (await client().info(dmName(`r1_rimage_${i}`))).path;
      expect(readAt(leg, mirrored.length, r1.status.dataOffset * 512).equals(mirrored), `raid1 leg ${i}`).to.equal(true);
    }
  });

  it("a remove of lvm's pool, held open by its thin LVs, fails with EBUSY and leaves lvm's stack as it was", async () => {
    const tpool = dmName('pool', 'tpool');
    const tableBefore = dmsetup('table');
    const e = await rejection(client().remove(tpool, { retries: 0 }));
    expect(e.code).to.equal('EBUSY');
    const info = await client().info(tpool);
    expect([info.activeTable, info.suspended]).to.deep.equal([true, false]);
    expect(dmsetup('table')).to.equal(tableBefore);
    expect(lvs(['lv_active']).get('pool')?.lv_active).to.equal('active');
  });

  it("a reload of lvm's striped LV with a table the kernel refuses at resume leaves it live on lvm's table, not suspended", async () => {
    const name = dmName('str');
    const before = await client().table(name);
    const data = readAt((await client().info(name)).path, 4096, 0);
    // A linear row running past the end of its PV loads, and fails at resume (EINVAL).
    const [first] = loopDevs;
    if (first === undefined || before === undefined) throw new Error('no PV or no table');
    const pastEnd = new Table([{ start: 0, length: before.size, target: targets.linear({ device: first, offset: 64 * 2048 - 8 }) }]);
    const e = await rejection(client().reload(name, pastEnd));
    expect(e.code).to.equal('EINVAL');
    const info = await client().info(name);
    expect([info.suspended, info.inactiveTable]).to.deep.equal([false, false]);
    expect((await client().table(name))?.equals(before)).to.equal(true);
    expect(dmsetup('table', name).trimEnd()).to.equal(before.toString());
    expect(readAt(info.path, 4096, 0).equals(data)).to.equal(true);
    expect(lvs(['lv_active', 'lv_attr']).get('str')?.lv_active).to.equal('active');
  });

  it("lvm's vgremove removes every device it made; the library's list agrees with dmsetup ls", async () => {
    lvm('vgremove', '-y', '-ff', VG);
    lvm('pvremove', '-y', ...loops);
    expect((await client().listDevices()).filter((d) => d.name.startsWith(dmName('')))).to.deep.equal([]);
    expect(dmsetup('ls')).to.not.include(dmName(''));
    settleUdev();
    expect(existsSync(`/dev/${VG}`)).to.equal(false);
  });
});
