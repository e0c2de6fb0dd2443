// Shared pieces of the targets' property tests (fast-check).
import { expect } from 'chai';
import fc from 'fast-check';
import { DmParseError } from '../../../ts/index';

/** A device reference as the kernel prints it: 'major:minor'. */
export const devArb: fc.Arbitrary<string> = fc.tuple(fc.integer({ min: 0, max: 4095 }), fc.integer({ min: 0, max: 1048575 })).map(([a, b]) => `${a}:${b}`);

/**
 * Lines made from valid `samples` by mutation (words dropped, duplicated, swapped, replaced
 * with numbers, signs, huge values or junk), and wholly random strings.
 */
export function mutatedLines(samples: readonly string[]): fc.Arbitrary<string> {
  const junk = fc.oneof(
    fc.constantFrom('', '-', '0', '1', '-1', '18446744073709551616', '99999999999999999999', 'x', '/', ':', '1:', ':1', '/dev/', 'A', 'D', '0/0', '1/', '/1', '\u0000'),
    fc.string({ maxLength: 8 }),
    fc.nat().map(String),
  );
  const mutated = fc.tuple(fc.constantFrom(...samples), fc.array(fc.tuple(fc.nat(), fc.nat(3), junk), { maxLength: 4 })).map(([line, edits]) => {
    const words = line.split(' ');
    for (const [pos, op, w] of edits) {
      const i = words.length === 0 ? 0 : pos % words.length;
      if (op === 0) words.splice(i, 1);
      else if (op === 1) words.splice(i, 0, w);
      else if (op === 2) words[i] = w;
      else words.splice(i, 0, words[i] ?? w);
    }
    return words.join(' ');
  });
  return fc.oneof(mutated, fc.string({ maxLength: 60 }), fc.array(junk, { maxLength: 12 }).map((ws) => ws.join(' ')));
}

/** The field a DmParseError names (fails when `f` does not throw one). */
export function fieldOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof DmParseError) return e.field;
    throw e;
  }
  throw new Error('no DmParseError');
}

/**
 * Feeds every parser mutated lines of `samples` (see mutatedLines): each must return or throw a
 * DmParseError, never another error, a crash or a hang.
 */
export function expectOnlyParseErrors(parsers: readonly ((text: string) => unknown)[], samples: readonly string[], numRuns = 500): void {
  for (const parse of parsers) {
    fc.assert(
      fc.property(mutatedLines(samples), (line) => {
        try {
          parse(line);
        } catch (e) {
          expect(e).to.be.instanceOf(DmParseError);
        }
      }),
      { numRuns },
    );
  }
}
