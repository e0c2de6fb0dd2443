// ebs, zoned and vdo have no module in the sandbox kernel (Linux 6.1, no zoned devices): they
// are proven on the table and status lines the kernel documentation gives as examples
// (Documentation/admin-guide/device-mapper/dm-ebs.rst, dm-zoned.rst, vdo.rst), which must read
// and format back byte for byte.
import { expect } from 'chai';
import { Table, parseStatus, targets, vdoMessages } from '../../../ts/index';
import { parseEbs } from '../../../ts/targets/ebs';
import { parseVdo, parseVdoStatus } from '../../../ts/targets/vdo';
import { parseZoned, parseZonedStatus } from '../../../ts/targets/zoned';
import { fieldOf, expectOnlyParseErrors } from './property';

const DOC_TABLES = [
  '0 2048 ebs /dev/sda 1024 1',
  '0 2048 ebs /dev/sda 128 2 4',
  '0 2097152 vdo V4 /dev/dm-1 262144 4096 32768 16380',
  '0 8388608 vdo V4 /dev/dm-1 524288 4096 32768 16380',
  '0 10485760 vdo V4 /dev/dm-1 786432 4096 32768 16380 maxDiscard 8',
  '0 10485760 vdo V4 /dev/dm-1 786432 512 65550 5000 hash 1 logical 3 physical 2',
  '0 1048576 zoned 8:16',
  '0 1048576 zoned 8:0 8:16',
];

describe('parse-only targets, on the kernel documentation\'s examples', () => {
  for (const line of DOC_TABLES) {
    it(`formats back: ${line}`, () => {
      const t = Table.parse(line);
      expect(t.toString()).to.equal(line);
      expect(Object.keys(t.rows[0]?.target ?? {}).length).to.be.greaterThan(2);
    });
  }

  it('ebs: builder checks, parse errors name the field', () => {
    expect(targets.ebs({ device: '8:0', offset: 8, emulatedSectors: 8, underlyingSectors: 16 }).params).to.equal('8:0 8 8 16');
    expect(() => targets.ebs({ device: '8:0', offset: 3, emulatedSectors: 2 })).to.throw(RangeError, /ebs\.offset/);
    expect(() => targets.ebs({ device: '8:0', offset: 0, emulatedSectors: 3 as never })).to.throw(RangeError, /ebs\.emulatedSectors/);
    expect(() => targets.ebs({ device: '8:0', offset: 0, emulatedSectors: 1, underlyingSectors: 6 })).to.throw(RangeError, /ebs\.underlyingSectors/);
    expect(fieldOf(() => parseEbs('/dev/sda 1024 3'))).to.equal('emulated sectors');
    expect(fieldOf(() => parseEbs('/dev/sda 1023 2'))).to.equal('offset');
    expect(fieldOf(() => parseEbs('/dev/sda 0 1 3'))).to.equal('underlying sectors');
  });

  it('zoned: its status, with and without cache zones, several devices', () => {
    const s = parseZonedStatus('1024 zones 100/200 random 600/824 sequential');
    expect(s).to.deep.include({ zones: 1024, cache: null, extra: [] });
    expect(s.devices).to.deep.equal([{ random: { free: 100, total: 200 }, sequential: { free: 600, total: 824 } }]);
    const multi = parseZonedStatus('3000 zones 10/40 cache 1/2 random 3/4 sequential 5/6 random 7/8 sequential');
    expect(multi.cache).to.deep.equal({ free: 10, total: 40 });
    expect(multi.devices).to.have.length(2);
    expect(parseStatus('0 1048576 zoned 1024 zones 100/200 random 600/824 sequential')[0]?.status.known).to.equal(true);
    expect(fieldOf(() => parseZonedStatus('1024 zones'))).to.equal('free/total');
    expect(fieldOf(() => parseZonedStatus('1024 zones 1/2 cache'))).to.equal('random');
    expect(targets.zoned({ devices: ['8:0', { major: 8, minor: 16 }] }).params).to.equal('8:0 8:16');
    expect(() => targets.zoned({ devices: [] })).to.throw(RangeError, /zoned\.devices/);
    expect(parseZoned('8:16').devices).to.deep.equal(['8:16']);
  });

  it('vdo: options in any order come back in one order; threads all set or none; status', () => {
    expect(parseVdo('V4 /dev/dm-1 786432 512 65550 5000 physical 2 hash 1 logical 3').params).to.equal('V4 /dev/dm-1 786432 512 65550 5000 hash 1 logical 3 physical 2');
    expect(parseVdo('V4 7:0 1 4096 32768 1 compression on deduplication off').options).to.deep.equal({ deduplication: false, compression: true });
    expect(fieldOf(() => parseVdo('V4 7:0 1 4096 32768 1 hash 1'))).to.equal('hash');
    expect(fieldOf(() => parseVdo('V3 7:0 1 4096 32768 1'))).to.equal('version');
    expect(fieldOf(() => parseVdo('V4 7:0 1 1024 32768 1'))).to.equal('minimum I/O size');
    expect(fieldOf(() => parseVdo('V4 7:0 1 4096 32768 1 maxDiscard 2 maxDiscard 3'))).to.equal('maxDiscard');
    expect(fieldOf(() => parseVdo('V4 7:0 1 4096 32768 1 turbo 1'))).to.equal('option');
    expect(() => targets.vdo({ storage: '7:0', storageBlocks: 1, minimumIoSize: 4096, blockMapCacheBlocks: 100, blockMapEraLength: 1 })).to.throw(RangeError, /vdo\.blockMapCacheBlocks/);
    const s = parseVdoStatus('vdo0 normal - online online 1234 262144');
    expect(s).to.deep.include({ device: 'vdo0', operatingMode: 'normal', inRecovery: false, indexState: 'online', compressionState: 'online', physicalBlocks: { used: 1234, total: 262144 } });
    expect(parseVdoStatus('vdo0 recovering recovering opening offline 1 2').inRecovery).to.equal(true);
    expect(vdoMessages.dump('queues', 'vdo')).to.equal('dump queues vdo');
    expect(() => vdoMessages.dump('everything' as never)).to.throw(RangeError);
  });

  it('property: mutated lines fail only with DmParseError', () => {
    expectOnlyParseErrors([parseEbs, parseVdo, parseZoned, parseZonedStatus, parseVdoStatus], ['/dev/sda 128 2 4', 'V4 /dev/dm-1 786432 512 65550 5000 hash 1 logical 3 physical 2', '8:0 8:16', '3000 zones 10/40 cache 1/2 random 3/4 sequential', 'vdo0 normal - online online 1234 262144'], 1000);
  });
});
