import { expect } from 'chai';
import fc from 'fast-check';
import { DmParseError, Table, parseStatus, targets, type SnapshotPersistence } from '../../../ts/index';
import { parseSnapshot, parseSnapshotStatus } from '../../../ts/targets/snapshot';
import { parseSnapshotMerge, parseSnapshotMergeStatus } from '../../../ts/targets/snapshot-merge';
import { parseSnapshotOrigin, parseSnapshotOriginStatus } from '../../../ts/targets/snapshot-origin';
import { devArb, fieldOf, expectOnlyParseErrors } from './property';

const devs = { origin: '253:1', cowDevice: { major: 7, minor: 3 } };

describe('targets: snapshot-origin', () => {
  it('builds, parses and formats `<origin>`, refusing anything else', () => {
    expect(targets.snapshotOrigin({ origin: { major: 253, minor: 1 } })).to.deep.include({ type: 'snapshot-origin', origin: '253:1', params: '253:1' });
    expect(targets.snapshotOrigin({ origin: '/dev/loop0' }).params).to.equal('/dev/loop0');
    expect(() => targets.snapshotOrigin({ origin: 'sda' })).to.throw(/snapshotOrigin\.origin/);
    expect(() => targets.snapshotOrigin({ origin: '7:0', device: '7:1' } as never)).to.throw(TypeError, /unknown option "device"/);
    expect(parseSnapshotOrigin('7:12')).to.deep.equal(targets.snapshotOrigin({ origin: '7:12' }));
    expect(fieldOf(() => parseSnapshotOrigin(''))).to.equal('origin');
    expect(fieldOf(() => parseSnapshotOrigin('7:1 0'))).to.equal('params');
    expect(fieldOf(() => parseSnapshotOrigin('x'))).to.equal('origin');
  });

  it('has an empty status', () => {
    expect(parseSnapshotOriginStatus('')).to.deep.include({ type: 'snapshot-origin', known: true, raw: '' });
    expect(() => parseSnapshotOriginStatus('1')).to.throw(DmParseError);
    const [row] = parseStatus('0 65536 snapshot-origin');
    expect(row?.status).to.deep.include({ type: 'snapshot-origin', known: true });
  });
});

describe('targets: snapshot', () => {
  it('builds the kernel params from typed options', () => {
    expect(targets.snapshot({ ...devs, persistent: 'P', chunkSize: 8 }).params).to.equal('253:1 7:3 P 8');
    expect(targets.snapshot({ ...devs, persistent: 'PO', chunkSize: 16 }).params).to.equal('253:1 7:3 PO 16');
    expect(targets.snapshot({ ...devs, persistent: 'N', chunkSize: 1 }).params).to.equal('253:1 7:3 N 1');
    expect(targets.snapshot({ ...devs, persistent: 'P', chunkSize: 0 }).params).to.equal('253:1 7:3 P 0');
    expect(targets.snapshot({ ...devs, persistent: 'P', chunkSize: 2097152, discardZeroesCow: true }).params).to.equal('253:1 7:3 P 2097152 1 discard_zeroes_cow');
    const t = targets.snapshot({ ...devs, persistent: 'N', chunkSize: 32, discardZeroesCow: true, discardPassdownOrigin: true });
    expect(t.params).to.equal('253:1 7:3 N 32 2 discard_zeroes_cow discard_passdown_origin');
    expect(t).to.deep.include({ type: 'snapshot', origin: '253:1', cowDevice: '7:3', persistent: 'N', chunkSize: 32, discardZeroesCow: true, discardPassdownOrigin: true });
    expect(targets.snapshot({ ...devs, persistent: 'P', chunkSize: 8 })).to.deep.include({ discardZeroesCow: false, discardPassdownOrigin: false });
  });

  it('refuses bad options with the field named, before any ioctl', () => {
    expect(() => targets.snapshot({ ...devs, persistent: 'P', chunkSize: 12 })).to.throw(RangeError, /snapshot\.chunkSize/);
    expect(() => targets.snapshot({ ...devs, persistent: 'P', chunkSize: 4194304 })).to.throw(RangeError, /snapshot\.chunkSize/);
    expect(() => targets.snapshot({ ...devs, persistent: 'P', chunkSize: -8 })).to.throw(RangeError, /snapshot\.chunkSize/);
    expect(() => targets.snapshot({ ...devs, persistent: 'P', chunkSize: '8' as never })).to.throw(TypeError, /snapshot\.chunkSize/);
    expect(() => targets.snapshot({ ...devs, persistent: 'p' as never, chunkSize: 8 })).to.throw(RangeError, /snapshot\.persistent/);
    expect(() => targets.snapshot({ ...devs, persistent: 'NO' as never, chunkSize: 8 })).to.throw(RangeError, /snapshot\.persistent/);
    expect(() => targets.snapshot({ ...devs, chunkSize: 8 } as never)).to.throw(TypeError, /snapshot\.persistent/);
    expect(() => targets.snapshot({ ...devs, persistent: 'P', chunkSize: 8, discardPassdownOrigin: true })).to.throw(RangeError, /snapshot\.discardPassdownOrigin/);
    expect(() => targets.snapshot({ ...devs, persistent: 'P', chunkSize: 8, discardZeroesCow: 'yes' as never })).to.throw(TypeError, /snapshot\.discardZeroesCow/);
    expect(() => targets.snapshot({ ...devs, cowDevice: 'cow', persistent: 'P', chunkSize: 8 })).to.throw(/snapshot\.cowDevice/);
    expect(() => targets.snapshot({ ...devs, origin: undefined as never, persistent: 'P', chunkSize: 8 })).to.throw(/snapshot\.origin/);
    expect(() => targets.snapshot({ ...devs, persistent: 'P', chunkSize: 8, overflow: true } as never)).to.throw(TypeError, /unknown option "overflow"/);
    expect(() => targets.snapshot(undefined as never)).to.throw(TypeError, /snapshot options/);
  });

  it('parses what users and the kernel write: store words in any case, features in any order, an explicit 0 count', () => {
    expect(parseSnapshot('253:1 7:3 P 8')).to.deep.equal(targets.snapshot({ ...devs, persistent: 'P', chunkSize: 8 }));
    expect(parseSnapshot('253:1 7:3 p 8').params).to.equal('253:1 7:3 P 8');
    expect(parseSnapshot('253:1 7:3 po 8').persistent).to.equal('PO');
    expect(parseSnapshot('253:1 7:3 Po 8').persistent).to.equal('PO');
    expect(parseSnapshot('253:1 7:3 n 8').persistent).to.equal('N');
    expect(parseSnapshot('/dev/loop1 /dev/loop2 N 16').params).to.equal('/dev/loop1 /dev/loop2 N 16');
    expect(parseSnapshot('253:1 7:3 P 8 0').params).to.equal('253:1 7:3 P 8');
    expect(parseSnapshot('253:1 7:3 P 8 2 discard_passdown_origin DISCARD_ZEROES_COW').params).to.equal('253:1 7:3 P 8 2 discard_zeroes_cow discard_passdown_origin');
    expect(fieldOf(() => parseSnapshot('253:1 7:3 X 8'))).to.equal('persistent');
    expect(fieldOf(() => parseSnapshot('253:1 7:3 PX 8'))).to.equal('persistent');
    expect(fieldOf(() => parseSnapshot('253:1 7:3 NO 8'))).to.equal('persistent');
    expect(fieldOf(() => parseSnapshot('253:1 7:3 P 24'))).to.equal('chunk size');
    expect(fieldOf(() => parseSnapshot('253:1 7:3 P 4194304'))).to.equal('chunk size');
    expect(fieldOf(() => parseSnapshot('253:1 7:3 P -8'))).to.equal('chunk size');
    expect(fieldOf(() => parseSnapshot('253:1 7:3 P'))).to.equal('chunk size');
    expect(fieldOf(() => parseSnapshot('253:1 7:3'))).to.equal('persistent');
    expect(fieldOf(() => parseSnapshot('253:1'))).to.equal('COW device');
    expect(fieldOf(() => parseSnapshot('253:1 7:3 P 8 3 discard_zeroes_cow discard_passdown_origin x'))).to.equal('feature args count');
    expect(fieldOf(() => parseSnapshot('253:1 7:3 P 8 2 discard_zeroes_cow'))).to.equal('feature args count');
    expect(fieldOf(() => parseSnapshot('253:1 7:3 P 8 1 discard'))).to.equal('feature args');
    expect(fieldOf(() => parseSnapshot('253:1 7:3 P 8 2 discard_zeroes_cow discard_zeroes_cow'))).to.equal('feature args');
    expect(fieldOf(() => parseSnapshot('253:1 7:3 P 8 1 discard_passdown_origin'))).to.equal('feature args');
    expect(fieldOf(() => parseSnapshot('253:1 7:3 P 8 1 discard_zeroes_cow x'))).to.equal('params');
  });

  it('reads every status form: usage, Invalid, Overflow, Merge failed, Unknown', () => {
    const s = parseSnapshotStatus('397896/2097152 1560');
    expect(s).to.deep.include({ type: 'snapshot', known: true, state: 'valid', metadataSectors: 1560, extra: [] });
    if (s.state !== 'valid') throw new Error('valid');
    expect(s.usage).to.deep.equal({ used: 397896, total: 2097152 });
    expect(parseSnapshotStatus('0/8192 0')).to.deep.include({ state: 'valid', metadataSectors: 0 });
    for (const state of ['Invalid', 'Overflow', 'Unknown', 'Merge failed'] as const) expect(parseSnapshotStatus(state)).to.deep.include({ type: 'snapshot', known: true, state, extra: [] });
    expect(parseSnapshotStatus('16/8192 16 more').extra).to.deep.equal(['more']);
    expect(parseSnapshotStatus('Invalid more').extra).to.deep.equal(['more']);
    expect(fieldOf(() => parseSnapshotStatus(''))).to.equal('sectors allocated');
    expect(fieldOf(() => parseSnapshotStatus('16 16'))).to.equal('sectors allocated');
    expect(fieldOf(() => parseSnapshotStatus('16/x 16'))).to.equal('sectors allocated');
    expect(fieldOf(() => parseSnapshotStatus('16/8192'))).to.equal('metadata sectors');
    expect(fieldOf(() => parseSnapshotStatus('16/8192 -1'))).to.equal('metadata sectors');
    expect(fieldOf(() => parseSnapshotStatus('Merge'))).to.equal('state');
    expect(fieldOf(() => parseSnapshotStatus('Merge done'))).to.equal('state');
    expect(fieldOf(() => parseSnapshotStatus('invalid'))).to.equal('sectors allocated');
    expect(fieldOf(() => parseSnapshotStatus('99999999999999999999/99999999999999999999 0'))).to.equal('sectors allocated');
    const [row] = parseStatus('0 65536 snapshot 48/8192 16');
    expect(row?.status.known && row.status.type === 'snapshot' && row.status.state === 'valid' && row.status.usage.used).to.equal(48);
  });

  it('property: random valid targets round-trip through format and parse', () => {
    fc.assert(
      fc.property(
        fc.record({
          origin: devArb,
          cowDevice: devArb,
          persistent: fc.constantFrom<SnapshotPersistence>('P', 'PO', 'N'),
          chunkSize: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 21 }).map((n) => 2 ** n)),
          discardZeroesCow: fc.boolean(),
          discardPassdownOrigin: fc.boolean(),
        }),
        (o) => {
          const opts = { ...o, discardPassdownOrigin: o.discardZeroesCow && o.discardPassdownOrigin };
          const t = targets.snapshot(opts);
          expect(parseSnapshot(t.params)).to.deep.equal(t);
          const line = `0 65536 snapshot ${t.params}`;
          expect(Table.parse(line).toString()).to.equal(line);
          if (o.persistent !== 'N') {
            const m = targets.snapshotMerge({ ...opts, persistent: o.persistent });
            expect(m.params).to.equal(t.params);
            expect(parseSnapshotMerge(m.params)).to.deep.equal(m);
          }
        },
      ),
    );
    fc.assert(
      fc.property(fc.nat(), fc.nat(), fc.nat(), (a, b, c) => {
        const s = parseSnapshotStatus(`${a}/${b} ${c}`);
        expect(s.state === 'valid' && [s.usage.used, s.usage.total, s.metadataSectors]).to.deep.equal([a, b, c]);
      }),
    );
  });

  it('property: random and mutated lines never crash or hang, and fail only with DmParseError', () => {
    const samples = ['253:1 7:3 PO 16 2 discard_zeroes_cow discard_passdown_origin', '253:1 7:3 N 8', '397896/2097152 1560', 'Merge failed', 'Invalid'];
    expectOnlyParseErrors([parseSnapshot, parseSnapshotStatus, parseSnapshotMerge, parseSnapshotMergeStatus, parseSnapshotOrigin, parseSnapshotOriginStatus], samples, 300);
  });
});

describe('targets: snapshot-merge', () => {
  it('builds and parses a snapshot table of a persistent store only', () => {
    const t = targets.snapshotMerge({ ...devs, persistent: 'P', chunkSize: 8 });
    expect(t).to.deep.include({ type: 'snapshot-merge', origin: '253:1', cowDevice: '7:3', persistent: 'P', chunkSize: 8, params: '253:1 7:3 P 8' });
    expect(targets.snapshotMerge({ ...devs, persistent: 'PO', chunkSize: 16, discardZeroesCow: true }).params).to.equal('253:1 7:3 PO 16 1 discard_zeroes_cow');
    expect(() => targets.snapshotMerge({ ...devs, persistent: 'N' as never, chunkSize: 8 })).to.throw(RangeError, /snapshotMerge\.persistent/);
    expect(() => targets.snapshotMerge({ ...devs, persistent: 'P', chunkSize: 3 })).to.throw(RangeError, /snapshotMerge\.chunkSize/);
    expect(() => targets.snapshotMerge({ ...devs, persistent: 'P', chunkSize: 8, merge: true } as never)).to.throw(TypeError, /unknown option "merge"/);
    expect(parseSnapshotMerge('253:1 253:2 p 8')).to.deep.equal(targets.snapshotMerge({ origin: '253:1', cowDevice: '253:2', persistent: 'P', chunkSize: 8 }));
    expect(fieldOf(() => parseSnapshotMerge('253:1 253:2 N 8'))).to.equal('persistent');
    expect(Table.parse('0 8388608 snapshot-merge 254:11 254:12 P 16').rows[0]?.target).to.deep.include({ type: 'snapshot-merge', chunkSize: 16 });
  });

  it('reads the status while merging, when done, and failed', () => {
    const s = parseSnapshotMergeStatus('281688/2097152 1104');
    expect(s).to.deep.include({ type: 'snapshot-merge', state: 'valid', metadataSectors: 1104 });
    const done = parseSnapshotMergeStatus('16/2097152 16');
    expect(done.state === 'valid' && done.usage.used === done.metadataSectors).to.equal(true);
    expect(parseSnapshotMergeStatus('Merge failed')).to.deep.include({ type: 'snapshot-merge', state: 'Merge failed' });
    expect(parseSnapshotMergeStatus('Invalid')).to.deep.include({ type: 'snapshot-merge', state: 'Invalid' });
    const [row] = parseStatus('0 8388608 snapshot-merge 180480/2097152 712');
    expect(row?.status.known && row.status.type === 'snapshot-merge' && row.status.state).to.equal('valid');
  });

  it('the kernel documentation\'s LVM tables format back byte for byte', () => {
    const lines = ['0 2097152 snapshot 254:11 254:12 P 16', '0 2097152 snapshot-origin 254:11', '0 2097152 snapshot-merge 254:11 254:12 P 16'];
    for (const line of lines) expect(Table.parse(line).toString()).to.equal(line);
  });
});
