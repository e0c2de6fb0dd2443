// Every line of the corpus of real kernel output (test/fixtures/corpus/<type>.txt, recorded by
// `npm run corpus` in the kernel sandbox) parses: a table row formats back byte for byte, and a
// status row becomes a typed status that carries every word of the line.
import { expect } from 'chai';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Table, parseStatus, targetModules } from '../../ts/index';

const dir = resolve(__dirname, '..', 'fixtures', 'corpus');

/**
 * Status words that are constants of the format, not values (by type: their indexes among the
 * status words). striped: the `1` before the health letters (the kernel always prints one
 * group of them).
 */
const CONSTANT_WORDS: Record<string, (words: readonly string[]) => number[]> = {
  striped: (w) => [w.length - 2],
  // clone: the count of core args (the kernel always prints its two key/value pairs: 4).
  clone: (w) => (w.length > 6 ? [6 + Number(w[5])] : []),
  // mirror: the `1` before the health letters (one group of them) and the count of the log's
  // words (1 for core, 3 for disk: fixed by the log type).
  mirror: (w) => [Number(w[0]) + 2, Number(w[0]) + 4],
  // cache: the count of core args (always its one pair, migration_threshold: 2) and the count
  // of policy args (twice the key/value pairs the typed status holds in policyArgs).
  cache: (w) => (w.length > 12 ? [12 + Number(w[11]), 16 + Number(w[11])] : []),
  // multipath: the count of feature words (always 2: queue_io, pg_init_count), and in each
  // group the count of selector status words and of each path's selector words (fixed by the
  // selector; the typed status holds the words themselves). Also the queue_io flag: a 0/1
  // word, typed as the boolean queueIo (checked by the multipath unit tests).
  multipath: (w) => {
    const out = [0, 1];
    let i = 1 + Number(w[0]);
    i += 1 + Number(w[i]);
    const groups = Number(w[i]);
    i += 2;
    for (let g = 0; g < groups && i < w.length; g++) {
      i++; // state
      out.push(i);
      i += 1 + Number(w[i]);
      const paths = Number(w[i]);
      const words = Number(w[i + 1]);
      out.push(i + 1);
      i += 2 + paths * (3 + words);
    }
    return out;
  },
};

/** Every leaf of a typed status (numbers, bigints, strings, booleans) and every list's length, as text. */
function leaves(value: unknown, out: string[] = []): string[] {
  if (value === null || value === undefined) return out;
  if (typeof value === 'object') {
    if (Array.isArray(value)) out.push(String(value.length));
    for (const [k, v] of Object.entries(value)) if (k !== 'raw' && k !== 'type' && k !== 'known') leaves(v, out);
  } else if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'string' || typeof value === 'boolean') {
    out.push(String(value));
  } else {
    throw new Error(`a status leaf of type ${typeof value}`);
  }
  return out;
}

interface Entry {
  kind: 'table' | 'status';
  line: string;
  note: string;
}

function read(file: string): Entry[] {
  const entries: Entry[] = [];
  let note = '';
  for (const raw of readFileSync(join(dir, file), 'utf8').split('\n')) {
    if (raw.startsWith('# ')) note = raw.slice(2);
    else if (raw.startsWith('table ')) entries.push({ kind: 'table', line: raw.slice(6), note });
    else if (raw.startsWith('status ')) entries.push({ kind: 'status', line: raw.slice(7), note });
    else if (raw.trim() !== '') throw new Error(`${file}: a corpus line starts with "# ", "table " or "status ": ${raw}`);
  }
  return entries;
}

describe('the corpus of real kernel output', () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.txt')).sort();

  it('has a file for each modelled target type, each with tables and statuses', () => {
    // zero, error and linear have their own tests; ebs, zoned and vdo have no module in the
    // sandbox kernel and are proven on the kernel documentation's examples instead.
    const elsewhere = ['zero', 'error', 'linear', 'ebs', 'zoned', 'vdo'];
    const expectedTypes = Object.keys(targetModules).filter((t) => !elsewhere.includes(t));
    for (const t of expectedTypes) expect(files, `test/fixtures/corpus/${t}.txt`).to.include(`${t}.txt`);
  });

  for (const file of files) {
    describe(file, () => {
      const entries = read(file);
      it('has table and status lines', () => {
        expect(entries.some((e) => e.kind === 'table')).to.equal(true);
        expect(entries.some((e) => e.kind === 'status')).to.equal(true);
      });
      for (const e of entries) {
        if (e.kind === 'table') {
          it(`table, ${e.note}: formats back byte for byte`, () => {
            const t = Table.parse(e.line);
            expect(t.toString()).to.equal(e.line);
            for (const row of t.rows) if (targetModules[row.type]) expect(row.target, row.type).to.not.deep.equal({ type: row.type, params: row.params });
          });
        } else {
          it(`status, ${e.note}: typed, every word carried`, () => {
            const [row] = parseStatus(e.line);
            expect(row).to.not.equal(undefined);
            if (row === undefined) return;
            const status = row.status;
            expect(status.known, 'a typed status').to.equal(true);
            expect(status.raw).to.equal(e.line.split(/\s+/).slice(3).join(' '));
            if ('extra' in status) expect(status.extra, 'no word left unread').to.deep.equal([]);
            const have = leaves(status);
            const words = status.raw.split(/\s+/);
            const constant = new Set(CONSTANT_WORDS[status.type]?.(words) ?? []);
            for (const word of words.filter((w, i) => /^\d+$/.test(w) && !constant.has(i))) {
              // Each number of the line is a field value, alone or in a pair/list it belongs to.
              expect(have.some((v) => v === word || v === String(BigInt(word))), `${word} of "${status.raw}"`).to.equal(true);
            }
          });
        }
      }
    });
  }
});
