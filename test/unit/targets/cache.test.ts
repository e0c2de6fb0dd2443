import { expect } from 'chai';
import fc from 'fast-check';
import { Table, cacheMessages, parseStatus, targets, type CachePolicyKey } from '../../../ts/index';
import { parseCache, parseCacheStatus } from '../../../ts/targets/cache';
import { devArb, fieldOf, expectOnlyParseErrors } from './property';

const devs = { metadataDevice: '7:0', cacheDevice: { major: 7, minor: 1 }, originDevice: '/dev/loop2' };

describe('targets: cache', () => {
  it('builds the kernel params from typed options', () => {
    expect(targets.cache({ ...devs, blockSize: 512 }).params).to.equal('7:0 7:1 /dev/loop2 512 0 smq 0');
    expect(targets.cache({ ...devs, blockSize: 512, mode: 'writeback' }).params).to.equal('7:0 7:1 /dev/loop2 512 1 writeback smq 0');
    const t = targets.cache({ ...devs, blockSize: 256, mode: 'writethrough', metadata2: true, discardPassdown: false, policy: 'mq', policyArgs: { sequential_threshold: 100, random_threshold: 8 } });
    expect(t.params).to.equal('7:0 7:1 /dev/loop2 256 3 writethrough metadata2 no_discard_passdown mq 4 sequential_threshold 100 random_threshold 8');
    expect(t).to.deep.include({ type: 'cache', blockSize: 256, mode: 'writethrough', metadata2: true, discardPassdown: false, policy: 'mq' });
    expect(targets.cache({ ...devs, blockSize: 512, policy: 'cleaner', policyArgs: { migration_threshold: 1024 } }).params).to.equal('7:0 7:1 /dev/loop2 512 0 cleaner 2 migration_threshold 1024');
    expect(targets.cache({ ...devs, blockSize: 512 })).to.deep.include({ mode: 'writeback', discardPassdown: true, metadata2: false, policy: 'smq' });
  });

  it('refuses bad options with the field named, before any ioctl', () => {
    expect(() => targets.cache({ ...devs, blockSize: 32 })).to.throw(RangeError, /cache\.blockSize/);
    expect(() => targets.cache({ ...devs, blockSize: 100 })).to.throw(RangeError, /cache\.blockSize/);
    expect(() => targets.cache({ ...devs, blockSize: 512, mode: 'writearound' as never })).to.throw(RangeError, /cache\.mode/);
    expect(() => targets.cache({ ...devs, blockSize: 512, policy: 'lru' as never })).to.throw(RangeError, /cache\.policy/);
    expect(() => targets.cache({ ...devs, blockSize: 512, policy: 'cleaner', policyArgs: { random_threshold: 4 } })).to.throw(TypeError, /cache\.policyArgs.*unknown option "random_threshold"/);
    expect(() => targets.cache({ ...devs, blockSize: 512, policyArgs: { migration_threshold: -1 } })).to.throw(RangeError, /cache\.policyArgs\.migration_threshold/);
    expect(() => targets.cache({ ...devs, blockSize: 512, policyArgs: { random_threshold: 1 } })).to.throw(TypeError, /unknown option "random_threshold"/);
    expect(() => targets.cache({ ...devs, blockSize: 512, policy: 'mq', policyArgs: { random_threshold: 2 ** 32 } })).to.throw(RangeError, /cache\.policyArgs\.random_threshold/);
    expect(() => targets.cache({ ...devs, blockSize: 512, metadata2: 1 as never })).to.throw(TypeError, /cache\.metadata2/);
    expect(() => targets.cache({ ...devs, originDevice: 'sdb', blockSize: 512 })).to.throw(/cache\.originDevice/);
    expect(() => targets.cache({ ...devs, blockSize: 512, writeback: true } as never)).to.throw(TypeError, /unknown option "writeback"/);
  });

  it('parses what users and the kernel write, keeping the order of features and policy args', () => {
    const t = parseCache('7:18 7:13 7:12 1024 2 metadata2 writeback smq 0');
    expect(t.params).to.equal('7:18 7:13 7:12 1024 2 metadata2 writeback smq 0');
    expect(t.features).to.deep.equal(['metadata2', 'writeback']);
    expect(parseCache('7:17 7:13 7:12 512 0 cleaner 0')).to.deep.include({ mode: 'writeback', policy: 'cleaner' });
    expect(parseCache('7:0 7:1 7:2 512 0 mq 4 write_promote_adjustment 1 migration_threshold 9').policyArgs).to.deep.equal({ write_promote_adjustment: 1, migration_threshold: 9 });
    expect(fieldOf(() => parseCache('7:0 7:1 7:2 100 0 smq 0'))).to.equal('block size');
    expect(fieldOf(() => parseCache('7:0 7:1 7:2 512 1 fast smq 0'))).to.equal('feature args');
    expect(fieldOf(() => parseCache('7:0 7:1 7:2 512 2 writeback passthrough smq 0'))).to.equal('feature args');
    expect(fieldOf(() => parseCache('7:0 7:1 7:2 512 0 lru 0'))).to.equal('policy');
    expect(fieldOf(() => parseCache('7:0 7:1 7:2 512 0 cleaner 2 random_threshold 3'))).to.equal('policy args');
    expect(fieldOf(() => parseCache('7:0 7:1 7:2 512 0 smq 2 random_threshold 3'))).to.equal('policy args');
    expect(fieldOf(() => parseCache('7:0 7:1 7:2 512 0 smq 1 migration_threshold'))).to.equal('policy args count');
    expect(fieldOf(() => parseCache('7:0 7:1 7:2 512 0 smq 2 migration_threshold x'))).to.equal('policy args migration_threshold');
    expect(fieldOf(() => parseCache('7:0 7:1 7:2 512 0 smq'))).to.equal('policy args count');
    expect(fieldOf(() => parseCache('7:0 7:1 7:2 512 0 smq 0 x'))).to.equal('params');
    expect(fieldOf(() => parseCache('7:0 7:1'))).to.equal('origin dev');
  });

  it('reads every status form: counters, features, core and policy args, metadata mode, needs_check, Fail, Error', () => {
    const s = parseCacheStatus('8 7/1024 512 6/64 83 429 24 40 1 6 6 1 writeback 2 migration_threshold 2048 smq 0 rw -');
    if (s.failed !== false) throw new Error('typed');
    expect(s).to.deep.include({ metadataBlockSize: 8, cacheBlockSize: 512, readHits: 83, readMisses: 429, writeHits: 24, writeMisses: 40, demotions: 1, promotions: 6, dirty: 6 });
    expect(s).to.deep.include({ mode: 'writeback', metadata2: false, discardPassdown: true, migrationThreshold: 2048, policy: 'smq', metadataMode: 'rw', needsCheck: false, extra: [] });
    expect(s.metadataBlocks).to.deep.equal({ used: 7, total: 1024 });
    expect(s.cacheBlocks).to.deep.equal({ used: 6, total: 64 });
    const mq = parseCacheStatus('8 9/1024 256 9/128 8 56 0 0 0 9 0 3 metadata2 writethrough no_discard_passdown 2 migration_threshold 2048 mq 10 random_threshold 0 sequential_threshold 0 discard_promote_adjustment 0 read_promote_adjustment 0 write_promote_adjustment 0 ro needs_check');
    expect(mq).to.deep.include({ mode: 'writethrough', metadata2: true, discardPassdown: false, policy: 'mq', metadataMode: 'ro', needsCheck: true });
    if (mq.failed !== false) throw new Error('typed');
    expect(Object.keys(mq.policyArgs)).to.have.length(5);
    expect(parseCacheStatus('Fail')).to.deep.include({ failed: 'Fail' });
    expect(parseCacheStatus('Error')).to.deep.include({ failed: 'Error' });
    expect(parseCacheStatus('8 7/1024 512 0/64 0 0 0 0 0 0 0 1 passthrough 2 migration_threshold 1 cleaner 0 rw - more').extra).to.deep.equal(['more']);
    expect(fieldOf(() => parseCacheStatus('8 7/1024 512 0/64 0 0 0 0 0 0 0 1 metadata2 2 migration_threshold 1 smq 0 rw -'))).to.equal('features');
    expect(fieldOf(() => parseCacheStatus('8 7/1024 512 0/64 0 0 0 0 0 0 0 1 writeback 2 other 1 smq 0 rw -'))).to.equal('core args');
    expect(fieldOf(() => parseCacheStatus('8 7/1024 512 0/64 0 0 0 0 0 0 0 1 writeback 2 migration_threshold 1 smq 0 rx -'))).to.equal('metadata mode');
    expect(fieldOf(() => parseCacheStatus('8 7/1024 512 0/64 0 0 0 0 0 0 0 1 writeback 2 migration_threshold 1 smq 0 rw ok'))).to.equal('needs check');
    expect(fieldOf(() => parseCacheStatus('8 7/1024 512 0/64 0 x 0 0 0 0 0 1 writeback 2 migration_threshold 1 smq 0 rw -'))).to.equal('read misses');
    const [row] = parseStatus('0 65536 cache 8 7/1024 512 6/64 83 429 24 40 0 6 6 1 writeback 2 migration_threshold 2048 smq 0 rw -');
    expect(row?.status.known && row.status.type === 'cache' && row.status.failed === false && row.status.readMisses).to.equal(429);
  });

  it('makes the messages the kernel takes, checking their arguments', () => {
    expect(cacheMessages.invalidateCblocks([0, { begin: 2, end: 5 }])).to.equal('invalidate_cblocks 0 2-5');
    expect(cacheMessages.migrationThreshold(4096)).to.equal('migration_threshold 4096');
    expect(cacheMessages.policyArg('sequential_threshold', 64)).to.equal('sequential_threshold 64');
    expect(() => cacheMessages.invalidateCblocks([])).to.throw(RangeError, /ranges/);
    expect(() => cacheMessages.invalidateCblocks([{ begin: 5, end: 5 }])).to.throw(RangeError, /ranges\[0\]\.end/);
    expect(() => cacheMessages.invalidateCblocks([1, -2])).to.throw(RangeError, /ranges\[1\]/);
    expect(() => cacheMessages.invalidateCblocks(['3' as never])).to.throw(TypeError, /ranges\[0\]/);
    expect(() => cacheMessages.migrationThreshold(1.5)).to.throw(RangeError, /sectorCount/);
    expect(() => cacheMessages.policyArg('speed' as never, 1)).to.throw(RangeError, /key/);
    expect(() => cacheMessages.policyArg('random_threshold', 2 ** 32)).to.throw(RangeError, /value/);
  });

  it('property: random valid targets round-trip through format and parse', () => {
    const keyArb = fc.constantFrom<CachePolicyKey>('migration_threshold', 'random_threshold', 'sequential_threshold', 'discard_promote_adjustment', 'read_promote_adjustment', 'write_promote_adjustment');
    fc.assert(
      fc.property(
        fc.record({
          metadataDevice: devArb,
          cacheDevice: devArb,
          originDevice: devArb,
          blockSize: fc.integer({ min: 1, max: 32768 }).map((n) => n * 64),
          mode: fc.constantFrom(undefined, 'writeback' as const, 'writethrough' as const, 'passthrough' as const),
          metadata2: fc.boolean(),
          discardPassdown: fc.boolean(),
          policy: fc.constantFrom('smq' as const, 'mq' as const, 'cleaner' as const, 'default' as const),
        }),
        fc.uniqueArray(fc.tuple(keyArb, fc.nat(0xffffffff)), { selector: ([k]) => k, maxLength: 6 }),
        (o, pairs) => {
          const args = Object.fromEntries(pairs.filter(([k]) => o.policy === 'mq' || k === 'migration_threshold'));
          const t = targets.cache({ ...o, policyArgs: args });
          expect(parseCache(t.params)).to.deep.equal(t);
          const line = `0 65536 cache ${t.params}`;
          expect(Table.parse(line).toString()).to.equal(line);
        },
      ),
    );
  });

  it('property: random and mutated lines never crash or hang, and fail only with DmParseError', () => {
    expectOnlyParseErrors([parseCache, parseCacheStatus], [
        '7:15 7:13 7:12 256 3 writethrough metadata2 no_discard_passdown mq 4 sequential_threshold 100 random_threshold 8',
        '8 7/1024 512 6/64 83 429 24 40 0 6 6 1 writeback 2 migration_threshold 2048 smq 0 rw -',
        '8 9/1024 256 9/128 8 56 0 0 0 9 0 3 metadata2 writethrough no_discard_passdown 2 migration_threshold 2048 mq 2 random_threshold 0 rw -',
      ]);
  });
});
