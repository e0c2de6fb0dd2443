import { expect } from 'chai';
import fc from 'fast-check';
import { Table, parseStatus, targets } from '../../../ts/index';
import { parseThin, parseThinStatus } from '../../../ts/targets/thin';
import { devArb, fieldOf, expectOnlyParseErrors } from './property';

describe('targets: thin', () => {
  it('builds the kernel params from typed options', () => {
    expect(targets.thin({ poolDevice: '254:0', deviceId: 0 }).params).to.equal('254:0 0');
    const t = targets.thin({ poolDevice: { major: 254, minor: 0 }, deviceId: 16777215, externalOriginDevice: '/dev/loop3' });
    expect(t.params).to.equal('254:0 16777215 /dev/loop3');
    expect(t).to.deep.include({ type: 'thin', poolDevice: '254:0', deviceId: 16777215, externalOriginDevice: '/dev/loop3' });
    expect(targets.thin({ poolDevice: '254:0', deviceId: 1 }).externalOriginDevice).to.equal(null);
  });

  it('refuses bad options with the field named, before any ioctl', () => {
    expect(() => targets.thin({ poolDevice: '254:0', deviceId: 16777216 })).to.throw(RangeError, /^Expected an integer from 0 to 16777215 for thin\.deviceId but received number 16777216$/);
    expect(() => targets.thin({ poolDevice: '254:0', deviceId: -1 })).to.throw(RangeError, /thin\.deviceId/);
    expect(() => targets.thin({ poolDevice: '254:0', deviceId: '1' as never })).to.throw(TypeError, /thin\.deviceId/);
    expect(() => targets.thin({ poolDevice: 'pool', deviceId: 1 })).to.throw(/thin\.poolDevice/);
    expect(() => targets.thin({ poolDevice: '254:0', deviceId: 1, externalOriginDevice: '254:0' })).to.throw(RangeError, /thin\.externalOriginDevice/);
    expect(() => targets.thin({ poolDevice: '254:0', deviceId: 1, externalOriginDevice: 7 as never })).to.throw(TypeError, /thin\.externalOriginDevice/);
    expect(() => targets.thin({ poolDevice: '254:0', deviceId: 1, origin: '7:0' } as never)).to.throw(TypeError, /unknown option "origin"/);
  });

  it('parses what users and the kernel write (Fail for a failed pool), and refuses malformed params naming the field', () => {
    expect(parseThin('254:0 2 7:10')).to.deep.equal(targets.thin({ poolDevice: '254:0', deviceId: 2, externalOriginDevice: '7:10' }));
    expect(parseThin('/dev/dm-0 1').params).to.equal('/dev/dm-0 1');
    // The table the kernel prints for a thin row whose pool failed.
    expect(parseThin('Fail')).to.deep.equal({ type: 'thin', params: 'Fail', failed: true });
    expect(Table.parse('0 16384 thin Fail').toString()).to.equal('0 16384 thin Fail');
    expect(fieldOf(() => parseThin('Fail 1'))).to.equal('pool dev');
    expect(fieldOf(() => parseThin(''))).to.equal('pool dev');
    expect(fieldOf(() => parseThin('254:0'))).to.equal('dev id');
    expect(fieldOf(() => parseThin('254:0 16777216'))).to.equal('dev id');
    expect(fieldOf(() => parseThin('254:0 x'))).to.equal('dev id');
    expect(fieldOf(() => parseThin('254:0 1 origin'))).to.equal('external origin dev');
    expect(fieldOf(() => parseThin('254:0 1 254:0'))).to.equal('external origin dev');
    expect(fieldOf(() => parseThin('254:0 1 7:1 0'))).to.equal('params');
  });

  it('reads every status form: mapped and highest sectors, nothing mapped, Fail, Error', () => {
    expect(parseThinStatus('768 13055')).to.deep.include({ failed: false, mappedSectors: 768, highestMappedSector: 13055, extra: [] });
    expect(parseThinStatus('0 -')).to.deep.include({ failed: false, mappedSectors: 0, highestMappedSector: null });
    expect(parseThinStatus('Fail')).to.deep.include({ failed: 'Fail', extra: [] });
    expect(parseThinStatus('Error')).to.deep.include({ failed: 'Error' });
    expect(parseThinStatus('128 127 more').extra).to.deep.equal(['more']);
    expect(fieldOf(() => parseThinStatus(''))).to.equal('nr mapped sectors');
    expect(fieldOf(() => parseThinStatus('12'))).to.equal('highest mapped sector');
    expect(fieldOf(() => parseThinStatus('12 x'))).to.equal('highest mapped sector');
    expect(fieldOf(() => parseThinStatus('-1 5'))).to.equal('nr mapped sectors');
    const [row] = parseStatus('0 65536 thin 896 38527');
    expect(row?.status.known && row.status.type === 'thin' && row.status.failed === false && row.status.highestMappedSector).to.equal(38527);
  });

  it('property: random valid targets round-trip through format and parse', () => {
    fc.assert(
      fc.property(devArb, fc.integer({ min: 0, max: 16777215 }), fc.option(devArb, { nil: undefined }), (poolDevice, deviceId, externalOriginDevice) => {
        fc.pre(externalOriginDevice !== poolDevice);
        const t = targets.thin({ poolDevice, deviceId, externalOriginDevice });
        expect(parseThin(t.params)).to.deep.equal(t);
        const line = `0 65536 thin ${t.params}`;
        expect(Table.parse(line).toString()).to.equal(line);
      }),
    );
  });

  it('property: random and mutated lines never crash or hang, and fail only with DmParseError', () => {
    expectOnlyParseErrors([parseThin, parseThinStatus], ['254:0 2 7:10', '254:0 16777215', '768 13055', '0 -']);
  });
});
