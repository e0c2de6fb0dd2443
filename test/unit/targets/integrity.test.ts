import { expect } from 'chai';
import fc from 'fast-check';
import { INTEGRITY_MAX_TAG_SIZE, Table, parseStatus, targets } from '../../../ts/index';
import { parseIntegrity, parseIntegrityStatus } from '../../../ts/targets/integrity';
import { devArb, fieldOf, expectOnlyParseErrors } from './property';

const K = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
const base = { device: '7:0', offset: 0, tagSize: 4, mode: 'journal' as const };

describe('targets: integrity', () => {
  it('builds the kernel params from typed options, in the kernel\'s order', () => {
    expect(targets.integrity(base).params).to.equal('7:0 0 4 J 0');
    expect(targets.integrity({ ...base, internalHash: 'crc32c', commitTime: 10000, journalWatermark: 50, bufferSectors: 128, interleaveSectors: 32768, journalSectors: 352 }).params).to.equal(
      '7:0 0 4 J 6 journal_sectors:352 interleave_sectors:32768 buffer_sectors:128 journal_watermark:50 commit_time:10000 internal_hash:crc32c',
    );
    const every = targets.integrity({
      device: { major: 7, minor: 1 },
      offset: 16,
      tagSize: 32,
      mode: 'bitmap',
      journalMac: { name: 'hmac(sha256)', key: K },
      journalCrypt: { name: 'cbc(aes)', key: K },
      internalHash: { name: 'hmac(sha256)', key: K },
      legacyRecalculate: true,
      fixHmac: true,
      fixPadding: true,
      bitmapFlushInterval: 5000,
      sectorsPerBit: 65536,
      bufferSectors: 64,
      allowDiscards: true,
      resetRecalculate: true,
      recalculate: true,
      blockSize: 4096,
      metaDevice: '7:2',
      journalSectors: 1000,
      interleaveSectors: 1,
      journalWatermark: 60,
      commitTime: 500,
    });
    expect(every.params).to.equal(
      `7:1 16 32 B 18 meta_device:7:2 block_size:4096 recalculate reset_recalculate allow_discards journal_sectors:1000 interleave_sectors:1 buffer_sectors:64 journal_watermark:60 commit_time:500 sectors_per_bit:65536 bitmap_flush_interval:5000 fix_padding fix_hmac legacy_recalculate internal_hash:hmac(sha256):${K} journal_crypt:cbc(aes):${K} journal_mac:hmac(sha256):${K}`,
    );
    expect(every).to.deep.include({ type: 'integrity', device: '7:1', offset: 16, tagSize: 32, mode: 'bitmap', metaDevice: '7:2', blockSize: 4096, recalculate: true, resetRecalculate: true });
    expect(every.internalHash).to.deep.equal({ name: 'hmac(sha256)', key: K });
    expect(targets.integrity({ ...base, tagSize: null, internalHash: 'sha256' }).params).to.equal('7:0 0 - J 1 internal_hash:sha256');
    expect(targets.integrity({ ...base, tagSize: undefined, internalHash: { name: 'sha256' } }).tagSize).to.equal(null);
    expect(targets.integrity({ ...base, mode: 'direct' }).params).to.equal('7:0 0 4 D 0');
    expect(targets.integrity({ ...base, mode: 'recovery' }).params).to.equal('7:0 0 4 R 0');
    expect(targets.integrity({ ...base, mode: 'inline', internalHash: 'crc32c' }).params).to.equal('7:0 0 4 I 1 internal_hash:crc32c');
    expect(INTEGRITY_MAX_TAG_SIZE).to.equal(424);
  });

  it('refuses bad options with the field named, before any ioctl', () => {
    expect(() => targets.integrity({ ...base, mode: 'J' as never })).to.throw(RangeError, /integrity\.mode/);
    expect(() => targets.integrity({ ...base, tagSize: 0 })).to.throw(RangeError, /integrity\.tagSize/);
    expect(() => targets.integrity({ ...base, tagSize: 425 })).to.throw(RangeError, /integrity\.tagSize/);
    expect(() => targets.integrity({ ...base, tagSize: null })).to.throw(TypeError, /integrity\.tagSize/);
    expect(() => targets.integrity({ ...base, offset: -1 })).to.throw(RangeError, /integrity\.offset/);
    expect(() => targets.integrity({ ...base, blockSize: 8192 })).to.throw(RangeError, /integrity\.blockSize/);
    expect(() => targets.integrity({ ...base, blockSize: 1000 })).to.throw(RangeError, /integrity\.blockSize/);
    expect(() => targets.integrity({ ...base, journalWatermark: 101 })).to.throw(RangeError, /integrity\.journalWatermark/);
    expect(() => targets.integrity({ ...base, journalSectors: 2 ** 32 })).to.throw(RangeError, /integrity\.journalSectors/);
    expect(() => targets.integrity({ ...base, bitmapFlushInterval: 2 ** 32 - 1 })).to.throw(RangeError, /integrity\.bitmapFlushInterval/);
    expect(() => targets.integrity({ ...base, sectorsPerBit: 1.5 })).to.throw(RangeError, /integrity\.sectorsPerBit/);
    expect(() => targets.integrity({ ...base, recalculate: 'yes' as never })).to.throw(TypeError, /integrity\.recalculate/);
    expect(() => targets.integrity({ ...base, metaDevice: 'sdb' })).to.throw(/integrity\.metaDevice/);
    expect(() => targets.integrity({ ...base, mode: 'bitmap' })).to.throw(TypeError, /integrity\.internalHash/);
    expect(() => targets.integrity({ ...base, allowDiscards: true })).to.throw(TypeError, /integrity\.internalHash/);
    expect(() => targets.integrity({ ...base, mode: 'inline' })).to.throw(TypeError, /integrity\.internalHash/);
    expect(() => targets.integrity({ ...base, mode: 'inline', internalHash: 'crc32c', metaDevice: '7:1' })).to.throw(RangeError, /integrity\.metaDevice/);
    expect(() => targets.integrity({ ...base, mode: 'inline', internalHash: 'crc32c', journalMac: 'crc32c' })).to.throw(RangeError, /integrity\.journalMac/);
    expect(() => targets.integrity({ ...base, internalHash: 'hmac:sha256' })).to.throw(RangeError, /integrity\.internalHash\.name/);
    expect(() => targets.integrity({ ...base, internalHash: '' })).to.throw(RangeError, /integrity\.internalHash\.name/);
    expect(() => targets.integrity({ ...base, internalHash: { name: 'hmac(sha256)', key: 'abc' } })).to.throw(RangeError, /integrity\.internalHash\.key/);
    expect(() => targets.integrity({ ...base, internalHash: { name: 'hmac(sha256)', key: 'zz' } })).to.throw(RangeError, /integrity\.internalHash\.key/);
    expect(() => targets.integrity({ ...base, internalHash: { name: 'crc32c', salt: '00' } as never })).to.throw(TypeError, /unknown option "salt"/);
    expect(() => targets.integrity({ ...base, internalHash: 7 as never })).to.throw(TypeError, /integrity\.internalHash/);
    expect(() => targets.integrity({ ...base, journal: true } as never)).to.throw(TypeError, /unknown option "journal"/);
  });

  it('never quotes an algorithm key: not in the builders\' errors, the parser\'s (its text zeroed), nor a table\'s, whose rows it hides and marks secret', () => {
    const messageOf = (f: () => unknown): string => {
      try {
        f();
      } catch (e) {
        return e instanceof Error ? e.message : String(e);
      }
      throw new Error('did not throw');
    };
    const badKey = K.slice(0, 63);
    for (const f of [
      () => targets.integrity({ ...base, internalHash: { name: 'hmac(sha256)', key: badKey } }),
      () => targets.integrity({ ...base, journalMac: { name: 'hmac(sha256)', key: `${K}zz` } }),
      () => parseIntegrity(`7:0 0 32 J 1 internal_hash:hmac(sha256):${badKey}`),
      () => parseIntegrity(`7:0 0 32 J 2 internal_hash:hmac(sha256):${K} bogus`),
      () => parseIntegrity(`7:0 0 32 J 2 internal_hash:hmac(sha256):${K} internal_hash:hmac(sha256):${K}`),
      () => parseIntegrity(`7:0 0 32 J 1 internal_hsh:hmac(sha256):${K}`),
      () => parseIntegrity(`7:0 0 32 Q 1 journal_crypt:cbc(aes):${K}`),
      () => Table.parse(`0 8 integrity 7:0 0 32 J 2 internal_hash:hmac(sha256):${K} bogus`),
      () => Table.parse(`0 8 integrity 7:0 0 32 B 1 journal_mac:hmac(sha256):${K}`),
      () => Table.parse(`0 8 linear 7:0 0\n8 8 integrity 7:0 0 32 J 1 internal_hash:hmac(sha256):${K}\n99 8 zero`),
      () => Table.parse(`0 8 linear 7:0 0\n9 8 integrity 7:0 0 32 J 1 internal_hsh:hmac(sha256):${K}`),
      // Miscounted, misplaced: the words that messages quote.
      () => parseIntegrity(`7:0 0 32 J 1 journal_sectors:1000 internal_hash:hmac(sha256):${K}`),
      () => Table.parse(`0 8 integrity 7:0 0 32 J 1 journal_sectors:1000 internal_hash:hmac(sha256):${K}`),
      () => parseIntegrity(`7:0 0 32 J internal_hash:hmac(sha256):${K}`),
      () => parseIntegrity(`7:0 0 32 internal_hash:hmac(sha256):${K}`),
      () => parseIntegrity(`7:0 0 32 J 1 journal_sectors:internal_hash:${K}`),
    ]) {
      const m = messageOf(f);
      expect(m).to.not.include(K.slice(8, 40));
      expect(m).to.not.include(badKey.slice(8, 40));
    }
    expect(messageOf(() => parseIntegrity(`7:0 0 32 J 2 internal_hash:hmac(sha256):${K} bogus`))).to.include(`internal_hash:hmac(sha256):${'0'.repeat(64)} bogus`);
    const keyed = Table.parse(`0 8 integrity 7:0 0 32 J 2 journal_sectors:1000 internal_hash:hmac(sha256):${K}\n8 8 integrity 7:0 0 4 J 1 internal_hash:crc32c\n16 8 zero`);
    expect(keyed.redacted()).to.equal(`0 8 integrity 7:0 0 32 J 2 journal_sectors:1000 internal_hash:hmac(sha256):${'0'.repeat(64)}\n8 8 integrity 7:0 0 4 J 1 internal_hash:crc32c\n16 8 zero`);
    expect(keyed.toString()).to.include(K);
    expect(keyed.holdsSecrets).to.equal(true);
    expect(Table.parse('0 8 integrity 7:0 0 4 J 1 internal_hash:crc32c\n8 8 zero').holdsSecrets).to.equal(false);
    expect(Table.fromKernelRows([{ start: 0, length: 8, type: 'integrity', params: `7:0 0 32 J 1 internal_hsh:hmac(sha256):${K}` }]).holdsSecrets).to.equal(true);
    expect(Table.parse('0 8 integrity 7:0 0 4 J 2 meta_device:7:1 internal_hash:crc32c').holdsSecrets).to.equal(false);
  });

  it('parses what users and the kernel write: options in any order come back in the kernel\'s', () => {
    const kernel = `7:2 0 32 J 11 allow_discards journal_sectors:968 interleave_sectors:32768 buffer_sectors:128 journal_watermark:50 commit_time:500 fix_padding fix_hmac internal_hash:hmac(sha256):${K} journal_crypt:cbc(aes):${K} journal_mac:hmac(sha256):${K}`;
    const t = parseIntegrity(kernel);
    expect(t.params).to.equal(kernel);
    expect(t).to.deep.include({ allowDiscards: true, journalSectors: 968, commitTime: 500, fixPadding: true, fixHmac: true, mode: 'journal' });
    expect(t.journalCrypt).to.deep.equal({ name: 'cbc(aes)', key: K });
    expect(parseIntegrity('7:0 0 4 J 3 internal_hash:crc32c meta_device:7:4 recalculate').params).to.equal('7:0 0 4 J 3 meta_device:7:4 recalculate internal_hash:crc32c');
    expect(parseIntegrity('7:0 0 4 J 9 meta_device:7:4 recalculate journal_sectors:352 interleave_sectors:1 buffer_sectors:64 journal_watermark:50 commit_time:10000 legacy_recalculate internal_hash:crc32c').metaDevice).to.equal('7:4');
    expect(parseIntegrity('7:0 0 - J 1 internal_hash:sha256').tagSize).to.equal(null);
    expect(parseIntegrity('/dev/loop0 8 4 D 0')).to.deep.include({ device: '/dev/loop0', offset: 8, mode: 'direct' });
    expect(parseIntegrity('7:0 0 4 R 3 journal_sectors:352 interleave_sectors:32768 buffer_sectors:128').mode).to.equal('recovery');
    // The key's case is kept: the kernel prints it back as it was written.
    expect(parseIntegrity('7:0 0 32 J 1 internal_hash:hmac(sha256):ABCD').internalHash?.key).to.equal('ABCD');
    expect(fieldOf(() => parseIntegrity('7:0 0 4 X 0'))).to.equal('mode');
    expect(fieldOf(() => parseIntegrity('7:0 x 4 J 0'))).to.equal('offset');
    expect(fieldOf(() => parseIntegrity('7:0 0 0 J 0'))).to.equal('tag size');
    expect(fieldOf(() => parseIntegrity('7:0 0 500 J 0'))).to.equal('tag size');
    expect(fieldOf(() => parseIntegrity('sda 0 4 J 0'))).to.equal('dev');
    expect(fieldOf(() => parseIntegrity('7:0 0 4 J'))).to.equal('opt params count');
    expect(fieldOf(() => parseIntegrity('7:0 0 4 J 2 recalculate'))).to.equal('opt params count');
    expect(fieldOf(() => parseIntegrity('7:0 0 4 J 0 extra'))).to.equal('params');
    expect(fieldOf(() => parseIntegrity('7:0 0 4 J 1 turbo'))).to.equal('opt params');
    expect(fieldOf(() => parseIntegrity('7:0 0 4 J 1 recalculate:1'))).to.equal('opt params');
    expect(fieldOf(() => parseIntegrity('7:0 0 4 J 1 journal_sectors'))).to.equal('opt params');
    expect(fieldOf(() => parseIntegrity('7:0 0 4 J 1 journal_sectors:x'))).to.equal('journal_sectors');
    expect(fieldOf(() => parseIntegrity('7:0 0 4 J 1 journal_watermark:101'))).to.equal('journal_watermark');
    expect(fieldOf(() => parseIntegrity('7:0 0 4 J 1 journal_sectors:4294967296'))).to.equal('journal_sectors');
    expect(fieldOf(() => parseIntegrity('7:0 0 4 J 2 commit_time:1 commit_time:2'))).to.equal('commit_time');
    expect(fieldOf(() => parseIntegrity('7:0 0 4 J 1 meta_device:sdb'))).to.equal('meta_device');
    expect(fieldOf(() => parseIntegrity('7:0 0 4 J 1 internal_hash:'))).to.equal('internal_hash');
    expect(fieldOf(() => parseIntegrity('7:0 0 4 J 1 internal_hash:hmac(sha256):abc'))).to.equal('internal_hash');
    expect(fieldOf(() => parseIntegrity('7:0 0 4 J 1 block_size:1000'))).to.equal('params');
    expect(fieldOf(() => parseIntegrity('7:0 0 4 B 0'))).to.equal('params');
    expect(fieldOf(() => parseIntegrity('7:0 0 - J 0'))).to.equal('params');
  });

  it('reads the status: mismatches, provided data sectors, the recalculation\'s sector or -', () => {
    expect(parseIntegrityStatus('0 64664 -')).to.deep.include({ type: 'integrity', known: true, mismatches: 0, providedDataSectors: 64664, recalculatingSector: null, extra: [] });
    expect(parseIntegrityStatus('3 65536 1024')).to.deep.include({ mismatches: 3, recalculatingSector: 1024 });
    expect(parseIntegrityStatus('0 1 - new').extra).to.deep.equal(['new']);
    expect(fieldOf(() => parseIntegrityStatus('0 64664'))).to.equal('recalculating sector');
    expect(fieldOf(() => parseIntegrityStatus('x 64664 -'))).to.equal('mismatches');
    expect(fieldOf(() => parseIntegrityStatus('0 -1 -'))).to.equal('provided data sectors');
    expect(fieldOf(() => parseIntegrityStatus('0 1 99999999999999999999'))).to.equal('recalculating sector');
    const [row] = parseStatus('0 64664 integrity 1 64664 -');
    expect(row?.status.known && row.status.type === 'integrity' && row.status.mismatches).to.equal(1);
  });

  it('property: random valid targets round-trip through format and parse', () => {
    const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
    const hexKey = fc.uint8Array({ minLength: 1, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));
    const alg = fc.oneof(fc.constantFrom('crc32c', 'sha256', 'sha1'), fc.record({ name: fc.constantFrom('hmac(sha256)', 'cbc(aes)', 'xts(aes)'), key: hexKey }));
    fc.assert(
      fc.property(
        fc.record({
          device: devArb,
          offset: fc.maxSafeNat(),
          tagSize: fc.option(fc.integer({ min: 1, max: 424 }), { nil: null }),
          mode: fc.constantFrom('journal' as const, 'bitmap' as const, 'direct' as const, 'recovery' as const),
          metaDevice: opt(devArb),
          blockSize: opt(fc.constantFrom(512, 1024, 2048, 4096)),
          recalculate: fc.boolean(),
          resetRecalculate: fc.boolean(),
          allowDiscards: fc.boolean(),
          journalSectors: opt(fc.nat(0xffffffff)),
          interleaveSectors: opt(fc.nat(0xffffffff)),
          bufferSectors: opt(fc.nat(0xffffffff)),
          journalWatermark: opt(fc.nat(100)),
          commitTime: opt(fc.nat(0xffffffff)),
          sectorsPerBit: opt(fc.maxSafeNat()),
          bitmapFlushInterval: opt(fc.nat(0xfffffffe)),
          fixPadding: fc.boolean(),
          fixHmac: fc.boolean(),
          legacyRecalculate: fc.boolean(),
          internalHash: alg,
          journalCrypt: opt(alg),
          journalMac: opt(alg),
        }),
        (o) => {
          const t = targets.integrity(o);
          expect(parseIntegrity(t.params)).to.deep.equal(t);
          const line = `0 65536 integrity ${t.params}`;
          expect(Table.parse(line).toString()).to.equal(line);
        },
      ),
    );
  });

  it('property: random and mutated lines never crash or hang, and fail only with DmParseError', () => {
    expectOnlyParseErrors([parseIntegrity, parseIntegrityStatus], [
        `7:2 0 32 J 11 allow_discards journal_sectors:968 interleave_sectors:32768 buffer_sectors:128 journal_watermark:50 commit_time:500 fix_padding fix_hmac internal_hash:hmac(sha256):${K} journal_crypt:cbc(aes):${K} journal_mac:hmac(sha256):${K}`,
        '7:1 0 32 B 7 block_size:4096 journal_sectors:264 interleave_sectors:32768 buffer_sectors:128 sectors_per_bit:65536 bitmap_flush_interval:5000 internal_hash:sha256',
        '7:3 0 - J 4 meta_device:7:4 recalculate reset_recalculate internal_hash:crc32c',
        '0 65536 65536',
        '1 64664 -',
      ]);
  });
});
