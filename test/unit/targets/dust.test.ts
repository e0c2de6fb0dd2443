import { expect } from 'chai';
import fc from 'fast-check';
import { Table, dustMessages, parseDustClearBadBlocks, parseDustCountBadBlocks, parseDustListBadBlocks, parseDustQueryBlock, parseStatus, targets } from '../../../ts/index';
import { parseDust, parseDustStatus } from '../../../ts/targets/dust';
import { devArb, fieldOf, expectOnlyParseErrors } from './property';

describe('targets: dust', () => {
  it('builds the kernel params from typed options (block size in bytes)', () => {
    const t = targets.dust({ device: { major: 7, minor: 0 }, offset: 2048, blockSize: 4096 });
    expect(t).to.deep.include({ type: 'dust', device: '7:0', offset: 2048, blockSize: 4096, params: '7:0 2048 4096' });
    expect(Object.isFrozen(t)).to.equal(true);
    expect(targets.dust({ device: '/dev/sdb', offset: 0, blockSize: 1073741824 }).params).to.equal('/dev/sdb 0 1073741824');
  });

  it('refuses bad options with the field named, before any ioctl', () => {
    const o = { device: '7:0', offset: 0, blockSize: 512 };
    expect(() => targets.dust({ ...o, blockSize: 256 })).to.throw(RangeError, /for dust\.blockSize but received number 256/);
    expect(() => targets.dust({ ...o, blockSize: 3072 })).to.throw(RangeError, /Expected a power of two from 512 to 1073741824 for dust\.blockSize but received number 3072/);
    expect(() => targets.dust({ ...o, blockSize: 2 ** 31 })).to.throw(RangeError, /dust\.blockSize/);
    expect(() => targets.dust({ ...o, blockSize: '4096' as never })).to.throw(TypeError, /dust\.blockSize/);
    expect(() => targets.dust({ ...o, offset: -8 })).to.throw(RangeError, /dust\.offset/);
    expect(() => targets.dust({ ...o, device: 'sdb' })).to.throw(/dust\.device/);
    expect(() => targets.dust({ ...o, quiet: true } as never)).to.throw(TypeError, /unknown option "quiet"/);
  });

  it('a Table refuses a row shorter than one block', () => {
    const t = targets.dust({ device: '7:0', offset: 0, blockSize: 4096 });
    expect(new Table([{ start: 0, length: 8, target: t }]).size).to.equal(8);
    expect(() => new Table([{ start: 0, length: 7, target: t }])).to.throw(RangeError, /rows\[0\]\.length/);
  });

  it('parses what users and the kernel write, refusing malformed params naming the field', () => {
    expect(parseDust('7:3  0 4096')).to.deep.equal(targets.dust({ device: '7:3', offset: 0, blockSize: 4096 }));
    expect(fieldOf(() => parseDust('7:3 0 1000'))).to.equal('blksz');
    expect(fieldOf(() => parseDust('7:3 0 256'))).to.equal('blksz');
    expect(fieldOf(() => parseDust('7:3 0 2147483648'))).to.equal('blksz');
    expect(fieldOf(() => parseDust('7:3 0'))).to.equal('blksz');
    expect(fieldOf(() => parseDust('7:3 -1 512'))).to.equal('offset');
    expect(fieldOf(() => parseDust('dev 0 512'))).to.equal('device');
    expect(fieldOf(() => parseDust('7:3 0 512 0'))).to.equal('params');
    const line = '0 16384 dust 7:3 0 4096';
    expect(Table.parse(line).toString()).to.equal(line);
  });

  it('reads its status: the device, bypass or fail_read_on_bad_block, verbose or quiet', () => {
    expect(parseDustStatus('7:3 bypass verbose')).to.deep.include({ type: 'dust', known: true, device: '7:3', mode: 'bypass', failReadOnBadBlock: false, quiet: false, extra: [] });
    expect(parseDustStatus('252:17 fail_read_on_bad_block quiet')).to.deep.include({ mode: 'fail_read_on_bad_block', failReadOnBadBlock: true, quiet: true });
    expect(parseDustStatus('7:3 bypass verbose more').extra).to.deep.equal(['more']);
    expect(fieldOf(() => parseDustStatus('7:3 fail verbose'))).to.equal('mode');
    expect(fieldOf(() => parseDustStatus('7:3 bypass'))).to.equal('quiet mode');
    expect(fieldOf(() => parseDustStatus('7:3 bypass loud'))).to.equal('quiet mode');
    expect(fieldOf(() => parseDustStatus('bypass verbose'))).to.equal('device');
    const [row] = parseStatus('0 16384 dust 7:3 fail_read_on_bad_block verbose');
    expect(row?.status.known && row.status.type === 'dust' && row.status.failReadOnBadBlock).to.equal(true);
  });

  it('makes the messages the kernel takes, checking their arguments', () => {
    expect(dustMessages.addBadBlock(60)).to.equal('addbadblock 60');
    expect(dustMessages.addBadBlock(60, 3)).to.equal('addbadblock 60 3');
    expect(dustMessages.addBadBlock(0, 0)).to.equal('addbadblock 0 0');
    expect(dustMessages.removeBadBlock(60)).to.equal('removebadblock 60');
    expect(dustMessages.queryBlock(72)).to.equal('queryblock 72');
    expect(dustMessages.countBadBlocks()).to.equal('countbadblocks');
    expect(dustMessages.listBadBlocks()).to.equal('listbadblocks');
    expect(dustMessages.clearBadBlocks()).to.equal('clearbadblocks');
    expect(dustMessages.enable()).to.equal('enable');
    expect(dustMessages.disable()).to.equal('disable');
    expect(dustMessages.quiet()).to.equal('quiet');
    expect(() => dustMessages.addBadBlock(-1)).to.throw(RangeError, /blockNumber/);
    expect(() => dustMessages.addBadBlock(1, 256)).to.throw(RangeError, /Expected an integer from 0 to 255 for writeFailCount but received number 256/);
    expect(() => dustMessages.queryBlock('1' as never)).to.throw(TypeError, /blockNumber/);
    expect(() => dustMessages.removeBadBlock(2 ** 53)).to.throw(RangeError, /blockNumber/);
  });

  it('reads the answers of queryblock, countbadblocks, listbadblocks and clearbadblocks', () => {
    expect(parseDustQueryBlock('dust_query_block: block 3 found in badblocklist')).to.deep.equal({ block: 3, bad: true });
    expect(parseDustQueryBlock('dust_query_block: block 4 not found in badblocklist')).to.deep.equal({ block: 4, bad: false });
    expect(parseDustQueryBlock('queryblock: block 72 found in badblocklist\n')).to.deep.equal({ block: 72, bad: true });
    expect(parseDustCountBadBlocks('countbadblocks: 0 badblock(s) found')).to.equal(0);
    expect(parseDustCountBadBlocks('countbadblocks: 895 badblock(s) found')).to.equal(895);
    expect(parseDustListBadBlocks('3\n5\n2048\n')).to.deep.equal([3, 5, 2048]);
    expect(parseDustListBadBlocks('No blocks in badblocklist')).to.deep.equal([]);
    expect(parseDustClearBadBlocks('dust_clear_badblocks: badblocks cleared')).to.equal(true);
    expect(parseDustClearBadBlocks('dust_clear_badblocks: no badblocks found')).to.equal(false);
    expect(parseDustClearBadBlocks('clearbadblocks: no badblocks found')).to.equal(false);
    expect(fieldOf(() => parseDustQueryBlock(undefined))).to.equal('answer');
    expect(fieldOf(() => parseDustQueryBlock('dust_query_block: block x found in badblocklist'))).to.equal('answer');
    expect(fieldOf(() => parseDustQueryBlock('dust_query_block: block 99999999999999999999 found in badblocklist'))).to.equal('block');
    expect(fieldOf(() => parseDustCountBadBlocks('countbadblocks: many'))).to.equal('answer');
    expect(fieldOf(() => parseDustListBadBlocks(''))).to.equal('answer');
    expect(fieldOf(() => parseDustListBadBlocks('3\nfive\n'))).to.equal('block');
    expect(fieldOf(() => parseDustClearBadBlocks('cleared'))).to.equal('answer');
  });

  it('property: random valid targets round-trip; list answers of any blocks parse back', () => {
    fc.assert(
      fc.property(devArb, fc.maxSafeNat(), fc.integer({ min: 9, max: 30 }), (device, offset, shift) => {
        const t = targets.dust({ device, offset, blockSize: 2 ** shift });
        expect(parseDust(t.params)).to.deep.equal(t);
        const line = `0 2097152 dust ${t.params}`;
        expect(Table.parse(line).toString()).to.equal(line);
      }),
    );
    fc.assert(
      fc.property(fc.uniqueArray(fc.maxSafeNat(), { minLength: 1, maxLength: 50 }), (blocks) => {
        const sorted = [...blocks].sort((a, b) => a - b);
        expect(parseDustListBadBlocks(sorted.map((b) => `${b}\n`).join(''))).to.deep.equal(sorted);
      }),
    );
  });

  it('property: random and mutated lines and answers never crash or hang, and fail only with DmParseError', () => {
    const parsers = [parseDust, parseDustStatus, parseDustQueryBlock, parseDustCountBadBlocks, parseDustListBadBlocks, parseDustClearBadBlocks];
    expectOnlyParseErrors(parsers, ['7:3 0 4096', '7:3 fail_read_on_bad_block quiet', 'dust_query_block: block 3 found in badblocklist', 'countbadblocks: 3 badblock(s) found', '3\n5\n2048\n', 'No blocks in badblocklist', 'dust_clear_badblocks: badblocks cleared']);
  });
});
