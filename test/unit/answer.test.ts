import { expect } from 'chai';
import type { NativeResult } from '../../binding';
import { DeviceReader, Lender, RowReader } from '../../ts/answer';
import { DmError } from '../../ts/index';
import { LOAD_IN_SLICES_FROM, sliced, targetsOf, type Step } from '../../ts/steps';
import { nativeDevices, nativeRows } from './answers';

function result(fields: Partial<NativeResult>): NativeResult {
  return { version: [4, 47, 0], flags: 0, name: '', uuid: '', dev: 0, openCount: 0, eventNr: 0, targetCount: 0, ioctls: 1, bufferSize: 16384, ...fields };
}

describe('readers of indexed answers', () => {
  it('read rows field by field: 64-bit numbers from two words, UTF-8 params, types by id', () => {
    const r = new RowReader(result({ targets: nativeRows([
      { start: 0, length: 2 ** 40 + 5, type: 'linear', params: '/dev/disk/by-id/é 0' },
      { start: 2 ** 40 + 5, length: 8, type: 'zero', params: '' },
      { start: 2 ** 40 + 13, length: 1, type: 'linear', params: '7:0 9' },
    ]) }), 'vol');
    expect(r.count).to.equal(3);
    expect(r.all()).to.deep.equal([
      { start: 0, length: 2 ** 40 + 5, type: 'linear', params: '/dev/disk/by-id/é 0' },
      { start: 2 ** 40 + 5, length: 8, type: 'zero', params: '' },
      { start: 2 ** 40 + 13, length: 1, type: 'linear', params: '7:0 9' },
    ]);
  });

  it('refuse a number a JavaScript number cannot hold exactly, naming the field and device (EOVERFLOW)', () => {
    const r = new RowReader(result({ targets: nativeRows([{ start: 0, length: 2n ** 53n, type: 'zero', params: '' }]) }), 'vol');
    expect(r.start(0)).to.equal(0);
    expect(() => r.length(0)).to.throw(DmError, /a row length of vol = 9007199254740992/).with.property('errno', 75);
  });

  it('wipe the answer buffer (a secure answer may hold a key)', () => {
    const rows = nativeRows([{ start: 0, length: 8, type: 'crypt', params: 'aes-xts-plain64 00112233 0 7:0 0' }]);
    const r = new RowReader(result({ targets: rows }), 'c');
    r.wipe();
    expect(new Uint8Array(rows.bytes).every((b) => b === 0)).to.equal(true);
  });

  it('read devices: name, huge-encoded dev, event numbers and uuids only where the kernel gave them', () => {
    const d = new DeviceReader(result({ devices: nativeDevices([
      { name: 'a', dev: 0xfe00, eventNr: 3, uuid: 'U-1' },
      { name: 'b', dev: 0xfe01, eventNr: 0 },
      { name: 'c', dev: 0xfe02 },
    ]) }));
    expect([0, 1, 2].map((i) => [d.name(i), d.dev(i), d.eventNr(i), d.uuid(i)])).to.deep.equal([
      ['a', 0xfe00, 3, 'U-1'],
      ['b', 0xfe01, 0, undefined],
      ['c', 0xfe02, undefined, undefined],
    ]);
  });

  it('read a device at once (entry) as field by field, the lending checked once for all its fields', () => {
    const list = [
      { name: 'a', dev: 0xfe00, eventNr: 3, uuid: 'U-1' },
      { name: 'b', dev: 0xfe01, eventNr: 0 },
      { name: 'c', dev: 0xfe02 },
      ...Array.from({ length: 30 }, (_, i) => ({ name: `vol-${i}`, dev: 0xfe10 + i, eventNr: i, ...(i % 2 === 0 ? { uuid: `LVM-${i}` } : {}) })),
    ];
    const d = new DeviceReader(result({ devices: nativeDevices(list) }));
    const tuple = (name: string, dev: number, uuid: string | undefined, eventNr: number | undefined): unknown[] => [name, dev, uuid, eventNr];
    expect(list.map((_, i) => d.entry(i, tuple))).to.deep.equal(list.map((_, i) => [d.name(i), d.dev(i), d.uuid(i), d.eventNr(i)]));
    expect(() => d.entry(list.length, tuple)).to.throw(/internal error: item 33 of 33 read/);
    expect(() => d.entry(-1, tuple)).to.throw(/internal error: item -1 of 33 read/);
    // A number a JavaScript number cannot hold exactly, named by the device's name.
    const huge = new DeviceReader(result({ devices: nativeDevices([{ name: 'big', dev: 2n ** 60n, eventNr: 1 }]) }));
    expect(() => huge.entry(0, tuple)).to.throw(DmError, /dev of big/).with.property('errno', 75);
    // Lent by a synchronous client: good until its next call, then refused, never read.
    const lender = new Lender();
    const lent = new DeviceReader({ ...result({ devices: nativeDevices(list) }), lender, call: lender.calls });
    expect(lent.entry(0, tuple)).to.deep.equal(['a', 0xfe00, 'U-1', 3]);
    lender.calls++;
    expect(() => lent.entry(1, tuple)).to.throw(/read after the next call/);
  });

  it('read the strings of a large ASCII answer from one decode, and any other answer string by string, alike', () => {
    const names = Array.from({ length: 40 }, (_, i) => ({ name: `vol-${i}`, dev: 0xfe00 + i, eventNr: i, ...(i % 3 === 0 ? { uuid: `LVM-${i}` } : {}) }));
    for (const list of [names, [...names, { name: 'ümlaut', dev: 0xfeff, eventNr: 1 }], names.slice(0, 5)]) {
      const indexed = nativeDevices(list);
      expect(indexed.ascii).to.equal(list.every((d) => /^\p{ASCII}*$/u.test(d.name)));
      const d = new DeviceReader(result({ devices: indexed }));
      expect(list.map((_, i) => [d.name(i), d.uuid(i)])).to.deep.equal(list.map((e) => [e.name, 'uuid' in e ? e.uuid : undefined]));
    }
    const rows = Array.from({ length: 30 }, (_, i) => ({ start: i * 8, length: 8, type: i % 2 ? 'zero' : 'linear', params: i % 2 ? '' : `7:0 ${i}` }));
    expect(new RowReader(result({ targets: nativeRows(rows) }), 'v').all()).to.deep.equal(rows.map(({ start, length, type, params }) => ({ start, length, type, params })));
  });

  it('read a large ASCII answer window by window, strings across a window edge and longer than a window included', () => {
    // Params from empty to 70 KiB: some start in one 32 KiB window and end in the next.
    const rows = Array.from({ length: 400 }, (_, i) => ({ start: i * 8, length: 8, type: 'linear', params: i % 97 === 5 ? 'p'.repeat(70000 + i) : `7:${i} ${'x'.repeat((i * 37) % 900)}` }));
    const reader = new RowReader(result({ targets: nativeRows(rows) }), 'v');
    expect(reader.all()).to.deep.equal(rows);
    const devices = Array.from({ length: 3000 }, (_, i) => ({ name: `volume-${i}-${'n'.repeat(i % 100)}`, dev: 0xfe00 + i, eventNr: i, ...(i % 2 === 0 ? { uuid: `LVM-${'u'.repeat(i % 120)}${i}` } : {}) }));
    const d = new DeviceReader(result({ devices: nativeDevices(devices) }));
    expect(devices.map((_, i) => [d.name(i), d.uuid(i), d.dev(i)])).to.deep.equal(devices.map((e) => [e.name, 'uuid' in e ? e.uuid : undefined, e.dev]));
  });

  it('decode nothing for empty params: a table of 10,000 zero rows reads without a window of its bytes', () => {
    const rows = Array.from({ length: 10000 }, (_, i) => ({ start: i * 8, length: 8, type: 'zero', params: '' }));
    const reader = new RowReader(result({ targets: nativeRows(rows) }), 'v');
    // Every Buffer#toString counted while the params are read.
    const proto: unknown = Object.getPrototypeOf(Buffer.alloc(0));
    if (typeof proto !== 'object' || proto === null) throw new Error('no Buffer prototype');
    const decode: unknown = Reflect.get(proto, 'toString');
    if (typeof decode !== 'function') throw new Error('no Buffer#toString');
    let decoded = 0;
    Reflect.set(proto, 'toString', function (this: Buffer, ...args: unknown[]): string {
      decoded++;
      const out: unknown = Reflect.apply(decode, this, args);
      return typeof out === 'string' ? out : String(out);
    });
    try {
      expect(rows.every((_, i) => reader.params(i) === '')).to.equal(true);
    } finally {
      Reflect.set(proto, 'toString', decode);
    }
    expect(decoded, 'strings decoded from the answer').to.equal(0);
    expect(reader.all()).to.deep.equal(rows);
  });

  it('treat a missing payload as no items, and refuse an index that does not match its count', () => {
    expect(new RowReader(result({}), 'v').count).to.equal(0);
    expect(new DeviceReader(result({})).count).to.equal(0);
    const bad = { ...nativeRows([{ start: 0, length: 8, type: 'zero', params: '' }]), count: 2 };
    expect(() => new RowReader(result({ targets: bad }), 'v')).to.throw(/index has 8 words for 2 items/);
  });
});

describe('sliced', () => {
  it('yields between slices of work and returns every item in order', () => {
    const program = sliced(5000, (i) => {
      const until = performance.now() + 0.01;
      while (performance.now() < until);
      return i * 2;
    });
    let yields = 0;
    for (;;) {
      const next: IteratorResult<Step, number[]> = program.next({});
      if (next.done === true) {
        expect(next.value).to.have.length(5000);
        expect(next.value.every((v, i) => v === i * 2)).to.equal(true);
        break;
      }
      expect(next.value.kind).to.equal('yield');
      yields++;
    }
    // 5,000 items of at least 10 µs: 50 ms of work, at least 5 slices of SLICE_MS (4 ms) or more.
    expect(yields).to.be.at.least(4);
  });

  it('does not yield for a small answer', () => {
    const program = sliced(100, (i) => i);
    const next = program.next({});
    expect(next.done).to.equal(true);
  });

  it('hands a large table to the addon a range of rows at a time, yielding between slices; a small one as it is', () => {
    // Rows whose params take at least 5 µs to read: 20,000 of them are 100 ms of work.
    const slow = Array.from({ length: 20000 }, (_, i) => ({
      start: i * 8,
      length: 8,
      type: 'zero',
      get params(): string {
        const until = performance.now() + 0.005;
        while (performance.now() < until);
        return '';
      },
    }));
    const program = targetsOf(slow);
    let yields = 0;
    for (;;) {
      const next = program.next({});
      if (next.done === true) {
        expect(Array.isArray(next.value)).to.equal(false);
        expect(next.value).to.have.property('count', 20000);
        break;
      }
      expect(next.value.kind).to.equal('yield');
      yields++;
    }
    expect(yields).to.be.at.least(5);
    const small = slow.slice(0, LOAD_IN_SLICES_FROM - 1);
    const once = targetsOf(small).next({});
    expect(once.done).to.equal(true);
    expect(once.value).to.equal(small);
  });
});
