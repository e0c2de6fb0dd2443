import { expect } from 'chai';
import { DmError, decodeDev, encodeDev, resolveId } from '../../ts/index';
import { decodeRdev } from '../../ts/dev';
import { CallSite, errnoCode, toDmError } from '../../ts/errors';
import { checkMessage, checkTargetType } from '../../ts/validate';

describe('device ids and numbers', () => {
  it('encodes device numbers the way the kernel does (huge encoding) and back', () => {
    expect(encodeDev({ major: 7, minor: 0 })).to.equal(0x700);
    expect(encodeDev({ major: 253, minor: 1 })).to.equal(0xfd01);
    // minor bits above 8 go to bits 20 and up
    expect(encodeDev({ major: 254, minor: 0x12345 })).to.equal(0x45 | (254 << 8) | (0x123 << 20));
    for (const d of [{ major: 0, minor: 0 }, { major: 4095, minor: 0xfffff }, { major: 259, minor: 65536 }, { major: 7, minor: 255 }, { major: 7, minor: 256 }]) {
      expect(decodeDev(encodeDev(d))).to.deep.equal(d);
    }
    // Every 32-bit value (bit 31 set too) and the 64-bit ones above: the low 32 bits decoded,
    // as the kernel's huge encoding lays them out; negative and fractional values refused.
    for (const encoded of [0, 0xfd01, 0x7fffffff, 2 ** 31 + 0x12345, 2 ** 32 - 1, 2 ** 32 + 0x700, 2 ** 40 + 2 ** 31 + 0x45]) {
      const low = encoded % 2 ** 32;
      expect(decodeDev(encoded), String(encoded)).to.deep.equal({ major: Math.floor(low / 256) % 4096, minor: (low % 256) + (Math.floor(low / 2 ** 20) % 4096) * 256 });
    }
    for (const bad of [-1, 1.5, 2 ** 53, NaN]) expect(() => decodeDev(bad), String(bad)).to.throw(RangeError, /dev/);
    expect(() => encodeDev({ major: 4096, minor: 0 })).to.throw(RangeError, /dev\.major/);
    expect(() => encodeDev({ major: 1, minor: 0x100000 })).to.throw(RangeError, /dev\.minor/);
  });

  it('decodes st_rdev as glibc encodes it', () => {
    expect(decodeRdev(0x700)).to.deep.equal({ major: 7, minor: 0 });
    expect(decodeRdev(0xfd00 + 3)).to.deep.equal({ major: 253, minor: 3 });
    // makedev(259, 0x12345) = (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)
    expect(decodeRdev(0x45 | (259 << 8) | (0x123 * 2 ** 20))).to.deep.equal({ major: 259, minor: 0x12345 });
  });

  it('resolves each DevId form to exactly one request field', () => {
    expect(resolveId('vol')).to.deep.equal({ name: 'vol', label: 'vol' });
    expect(resolveId({ name: 'vol' })).to.deep.equal({ name: 'vol', label: 'vol' });
    expect(resolveId({ uuid: 'LVM-x' })).to.deep.equal({ uuid: 'LVM-x', label: 'uuid LVM-x' });
    expect(resolveId({ dev: { major: 253, minor: 2 } })).to.deep.equal({ dev: 0xfd02, label: '253:2' });
  });

  it('refuses names the kernel forbids or that older kernels would wrongly accept', () => {
    for (const bad of ['', '.', '..', 'control', 'a/b', 'x'.repeat(128), 'a\0b']) {
      expect(() => resolveId(bad), JSON.stringify(bad)).to.throw(RangeError, /^Expected a device name/);
    }
    expect(resolveId('x'.repeat(127)).name).to.have.length(127);
    // 127 bytes, not characters
    expect(() => resolveId('é'.repeat(64))).to.throw(RangeError, /1 to 127 bytes/);
  });

  it('refuses ids that are not exactly one of name, uuid, dev', () => {
    expect(() => resolveId({ name: 'a', uuid: 'b' })).to.throw(TypeError, /^Expected a device name, \{ name \}, \{ uuid \} or \{ dev: \{ major, minor \} \} for id but received object$/);
    expect(() => resolveId({})).to.throw(TypeError);
    expect(() => resolveId(7)).to.throw(TypeError, /received number 7/);
    expect(() => resolveId(null)).to.throw(TypeError, /received null/);
    expect(() => resolveId({ uuid: 'u'.repeat(129) })).to.throw(RangeError, /1 to 128 bytes/);
    expect(() => resolveId({ dev: { major: 1 } })).to.throw(TypeError, /id\.dev\.minor/);
  });
});

describe('errors', () => {
  it('maps errno values to their names', () => {
    expect(errnoCode(16)).to.equal('EBUSY');
    expect(errnoCode(6)).to.equal('ENXIO');
    expect(errnoCode(22)).to.equal('EINVAL');
  });

  it('turns a native failure into a DmError with the device, errno and the caller\'s stack', () => {
    function callerLine(): CallSite {
      return new CallSite(callerLine);
    }
    const site = callerLine();
    const native = Object.assign(new Error('DM_DEV_REMOVE: Device or resource busy'), { errno: 16, code: 'EBUSY', syscall: 'ioctl', command: 'DM_DEV_REMOVE' });
    const e = toDmError(native, site, 'vol');
    expect(e).to.be.instanceOf(DmError);
    expect(e).to.include({ code: 'EBUSY', errno: 16, syscall: 'ioctl', command: 'DM_DEV_REMOVE', device: 'vol', message: 'DM_DEV_REMOVE vol: Device or resource busy' });
    expect(e.stack?.split('\n')[0]).to.equal('DmError: DM_DEV_REMOVE vol: Device or resource busy');
    expect(e.stack).to.contain('validate.test');
    expect(e.cause).to.equal(native);
  });

  it("a call records its caller's line and two frames above it, then the callers that awaited it at its failure; Error.stackTraceLimit is left as it was", async () => {
    function made(): CallSite {
      return new CallSite(made);
    }
    const nest = (depth: number): CallSite => (depth === 0 ? made() : nest(depth - 1));
    const limit = Error.stackTraceLimit;
    const site = nest(6);
    expect(Error.stackTraceLimit).to.equal(limit);
    // A failure that surfaces after an await, in an async function its caller awaited.
    async function failing(): Promise<Error> {
      await Promise.resolve();
      throw new Error('failed');
    }
    async function awaitingCaller(): Promise<Error> {
      return await failing().catch((e: unknown) => e as Error);
    }
    const e = site.attach(await awaitingCaller());
    const lines = e.stack?.split('\n') ?? [];
    expect(lines[0]).to.equal('Error: failed');
    const recorded = lines.slice(1).filter((l) => !l.startsWith('    at async '));
    expect(recorded).to.have.length(3);
    expect(recorded[0]).to.match(/at nest .*validate\.test/);
    expect(lines.filter((l) => l.startsWith('    at async '))).to.satisfy((async: string[]) => async.some((l) => l.includes('awaitingCaller')));
    // A process that records no frames gets none here either.
    Error.stackTraceLimit = 0;
    try {
      const none = made().attach(new Error('x'));
      expect(none.stack).to.equal('Error: x');
    } finally {
      Error.stackTraceLimit = limit;
    }
  });

  it("'call': a caller that awaited the call on the line that made it is named once, not again as an awaiting caller", async () => {
    function made(): CallSite {
      return new CallSite(made);
    }
    async function failing(site: CallSite): Promise<never> {
      await Promise.resolve();
      throw site.attach(new Error('late'));
    }
    async function sameLine(): Promise<Error> {
      try {
        return await failing(made());
      } catch (e) {
        return e as Error;
      }
    }
    const lines = (await sameLine()).stack?.split('\n') ?? [];
    expect(lines[0]).to.equal('Error: late');
    expect(lines[1]).to.match(/at sameLine .*validate\.test/);
    expect(lines.filter((l) => l.includes('sameLine'))).to.have.length(1);
  });

  it("'async' records nothing as the call is made: a failure on the caller's stack gets its frames then, a later one only the callers that awaited it, and one nobody awaited keeps its stack", async () => {
    // The public method is the marker: while it runs, its caller's frames are there to take.
    function publicMethod(fail: boolean): CallSite | Error {
      const site = new CallSite(publicMethod, 'async');
      return fail ? site.attach(new TypeError('Expected x')) : site;
    }
    function checkingCaller(): Error {
      return publicMethod(true) as Error;
    }
    const early = checkingCaller().stack?.split('\n') ?? [];
    expect(early[0]).to.equal('TypeError: Expected x');
    expect(early[1]).to.match(/at checkingCaller .*validate\.test/);
    const site = publicMethod(false) as CallSite;
    // A failure made in an async continuation (the library's, below the caller's await).
    async function libraryContinuation(): Promise<never> {
      await Promise.resolve();
      throw site.attach(new Error('late'));
    }
    async function awaitingCaller(): Promise<Error> {
      try {
        return await libraryContinuation();
      } catch (e) {
        return e as Error;
      }
    }
    const late = (await awaitingCaller()).stack?.split('\n') ?? [];
    expect(late[0]).to.equal('Error: late');
    expect(late.length).to.be.greaterThan(1);
    expect(late.slice(1).filter((l) => !l.startsWith('    at async '))).to.deep.equal([]);
    expect(late.some((l) => /at async awaitingCaller .*validate\.test/.test(l))).to.equal(true);
    // A public method that is an async function is on the stack again once resumed: its
    // failures then take the frames of the callers that awaited it, and nothing else.
    async function publicAsync(): Promise<never> {
      const own = new CallSite(publicAsync, 'async');
      await Promise.resolve();
      throw own.attach(new Error('resumed'));
    }
    async function awaitingAsync(): Promise<Error> {
      try {
        return await publicAsync();
      } catch (e) {
        return e as Error;
      }
    }
    const resumed = (await awaitingAsync()).stack?.split('\n') ?? [];
    expect(resumed.slice(1).filter((l) => !l.startsWith('    at async '))).to.deep.equal([]);
    expect(resumed.some((l) => /at async awaitingAsync .*validate\.test/.test(l))).to.equal(true);
    // Nobody awaited: V8's own stack is all there is, kept as it was.
    const lone = new Error('lone');
    const before = lone.stack;
    await Promise.resolve();
    expect((publicMethod(false) as CallSite).attach(lone).stack).to.equal(before);
  });

  it('keeps extra detail from the native message', () => {
    const native = Object.assign(new Error('DM_TABLE_STATUS: Protocol error (malformed answer from the kernel: x)'), { errno: 71, syscall: 'ioctl', command: 'DM_TABLE_STATUS' });
    expect(toDmError(native, new CallSite(toDmError), 'v').message).to.equal('DM_TABLE_STATUS v: Protocol error (malformed answer from the kernel: x)');
  });

  it('passes non-system errors through with the caller\'s stack', () => {
    const t = new TypeError('Expected x');
    expect(toDmError(t, new CallSite(toDmError))).to.equal(t);
  });
});

describe('strings that are not well-formed Unicode', () => {
  it('are refused as names, uuids, target types and messages (never turned into U+FFFD)', () => {
    expect(() => resolveId('\uD800')).to.throw(RangeError, /well-formed Unicode for id/);
    expect(() => resolveId('a\uDC00b')).to.throw(RangeError, /well-formed Unicode/);
    expect(() => resolveId({ uuid: 'u\uD83D' })).to.throw(RangeError, /well-formed Unicode for id\.uuid/);
    expect(resolveId('\uD83D\uDE00').name).to.equal('\uD83D\uDE00');
    expect(() => checkTargetType('x\uD800')).to.throw(RangeError, /well-formed/);
    expect(() => checkMessage('fail_path \uDFFF')).to.throw(RangeError, /well-formed/);
  });
});
