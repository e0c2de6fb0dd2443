import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '..', '..');

/** Runs typedoc with the package's export check on a one-file project; its exit status and log. */
function typedoc(source: string): { status: number | null; log: string } {
  const dir = mkdtempSync(join(tmpdir(), 'devmapper-docs-'));
  try {
    writeFileSync(join(dir, 'index.ts'), source);
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, types: [], module: 'node16', target: 'es2022' }, include: ['index.ts'] }));
    const args = [join(root, 'node_modules', 'typedoc', 'bin', 'typedoc'), '--plugin', join(root, 'scripts', 'typedoc-exports.mjs'), '--entryPoints', join(dir, 'index.ts'), '--tsconfig', join(dir, 'tsconfig.json'), '--excludeInternal', '--emit', 'none', '--readme', 'none'];
    const r = spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8' });
    return { status: r.status, log: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('npm run docs: the API reference shows every export', function () {
  this.timeout(120_000);

  it('passes a project whose exports all reach the reference, and fails one that exports an @internal function, naming it', () => {
    const shown = typedoc('/** Shown. */\nexport function a(): number {\n  return 1;\n}\n');
    expect(shown.status, shown.log).to.equal(0);
    const hidden = typedoc('/** Shown. */\nexport function a(): number {\n  return 1;\n}\n/** Hidden. @internal */\nexport function b(): number {\n  return 2;\n}\n');
    expect(hidden.status, hidden.log).to.not.equal(0);
    expect(hidden.log).to.contain('exports b, which the API reference leaves out');
    expect(hidden.log).to.not.contain('exports a,');
  });
});
