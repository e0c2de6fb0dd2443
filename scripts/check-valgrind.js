#!/usr/bin/env node
// Judges a Valgrind memcheck XML report (written by `DEVMAPPER_TEST_VALGRIND=<file> npm run
// test:kernel`): exits 1 and prints each finding when
//  - any error has a stack frame in the addon (devmapper.node), whatever its kind, leaks
//    included;
//  - any error anywhere is of a kind that means memory was corrupted or misused: invalid
//    read/write/free, mismatched free, overlapping copy, uninitialised or unaddressable bytes
//    handed to a system call (an ioctl buffer among them);
//  - the report is missing, cut short, or the run it describes did not finish.
// Node's own uninitialised-value reports with no addon frame are counted and shown, not
// fatal; so are those raised inside V8's conservative stack scan (its innermost frame), whose
// caller chain may pass through the addon (a collection during the microtasks of an answer's
// callback scope): the scan reads every word of the stack, whatever the frames there left
// uninitialised, and no value of the addon's is used.
//
// Usage: node scripts/check-valgrind.js report.xml [addon-file-name]
'use strict';

const fs = require('node:fs');

const CORRUPTION = new Set([
  'InvalidRead',
  'InvalidWrite',
  'InvalidFree',
  'InvalidJump',
  'InvalidMemPool',
  'MismatchedFree',
  'Overlap',
  'SyscallParam',
  'ClientCheck',
  'FishyValue',
]);

function decode(text) {
  return text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

function tag(block, name) {
  const m = new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(block);
  return m ? decode(m[1].trim()) : undefined;
}

/**
 * The findings of one report: { fatal: string[], tolerated: string[], errors: number }.
 * @param {string} xml the report's text
 * @param {string} addon the addon's file name, as Valgrind prints it at the end of an <obj>
 */
function judge(xml, addon) {
  const fatal = [];
  const tolerated = [];
  if (!/<valgrindoutput>/.test(xml)) fatal.push('not a Valgrind XML report');
  if (!/<\/valgrindoutput>\s*$/.test(xml)) fatal.push('the report is cut short: the process under Valgrind did not exit normally');
  if (!/<status>\s*<state>FINISHED<\/state>/.test(xml)) fatal.push('the report has no FINISHED status');
  const errors = xml.match(/<error>[\s\S]*?<\/error>/g) ?? [];
  for (const error of errors) {
    const kind = tag(error, 'kind') ?? 'unknown';
    const what = tag(error, 'what') ?? tag(error, 'text') ?? '';
    const frames = (error.match(/<frame>[\s\S]*?<\/frame>/g) ?? []).map((f) => ({
      obj: tag(f, 'obj') ?? '',
      fn: tag(f, 'fn') ?? '?',
      where: tag(f, 'file') ? `${tag(f, 'file')}:${tag(f, 'line') ?? '?'}` : '',
    }));
    const stackScan = kind.startsWith('Uninit') && /^heap::base::.*IteratePointers/.test(frames[0]?.fn ?? '');
    const ours = !stackScan && frames.some((f) => f.obj.endsWith(`/${addon}`) || f.obj === addon);
    const stack = frames
      .slice(0, 12)
      .map((f) => `      ${f.fn} ${f.where ? `(${f.where}) ` : ''}[${f.obj}]`)
      .join('\n');
    const line = `${kind}: ${what}\n${stack}`;
    if (ours || CORRUPTION.has(kind)) fatal.push(line);
    else tolerated.push(line);
  }
  return { fatal, tolerated, errors: errors.length };
}

function main() {
  const [file, addon = 'devmapper.node'] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: node scripts/check-valgrind.js report.xml [addon-file-name]\n');
    process.exit(2);
  }
  let xml;
  try {
    xml = fs.readFileSync(file, 'utf8');
  } catch (e) {
    process.stderr.write(`valgrind: cannot read the report ${file}: ${e.message}\n`);
    process.exit(1);
  }
  const { fatal, tolerated } = judge(xml, addon);
  const unique = (list) => [...new Set(list)];
  for (const t of unique(tolerated)) process.stdout.write(`valgrind: tolerated (no ${addon} frame): ${t.split("\n").slice(0, 4).join("\n")}\n`);
  for (const f of unique(fatal)) process.stderr.write(`valgrind: FINDING: ${f}\n`);
  const count = (xml.match(/<count>(\d+)<\/count>/g) ?? []).reduce((n, c) => n + Number(/\d+/.exec(c)[0]), 0);
  process.stdout.write(
    `valgrind: ${fatal.length} finding(s), ${unique(tolerated).length} tolerated report(s) of node's own (${count} occurrence(s) in all)\n`,
  );
  process.exit(fatal.length === 0 ? 0 : 1);
}

if (require.main === module) main();

module.exports = { judge };
