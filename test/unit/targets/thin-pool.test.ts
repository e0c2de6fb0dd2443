import { expect } from 'chai';
import fc from 'fast-check';
import { THIN_MAX_DEVICE_ID, Table, parseStatus, targets, thinPoolMessages } from '../../../ts/index';
import { parseThinPool, parseThinPoolStatus } from '../../../ts/targets/thin-pool';
import { devArb, fieldOf, expectOnlyParseErrors } from './property';

const devs = { metadataDevice: '7:0', dataDevice: { major: 7, minor: 1 } };

describe('targets: thin-pool', () => {
  it('builds the kernel params from typed options, features in the kernel order, the count always written', () => {
    expect(targets.thinPool({ ...devs, blockSize: 128, lowWaterMark: 0 }).params).to.equal('7:0 7:1 128 0 0');
    const t = targets.thinPool({ ...devs, blockSize: 1024, lowWaterMark: 8, errorIfNoSpace: true, noDiscardPassdown: true, skipBlockZeroing: true, ignoreDiscard: true });
    expect(t.params).to.equal('7:0 7:1 1024 8 4 skip_block_zeroing ignore_discard no_discard_passdown error_if_no_space');
    expect(t.features).to.deep.equal(['skip_block_zeroing', 'ignore_discard', 'no_discard_passdown', 'error_if_no_space']);
    expect(t).to.deep.include({ type: 'thin-pool', metadataDevice: '7:0', dataDevice: '7:1', blockSize: 1024, lowWaterMark: 8, skipBlockZeroing: true, ignoreDiscard: true, noDiscardPassdown: true, readOnly: false, errorIfNoSpace: true });
    expect(targets.thinPool({ metadataDevice: '/dev/loop0', dataDevice: '/dev/loop1', blockSize: 2097152, lowWaterMark: 2 ** 40, readOnly: true }).params).to.equal('/dev/loop0 /dev/loop1 2097152 1099511627776 1 read_only');
  });

  it('refuses bad options with the field named, before any ioctl', () => {
    expect(() => targets.thinPool({ ...devs, blockSize: 64, lowWaterMark: 0 })).to.throw(RangeError, /thinPool\.blockSize/);
    expect(() => targets.thinPool({ ...devs, blockSize: 192, lowWaterMark: 0 })).to.throw(RangeError, /^Expected a multiple of 128 from 128 to 2097152 for thinPool\.blockSize but received number 192$/);
    expect(() => targets.thinPool({ ...devs, blockSize: 4194304, lowWaterMark: 0 })).to.throw(RangeError, /thinPool\.blockSize/);
    expect(() => targets.thinPool({ ...devs, blockSize: '128' as never, lowWaterMark: 0 })).to.throw(TypeError, /thinPool\.blockSize/);
    expect(() => targets.thinPool({ ...devs, blockSize: 128, lowWaterMark: -1 })).to.throw(RangeError, /thinPool\.lowWaterMark/);
    expect(() => targets.thinPool({ ...devs, blockSize: 128, lowWaterMark: 2 ** 53 })).to.throw(RangeError, /thinPool\.lowWaterMark/);
    expect(() => targets.thinPool({ ...devs, blockSize: 128, lowWaterMark: 0, readOnly: 'yes' as never })).to.throw(TypeError, /thinPool\.readOnly/);
    expect(() => targets.thinPool({ metadataDevice: '7:0', dataDevice: { major: 7, minor: 0 }, blockSize: 128, lowWaterMark: 0 })).to.throw(RangeError, /thinPool\.dataDevice/);
    expect(() => targets.thinPool({ ...devs, dataDevice: 'loop1', blockSize: 128, lowWaterMark: 0 })).to.throw(/thinPool\.dataDevice/);
    expect(() => targets.thinPool({ ...devs, blockSize: 128, lowWaterMark: 0, zeroing: false } as never)).to.throw(TypeError, /unknown option "zeroing"/);
    // The kernel reads at most 4 feature args.
    expect(() => targets.thinPool({ ...devs, blockSize: 128, lowWaterMark: 0, skipBlockZeroing: true, ignoreDiscard: true, noDiscardPassdown: true, readOnly: true, errorIfNoSpace: true })).to.throw(RangeError, /at most 4/);
  });

  it('parses what users and the kernel write: no feature count, any order and case, repeats', () => {
    expect(parseThinPool('7:0 7:1 128 0').params).to.equal('7:0 7:1 128 0 0');
    expect(parseThinPool('7:0 7:1 128 0 0').features).to.deep.equal([]);
    const t = parseThinPool('7:4 7:1 1024 8 4 error_if_no_space ignore_discard no_discard_passdown skip_block_zeroing');
    expect(t.params).to.equal('7:4 7:1 1024 8 4 skip_block_zeroing ignore_discard no_discard_passdown error_if_no_space');
    expect(parseThinPool('7:5 7:1 2097152 0 2 IGNORE_DISCARD ignore_discard').params).to.equal('7:5 7:1 2097152 0 1 ignore_discard');
    expect(parseThinPool('7:0 7:1 128 16 1 read_only')).to.deep.include({ readOnly: true, lowWaterMark: 16 });
    expect(parseThinPool('7:0 7:1 128 16 1 read_only')).to.deep.equal(targets.thinPool({ metadataDevice: '7:0', dataDevice: '7:1', blockSize: 128, lowWaterMark: 16, readOnly: true }));
    expect(fieldOf(() => parseThinPool('7:0 7:0 128 0'))).to.equal('data dev');
    expect(fieldOf(() => parseThinPool('7:0 sdb 128 0'))).to.equal('data dev');
    expect(fieldOf(() => parseThinPool('7:0 7:1 100 0'))).to.equal('data block size');
    expect(fieldOf(() => parseThinPool('7:0 7:1 64 0'))).to.equal('data block size');
    expect(fieldOf(() => parseThinPool('7:0 7:1 128'))).to.equal('low water mark');
    expect(fieldOf(() => parseThinPool('7:0 7:1 128 -1'))).to.equal('low water mark');
    expect(fieldOf(() => parseThinPool('7:0 7:1 128 0 1 fast'))).to.equal('feature args');
    expect(fieldOf(() => parseThinPool('7:0 7:1 128 0 2 read_only'))).to.equal('feature args count');
    expect(fieldOf(() => parseThinPool('7:0 7:1 128 0 5 read_only read_only read_only read_only read_only'))).to.equal('feature args count');
    expect(fieldOf(() => parseThinPool('7:0 7:1 128 0 1 read_only x'))).to.equal('params');
  });

  it('reads every status form: counts, held root, modes, discard and no-space configs, needs_check, Fail, Error', () => {
    const s = parseThinPoolStatus('7 215/2048 40/1024 - rw discard_passdown queue_if_no_space - 512 ');
    if (s.failed !== false) throw new Error('typed');
    expect(s).to.deep.include({ transactionId: 7n, heldMetadataRoot: null, mode: 'rw', discard: 'discard_passdown', discardPassdown: true, noSpace: 'queue', needsCheck: false, metadataLowWatermark: 512, extra: [] });
    expect(s.metadata).to.deep.equal({ used: 215, total: 2048 });
    expect(s.data).to.deep.equal({ used: 40, total: 1024 });
    const big = parseThinPoolStatus('18446744073709551615 216/2048 40/1024 30 ro no_discard_passdown error_if_no_space needs_check 512');
    expect(big).to.deep.include({ transactionId: 18446744073709551615n, heldMetadataRoot: 30, mode: 'ro', discard: 'no_discard_passdown', discardPassdown: false, noSpace: 'error', needsCheck: true });
    expect(parseThinPoolStatus('0 214/2048 16/16 - out_of_data_space ignore_discard error_if_no_space - 512')).to.deep.include({ mode: 'out_of_data_space', discard: 'ignore_discard', discardPassdown: false });
    expect(parseThinPoolStatus('Fail')).to.deep.include({ failed: 'Fail', extra: [] });
    expect(parseThinPoolStatus('Error')).to.deep.include({ failed: 'Error' });
    expect(parseThinPoolStatus('0 1/2 0/0 - rw discard_passdown queue_if_no_space - 1 newer words').extra).to.deep.equal(['newer', 'words']);
    expect(fieldOf(() => parseThinPoolStatus('18446744073709551616 1/2 0/0 - rw discard_passdown queue_if_no_space - 1'))).to.equal('transaction id');
    expect(fieldOf(() => parseThinPoolStatus('0 1-2 0/0 - rw discard_passdown queue_if_no_space - 1'))).to.equal('metadata blocks');
    expect(fieldOf(() => parseThinPoolStatus('0 1/2 0 - rw discard_passdown queue_if_no_space - 1'))).to.equal('data blocks');
    expect(fieldOf(() => parseThinPoolStatus('0 1/2 0/0 x rw discard_passdown queue_if_no_space - 1'))).to.equal('held metadata root');
    expect(fieldOf(() => parseThinPoolStatus('0 1/2 0/0 - rx discard_passdown queue_if_no_space - 1'))).to.equal('pool mode');
    expect(fieldOf(() => parseThinPoolStatus('0 1/2 0/0 - rw discard queue_if_no_space - 1'))).to.equal('discard config');
    expect(fieldOf(() => parseThinPoolStatus('0 1/2 0/0 - rw discard_passdown wait - 1'))).to.equal('no space config');
    expect(fieldOf(() => parseThinPoolStatus('0 1/2 0/0 - rw discard_passdown queue_if_no_space ok 1'))).to.equal('needs check');
    expect(fieldOf(() => parseThinPoolStatus('0 1/2 0/0 - rw discard_passdown queue_if_no_space -'))).to.equal('metadata low watermark');
    expect(fieldOf(() => parseThinPoolStatus(''))).to.equal('transaction id');
    const [row] = parseStatus('0 131072 thin-pool 0 213/2048 0/1024 - rw discard_passdown queue_if_no_space - 512 ');
    expect(row?.status.known && row.status.type === 'thin-pool' && row.status.failed === false && row.status.data.total).to.equal(1024);
  });

  it('makes the messages the kernel takes, checking their arguments', () => {
    expect(thinPoolMessages.createThin(0)).to.equal('create_thin 0');
    expect(thinPoolMessages.createThin(THIN_MAX_DEVICE_ID)).to.equal('create_thin 16777215');
    expect(thinPoolMessages.createSnap(1, 0)).to.equal('create_snap 1 0');
    expect(thinPoolMessages.delete(3)).to.equal('delete 3');
    expect(thinPoolMessages.setTransactionId(0, 7)).to.equal('set_transaction_id 0 7');
    expect(thinPoolMessages.setTransactionId(7n, 18446744073709551615n)).to.equal('set_transaction_id 7 18446744073709551615');
    expect(thinPoolMessages.reserveMetadataSnap()).to.equal('reserve_metadata_snap');
    expect(thinPoolMessages.releaseMetadataSnap()).to.equal('release_metadata_snap');
    expect(() => thinPoolMessages.createThin(2 ** 24)).to.throw(RangeError, /^Expected an integer from 0 to 16777215 for deviceId but received number 16777216$/);
    expect(() => thinPoolMessages.createThin(-1)).to.throw(RangeError, /deviceId/);
    expect(() => thinPoolMessages.createThin('0' as never)).to.throw(TypeError, /deviceId/);
    expect(() => thinPoolMessages.createSnap(1, 1.5)).to.throw(RangeError, /originId/);
    expect(() => thinPoolMessages.delete(undefined as never)).to.throw(TypeError, /deviceId/);
    expect(() => thinPoolMessages.setTransactionId(-1, 0)).to.throw(RangeError, /current/);
    expect(() => thinPoolMessages.setTransactionId(0, 2n ** 64n)).to.throw(RangeError, /next/);
    expect(() => thinPoolMessages.setTransactionId(0, 2 ** 53)).to.throw(RangeError, /next/);
    expect(() => thinPoolMessages.setTransactionId(0, '1' as never)).to.throw(TypeError, /next/);
  });

  it('property: random valid targets round-trip through format and parse', () => {
    fc.assert(
      fc.property(
        fc.record({
          metadataDevice: devArb,
          dataDevice: devArb,
          blockSize: fc.integer({ min: 1, max: 16384 }).map((n) => n * 128),
          lowWaterMark: fc.oneof(fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER)),
          skipBlockZeroing: fc.boolean(),
          ignoreDiscard: fc.boolean(),
          noDiscardPassdown: fc.boolean(),
          readOnly: fc.boolean(),
          errorIfNoSpace: fc.boolean(),
        }),
        (o) => {
          fc.pre(o.metadataDevice !== o.dataDevice);
          fc.pre([o.skipBlockZeroing, o.ignoreDiscard, o.noDiscardPassdown, o.readOnly, o.errorIfNoSpace].filter(Boolean).length <= 4);
          const t = targets.thinPool(o);
          expect(parseThinPool(t.params)).to.deep.equal(t);
          const line = `0 65536 thin-pool ${t.params}`;
          expect(Table.parse(line).toString()).to.equal(line);
          expect(Table.parse(`${line} `).rows[0]?.target).to.deep.equal(t);
        },
      ),
    );
  });

  it('property: random and mutated lines never crash or hang, and fail only with DmParseError', () => {
    expectOnlyParseErrors([parseThinPool, parseThinPoolStatus], [
        '7:4 7:1 1024 8 4 skip_block_zeroing ignore_discard no_discard_passdown error_if_no_space',
        '7:0 7:1 128 16 1 read_only',
        '18446744073709551615 216/2048 40/1024 30 rw discard_passdown queue_if_no_space - 512',
        '0 214/2048 16/16 - out_of_data_space discard_passdown error_if_no_space needs_check 512',
      ]);
  });
});
