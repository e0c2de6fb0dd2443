import { statusRowsFromKernel } from '../../ts/status';
import { expect } from 'chai';
import { DmParseError, Table, parseStatus, targets, type TableRowInput } from '../../ts/index';

describe('Table', () => {
  it('formats rows in dmsetup table format and parses them back to the same typed rows', () => {
    const t = new Table([
      { start: 0, length: 2048, target: targets.linear({ device: '7:0', offset: 0 }) },
      { start: 2048, length: 100, target: targets.zero() },
      { start: 2148, length: 8, type: 'thin-pool', params: '7:1 7:2 128 0 1 skip_block_zeroing' },
    ]);
    expect(t.toString()).to.equal('0 2048 linear 7:0 0\n2048 100 zero\n2148 8 thin-pool 7:1 7:2 128 0 1 skip_block_zeroing');
    expect(t.size).to.equal(2156);
    const back = Table.parse(t.toString());
    expect(back.toString()).to.equal(t.toString());
    expect(back.rows[0]?.target).to.deep.equal({ type: 'linear', device: '7:0', offset: 0, params: '7:0 0' });
    expect(back.rows[1]?.target).to.deep.equal({ type: 'zero', params: '' });
    expect(back.rows[2]?.target).to.deep.include({ type: 'thin-pool', params: '7:1 7:2 128 0 1 skip_block_zeroing', skipBlockZeroing: true });
  });

  it('parses text with blank lines, trailing spaces and a final newline', () => {
    const t = Table.parse('\n0 8 zero \n\n8 8 error\n');
    expect(t.toString()).to.equal('0 8 zero\n8 8 error');
  });

  it('linear accepts { major, minor } and /dev paths and refuses other device strings', () => {
    expect(targets.linear({ device: { major: 253, minor: 3 }, offset: 5 }).params).to.equal('253:3 5');
    expect(targets.linear({ device: '/dev/loop0', offset: 0 }).params).to.equal('/dev/loop0 0');
    expect(() => targets.linear({ device: 'loop0', offset: 0 })).to.throw(RangeError, /major:minor/);
    expect(() => targets.linear({ device: '7:0', offset: -1 })).to.throw(RangeError, /linear\.offset/);
    expect(() => targets.linear({ device: '7:0', offset: 1.5 })).to.throw(RangeError);
  });

  it('refuses rows that do not start at 0, leave a gap or overlap', () => {
    const z = targets.zero();
    expect(() => new Table([{ start: 1, length: 8, target: z }])).to.throw(RangeError, /rows\[0\]\.start to be 0/);
    expect(() => new Table([{ start: 0, length: 8, target: z }, { start: 9, length: 8, target: z }])).to.throw(RangeError, /rows\[1\]\.start to be 8/);
    expect(() => new Table([{ start: 0, length: 8, target: z }, { start: 4, length: 8, target: z }])).to.throw(RangeError, /rows\[1\]\.start to be 8/);
  });

  it('refuses bad lengths, types and params with the house message shape', () => {
    const z = targets.zero();
    expect(() => new Table([])).to.throw(RangeError, /at least one table row/);
    expect(() => new Table([{ start: 0, length: 0, target: z }])).to.throw(RangeError, /^Expected a length of at least 1 sector for rows\[0\]\.length but received number 0$/);
    expect(() => new Table([{ start: 0, length: 2 ** 53, target: z }])).to.throw(RangeError, /safe integer/);
    expect(() => new Table([{ start: 0, length: 8, type: 'x'.repeat(16), params: '' }])).to.throw(RangeError, /1 to 15 bytes/);
    expect(() => new Table([{ start: 0, length: 8, type: 'a b', params: '' }])).to.throw(RangeError, /without spaces/);
    expect(() => new Table([{ start: 0, length: 8, type: 'zero', params: 'a\0b' }])).to.throw(RangeError, /NUL/);
    expect(() => new Table([{ start: 0, length: 8, type: 'zero', params: 'a\nb' }])).to.throw(RangeError, /one line/);
    expect(() => new Table([{ start: '0', length: 8, target: z } as never])).to.throw(TypeError, /^Expected a non-negative safe integer for rows\[0\]\.start but received "0"$/);
  });

  it('parse errors are DmParseError naming the field and the text', () => {
    const bad = (text: string, field: string): void => {
      let caught: unknown;
      try {
        Table.parse(text);
      } catch (e) {
        caught = e;
      }
      expect(caught).to.be.instanceOf(DmParseError);
      expect(caught).to.have.property('field', field);
    };
    bad('x 8 zero', 'start');
    bad('0 -8 zero', 'length');
    bad('0 8', 'row');
    bad('0 8 linear 7:0', 'offset');
    bad('0 8 linear 7:0 abc', 'offset');
    bad('0 8 zero extra', 'params');
    bad('0 8 zero\n16 8 zero', 'start');
    bad('', 'rows');
  });

  it("parseStatus keeps the space the kernel ends a thin-pool status with: its rows equal the client's for the same answer", () => {
    const kernel = '2 61/512 1/128 - rw discard_passdown queue_if_no_space - 128 ';
    const rows = parseStatus(`0 16384 thin-pool ${kernel}\n16384 8 snapshot-origin \r\n`);
    expect(rows[0]?.status.raw).to.equal(kernel);
    expect(rows).to.deep.equal([...statusRowsFromKernel([{ start: 0, length: 16384, type: 'thin-pool', params: kernel }]), ...statusRowsFromKernel([{ start: 16384, length: 8, type: 'snapshot-origin', params: '' }])]);
  });

  it('parseStatus gives one row per line with the raw status kept', () => {
    const rows = parseStatus('0 2048 thin-pool 1 20/1024 0/2048 - rw discard_passdown queue_if_no_space - 1024\n2048 8 error \n');
    expect(rows).to.have.length(2);
    expect(rows[0]).to.deep.include({ start: 0, length: 2048, type: 'thin-pool' });
    expect(rows[0]?.status).to.deep.include({ type: 'thin-pool', raw: '1 20/1024 0/2048 - rw discard_passdown queue_if_no_space - 1024' });
    expect(rows[1]?.status).to.deep.equal({ type: 'error', raw: '', known: true });
    expect(() => parseStatus('Fail')).to.throw(DmParseError);
  });

  it('a fill of zero and error rows holds one frozen target and one status of each, however many rows', () => {
    const table = new Table(Array.from({ length: 1000 }, (_, i) => ({ start: i * 8, length: 8, target: i % 2 === 0 ? targets.zero() : targets.error() })));
    expect(new Set(table.rows.map((r) => r.target)).size).to.equal(2);
    expect(Object.isFrozen(targets.zero())).to.equal(true);
    expect(Table.parse(table.toString()).rows[2]?.target).to.equal(targets.zero());
    const status = statusRowsFromKernel(Array.from({ length: 4 }, (_, i) => ({ start: i * 8, length: 8, type: i % 2 === 0 ? 'zero' : 'error', params: '' })));
    expect(status[0]?.status).to.equal(status[2]?.status);
    expect(status[1]?.status).to.equal(status[3]?.status).and.deep.equal({ type: 'error', raw: '', known: true });
    expect(() => parseStatus('0 8 zero x')).to.throw(DmParseError, /no status fields/);
  });

  it('formats and parses a table of 20 000 rows', () => {
    const rows = Array.from({ length: 20000 }, (_, i) => ({ start: i * 8, length: 8, target: targets.linear({ device: '7:0', offset: i * 8 }) }));
    const text = new Table(rows).toString();
    expect(Table.parse(text).rows).to.have.length(20000);
  });
});

describe('Table is immutable and always valid', () => {
  it('refuses a sparse array of rows', () => {
    const row = { start: 0, length: 8, target: targets.zero() };
    // eslint-disable-next-line no-sparse-arrays
    const sparse = [, row] as unknown as TableRowInput[];
    expect(() => new Table(sparse)).to.throw(TypeError, /^Expected a table row for rows\[0\] but received undefined$/);
  });

  it('keeps frozen copies: neither its rows nor the caller\'s objects can change it', () => {
    const target = { type: 'linear', params: '7:0 0', device: '7:0', offset: 0 };
    const input = [{ start: 0, length: 8, target }];
    const t = new Table(input);
    target.params = '7:1 99';
    input[0] = { start: 0, length: 16, target };
    expect(t.toString()).to.equal('0 8 linear 7:0 0');
    // Every attempt to change it is refused (Reflect.set says whether an assignment took).
    expect(Reflect.set(t, 'rows', [])).to.equal(false);
    expect(Reflect.set(t.rows, 0, { start: 0, length: 99 })).to.equal(false);
    expect(Reflect.set(t.rows, 'length', 0)).to.equal(false);
    expect(Reflect.set(t.rows[0] ?? {}, 'length', 99)).to.equal(false);
    expect(Reflect.set(t.rows[0]?.target ?? {}, 'params', 'x')).to.equal(false);
    expect(Object.isFrozen(t)).to.equal(true);
    expect(t.toString()).to.equal('0 8 linear 7:0 0');
    expect(t.size).to.equal(8);
  });

  it('refuses strings that are not well-formed Unicode', () => {
    expect(() => new Table([{ start: 0, length: 8, type: 'zero', params: 'a\uD800' }])).to.throw(RangeError, /well-formed Unicode for rows\[0\]\.params/);
    expect(() => new Table([{ start: 0, length: 8, type: 'z\uDC00', params: '' }])).to.throw(RangeError, /well-formed Unicode/);
    expect(() => Table.parse('0 8 zero \uD800')).to.throw(DmParseError);
  });
});

describe('DmParseError names the field at fault', () => {
  const field = (text: string): string => {
    try {
      Table.parse(text);
    } catch (e) {
      if (e instanceof DmParseError) return e.field;
      throw e;
    }
    throw new Error(`${text} parsed`);
  };
  it('for every parse path', () => {
    expect(field('0 0 zero')).to.equal('length');
    expect(field('0 8 linear 7:0 99999999999999999999')).to.equal('offset');
    expect(field('0 8 linear loop0 0')).to.equal('device');
    expect(field('0 8 linear 7:0')).to.equal('offset');
    expect(field('0 8 linear 7:0 0 1')).to.equal('params');
    expect(field('0 8 zero x')).to.equal('params');
    expect(field('0 8 zero\n9 8 zero')).to.equal('start');
    expect(field('0 99999999999999999999 zero')).to.equal('length');
    expect(field('0 9007199254740991 zero\n9007199254740991 1 zero')).to.equal('length');
    expect(field('0 8 abcdefghijklmnopq')).to.equal('type');
    expect(field('0 8')).to.equal('row');
    expect(field('\n')).to.equal('rows');
  });

  it('a bad start or length never shows the params, where a key may be', () => {
    const key = 'a1'.repeat(32);
    for (const text of [`0 2048s crypt aes-xts-plain64 ${key} 0 7:0 0`, `x 2048 crypt aes-xts-plain64 ${key} 0 7:0 0`, `0 99999999999999999999 crypt aes-xts-plain64 ${key} 0 7:0 0`]) {
      let caught: unknown;
      try {
        Table.parse(text);
      } catch (e) {
        caught = e;
      }
      expect(caught, text).to.be.instanceOf(DmParseError);
      if (!(caught instanceof DmParseError)) continue;
      expect(caught.message, text).not.to.contain(key);
      expect(caught.text, text).not.to.contain(key);
      expect(caught.text, text).to.match(/crypt …$/);
    }
  });
});

describe('Table: comparing and editing', () => {
  const lin = (offset: number): ReturnType<typeof targets.linear> => targets.linear({ device: '7:0', offset });

  it('equals compares rows and targets as their parsers read them', () => {
    const a = new Table([{ start: 0, length: 8, target: lin(0) }, { start: 8, length: 8, target: targets.zero() }]);
    expect(a.equals(Table.parse('0 8 linear 7:0 0\n8 8 zero'))).to.equal(true);
    expect(a.equals(Table.parse('0 8 linear  7:0   0\n8 8 zero'))).to.equal(true);
    expect(a.equals(Table.parse('0 8 linear 7:0 1\n8 8 zero'))).to.equal(false);
    expect(a.equals(Table.parse('0 8 linear 7:0 0\n8 16 zero'))).to.equal(false);
    expect(a.equals(Table.parse('0 8 linear 7:0 0'))).to.equal(false);
    expect(new Table([{ start: 0, length: 8, type: 'nosuch', params: 'a  b' }]).equals(new Table([{ start: 0, length: 8, type: 'nosuch', params: 'a b' }]))).to.equal(false);
    expect(() => a.equals('0 8 zero' as never)).to.throw(TypeError, /Expected a Table for other/);
  });

  it('rows given as type and params are typed when the library models the type', () => {
    const t = new Table([{ start: 0, length: 8, type: 'linear', params: '7:0 16' }]);
    expect(t.rows[0]?.target).to.deep.equal(lin(16));
    const disagreeing: { type: string; params: string; offset: number } = { ...lin(16), offset: 99 };
    const spread = new Table([{ start: 0, length: 8, target: disagreeing }]);
    expect(spread.rows[0]?.target, 'read from params, not from fields that disagree').to.deep.equal(lin(16));
  });

  it('withTarget, grow and append make new tables and leave the old one as it was', () => {
    const a = new Table([{ start: 0, length: 8, target: lin(0) }]);
    expect(a.withTarget(0, targets.zero()).toString()).to.equal('0 8 zero');
    expect(a.grow(8).toString()).to.equal('0 16 linear 7:0 0');
    expect(a.append(4, targets.error()).toString()).to.equal('0 8 linear 7:0 0\n8 4 error');
    expect(a.rowsOfType('linear')).to.have.length(1);
    expect(a.append(4, targets.error()).rowsOfType('error')[0]).to.include({ start: 8, length: 4 });
    expect(a.toString()).to.equal('0 8 linear 7:0 0');
    expect(() => a.withTarget(1, targets.zero())).to.throw(RangeError, /row index from 0 to 0/);
    expect(() => a.grow(-1)).to.throw(RangeError);
    expect(() => a.append(0, targets.zero())).to.throw(RangeError);
  });
});

describe('kernel output of a shape the library does not know', () => {
  it('dm.table() and dm.status() keep such rows raw instead of failing; Table.parse and parseStatus refuse them', () => {

    const odd = { start: 0, length: 8, type: 'striped', params: '2 7:0 7:1 1 AAA' };
    const [row] = statusRowsFromKernel([odd]);
    expect(row?.status).to.deep.equal({ type: 'striped', raw: '2 7:0 7:1 1 AAA', known: false, words: ['2', '7:0', '7:1', '1', 'AAA'] });
    expect(() => parseStatus('0 8 striped 2 7:0 7:1 1 AAA')).to.throw(DmParseError);
    const t = Table.fromKernelRows([{ start: 0, length: 8, type: 'linear', params: '7:0 0 newfeature' }]);
    expect(t.rows[0]?.target).to.deep.equal({ type: 'linear', params: '7:0 0 newfeature' });
    expect(t.toString()).to.equal('0 8 linear 7:0 0 newfeature');
    expect(() => Table.parse('0 8 linear 7:0 0 newfeature')).to.throw(DmParseError);
  });
});
