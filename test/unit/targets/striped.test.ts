import { expect } from 'chai';
import fc from 'fast-check';
import { Table, parseStatus, targets } from '../../../ts/index';
import { parseStriped, parseStripedStatus } from '../../../ts/targets/striped';
import { devArb, fieldOf, expectOnlyParseErrors } from './property';

describe('targets: striped', () => {
  it('builds the kernel params from typed options', () => {
    const t = targets.striped({ chunkSize: 128, stripes: [{ device: '7:0', offset: 0 }, { device: { major: 7, minor: 1 }, offset: 2048 }] });
    expect(t).to.deep.include({ type: 'striped', chunkSize: 128, params: '2 128 7:0 0 7:1 2048' });
    expect(t.stripes).to.deep.equal([{ device: '7:0', offset: 0 }, { device: '7:1', offset: 2048 }]);
    expect(Object.isFrozen(t.stripes[0])).to.equal(true);
  });

  it('refuses bad options with the field named, before any ioctl', () => {
    expect(() => targets.striped({ chunkSize: 4, stripes: [{ device: '7:0', offset: 0 }] })).to.throw(RangeError, /striped\.chunkSize/);
    expect(() => targets.striped({ chunkSize: 8, stripes: [] })).to.throw(RangeError, /striped\.stripes/);
    expect(() => targets.striped({ chunkSize: 8, stripes: [{ device: 'loop0', offset: 0 }] })).to.throw(/striped\.stripes\[0\]\.device/);
    expect(() => targets.striped({ chunkSize: 8, stripes: [{ device: '7:0', offset: -1 }] })).to.throw(RangeError, /striped\.stripes\[0\]\.offset/);
    expect(() => targets.striped({ chunkSize: 8, stripes: [{ device: '7:0', offset: 0, extra: 1 } as never] })).to.throw(TypeError, /unknown option "extra"/);
    expect(() => targets.striped({ chunkSize: 8, stripes: [{ device: '7:0', offset: 0 }], width: 2 } as never)).to.throw(TypeError, /unknown option "width"/);
  });

  it('a Table refuses a row that does not split into whole chunks on every stripe', () => {
    const t = targets.striped({ chunkSize: 8, stripes: [{ device: '7:0', offset: 0 }, { device: '7:1', offset: 0 }] });
    expect(new Table([{ start: 0, length: 32, target: t }]).size).to.equal(32);
    expect(() => new Table([{ start: 0, length: 24, target: t }])).to.throw(RangeError, /rows\[0\]\.length/);
    expect(() => new Table([{ start: 0, length: 31, type: 'striped', params: '2 8 7:0 0 7:1 0' }])).to.throw(RangeError, /2 stripes of whole 8-sector chunks/);
  });

  it('parses what the kernel writes and refuses malformed params naming the field', () => {
    expect(parseStriped('2 128 7:0 0 7:1 2048').stripes).to.have.length(2);
    expect(parseStriped(' 1  8 /dev/loop0 16 ').params).to.equal('1 8 /dev/loop0 16');
    expect(fieldOf(() => parseStriped('2 128 7:0 0'))).to.equal('stripe 1 device');
    expect(fieldOf(() => parseStriped('2 128 7:0 0 7:1'))).to.equal('stripe 1 offset');
    expect(fieldOf(() => parseStriped('x 128 7:0 0'))).to.equal('stripes');
    expect(fieldOf(() => parseStriped('1 4 7:0 0'))).to.equal('chunk size');
    expect(fieldOf(() => parseStriped('1 8 7:0 0 9'))).to.equal('params');
    expect(fieldOf(() => parseStriped('1 8 sda 0'))).to.equal('stripe 0 device');
  });

  it('reads its status: each stripe alive or dead, unknown trailing words kept', () => {
    const s = parseStripedStatus('2 7:0 254:2 1 AD');
    expect(s).to.deep.include({ type: 'striped', known: true, raw: '2 7:0 254:2 1 AD' });
    expect(s.stripes).to.deep.equal([{ device: '7:0', health: 'alive' }, { device: '254:2', health: 'dead' }]);
    expect(s.extra).to.deep.equal([]);
    expect(parseStripedStatus('1 7:0 1 A future 7').extra).to.deep.equal(['future', '7']);
    expect(fieldOf(() => parseStripedStatus('2 7:0 7:1 1 A'))).to.equal('health');
    expect(fieldOf(() => parseStripedStatus('2 7:0'))).to.equal('devices');
    expect(fieldOf(() => parseStripedStatus('2 7:0 7:1 1 AX'))).to.equal('health');
    const [row] = parseStatus('0 8192 striped 2 7:0 7:1 1 AA');
    expect(row?.status.known && row.status.type === 'striped' && row.status.stripes.length).to.equal(2);
  });

  it('property: random valid targets round-trip through format and parse', () => {
    fc.assert(
      fc.property(fc.integer({ min: 8, max: 0xffffffff }), fc.array(fc.record({ device: devArb, offset: fc.maxSafeNat() }), { minLength: 1, maxLength: 16 }), (chunkSize, stripes) => {
        const t = targets.striped({ chunkSize, stripes });
        const back = parseStriped(t.params);
        expect(back).to.deep.equal(t);
        expect(Table.parse(`0 ${chunkSize * stripes.length} striped ${t.params}`).toString()).to.equal(`0 ${chunkSize * stripes.length} striped ${t.params}`);
      }),
    );
  });

  it('property: random and mutated lines never crash or hang, and fail only with DmParseError', () => {
    expectOnlyParseErrors([parseStriped, parseStripedStatus], ['2 128 7:0 0 7:1 2048', '2 7:0 7:1 1 AD']);
  });
});
