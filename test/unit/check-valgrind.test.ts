// scripts/check-valgrind.js decides whether the kernel suite under Valgrind memcheck passed: fed
// reports shaped like memcheck's own XML, it must fail on the addon's errors and on memory
// corruption anywhere, and tolerate only node's own uninitialised-value reports.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const checker = resolve(__dirname, '..', '..', 'scripts', 'check-valgrind.js');

interface Frame {
  obj: string;
  fn: string;
}

function error(kind: string, what: string, frames: Frame[]): string {
  const stack = frames.map((f) => `<frame><ip>0x1</ip><obj>${f.obj}</obj><fn>${f.fn}</fn></frame>`).join('\n');
  return `<error><unique>0x1</unique><tid>1</tid><kind>${kind}</kind><what>${what}</what><stack>${stack}</stack></error>`;
}

function report(errors: string[], finished = true): string {
  const head = '<?xml version="1.0"?>\n<valgrindoutput>\n<protocolversion>4</protocolversion>\n<tool>memcheck</tool>\n<status><state>RUNNING</state></status>\n';
  if (!finished) return head + errors.join('\n');
  return `${head}${errors.join('\n')}\n<status><state>FINISHED</state></status>\n<errorcounts></errorcounts>\n</valgrindoutput>\n`;
}

const addon: Frame = { obj: '/work/build/Release/devmapper.node', fn: 'dm::pack(dm::Request const&amp;, unsigned char*, unsigned long)' };
const v8Scan: Frame = { obj: '/usr/bin/node', fn: 'heap::base::Stack::IteratePointersImpl' };
const nodeMain: Frame = { obj: '/usr/bin/node', fn: 'node::Start(int, char**)' };
const libc: Frame = { obj: '/usr/lib/x86_64-linux-gnu/libc.so.6', fn: 'ioctl' };

describe('the Valgrind report check (scripts/check-valgrind.js)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'devmapper-vg-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function check(name: string, xml: string | undefined): { status: number | null; out: string } {
    const file = join(dir, `${name}.xml`);
    if (xml !== undefined) writeFileSync(file, xml);
    const r = spawnSync(process.execPath, [checker, file], { encoding: 'utf8' });
    return { status: r.status, out: r.stdout + r.stderr };
  }

  it('passes a finished report with no error, and one with only node’s own uninitialised-value reports', () => {
    expect(check('clean', report([]))).to.include({ status: 0 });
    const v8 = check('v8', report([error('UninitCondition', 'Conditional jump or move depends on uninitialised value(s)', [v8Scan, nodeMain])]));
    expect(v8.status).to.equal(0);
    expect(v8.out).to.match(/0 finding\(s\), 1 tolerated/);
  });

  it('tolerates V8\'s conservative stack scan over the addon\'s frames, not an uninitialised value the addon itself uses', () => {
    const scan: Frame = { obj: '/usr/bin/node', fn: 'heap::base::(anonymous namespace)::IteratePointersInStack(heap::base::StackVisitor*, void const*, void const*, void const*) [clone .constprop.0]' };
    const deliver: Frame = { obj: '/work/build/Release/devmapper.node', fn: 'devmapper::IoPool::deliverSome()' };
    const through = check('scan-through-addon', report([error('UninitCondition', 'Conditional jump or move depends on uninitialised value(s)', [scan, v8Scan, deliver, nodeMain])]));
    expect(through.status, through.out).to.equal(0);
    expect(through.out).to.match(/0 finding\(s\), 1 tolerated/);
    // The same chain, but the jump is the addon's own: fatal.
    const own = check('addon-uninit', report([error('UninitCondition', 'Conditional jump or move depends on uninitialised value(s)', [deliver, scan, nodeMain])]));
    expect(own.status).to.equal(1);
    // A scan is no excuse for memory corruption.
    const bad = check('scan-invalid', report([error('InvalidRead', 'Invalid read of size 8', [scan, deliver, nodeMain])]));
    expect(bad.status).to.equal(1);
  });

  it('fails on any error with a frame in the addon, leaks and uninitialised values included', () => {
    for (const [kind, what] of [
      ['UninitCondition', 'Conditional jump or move depends on uninitialised value(s)'],
      ['Leak_DefinitelyLost', '64 bytes in 1 blocks are definitely lost'],
      ['InvalidRead', 'Invalid read of size 8'],
    ] as const) {
      const r = check(kind, report([error(kind, what, [libc, addon, nodeMain])]));
      expect(r.status, kind).to.equal(1);
      expect(r.out).to.include(`FINDING: ${kind}`).and.to.include('dm::pack(dm::Request const&, unsigned char*, unsigned long)');
    }
  });

  it('fails on memory corruption anywhere, even with no addon frame (an ioctl handed unaddressable bytes)', () => {
    for (const kind of ['InvalidWrite', 'InvalidFree', 'MismatchedFree', 'Overlap', 'SyscallParam']) {
      expect(check(`node-${kind}`, report([error(kind, 'something', [libc, nodeMain])])).status, kind).to.equal(1);
    }
  });

  it('fails on a report that is missing, cut short or not a report', () => {
    expect(check('missing', undefined).status).to.equal(1);
    expect(check('cut', report([], false)).out).to.include('cut short');
    expect(check('cut', report([], false)).status).to.equal(1);
    expect(check('garbage', 'kernel tests: FAILED').status).to.equal(1);
  });
});
