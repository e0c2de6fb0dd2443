import { expect } from 'chai';
import { ExitCode } from '../../../ts/cli/verb';
import { VERBS, findVerb, registryProblems } from '../../../ts/cli/verbs/index';
import { runCli } from './harness';

describe('devmapper command: framework (ts/cli/main.ts)', () => {
  it('--help lists every verb and the exit codes, on stdout, exit 0', async () => {
    const r = await runCli(['--help']);
    expect(r.code).to.equal(0);
    expect(r.stderr).to.equal('');
    for (const verb of VERBS) expect(r.stdout).to.include(`  ${verb.name} `);
    expect(r.stdout).to.match(/^ {2}2 {4}usage error/m);
    expect(r.stdout).to.match(/^ {2}3 {4}no such device/m);
  });

  it('help VERB, VERB --help and VERB -h print the same help of the verb', async () => {
    const a = await runCli(['help', 'version']);
    const b = await runCli(['version', '--help']);
    const c = await runCli(['-h', 'version']);
    expect(a.code).to.equal(0);
    expect(a.stdout).to.match(/^Usage: devmapper version\n/);
    expect(b.stdout).to.equal(a.stdout);
    expect(c.stdout).to.equal(a.stdout);
  });

  it('--version prints the package version', async () => {
    const r = await runCli(['--version']);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.match(/^\d+\.\d+\.\d+\S*\n$/);
  });

  it('no verb, an unknown verb, an unknown option, a bad --udev: exit 2 with a usage line on stderr', async () => {
    const cases: [string[], RegExp][] = [
      [[], /no verb given/],
      [['frobnicate'], /unknown verb "frobnicate"/],
      [['version', '--frob'], /^devmapper: version: Unknown option '--frob'\nUsage: devmapper version/],
      [['--frob', 'version'], /Unknown option '--frob'/],
      [['--udev', 'maybe', 'version'], /--udev expects one of auto, sync, fallback, off/],
      [['version', 'extra'], /^devmapper: version: expects 0 operands/],
      [['help', 'frobnicate'], /unknown verb "frobnicate"/],
      [['version', '--json=1'], /--json/],
    ];
    for (const [argv, message] of cases) {
      const r = await runCli(argv);
      expect(r.code, argv.join(' ')).to.equal(ExitCode.usage);
      expect(r.stdout, argv.join(' ')).to.equal('');
      expect(r.stderr, argv.join(' ')).to.match(message);
      expect(r.stderr, argv.join(' ')).to.match(/^Usage: devmapper /m);
    }
  });

  it('a control node that does not exist: exit 1, the errno named', async () => {
    const r = await runCli(['--control', '/nonexistent/control', 'version']);
    expect(r.code).to.equal(ExitCode.failure);
    expect(r.stderr).to.match(/^devmapper: version \/nonexistent\/control: ENOENT \(/);
  });

  it('the registry has no duplicate names, no verb declaring a global option, one use of each short', () => {
    expect(registryProblems()).to.deep.equal([]);
    for (const verb of VERBS) expect(findVerb(verb.name)).to.equal(verb);
    expect(registryProblems([...VERBS, ...VERBS.slice(0, 1)])).to.not.deep.equal([]);
  });
});

describe('devmapper command: every verb\'s help', () => {
  for (const verb of VERBS) {
    it(`${verb.name}: help VERB shows its usage, summary and each option, in lines of at most 100 columns`, async () => {
      const r = await runCli(['help', verb.name]);
      expect(r.code).to.equal(0);
      expect(r.stdout.startsWith(`Usage: devmapper ${verb.name}`)).to.equal(true);
      expect(r.stdout).to.include(`${verb.summary}.`);
      for (const [name, spec] of Object.entries(verb.options)) {
        expect(spec.help, name).to.not.equal('');
        expect(r.stdout).to.match(new RegExp(`--${name}\\b.*  ${spec.help.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
      }
      for (const line of r.stdout.split('\n')) expect(line.length, line).to.be.at.most(100);
    });
  }
});
