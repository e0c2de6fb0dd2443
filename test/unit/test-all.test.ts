// scripts/test-all.js is `npm test`: it runs the phases side by side, and CI trusts its exit
// status and its log. Small shell phases check that it runs phases at once up to its slots and
// never more, prints each phase's output in one prefixed piece, runs every phase that can
// run when one fails, skips the phases that need a failed one, and fails the run then.
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '..', '..');

type Step = [string[], Record<string, string>?];
interface Phase {
  name: string;
  needs: string[];
  steps: Step[] | (() => Step[]);
}
interface PhaseState {
  status: 'passed' | 'failed' | 'not run';
  code?: number;
  why?: string;
  start: number;
  end: number;
}
interface Runner {
  PHASES: Phase[];
  run(phases: Phase[], options: { slots: number; logDir: string; cwd?: string; write?: (s: string) => void }): Promise<{ ok: boolean; phases: Record<string, PhaseState> }>;
  selected(names: string[]): Phase[];
}

// A plain CommonJS script with no types of its own: the shape above is what it exports.
const runner = createRequire(__filename)(join(root, 'scripts', 'test-all.js')) as Runner;

const sh = (script: string): Step => [['sh', '-c', script]];

describe('scripts/test-all.js (npm test)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'devmapper-test-all-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function run(phases: Phase[], slots: number): Promise<{ ok: boolean; phases: Record<string, PhaseState>; out: string }> {
    let out = '';
    const r = await runner.run(phases, { slots, logDir: join(dir, 'logs'), cwd: dir, write: (s) => (out += s) });
    return { ...r, out };
  }

  it('runs two phases at once (each waits for the other to start) and prints each one\'s output in one piece, every line prefixed', async () => {
    // Each writes its lines only once the other has started: streamed output would interleave.
    const meet = (me: string, other: string): Step => sh(`touch ${me}; i=0; while [ ! -e ${other} ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done; [ -e ${other} ] || exit 9; for n in 1 2 3; do echo ${me} line $n; sleep 0.02; done`);
    const r = await run([
      { name: 'a', needs: [], steps: [meet('A', 'B')] },
      { name: 'b', needs: [], steps: [meet('B', 'A')] },
    ], 2);
    expect(r.ok, r.out).to.equal(true);
    const lines = r.out.split('\n');
    for (const name of ['a', 'b']) {
      const at = lines.flatMap((l, i) => (l.startsWith(`[${name}] `) ? [i] : []));
      expect(at.length, r.out).to.equal(4); // the command line, then its three lines
      expect((at[at.length - 1] ?? NaN) - (at[0] ?? NaN), `[${name}] lines are not one piece:\n${r.out}`).to.equal(at.length - 1);
      expect(lines[at[1] ?? -1]).to.equal(`[${name}] ${name.toUpperCase()} line 1`);
    }
    expect(r.out).to.match(/^ {2}a +passed/m).and.match(/^ {2}b +passed/m).and.contain('test: every phase passed');
  });

  it('with one slot never runs two phases at once, and runs a phase only after those it needs', async () => {
    const r = await run([
      { name: 'late', needs: ['first'], steps: [sh('true')] },
      { name: 'first', needs: [], steps: [sh('true')] },
      { name: 'other', needs: [], steps: [sh('true')] },
    ], 1);
    expect(r.ok, r.out).to.equal(true);
    const spans = Object.values(r.phases).map((s) => [s.start, s.end] as const).sort((x, y) => x[0] - y[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i]?.[0], r.out).to.be.at.least(spans[i - 1]?.[1] ?? Infinity);
    expect(r.phases['late']?.start, r.out).to.be.at.least(r.phases['first']?.end ?? Infinity);
  });

  it('a failing phase fails the run with its exit status; the phases that need it (and theirs) do not run; every other one still runs', async () => {
    const r = await run([
      { name: 'bad', needs: [], steps: [sh('echo broken; exit 3'), sh('echo never')] },
      { name: 'needs-bad', needs: ['bad'], steps: [sh('touch ran-1')] },
      { name: 'needs-that', needs: ['needs-bad'], steps: [sh('touch ran-2')] },
      { name: 'good', needs: [], steps: [sh('echo fine')] },
    ], 2);
    expect(r.ok).to.equal(false);
    expect(r.phases['bad']).to.deep.include({ status: 'failed', code: 3 });
    expect(r.phases['needs-bad']).to.deep.include({ status: 'not run', why: 'bad failed' });
    expect(r.phases['needs-that']).to.deep.include({ status: 'not run', why: 'needs-bad failed' });
    expect(r.phases['good']).to.deep.include({ status: 'passed' });
    expect(r.out).to.contain('[bad] broken').and.contain('[good] fine');
    expect(r.out).not.to.contain('never');
    expect(r.out).to.match(/^ {2}bad +FAILED \(exit 3\)/m).and.match(/^ {2}needs-bad .*NOT RUN \(bad failed\)/m);
    expect(r.out).to.contain('test: FAILED: bad, needs-bad, needs-that');
  });

  it('the end of the run repeats why each failed phase failed (mocha\'s failures, else the log\'s last lines), before the summary', async () => {
    const mochaLike = 'for i in $(seq 1 200); do echo "  ok $i"; done; printf "\\n  1 failing\\n\\n  1) suite\\n       a test:\\n     AssertionError: expected 1 to equal 2\\n"; exit 1';
    const r = await run([
      { name: 'tests', needs: [], steps: [sh(mochaLike)] },
      { name: 'other', needs: [], steps: [sh('for i in $(seq 1 100); do echo "line $i"; done; exit 4')] },
      { name: 'fine', needs: [], steps: [sh('echo fine')] },
      { name: 'coloured', needs: [], steps: [sh('for i in $(seq 1 100); do echo "  ok $i"; done; printf "\\033[31m  1 failing\\033[0m\\n  1) a coloured failure\\n"; for i in $(seq 1 40); do echo "    at frame $i"; done; exit 1')] },
    ], 2);
    expect(r.ok).to.equal(false);
    const coloured = r.out.slice(r.out.lastIndexOf('test: why coloured failed:'));
    expect(coloured, r.out).to.contain('1) a coloured failure').and.not.contain('ok 100');
    const end = r.out.slice(r.out.lastIndexOf('test: why tests failed:'));
    expect(r.out.indexOf('test: why tests failed:'), r.out).to.be.above(r.out.lastIndexOf('[tests]   ok 200'));
    expect(end, r.out).to.contain('[tests]   1 failing').and.contain('[tests]      AssertionError: expected 1 to equal 2');
    expect(end, r.out).not.to.contain('ok 200');
    expect(end, r.out).to.contain('test: why other failed:').and.contain('[other] line 100').and.contain('[other] line 71').and.not.contain('[other] line 70\n');
    expect(r.out, r.out).not.to.contain('test: why fine');
    expect(end.indexOf('test: summary'), r.out).to.be.above(end.indexOf('[other] line 100'));
  });

  it('a phase that cannot start, or is killed by a signal, fails', async () => {
    const r = await run([
      { name: 'missing', needs: [], steps: [[['/nonexistent/command']]] },
      { name: 'killed', needs: [], steps: [sh('kill -9 $$')] },
      { name: 'bad-steps', needs: [], steps: () => { throw new Error('no runtime here'); } },
    ], 2);
    expect(r.ok).to.equal(false);
    for (const name of ['missing', 'killed', 'bad-steps']) expect(r.phases[name]?.status, name).to.equal('failed');
    expect(r.out).to.contain('[killed] test: sh was killed by SIGKILL').and.contain('[bad-steps] test: no runtime here');
  });

  it('npm test runs every check: each kernel boot, the sanitizer runs, the fuzzer, lint and the API reference; a named phase brings the phases it needs', () => {
    expect(runner.PHASES.map((p) => p.name)).to.have.members(['build', 'compile-tests', 'unit', 'kernel', 'fuzz', 'sanitize-build', 'asan-unit', 'ubsan-kernel', 'valgrind-kernel', 'lint', 'docs']);
    expect(runner.selected(['ubsan-kernel']).map((p) => p.name)).to.deep.equal(['build', 'compile-tests', 'sanitize-build', 'ubsan-kernel']);
    expect(() => runner.selected(['kernal'])).to.throw(/no phase "kernal"/);
  });
});
