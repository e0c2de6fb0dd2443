#!/usr/bin/env node
'use strict';
// prebuildify only knows how to run node-gyp: it calls this program with node-gyp's
// arguments (`rebuild --target=V --arch=A ...`). Build the same addon with cmake-js instead,
// and leave it where node-gyp would (build/Release/devmapper.node), where prebuildify looks.
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const arch = args.find((a) => a.startsWith('--arch='));

const cmakeArgs = [require.resolve('cmake-js/bin/cmake-js'), 'rebuild', '--CDDEVMAPPER_WERROR=ON'];
if (arch) cmakeArgs.push(`--arch=${arch.slice('--arch='.length)}`);

const result = spawnSync(process.execPath, cmakeArgs, { cwd: root, stdio: 'inherit' });
if (result.error) throw result.error;
process.exit(result.status ?? 1);
