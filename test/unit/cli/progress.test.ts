import { expect } from 'chai';
import { parseStatus } from '../../../ts/index';
import { ProgressBar, deviceSyncState, syncStateOf, type ProgressOutput } from '../../../ts/cli/progress';

function sink(isTTY: boolean, columns?: number): ProgressOutput & { text: string } {
  const out = { text: '', isTTY, columns, write(s: string) { out.text += s; return true; } };
  return out;
}

function status(text: string) {
  const [r] = parseStatus(text);
  if (r === undefined) throw new Error(text);
  return r.status;
}

describe('cli progress', () => {
  it('draws a bar in place on a terminal, as wide as its columns, only when it changes', () => {
    const out = sink(true, 40);
    const bar = new ProgressBar(out, 'sync');
    bar.update(0.25, '1/4');
    bar.update(0.25, '1/4');
    bar.update(0.5, '2/4');
    bar.finish(1, '4/4');
    const draws = out.text.split('\r').filter((s) => s !== '');
    expect(draws).to.have.length(3);
    // The bar ends each draw with the erase-to-end-of-line escape (ESC [K).
    // eslint-disable-next-line no-control-regex -- that escape is what is checked
    expect(draws[0]).to.match(/^sync \[#+-+\] {2}25\.0% 1\/4\x1b\[K$/);
    // eslint-disable-next-line no-control-regex -- the same escape
    expect(draws[2]).to.match(/^sync \[#+\] 100\.0% 4\/4\x1b\[K\n$/);
    for (const d of draws) expect(d.replace('\x1b[K', '').replace('\n', '').length).to.be.at.most(39);
    expect(ProgressBar.line('sync', 0.5, 'a long text that does not fit anywhere in the line', 40)).to.have.length(39);
    expect(ProgressBar.line('x', 0.5, '', 200)).to.equal(`x [${'#'.repeat(20)}${'-'.repeat(20)}]  50.0%`);
  });

  it('writes nothing when piped, or just one final line when asked', () => {
    const piped = sink(false);
    const bar = new ProgressBar(piped, 'sync');
    bar.update(0.5);
    bar.finish(1, 'done');
    expect(piped.text).to.equal('');
    const once = sink(false);
    const last = new ProgressBar(once, 'merge', { finalLine: true });
    last.update(0.3, 'x');
    last.finish(1, 'done');
    last.finish(1, 'again');
    expect(once.text).to.equal(`merge [${'#'.repeat(40)}] 100.0% done\n`);
  });

  it('raid and mirror sync: the ratio, done when the recipes say in sync', () => {
    const syncing = syncStateOf(status('0 16384 raid raid1 2 Aa 4096/16384 recover 0 0 -'));
    expect(syncing).to.include({ kind: 'raid-sync', ratio: 0.25, done: false, failure: undefined });
    expect(syncStateOf(status('0 16384 raid raid1 2 AA 16384/16384 idle 0 0 -'))).to.include({ done: true, ratio: 1 });
    // A ratio complete while an action still runs is not done.
    expect(syncStateOf(status('0 16384 raid raid1 2 AA 16384/16384 resync 0 0 -'))?.done).to.equal(false);
    expect(syncStateOf(status('0 16384 mirror 2 7:7 7:8 8/16 1 AA 1 core'))).to.include({ kind: 'mirror-sync', ratio: 0.5, done: false });
    expect(syncStateOf(status('0 16384 mirror 2 7:7 7:8 16/16 1 AA 1 core'))?.done).to.equal(true);
  });

  it('snapshot merge: done when used sectors reach the metadata, the ratio against the first read; a failed merge is a failure', () => {
    const first = syncStateOf(status('0 8192 snapshot-merge 1016/8192 16'));
    expect(first).to.include({ kind: 'snapshot-merge', left: 1000, ratio: 0, done: false });
    expect(syncStateOf(status('0 8192 snapshot-merge 266/8192 16'), first)).to.include({ left: 250, ratio: 0.75 });
    expect(syncStateOf(status('0 8192 snapshot-merge 16/8192 16'), first)).to.include({ done: true, ratio: 1 });
    expect(syncStateOf(status('0 8192 snapshot-merge Merge failed'))?.failure).to.equal('merge stopped: Merge failed');
  });

  it('cache cleaning: done at no dirty block; a failed cache is a failure', () => {
    const first = syncStateOf(status('0 65536 cache 8 7/1024 512 6/64 83 429 24 40 0 6 8 1 writeback 2 migration_threshold 2048 cleaner 0 rw -'));
    expect(first).to.include({ kind: 'cache-clean', left: 8, done: false });
    expect(syncStateOf(status('0 65536 cache 8 7/1024 512 6/64 83 429 24 40 0 6 2 1 writeback 2 migration_threshold 2048 cleaner 0 rw -'), first)).to.include({ ratio: 0.75 });
    expect(syncStateOf(status('0 65536 cache 8 7/1024 512 6/64 83 429 24 40 0 6 0 1 writeback 2 migration_threshold 2048 cleaner 0 rw -'))).to.include({ done: true });
    expect(syncStateOf(status('0 65536 cache Fail'))?.failure).to.equal('the cache has failed (Fail)');
  });

  it('nothing to wait for on other targets; a device\'s rows weighted by length', () => {
    expect(syncStateOf(status('0 8 linear '))).to.equal(undefined);
    expect(deviceSyncState(parseStatus('0 8 linear \n8 8 zero '))).to.equal(undefined);
    const rows = parseStatus('0 16384 raid raid1 2 AA 16384/16384 idle 0 0 -\n16384 49152 raid raid1 2 Aa 0/49152 resync 0 0 -\n65536 8 zero ');
    const s = deviceSyncState(rows);
    expect(s?.total).to.include({ kind: 'raid-sync', ratio: 0.25, done: false });
    expect(s?.rows[2]).to.equal(undefined);
  });
});
