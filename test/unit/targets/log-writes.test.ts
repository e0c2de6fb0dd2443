import { expect } from 'chai';
import fc from 'fast-check';
import { logWritesMessages, targets } from '../../../ts/index';
import { parseLogWrites, parseLogWritesStatus } from '../../../ts/targets/log-writes';
import { devArb, fieldOf, expectOnlyParseErrors } from './property';

describe('targets: log-writes', () => {
  it('builds, parses and refuses with the field named', () => {
    const t = targets.logWrites({ device: '7:0', logDevice: { major: 7, minor: 1 } });
    expect(t).to.deep.include({ type: 'log-writes', device: '7:0', logDevice: '7:1', params: '7:0 7:1' });
    expect(parseLogWrites('7:0   7:1')).to.deep.equal(t);
    expect(() => targets.logWrites({ device: '7:0' } as never)).to.throw(/logWrites\.logDevice/);
    expect(() => targets.logWrites({ device: '7:0', logDevice: '7:1', dumpType: 'all' } as never)).to.throw(TypeError, /unknown option "dumpType"/);
    expect(fieldOf(() => parseLogWrites('7:0'))).to.equal('log device');
    expect(fieldOf(() => parseLogWrites('7:0 7:1 x'))).to.equal('params');
  });

  it('reads its status, logging disabled included, and builds marks', () => {
    expect(parseLogWritesStatus('10 74')).to.deep.include({ loggedEntries: 10, highestSector: 74, loggingEnabled: true, extra: [] });
    expect(parseLogWritesStatus('227 2052 logging_disabled')).to.deep.include({ loggedEntries: 227, highestSector: 2052, loggingEnabled: false });
    expect(parseLogWritesStatus('1 2 future')).to.deep.include({ extra: ['future'] });
    expect(fieldOf(() => parseLogWritesStatus('10'))).to.equal('highest sector');
    expect(fieldOf(() => parseLogWritesStatus('x 1'))).to.equal('logged entries');
    expect(logWritesMessages.mark('before-upgrade')).to.equal('mark before-upgrade');
    expect(() => logWritesMessages.mark('two words')).to.throw(RangeError, /name/);
    expect(() => logWritesMessages.mark('')).to.throw(RangeError, /name/);
  });

  it('property: random targets round-trip; mutated lines fail only with DmParseError', () => {
    fc.assert(
      fc.property(devArb, devArb, (device, logDevice) => {
        expect(parseLogWrites(targets.logWrites({ device, logDevice }).params)).to.deep.equal(targets.logWrites({ device, logDevice }));
      }),
    );
    expectOnlyParseErrors([parseLogWrites, parseLogWritesStatus], ['7:0 7:1', '227 2052 logging_disabled']);
  });
});
