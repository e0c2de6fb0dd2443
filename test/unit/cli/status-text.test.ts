import { expect } from 'chai';
import { parseStatus, targets, Table } from '../../../ts/index';
import { humanBytes, humanSectors, percent, statusFields, statusRowRaw, statusRowText } from '../../../ts/cli/status-text';
import type { StatusRow } from '../../../ts/status';

function row(text: string): StatusRow {
  const [r] = parseStatus(text);
  if (r === undefined) throw new Error(`no row in ${text}`);
  return r;
}

function fields(text: string): Record<string, string> {
  return Object.fromEntries(statusFields(row(text).status));
}

describe('cli status text', () => {
  it('prints sizes in binary units and percentages that reach 100% only when done', () => {
    expect(humanBytes(512)).to.equal('512 B');
    expect(humanBytes(1024 * 1024)).to.equal('1 MiB');
    expect(humanBytes(1536 * 1024 * 1024)).to.equal('1.5 GiB');
    expect(humanBytes(1023 * 1024 + 1023)).to.equal('1023.9 KiB');
    expect(humanSectors(2048)).to.equal('2048 sectors (1 MiB)');
    expect(humanSectors(1)).to.equal('1 sector (512 B)');
    expect(percent(1999, 2000)).to.equal('99.9%');
    expect(percent(2000, 2000)).to.equal('100.0%');
    expect(percent(0, 0)).to.equal('-');
  });

  it('thin-pool: data and metadata as used/total with percentages, the mode and needs_check; the block size from the table', () => {
    const r = row('0 131072 thin-pool 0 213/2048 10/1024 - rw discard_passdown queue_if_no_space - 512 ');
    const f = Object.fromEntries(statusFields(r.status));
    expect(f.metadata).to.equal('213/2048 blocks (10.4%, 852 KiB of 8 MiB)');
    expect(f.data).to.equal('10/1024 blocks (0.9%)');
    expect(f.mode).to.equal('read-write');
    expect(f['needs check']).to.equal('no');
    expect(f['no space']).to.equal('queue writes');
    const pool = targets.thinPool({ metadataDevice: '7:0', dataDevice: '7:1', blockSize: 128, lowWaterMark: 0 });
    expect(Object.fromEntries(statusFields(r.status, pool)).data).to.equal('10/1024 blocks (0.9%, 640 KiB of 64 MiB)');
    expect(fields('0 8 thin-pool 1 2/16 0/4 - ro discard_passdown error_if_no_space needs_check 4')).to.include({ mode: 'read-only', 'needs check': 'yes', 'no space': 'error writes' });
    expect(fields('0 8 thin-pool Fail')).to.deep.equal({ state: 'Fail' });
  });

  it('thin: mapped sectors in human units', () => {
    expect(fields('0 65536 thin 896 38527')).to.deep.equal({ mapped: '896 sectors (448 KiB)', 'highest mapped': 'sector 38527' });
    expect(fields('0 65536 thin 0 -')['highest mapped']).to.equal('none');
  });

  it('multipath: groups, path states and fail counts; queue_if_no_path from the table', () => {
    const r = row('0 32768 multipath 2 0 0 0 1 1 A 0 2 0 7:0 A 0 7:1 F 1');
    const f = Object.fromEntries(statusFields(r.status));
    expect(f['group 1']).to.equal('active, 1/2 paths active');
    expect(f['  path 7:0']).to.equal('active, 0 failures');
    expect(f['  path 7:1']).to.equal('failed, 1 failure');
    expect(f['queue if no path']).to.equal(undefined);
    const table = Table.parse('0 32768 multipath 1 queue_if_no_path 0 1 1 round-robin 0 2 1 7:0 1 7:1 1');
    const t = table.rows[0]?.target;
    expect(Object.fromEntries(statusFields(r.status, t))['queue if no path']).to.equal('yes');
  });

  it('raid: health letters, sync ratio and action', () => {
    expect(fields('0 16384 raid raid1 2 AA 16384/16384 idle 0 0 -')).to.include({ health: 'AA (in sync)', sync: '16384/16384 sectors (100.0%), action idle' });
    expect(fields('0 16384 raid raid1 2 Aa 4096/16384 recover 0 0 -')).to.include({ health: 'Aa (not in sync)', sync: '4096/16384 sectors (25.0%), action recover' });
    expect(fields('0 16384 raid raid1 2 A- 16384/16384 idle 0 0 -').health).to.equal('A- (in sync, degraded)');
  });

  it('mirror: sync and per-leg health', () => {
    expect(fields('0 16384 mirror 2 7:7 7:8 8/16 1 AD 1 core')).to.include({ sync: '8/16 regions (50.0%), syncing', legs: '7:7 A (alive), 7:8 D (write-failed)', log: 'core' });
  });

  it('snapshot: COW use and metadata; snapshot-merge: what is left', () => {
    expect(fields('0 65536 snapshot 48/8192 16')).to.include({ state: 'valid', 'cow used': '48/8192 sectors (0.5%, 24 KiB of 4 MiB)', metadata: '16 sectors (8 KiB)' });
    expect(fields('0 65536 snapshot Invalid')).to.deep.equal({ state: 'Invalid' });
    expect(fields('0 8388608 snapshot-merge 180480/2097152 712').merging).to.equal('179768 sectors (87.7 MiB) left');
    expect(fields('0 8388608 snapshot-merge 712/2097152 712').merging).to.equal('done');
  });

  it('cache: hits, misses, dirty blocks, mode and policy', () => {
    const f = fields('0 65536 cache 8 7/1024 512 6/64 83 429 24 40 0 6 6 1 writeback 2 migration_threshold 2048 smq 0 rw -');
    expect(f).to.include({ dirty: '6 blocks (1.5 MiB)', mode: 'writeback', policy: 'smq', reads: '83 hits, 429 misses (16.2% hits)', cache: '6/64 blocks (9.3%, 1.5 MiB of 16 MiB)' });
  });

  it('every other typed status has its fields, and a raw status its words', () => {
    expect(fields('0 16384 era 8 12/1024 3 43')).to.include({ 'current era': '3', 'held root': '43' });
    expect(fields('0 64664 integrity 1 64664 -')).to.include({ mismatches: '1', recalculating: 'no' });
    expect(fields('0 8192 delay 0 0 1')).to.deep.equal({ 'held back': '0 reads, 0 writes, 1 flushes' });
    expect(fields('0 16384 verity C')).to.deep.equal({ verification: 'corruption found (C)' });
    expect(fields('0 8192 striped 2 7:0 7:1 1 AD')).to.deep.equal({ stripes: '7:0 alive, 7:1 dead' });
    expect(fields('0 16384 dust 7:3 fail_read_on_bad_block verbose')).to.include({ logging: 'verbose' });
    expect(fields('0 65536 writecache 0 2040 1880 0 320 160 160 0 0 0 160 0 0 0').blocks).to.equal('160/2040 in use (7.8%), 1880 free, 0 being written back');
    expect(fields('0 32768 clone 8 6/1024 8 4096/4096 0 0 4 hydration_threshold 1 hydration_batch_size 1 rw').hydrated).to.match(/^4096\/4096 regions \(100\.0%.*complete$/);
    expect(fields('0 1048576 zoned 1024 zones 100/200 random 600/824 sequential').zones).to.equal('1024');
    expect(fields('0 8192 flakey ')).to.deep.equal({});
    expect(fields('0 8 linear ')).to.deep.equal({});
    expect(fields('0 8 newtype a b  c')).to.deep.equal({ status: 'a b c' });
  });

  it('a row prints as a heading and aligned fields, or raw as dmsetup does', () => {
    const r = row('0 16384 raid raid1 2 AA 16384/16384 idle 0 0 -');
    const lines = statusRowText(r).split('\n');
    expect(lines[0]).to.equal('0 16384 raid (8 MiB)');
    expect(lines[1]).to.equal('  level        raid1');
    expect(lines.every((l, i) => i === 0 || l.startsWith('  '))).to.equal(true);
    expect(statusRowRaw(r)).to.equal('0 16384 raid raid1 2 AA 16384/16384 idle 0 0 -');
    expect(statusRowRaw(row('0 8 linear '))).to.equal('0 8 linear ');
  });
});
