import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Binding } from '../binding';

/** The package root: the nearest directory above this file whose package.json is devmapper's. */
function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      const parsed: unknown = JSON.parse(readFileSync(manifest, 'utf8'));
      if (typeof parsed === 'object' && parsed !== null && Reflect.get(parsed, 'name') === 'devmapper') return dir;
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`devmapper: cannot find the package root above ${__dirname}`);
    dir = up;
  }
}

let loaded: Binding | undefined;

/** Loads the native addon once (a prebuild, or build/Release). */
export function binding(): Binding {
  if (loaded === undefined) {
    // node-gyp-build returns the addon's exports, which binding.d.ts describes.
    const load = require('node-gyp-build') as (root: string) => Binding;
    loaded = load(packageRoot());
  }
  return loaded;
}
