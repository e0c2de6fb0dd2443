import { expect } from 'chai';
import fc from 'fast-check';
import { Table, cloneMessages, parseStatus, targets } from '../../../ts/index';
import { parseClone, parseCloneStatus } from '../../../ts/targets/clone';
import { devArb, fieldOf, expectOnlyParseErrors } from './property';

const base = { metadataDevice: '7:0', destinationDevice: '7:2', sourceDevice: { major: 7, minor: 1 }, regionSize: 8 };

describe('targets: clone', () => {
  it('builds the kernel params from typed options', () => {
    expect(targets.clone(base).params).to.equal('7:0 7:2 7:1 8');
    expect(targets.clone({ ...base, noHydration: true }).params).to.equal('7:0 7:2 7:1 8 1 no_hydration');
    const t = targets.clone({ ...base, regionSize: 64, noHydration: true, noDiscardPassdown: true, hydrationThreshold: 16, hydrationBatchSize: 4 });
    expect(t.params).to.equal('7:0 7:2 7:1 64 2 no_hydration no_discard_passdown 4 hydration_threshold 16 hydration_batch_size 4');
    expect(t).to.deep.include({ type: 'clone', sourceDevice: '7:1', regionSize: 64, noHydration: true, noDiscardPassdown: true, hydrationThreshold: 16, hydrationBatchSize: 4 });
    expect(targets.clone({ ...base, hydrationBatchSize: 2 }).params).to.equal('7:0 7:2 7:1 8 0 2 hydration_batch_size 2');
    expect(Object.isFrozen(t.features)).to.equal(true);
  });

  it('refuses bad options with the field named, before any ioctl', () => {
    expect(() => targets.clone({ ...base, regionSize: 12 })).to.throw(RangeError, /clone\.regionSize/);
    expect(() => targets.clone({ ...base, regionSize: 4 })).to.throw(RangeError, /clone\.regionSize/);
    expect(() => targets.clone({ ...base, regionSize: 2 ** 22 })).to.throw(RangeError, /clone\.regionSize/);
    expect(() => targets.clone({ ...base, metadataDevice: 'loop0' })).to.throw(/clone\.metadataDevice/);
    expect(() => targets.clone({ ...base, destinationDevice: undefined as never })).to.throw(TypeError, /clone\.destinationDevice/);
    expect(() => targets.clone({ ...base, noHydration: 'yes' as never })).to.throw(TypeError, /clone\.noHydration/);
    expect(() => targets.clone({ ...base, hydrationThreshold: -1 })).to.throw(RangeError, /clone\.hydrationThreshold/);
    expect(() => targets.clone({ ...base, hydrationBatchSize: 2 ** 32 })).to.throw(RangeError, /clone\.hydrationBatchSize/);
    expect(() => targets.clone({ ...base, hydration: false } as never)).to.throw(TypeError, /unknown option "hydration"/);
  });

  it('parses what users and the kernel write, keeping the order of features and core args', () => {
    expect(parseClone('7:0 7:2 7:1 8').features).to.deep.equal([]);
    expect(parseClone(' /dev/loop0  7:2 7:1 8 ').params).to.equal('/dev/loop0 7:2 7:1 8');
    const t = parseClone('7:0 7:2 7:1 8 2 no_discard_passdown no_hydration 4 hydration_batch_size 3 hydration_threshold 9');
    expect(t.params).to.equal('7:0 7:2 7:1 8 2 no_discard_passdown no_hydration 4 hydration_batch_size 3 hydration_threshold 9');
    expect(t).to.deep.include({ noHydration: true, noDiscardPassdown: true, hydrationThreshold: 9, hydrationBatchSize: 3 });
    // Empty groups stay, as the kernel echoes them.
    expect(parseClone('7:0 7:2 7:1 8 0').params).to.equal('7:0 7:2 7:1 8 0');
    expect(parseClone('7:0 7:2 7:1 8 0 0').params).to.equal('7:0 7:2 7:1 8 0 0');
    expect(parseClone('7:0 7:2 7:1 8 1 no_hydration 0').params).to.equal('7:0 7:2 7:1 8 1 no_hydration 0');
    expect(Table.parse('0 64 clone 7:0 7:2 7:1 8 0').toString()).to.equal('0 64 clone 7:0 7:2 7:1 8 0');
    expect(fieldOf(() => parseClone('7:0 7:2 7:1'))).to.equal('region size');
    expect(fieldOf(() => parseClone('7:0 7:2 7:1 24'))).to.equal('region size');
    expect(fieldOf(() => parseClone('7:0 7:2 x 8'))).to.equal('source dev');
    expect(fieldOf(() => parseClone('7:0 7:2 7:1 8 1 fast'))).to.equal('feature args');
    expect(fieldOf(() => parseClone('7:0 7:2 7:1 8 3 no_hydration'))).to.equal('feature args count');
    expect(fieldOf(() => parseClone('7:0 7:2 7:1 8 0 1 hydration_threshold'))).to.equal('core args count');
    expect(fieldOf(() => parseClone('7:0 7:2 7:1 8 0 2 speed 3'))).to.equal('core args');
    expect(fieldOf(() => parseClone('7:0 7:2 7:1 8 0 2 hydration_threshold x'))).to.equal('core args hydration_threshold');
    expect(fieldOf(() => parseClone('7:0 7:2 7:1 8 0 0 9'))).to.equal('params');
  });

  it('reads every status form: working, hydrating, Fail, Error, unknown trailing words kept', () => {
    const s = parseCloneStatus('8 6/1024 8 120/4096 2 1 no_hydration 4 hydration_threshold 64 hydration_batch_size 8 rw');
    expect(s).to.deep.include({ type: 'clone', known: true, failed: false, metadataBlockSize: 8, regionSize: 8, hydrating: 2, noHydration: true, noDiscardPassdown: false, hydrationThreshold: 64, hydrationBatchSize: 8, metadataMode: 'rw' });
    if (s.failed !== false) throw new Error('typed');
    expect(s.metadataBlocks).to.deep.equal({ used: 6, total: 1024 });
    expect(s.regions).to.deep.equal({ used: 120, total: 4096 });
    expect(s.extra).to.deep.equal([]);
    const ro = parseCloneStatus('8 6/1024 64 0/512 0 2 no_hydration no_discard_passdown 4 hydration_threshold 1 hydration_batch_size 1 ro needs_check');
    expect(ro).to.deep.include({ metadataMode: 'ro', noDiscardPassdown: true, extra: ['needs_check'] });
    expect(parseCloneStatus('Fail')).to.deep.include({ failed: 'Fail', extra: [] });
    expect(parseCloneStatus('Error')).to.deep.include({ failed: 'Error' });
    expect(fieldOf(() => parseCloneStatus('8 6/1024 8 120/4096 2 0 4 hydration_threshold 64 hydration_batch_size 8 wr'))).to.equal('metadata mode');
    expect(fieldOf(() => parseCloneStatus('8 6-1024 8 120/4096 2 0 4 hydration_threshold 64 hydration_batch_size 8 rw'))).to.equal('metadata blocks');
    expect(fieldOf(() => parseCloneStatus('8 6/1024 8 120/4096 2 0 2 hydration_threshold 64 rw'))).to.equal('core args');
    expect(fieldOf(() => parseCloneStatus('8 6/1024 8 120/4096 2 1 fast 0 rw'))).to.equal('features');
    const [row] = parseStatus('0 32768 clone 8 6/1024 8 4096/4096 0 0 4 hydration_threshold 1 hydration_batch_size 1 rw');
    expect(row?.status.known && row.status.type === 'clone' && row.status.failed === false && row.status.regions.used).to.equal(4096);
  });

  it('makes the messages the kernel takes, checking their numbers', () => {
    expect(cloneMessages.enableHydration()).to.equal('enable_hydration');
    expect(cloneMessages.disableHydration()).to.equal('disable_hydration');
    expect(cloneMessages.hydrationThreshold(0)).to.equal('hydration_threshold 0');
    expect(cloneMessages.hydrationBatchSize(32)).to.equal('hydration_batch_size 32');
    expect(() => cloneMessages.hydrationThreshold(-1)).to.throw(RangeError, /regions/);
    expect(() => cloneMessages.hydrationBatchSize('2' as never)).to.throw(TypeError, /regions/);
  });

  it('a Table refuses a row with more than 2^31 regions', () => {
    const t = targets.clone(base);
    expect(new Table([{ start: 0, length: 8 * 2 ** 31, target: t }]).size).to.equal(8 * 2 ** 31);
    expect(() => new Table([{ start: 0, length: 8 * 2 ** 31 + 1, target: t }])).to.throw(RangeError, /rows\[0\]\.length/);
  });

  it('property: random valid targets round-trip through format and parse', () => {
    fc.assert(
      fc.property(
        fc.record({
          metadataDevice: devArb,
          destinationDevice: devArb,
          sourceDevice: devArb,
          regionSize: fc.integer({ min: 3, max: 21 }).map((e) => 2 ** e),
          noHydration: fc.option(fc.boolean(), { nil: undefined }),
          noDiscardPassdown: fc.option(fc.boolean(), { nil: undefined }),
          hydrationThreshold: fc.option(fc.nat(0xffffffff), { nil: undefined }),
          hydrationBatchSize: fc.option(fc.nat(0xffffffff), { nil: undefined }),
        }),
        (o) => {
          const t = targets.clone(o);
          expect(parseClone(t.params)).to.deep.equal(t);
          const line = `0 ${o.regionSize * 4} clone ${t.params}`;
          expect(Table.parse(line).toString()).to.equal(line);
        },
      ),
    );
  });

  it('property: random and mutated lines never crash or hang, and fail only with DmParseError', () => {
    expectOnlyParseErrors([parseClone, parseCloneStatus], [
        '7:0 7:2 7:1 64 2 no_hydration no_discard_passdown 4 hydration_threshold 16 hydration_batch_size 4',
        '8 6/1024 8 120/4096 2 1 no_hydration 4 hydration_threshold 64 hydration_batch_size 8 rw',
        'Fail',
      ]);
  });
});
