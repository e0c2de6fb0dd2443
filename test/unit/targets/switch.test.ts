import { expect } from 'chai';
import fc from 'fast-check';
import { Table, compressRegionMappings, switchMessages, targets } from '../../../ts/index';
import { parseSwitch, parseSwitchStatus } from '../../../ts/targets/switch';
import { devArb, fieldOf, expectOnlyParseErrors } from './property';

/** What the kernel does with set_region_mappings words: region → path. */
function apply(words: readonly string[]): Map<number, number> {
  const map = new Map<number, number>();
  const order: number[] = [];
  let last = -1;
  for (const w of words) {
    if (w.startsWith('R')) {
      const [n, m] = w.slice(1).split(',').map((x) => parseInt(x, 16));
      for (let k = 0; k < (m ?? 0); k++) {
        const region = last + 1;
        map.set(region, map.get(region - (n ?? 0)) ?? -1);
        order.push(region);
        last = region;
      }
    } else {
      const [r, p] = w.split(':');
      const region = r === '' ? last + 1 : parseInt(r ?? '', 16);
      map.set(region, parseInt(p ?? '', 16));
      order.push(region);
      last = region;
    }
  }
  return map;
}

describe('targets: switch', () => {
  it('builds, parses and refuses with the field named', () => {
    const t = targets.switch({ regionSize: 128, paths: [{ device: '7:0', offset: 0 }, { device: { major: 7, minor: 1 }, offset: 16 }] });
    expect(t).to.deep.include({ type: 'switch', regionSize: 128, params: '2 128 0 7:0 0 7:1 16' });
    expect(parseSwitch('2 128 0 7:0 0 7:1 16')).to.deep.equal(t);
    expect(() => targets.switch({ regionSize: 0, paths: [{ device: '7:0', offset: 0 }] })).to.throw(RangeError, /switch\.regionSize/);
    expect(() => targets.switch({ regionSize: 8, paths: [] })).to.throw(RangeError, /switch\.paths/);
    expect(() => targets.switch({ regionSize: 8, paths: [{ device: '7:0', offset: 0 }], regions: 2 } as never)).to.throw(TypeError, /unknown option "regions"/);
    expect(fieldOf(() => parseSwitch('2 128 1 x 7:0 0 7:1 0'))).to.equal('optional args');
    expect(fieldOf(() => parseSwitch('2 128 0 7:0 0'))).to.equal('path 1 device');
    expect(fieldOf(() => parseSwitch('2 0 0 7:0 0 7:1 0'))).to.equal('region size');
    expect(() => new Table([{ start: 0, length: 100, target: t }])).to.throw(RangeError, /whole 128-sector regions/);
    expect(parseSwitchStatus('')).to.deep.equal({ type: 'switch', raw: '', known: true, extra: [] });
  });

  it('set_region_mappings: explicit, next-region and repeat words, in hexadecimal', () => {
    expect(switchMessages.setRegionMappings([{ region: 0, path: 1 }, { path: 2 }, { repeat: 2, times: 16 }, { region: 4096, path: 10 }])).to.equal('set_region_mappings 0:1 :2 R2,10 1000:a');
    expect(() => switchMessages.setRegionMappings([])).to.throw(RangeError, /mappings/);
    expect(() => switchMessages.setRegionMappings([{ path: 1 }])).to.throw(TypeError, /mappings\[0\]\.region/);
    expect(() => switchMessages.setRegionMappings([{ region: 0, path: 1 }, { repeat: 2, times: 1 }])).to.throw(RangeError, /mappings\[1\]\.repeat/);
    // The kernel bounds a repeat by the region written last, not by the words before it.
    expect(switchMessages.setRegionMappings([{ region: 0, path: 2 }, { repeat: 1, times: 3 }, { path: 0 }, { repeat: 4, times: 4 }])).to.equal('set_region_mappings 0:2 R1,3 :0 R4,4');
    expect(switchMessages.setRegionMappings([{ region: 100, path: 1 }, { repeat: 101, times: 2 }])).to.equal('set_region_mappings 64:1 R65,2');
    expect(() => switchMessages.setRegionMappings([{ region: 100, path: 1 }, { repeat: 102, times: 2 }])).to.throw(RangeError, /mappings\[1\]\.repeat/);
    expect(() => switchMessages.setRegionMappings([{ region: 0, path: -1 }])).to.throw(RangeError, /mappings\[0\]\.path/);
    expect(() => switchMessages.setRegionMappings([{ region: 0, path: 1, extra: 1 } as never])).to.throw(TypeError, /unknown option "extra"/);
  });

  it('compressRegionMappings uses R for repeats and means exactly the regions given', () => {
    const words = (paths: number[], start = 0): string[] => switchMessages.setRegionMappings(compressRegionMappings(start, paths)).split(' ').slice(1);
    expect(words([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1])).to.deep.equal(['0:0', ':1', ':2', 'R3,8']);
    expect(words([1, 1, 1, 1], 16)).to.deep.equal(['10:1', 'R1,3']);
    // A repeat of four after three words: the first repeat wrote three regions.
    expect(words([2, 2, 2, 2, 0, 2, 2, 2, 0])).to.deep.equal(['0:2', 'R1,3', ':0', 'R4,4']);
    fc.assert(
      fc.property(fc.nat(1000), fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 200 }), (start, paths) => {
        const map = apply(words(paths, start));
        expect([...map.entries()].sort((a, b) => a[0] - b[0])).to.deep.equal(paths.map((p, i) => [start + i, p]));
      }),
      { numRuns: 2000 },
    );
  });

  it('property: random valid targets round-trip; mutated lines fail only with DmParseError', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 0xffffffff }), fc.array(fc.record({ device: devArb, offset: fc.maxSafeNat() }), { minLength: 1, maxLength: 8 }), (regionSize, paths) => {
        const t = targets.switch({ regionSize, paths });
        expect(parseSwitch(t.params)).to.deep.equal(t);
      }),
    );
    expectOnlyParseErrors([parseSwitch], ['2 128 0 7:0 0 7:1 16']);
  });
});
