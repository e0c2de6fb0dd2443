#!/usr/bin/env node
// `npm run corpus [-- type...]`: regenerates the corpus of real kernel output,
// test/fixtures/corpus/<type>.txt, from scripts/corpus/<type>.sh run as root inside one boot
// of the kernel sandbox (every target module loaded). Each script makes its target's notable
// variants on loop devices with dmsetup (or cryptsetup, veritysetup, integritysetup), acts on
// them, and records `dmsetup table` and `dmsetup status`. test/unit/corpus.test.ts parses every
// line. With type names, only those are regenerated.
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const scripts = path.join(__dirname, 'corpus');
const out = path.join(root, 'test', 'fixtures', 'corpus');

// The scratch directory of this run: removed on every way out, also when fail() exits.
let scratch;

function fail(message) {
  if (scratch !== undefined) fs.rmSync(scratch, { recursive: true, force: true });
  process.stderr.write(`corpus: FAILED: ${message}\n`);
  process.exit(1);
}

async function main() {
  const all = fs.readdirSync(scripts).filter((f) => f.endsWith('.sh') && f !== 'lib.sh').map((f) => f.slice(0, -3)).sort();
  const wanted = process.argv.slice(2);
  for (const w of wanted) if (!all.includes(w)) fail(`no scripts/corpus/${w}.sh (have: ${all.join(', ')})`);
  const types = wanted.length > 0 ? wanted : all;
  const { runInSandbox, SandboxError } = require(path.join(root, 'dist', 'sandbox'));
  fs.mkdirSync(out, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(out, '.tmp-'));
  scratch = tmp;
  try {
    // One boot; each type in its own bash, so one failing script does not hide the others.
    const body = types
      .map((t) => `if bash -c 'source "$1"; source "$2"' corpus ${q(path.join(scripts, 'lib.sh'))} ${q(path.join(scripts, `${t}.sh`))} > ${q(path.join(tmp, `${t}.txt`))} 2> ${q(path.join(tmp, `${t}.err`))}; then echo "corpus: ${t} ok"; else echo "corpus: ${t} FAILED"; cat ${q(path.join(tmp, `${t}.err`))}; fi`)
      .join('\n');
    const script = `echo "corpus-kernel: $(uname -r), $(dmsetup version | sed -n 's/^Driver version: *//p' | sed 's/^/DM /')"\n${body}`;
    let result;
    try {
      result = await runInSandbox(['bash', '-c', script], { cwd: root, memory: 1024, timeout: 900000, onOutput: (s) => process.stdout.write(s) });
    } catch (e) {
      if (e instanceof SandboxError) fail(`the sandbox failed (${e.code}): ${e.message}`);
      throw e;
    }
    if (result.exitCode !== 0) fail(`the sandbox command exited with ${result.exitCode}`);
    const failed = types.filter((t) => !new RegExp(`^corpus: ${t} ok$`, 'm').test(result.output));
    for (const t of types.filter((x) => !failed.includes(x))) {
      const text = fs.readFileSync(path.join(tmp, `${t}.txt`), 'utf8');
      if (!/^table /m.test(text)) fail(`scripts/corpus/${t}.sh recorded no table line`);
      fs.writeFileSync(path.join(out, `${t}.txt`), `# ${t}: recorded by scripts/corpus/${t}.sh (npm run corpus -- ${t}); Linux ${kernelOf(result.output)}\n${text}`);
      process.stdout.write(`corpus: wrote test/fixtures/corpus/${t}.txt\n`);
    }
    if (failed.length > 0) fail(`scripts failed: ${failed.join(', ')}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function q(s) {
  return `'${s.replace(/'/g, "'\\''")}'`;
}

function kernelOf(output) {
  const m = /^corpus-kernel: (.*)$/m.exec(output);
  return m ? m[1] : 'User-Mode Linux';
}

main().catch((e) => fail(e && e.stack ? e.stack : String(e)));
