import { expect } from 'chai';
import fc from 'fast-check';
import { FLAKEY_PROBABILITY_BASE, Table, parseStatus, targets } from '../../../ts/index';
import { parseFlakey, parseFlakeyStatus } from '../../../ts/targets/flakey';
import { devArb, fieldOf, expectOnlyParseErrors } from './property';

const base = { device: '7:0', offset: 0, upInterval: 0, downInterval: 5 };

describe('targets: flakey', () => {
  it('builds the kernel params in the order the kernel prints them back, the feature count always given', () => {
    expect(targets.flakey(base).params).to.equal('7:0 0 0 5 0');
    expect(targets.flakey({ ...base, device: { major: 7, minor: 1 }, offset: 2048, upInterval: 30, downInterval: 60, errorWrites: true }).params).to.equal('7:1 2048 30 60 1 error_writes');
    expect(targets.flakey({ ...base, dropWrites: true }).params).to.equal('7:0 0 0 5 1 drop_writes');
    const six = targets.flakey({ ...base, corruptBioByte: { nthByte: 512, direction: 'r', value: 7 }, errorWrites: true });
    expect(six.params).to.equal('7:0 0 0 5 6 error_writes corrupt_bio_byte 512 r 7 0');
    expect(six).to.deep.include({ type: 'flakey', errorWrites: true, dropWrites: false, errorReads: false, randomReadCorrupt: null, randomWriteCorrupt: null });
    expect(six.corruptBioByte).to.deep.equal({ nthByte: 512, direction: 'r', value: 7, flags: 0 });
    expect(targets.flakey({ ...base, corruptBioByte: { nthByte: 4096, direction: 'w', value: 0, flags: 2048 } }).params).to.equal('7:0 0 0 5 5 corrupt_bio_byte 4096 w 0 2048');
    // Newer kernels' features, in their print-back order.
    const newer = targets.flakey({ ...base, randomWriteCorrupt: 5, errorReads: true, randomReadCorrupt: undefined, dropWrites: false });
    expect(newer.params).to.equal('7:0 0 0 5 3 error_reads random_write_corrupt 5');
    expect(targets.flakey({ ...base, randomReadCorrupt: FLAKEY_PROBABILITY_BASE, randomWriteCorrupt: 1, corruptBioByte: { nthByte: 1, direction: 'r', value: 1 } }).params).to.equal(
      '7:0 0 0 5 9 corrupt_bio_byte 1 r 1 0 random_read_corrupt 1000000000 random_write_corrupt 1',
    );
    expect(targets.flakey({ ...base, upInterval: 0xfffffffe, downInterval: 1 }).params).to.equal('7:0 0 4294967294 1 0');
  });

  it('refuses bad options with the field named, and features the kernel refuses together', () => {
    expect(() => targets.flakey({ ...base, upInterval: 0, downInterval: 0 })).to.throw(RangeError, /flakey\.downInterval/);
    expect(() => targets.flakey({ ...base, upInterval: 0xffffffff, downInterval: 1 })).to.throw(RangeError, /flakey\.downInterval/);
    expect(() => targets.flakey({ ...base, upInterval: -1 })).to.throw(RangeError, /flakey\.upInterval/);
    expect(() => targets.flakey({ ...base, upInterval: '1' as never })).to.throw(TypeError, /flakey\.upInterval/);
    expect(() => targets.flakey({ ...base, offset: 1.5 })).to.throw(RangeError, /flakey\.offset/);
    expect(() => targets.flakey({ ...base, device: 'sdb' })).to.throw(/flakey\.device/);
    expect(() => targets.flakey({ ...base, dropWrites: 1 as never })).to.throw(TypeError, /flakey\.dropWrites/);
    expect(() => targets.flakey({ ...base, dropWrites: true, errorWrites: true })).to.throw(RangeError, /drop_writes conflicts with error_writes.*flakey\.errorWrites/);
    expect(() => targets.flakey({ ...base, dropWrites: true, corruptBioByte: { nthByte: 1, direction: 'w', value: 0 } })).to.throw(RangeError, /drop_writes is incompatible.*flakey\.corruptBioByte\.direction/);
    expect(() => targets.flakey({ ...base, errorWrites: true, randomWriteCorrupt: 10 })).to.throw(RangeError, /error_writes is incompatible.*flakey\.randomWriteCorrupt/);
    expect(() => targets.flakey({ ...base, errorReads: true, corruptBioByte: { nthByte: 1, direction: 'r', value: 0 } })).to.throw(RangeError, /error_reads is incompatible.*flakey\.corruptBioByte\.direction/);
    expect(() => targets.flakey({ ...base, corruptBioByte: { nthByte: 0, direction: 'r', value: 0 } })).to.throw(RangeError, /flakey\.corruptBioByte\.nthByte/);
    expect(() => targets.flakey({ ...base, corruptBioByte: { nthByte: 1, direction: 'x' as never, value: 0 } })).to.throw(RangeError, /flakey\.corruptBioByte\.direction/);
    expect(() => targets.flakey({ ...base, corruptBioByte: { nthByte: 1, direction: 'r', value: 256 } })).to.throw(RangeError, /flakey\.corruptBioByte\.value/);
    expect(() => targets.flakey({ ...base, corruptBioByte: { nthByte: 1, direction: 'r', value: 0, flags: 2 ** 32 } })).to.throw(RangeError, /flakey\.corruptBioByte\.flags/);
    expect(() => targets.flakey({ ...base, corruptBioByte: { nthByte: 1, direction: 'r', value: 0, mask: 1 } as never })).to.throw(TypeError, /unknown option "mask"/);
    expect(() => targets.flakey({ ...base, corruptBioByte: 5 as never })).to.throw(TypeError, /flakey\.corruptBioByte/);
    expect(() => targets.flakey({ ...base, randomReadCorrupt: 0 })).to.throw(RangeError, /flakey\.randomReadCorrupt/);
    expect(() => targets.flakey({ ...base, randomWriteCorrupt: FLAKEY_PROBABILITY_BASE + 1 })).to.throw(RangeError, /flakey\.randomWriteCorrupt/);
    expect(() => targets.flakey({ ...base, errorRead: true } as never)).to.throw(TypeError, /unknown option "errorRead"/);
  });

  it('parses what users write (no count, capitals, any order) and the kernel prints back (trailing blank)', () => {
    expect(parseFlakey('7:0 0 0 5')).to.deep.equal(targets.flakey(base));
    expect(parseFlakey('7:0 0 0 5 0 ').params).to.equal('7:0 0 0 5 0');
    expect(parseFlakey('7:0 0 0 5 1 DROP_WRITES ').params).to.equal('7:0 0 0 5 1 drop_writes');
    const six = parseFlakey('7:0 0 7 3 6 corrupt_bio_byte 512 R 7 0 error_writes');
    expect(six.params).to.equal('7:0 0 7 3 6 error_writes corrupt_bio_byte 512 r 7 0');
    expect(six).to.deep.equal(targets.flakey({ ...base, upInterval: 7, downInterval: 3, errorWrites: true, corruptBioByte: { nthByte: 512, direction: 'r', value: 7 } }));
    // A newer kernel's print-back of a table without features, and its random features.
    expect(parseFlakey('7:0 0 0 5 2 error_reads error_writes')).to.deep.include({ errorReads: true, errorWrites: true });
    expect(parseFlakey('7:0 0 0 5 4 random_read_corrupt 10 random_write_corrupt 20')).to.deep.include({ randomReadCorrupt: 10, randomWriteCorrupt: 20 });
    // A probability of 0 is the feature off: the kernel takes it and prints nothing.
    expect(parseFlakey('7:0 0 0 5 2 random_read_corrupt 0').params).to.equal('7:0 0 0 5 0');
    expect(fieldOf(() => parseFlakey('7:0 0 0'))).to.equal('down interval');
    expect(fieldOf(() => parseFlakey('7:0 0 0 0'))).to.equal('down interval');
    expect(fieldOf(() => parseFlakey('7:0 0 4294967295 1'))).to.equal('down interval');
    expect(fieldOf(() => parseFlakey('7:0 0 4294967296 1'))).to.equal('up interval');
    expect(fieldOf(() => parseFlakey('7:0 x 0 1'))).to.equal('offset');
    expect(fieldOf(() => parseFlakey('sdb 0 0 1'))).to.equal('dev path');
    expect(fieldOf(() => parseFlakey('7:0 0 0 1 12 drop_writes'))).to.equal('feature args count');
    expect(fieldOf(() => parseFlakey('7:0 0 0 1 2 drop_writes'))).to.equal('feature args count');
    expect(fieldOf(() => parseFlakey('7:0 0 0 1 1 flaky'))).to.equal('feature args');
    expect(fieldOf(() => parseFlakey('7:0 0 0 1 2 drop_writes drop_writes'))).to.equal('feature args');
    expect(fieldOf(() => parseFlakey('7:0 0 0 1 2 drop_writes error_writes'))).to.equal('feature args');
    expect(fieldOf(() => parseFlakey('7:0 0 0 1 6 drop_writes corrupt_bio_byte 1 w 0 0'))).to.equal('feature args');
    expect(fieldOf(() => parseFlakey('7:0 0 0 1 3 corrupt_bio_byte 1 r 0 0'))).to.equal('corrupt_bio_byte');
    expect(fieldOf(() => parseFlakey('7:0 0 0 1 5 corrupt_bio_byte 0 r 0 0'))).to.equal('Nth_byte');
    expect(fieldOf(() => parseFlakey('7:0 0 0 1 5 corrupt_bio_byte 1 x 0 0'))).to.equal('direction');
    expect(fieldOf(() => parseFlakey('7:0 0 0 1 5 corrupt_bio_byte 1 r 256 0'))).to.equal('value');
    expect(fieldOf(() => parseFlakey('7:0 0 0 1 5 corrupt_bio_byte 1 r 0 -1'))).to.equal('flags');
    expect(fieldOf(() => parseFlakey('7:0 0 0 1 1 random_read_corrupt'))).to.equal('random_read_corrupt');
    expect(fieldOf(() => parseFlakey('7:0 0 0 1 2 random_write_corrupt 1000000001'))).to.equal('random_write_corrupt');
    expect(fieldOf(() => parseFlakey('7:0 0 0 1 1 drop_writes x'))).to.equal('params');
  });

  it('reads its status: the kernel prints none, a newer one’s words are kept', () => {
    expect(parseFlakeyStatus('')).to.deep.include({ type: 'flakey', known: true, extra: [] });
    expect(parseFlakeyStatus('up 3').extra).to.deep.equal(['up', '3']);
    const [row] = parseStatus('0 8192 flakey ');
    expect(row?.status).to.deep.include({ type: 'flakey', known: true, extra: [] });
  });

  const featuresArb = fc.record(
    {
      errorReads: fc.boolean(),
      writes: fc.constantFrom('drop', 'error', 'none'),
      corruptBioByte: fc.option(fc.record({ nthByte: fc.integer({ min: 1, max: 0xffffffff }), direction: fc.constantFrom('r' as const, 'w' as const), value: fc.integer({ min: 0, max: 255 }), flags: fc.nat(0xffffffff) }), { nil: undefined }),
      randomReadCorrupt: fc.option(fc.integer({ min: 1, max: FLAKEY_PROBABILITY_BASE }), { nil: undefined }),
      randomWriteCorrupt: fc.option(fc.integer({ min: 1, max: FLAKEY_PROBABILITY_BASE }), { nil: undefined }),
    },
    { requiredKeys: [] },
  );

  it('property: random valid targets round-trip through format and parse, and in any feature order', () => {
    fc.assert(
      fc.property(
        devArb,
        fc.nat(),
        fc.nat(0xffffffff),
        fc.nat(0xffffffff),
        featuresArb,
        fc.nat(),
        (dev, offset, up, down, f, seed) => {
          fc.pre(up + down >= 1 && up + down <= 0xffffffff);
          const o = { device: dev, offset, upInterval: up, downInterval: down, errorReads: f.errorReads, dropWrites: f.writes === 'drop', errorWrites: f.writes === 'error', corruptBioByte: f.corruptBioByte, randomReadCorrupt: f.randomReadCorrupt, randomWriteCorrupt: f.randomWriteCorrupt };
          let t;
          try {
            t = targets.flakey(o);
          } catch (e) {
            // Only the kernel's conflicts are refused.
            expect(e).to.be.instanceOf(RangeError);
            expect((e as Error).message).to.match(/features the kernel takes together/);
            return;
          }
          expect(parseFlakey(t.params)).to.deep.equal(t);
          const line = `0 8192 flakey ${t.params}`;
          expect(Table.parse(line).toString()).to.equal(line);
          // The same features in another order (users may write any) read to the same target.
          const words = t.params.split(' ');
          const groups: string[][] = [];
          for (let i = 5; i < words.length; ) {
            const n = words[i] === 'corrupt_bio_byte' ? 5 : words[i]?.startsWith('random_') ? 2 : 1;
            groups.push(words.slice(i, i + n));
            i += n;
          }
          const rotated = [...groups.slice(seed % Math.max(groups.length, 1)), ...groups.slice(0, seed % Math.max(groups.length, 1))];
          expect(parseFlakey([...words.slice(0, 5), ...rotated.flat()].join(' '))).to.deep.equal(t);
        },
      ),
    );
  });

  it('property: random and mutated lines never crash or hang, and fail only with DmParseError', () => {
    expectOnlyParseErrors([parseFlakey, parseFlakeyStatus], ['7:0 0 0 5 0', '7:0 0 7 3 6 error_writes corrupt_bio_byte 512 r 7 0', '7:0 2048 1 1 3 error_reads random_write_corrupt 5', '7:0 0 0 1 4 random_read_corrupt 10 random_write_corrupt 20'], 1000);
  });
});
