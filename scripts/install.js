#!/usr/bin/env node
'use strict';
// npm install: use a prebuild (prebuilds/) or an existing build/ when one loads in this Node,
// else compile the addon with cmake-js (Node-API only: nothing is downloaded).
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');

function loads() {
  try {
    require('node-gyp-build')(root);
    return true;
  } catch {
    return false;
  }
}

if (process.env.DEVMAPPER_BUILD_FROM_SOURCE !== '1' && loads()) process.exit(0);

const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const result = spawnSync(process.execPath, [cmakeJs, 'compile'], { cwd: root, stdio: 'inherit' });
if (result.error) {
  console.error(`devmapper: could not run cmake-js: ${result.error.message}`);
  process.exit(1);
}
process.exit(result.status ?? 1);
