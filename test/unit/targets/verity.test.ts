import { expect } from 'chai';
import fc from 'fast-check';
import { Table, parseStatus, targets } from '../../../ts/index';
import { parseVerity, parseVerityStatus } from '../../../ts/targets/verity';
import { devArb, fieldOf, expectOnlyParseErrors } from './property';

const ROOT = '161611a08bea59b7cd86efa6f4e5bca4e65f2ecfb33fcbdc0cb74264b0c7c589';
const SALT = '3de0a3c12830b91e2f4e8d858aa96621b6898a5e68fccbf1929e93a2c0a3ee82';
const base = { dataDevice: '7:6', hashDevice: '7:7', dataBlockSize: 4096, hashBlockSize: 4096, dataBlocks: 2048, hashStartBlock: 1, algorithm: 'sha256', digest: ROOT, salt: SALT };
const head = `1 7:6 7:7 4096 4096 2048 1 sha256 ${ROOT} ${SALT}`;

describe('targets: verity', () => {
  it('builds the kernel params from typed options, in the kernel\'s order', () => {
    expect(targets.verity(base).params).to.equal(head);
    expect(targets.verity({ ...base, version: 0, salt: null }).params).to.equal(`0 7:6 7:7 4096 4096 2048 1 sha256 ${ROOT} -`);
    expect(targets.verity({ ...base, salt: undefined }).salt).to.equal(null);
    // The kernel prints digests and salts in lower case.
    expect(targets.verity({ ...base, digest: ROOT.toUpperCase(), salt: 'AB' }).params).to.equal(`1 7:6 7:7 4096 4096 2048 1 sha256 ${ROOT} ab`);
    const every = targets.verity({
      ...base,
      rootHashSigKeyDesc: 'verity:root',
      fec: { device: { major: 7, minor: 8 }, roots: 2, start: 100, blocks: 2100 },
      tryVerifyInTasklet: true,
      checkAtMostOnce: true,
      ignoreZeroBlocks: true,
      onError: 'panic',
      onCorruption: 'restart',
    });
    expect(every.params).to.equal(
      `${head} 15 restart_on_corruption panic_on_error ignore_zero_blocks check_at_most_once try_verify_in_tasklet use_fec_from_device 7:8 fec_blocks 2100 fec_start 100 fec_roots 2 root_hash_sig_key_desc verity:root`,
    );
    expect(every).to.deep.include({ onCorruption: 'restart', onError: 'panic', ignoreZeroBlocks: true, checkAtMostOnce: true, tryVerifyInTasklet: true, rootHashSigKeyDesc: 'verity:root' });
    expect(every.fec).to.deep.equal({ device: '7:8', blocks: 2100, start: 100, roots: 2 });
    expect(targets.verity({ ...base, onCorruption: 'ignore' }).params).to.equal(`${head} 1 ignore_corruption`);
    expect(targets.verity({ ...base, onCorruption: 'panic', onError: 'restart' }).params).to.equal(`${head} 2 panic_on_corruption restart_on_error`);
  });

  it('refuses bad options with the field named, before any ioctl', () => {
    expect(() => targets.verity({ ...base, version: 2 as never })).to.throw(RangeError, /verity\.version/);
    expect(() => targets.verity({ ...base, dataBlockSize: 3000 })).to.throw(RangeError, /verity\.dataBlockSize/);
    expect(() => targets.verity({ ...base, hashBlockSize: 256 })).to.throw(RangeError, /verity\.hashBlockSize/);
    expect(() => targets.verity({ ...base, dataBlocks: -1 })).to.throw(RangeError, /verity\.dataBlocks/);
    expect(() => targets.verity({ ...base, hashStartBlock: 0.5 })).to.throw(RangeError, /verity\.hashStartBlock/);
    expect(() => targets.verity({ ...base, algorithm: 'sha 256' })).to.throw(RangeError, /verity\.algorithm/);
    expect(() => targets.verity({ ...base, digest: 'abc' })).to.throw(RangeError, /verity\.digest/);
    expect(() => targets.verity({ ...base, digest: 'xyzw' })).to.throw(RangeError, /verity\.digest/);
    expect(() => targets.verity({ ...base, digest: 7 as never })).to.throw(TypeError, /verity\.digest/);
    expect(() => targets.verity({ ...base, salt: '-' })).to.throw(RangeError, /verity\.salt/);
    expect(() => targets.verity({ ...base, onCorruption: 'eio' as never })).to.throw(RangeError, /verity\.onCorruption/);
    expect(() => targets.verity({ ...base, onError: 'ignore' as never })).to.throw(RangeError, /verity\.onError/);
    expect(() => targets.verity({ ...base, ignoreZeroBlocks: 1 as never })).to.throw(TypeError, /verity\.ignoreZeroBlocks/);
    expect(() => targets.verity({ ...base, fec: { device: '7:8', roots: 1, start: 0, blocks: 1 } })).to.throw(RangeError, /verity\.fec\.roots/);
    expect(() => targets.verity({ ...base, fec: { device: '7:8', roots: 25, start: 0, blocks: 1 } })).to.throw(RangeError, /verity\.fec\.roots/);
    expect(() => targets.verity({ ...base, fec: { device: '7:8', roots: 2, start: 0 } as never })).to.throw(/verity\.fec\.blocks/);
    expect(() => targets.verity({ ...base, fec: { device: '7:8', roots: 2, start: 0, blocks: 1, parity: 1 } as never })).to.throw(TypeError, /unknown option "parity"/);
    expect(() => targets.verity({ ...base, hashBlockSize: 1024, fec: { device: '7:8', roots: 2, start: 0, blocks: 1 } })).to.throw(RangeError, /verity\.hashBlockSize/);
    expect(() => targets.verity({ ...base, rootHashSigKeyDesc: 'a key' })).to.throw(RangeError, /verity\.rootHashSigKeyDesc/);
    expect(() => targets.verity({ ...base, readOnly: true } as never)).to.throw(TypeError, /unknown option "readOnly"/);
  });

  it('parses what users and the kernel write: options in any order and case come back in the kernel\'s', () => {
    expect(parseVerity(head).params).to.equal(head);
    expect(parseVerity(`${head} 0`).params).to.equal(head);
    expect(parseVerity(`${head} 2 ignore_zero_blocks ignore_corruption`).params).to.equal(`${head} 2 ignore_corruption ignore_zero_blocks`);
    expect(parseVerity(`${head} 1 Check_At_Most_Once`).checkAtMostOnce).to.equal(true);
    const fec = parseVerity(`${head} 8 fec_roots 2 use_fec_from_device 7:8 fec_start 100 fec_blocks 2100`);
    expect(fec.params).to.equal(`${head} 8 use_fec_from_device 7:8 fec_blocks 2100 fec_start 100 fec_roots 2`);
    expect(fec.fec).to.deep.equal({ device: '7:8', blocks: 2100, start: 100, roots: 2 });
    expect(parseVerity(`0 7:8 7:9 1024 4096 4096 1 sha256 ${ROOT} -`)).to.deep.include({ version: 0, dataBlockSize: 1024, hashBlockSize: 4096, salt: null });
    expect(parseVerity(`1 /dev/sda1 /dev/sda2 4096 4096 262144 1 sha256 ${ROOT.toUpperCase()} 1234`).digest).to.equal(ROOT);
    expect(fieldOf(() => parseVerity(`2 7:6 7:7 4096 4096 2048 1 sha256 ${ROOT} -`))).to.equal('version');
    expect(fieldOf(() => parseVerity(`1 sda 7:7 4096 4096 2048 1 sha256 ${ROOT} -`))).to.equal('dev');
    expect(fieldOf(() => parseVerity(`1 7:6 x 4096 4096 2048 1 sha256 ${ROOT} -`))).to.equal('hash_dev');
    expect(fieldOf(() => parseVerity(`1 7:6 7:7 0 4096 2048 1 sha256 ${ROOT} -`))).to.equal('data_block_size');
    expect(fieldOf(() => parseVerity(`1 7:6 7:7 3000 4096 2048 1 sha256 ${ROOT} -`))).to.equal('params');
    expect(fieldOf(() => parseVerity(`1 7:6 7:7 4096 4096 x 1 sha256 ${ROOT} -`))).to.equal('num_data_blocks');
    expect(fieldOf(() => parseVerity(`1 7:6 7:7 4096 4096 2048 -1 sha256 ${ROOT} -`))).to.equal('hash_start_block');
    expect(fieldOf(() => parseVerity('1 7:6 7:7 4096 4096 2048 1 sha256 abc -'))).to.equal('digest');
    expect(fieldOf(() => parseVerity(`1 7:6 7:7 4096 4096 2048 1 sha256 ${ROOT} xyz`))).to.equal('salt');
    expect(fieldOf(() => parseVerity(`1 7:6 7:7 4096 4096 2048 1 sha256 ${ROOT}`))).to.equal('salt');
    expect(fieldOf(() => parseVerity(`${head} 2 ignore_corruption`))).to.equal('opt_params count');
    expect(fieldOf(() => parseVerity(`${head} 1 turbo`))).to.equal('opt_params');
    expect(fieldOf(() => parseVerity(`${head} 2 ignore_corruption restart_on_corruption`))).to.equal('corruption mode');
    expect(fieldOf(() => parseVerity(`${head} 2 restart_on_error panic_on_error`))).to.equal('error mode');
    expect(fieldOf(() => parseVerity(`${head} 2 ignore_zero_blocks ignore_zero_blocks`))).to.equal('ignore_zero_blocks');
    expect(fieldOf(() => parseVerity(`${head} 2 use_fec_from_device 7:8`))).to.equal('opt_params');
    expect(fieldOf(() => parseVerity(`${head} 2 fec_roots 30`))).to.equal('fec_roots');
    expect(fieldOf(() => parseVerity(`${head} 1 fec_roots`))).to.equal('fec_roots');
    expect(fieldOf(() => parseVerity(`${head} 1 root_hash_sig_key_desc`))).to.equal('root_hash_sig_key_desc');
    expect(fieldOf(() => parseVerity(`1 7:6 7:7 4096 1024 2048 1 sha256 ${ROOT} - 8 use_fec_from_device 7:8 fec_blocks 1 fec_start 0 fec_roots 2`))).to.equal('params');
  });

  it('checks a row\'s length against the data blocks before any ioctl', () => {
    const target = targets.verity(base);
    expect(new Table([{ start: 0, length: 16384, target }]).size).to.equal(16384);
    expect(() => new Table([{ start: 0, length: 16392, target }])).to.throw(RangeError, /at most 16384 sectors/);
  });

  it('reads the status: V or C, and the FEC count of newer kernels', () => {
    expect(parseVerityStatus('V')).to.deep.include({ type: 'verity', known: true, corrupted: false, fecCorrected: undefined, extra: [] });
    expect(parseVerityStatus('C').corrupted).to.equal(true);
    expect(parseVerityStatus('V -').fecCorrected).to.equal(null);
    expect(parseVerityStatus('C 12').fecCorrected).to.equal(12);
    expect(parseVerityStatus('V - new').extra).to.deep.equal(['new']);
    expect(fieldOf(() => parseVerityStatus(''))).to.equal('state');
    expect(fieldOf(() => parseVerityStatus('X'))).to.equal('state');
    expect(fieldOf(() => parseVerityStatus('V x'))).to.equal('fec corrected');
    const [row] = parseStatus('0 16384 verity C');
    expect(row?.status.known && row.status.type === 'verity' && row.status.corrupted).to.equal(true);
  });

  it('property: random valid targets round-trip through format and parse', () => {
    const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
    const hexBytes = (max: number) => fc.uint8Array({ minLength: 1, maxLength: max }).map((b) => Buffer.from(b).toString('hex'));
    const size = fc.constantFrom(512, 1024, 2048, 4096, 65536);
    fc.assert(
      fc.property(
        fc.record({
          version: fc.constantFrom(0 as const, 1 as const),
          dataDevice: devArb,
          hashDevice: devArb,
          dataBlockSize: size,
          hashBlockSize: size,
          dataBlocks: fc.integer({ min: 8, max: Number.MAX_SAFE_INTEGER }),
          hashStartBlock: fc.maxSafeNat(),
          algorithm: fc.constantFrom('sha256', 'sha1', 'sha512', 'blake2b-256'),
          digest: hexBytes(64),
          salt: fc.option(hexBytes(256), { nil: null }),
          onCorruption: opt(fc.constantFrom('ignore' as const, 'restart' as const, 'panic' as const)),
          onError: opt(fc.constantFrom('restart' as const, 'panic' as const)),
          ignoreZeroBlocks: fc.boolean(),
          checkAtMostOnce: fc.boolean(),
          tryVerifyInTasklet: fc.boolean(),
          fec: opt(fc.record({ device: devArb, blocks: fc.maxSafeNat(), start: fc.maxSafeNat(), roots: fc.integer({ min: 2, max: 24 }) })),
          rootHashSigKeyDesc: opt(fc.stringMatching(/^[a-z0-9:._-]{1,20}$/)),
        }),
        (o) => {
          const t = targets.verity({ ...o, hashBlockSize: o.fec === undefined ? o.hashBlockSize : o.dataBlockSize });
          expect(parseVerity(t.params)).to.deep.equal(t);
          const line = `0 8 verity ${t.params}`;
          expect(Table.parse(line).toString()).to.equal(line);
        },
      ),
    );
  });

  it('property: random and mutated lines never crash or hang, and fail only with DmParseError', () => {
    expectOnlyParseErrors([parseVerity, parseVerityStatus], [
        `${head} 2 ignore_corruption ignore_zero_blocks`,
        `${head} 11 restart_on_corruption check_at_most_once try_verify_in_tasklet use_fec_from_device 7:8 fec_blocks 2100 fec_start 100 fec_roots 2`,
        `0 7:8 7:9 1024 4096 4096 1 sha256 ${ROOT} - 2 root_hash_sig_key_desc k`,
        'V',
        'C -',
      ]);
  });
});
