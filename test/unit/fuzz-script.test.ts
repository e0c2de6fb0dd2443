// scripts/fuzz.sh is what makes a fuzzer finding fail CI: its exit status must be the
// fuzzer's. Stand-in fuzzers (DEVMAPPER_FUZZER) that crash and that pass decide it.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '..', '..');

function runWith(fuzzerBody: string): { status: number | null; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'devmapper-fuzz-'));
  try {
    const fuzzer = join(dir, 'fuzzer');
    writeFileSync(fuzzer, `#!/bin/sh\n${fuzzerBody}\n`, { mode: 0o755 });
    const r = spawnSync('bash', [join(root, 'scripts', 'fuzz.sh'), '1'], { cwd: root, encoding: 'utf8', env: { ...process.env, DEVMAPPER_FUZZER: fuzzer } });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('scripts/fuzz.sh', () => {
  it('fails with the fuzzer\'s exit status when it reports a crash, and passes only when the fuzzer does', () => {
    const crashed = runWith("echo '==42==ERROR: AddressSanitizer: heap-buffer-overflow'; echo 'SUMMARY: AddressSanitizer: heap-buffer-overflow'; exit 77");
    expect(crashed.status, crashed.out).to.equal(77);
    expect(crashed.out).to.contain('==42==ERROR: AddressSanitizer').and.contain('fuzz: FAILED (exit 77)');
    const silent = runWith('exit 1'); // nothing for grep to match: still the fuzzer's status
    expect(silent.status, silent.out).to.equal(1);
    const clean = runWith("echo 'Done 1000 runs in 1 second(s)'; exit 0");
    expect(clean.status, clean.out).to.equal(0);
    expect(clean.out).to.contain('Done 1000 runs').and.contain('fuzz: 1 s, no crash');
  });
});
