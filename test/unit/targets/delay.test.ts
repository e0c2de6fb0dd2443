import { expect } from 'chai';
import fc from 'fast-check';
import { Table, parseStatus, targets } from '../../../ts/index';
import { parseDelay, parseDelayStatus } from '../../../ts/targets/delay';
import { devArb, fieldOf, expectOnlyParseErrors } from './property';

describe('targets: delay', () => {
  it('builds one, two or three triplets (read, write, flush) as the kernel prints them back', () => {
    const one = targets.delay({ read: { device: '7:0', offset: 0, delay: 200 } });
    expect(one).to.deep.include({ type: 'delay', params: '7:0 0 200', write: null, flush: null });
    expect(one.read).to.deep.equal({ device: '7:0', offset: 0, delay: 200 });
    const two = targets.delay({ read: { device: '7:0', offset: 0, delay: 0 }, write: { device: { major: 7, minor: 1 }, offset: 2048, delay: 500 } });
    expect(two.params).to.equal('7:0 0 0 7:1 2048 500');
    expect(two.write).to.deep.equal({ device: '7:1', offset: 2048, delay: 500 });
    const three = targets.delay({ read: { device: '7:0', offset: 0, delay: 50 }, write: { device: '7:1', offset: 0, delay: 100 }, flush: { device: '/dev/loop2', offset: 8, delay: 0xffffffff } });
    expect(three.params).to.equal('7:0 0 50 7:1 0 100 /dev/loop2 8 4294967295');
    expect(three.flush).to.deep.equal({ device: '/dev/loop2', offset: 8, delay: 0xffffffff });
  });

  it('refuses bad options with the field named', () => {
    expect(() => targets.delay({ read: { device: '7:0', offset: 0, delay: -1 } })).to.throw(RangeError, /delay\.read\.delay/);
    expect(() => targets.delay({ read: { device: '7:0', offset: 0, delay: 2 ** 32 } })).to.throw(RangeError, /delay\.read\.delay/);
    expect(() => targets.delay({ read: { device: '7:0', offset: 0, delay: 1.5 } })).to.throw(RangeError, /delay\.read\.delay/);
    expect(() => targets.delay({ read: { device: '7:0', offset: -1, delay: 0 } })).to.throw(RangeError, /delay\.read\.offset/);
    expect(() => targets.delay({ read: { device: 'sdb', offset: 0, delay: 0 } })).to.throw(/delay\.read\.device/);
    expect(() => targets.delay({ read: { device: '7:0', offset: 0, delay: 0 }, write: { device: '7:1', offset: 0, delay: '5' as never } })).to.throw(TypeError, /delay\.write\.delay/);
    expect(() => targets.delay({ read: { device: '7:0', offset: 0, delay: 0 }, flush: { device: '7:1', offset: 0, delay: 5 } })).to.throw(TypeError, /delay\.write/);
    expect(() => targets.delay({ read: { device: '7:0', offset: 0, delay: 0, ms: 1 } as never })).to.throw(TypeError, /unknown option "ms"/);
    expect(() => targets.delay({ read: null as never })).to.throw(TypeError, /delay\.read/);
    expect(() => targets.delay({ read: { device: '7:0', offset: 0, delay: 0 }, discard: {} } as never)).to.throw(TypeError, /unknown option "discard"/);
  });

  it('parses what users and the kernel write, refusing other word counts and bad fields', () => {
    expect(parseDelay('7:0 0 200')).to.deep.equal(targets.delay({ read: { device: '7:0', offset: 0, delay: 200 } }));
    expect(parseDelay(' 7:0  0 0 7:1 2048 500 ').params).to.equal('7:0 0 0 7:1 2048 500');
    expect(parseDelay('7:0 0 50 7:1 0 100 7:2 0 0')).to.deep.include({ flush: { device: '7:2', offset: 0, delay: 0 } });
    for (const bad of ['', '7:0 0', '7:0 0 1 7:1', '7:0 0 1 7:1 0 1 7:2 0 1 7:3']) expect(fieldOf(() => parseDelay(bad)), bad).to.equal('params');
    expect(fieldOf(() => parseDelay('7:0 x 200'))).to.equal('offset');
    expect(fieldOf(() => parseDelay('7:0 0 -1'))).to.equal('delay');
    // The kernel's own reader wraps a delay above 32 bits (4294967296 loads as 0); we refuse it.
    expect(fieldOf(() => parseDelay('7:0 0 4294967296'))).to.equal('delay');
    expect(fieldOf(() => parseDelay('7:0 0 1 sdb 0 1'))).to.equal('write_device');
    expect(fieldOf(() => parseDelay('7:0 0 1 7:1 0 1 7:2 0 x'))).to.equal('flush_delay');
  });

  it('reads its status: reads, writes and flushes being held back', () => {
    expect(parseDelayStatus('1 1 0')).to.deep.include({ type: 'delay', known: true, reads: 1, writes: 1, flushes: 0, extra: [] });
    expect(parseDelayStatus('0 0 7 later')).to.deep.include({ flushes: 7, extra: ['later'] });
    expect(fieldOf(() => parseDelayStatus('0 0'))).to.equal('flushes');
    expect(fieldOf(() => parseDelayStatus('x 0 0'))).to.equal('reads');
    expect(fieldOf(() => parseDelayStatus('0 4294967296 0'))).to.equal('writes');
    const [row] = parseStatus('0 8192 delay 0 0 1');
    expect(row?.status.known && row.status.type === 'delay' && row.status.flushes).to.equal(1);
  });

  const classArb = fc.record({ device: devArb, offset: fc.nat(), delay: fc.nat(0xffffffff) });

  it('property: random valid targets round-trip through format and parse', () => {
    fc.assert(
      fc.property(classArb, fc.option(fc.tuple(classArb, fc.option(classArb, { nil: undefined })), { nil: undefined }), (read, more) => {
        const t = targets.delay({ read, write: more?.[0], flush: more?.[1] });
        expect(parseDelay(t.params)).to.deep.equal(t);
        const line = `0 8192 delay ${t.params}`;
        expect(Table.parse(line).toString()).to.equal(line);
      }),
    );
  });

  it('property: random and mutated lines never crash or hang, and fail only with DmParseError', () => {
    expectOnlyParseErrors([parseDelay, parseDelayStatus], ['7:0 0 200', '7:0 0 0 7:1 2048 500', '7:0 0 50 7:1 0 100 7:2 0 4294967295', '1 1 0', '0 0 1'], 1000);
  });
});
