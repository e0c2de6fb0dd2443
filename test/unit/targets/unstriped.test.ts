import { expect } from 'chai';
import fc from 'fast-check';
import { Table, parseStatus, targets } from '../../../ts/index';
import { parseUnstriped, parseUnstripedStatus } from '../../../ts/targets/unstriped';
import { devArb, fieldOf, expectOnlyParseErrors } from './property';

describe('targets: unstriped', () => {
  it('builds the kernel params from typed options', () => {
    const t = targets.unstriped({ stripes: 2, chunkSize: 128, stripe: 1, device: { major: 254, minor: 0 }, offset: 0 });
    expect(t).to.deep.include({ type: 'unstriped', stripes: 2, chunkSize: 128, stripe: 1, device: '254:0', offset: 0, params: '2 128 1 254:0 0' });
    expect(Object.isFrozen(t)).to.equal(true);
    expect(targets.unstriped({ stripes: 1, chunkSize: 1, stripe: 0, device: '/dev/md0', offset: 2048 }).params).to.equal('1 1 0 /dev/md0 2048');
    expect(targets.unstriped({ stripes: 2 ** 31 - 1, chunkSize: 2 ** 31, stripe: 2 ** 31 - 2, device: '7:0', offset: 0 }).params).to.equal('2147483647 2147483648 2147483646 7:0 0');
  });

  it('refuses bad options with the field named, before any ioctl', () => {
    const o = { stripes: 2, chunkSize: 128, stripe: 0, device: '7:0', offset: 0 };
    expect(() => targets.unstriped({ ...o, stripes: 0 })).to.throw(RangeError, /unstriped\.stripes/);
    expect(() => targets.unstriped({ ...o, stripes: 2 ** 31 })).to.throw(RangeError, /unstriped\.stripes/);
    expect(() => targets.unstriped({ ...o, chunkSize: 96 })).to.throw(RangeError, /power of two .* for unstriped\.chunkSize/);
    expect(() => targets.unstriped({ ...o, chunkSize: 0 })).to.throw(RangeError, /unstriped\.chunkSize/);
    // The kernel would take stripe 2 of 2; a built target names a stripe that exists.
    expect(() => targets.unstriped({ ...o, stripe: 2 })).to.throw(RangeError, /Expected a stripe number from 0 to 1 for unstriped\.stripe but received number 2/);
    expect(() => targets.unstriped({ ...o, stripes: 1, stripe: 1 })).to.throw(RangeError, /unstriped\.stripe/);
    expect(() => targets.unstriped({ ...o, stripe: -1 })).to.throw(RangeError, /unstriped\.stripe/);
    expect(() => targets.unstriped({ ...o, offset: 1.5 })).to.throw(RangeError, /unstriped\.offset/);
    expect(() => targets.unstriped({ ...o, device: 'md0' })).to.throw(/unstriped\.device/);
    expect(() => targets.unstriped({ ...o, width: 2 } as never)).to.throw(TypeError, /unknown option "width"/);
  });

  it('a Table refuses a row whose length does not divide by the stripes into whole chunks', () => {
    const t = targets.unstriped({ stripes: 2, chunkSize: 128, stripe: 0, device: '7:0', offset: 0 });
    expect(new Table([{ start: 0, length: 16384, target: t }]).size).to.equal(16384);
    expect(() => new Table([{ start: 0, length: 128, target: t }])).to.throw(RangeError, /rows\[0\]\.length/);
    expect(() => new Table([{ start: 0, length: 16385, type: 'unstriped', params: '2 128 0 7:0 0' }])).to.throw(RangeError, /divides by 2 stripes into whole 128-sector chunks/);
  });

  it('parses what users and the kernel write, the kernel\'s stripe == stripes included', () => {
    expect(parseUnstriped(' 2  128 0 254:0 0')).to.deep.equal(targets.unstriped({ stripes: 2, chunkSize: 128, stripe: 0, device: '254:0', offset: 0 }));
    expect(parseUnstriped('2 8 2 7:5 0')).to.deep.include({ stripes: 2, stripe: 2, params: '2 8 2 7:5 0' });
    expect(parseUnstriped('1 8 7 7:5 0')).to.deep.include({ stripes: 1, stripe: 7 });
    expect(fieldOf(() => parseUnstriped('2 8 3 7:5 0'))).to.equal('stripe #');
    expect(fieldOf(() => parseUnstriped('0 8 0 7:5 0'))).to.equal('number of stripes');
    expect(fieldOf(() => parseUnstriped('2147483648 8 0 7:5 0'))).to.equal('number of stripes');
    expect(fieldOf(() => parseUnstriped('2 12 0 7:5 0'))).to.equal('chunk size');
    expect(fieldOf(() => parseUnstriped('2 0 0 7:5 0'))).to.equal('chunk size');
    expect(fieldOf(() => parseUnstriped('2 8 0 sda 0'))).to.equal('dev_path');
    expect(fieldOf(() => parseUnstriped('2 8 0 7:5'))).to.equal('offset');
    expect(fieldOf(() => parseUnstriped('2 8 0 7:5 0 1'))).to.equal('params');
  });

  it('reads its status: empty, and refuses words', () => {
    expect(parseUnstripedStatus('')).to.deep.equal({ type: 'unstriped', raw: '', known: true });
    expect(fieldOf(() => parseUnstripedStatus('x'))).to.equal('params');
    const [row] = parseStatus('0 16384 unstriped');
    expect(row?.status).to.deep.include({ type: 'unstriped', known: true });
  });

  it('property: random valid targets round-trip through format and parse', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.nat(31), fc.nat(), devArb, fc.maxSafeNat(), (stripes, shift, s, device, offset) => {
        const t = targets.unstriped({ stripes, chunkSize: 2 ** shift, stripe: s % stripes, device, offset });
        expect(parseUnstriped(t.params)).to.deep.equal(t);
        const length = stripes * 2 ** shift;
        if (!Number.isSafeInteger(length)) return;
        const line = `0 ${length} unstriped ${t.params}`;
        expect(Table.parse(line).toString()).to.equal(line);
      }),
    );
  });

  it('property: random and mutated lines never crash or hang, and fail only with DmParseError', () => {
    expectOnlyParseErrors([parseUnstriped, parseUnstripedStatus], ['2 128 0 254:0 0', '4 8 3 7:4 2048', '']);
  });
});
