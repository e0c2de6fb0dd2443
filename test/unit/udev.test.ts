// udev cookies as libdevmapper lays them out, checked against dmsetup's own decoding, and the
// udev steps of the programs driven with scripted answers.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import type { NativeResult } from '../../binding';
import { Command, DmError, Flag } from '../../ts/index';
import { createProgram, ueventCall, type Answer, type Step } from '../../ts/steps';
import { cookieEventNr, cookieKey, DM_COOKIE_MAGIC, formatCookie, parseEventNr, UdevFlag, udevFlags, type Cookie, type UdevPlan } from '../../ts/udev';

const FLAG_NAMES: Record<number, string> = {
  [UdevFlag.DISABLE_DM_RULES]: 'DM_UDEV_DISABLE_DM_RULES_FLAG',
  [UdevFlag.DISABLE_SUBSYSTEM_RULES]: 'DM_UDEV_DISABLE_SUBSYSTEM_RULES_FLAG',
  [UdevFlag.DISABLE_DISK_RULES]: 'DM_UDEV_DISABLE_DISK_RULES_FLAG',
  [UdevFlag.DISABLE_OTHER_RULES]: 'DM_UDEV_DISABLE_OTHER_RULES_FLAG',
  [UdevFlag.LOW_PRIORITY]: 'DM_UDEV_LOW_PRIORITY_FLAG',
  [UdevFlag.DISABLE_LIBRARY_FALLBACK]: 'DM_UDEV_DISABLE_LIBRARY_FALLBACK_FLAG',
  [UdevFlag.PRIMARY_SOURCE]: 'DM_UDEV_PRIMARY_SOURCE_FLAG',
};

/** What `dmsetup udevflags` (libdevmapper's decoding, as 55-dm.rules imports it) says of a cookie. */
function dmsetupFlags(eventNr: number): string[] {
  return execFileSync('dmsetup', ['udevflags', String(eventNr)], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.replace(/='1'$/, ''))
    .sort();
}

function ours(flags: number): string[] {
  const names: string[] = [];
  for (let bit = 0; bit < 16; bit++) {
    const f = 1 << bit;
    if ((flags & f) === 0) continue;
    names.push(FLAG_NAMES[f] ?? (bit < 8 ? `DM_UDEV_FLAG${bit}` : `DM_SUBSYSTEM_UDEV_FLAG${bit - 8}`));
  }
  return names.sort();
}

describe('udev cookies', () => {
  it('event_nr holds the udev flags in its upper 16 bits and the semaphore base in the lower, as libdevmapper packs it', () => {
    expect(cookieEventNr(0x1234, UdevFlag.PRIMARY_SOURCE)).to.equal(0x00401234);
    expect(cookieEventNr(0xffff, 0xffff)).to.equal(0xffffffff);
    expect(cookieKey(0x1234)).to.equal(0x0d4d1234);
    expect(DM_COOKIE_MAGIC).to.equal(0x0d4d);
    expect(parseEventNr(0x00601234)).to.deep.equal({ flags: 0x60, base: 0x1234 });
    expect(formatCookie({ key: cookieKey(0x00ab) })).to.equal('0x0d4d00ab');
  });

  it('dmsetup udevflags reads the same flags from our event_nr, for each flag and for what each mode sends', () => {
    const cases = [0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x40, 0x80, 0x100, 0x8000, udevFlags('sync'), udevFlags('fallback'), udevFlags('off'), 0xffff];
    for (const flags of cases) {
      const nr = cookieEventNr(0x2a5c, flags);
      expect(dmsetupFlags(nr), `flags 0x${flags.toString(16)}`).to.deep.equal(ours(flags));
    }
    expect(dmsetupFlags(cookieEventNr(0x2a5c, udevFlags('sync')))).to.deep.equal(['DM_UDEV_DISABLE_LIBRARY_FALLBACK_FLAG', 'DM_UDEV_PRIMARY_SOURCE_FLAG']);
  });
});

function answer(fields: Partial<NativeResult>): NativeResult {
  return { version: [4, 47, 0], flags: 0, name: 'vol', uuid: '', dev: 0xfd00, openCount: 0, eventNr: 0, targetCount: 0, ioctls: 1, bufferSize: 16384, ...fields };
}

const cookie: Cookie = { base: 0x1234, key: 0x0d4d1234, semid: 7, eventNr: cookieEventNr(0x1234, udevFlags('sync')) };
const sync: UdevPlan = { mode: 'sync', timeout: 1000, signal: undefined };

/** Drives a program: ioctls answered by `kernel`, cookies with `cookie`, other steps with {}. */
function drive(program: Generator<Step, unknown, Answer>, kernel: (step: Step) => NativeResult | Error): { steps: Step[]; error?: unknown } {
  const steps: Step[] = [];
  let input: Answer = {};
  let thrown: unknown;
  try {
    for (;;) {
      const next = thrown === undefined ? program.next(input) : program.throw(thrown);
      thrown = undefined;
      if (next.done === true) return { steps };
      const step = next.value;
      steps.push(step);
      input = {};
      if (step.kind === 'cookie') input = { cookie };
      else if (step.kind === 'ioctl') {
        const r = kernel(step);
        if (r instanceof Error) thrown = r;
        else input = { result: r };
      }
    }
  } catch (error) {
    return { steps, error };
  }
}

describe('udev steps of the programs', () => {
  it('sync mode sends the cookie in event_nr and waits for udev when the kernel made the uevent', () => {
    const r = drive(ueventCall({ cmd: Command.DEV_SUSPEND, flags: 0, name: 'vol' }, 'vol', sync), () => answer({ flags: Flag.UEVENT_GENERATED }));
    expect(r.steps.map((s) => s.kind)).to.deep.equal(['cookie', 'ioctl', 'cookieWait']);
    const io = r.steps[1];
    expect(io?.kind === 'ioctl' ? io.request.eventNr : undefined).to.equal(0x00601234);
    const wait = r.steps[2];
    expect(wait?.kind === 'cookieWait' ? wait.wait.generated : undefined).to.equal(true);
  });

  it('a resume that made no uevent (DM_UEVENT_GENERATED_FLAG clear) completes the cookie for udev', () => {
    const r = drive(ueventCall({ cmd: Command.DEV_SUSPEND, flags: 0, name: 'vol' }, 'vol', sync), () => answer({ flags: 0 }));
    const wait = r.steps[2];
    expect(wait?.kind === 'cookieWait' ? wait.wait.generated : undefined).to.equal(false);
  });

  it('a failed ioctl still releases its cookie, and its own error is the one thrown', () => {
    const enxio = new DmError({ errno: 6, syscall: 'ioctl', command: 'DM_DEV_REMOVE', device: 'vol' });
    const r = drive(ueventCall({ cmd: Command.DEV_REMOVE, flags: 0, name: 'vol' }, 'vol', sync), () => enxio);
    expect(r.error).to.equal(enxio);
    expect(r.steps.map((s) => s.kind)).to.deep.equal(['cookie', 'ioctl', 'cookieWait']);
  });

  it('fallback mode sends the flags that keep udev off /dev/mapper and makes the node after the resume', () => {
    const program = createProgram({ name: 'vol', uuid: undefined, rows: [{ start: 0, length: 8, type: 'zero', params: '' }], loadFlags: 0, activate: true, udev: { mode: 'fallback', timeout: 1000, signal: undefined } });
    const r = drive(program, () => answer({}));
    const kinds = r.steps.map((s) => s.kind);
    expect(kinds).to.deep.equal(['ioctl', 'lock', 'ioctl', 'ioctl', 'node']);
    const resume = r.steps[3];
    expect(resume?.kind === 'ioctl' ? resume.request.eventNr : undefined).to.equal(cookieEventNr(0, udevFlags('fallback')));
    const node = r.steps[4];
    expect(node?.kind === 'node' ? node.op : undefined).to.deep.equal({ kind: 'ensure', name: 'vol', dev: { major: 253, minor: 0 } });
  });
});
