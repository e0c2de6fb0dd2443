// Real boots of the User-Mode Linux sandbox (no mocks): each boot costs about 2.5 s, so the
// checks are grouped into few boots.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_MODULES, SCRATCH_DIR, SandboxError, allowedCpus, runInSandbox } from '../../ts/sandbox/index';
import type { SandboxOptions } from '../../ts/sandbox/index';

/** Host pids of the linux.uml processes of instance `id`. */
function umlProcesses(id: string): number[] {
  const pids: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      const argv = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
      if (argv.includes(`umid=${id}`)) pids.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

async function rejection(p: Promise<unknown>): Promise<SandboxError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof SandboxError) return e;
    throw e;
  }
  throw new Error('expected a SandboxError, the promise resolved');
}

describe('devmapper/sandbox: runInSandbox', function () {
  this.timeout(60000);

  it('runs a command as root with every DM target, streams its output and returns its exit status', async () => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'sandbox-cwd-'));
    const home = process.env['HOME'];
    delete process.env['HOME']; // CI runs without HOME: the sandbox must not need it
    const chunks: Buffer[] = [];
    try {
      const script = [
        'echo "uid=$(id -u) cwd=$(pwd) greeting=$GREETING home=${HOME-unset}"',
        'echo "to stderr" >&2',
        'grep " $DEVMAPPER_SCRATCH " /proc/mounts',
        'dd if=/dev/zero of="$DEVMAPPER_SCRATCH/disk.img" bs=1M count=8 2>/dev/null && echo scratch-writable',
        'test -c /dev/mapper/control && echo has-control',
        'dmsetup targets',
        'exit 7',
      ].join('\n');
      const r = await runInSandbox(['sh', '-c', script], {
        cwd,
        env: { ...process.env, GREETING: "it's a 'quoted' value\nwith a newline" },
        onOutput: (c) => chunks.push(c),
      });
      expect(r.exitCode).to.equal(7);
      expect(r.signal).to.equal(undefined);
      expect(r.kernelRelease).to.match(/^\d+\.\d+\.\d+/);
      expect(r.bootMs).to.be.greaterThan(0).and.at.most(r.totalMs);
      expect(Buffer.concat(chunks).toString('utf8')).to.equal(r.output);
      const lines = r.output.split('\n');
      expect(lines[0]).to.equal(`uid=0 cwd=${cwd} greeting=it's a 'quoted' value`);
      expect(lines[1]).to.equal('with a newline home=unset');
      expect(lines[2]).to.equal('to stderr');
      expect(lines[3]).to.match(new RegExp(`^tmpfs ${SCRATCH_DIR} tmpfs `));
      expect(lines).to.include.members(['scratch-writable', 'has-control']);
      const targets = lines.map((l) => l.split(/\s+/)[0]);
      expect(targets).to.include.members(['linear', 'thin-pool', 'crypt', 'raid', 'era', 'cache', 'multipath', 'integrity']);
      // The kernel console (module banners, "Run ... as init process") stays out of it.
      expect(r.output).not.to.match(/device-mapper:|as init process|loop: module loaded/);
    } finally {
      if (home !== undefined) process.env['HOME'] = home;
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  });

  it('threads of one guest process keep their own vector registers across switches (linux.uml preloads the FPU-state wrapper)', async () => {
    // UML 6.1 alone panics at its first guest process on hosts with AMX; the wrapper
    // (native/uml_xstate.c) must hand back each thread's whole state, not another's.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandbox-fpu-'));
    try {
      const exe = path.join(dir, 'fpu-threads');
      const cc = spawnSync('cc', ['-O2', '-pthread', '-o', exe, path.join(__dirname, '..', 'fixtures', 'native', 'fpu-threads.c')], { encoding: 'utf8' });
      expect(cc.status, cc.stderr).to.equal(0);
      const r = await runInSandbox([exe]);
      expect(r.output.trim()).to.match(/^(zmm16|ymm8|xmm8) kept$/);
      expect(r.exitCode).to.equal(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs instances at once; reports a command ended by a signal, and one that cannot start (ESPAWN)', async () => {
    const started = Date.now();
    const [killed, plain, notFound] = await Promise.all([
      runInSandbox(['sh', '-c', 'kill -KILL $$'], { onOutput: () => undefined }),
      runInSandbox(['sh', '-c', 'echo "sandbox=$DEVMAPPER_SANDBOX"'], { id: `sandbox-test-${process.pid}`, onOutput: () => undefined }),
      rejection(runInSandbox(['devmapper-no-such-program'], { onOutput: () => undefined })),
    ]);
    const elapsed = Date.now() - started;
    expect(killed).to.include({ exitCode: 137, signal: 'SIGKILL' });
    expect(plain).to.include({ exitCode: 0, output: 'sandbox=1\n' });
    expect(elapsed).to.be.lessThan(killed.totalMs + plain.totalMs); // they overlapped
    expect(notFound.code).to.equal('ESPAWN');
    expect(notFound.message).to.contain('devmapper-no-such-program');
  });

  it('kills the instance and all its processes on timeout (ETIMEDOUT) and on abort (EABORT)', async () => {
    const timeoutId = `sandbox-timeout-${process.pid}`;
    const abortId = `sandbox-abort-${process.pid}`;
    const controller = new AbortController();
    const [timedOut, aborted] = await Promise.all([
      rejection(runInSandbox(['sh', '-c', 'echo started; sleep 600'], { id: timeoutId, timeout: 5000, onOutput: () => undefined })),
      rejection(
        runInSandbox(['sh', '-c', 'echo started; sleep 600'], {
          id: abortId,
          signal: controller.signal,
          onOutput: () => controller.abort(), // abort once the command runs
        }),
      ),
    ]);
    expect(timedOut.code).to.equal('ETIMEDOUT');
    expect(timedOut.output).to.equal('started\n');
    expect(aborted.code).to.equal('EABORT');
    expect(aborted.output).to.equal('started\n');
    expect(umlProcesses(timeoutId)).to.deep.equal([]);
    expect(umlProcesses(abortId)).to.deep.equal([]);
  });

  it('fails with ENOLINUX naming the Debian package when linux.uml is missing', async () => {
    const e = await rejection(runInSandbox(['true'], { linux: '/nonexistent/linux.uml' }));
    expect(e.code).to.equal('ENOLINUX');
    expect(e.message).to.contain('user-mode-linux').and.contain('/nonexistent/linux.uml');
  });

  it('fails with EBOOT and the console tail when the kernel never reaches the command', async () => {
    const e = await rejection(runInSandbox(['true'], { linux: '/bin/true' }));
    expect(e.code).to.equal('EBOOT');
    expect(e.message).to.contain('did not reach the command').and.contain('/bin/true exited with status 0');
    const tiny = await rejection(runInSandbox(['true'], { memory: 16 })); // UML refuses to start
    expect(tiny.code).to.equal('EBOOT');
    expect(tiny.consoleTail).to.match(/memory/i);
    expect(tiny.message).to.contain(tiny.consoleTail);
  });

  it('refuses malformed arguments before booting', async () => {
    const bad: Array<[readonly string[], SandboxOptions]> = [
      [[], {}],
      [['true'], { memory: 0 }],
      [['true'], { timeout: -1 }],
      [['true'], { timeout: 2 ** 31 }],
      [['true'], { id: 'a b' }],
      [['true'], { modules: ['../x'] }],
      [['true'], { env: { 'A=B': 'x' } }],
      [['true'], { memroy: 512 } as SandboxOptions],
      [['true'], { cpu: -1 }],
      [['true'], { cpu: 0.5 }],
      [['true'], { cpu: '0' } as unknown as SandboxOptions],
    ];
    for (const [command, options] of bad) {
      let error: unknown;
      try {
        await runInSandbox(command, options);
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify([command, options])).to.be.instanceOf(TypeError);
    }
    expect(DEFAULT_MODULES).to.include.members(['dm-mod', 'dm-thin-pool', 'dm-crypt', 'dm-raid', 'loop']);
    // A CPU this process may not run on is refused before the boot, naming those it may.
    const cpus = allowedCpus() ?? [];
    expect(cpus.length).to.be.above(0);
    let outside: unknown;
    try {
      await runInSandbox(['true'], { cpu: Math.max(...cpus) + 1 });
    } catch (e) {
      outside = e;
    }
    expect(outside).to.be.instanceOf(RangeError);
    expect((outside as Error).message).to.contain(`may run only on CPUs ${cpus.join(', ')}`);
  });

  it('options.cpu runs every host process of the instance on that CPU', async function () {
    this.timeout(90000);
    const cpu = allowedCpus()?.at(-1) ?? 0;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandbox-cpu-'));
    const id = `sandbox-cpu-${process.pid}`;
    const go = path.join(dir, 'go');
    const run = runInSandbox(['sh', '-c', `while [ ! -e ${go} ]; do sleep 0.05; done; echo went`], { id, cpu, onOutput: () => undefined });
    try {
      // The guest's processes are host processes too (UML forks one per address space).
      let pids: number[] = [];
      for (const until = Date.now() + 30000; pids.length < 2 && Date.now() < until; ) {
        await new Promise((r) => setTimeout(r, 50));
        pids = umlProcesses(id);
      }
      expect(pids.length).to.be.at.least(2);
      let read = 0;
      for (const pid of pids) {
        let status: string;
        try {
          status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
        } catch {
          continue; // a guest process that ended meanwhile
        }
        read++;
        expect(/^Cpus_allowed_list:\s*(\S+)/m.exec(status)?.[1], `pid ${pid}`).to.equal(String(cpu));
      }
      expect(read).to.be.at.least(2);
    } finally {
      // Whatever failed above, the guest is let go and waited for: it never outlives the test.
      fs.writeFileSync(go, '');
      await run.catch(() => undefined);
    }
    try {
      expect(await run).to.include({ exitCode: 0, output: 'went\n' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the command line refuses every bad option value with a usage error (exit 2, one line, no stack)', () => {
    const cli = path.join(__dirname, '..', '..', 'dist', 'sandbox', 'cli.js');
    const cases: [string[], RegExp][] = [
      [['--memory', '0.4', 'true'], /--memory expects a whole number from 64 to 65536, got "0\.4"/],
      [['--memory', '1e20', 'true'], /--memory expects a whole number/],
      [['--memory=-1', 'true'], /--memory expects a whole number/],
      [['--scratch', 'x', 'true'], /--scratch expects a whole number/],
      [['--timeout', '1.5', 'true'], /--timeout expects a whole number/],
      [['--module', 'a/b', 'true'], /--module expects a module name/],
      [['--cpu', 'x', 'true'], /--cpu expects a whole number from 0 to 4095, got "x"/],
      [['--cpu=-1', 'true'], /--cpu expects a whole number/],
      [['--bogus', 'true'], /Unknown option '--bogus'/],
      [['--memory'], /argument missing/],
      [[], /no command given/],
    ];
    for (const [args, message] of cases) {
      const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
      expect(r.status, args.join(' ')).to.equal(2);
      const first = r.stderr.split('\n')[0] ?? '';
      expect(first, args.join(' ')).to.match(message);
      expect(r.stderr, args.join(' ')).to.not.match(/\n\s+at /);
    }
    // The command's own options are the command's: `--version` here is dmsetup's.
    const help = spawnSync(process.execPath, [cli, '--help'], { encoding: 'utf8' });
    expect(help.status).to.equal(0);
  });
});
