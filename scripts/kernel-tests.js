#!/usr/bin/env node
// `npm run test:kernel [-- [--compiled] part-of-a-path... !part-to-leave-out...]` (after `npm run build`): compiles the tests
// (unless --compiled says build/js is compiled already: scripts/test-all.js compiles once for its boots that run at once), then runs the kernel suite
// (build/js/test/kernel/**/*.test.js) with mocha in ONE boot of the User-Mode Linux sandbox
// (dist/sandbox), so the boot is paid once. It never skips: no sandbox, no kernel tests, no
// pass. With DEVMAPPER_TEST_HOST=1 it runs the same mocha command on the host instead, which
// needs root and a host kernel with device-mapper.
//
// Environment: DEVMAPPER_TEST_HOST=1 (run on the host), DEVMAPPER_SANDBOX_MEMORY (MiB, default
// 1024), DEVMAPPER_SANDBOX_CPU (the host CPU the sandbox runs on, default: not pinned),
// DEVMAPPER_SANDBOX_LINUX (the UML kernel, default /usr/bin/linux.uml),
// DEVMAPPER_KERNEL_TESTS_TIMEOUT (seconds for the whole sandbox run, default 2400),
// DEVMAPPER_ADDON (the addon binary to load, default build/Release/devmapper.node),
// DEVMAPPER_TEST_PRELOAD (LD_PRELOAD for the test process: the sanitizer runtime of an addon
// built with sanitizers, see scripts/test-all.js), DEVMAPPER_TEST_VALGRIND (a file: run the
// test process under Valgrind memcheck, which writes its XML report there; see
// scripts/check-valgrind.js), DEVMAPPER_TEST_TIMEOUT (mocha's per-test timeout in ms, default 60000).
// The tests get DEVMAPPER_SCRATCH: a directory for loop backing files (a tmpfs in the sandbox).
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const kernelTestDir = path.join(root, 'build', 'js', 'test', 'kernel');

function fail(message) {
  process.stderr.write(`\nkernel tests: FAILED: ${message}\n`);
  process.exit(1);
}

function positiveEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) fail(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
  return n;
}

// DEVMAPPER_SANDBOX_CPU: the host CPU the sandbox runs on (SandboxOptions.cpu), if any.
function cpuEnv() {
  const raw = process.env.DEVMAPPER_SANDBOX_CPU;
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d+$/.test(raw)) fail(`DEVMAPPER_SANDBOX_CPU must be a CPU number, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

function findTests(dir) {
  if (!fs.existsSync(dir)) return [];
  const found = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...findTests(p));
    else if (entry.isFile() && entry.name.endsWith('.test.js')) found.push(p);
  }
  return found.sort();
}

function compileTests() {
  const tsc = path.join(root, 'node_modules', '.bin', 'tsc');
  const r = spawnSync(tsc, ['-p', path.join(root, 'tsconfig.test.json')], { cwd: root, stdio: 'inherit' });
  if (r.error) fail(`cannot run ${tsc}: ${r.error.message} (run npm ci first)`);
  if (r.status !== 0) fail(`tsc -p tsconfig.test.json exited with ${r.status ?? r.signal}`);
}

function mochaArgs(files) {
  return [
    path.join(root, 'node_modules', 'mocha', 'bin', 'mocha.js'),
    '--no-config', // .mocharc.json loads tsx, slow inside UML; the tests are compiled already
    // Root hooks: after every test, no fd and no thread more than before the suite.
    '--require', path.relative(root, path.join(kernelTestDir, 'leak-check.js')),
    '--timeout', String(positiveEnv('DEVMAPPER_TEST_TIMEOUT', 60000)),
    // A leaked handle (reported by the leak check) must not keep the run waiting for the timeout.
    '--exit',
    '--reporter', 'spec',
    process.stdout.isTTY ? '--color' : '--no-color',
    ...files.map((f) => path.relative(root, f)),
  ];
}

// DEVMAPPER_TEST_VALGRIND: memcheck over the test process (not its children), every error kind
// and leaks, into an XML report that scripts/check-valgrind.js judges.
function valgrind() {
  const xml = process.env.DEVMAPPER_TEST_VALGRIND;
  if (!xml) return [];
  return [
    'valgrind', '--tool=memcheck', '--xml=yes', `--xml-file=${path.resolve(xml)}`,
    '--leak-check=full', '--show-leak-kinds=definite', '--errors-for-leak-kinds=definite',
    '--num-callers=40', '--error-limit=no',
  ];
}

function runOnHost(files) {
  process.stdout.write(`kernel tests: on the host (${os.release()}), DEVMAPPER_TEST_HOST=1, node ${process.version}\n`);
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    fail('DEVMAPPER_TEST_HOST=1 needs root (device-mapper ioctls need CAP_SYS_ADMIN); unset it to use the sandbox');
  }
  let control;
  try {
    control = fs.statSync('/dev/mapper/control');
  } catch {
    control = undefined;
  }
  if (control === undefined || !control.isCharacterDevice()) {
    fail('DEVMAPPER_TEST_HOST=1 but /dev/mapper/control is missing: the host kernel has no device-mapper (modprobe dm-mod), or unset it to use the sandbox');
  }
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'devmapper-scratch-'));
  try {
    const [command, ...args] = [...valgrind(), process.execPath, ...mochaArgs(files)];
    const r = spawnSync(command, args, {
      cwd: root,
      stdio: 'inherit',
      env: { ...process.env, DEVMAPPER_SCRATCH: scratch },
    });
    if (r.error) fail(`cannot run mocha: ${r.error.message}`);
    if (r.status === null) fail(`mocha was killed by ${r.signal}`);
    return r.status;
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

async function runInUml(files) {
  let sandbox;
  try {
    sandbox = require(path.join(root, 'dist', 'sandbox'));
  } catch (e) {
    fail(`cannot load dist/sandbox (run npm run build first): ${e.message}`);
  }
  const linux = process.env.DEVMAPPER_SANDBOX_LINUX || sandbox.DEFAULT_LINUX;
  const memory = Math.round(positiveEnv('DEVMAPPER_SANDBOX_MEMORY', 1024));
  const timeoutS = positiveEnv('DEVMAPPER_KERNEL_TESTS_TIMEOUT', 2400);
  process.stdout.write(
    `kernel tests: in the User-Mode Linux sandbox (${linux}, ${memory} MiB), ${files.length} file(s), node ${process.version}\n`,
  );
  // First line from inside: the kernel that really runs the tests, and its device-mapper.
  const script = [
    'read release < /proc/sys/kernel/osrelease',
    'dm=$(dmsetup version 2>/dev/null); dm=${dm##*Driver version:}; dm=$(echo $dm)',
    'echo "kernel tests: User-Mode Linux $release, DM ${dm:-version unknown (no dmsetup)}, scratch $DEVMAPPER_SCRATCH"',
    'exec "$@"',
  ].join('\n');
  let result;
  try {
    // DEVMAPPER_TEST_PRELOAD: a sanitizer runtime for the test process only (and its children).
    const preload = process.env.DEVMAPPER_TEST_PRELOAD ? ['env', `LD_PRELOAD=${process.env.DEVMAPPER_TEST_PRELOAD}`] : [];
    result = await sandbox.runInSandbox(['sh', '-c', script, 'sh', ...preload, ...valgrind(), process.execPath, ...mochaArgs(files)], {
      cwd: root,
      memory,
      linux,
      timeout: timeoutS * 1000,
      cpu: cpuEnv(),
    });
  } catch (e) {
    if (e instanceof sandbox.SandboxError) {
      const tail = e.consoleTail && !e.message.includes(e.consoleTail) ? `\n--- kernel console ---\n${e.consoleTail}` : '';
      fail(`the sandbox failed (${e.code}): ${e.message}${tail}`);
    }
    throw e;
  }
  process.stdout.write(
    `kernel tests: sandbox boot ${result.bootMs} ms (modules ${result.modulesMs} ms), total ${result.totalMs} ms, mocha exit status ${result.exitCode}\n`,
  );
  // mocha's own counts, as one plain closing line; a run that passed nothing has not passed.
  const count = (word) => Number((new RegExp(`^\\s*(\\d+) ${word}\\b`, 'm').exec(result.output) || [])[1] || 0);
  const passed = count('passing');
  const failed = count('failing');
  const pending = count('pending');
  process.stdout.write(`kernel: ${passed} passed, ${failed} failed${pending ? `, ${pending} skipped` : ''}\n`);
  if (result.exitCode === 0 && passed === 0) fail('mocha ran no kernel test');
  return result.exitCode;
}

// The addon the tests will load, said and checked: build/Release (what `npm run build` made),
// never a prebuild or a stale binary picked up by accident, unless DEVMAPPER_ADDON names one.
function checkAddon() {
  const { addonPath } = require(path.join(root, 'dist', 'binding.js'));
  const addon = addonPath();
  const expected = process.env.DEVMAPPER_ADDON || path.join(root, 'build', 'Release', 'devmapper.node');
  process.stdout.write(`kernel tests: addon ${path.relative(root, addon) || addon}\n`);
  if (path.resolve(addon) !== path.resolve(expected)) fail(`the tests would load ${addon}, not ${expected} (run npm run build)`);
}

async function main() {
  const args = process.argv.slice(2);
  if (args[0] === '--compiled') args.shift();
  else compileTests();
  checkAddon();
  // Arguments narrow the run to the test files whose path contains one of them
  // (`npm run test:kernel -- targets/thin`), and leave out those whose path contains one
  // given after a `!` (`'!targets/'`); none runs them all.
  const only = args.filter((a) => !a.startsWith('!'));
  const not = args.filter((a) => a.startsWith('!')).map((a) => a.slice(1));
  const files = findTests(kernelTestDir).filter((f) => {
    const rel = path.relative(kernelTestDir, f);
    return (only.length === 0 || only.some((o) => rel.includes(o))) && !not.some((o) => rel.includes(o));
  });
  if (files.length === 0) fail(`no kernel tests found under ${path.relative(root, kernelTestDir)} (test/kernel/**/*.test.ts)`);
  const status = process.env.DEVMAPPER_TEST_HOST === '1' ? runOnHost(files) : await runInUml(files);
  process.exitCode = status;
}

// Interrupted (^C, or scripts/test-all.js ending its phases): exit, so that the sandbox's exit
// hook kills the boot instead of leaving it running.
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => fail(`interrupted by ${signal}`));

main().catch((e) => fail(e && e.stack ? e.stack : String(e)));
