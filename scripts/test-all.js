#!/usr/bin/env node
// `npm test` (CI runs exactly this, see .ci/run): every check of the project, as phases run
// side by side on the host's CPUs (DEVMAPPER_TEST_JOBS of them at once, default 2 or fewer
// when the host has fewer). Each User-Mode Linux boot and the fuzzer use one CPU; the unit
// tests mostly one; so two at a time keeps a 2-core machine busy without starving the
// kernel suite's timing checks (io-threads, the event-loop checks, udev settles).
//
// The phases (a phase starts once the phases it needs have passed; among those ready, the
// first in this list goes first). The order packs the two CPUs: the kernel boot, the longest
// phase (about half of all the phases' time), starts first and runs throughout; on the other
// the sanitizer builds, the Valgrind boot and the UBSan boot follow each other, and the short
// host phases fill in at the end on whichever CPU is free.
//   build            npm run build: the addon (build/Release) and the TypeScript (dist/).
//   compile-tests    tsc -p tsconfig.test.json into build/js, once for every kernel boot below.
//   kernel           the whole kernel suite (scripts/kernel-tests.js) in one sandbox boot.
//   sanitize-build   the addon with AddressSanitizer + UndefinedBehaviorSanitizer
//                    (build-asan/) and with UndefinedBehaviorSanitizer (build-ubsan/).
//   valgrind-kernel  the addon as shipped under the kernel suite in the sandbox (see VALGRIND
//                    below for the files left out), the test process run by Valgrind memcheck,
//                    judged by scripts/check-valgrind.js: the kernel suite's address checker.
//                    ASan cannot start inside User-Mode Linux, where a process has 512 GiB of
//                    address space (up to 0x7fc0000000) and ASan's fixed x86-64 shadow layout
//                    needs its high shadow at 2 TiB and its shadow gap where UML maps stacks
//                    and libraries ("Shadow memory range interleaves with an existing memory
//                    mapping").
//   ubsan-kernel     build-ubsan under the kernel suite in the sandbox (see UBSAN below).
//   unit             the unit tests on the host (test/unit).
//   asan-unit        build-asan under the host's unit tests that drive it (requests, waits,
//                    watches, teardown of workers), g++'s ASan runtime preloaded.
//   fuzz             the libFuzzer target over the ioctl core (ASan + UBSan) for
//                    $FUZZ_SECONDS (default 60) from the seed corpus (scripts/fuzz.sh).
//   lint             npm run lint: eslint with typescript-eslint's strict type-checked rules.
//   docs             npm run docs: the API reference (typedoc), failing on any warning.
// Any failure, test or sanitizer report fails the run; a phase whose prerequisite failed does
// not run and fails too; the others still run, so one run shows every failure.
//
// Output: each phase writes to build/test-logs/<phase>.log; when it ends, its whole log is
// printed at once, every line prefixed with [<phase>], so phases never interleave. While
// phases run, one line every minute says which. The run ends with a table of every phase's
// result and time, and exits 1 unless every phase passed.
//
// Usage: node scripts/test-all.js [phase...]: only the phases named (and the phases they need);
// `npm run test:sanitize` is `fuzz asan-unit ubsan-kernel valgrind-kernel`. Environment:
// DEVMAPPER_TEST_JOBS (phases at once), FUZZ_SECONDS, and those of scripts/kernel-tests.js.
'use strict';

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const logDir = path.join(root, 'build', 'test-logs');
const node = process.execPath;
const kernelTests = path.join('scripts', 'kernel-tests.js');
const mocha = path.join('node_modules', 'mocha', 'bin', 'mocha.js');

// The UBSan run leaves out sync-targets (the targets' tests again through the synchronous
// client: the addon's synchronous paths are in sync.test.ts already) and the storage recipes
// (workflows/: they drive the native paths the target tests drive, with the same requests), and
// the command line (cli/: the library's calls again, through its verbs; both sanitizer runs).
const UBSAN = ['!sync-targets', '!workflows/', '!cli/'];
// The Valgrind run also leaves out the per-target files and the examples (they drive the same
// native paths as the core files, with other strings; under memcheck they would more than
// double the run), io-threads (its checks of the I/O threads' growth and idle exit are timed
// for native speed) and teardown (its addon calls are made by a child process, which memcheck
// does not follow: it runs there exactly as in the kernel phase; ASan checks those paths in
// asan-unit's teardown.test).
const VALGRIND = ['!targets/', '!workflows/', '!sync-targets', '!examples', '!io-threads', '!teardown', '!cli/'];

const sanitizerEnv = {
  UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1',
  // Node itself is not built with ASan: its own allocations at exit are not ours to report.
  ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1:halt_on_error=1',
};

function cmakeJs(out, sanitize) {
  return [node, path.join('node_modules', 'cmake-js', 'bin', 'cmake-js'), 'compile', '--CDDEVMAPPER_WERROR=ON', '--out', out, `--CDDEVMAPPER_SANITIZE=${sanitize}`];
}

function asanRuntime() {
  const r = spawnSync('g++', ['-print-file-name=libasan.so'], { encoding: 'utf8' });
  const runtime = (r.stdout || '').trim();
  if (r.status !== 0 || !runtime || !fs.existsSync(runtime)) throw new Error(`no ASan runtime (g++ -print-file-name=libasan.so said ${JSON.stringify(runtime)}): g++'s libasan is needed`);
  return runtime;
}

/**
 * Every phase: its name, the phases it needs, and its steps (commands run one after the
 * other in the checkout, each [argv, extra environment]; `steps` may be a function, called
 * when the phase starts).
 */
const PHASES = [
  { name: 'build', needs: [], steps: [[['npm', 'run', 'build']]] },
  { name: 'compile-tests', needs: [], steps: [[[node, path.join('node_modules', '.bin', 'tsc'), '-p', 'tsconfig.test.json']]] },
  { name: 'kernel', needs: ['build', 'compile-tests'], steps: [[[node, kernelTests, '--compiled']]] },
  {
    name: 'sanitize-build',
    needs: ['build'],
    steps: [[cmakeJs('build-asan', 'address,undefined')], [cmakeJs('build-ubsan', 'undefined')]],
  },
  {
    name: 'valgrind-kernel',
    needs: ['build', 'compile-tests'],
    steps: () => {
      const report = path.join(root, 'build', 'valgrind-kernel.xml');
      fs.rmSync(report, { force: true });
      // Memcheck multiplies the test process's memory and time: more guest memory, longer timeouts.
      const env = { DEVMAPPER_TEST_VALGRIND: report, DEVMAPPER_SANDBOX_MEMORY: '3072', DEVMAPPER_TEST_TIMEOUT: '600000' };
      return [
        [[node, kernelTests, '--compiled', ...VALGRIND], env],
        [[node, path.join('scripts', 'check-valgrind.js'), report]],
      ];
    },
  },
  {
    name: 'ubsan-kernel',
    needs: ['build', 'compile-tests', 'sanitize-build'],
    steps: [[[node, kernelTests, '--compiled', ...UBSAN], { ...sanitizerEnv, DEVMAPPER_ADDON: path.join(root, 'build-ubsan', 'Release', 'devmapper.node') }]],
  },
  { name: 'unit', needs: ['build'], steps: [[[node, mocha, 'test/unit/**/*.test.ts']]] },
  {
    name: 'asan-unit',
    needs: ['build', 'sanitize-build'],
    steps: () => [
      [
        [node, mocha, 'test/unit/native.test.ts', 'test/unit/teardown.test.ts', 'test/unit/client.test.ts'],
        { ...sanitizerEnv, DEVMAPPER_ADDON: path.join(root, 'build-asan', 'Release', 'devmapper.node'), LD_PRELOAD: asanRuntime() },
      ],
    ],
  },
  // The fuzzer builds its own binary; waiting for the build keeps it from taking, at the start,
  // the CPU the longest phases (the boots) are scheduled on.
  { name: 'fuzz', needs: ['build'], steps: [[['bash', path.join('scripts', 'fuzz.sh'), process.env.FUZZ_SECONDS || '60']]] },
  // Host-only checks of the sources (under a minute each): they fill in beside the boots.
  { name: 'lint', needs: [], steps: [[['npm', 'run', 'lint']]] },
  { name: 'docs', needs: [], steps: [[['npm', 'run', 'docs']]] },
];

function fail(message) {
  process.stderr.write(`test: ${message}\n`);
  process.exit(2);
}

function jobs() {
  const raw = process.env.DEVMAPPER_TEST_JOBS;
  const cpus = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  if (raw === undefined || raw === '') return Math.max(1, Math.min(2, cpus));
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n <= 0) fail(`DEVMAPPER_TEST_JOBS must be a positive whole number, got ${JSON.stringify(raw)}`);
  return n;
}

/** The phases named on the command line and every phase they need, in PHASES' order. */
function selected(names) {
  const byName = new Map(PHASES.map((p) => [p.name, p]));
  if (names.length === 0) return PHASES;
  const want = new Set();
  const add = (n) => {
    const p = byName.get(n);
    if (!p) throw new Error(`no phase ${JSON.stringify(n)} (phases: ${PHASES.map((q) => q.name).join(', ')})`);
    if (want.has(n)) return;
    want.add(n);
    for (const d of p.needs) add(d);
  };
  for (const n of names) add(n);
  return PHASES.filter((p) => want.has(p.name));
}

const seconds = (ms) => `${(ms / 1000).toFixed(0)} s`;
const clock = (ms) => `${Math.floor(ms / 60000)}m${String(Math.floor(ms / 1000) % 60).padStart(2, '0')}s`;

const children = new Set();

/** Runs one phase's steps in order into its log; resolves with its exit status (0: passed). */
function runPhase(phase, log, cwd) {
  const out = fs.openSync(log, 'w');
  const say = (line) => fs.writeSync(out, `${line}\n`);
  let steps;
  try {
    steps = typeof phase.steps === 'function' ? phase.steps() : phase.steps;
  } catch (e) {
    say(`test: ${e.message}`);
    fs.closeSync(out);
    return Promise.resolve(1);
  }
  const shown = (a) => (path.isAbsolute(a) && a.startsWith(cwd + path.sep) ? path.relative(cwd, a) : a);
  return (async () => {
    try {
      for (const [argv, env] of steps) {
        say(`$ ${Object.entries(env || {}).map(([k, v]) => `${k}=${shown(v)} `).join('')}${argv.map(shown).join(' ')}`);
        const status = await new Promise((resolve) => {
          // Its own process group, so that an interrupted run can end all of it.
          const child = spawn(argv[0], argv.slice(1), { cwd, stdio: ['ignore', out, out], env: { ...process.env, ...env }, detached: true });
          children.add(child);
          child.once('error', (e) => {
            children.delete(child);
            say(`test: cannot run ${argv[0]}: ${e.message}`);
            resolve(1);
          });
          child.once('exit', (code, signal) => {
            children.delete(child);
            if (signal) say(`test: ${argv[0]} was killed by ${signal}`);
            resolve(code ?? 1);
          });
        });
        if (status !== 0) return status;
      }
      return 0;
    } finally {
      fs.closeSync(out);
    }
  })();
}

/** A phase's log, or a line saying it has none. */
function readLog(log) {
  try {
    return fs.readFileSync(log, 'utf8');
  } catch {
    return '(no output)\n';
  }
}

/** `text`'s lines, each prefixed with `[name] `, as one string. */
function prefixed(name, text) {
  return text.replace(/\n$/, '').split('\n').map((l) => `[${name}] ${l}\n`).join('');
}

/** A terminal colour code (ESC [ ... m). */
const COLOUR = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');

/** The most lines of a failed phase's cause the summary repeats. */
const WHY_LINES = 80;

/**
 * What a failed phase's log says of its failure: mocha's failures (from its `N failing` line)
 * and every line after them, else the log's last lines; at most WHY_LINES lines.
 */
function whyFailed(log) {
  const text = readLog(log);
  const lines = text.replace(/\n$/, '').split('\n');
  // The line may be coloured (mocha colours it when it writes to a terminal, or is told to).
  const failing = lines.findIndex((l) => /^\s*\d+ failing\s*$/.test(l.replace(COLOUR, '')));
  const from = failing >= 0 ? failing : Math.max(0, lines.length - 30);
  const shown = lines.slice(from, from + WHY_LINES);
  if (from + WHY_LINES < lines.length) shown.push(`... (${lines.length - from - WHY_LINES} more line(s) in ${path.basename(log)})`);
  return `${shown.join('\n')}\n`;
}

/**
 * Runs `phases` (PHASES' shape), at most `slots` at once, each into `<logDir>/<name>.log`, in
 * `cwd`; `write` gets the run's output (each phase's log in one piece when it ends). Resolves
 * with every phase's { status: 'passed' | 'failed' | 'not run', code, why, start, end }, and
 * `ok`, true when every phase passed.
 */
async function run(phases, { slots, logDir, cwd = root, write = (s) => process.stdout.write(s), heartbeatMs = 60000 }) {
  fs.mkdirSync(logDir, { recursive: true });
  const t0 = Date.now();
  const state = new Map(phases.map((p) => [p.name, { status: 'waiting', start: 0, end: 0 }]));
  write(`test: ${phases.length} phase(s), ${slots} at a time: ${phases.map((p) => p.name).join(', ')}; logs in ${path.relative(cwd, logDir) || logDir}/\n`);

  const heartbeat = setInterval(() => {
    const now = Date.now();
    const running = phases.filter((p) => state.get(p.name).status === 'running').map((p) => `${p.name} (${clock(now - state.get(p.name).start)})`);
    if (running.length) write(`test: ${clock(now - t0)} running ${running.join(', ')}\n`);
  }, heartbeatMs);

  await new Promise((done) => {
    let active = 0;
    const failedOrNotRun = (n) => state.has(n) && ['failed', 'not run'].includes(state.get(n).status);
    const schedule = () => {
      // A phase whose prerequisite failed does not run (nor do the phases that need it).
      for (let changed = true; changed; ) {
        changed = false;
        for (const p of phases) {
          const s = state.get(p.name);
          const broken = p.needs.find(failedOrNotRun);
          if (s.status !== 'waiting' || !broken) continue;
          s.status = 'not run';
          s.why = `${broken} failed`;
          changed = true;
          write(`test: ${p.name} not run: ${s.why}\n`);
        }
      }
      for (const p of phases) {
        const s = state.get(p.name);
        if (active >= slots || s.status !== 'waiting') continue;
        if (!p.needs.every((n) => !state.has(n) || state.get(n).status === 'passed')) continue;
        active++;
        s.status = 'running';
        s.start = Date.now();
        write(`test: ${clock(s.start - t0)} ${p.name} starts\n`);
        const log = path.join(logDir, `${p.name}.log`);
        runPhase(p, log, cwd).then((code) => {
          active--;
          s.end = Date.now();
          s.status = code === 0 ? 'passed' : 'failed';
          s.code = code;
          write(prefixed(p.name, readLog(log)));
          write(`test: ${clock(s.end - t0)} ${p.name} ${s.status === 'passed' ? 'passed' : `FAILED (exit ${code})`} in ${seconds(s.end - s.start)}\n`);
          schedule();
        });
      }
      if (active === 0) done();
    };
    schedule();
  });
  clearInterval(heartbeat);

  // The cause of each failure again, at the end, where a reader of only the run's last lines
  // sees it, just before the summary.
  let summary = '';
  for (const p of phases.filter((q) => state.get(q.name).status === 'failed')) {
    summary += `\ntest: why ${p.name} failed:\n${prefixed(p.name, whyFailed(path.join(logDir, `${p.name}.log`)))}`;
  }
  summary += `\ntest: summary (${clock(Date.now() - t0)} in all, ${slots} phase(s) at a time)\n`;
  for (const p of phases) {
    const s = state.get(p.name);
    const span = s.start ? `${clock(s.start - t0)} .. ${clock(s.end - t0)}  ${seconds(s.end - s.start).padStart(6)}` : '';
    const result = s.status === 'passed' ? 'passed' : s.status === 'failed' ? `FAILED (exit ${s.code})` : `NOT RUN (${s.why})`;
    summary += `  ${p.name.padEnd(16)} ${result.padEnd(24)} ${span}\n`;
  }
  const bad = phases.filter((p) => state.get(p.name).status !== 'passed');
  summary += bad.length ? `test: FAILED: ${bad.map((p) => p.name).join(', ')} (logs in ${path.relative(cwd, logDir) || logDir}/)\n` : 'test: every phase passed\n';
  write(summary);
  return { ok: bad.length === 0, phases: Object.fromEntries(state) };
}

/** Ends every running phase's process group (an interrupted run). */
function endAll(signal) {
  for (const c of children) {
    try {
      process.kill(-c.pid, signal);
    } catch {
      // already gone
    }
  }
}

async function main() {
  let phases;
  try {
    phases = selected(process.argv.slice(2));
  } catch (e) {
    fail(e.message);
  }
  const slots = jobs();
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      process.stderr.write(`\ntest: ${signal}: ending the running phases\n`);
      endAll('SIGTERM');
      setTimeout(() => process.exit(130), 3000).unref();
    });
  }
  const { ok } = await run(phases, { slots, logDir });
  process.exitCode = ok ? 0 : 1;
}

module.exports = { PHASES, run, selected };

if (require.main === module) main().catch((e) => {
  process.stderr.write(`test: ${e && e.stack ? e.stack : String(e)}\n`);
  process.exit(1);
});
