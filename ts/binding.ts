import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import type { Binding } from '../binding';

/** The package root: the nearest directory above this file whose package.json is devmapper's. */
export function packageRoot(): string {
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

/**
 * Where the addon is loaded from: `$DEVMAPPER_ADDON` when set (an absolute path to a
 * devmapper.node, e.g. a build with sanitizers), else what node-gyp-build finds (build/Release,
 * then prebuilds/).
 */
export function addonPath(): string {
  const override = process.env['DEVMAPPER_ADDON'];
  if (override !== undefined && override !== '') {
    if (!isAbsolute(override)) throw new Error(`devmapper: DEVMAPPER_ADDON must be an absolute path, got ${override}`);
    return override;
  }
  // node-gyp-build ships no types: what it exports is checked below.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a CommonJS module without types, loaded where it is needed
  const gypBuild: unknown = require('node-gyp-build');
  const resolveAddon: unknown = typeof gypBuild === 'function' ? Reflect.get(gypBuild, 'resolve') : undefined;
  if (typeof resolveAddon !== 'function') throw new Error('devmapper: node-gyp-build has no resolve()');
  const found: unknown = Reflect.apply(resolveAddon, gypBuild, [packageRoot()]);
  if (typeof found !== 'string') throw new Error('devmapper: node-gyp-build found no addon');
  return found;
}

/** Loads the native addon once (see {@link addonPath}). */
export function binding(): Binding {
  if (loaded === undefined) {
    // The addon's exports, which binding.d.ts describes.
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a native addon at a path found at run time: only require() loads it
    loaded = require(addonPath()) as Binding;
  }
  return loaded;
}
