import { expect } from 'chai';
import fc from 'fast-check';
import { Table, parseStatus, raidMessages, targets, type RaidOptions, type RaidType } from '../../../ts/index';
import { parseRaid, parseRaidStatus } from '../../../ts/targets/raid';
import { devArb, fieldOf, expectOnlyParseErrors } from './property';

const legs = (n: number, meta = false) => Array.from({ length: n }, (_, i) => ({ metadata: meta ? `7:${2 * i}` : null, data: `7:${2 * i + 1}` }));

describe('targets: raid', () => {
  it('builds the kernel params from typed options, in the kernel\'s order', () => {
    expect(targets.raid({ raidType: 'raid1', devices: legs(2, true), regionSize: 1024 }).params).to.equal('raid1 3 0 region_size 1024 2 7:0 7:1 7:2 7:3');
    expect(targets.raid({ raidType: 'raid5_ls', chunkSize: 64, devices: [...legs(2), { data: null }] }).params).to.equal('raid5_ls 1 64 3 - 7:1 - 7:3 - -');
    const all = targets.raid({
      raidType: 'raid1',
      devices: legs(3, true),
      journalDev: undefined,
      regionSize: 512,
      daemonSleep: 1000,
      maxWriteBehind: 256,
      writeMostly: [2, 1],
      sync: true,
      rebuild: [2, 0],
      minRecoveryRate: 10,
      maxRecoveryRate: 100,
      dataOffset: 2048,
      deltaDisks: -1,
    });
    expect(all.params).to.equal('raid1 24 0 sync rebuild 0 rebuild 2 daemon_sleep 1000 min_recovery_rate 10 max_recovery_rate 100 write_mostly 1 write_mostly 2 max_write_behind 256 region_size 512 delta_disks -1 data_offset 2048 3 7:0 7:1 7:2 7:3 7:4 7:5');
    expect(all).to.deep.include({ raidType: 'raid1', chunkSize: 0, sync: true, nosync: false, rebuild: [0, 2], writeMostly: [1, 2], deltaDisks: -1 });
    expect(targets.raid({ raidType: 'raid10', chunkSize: 64, devices: legs(4), raid10Copies: 2, raid10Format: 'far' }).params).to.equal('raid10 5 64 raid10_copies 2 raid10_format far 4 - 7:1 - 7:3 - 7:5 - 7:7');
    expect(targets.raid({ raidType: 'raid6_zr', chunkSize: 64, devices: legs(4), stripeCache: 512, journalDev: '7:9', journalMode: 'writeback', sync: true }).params).to.equal(
      'raid6_zr 8 64 sync stripe_cache 512 journal_dev 7:9 journal_mode writeback 4 - 7:1 - 7:3 - 7:5 - 7:7',
    );
  });

  it('refuses bad options with the field named, before any ioctl', () => {
    const r5 = { raidType: 'raid5_ls' as const, chunkSize: 64, devices: legs(3) };
    expect(() => targets.raid({ ...r5, raidType: 'raid7' as never })).to.throw(RangeError, /raid\.raidType/);
    expect(() => targets.raid({ ...r5, chunkSize: 48 })).to.throw(RangeError, /raid\.chunkSize/);
    expect(() => targets.raid({ ...r5, chunkSize: undefined })).to.throw(TypeError, /raid\.chunkSize/);
    expect(() => targets.raid({ raidType: 'raid1', chunkSize: 64, devices: legs(2) })).to.throw(RangeError, /raid\.chunkSize/);
    expect(() => targets.raid({ ...r5, devices: legs(1) })).to.throw(RangeError, /raid\.devices/);
    expect(() => targets.raid({ raidType: 'raid6_zr', chunkSize: 8, devices: legs(3) })).to.throw(RangeError, /raid\.devices/);
    expect(() => targets.raid({ ...r5, devices: [...legs(2), { data: 'sdc' }] })).to.throw(/raid\.devices\[2\]\.data/);
    expect(() => targets.raid({ ...r5, devices: [...legs(2), { metadata: '7:9', data: null }] })).to.throw(RangeError, /raid\.devices\[2\]\.data/);
    expect(() => targets.raid({ ...r5, devices: [...legs(2), { metadata: 'x', data: '7:9' }] })).to.throw(/raid\.devices\[2\]\.metadata/);
    expect(() => targets.raid({ ...r5, devices: [...legs(2), {} as never] })).to.throw(TypeError, /raid\.devices\[2\]\.data/);
    expect(() => targets.raid({ ...r5, sync: true, nosync: true })).to.throw(RangeError, /raid\.nosync/);
    expect(() => targets.raid({ ...r5, rebuild: [3] })).to.throw(RangeError, /raid\.rebuild\[0\]/);
    expect(() => targets.raid({ ...r5, rebuild: [1, 1] })).to.throw(RangeError, /raid\.rebuild\[1\]/);
    expect(() => targets.raid({ ...r5, devices: [...legs(2), { data: null }], rebuild: [2] })).to.throw(RangeError, /raid\.rebuild/);
    expect(() => targets.raid({ ...r5, writeMostly: [0] })).to.throw(RangeError, /raid\.writeMostly/);
    expect(() => targets.raid({ ...r5, maxWriteBehind: 8 })).to.throw(RangeError, /raid\.maxWriteBehind/);
    expect(() => targets.raid({ raidType: 'raid1', devices: legs(2), stripeCache: 8 })).to.throw(RangeError, /raid\.stripeCache/);
    expect(() => targets.raid({ ...r5, raid10Copies: 2 })).to.throw(RangeError, /raid\.raid10Copies/);
    expect(() => targets.raid({ raidType: 'raid10', chunkSize: 8, devices: legs(2), raid10Copies: 3 })).to.throw(RangeError, /raid\.raid10Copies/);
    expect(() => targets.raid({ raidType: 'raid10', chunkSize: 8, devices: legs(2), raid10Format: 'wide' as never })).to.throw(RangeError, /raid\.raid10Format/);
    expect(() => targets.raid({ raidType: 'raid1', devices: legs(2), journalDev: '7:9' })).to.throw(RangeError, /raid\.journalDev/);
    expect(() => targets.raid({ ...r5, journalMode: 'writeback' })).to.throw(RangeError, /raid\.journalMode/);
    expect(() => targets.raid({ ...r5, minRecoveryRate: 100, maxRecoveryRate: 10 })).to.throw(RangeError, /raid\.maxRecoveryRate/);
    expect(() => targets.raid({ ...r5, daemonSleep: 0 })).to.throw(RangeError, /raid\.daemonSleep/);
    expect(() => targets.raid({ ...r5, regionSize: 1000 })).to.throw(RangeError, /raid\.regionSize/);
    expect(() => targets.raid({ ...r5, level: 5 } as never)).to.throw(TypeError, /unknown option "level"/);
    // Each level takes only its own params, as the kernel does.
    expect(() => targets.raid({ raidType: 'raid0', chunkSize: 64, devices: legs(2), sync: true })).to.throw(RangeError, /raid0 does not take it\) for raid\.sync/);
    expect(() => targets.raid({ raidType: 'raid0', chunkSize: 64, devices: legs(2), regionSize: 1024 })).to.throw(RangeError, /raid\.regionSize/);
    expect(targets.raid({ raidType: 'raid0', chunkSize: 64, devices: legs(2), dataOffset: 2048, sync: false, rebuild: [] }).params).to.equal('raid0 3 64 data_offset 2048 2 - 7:1 - 7:3');
    expect(() => targets.raid({ raidType: 'raid6_zr', chunkSize: 64, devices: legs(4), nosync: true })).to.throw(RangeError, /raid\.nosync/);
    expect(() => targets.raid({ raidType: 'raid10_far', chunkSize: 64, devices: legs(4), writeMostly: [1] })).to.throw(RangeError, /raid\.writeMostly/);
    expect(() => targets.raid({ ...r5, deltaDisks: 0 })).to.throw(RangeError, /raid\.deltaDisks/);
    expect(() => targets.raid({ ...r5, deltaDisks: 252 })).to.throw(RangeError, /raid\.deltaDisks/);
  });

  it('a Table refuses a row whose length does not split among the data legs', () => {
    const t = targets.raid({ raidType: 'raid5_ls', chunkSize: 64, devices: legs(3) });
    expect(new Table([{ start: 0, length: 16384, target: t }]).size).to.equal(16384);
    expect(() => new Table([{ start: 0, length: 16385, target: t }])).to.throw(RangeError, /rows\[0\]\.length/);
    expect(new Table([{ start: 0, length: 16385, target: targets.raid({ raidType: 'raid1', devices: legs(2) }) }]).size).to.equal(16385);
  });

  it('parses what users and the kernel write: params in any order come back in the kernel\'s', () => {
    const t = parseRaid('raid1 10 0 sync write_mostly 1 max_write_behind 256 region_size 512 daemon_sleep 1000 2 7:0 7:1 7:2 7:3');
    expect(t.params).to.equal('raid1 10 0 sync daemon_sleep 1000 write_mostly 1 max_write_behind 256 region_size 512 2 7:0 7:1 7:2 7:3');
    expect(parseRaid('raid1 1 64 2 - 7:1 - 7:3').chunkSize).to.equal(0);
    expect(parseRaid('raid6_zr 11 64 rebuild 1 daemon_sleep 2000 max_recovery_rate 5000 stripe_cache 512 region_size 2048 4 - 7:7 - 7:9 - 7:11 - 7:12').rebuild).to.deep.equal([1]);
    expect(parseRaid('raid5_ls 1 64 3 - 7:7 - 7:9 - -').devices[2]).to.deep.equal({ metadata: null, data: null });
    expect(parseRaid('raid5_ls 3 64 delta_disks -1 3 - 7:7 - 7:9 - 7:1').deltaDisks).to.equal(-1);
    expect(parseRaid('raid10_far 3 64 raid10_copies 2 2 - 7:7 - 7:9').raidType).to.equal('raid10_far');
    expect(fieldOf(() => parseRaid('raid6_zr 2 64 nosync 4 - 7:1 - 7:3 - 7:5 - 7:7'))).to.equal('params');
    expect(fieldOf(() => parseRaid('raid7 1 64 2 - 7:1 - 7:3'))).to.equal('raid type');
    expect(fieldOf(() => parseRaid('raid1 9 0 region_size 2 - 7:1 - 7:3'))).to.equal('raid params count');
    expect(fieldOf(() => parseRaid('raid1 3 0 speed 9 2 - 7:1 - 7:3'))).to.equal('raid params');
    expect(fieldOf(() => parseRaid('raid1 3 0 region_size x 2 - 7:1 - 7:3'))).to.equal('region_size');
    expect(fieldOf(() => parseRaid('raid1 5 0 region_size 8 region_size 8 2 - 7:1 - 7:3'))).to.equal('region_size');
    expect(fieldOf(() => parseRaid('raid10 3 64 raid10_format wide 2 - 7:1 - 7:3'))).to.equal('raid10_format');
    expect(fieldOf(() => parseRaid('raid1 1 0 2 - 7:1 -'))).to.equal('device 1 data');
    expect(fieldOf(() => parseRaid('raid1 1 0 2 - 7:1 x 7:3'))).to.equal('device 1 metadata');
    // Well-formed but against the kernel's rules: named as the params at fault.
    expect(fieldOf(() => parseRaid('raid5_ls 3 64 write_mostly 0 3 - 7:7 - 7:9 - 7:1'))).to.equal('params');
    expect(fieldOf(() => parseRaid('raid1 1 0 2 - 7:1 - 7:3 x'))).to.equal('params');
  });

  it('reads every status form: leg health letters, sync ratio and action, mismatches, data offset, journal', () => {
    const s = parseRaidStatus('raid1 2 AA 16384/16384 idle 0 0 -');
    expect(s).to.deep.include({ type: 'raid', known: true, raidType: 'raid1', syncAction: 'idle', mismatchCount: 0, dataOffset: 0, journal: 'none', extra: [] });
    expect(s.devices).to.deep.equal(['in-sync', 'in-sync']);
    expect(s.syncRatio).to.deep.equal({ used: 16384, total: 16384 });
    const r = parseRaidStatus('raid5_ra 4 aaD- 1280/8192 resync 12 2048 a');
    expect(r.devices).to.deep.equal(['out-of-sync', 'out-of-sync', 'dead', 'missing']);
    expect(r).to.deep.include({ syncAction: 'resync', mismatchCount: 12, dataOffset: 2048, journal: 'writeback' });
    for (const a of ['frozen', 'recover', 'check', 'repair', 'reshape', 'undef']) expect(parseRaidStatus(`raid6_zr 4 AAAA 1/2 ${a} 0 0 A`).syncAction).to.equal(a);
    expect(parseRaidStatus('raid6_zr 4 AAAA 1/2 idle 0 0 D x').journal).to.equal('dead');
    expect(parseRaidStatus('raid6_zr 4 AAAA 1/2 idle 0 0 D x').extra).to.deep.equal(['x']);
    expect(fieldOf(() => parseRaidStatus('raid1 2 AX 1/2 idle 0 0 -'))).to.equal('health');
    expect(fieldOf(() => parseRaidStatus('raid1 2 AAA 1/2 idle 0 0 -'))).to.equal('health');
    expect(fieldOf(() => parseRaidStatus('raid1 2 AA 1/2 busy 0 0 -'))).to.equal('sync action');
    expect(fieldOf(() => parseRaidStatus('raid1 2 AA 1/2 idle 0 0'))).to.equal('journal');
    expect(fieldOf(() => parseRaidStatus('raid1 2 AA 12 idle 0 0 -'))).to.equal('sync ratio');
    const [row] = parseStatus('0 16384 raid raid1 2 AA 16384/16384 idle 0 0 -');
    expect(row?.status.known && row.status.type === 'raid' && row.status.syncAction).to.equal('idle');
  });

  it('makes the sync action messages the kernel takes', () => {
    expect(raidMessages.syncAction('check')).to.equal('check');
    expect([raidMessages.idle(), raidMessages.frozen(), raidMessages.resync(), raidMessages.recover(), raidMessages.check(), raidMessages.repair()]).to.deep.equal(['idle', 'frozen', 'resync', 'recover', 'check', 'repair']);
    expect(() => raidMessages.syncAction('reshape' as never)).to.throw(RangeError, /action/);
  });

  it('property: random valid targets round-trip through format and parse', () => {
    const types: RaidType[] = ['raid0', 'raid1', 'raid10', 'raid10_near', 'raid10_far', 'raid10_offset', 'raid4', 'raid5_n', 'raid5_la', 'raid5_ra', 'raid5_ls', 'raid5_rs', 'raid6_zr', 'raid6_nr', 'raid6_nc', 'raid6_n_6', 'raid6_la_6', 'raid6_ra_6', 'raid6_ls_6', 'raid6_rs_6'];
    const optional = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
    fc.assert(
      fc.property(
        fc.constantFrom(...types),
        fc.array(fc.record({ metadata: fc.option(devArb, { nil: null }), data: devArb }), { minLength: 4, maxLength: 12 }),
        fc.record({
          chunkSize: fc.integer({ min: 3, max: 30 }).map((e) => 2 ** e),
          sync: fc.boolean(),
          daemonSleep: optional(fc.integer({ min: 1, max: 0x7fffffff })),
          minRecoveryRate: optional(fc.integer({ min: 0, max: 1000 })),
          maxRecoveryRate: optional(fc.integer({ min: 1000, max: 0x7fffffff })),
          regionSize: optional(fc.integer({ min: 0, max: 30 }).map((e) => 2 ** e)),
          deltaDisks: optional(fc.integer({ min: -249, max: 249 }).filter((d) => d !== 0)),
          dataOffset: optional(fc.maxSafeNat()),
          rebuild: fc.uniqueArray(fc.nat(3), { maxLength: 3 }),
          extra: fc.nat(0xffff),
          journal: optional(devArb),
          journalMode: fc.constantFrom(undefined, 'writethrough' as const, 'writeback' as const),
          format: fc.constantFrom(undefined, 'near' as const, 'far' as const, 'offset' as const),
        }),
        (raidType, devices, p) => {
          const o: RaidOptions = { raidType, devices, chunkSize: raidType === 'raid1' ? 0 : p.chunkSize, dataOffset: p.dataOffset };
          if (raidType !== 'raid0') {
            Object.assign(o, { daemonSleep: p.daemonSleep, minRecoveryRate: p.minRecoveryRate, maxRecoveryRate: p.maxRecoveryRate, regionSize: p.regionSize, deltaDisks: p.deltaDisks, rebuild: p.rebuild });
            if (p.sync) o.sync = true;
            else if (!raidType.startsWith('raid6')) o.nosync = true;
          }
          if (raidType === 'raid1') Object.assign(o, { writeMostly: [1], maxWriteBehind: p.extra % 32767 });
          if (raidType.startsWith('raid10')) Object.assign(o, { raid10Copies: 2 + (p.extra % 3), raid10Format: p.format });
          if (raidType === 'raid4' || raidType.startsWith('raid5') || raidType.startsWith('raid6')) Object.assign(o, { stripeCache: p.extra, journalDev: p.journal, journalMode: p.journal === undefined ? undefined : p.journalMode });
          const t = targets.raid(o);
          expect(parseRaid(t.params)).to.deep.equal(t);
          const line = `0 ${27720 * 64} raid ${t.params}`;
          expect(Table.parse(line).toString()).to.equal(line);
        },
      ),
    );
  });

  it('property: random and mutated lines never crash or hang, and fail only with DmParseError', () => {
    expectOnlyParseErrors([parseRaid, parseRaidStatus], [
        'raid6_zr 11 64 rebuild 1 daemon_sleep 2000 max_recovery_rate 5000 stripe_cache 512 region_size 2048 4 - 7:7 - 7:9 - 7:11 - 7:12',
        'raid1 10 0 sync write_mostly 1 max_write_behind 256 region_size 512 daemon_sleep 1000 2 7:0 7:1 7:2 7:3',
        'raid5_ls 1 64 3 - 7:7 - 7:9 - -',
        'raid5_ra 4 aaD- 1280/8192 resync 12 2048 a',
      ]);
  });
});
