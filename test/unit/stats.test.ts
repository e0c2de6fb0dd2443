import { expect } from 'chai';
import { parseStatsList, parseStatsPrint, parseStatsRegionId, statsMessages } from '../../ts/index';
import { fieldOf, expectOnlyParseErrors } from './targets/property';

describe('dm-stats messages and answers', () => {
  it('builds every @stats_* message, validated', () => {
    expect(statsMessages.create()).to.equal('@stats_create - /1 0');
    expect(statsMessages.create({ range: { start: 8, length: 2040 }, step: { areaSize: 8 } })).to.equal('@stats_create 8+2040 8 0');
    expect(statsMessages.create({ step: { areas: 4 }, preciseTimestamps: true, histogram: [1000, 10000, 100000], programId: 'app', auxData: 'a b\\c' })).to.equal(
      '@stats_create - /4 2 precise_timestamps histogram:1000,10000,100000 app a\\ b\\\\c',
    );
    expect(statsMessages.create({ auxData: 'x' })).to.equal('@stats_create - /1 0 - x');
    expect(statsMessages.delete(3)).to.equal('@stats_delete 3');
    expect(statsMessages.clear(0)).to.equal('@stats_clear 0');
    expect(statsMessages.list()).to.equal('@stats_list');
    expect(statsMessages.list('app')).to.equal('@stats_list app');
    expect(statsMessages.print(1)).to.equal('@stats_print 1');
    expect(statsMessages.print(1, { start: 2, count: 3 })).to.equal('@stats_print 1 2 3');
    expect(statsMessages.printClear(1)).to.equal('@stats_print_clear 1');
    expect(statsMessages.setAux(1, 'group one')).to.equal('@stats_set_aux 1 group\\ one');
    expect(() => statsMessages.create({ histogram: [10, 5] })).to.throw(RangeError, /stats\.histogram\[1\]/);
    expect(() => statsMessages.create({ programId: '12' })).to.throw(RangeError, /stats\.programId/);
    expect(() => statsMessages.create({ programId: 'a b' })).to.throw(RangeError, /stats\.programId/);
    expect(() => statsMessages.create({ step: { areas: 0 } })).to.throw(RangeError, /stats\.step\.areas/);
    expect(() => statsMessages.create({ range: { start: 0, length: 0 } })).to.throw(RangeError, /stats\.range\.length/);
    expect(() => statsMessages.create({ precise: true } as never)).to.throw(TypeError, /unknown option "precise"/);
    expect(() => statsMessages.delete(-1)).to.throw(RangeError, /regionId/);
    expect(() => statsMessages.setAux(0, 'a\nb')).to.throw(RangeError, /auxData/);
  });

  it('parses the answers: region id, list, print (u64 counters as bigint)', () => {
    expect(parseStatsRegionId('7\n')).to.equal(7);
    expect(fieldOf(() => parseStatsRegionId(undefined))).to.equal('region id');
    const list = parseStatsList('0: 0+2048 1024 app a b precise_timestamps histogram:1000,10000\n1: 8+8 8 - -\n');
    expect(list).to.deep.equal([
      { regionId: 0, start: 0, length: 2048, areaSize: 1024, programId: 'app', auxData: 'a b', preciseTimestamps: true, histogram: [1000, 10000] },
      { regionId: 1, start: 8, length: 8, areaSize: 8, programId: null, auxData: null, preciseTimestamps: false, histogram: [] },
    ]);
    const [area] = parseStatsPrint('0+1024 1 0 8 0 2 0 16 18446744073709551615 0 3 5 0 9 4:1:0\n');
    expect(area).to.deep.include({ start: 0, length: 1024, reads: 1n, sectorsRead: 8n, writes: 2n, sectorsWritten: 16n, writeTime: 18446744073709551615n, inFlight: 0, totalWriteTime: 9n });
    expect(area?.histogram).to.deep.equal([4n, 1n, 0n]);
    expect(parseStatsPrint('')).to.deep.equal([]);
    expect(fieldOf(() => parseStatsPrint('0+8 1 2 3'))).to.equal('readTime');
    expect(fieldOf(() => parseStatsPrint('0-8 1 0 8 0 2 0 16 0 0 3 5 0 9'))).to.equal('range');
    expect(fieldOf(() => parseStatsPrint('0+8 1 0 8 0 2 0 16 0 0 3 5 0 9 1:x'))).to.equal('histogram');
    expect(fieldOf(() => parseStatsPrint('0+8 1 0 8 0 2 0 16 18446744073709551616 0 3 5 0 9'))).to.equal('writeTime');
    expect(fieldOf(() => parseStatsList('zero: 0+8 8 - -'))).to.equal('line');
  });

  it('property: mutated answers fail only with DmParseError', () => {
    expectOnlyParseErrors([parseStatsPrint, parseStatsList, parseStatsRegionId], ['0+1024 1 0 8 0 2 0 16 3 0 3 5 0 9 4:1:0', '0: 0+2048 1024 app aux precise_timestamps histogram:1000,10000']);
  });
});
