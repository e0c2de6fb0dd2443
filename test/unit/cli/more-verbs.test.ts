import { expect } from 'chai';
import { registryProblems, findVerb } from '../../../ts/cli/verbs/index';
import { parseSandboxArgs } from '../../../ts/sandbox/command';
import { runCli } from './harness';

// Usage errors are found before any device-mapper call: on this host (no /dev/mapper/control
// needed) each exits 2 with the verb's usage, proving nothing was opened or sent.
describe('cli verbs: status, wait, watch, wait-sync, stats, loop, sandbox, demo (host)', () => {
  it('are registered without problems', () => {
    expect(registryProblems()).to.deep.equal([]);
    for (const name of ['status', 'wait', 'watch', 'wait-sync', 'stats', 'loop', 'sandbox', 'demo']) expect(findVerb(name)?.name).to.equal(name);
  });

  const usage: [string[], RegExp][] = [
    [['status', '--target', 'no such'], /--target expects a target type name/],
    [['status', '--raw', '--json', 'vol'], /--raw and --json/],
    [['status', 'a', 'b'], /expects 0 to 1 operands/],
    [['status', '--bogus'], /Unknown option '--bogus'/],
    [['wait'], /expects 1 to 2 operands/],
    [['wait', 'vol', '-1'], /Unknown option '-1'|EVENT_NR/],
    [['wait', 'vol', '4294967296'], /EVENT_NR expects a whole number/],
    [['wait', 'vol', '1x'], /EVENT_NR expects a whole number/],
    [['wait-sync', 'vol', '--timeout', '0'], /--timeout expects whole seconds/],
    [['wait-sync', 'vol', '--timeout', '1.5'], /--timeout expects whole seconds/],
    [['wait-sync'], /expects 1 operand/],
    [['stats'], /expects 1 to 3 operands/],
    [['stats', 'frob', 'vol'], /expects one of create, delete, list, print, clear/],
    [['stats', 'create'], /stats create expects NAME/],
    [['stats', 'create', 'vol', '--clear'], /--clear does not apply to stats create/],
    [['stats', 'create', 'vol', '--areas', '0'], /--areas expects a whole number of at least 1/],
    [['stats', 'create', 'vol', '--areas', '2', '--area-size', '8'], /cannot be used together/],
    [['stats', 'create', 'vol', '--start', '8'], /--start and --length go together/],
    [['stats', 'create', 'vol', '--histogram', '10,5'], /ascending/],
    [['stats', 'create', 'vol', '--program-id', '12'], /not a number/],
    [['stats', 'delete', 'vol', 'x'], /REGION expects a whole number/],
    [['stats', 'print', 'vol', '1', '2'], /expects 1 to 3 operands|stats print expects/],
    [['loop', 'attach'], /loop attach expects FILE/],
    [['loop', 'detach', '/dev/sda'], /DEV expects a loop device/],
    [['loop', 'ls', '--readonly'], /--readonly does not apply to loop ls/],
    [['loop', 'attach', 'f', '--offset', '-1'], /Option '--offset' argument is ambiguous|--offset expects/],
    [['loop', 'attach', 'f', '--offset', '1k'], /--offset expects a whole number of bytes/],
    [['loop', 'eject', 'x'], /expects one of attach, detach, ls, refresh/],
    [['sandbox'], /no command given/],
    [['sandbox', '--memory', '1', '--', 'true'], /--memory expects a whole number from 64/],
    [['sandbox', '--modules', 'a,b c', '--', 'true'], /--module expects a module name/],
    [['sandbox', '--bogus', '--', 'true'], /Unknown option '--bogus'/],
    [['demo', 'x'], /expects 0 operands/],
    // Global options a verb has no use for are refused, never ignored.
    [['--udev', 'off', 'loop', 'ls'], /--udev means nothing to loop/],
    [['loop', 'ls', '--control', '/dev/x'], /--control means nothing to loop/],
    [['--json', 'sandbox', '--', 'true'], /--json means nothing to sandbox/],
    [['--control', '/dev/x', 'sandbox', '--', 'true'], /--control means nothing to sandbox/],
    [['demo', '--udev', 'sync'], /--udev means nothing to demo/],
    [['demo', '--json'], /--json means nothing to demo/],
  ];
  for (const [argv, message] of usage) {
    it(`devmapper ${argv.join(' ')}: exit 2 and the verb's usage`, async () => {
      const r = await runCli(argv);
      expect(r.code, r.stderr).to.equal(2);
      expect(r.stderr).to.match(message);
      expect(r.stderr).to.match(/Usage: devmapper /);
      expect(r.stdout).to.equal('');
    });
  }

  it('sandbox shares devmapper-sandbox\'s parser: --mem and --modules are aliases, the command after -- is kept whole', () => {
    expect(parseSandboxArgs(['--mem', '256', '--modules', 'brd,zram', '--module', 'loop', '--udev', '--', 'ls', '-l', '--json'])).to.deep.equal({
      options: { memory: 256, modules: ['loop', 'brd', 'zram'], udev: true },
      command: ['ls', '-l', '--json'],
    });
    expect(() => parseSandboxArgs(['--mem', '256', '--memory', '256', 'x'])).to.throw(/name the same option/);
    expect(parseSandboxArgs(['-h'])).to.equal('help');
  });

  it('help: sandbox takes its own options; every verb of this set has a help page', async () => {
    const r = await runCli(['sandbox', '--help']);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.match(/--memory MiB/);
    for (const name of ['status', 'wait', 'watch', 'wait-sync', 'stats', 'loop', 'sandbox', 'demo']) {
      const h = await runCli(['help', name]);
      expect(h.code).to.equal(0);
      expect(h.stdout).to.match(new RegExp(`^Usage: devmapper ${name}`));
    }
  });

  it('sandbox runs the command as root in a booted kernel, its output on stdout, its exit status as ours', async function () {
    this.timeout(120000);
    const r = await runCli(['sandbox', '--mem', '256', '--', 'sh', '-c', 'echo "uid $(id -u) dm $(cat /sys/module/dm_mod/initstate 2>/dev/null || echo builtin)"; exit 3']);
    expect(r.stderr).to.equal('');
    expect(r.stdout).to.match(/^uid 0 dm (live|builtin)\n$/);
    expect(r.code).to.equal(3);
  });

  it('demo runs examples/volume-demo.js in the sandbox, as npm run demo does, and exits 0', async function () {
    this.timeout(300000);
    const r = await runCli(['demo']);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^Booting the kernel sandbox/);
    expect(r.stdout).to.match(/device-mapper interface 4\.\d+\.\d+/);
    expect(r.stdout).to.match(/sandbox: booted in \d+ ms, whole run \d+ ms, exit status 0\n$/);
  });
});
