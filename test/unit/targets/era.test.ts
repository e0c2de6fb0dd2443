import { expect } from 'chai';
import fc from 'fast-check';
import { Table, eraMessages, parseStatus, targets } from '../../../ts/index';
import { parseEra, parseEraStatus } from '../../../ts/targets/era';
import { devArb, fieldOf, expectOnlyParseErrors } from './property';

describe('targets: era', () => {
  it('builds the kernel params from typed options', () => {
    const t = targets.era({ metadataDevice: '7:2', originDevice: { major: 7, minor: 1 }, blockSize: 128 });
    expect(t).to.deep.include({ type: 'era', metadataDevice: '7:2', originDevice: '7:1', blockSize: 128, params: '7:2 7:1 128' });
    expect(Object.isFrozen(t)).to.equal(true);
    expect(targets.era({ metadataDevice: '/dev/loop0', originDevice: '7:1', blockSize: 24 }).params).to.equal('/dev/loop0 7:1 24');
    expect(targets.era({ metadataDevice: '7:0', originDevice: '7:1', blockSize: 4294967288 }).blockSize).to.equal(4294967288);
  });

  it('refuses bad options with the field named, before any ioctl', () => {
    const devs = { metadataDevice: '7:0', originDevice: '7:1' };
    expect(() => targets.era({ ...devs, blockSize: 12 })).to.throw(RangeError, /Expected a multiple of 8 .* for era\.blockSize but received number 12/);
    expect(() => targets.era({ ...devs, blockSize: 0 })).to.throw(RangeError, /era\.blockSize/);
    expect(() => targets.era({ ...devs, blockSize: 2 ** 32 })).to.throw(RangeError, /era\.blockSize/);
    expect(() => targets.era({ ...devs, blockSize: '128' as never })).to.throw(TypeError, /era\.blockSize/);
    expect(() => targets.era({ ...devs, originDevice: 'sdb', blockSize: 8 })).to.throw(/era\.originDevice/);
    expect(() => targets.era({ originDevice: '7:1', blockSize: 8 } as never)).to.throw(/era\.metadataDevice/);
    expect(() => targets.era({ ...devs, blockSize: 8, era: 1 } as never)).to.throw(TypeError, /unknown option "era"/);
  });

  it('parses what users and the kernel write, refusing malformed params naming the field', () => {
    expect(parseEra('7:0  7:1 128 ')).to.deep.equal(targets.era({ metadataDevice: '7:0', originDevice: '7:1', blockSize: 128 }));
    expect(fieldOf(() => parseEra('7:0 7:1'))).to.equal('block size');
    expect(fieldOf(() => parseEra('7:0 7:1 100'))).to.equal('block size');
    expect(fieldOf(() => parseEra('7:0 7:1 0'))).to.equal('block size');
    expect(fieldOf(() => parseEra('7:0 7:1 4294967296'))).to.equal('block size');
    expect(fieldOf(() => parseEra('7:0 7:1 8 8'))).to.equal('params');
    expect(fieldOf(() => parseEra('x 7:1 8'))).to.equal('metadata dev');
    expect(fieldOf(() => parseEra('7:0 x 8'))).to.equal('origin dev');
    const line = '0 16384 era 7:0 7:1 128';
    expect(Table.parse(line).toString()).to.equal(line);
  });

  it('reads its status: metadata use, the current era, the held root or -, and Error', () => {
    const s = parseEraStatus('8 12/1024 3 43');
    expect(s).to.deep.include({ type: 'era', known: true, failed: false, metadataBlockSize: 8, currentEra: 3, heldMetadataRoot: 43, extra: [] });
    if (s.failed !== false) throw new Error('typed');
    expect(s.metadataBlocks).to.deep.equal({ used: 12, total: 1024 });
    expect(parseEraStatus('8 9/1024 1 -')).to.deep.include({ currentEra: 1, heldMetadataRoot: null });
    expect(parseEraStatus('8 9/1024 4294967295 -')).to.deep.include({ currentEra: 4294967295 });
    expect(parseEraStatus('Error')).to.deep.include({ failed: 'Error', extra: [] });
    expect(parseEraStatus('8 9/1024 1 - later 2').extra).to.deep.equal(['later', '2']);
    expect(fieldOf(() => parseEraStatus('8 9/1024 1'))).to.equal('held metadata root');
    expect(fieldOf(() => parseEraStatus('8 9/1024 1 x'))).to.equal('held metadata root');
    expect(fieldOf(() => parseEraStatus('8 9-1024 1 -'))).to.equal('metadata blocks');
    expect(fieldOf(() => parseEraStatus('8 9/1024 4294967296 -'))).to.equal('current era');
    expect(fieldOf(() => parseEraStatus(''))).to.equal('metadata block size');
    const [row] = parseStatus('0 16384 era 8 12/1024 3 43');
    expect(row?.status.known && row.status.type === 'era' && row.status.failed === false && row.status.heldMetadataRoot).to.equal(43);
  });

  it('makes its three messages', () => {
    expect(eraMessages.checkpoint()).to.equal('checkpoint');
    expect(eraMessages.takeMetadataSnap()).to.equal('take_metadata_snap');
    expect(eraMessages.dropMetadataSnap()).to.equal('drop_metadata_snap');
  });

  it('property: random valid targets round-trip through format and parse', () => {
    fc.assert(
      fc.property(devArb, devArb, fc.integer({ min: 1, max: 536870911 }), (metadataDevice, originDevice, n) => {
        const t = targets.era({ metadataDevice, originDevice, blockSize: n * 8 });
        expect(parseEra(t.params)).to.deep.equal(t);
        const line = `0 65536 era ${t.params}`;
        expect(Table.parse(line).toString()).to.equal(line);
      }),
    );
  });

  it('property: random and mutated lines never crash or hang, and fail only with DmParseError', () => {
    expectOnlyParseErrors([parseEra, parseEraStatus], ['7:0 7:1 128', '8 12/1024 3 43', '8 9/1024 1 -', 'Error']);
  });
});
