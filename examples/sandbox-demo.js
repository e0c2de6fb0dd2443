#!/usr/bin/env node
'use strict';
// Boots the kernel sandbox and runs examples/volume-demo.js inside it as root
// (the same code as `devmapper demo`).
const { runDemo } = require('../dist/sandbox/command');

runDemo(process.stdout).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = 1;
  },
);
