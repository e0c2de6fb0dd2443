import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NativeRequest, NativeResult } from '../../binding';
import { DeviceReader, RowReader } from '../../ts/answer';
import { Command, DeviceMapper, DmError, Flag, LoopDevice, type Table } from '../../ts/index';

/** Every device a test makes is named with this prefix, so cleanup never touches others'. */
export const PREFIX = 'dmt-';

let counter = 0;
/** A fresh device name owned by the tests. */
export function devName(what: string): string {
  counter++;
  return `${PREFIX}${what}-${process.pid}-${counter}`;
}

/** A directory for backing files: $DEVMAPPER_SCRATCH (a tmpfs in the sandbox). */
export function scratchDir(): string {
  const base = process.env.DEVMAPPER_SCRATCH;
  if (base === undefined || base === '') throw new Error('DEVMAPPER_SCRATCH is not set: run the kernel tests with npm run test:kernel');
  return mkdtempSync(join(base, 'kt-'));
}

/** Reads `bytes` at byte `offset` of a block device or file, through a fresh open (a block device's page cache goes at its last close). */
export function readAt(path: string, bytes: number, offset: number): Buffer {
  const buf = Buffer.alloc(bytes);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buf, 0, bytes, offset);
  } finally {
    closeSync(fd);
  }
  return buf;
}

/** The DmError a promise rejects with (fails when it resolves or rejects with something else). */
export async function rejection(p: Promise<unknown>): Promise<DmError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof DmError) return e;
    throw e;
  }
  throw new Error('resolved, expected a DmError');
}

/**
 * This process's threads, but the addon's I/O threads (named `devmapper-io`): the pool of a
 * client that is still open keeps a thread or more, idle ones ending after 2 s.
 */
export function threadsButIo(): number {
  let n = 0;
  for (const task of readdirSync('/proc/self/task')) {
    try {
      if (readFileSync(`/proc/self/task/${task}/comm`, 'utf8').trim() !== 'devmapper-io') n++;
    } catch {
      // ended meanwhile
    }
  }
  return n;
}

/**
 * The device's table as the kernel reads it back equals `table`, its first row's target is
 * the one built (typed, field for field), and `dmsetup table` prints the same text.
 */
export async function expectReadBack(dm: DeviceMapper, name: string, table: Table): Promise<void> {
  const back = await dm.table(name);
  expect(back?.equals(table)).to.equal(true);
  expect(back?.rows[0]?.target).to.deep.equal(table.rows[0]?.target);
  expect(dmsetup('table', name).trimEnd()).to.equal(table.toString());
}

/** Runs dmsetup and returns its stdout. */
export function dmsetup(...args: string[]): string {
  return execFileSync('dmsetup', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Owns what a test makes: loop devices over sparse files, and devices named with PREFIX.
 * `cleanup()` removes them all, even after a failure.
 */
export class Fixture {
  readonly loops: LoopDevice[] = [];
  private readonly dir = scratchDir();
  private files = 0;

  constructor(readonly dm: DeviceMapper) {}

  /** A loop device over a new sparse file of `sectors` sectors. */
  async loop(sectors: number): Promise<LoopDevice> {
    const file = join(this.dir, `disk${this.files++}.img`);
    writeFileSync(file, '');
    truncateSync(file, sectors * 512);
    const loop = await LoopDevice.attach(file);
    this.loops.push(loop);
    return loop;
  }

  async cleanup(): Promise<void> {
    const ours = (await this.dm.listDevices()).filter((d) => d.name.startsWith(PREFIX));
    // Remove top-down: a device that others depend on is busy until they are gone.
    for (let pass = 0; pass < 5 && ours.length > 0; pass++) {
      for (const d of [...ours]) {
        try {
          await this.dm.remove(d.name, { retries: 0 });
          ours.splice(ours.indexOf(d), 1);
        } catch {
          // still in use by another of ours: try again next pass
        }
      }
    }
    for (const loop of this.loops.splice(0)) {
      try {
        await loop.detach();
      } catch {
        // already detached by the test
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
    if (ours.length > 0) throw new Error(`could not remove ${ours.map((d) => d.name).join(', ')}`);
  }
}

/** Polls `check` until it is true, at most `ms` milliseconds. */
export async function eventually(check: () => boolean | Promise<boolean>, ms = 5000): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A DeviceMapper and a Fixture made before each test and cleaned up after it. */
/** Which client the TestContexts made from now on give their tests (see sync-targets.test.ts). */
let clientKind: 'async' | 'sync' = 'async';

/** Runs `register` (describe calls) with TestContexts whose `dm` is the synchronous client. */
export function withSyncClient(register: () => void): void {
  const before = clientKind;
  clientKind = 'sync';
  try {
    register();
  } finally {
    clientKind = before;
  }
}

/**
 * A DeviceMapper whose commands run on a DeviceMapperSync (each answer or error as a settled
 * promise), so that a test written for the asynchronous client checks the synchronous one as
 * it stands. What only the asynchronous client has (waits, watches) stays with `dm`; close
 * closes both.
 */
function syncBehind(dm: DeviceMapper): DeviceMapper {
  const sdm = DeviceMapper.openSync();
  return new Proxy(dm, {
    get(target, property) {
      if (property === 'close') {
        return async (): Promise<void> => {
          sdm.close();
          await target.close();
        };
      }
      const own: unknown = typeof property === 'string' && property !== 'constructor' ? Reflect.get(sdm, property) : undefined;
      if (typeof own === 'function') {
        return (...args: unknown[]): Promise<unknown> => {
          try {
            return Promise.resolve(Reflect.apply(own, sdm, args));
          } catch (e) {
            // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the synchronous call's failure, passed on as it came
            return Promise.reject(e);
          }
        };
      }
      const value: unknown = Reflect.get(target, property);
      return typeof value === 'function' ? (...args: unknown[]): unknown => Reflect.apply(value, target, args) : value;
    },
  });
}

export class TestContext {
  private current: { dm: DeviceMapper; fx: Fixture } | undefined;

  /** The test's DeviceMapper. */
  get dm(): DeviceMapper {
    if (this.current === undefined) throw new Error('no DeviceMapper outside a test');
    return this.current.dm;
  }

  /** The test's Fixture (over `dm`). */
  get fx(): Fixture {
    if (this.current === undefined) throw new Error('no Fixture outside a test');
    return this.current.fx;
  }

  /** Replaces the DeviceMapper (after a test closed its own): cleanup goes through `dm`. */
  use(dm: DeviceMapper): void {
    this.current = { dm, fx: new Fixture(dm) };
  }

  /** Registers the mocha hooks; call once inside a describe. */
  static perTest(): TestContext {
    const t = new TestContext();
    const kind = clientKind;
    beforeEach(async () => {
      const dm = await DeviceMapper.open();
      t.use(kind === 'sync' ? syncBehind(dm) : dm);
    });
    afterEach(async () => {
      const c = t.current;
      t.current = undefined;
      if (c === undefined) return;
      try {
        await c.fx.cleanup();
      } finally {
        if (!c.dm.closed) await c.dm.close();
      }
    });
    return t;
  }
}

/** A request for each payload an answer can carry, about device `name` (two name no device). */
export function requestsOfEveryPayload(name: string): NativeRequest[] {
  return [
    { cmd: Command.DEV_STATUS, flags: 0, name },
    { cmd: Command.TABLE_STATUS, flags: Flag.STATUS_TABLE, name },
    { cmd: Command.TABLE_STATUS, flags: 0, name },
    { cmd: Command.TABLE_DEPS, flags: 0, name },
    { cmd: Command.LIST_DEVICES, flags: Flag.UUID },
    { cmd: Command.LIST_VERSIONS, flags: 0 },
    { cmd: Command.TARGET_MSG, flags: 0, name, message: '@stats_list', sector: 0 },
  ];
}

/** An answer with its rows and devices read out at once (an answer may lend them only until the next call). */
export function readAnswer(r: NativeResult, name: string): Record<string, unknown> {
  const devices = new DeviceReader(r);
  return {
    ...r,
    targets: r.targets === undefined ? undefined : new RowReader(r, name).all(),
    devices: r.devices === undefined ? undefined : Array.from({ length: devices.count }, (_, i) => [devices.name(i), devices.dev(i), devices.uuid(i), devices.eventNr(i)]),
  };
}

/**
 * Gives a test (or suite) at least `ms`, never less than the run's own timeout: a run that
 * gives every test longer (DEVMAPPER_TEST_TIMEOUT, 600 s under Valgrind) keeps its time.
 */
export function timeoutAtLeast(ctx: { timeout(): number; timeout(ms: number): unknown }, ms: number): void {
  ctx.timeout(Math.max(ctx.timeout(), ms));
}
