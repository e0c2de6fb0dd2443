import { expect } from 'chai';
import { readFileSync, readdirSync } from 'node:fs';
import type { Control } from '../../binding';
import { binding } from '../../ts/binding';
import { Command, DeviceMapper, DmError, Flag, LoopDevice, Table, targets } from '../../ts/index';

// The kernel's header, as installed on this machine (linux-libc-dev).
function headerConstants(): Map<string, number> {
  const text = readFileSync('/usr/include/linux/dm-ioctl.h', 'utf8');
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^#define\s+(DM_\w+)\s+\(1 << (\d+)\)/gm)) if (m[1] && m[2]) out.set(m[1], 2 ** Number(m[2]));
  const cmds = /enum \{([^}]*)\}/.exec(text)?.[1] ?? '';
  let n = 0;
  for (const m of cmds.matchAll(/(DM_\w+_CMD)(?:\s*=\s*(\d+))?/g)) {
    if (m[2] !== undefined) n = Number(m[2]);
    if (m[1]) out.set(m[1], n++);
  }
  return out;
}

/** The addon's I/O threads in this process (every Control's pool). */
function ioThreads(): number {
  let n = 0;
  for (const task of readdirSync('/proc/self/task')) {
    try {
      if (readFileSync(`/proc/self/task/${task}/comm`, 'utf8').trim() === 'devmapper-io') n++;
    } catch {
      // ended meanwhile
    }
  }
  return n;
}

describe('native addon contract', () => {
  const native = binding();

  it('exports the header constants, and the TypeScript flags and commands equal them', () => {
    const header = headerConstants();
    expect(header.size).to.be.greaterThan(30);
    for (const [name, value] of header) {
      if (name in native.constants) expect(native.constants[name], name).to.equal(value);
    }
    for (const [key, value] of Object.entries(Flag)) {
      const headerName = key === 'DEFERRED_REMOVE' ? 'DM_DEFERRED_REMOVE' : `DM_${key}_FLAG`;
      const expected = header.get(headerName) ?? native.constants[headerName];
      if (expected !== undefined) expect(value, key).to.equal(expected);
    }
    for (const [key, value] of Object.entries(Command)) expect(value, key).to.equal(header.get(`DM_${key}_CMD`));
  });

  it('opening a missing control node is ENOENT naming the path', async () => {
    const e: unknown = await DeviceMapper.open({ path: '/nonexistent/control' }).catch((x: unknown) => x);
    expect(e).to.be.instanceOf(DmError);
    expect(e).to.include({ code: 'ENOENT', syscall: 'open', device: '/nonexistent/control' });
  });

  describe('a Control on a file that is not the control node', () => {
    let control: Control;
    beforeEach(() => {
      control = new native.Control('/dev/null');
    });
    afterEach(async () => {
      await control.close();
    });

    it('reports the kernel refusing the ioctl with errno and the DM command', async () => {
      const e: unknown = await control.ioctl({ cmd: Command.VERSION, flags: 0 }).catch((x: unknown) => x);
      expect(e).to.be.instanceOf(Error);
      expect(e).to.include({ errno: 25, code: 'ENOTTY', syscall: 'ioctl', command: 'DM_VERSION' });
    });

    it('refuses bad requests with TypeError or RangeError, never a crash', () => {
      const bad: [unknown, RegExp][] = [
        [undefined, /^Expected an object for request but received undefined$/],
        [{ cmd: 18, flags: 0 }, /request\.cmd/],
        [{ cmd: 0 }, /request\.flags/],
        [{ cmd: 0, flags: -1 }, /request\.flags/],
        [{ cmd: 0, flags: 0, name: 5 }, /request\.name/],
        [{ cmd: 0, flags: 0, name: 'x'.repeat(128) }, /name longer than 127 bytes/],
        [{ cmd: 0, flags: 0, uuid: 'x'.repeat(129) }, /uuid longer than 128 bytes/],
        [{ cmd: 0, flags: 0, name: 'a\0b' }, /NUL/],
        [{ cmd: 9, flags: 0, targets: {} }, /request\.targets/],
        [{ cmd: 9, flags: 0, targets: [{ start: 0, length: 1, type: 'x'.repeat(16), params: '' }] }, /target type longer than 15 bytes/],
        [{ cmd: 9, flags: 0, targets: [{ start: 0.5, length: 1, type: 'zero', params: '' }] }, /request\.targets\[0\]\.start/],
        [{ cmd: 9, flags: 0, targets: [null] }, /request\.targets\[0\]/],
        [{ cmd: 14, flags: 0, message: 'a\0b' }, /message contains a NUL/],
        [{ cmd: 0, flags: 0, dev: 2 ** 53 }, /request\.dev/],
        // Kernel-to-user flags are never sent: BUFFER_FULL made the retry loop reissue REMOVE_ALL.
        [{ cmd: Command.VERSION, flags: Flag.BUFFER_FULL }, /flags 0x100 are not flags DM_VERSION takes/],
        [{ cmd: Command.REMOVE_ALL, flags: Flag.BUFFER_FULL }, /flags 0x100 are not flags DM_REMOVE_ALL takes/],
        [{ cmd: Command.DEV_STATUS, flags: Flag.ACTIVE_PRESENT | Flag.DATA_OUT }, /are not flags DM_DEV_STATUS takes/],
        [{ cmd: Command.TABLE_LOAD, flags: Flag.SUSPEND }, /are not flags DM_TABLE_LOAD takes/],
        [{ cmd: Command.DEV_SUSPEND, flags: Flag.READONLY }, /are not flags DM_DEV_SUSPEND takes/],
        [{ cmd: Command.TABLE_LOAD, flags: 0, eventNr: 5 }, /DM_TABLE_LOAD takes no event_nr/],
        [{ cmd: Command.DEV_STATUS, flags: 0, repeatable: true }, /only a message can be marked repeatable/],
      ];
      for (const [request, message] of bad) {
        expect(() => control.ioctl(request as never), JSON.stringify(request)).to.throw(message);
        let thrown: unknown;
        try {
          void control.ioctl(request as never);
        } catch (e) {
          thrown = e;
        }
        expect(thrown instanceof TypeError || thrown instanceof RangeError, String(thrown)).to.equal(true);
      }
      expect(() => new native.Control(7 as never)).to.throw(TypeError, /for path/);
      expect(() => new native.Control('/dev/null\0x')).to.throw(TypeError, /without NUL/);
      expect(() => control.ioctl({ cmd: 9, flags: 0, targets: Object.assign([], { length: 2 ** 32 - 1 }) })).to.throw(RangeError, /more rows/);
      expect(() => control.ioctl({ cmd: Command.DEV_WAIT, flags: 0, name: 'x' })).to.throw(RangeError, /waitEvent/);
      // The compact synchronous form: a header too short, or of another type, is refused
      // before the ioctl (which on this file would fail with ENOTTY).
      for (const header of [new Float64Array(10), new Uint32Array(11), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]]) {
        expect(() => control.ioctlSync({ cmd: Command.VERSION, flags: 0 }, header as never)).to.throw(TypeError, /Float64Array of 11 numbers for header/);
      }
      expect(() => control.ioctlSync({ cmd: Command.VERSION, flags: 0 }, new Float64Array(11))).to.throw(/ENOTTY|ioctl/);
      // The positional forms the clients use check every argument the way the object form
      // checks its fields, before the ioctl.
      const h = new Float64Array(11);
      const positional: [unknown[], RegExp, typeof TypeError][] = [
        [[-1, 0, 0, 0, '', '', undefined], /non-negative integer up to 17 for cmd but received -1/, RangeError],
        [['2', 0, 0, 0, '', '', undefined], /non-negative integer for cmd/, TypeError],
        [[Command.DEV_STATUS, 2 ** 32, 0, 0, 'x', '', undefined], /for flags/, RangeError],
        [[Command.DEV_STATUS, 0, 2 ** 53, 0, '', '', undefined], /for dev/, RangeError],
        [[Command.DEV_STATUS, 0, 0, 0.5, '', '', undefined], /for eventNr/, RangeError],
        [[Command.DEV_STATUS, 0, 0, 0, 7, '', undefined], /a string for name/, TypeError],
        [[Command.DEV_STATUS, 0, 0, 0, '', undefined, undefined], /a string for uuid/, TypeError],
        [[Command.DEV_STATUS, 0, 0, 0, 'x', '', 'payload'], /an object for payload/, TypeError],
        [[Command.DEV_STATUS, 0, 0, 1, 'x', '', undefined], /takes no event_nr/, RangeError],
        [[Command.DEV_STATUS, 0, 0, 0, 'x'.repeat(128), '', undefined], /name longer than 127 bytes/, RangeError],
        // Past the one-call read (251 bytes) the whole string is read: still too long, not cut.
        [[Command.DEV_STATUS, 0, 0, 0, 'x'.repeat(300), '', undefined], /name longer than 127 bytes/, RangeError],
        [[Command.DEV_STATUS, 0, 0, 0, 'é'.repeat(126), '', undefined], /name longer than 127 bytes/, RangeError],
        [[Command.DEV_STATUS, 0, 0, 0, 'a\0b', '', undefined], /name contains a NUL byte/, RangeError],
        [[Command.DEV_STATUS, 0, 0, 0, '', 'u'.repeat(129), undefined], /uuid longer than 128 bytes/, RangeError],
        [[Command.TARGET_MSG, 0, 0, 0, 'x', '', { cmd: 0, flags: 0, message: 5 }], /a string for request.message/, TypeError],
        // A message past the one-call read (251 bytes) is read whole: its NUL byte is found.
        [[Command.TARGET_MSG, 0, 0, 0, 'x', '', { message: `${'m'.repeat(280)}\0x` }], /message contains a NUL byte/, RangeError],
        [[Command.TARGET_MSG, 0, 0, 0, 'x', '', { message: 'm', sector: '0' }], /a non-negative integer for request.sector/, TypeError],
        [[Command.TARGET_MSG, 0, 0, 0, 'x', '', { message: 'm', sector: -1 }], /up to 9007199254740991 for request.sector but received -1/, RangeError],
        [[Command.TARGET_MSG, 0, 0, 0, 'x', '', { message: 'm', sector: 0.5 }], /for request.sector but received 0.5/, RangeError],
        [[Command.TARGET_MSG, 0, 0, 0, 'x', '', { message: 'm', repeatable: 1 }], /a boolean for request.repeatable/, TypeError],
        [[Command.DEV_RENAME, 0, 0, 0, 'x', '', { data: 5 }], /a string for request.data/, TypeError],
        [[Command.DEV_WAIT, 0, 0, 0, 'x', '', undefined], /waitEvent\(\) instead of call\(\)/, RangeError],
      ];
      for (const [args, message, type] of positional) {
        const call = control.call.bind(control) as (...a: unknown[]) => unknown;
        const callSync = control.callSync.bind(control) as (...a: unknown[]) => unknown;
        expect(() => call(...args), JSON.stringify(args)).to.throw(type, message);
        expect(() => callSync(...args, h), JSON.stringify(args)).to.throw(type, message instanceof RegExp && message.source.includes('call') ? /waitEvent\(\) instead of callSync\(\)/ : message);
      }
      expect(() => control.callSync(Command.VERSION, 0, 0, 0, '', '', undefined, new Float64Array(10))).to.throw(TypeError, /Float64Array of 11 numbers for header/);
      expect(() => control.callSync(Command.VERSION, 0, 0, 0, '', '', undefined, h)).to.throw(/ENOTTY|ioctl/);
      // A payload's other fields are not the request's: the arguments are.
      expect(() => control.callSync(Command.VERSION, 0, 0, 0, '', '', { cmd: Command.DEV_WAIT, flags: 0xffff, name: 5 as never, data: 'x' }, h)).to.throw(/ENOTTY|ioctl/);
      // A watch handle's constructor reached from JavaScript makes an inert object.
      const w = control.watch(() => undefined, () => undefined);
      const Ctor = (w as unknown as { constructor: new () => { stop(): void } }).constructor;
      new Ctor().stop();
      w.stop();
      expect(() => control.watch(1 as never, () => undefined)).to.throw(TypeError, /onArmed/);
    });

    it('a target list takes rows a range at a time, checked as a request\'s rows are, and is loaded once', () => {
      const rows = [
        { start: 0, length: 8, type: 'zero', params: '' },
        { start: 8, length: 8, type: 'error', params: '' },
        { start: 16, length: 8, type: 'linear', params: '7:0 0' },
      ];
      const list = new native.TargetList();
      list.append(rows, 0, 2);
      list.append(rows, 2, 3);
      list.append(rows, 3, 3);
      expect(list.count).to.equal(3);
      expect(() => list.append(rows, 2, 1)).to.throw(RangeError, /to is before from/);
      expect(() => list.append(rows, 0, 4)).to.throw(RangeError, /up to 3 for to/);
      expect(() => list.append({} as never, 0, 0)).to.throw(TypeError, /an array for rows/);
      const bad = new native.TargetList();
      expect(() => bad.append([rows[0], { ...rows[1], start: -1 }] as never, 0, 2)).to.throw(RangeError, /request\.targets\[1\]\.start/);
      expect(bad.count, 'a range with a bad row is not appended at all').to.equal(0);
      expect(() => bad.append([{ start: 0, length: 8, type: 'x'.repeat(16), params: '' }], 0, 1)).not.to.throw();
      // The request checks the rows it takes over: the same refusal as for an array.
      expect(() => control.ioctl({ cmd: Command.TABLE_LOAD, flags: 0, targets: bad })).to.throw(RangeError, /target type longer than 15 bytes/);
      // The request takes the rows over (the ioctl then fails on this file); a list loads once.
      let sent: unknown;
      try {
        sent = control.ioctlSync({ cmd: Command.TABLE_LOAD, flags: 0, name: 'x', targets: list }, new Float64Array(11));
      } catch (e) {
        sent = e;
      }
      expect(String(sent)).to.match(/ENOTTY|ioctl/);
      expect(() => control.ioctlSync({ cmd: Command.TABLE_LOAD, flags: 0, name: 'x', targets: list }, new Float64Array(11))).to.throw(TypeError, /target list was loaded already/);
      expect(() => list.append(rows, 0, 1)).to.throw(TypeError, /loaded already/);
      expect(() => control.ioctl({ cmd: Command.TABLE_LOAD, flags: 0, targets: new Uint8Array(3) as never })).to.throw(TypeError, /an array or a target list for request\.targets/);
    });

    it('calls after close reject (or throw) with ERR_DM_CLOSED; close is idempotent', async () => {
      await control.close();
      expect(control.closed).to.equal(true);
      expect(() => control.ioctl({ cmd: Command.VERSION, flags: 0 })).to.throw(Error, /closed/);
      await control.close();
    });

    it('close waits for ioctls in flight', async () => {
      const pending = Array.from({ length: 16 }, () => control.ioctl({ cmd: Command.VERSION, flags: 0 }).then(() => 'ok', (e: unknown) => (e instanceof Error ? e.message : 'x')));
      await control.close();
      const settled = await Promise.race([Promise.all(pending), new Promise((r) => setImmediate(() => r('not settled')))]);
      expect(settled).to.deep.equal(Array.from({ length: 16 }, () => 'DM_VERSION: Inappropriate ioctl for device'));
    });

    it('a burst of 64 ioctls runs on one I/O thread (beside the pool\'s supervisor), not on a thread each', async () => {
      const before = ioThreads();
      for (let round = 0; round < 3; round++) {
        const codes = await Promise.all(Array.from({ length: 64 }, () => control.ioctl({ cmd: Command.VERSION, flags: 0 }).then(() => 'ok', (e: unknown) => (e as { code?: string }).code)));
        expect(codes).to.deep.equal(Array.from({ length: 64 }, () => 'ENOTTY'));
        expect(ioThreads() - before, `I/O threads after burst ${round + 1}`).to.be.at.most(2);
      }
      await control.close();
      // close() has joined them; the kernel drops a joined thread's /proc/self/task entry a
      // moment later (the join returns when the thread clears its tid, before it is reaped).
      for (let i = 0; i < 200 && ioThreads() !== before; i++) await new Promise((r) => setTimeout(r, 10));
      expect(ioThreads(), 'close() ends the pool\'s threads').to.equal(before);
    });

    it('answers come back in the order of the requests, together, at most 16 settled per turn of the event loop', async () => {
      const order: number[] = [];
      let turns = 0;
      let counting = true;
      const tick = (): void => {
        turns++;
        if (counting) setImmediate(tick);
      };
      const pending = Array.from({ length: 64 }, (_, i) => control.ioctl({ cmd: Command.DEV_STATUS, flags: 0, name: `n${i}` }).then(
        () => -1,
        () => {
          order.push(i);
          return turns;
        },
      ));
      setImmediate(tick);
      const seen = await Promise.all(pending);
      counting = false;
      expect(order).to.deep.equal(Array.from({ length: 64 }, (_, i) => i));
      // One worker ran them one after another and handed them back together; they are settled
      // 16 at a time, the event loop let run between groups (fs, timers and other I/O wait for
      // one group's JavaScript, not a whole burst's), so in a few consecutive turns.
      const perTurn = new Map<number, number>();
      for (const turn of seen) perTurn.set(turn, (perTurn.get(turn) ?? 0) + 1);
      expect(Math.max(...perTurn.values())).to.be.at.most(16);
      expect(perTurn.size).to.be.within(4, 8);
    });

    it('a wait on a file that is not the control node fails, and a watch reports its error', async () => {
      const wait = control.waitEvent({ cmd: Command.DEV_WAIT, flags: 0, name: 'x', eventNr: 0 });
      const e: unknown = await wait.promise.catch((x: unknown) => x);
      expect(e).to.include({ code: 'ENOTTY', command: 'DM_DEV_ARM_POLL' });
      wait.cancel(); // after settling: a no-op
      const failure = await new Promise<unknown>((resolve) => {
        const w = control.watch(() => undefined, (err) => {
          w.stop();
          resolve(err);
        });
      });
      expect(failure).to.include({ code: 'ENOTTY', command: 'DM_DEV_ARM_POLL' });
    });
  });

  it('client methods refuse bad arguments before any ioctl (as rejected promises)', async () => {
    // A DeviceMapper over /dev/null would fail VERSION; check the validators through the public API instead.
    const open = DeviceMapper.open({ path: 5 as never });
    await open.then(
      () => expect.fail('should reject'),
      (e: unknown) => expect(e).to.be.instanceOf(TypeError),
    );
    expect(new Table([{ start: 0, length: 8, target: targets.zero() }]).toString()).to.equal('0 8 zero');
    expect(() => new Table([{ start: 0, length: 0, target: targets.zero() }])).to.throw(RangeError, /length/);
    expect(() => new Table([{ start: 8, length: 8, target: targets.zero() }])).to.throw(RangeError, /start/);
    const attach: unknown = await LoopDevice.attach('', {}).catch((x: unknown) => x);
    expect(attach).to.be.instanceOf(TypeError);
    const block: unknown = await LoopDevice.attach('/x', { blockSize: 1000 }).catch((x: unknown) => x);
    expect(block).to.be.instanceOf(RangeError);
  });
});

describe('native udev primitives (SysV semaphores)', () => {
  // A key outside libdevmapper's cookie range, so that nothing else on the host is touched.
  const key = 0x0d4e0000 + (process.pid & 0xffff);

  it('a semaphore is made once per key, counts up and down without blocking, and is removed', () => {
    const b = binding();
    const id = b.semCreate(key, 1);
    try {
      expect(() => b.semCreate(key, 1)).to.throw().with.property('code', 'EEXIST');
      b.semAdd(id, 1);
      expect(b.semValue(id)).to.equal(2);
      b.semAdd(id, -1);
      b.semAdd(id, -1);
      expect(() => b.semAdd(id, -1)).to.throw().with.property('code', 'EAGAIN');
      b.semWaitZeroSync(id, 1000);
      expect(() => b.semAdd(id, 2 as never)).to.throw(RangeError);
    } finally {
      b.semRemove(id);
    }
    expect(() => b.semValue(id)).to.throw().with.property('syscall', 'semctl');
  });

  it('waits for zero are bounded (EAGAIN after the timeout) and end with EIDRM when the semaphore is removed', async () => {
    const b = binding();
    const waitZero = (semid: number, ms: number): Promise<void> =>
      new Promise((resolve, reject) => b.semWaitZero(semid, ms, (error) => (error === null ? resolve() : reject(error))));
    const id = b.semCreate(key, 1);
    try {
      expect(() => b.semWaitZeroSync(id, 50)).to.throw().with.property('code', 'EAGAIN');
      const timedOut = await waitZero(id, 50).then(() => undefined, (e: unknown) => e);
      expect(timedOut).to.have.property('code', 'EAGAIN');
      const zero = waitZero(id, 5000);
      setTimeout(() => b.semAdd(id, -1), 20);
      await zero;
      b.semAdd(id, 1);
      const removed = waitZero(id, 5000).then(() => undefined, (e: unknown) => e);
      setTimeout(() => b.semRemove(id), 20);
      expect(await removed).to.have.property('code', 'EIDRM');
    } finally {
      try {
        b.semRemove(id);
      } catch {
        // removed by the test
      }
    }
  });

  it('mknodBlock refuses bad arguments before the system call', () => {
    const b = binding();
    expect(() => b.mknodBlock('', 1, 1, 0o600)).to.throw(TypeError);
    expect(() => b.mknodBlock('/tmp/x', 4096, 1, 0o600)).to.throw(RangeError);
    expect(() => b.semWaitZero(0, 86_400_001, () => undefined)).to.throw(RangeError);
    expect(() => b.semWaitZero(0, 10, 'x' as never)).to.throw(TypeError, /a function for done/);
  });
});
