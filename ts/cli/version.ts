/**
 * The package's own version, for `devmapper --version` and `devmapper version`.
 * @packageDocumentation
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The version in the nearest package.json above this file that is devmapper's ('unknown' if none). */
export function packageVersion(): string {
  let dir = __dirname;
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      const parsed: unknown = JSON.parse(readFileSync(manifest, 'utf8'));
      if (typeof parsed === 'object' && parsed !== null && Reflect.get(parsed, 'name') === 'devmapper') {
        const version: unknown = Reflect.get(parsed, 'version');
        if (typeof version === 'string') return version;
      }
    }
    const up = dirname(dir);
    if (up === dir) return 'unknown';
    dir = up;
  }
}
