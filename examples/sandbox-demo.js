#!/usr/bin/env node
'use strict';
// Boots the kernel sandbox and runs examples/volume-demo.js inside it as root.
const path = require('node:path');
const { runInSandbox } = require('../dist/sandbox');

(async () => {
  const script = path.join(__dirname, 'volume-demo.js');
  console.log('Booting the kernel sandbox (User-Mode Linux) ...');
  const r = await runInSandbox([process.execPath, script]);
  console.log(`\nsandbox: booted in ${r.bootMs} ms, whole run ${r.totalMs} ms, exit status ${r.exitCode}`);
  process.exitCode = r.exitCode;
})().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
