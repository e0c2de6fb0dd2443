import { expect } from 'chai';
import fc from 'fast-check';
import { Table, parseStatus, targets, writecacheMessages } from '../../../ts/index';
import { parseWritecache, parseWritecacheStatus } from '../../../ts/targets/writecache';
import { devArb, fieldOf, expectOnlyParseErrors } from './property';

const ssd = { mode: 'ssd' as const, originDevice: '7:0', cacheDevice: { major: 7, minor: 1 }, blockSize: 4096 };

describe('targets: writecache', () => {
  it('builds the kernel params from typed options, in the kernel\'s order', () => {
    expect(targets.writecache(ssd).params).to.equal('s 7:0 7:1 4096 0');
    expect(targets.writecache({ ...ssd, autocommitTime: 1000, autocommitBlocks: 32, writebackJobs: 128, lowWatermark: 40, highWatermark: 60, startSector: 16 }).params).to.equal(
      's 7:0 7:1 4096 12 start_sector 16 high_watermark 60 low_watermark 40 writeback_jobs 128 autocommit_blocks 32 autocommit_time 1000',
    );
    const t = targets.writecache({ ...ssd, blockSize: 512, pauseWriteback: 3000, metadataOnly: true, cleaner: true, maxAge: 60000 });
    expect(t.params).to.equal('s 7:0 7:1 512 6 max_age 60000 cleaner metadata_only pause_writeback 3000');
    expect(t).to.deep.include({ type: 'writecache', mode: 'ssd', blockSize: 512, cleaner: true, metadataOnly: true, maxAge: 60000, pauseWriteback: 3000, fua: undefined });
    expect(targets.writecache({ ...ssd, mode: 'pmem', fua: false }).params).to.equal('p 7:0 7:1 4096 1 nofua');
    expect(targets.writecache({ ...ssd, mode: 'pmem', fua: true, cleaner: true }).params).to.equal('p 7:0 7:1 4096 2 cleaner fua');
  });

  it('refuses bad options with the field named, before any ioctl', () => {
    expect(() => targets.writecache({ ...ssd, mode: 's' as never })).to.throw(RangeError, /writecache\.mode/);
    expect(() => targets.writecache({ ...ssd, blockSize: 8192 })).to.throw(RangeError, /writecache\.blockSize/);
    expect(() => targets.writecache({ ...ssd, blockSize: 1000 })).to.throw(RangeError, /writecache\.blockSize/);
    expect(() => targets.writecache({ ...ssd, highWatermark: 101 })).to.throw(RangeError, /writecache\.highWatermark/);
    expect(() => targets.writecache({ ...ssd, highWatermark: 30, lowWatermark: 40 })).to.throw(RangeError, /writecache\.lowWatermark/);
    expect(() => targets.writecache({ ...ssd, lowWatermark: 60 })).to.throw(RangeError, /writecache\.lowWatermark/);
    expect(() => targets.writecache({ ...ssd, fua: true })).to.throw(RangeError, /writecache\.fua/);
    expect(() => targets.writecache({ ...ssd, mode: 'pmem', pauseWriteback: 10 })).to.throw(RangeError, /writecache\.pauseWriteback/);
    expect(() => targets.writecache({ ...ssd, pauseWriteback: 60001 })).to.throw(RangeError, /writecache\.pauseWriteback/);
    expect(() => targets.writecache({ ...ssd, autocommitTime: 3600001 })).to.throw(RangeError, /writecache\.autocommitTime/);
    expect(() => targets.writecache({ ...ssd, maxAge: 86400001 })).to.throw(RangeError, /writecache\.maxAge/);
    expect(() => targets.writecache({ ...ssd, startSector: -1 })).to.throw(RangeError, /writecache\.startSector/);
    expect(() => targets.writecache({ ...ssd, cleaner: 'on' as never })).to.throw(TypeError, /writecache\.cleaner/);
    expect(() => targets.writecache({ ...ssd, cacheDevice: 'nvme0n1' })).to.throw(/writecache\.cacheDevice/);
    expect(() => targets.writecache({ ...ssd, flushOnSuspend: true } as never)).to.throw(TypeError, /unknown option "flushOnSuspend"/);
  });

  it('parses what users and the kernel write: args in any order come back in the kernel\'s', () => {
    expect(parseWritecache('s 7:27 7:30 512 6 max_age 60000 cleaner metadata_only pause_writeback 3000').params).to.equal('s 7:27 7:30 512 6 max_age 60000 cleaner metadata_only pause_writeback 3000');
    expect(parseWritecache('s 7:0 7:1 4096 4 low_watermark 10 start_sector 0').params).to.equal('s 7:0 7:1 4096 4 start_sector 0 low_watermark 10');
    expect(parseWritecache('p 7:0 7:1 4096 1 nofua')).to.deep.include({ mode: 'pmem', fua: false });
    expect(fieldOf(() => parseWritecache('x 7:0 7:1 4096 0'))).to.equal('mode');
    expect(fieldOf(() => parseWritecache('s 7:0 7:1 2048 0 x'))).to.equal('params');
    expect(fieldOf(() => parseWritecache('s 7:0 7:1 1536 0'))).to.equal('block size');
    expect(fieldOf(() => parseWritecache('s 7:0 7:1 4096 2 high_watermark 200'))).to.equal('high_watermark');
    expect(fieldOf(() => parseWritecache('s 7:0 7:1 4096 1 turbo'))).to.equal('optional args');
    expect(fieldOf(() => parseWritecache('s 7:0 7:1 4096 2 cleaner cleaner'))).to.equal('cleaner');
    expect(fieldOf(() => parseWritecache('s 7:0 7:1 4096 3 fua'))).to.equal('optional args count');
    expect(fieldOf(() => parseWritecache('s 7:0 7:1 4096 1 fua'))).to.equal('params');
    expect(fieldOf(() => parseWritecache('s 7:0 7:1 4096 1 start_sector'))).to.equal('start_sector');
  });

  it('reads every status form: the 6.1 counters, an error, the four fields of older kernels', () => {
    const s = parseWritecacheStatus('0 2040 1880 0 320 160 160 1 2 3 160 4 5 6');
    expect(s).to.deep.include({ type: 'writecache', known: true, error: 0, blocks: 2040, freeBlocks: 1880, writebackBlocks: 0, extra: [] });
    expect(s.stats).to.deep.equal({ reads: 320, readHits: 160, writes: 160, writeHitsUncommitted: 1, writeHitsCommitted: 2, writesAround: 3, writesAllocate: 160, writesBlockedOnFreelist: 4, flushes: 5, discards: 6 });
    expect(parseWritecacheStatus('-5 2040 2040 0').error).to.equal(-5);
    expect(parseWritecacheStatus('-5 2040 2040 0').stats).to.equal(undefined);
    expect(parseWritecacheStatus('0 1 1 0 0 0 0 0 0 0 0 0 0 0 7').extra).to.deep.equal(['7']);
    expect(fieldOf(() => parseWritecacheStatus('0 2040 1880'))).to.equal('writeback blocks');
    expect(fieldOf(() => parseWritecacheStatus('x 2040 1880 0'))).to.equal('error');
    expect(fieldOf(() => parseWritecacheStatus('0 2040 1880 0 320 160'))).to.equal('writes');
    const [row] = parseStatus('0 65536 writecache 0 2040 1880 0 320 160 160 0 0 0 160 0 0 0');
    expect(row?.status.known && row.status.type === 'writecache' && row.status.freeBlocks).to.equal(1880);
  });

  it('makes the messages the kernel takes', () => {
    expect([writecacheMessages.flush(), writecacheMessages.flushOnSuspend(), writecacheMessages.cleaner(), writecacheMessages.clearStats()]).to.deep.equal(['flush', 'flush_on_suspend', 'cleaner', 'clear_stats']);
  });

  it('property: random valid targets round-trip through format and parse', () => {
    const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
    fc.assert(
      fc.property(
        fc.record({
          mode: fc.constantFrom('pmem' as const, 'ssd' as const),
          originDevice: devArb,
          cacheDevice: devArb,
          blockSize: fc.constantFrom(512, 1024, 2048, 4096),
          startSector: opt(fc.maxSafeNat()),
          highWatermark: opt(fc.integer({ min: 50, max: 100 })),
          lowWatermark: opt(fc.integer({ min: 0, max: 45 })),
          writebackJobs: opt(fc.nat(0xffffffff)),
          autocommitBlocks: opt(fc.nat(0xffffffff)),
          autocommitTime: opt(fc.nat(3600000)),
          maxAge: opt(fc.nat(86400000)),
          cleaner: fc.boolean(),
          fua: opt(fc.boolean()),
          metadataOnly: fc.boolean(),
          pauseWriteback: opt(fc.nat(60000)),
        }),
        (o) => {
          const t = targets.writecache({ ...o, fua: o.mode === 'pmem' ? o.fua : undefined, pauseWriteback: o.mode === 'ssd' ? o.pauseWriteback : undefined });
          expect(parseWritecache(t.params)).to.deep.equal(t);
          const line = `0 65536 writecache ${t.params}`;
          expect(Table.parse(line).toString()).to.equal(line);
        },
      ),
    );
  });

  it('property: random and mutated lines never crash or hang, and fail only with DmParseError', () => {
    expectOnlyParseErrors([parseWritecache, parseWritecacheStatus], ['s 7:27 7:29 4096 12 start_sector 16 high_watermark 60 low_watermark 40 writeback_jobs 128 autocommit_blocks 32 autocommit_time 1000', 'p 7:0 7:1 512 3 max_age 9 cleaner nofua', '0 2040 1880 0 320 160 160 0 0 0 160 0 0 0']);
  });
});
