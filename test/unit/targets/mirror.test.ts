import { expect } from 'chai';
import fc from 'fast-check';
import { Table, parseStatus, targets } from '../../../ts/index';
import { parseMirror, parseMirrorStatus } from '../../../ts/targets/mirror';
import { devArb, fieldOf, expectOnlyParseErrors } from './property';

const legs = [{ device: '7:0', offset: 0 }, { device: { major: 7, minor: 1 }, offset: 2048 }];

describe('targets: mirror', () => {
  it('builds the kernel params from typed options', () => {
    expect(targets.mirror({ log: { type: 'core', regionSize: 1024 }, legs }).params).to.equal('core 1 1024 2 7:0 0 7:1 2048');
    expect(targets.mirror({ log: { type: 'core', regionSize: 512, sync: 'nosync' }, legs, handleErrors: true }).params).to.equal('core 2 512 nosync 2 7:0 0 7:1 2048 1 handle_errors');
    const t = targets.mirror({ log: { type: 'disk', device: '7:5', regionSize: 1024, sync: 'sync' }, legs: [...legs, { device: '7:2', offset: 0 }], handleErrors: true, keepLog: true });
    expect(t.params).to.equal('disk 3 7:5 1024 sync 3 7:0 0 7:1 2048 7:2 0 2 handle_errors keep_log');
    expect(t).to.deep.include({ type: 'mirror', handleErrors: true, keepLog: true });
    expect(t.log).to.deep.equal({ type: 'disk', device: '7:5', regionSize: 1024, sync: 'sync' });
    expect(t.legs[1]).to.deep.equal({ device: '7:1', offset: 2048 });
  });

  it('refuses bad options with the field named, before any ioctl', () => {
    const log = { type: 'core' as const, regionSize: 1024 };
    expect(() => targets.mirror({ log, legs: [legs[0] as never] })).to.throw(RangeError, /mirror\.legs/);
    expect(() => targets.mirror({ log, legs: Array(10).fill(legs[0]) })).to.throw(RangeError, /mirror\.legs/);
    expect(() => targets.mirror({ log: { type: 'core', regionSize: 1000 }, legs })).to.throw(RangeError, /mirror\.log\.regionSize/);
    expect(() => targets.mirror({ log: { type: 'ram' } as never, legs })).to.throw(RangeError, /mirror\.log\.type/);
    expect(() => targets.mirror({ log: { type: 'disk', regionSize: 8 } as never, legs })).to.throw(TypeError, /mirror\.log\.device/);
    expect(() => targets.mirror({ log: { type: 'core', regionSize: 8, device: '7:1' } as never, legs })).to.throw(TypeError, /unknown option "device"/);
    expect(() => targets.mirror({ log: { ...log, sync: 'resync' as never }, legs })).to.throw(RangeError, /mirror\.log\.sync/);
    expect(() => targets.mirror({ log, legs: [legs[0] as never, { device: '7:1', offset: -5 }] })).to.throw(RangeError, /mirror\.legs\[1\]\.offset/);
    expect(() => targets.mirror({ log, legs, keepLog: true })).to.throw(RangeError, /mirror\.keepLog/);
    expect(() => targets.mirror({ log, legs, blockOnError: true } as never)).to.throw(TypeError, /unknown option "blockOnError"/);
  });

  it('parses what users and the kernel write, refusing malformed params naming the field', () => {
    expect(parseMirror('core 1 1024 2 7:7 0 7:8 0').log).to.deep.equal({ type: 'core', regionSize: 1024, sync: undefined });
    expect(parseMirror('disk 3 7:10 1024 sync 3 7:7 0 7:8 0 7:9 0 2 handle_errors keep_log').keepLog).to.equal(true);
    // Features in the user's order come back in the kernel's.
    expect(parseMirror('core 1 8 2 7:7 0 7:8 0 2 keep_log handle_errors').params).to.equal('core 1 8 2 7:7 0 7:8 0 2 handle_errors keep_log');
    expect(parseMirror('core 1 8 2 7:7 0 7:8 0 0').params).to.equal('core 1 8 2 7:7 0 7:8 0');
    expect(fieldOf(() => parseMirror('userspace 1 x 2 7:7 0 7:8 0'))).to.equal('log type');
    expect(fieldOf(() => parseMirror('core 3 8 sync x 2 7:7 0 7:8 0'))).to.equal('log args count');
    expect(fieldOf(() => parseMirror('core 2 8 fast 2 7:7 0 7:8 0'))).to.equal('sync');
    expect(fieldOf(() => parseMirror('core 1 12 2 7:7 0 7:8 0'))).to.equal('region size');
    expect(fieldOf(() => parseMirror('disk 1 8 2 7:7 0 7:8 0'))).to.equal('log args count');
    expect(fieldOf(() => parseMirror('disk 2 x 8 2 7:7 0 7:8 0'))).to.equal('log device');
    expect(fieldOf(() => parseMirror('core 1 8 1 7:7 0'))).to.equal('legs');
    expect(fieldOf(() => parseMirror('core 1 8 2 7:7 0 7:8'))).to.equal('leg 1 offset');
    expect(fieldOf(() => parseMirror('core 1 8 2 7:7 0 7:8 0 1 block_on_error'))).to.equal('features');
    expect(fieldOf(() => parseMirror('core 1 8 2 7:7 0 7:8 0 1 keep_log'))).to.equal('features');
    expect(fieldOf(() => parseMirror('core 1 8 2 7:7 0 7:8 0 1 handle_errors x'))).to.equal('params');
  });

  it('reads every status form: legs and their health letters, sync ratio, core and disk logs', () => {
    const s = parseMirrorStatus('2 7:7 7:8 16/16 1 AA 1 core');
    expect(s).to.deep.include({ type: 'mirror', known: true, extra: [] });
    expect(s.legs).to.deep.equal([{ device: '7:7', health: 'alive' }, { device: '7:8', health: 'alive' }]);
    expect(s.regions).to.deep.equal({ used: 16, total: 16 });
    expect(s.log).to.deep.equal({ type: 'core' });
    const all = parseMirrorStatus('6 7:1 7:2 7:3 7:4 7:5 7:6 3/128 1 AFDSRU 3 disk 7:9 D');
    expect(all.legs.map((l) => l.health)).to.deep.equal(['alive', 'flush-failed', 'write-failed', 'sync-failed', 'read-failed', 'unclassified']);
    expect(all.log).to.deep.equal({ type: 'disk', device: '7:9', health: 'failed' });
    expect(parseMirrorStatus('2 7:7 7:8 16/16 1 AA 3 disk 7:9 F later').log).to.deep.include({ health: 'flush-failed' });
    expect(parseMirrorStatus('2 7:7 7:8 16/16 1 AA 3 disk 7:9 F later').extra).to.deep.equal(['later']);
    expect(fieldOf(() => parseMirrorStatus('2 7:7 7:8 16/16 1 AX 1 core'))).to.equal('health');
    expect(fieldOf(() => parseMirrorStatus('2 7:7 7:8 16/16 1 A 1 core'))).to.equal('health');
    expect(fieldOf(() => parseMirrorStatus('2 7:7 7:8 16-16 1 AA 1 core'))).to.equal('regions');
    expect(fieldOf(() => parseMirrorStatus('2 7:7 7:8 16/16 2 AA 1 core'))).to.equal('health groups');
    expect(fieldOf(() => parseMirrorStatus('2 7:7 7:8 16/16 1 AA 3 core x y'))).to.equal('log status count');
    expect(fieldOf(() => parseMirrorStatus('2 7:7 7:8 16/16 1 AA 3 disk 7:9 Q'))).to.equal('log health');
    expect(fieldOf(() => parseMirrorStatus('2 7:7'))).to.equal('devices');
    const [row] = parseStatus('0 16384 mirror 2 7:7 7:8 16/16 1 AA 1 core');
    expect(row?.status.known && row.status.type === 'mirror' && row.status.regions.total).to.equal(16);
  });

  it('property: random valid targets round-trip through format and parse', () => {
    const logArb = fc.oneof(
      fc.record({ type: fc.constant('core' as const), regionSize: fc.integer({ min: 0, max: 31 }).map((e) => 2 ** e), sync: fc.constantFrom(undefined, 'sync' as const, 'nosync' as const) }),
      fc.record({ type: fc.constant('disk' as const), device: devArb, regionSize: fc.integer({ min: 0, max: 31 }).map((e) => 2 ** e), sync: fc.constantFrom(undefined, 'sync' as const, 'nosync' as const) }),
    );
    fc.assert(
      fc.property(logArb, fc.array(fc.record({ device: devArb, offset: fc.maxSafeNat() }), { minLength: 2, maxLength: 9 }), fc.boolean(), fc.boolean(), (log, legs, handleErrors, keep) => {
        const t = targets.mirror({ log, legs, handleErrors, keepLog: handleErrors && keep });
        expect(parseMirror(t.params)).to.deep.equal(t);
        const line = `0 8192 mirror ${t.params}`;
        expect(Table.parse(line).toString()).to.equal(line);
      }),
    );
  });

  it('property: random and mutated lines never crash or hang, and fail only with DmParseError', () => {
    expectOnlyParseErrors([parseMirror, parseMirrorStatus], ['disk 3 7:10 1024 sync 3 7:7 0 7:8 0 7:9 0 2 handle_errors keep_log', 'core 1 1024 2 7:7 0 7:8 0', '3 7:7 7:8 7:9 16/16 1 AAD 3 disk 7:10 A', '2 7:7 7:8 16/16 1 AA 1 core']);
  });
});
