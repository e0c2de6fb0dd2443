import { expect } from 'chai';
import type { NativeResult } from '../../binding';
import { Command, DmError } from '../../ts/index';
import { remove } from '../../ts/commands';
import { build, Continue, createProgram, FIRST_RANGE, inSlices, oneIoctl, reloadProgram, SLICE_MS, withRollback, type Answer, type Program, type Step } from '../../ts/steps';
import { nativeRows } from './answers';

function answer(fields: Partial<NativeResult>): NativeResult {
  return { version: [4, 47, 0], flags: 0, name: 'vol', uuid: '', dev: 0xfd00, openCount: 0, eventNr: 0, targetCount: 0, ioctls: 1, bufferSize: 16384, ...fields };
}

function dmError(code: string, errno: number, command: string): DmError {
  return new DmError({ errno, syscall: 'ioctl', command, device: 'vol' });
}

/** Drives a program with scripted kernel answers (a result, or an error thrown in), recording each request. */
function drive<T>(program: Program<T>, script: ((step: Step) => NativeResult | Error)[]): { value?: T; error?: unknown; steps: Step[] } {
  const steps: Step[] = [];
  let input: Answer = {};
  let thrown: Error | undefined;
  try {
    for (let i = 0; ; i++) {
      const next = thrown === undefined ? program.next(input) : program.throw(thrown);
      thrown = undefined;
      if (next.done === true) return { value: next.value, steps };
      steps.push(next.value);
      if (next.value.kind !== 'ioctl') {
        input = {};
        continue;
      }
      const reply = script[i]?.(next.value);
      if (reply === undefined) throw new Error(`no scripted answer for step ${i}`);
      if (reply instanceof Error) thrown = reply;
      else input = { result: reply };
    }
  } catch (error) {
    return { error, steps };
  }
}

describe('transaction programs', () => {
  it('a failed rollback reaches the caller even when the first error is not a DmError', () => {
    const first = new TypeError('not a kernel error');
    const second = dmError('EIO', 5, 'DM_DEV_REMOVE');
    const e = withRollback(first, second);
    expect(e).to.equal(first);
    expect(e).to.have.property('rollbackError', second);
    const wrapped = withRollback('a string', second);
    expect(wrapped).to.be.instanceOf(Error).and.have.property('rollbackError', second);
    const dm = dmError('EINVAL', 22, 'DM_TABLE_LOAD');
    expect(withRollback(dm, second)).to.have.property('rollbackError', second);
    expect(withRollback(dm, undefined)).to.equal(dm);
  });

  it('create refers to the device by uuid after DEV_CREATE, and removes only the device it made when the load fails', () => {
    const ours = { name: 'vol', uuid: 'U', dev: 0xfd00 };
    const program = createProgram({ name: 'vol', uuid: 'U', rows: [{ start: 0, length: 8, type: 'zero', params: '' }], loadFlags: 0, activate: true });
    const ok = (): NativeResult => answer(ours);
    const loadFails = (): Error => dmError('EINVAL', 22, 'DM_TABLE_LOAD');
    // lock steps are not ioctls: pad the script so indexes follow the steps.
    const r = drive(program, [ok, ok, loadFails, ok, ok]);
    expect(r.error).to.be.instanceOf(DmError).and.include({ code: 'EINVAL' });
    const ioctls = r.steps.filter((s) => s.kind === 'ioctl').map((s) => s.request);
    expect(ioctls.map((q) => q.cmd)).to.deep.equal([Command.DEV_CREATE, Command.TABLE_LOAD, Command.DEV_STATUS, Command.DEV_REMOVE]);
    for (const q of ioctls.slice(1)) expect(q).to.include({ uuid: 'U' }).and.not.have.property('dev');
    for (const q of ioctls.slice(1)) expect(q).to.not.have.property('name');
  });

  it('create does not roll back a device that is not the one it made', () => {
    const program = createProgram({ name: 'vol', uuid: undefined, rows: [{ start: 0, length: 8, type: 'zero', params: '' }], loadFlags: 0, activate: true });
    const r = drive(program, [() => answer({ dev: 0xfd00 }), () => answer({}), () => answer({ name: 'vol', dev: 0xfd07 })]);
    expect(r.error).to.be.instanceOf(DmError).and.include({ code: 'ESTALE' });
    const cmds = r.steps.flatMap((s) => (s.kind === 'ioctl' ? [s.request.cmd] : []));
    expect(cmds).to.deep.equal([Command.DEV_CREATE, Command.TABLE_LOAD]);
  });

  it('reload whose resume fails after the swap loads the old table again and resumes; a device suspended before stays suspended', () => {
    const old = { start: 0, length: 8, type: 'linear', params: '7:0 0', status: 0 };
    const fresh = { start: 0, length: 16, type: 'linear', params: '7:0 0', status: 0 };
    const SUSPEND = 2;
    const program = reloadProgram({ id: { name: 'vol' }, label: 'vol', rows: [fresh], loadFlags: 0, suspendFlags: SUSPEND });
    const r = drive(program, [
      () => answer({ flags: SUSPEND, targets: nativeRows([old]) }), // TABLE_STATUS: suspended by the caller
      () => answer({}), // lock
      () => answer({}), // TABLE_LOAD
      () => dmError('EINVAL', 22, 'DM_DEV_SUSPEND'), // resume: preresume refused after the swap
      () => answer({ flags: SUSPEND, targets: nativeRows([fresh]) }), // TABLE_STATUS: the new table is live
      () => answer({}), // TABLE_LOAD old
      () => answer({}), // resume (swaps the old table back)
      () => answer({ flags: SUSPEND }), // suspend again: it was suspended before
    ]);
    expect(r.error).to.include({ code: 'EINVAL' });
    expect((r.error as DmError).rollbackError).to.equal(undefined);
    const ioctls = r.steps.flatMap((s) => (s.kind === 'ioctl' ? [s.request] : []));
    expect(ioctls.map((q) => q.cmd)).to.deep.equal([
      Command.TABLE_STATUS, Command.TABLE_LOAD, Command.DEV_SUSPEND, Command.TABLE_STATUS, Command.TABLE_LOAD, Command.DEV_SUSPEND, Command.DEV_SUSPEND,
    ]);
    expect(ioctls[4]?.targets).to.deep.equal([{ start: 0, length: 8, type: 'linear', params: '7:0 0' }]);
    expect((ioctls[6]?.flags ?? 0) & SUSPEND).to.equal(SUSPEND);
  });

  it('a one-ioctl program yields its request once and finishes with its answer, also delegated to, and a failure thrown in goes out', () => {
    const request = { cmd: Command.DEV_STATUS, flags: 0, name: 'vol' };
    const ok = drive(oneIoctl(request, 'vol', (r) => r.openCount + 1), [() => answer({ openCount: 2 })]);
    expect(ok.value).to.equal(3);
    expect(ok.steps).to.deep.equal([{ kind: 'ioctl', request, device: 'vol' }]);
    const failure = dmError('ENXIO', 6, 'DM_DEV_STATUS');
    expect(drive(oneIoctl(request, 'vol', () => 0), [() => failure]).error).to.equal(failure);
    // Inside another program, as a generator's yield* sees it: the failure reaches its catch.
    function* outer(): Program<string> {
      const first = yield* oneIoctl(request, 'vol', (r) => r.name);
      try {
        yield* oneIoctl(request, 'vol', () => 'unreached');
      } catch (e) {
        return `${first}, then ${(e as DmError).code}`;
      }
      return 'no failure';
    }
    expect(drive(outer(), [() => answer({ name: 'vol' }), () => failure]).value).to.equal('vol, then ENXIO');
    const done = oneIoctl(request, 'vol', () => 1);
    done.next({});
    done.next({ result: answer({}) });
    expect(() => done.next({})).to.throw(/finished program was resumed/);
  });

  it('a one-ioctl program builds a few items at once and many in slices, and tidies up after either, also when an item fails', () => {
    const request = { cmd: Command.TABLE_STATUS, flags: 0, name: 'vol' };
    for (const count of [0, 1, FIRST_RANGE, FIRST_RANGE + 1, 50 * FIRST_RANGE]) {
      let tidied = 0;
      const finish = (): number[] | Continue<number[]> => build(count, (i) => i * 2, (out) => out, () => tidied++);
      // What a driver that sends the step itself sees: the result, or the program that goes on.
      const direct = finish();
      expect(direct instanceof Continue, `${count} items`).to.equal(count > FIRST_RANGE);
      expect(tidied, `${count} items, tidied at once`).to.equal(direct instanceof Continue ? 0 : 1);
      // Through the program's own steps: the same items, however many slices they took.
      tidied = 0;
      const run = drive(oneIoctl(request, 'vol', finish), [() => answer({})]);
      expect(run.value, `${count} items`).to.deep.equal(Array.from({ length: count }, (_, i) => i * 2));
      expect(run.steps.filter((s) => s.kind === 'ioctl')).to.have.length(1);
      expect(run.steps.every((s) => s.kind === 'ioctl' || s.kind === 'yield')).to.equal(true);
      expect(tidied, `${count} items`).to.equal(1);
    }
    for (const count of [3, 10 * FIRST_RANGE]) {
      let tidied = 0;
      const bad = new RangeError('item 2 is unreadable');
      const finish = (): number[] | Continue<number[]> => build(count, (i) => {
        if (i === 2) throw bad;
        return i;
      }, (out) => out, () => tidied++);
      expect(drive(oneIoctl(request, 'vol', finish), [() => answer({})]).error, `${count} items`).to.equal(bad);
      expect(tidied, `${count} items`).to.equal(1);
    }
  });
});

describe('remove by device number without udev', () => {
  it('looks the device up and removes it (EBUSY retries too) by its uuid, never by the number the kernel may hand to another device', () => {
    const cmd = remove({ driverVersion: [4, 47, 0], udev: { mode: 'off', timeout: 1000 } }, { dev: { major: 253, minor: 0 } }, { retries: 2 });
    const busy = (): Error => new DmError({ errno: 16, syscall: 'ioctl', command: 'DM_DEV_REMOVE', device: '253:0' });
    const r = drive(cmd.program, [() => answer({ name: 'vol', uuid: 'U', dev: 0xfd00 }), busy, () => answer({}), busy, () => answer({}), () => answer({})]);
    expect(r.error).to.equal(undefined);
    const ioctls = r.steps.filter((s) => s.kind === 'ioctl').map((s) => s.request);
    expect(ioctls.map((q) => q.cmd)).to.deep.equal([Command.DEV_STATUS, Command.DEV_REMOVE, Command.DEV_REMOVE, Command.DEV_REMOVE]);
    expect(ioctls[0]).to.include({ dev: 0xfd00 });
    for (const q of ioctls.slice(1)) expect(q).to.include({ uuid: 'U' }).and.not.have.property('dev');
  });
});

describe('work in slices (inSlices)', () => {
  /** Runs the generator to its end, answering its yields at once; the ranges and the yields between them. */
  function drive(count: number, chunk: number, cost: (i: number) => void): { ranges: [number, number][]; yieldsAfter: number[] } {
    const ranges: [number, number][] = [];
    const yieldsAfter: number[] = [];
    const g = inSlices(count, chunk, (from, to) => {
      ranges.push([from, to]);
      for (let i = from; i < to; i++) cost(i);
    });
    for (let r = g.next(); r.done !== true; r = g.next({})) {
      expect(r.value.kind).to.equal('yield');
      yieldsAfter.push(ranges.length);
    }
    return { ranges, yieldsAfter };
  }
  const covers = (ranges: [number, number][], count: number): void => {
    let next = 0;
    for (const [from, to] of ranges) {
      expect(from).to.equal(next);
      expect(to).to.be.above(from);
      next = to;
    }
    expect(next).to.equal(count);
  };

  it('cheap items: the ranges double, so 100,000 of them take a few clock reads, not one per 256', () => {
    let sum = 0;
    const { ranges } = drive(100000, 256, (i) => {
      sum += i;
    });
    covers(ranges, 100000);
    expect(sum).to.equal((100000 * 99999) / 2);
    expect(ranges.length).to.be.at.most(20);
    expect(ranges[1]?.[1]).to.equal(256 + 512);
  });

  it('dear items (over an eighth of a slice each): ranges stay small, and the work yields at least every slice', () => {
    const busy = (): void => {
      const until = performance.now() + SLICE_MS / 8 + 0.1;
      while (performance.now() < until) {
        // spin
      }
    };
    const { ranges, yieldsAfter } = drive(40, 1, busy);
    covers(ranges, 40);
    expect(ranges.every(([from, to]) => to - from === 1)).to.equal(true);
    // A slice of SLICE_MS holds at most 8 such items: a yield comes after every 8th or sooner.
    expect(yieldsAfter.length).to.be.at.least(4);
    let last = 0;
    for (const at of yieldsAfter) {
      expect(at - last).to.be.at.most(8);
      last = at;
    }
  });

  it('a count within one range is one call and no clock at all', () => {
    expect(drive(100, 256, () => undefined).ranges).to.deep.equal([[0, 100]]);
    expect(drive(0, 256, () => undefined).ranges).to.deep.equal([]);
  });
});
