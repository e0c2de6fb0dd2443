import { expect } from 'chai';
import { Output, colourWanted, formatTable, toJson } from '../../../ts/cli/output';
import { Capture } from './harness';

describe('devmapper command: output helpers (ts/cli/output.ts)', () => {
  it('formatTable sizes columns to their content, right-aligns numbers, leaves no trailing blanks', () => {
    const text = formatTable(
      [{ heading: 'Name' }, { heading: 'Maj', align: 'right' }, { heading: 'UUID' }],
      [['vol', '253', ''], ['a-longer-name', '7', 'U-1']],
    );
    expect(text).to.equal('Name          Maj UUID\nvol           253\na-longer-name   7 U-1\n');
    expect(formatTable([{ heading: 'A' }], [], { headings: false })).to.equal('');
    expect(formatTable([{ heading: 'A' }, { heading: 'B' }], [['x', 'y']], { headings: false, separator: ':' })).to.equal('x:y\n');
  });

  it('toJson writes bigints as decimal strings and leaves undefined fields out', () => {
    expect(toJson({ a: 2n ** 64n, b: undefined, c: [1] })).to.equal('{"a":"18446744073709551616","c":[1]}');
  });

  it('colour only on a terminal, never with NO_COLOR or TERM=dumb', () => {
    expect(colourWanted(new Capture(false), {})).to.equal(false);
    expect(colourWanted(new Capture(true), {})).to.equal(true);
    expect(colourWanted(new Capture(true), { NO_COLOR: '1' })).to.equal(false);
    expect(colourWanted(new Capture(true), { TERM: 'dumb' })).to.equal(false);
    const piped = new Capture(false);
    new Output(piped, {}).table([{ heading: 'Name' }], [['vol']]);
    expect(piped.text).to.equal('Name\nvol\n');
    const tty = new Capture(true, 80);
    new Output(tty, {}).table([{ heading: 'Name' }], [['vol']]);
    expect(tty.text).to.equal('\u001b[1mName\u001b[0m\nvol\n');
  });

  it('json is one indented document, jsonLine one line', () => {
    const c = new Capture();
    const out = new Output(c, {});
    out.jsonLine({ a: 1 });
    out.json({ b: [2] });
    expect(c.text).to.equal('{"a":1}\n{\n  "b": [\n    2\n  ]\n}\n');
  });
});
