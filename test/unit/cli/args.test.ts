import { expect } from 'chai';
import { PassThrough } from 'node:stream';
import { deviceOperand, newDeviceName, selectedDevice, tableFromText, wholeNumber } from '../../../ts/cli/args';
import { describeDmError, failureOf } from '../../../ts/cli/failure';
import { main } from '../../../ts/cli/main';
import { UsageError } from '../../../ts/cli/verb';
import { drawTree } from '../../../ts/cli/verbs/ls';
import { DmError, DmParseError, Table, integrityMaskedParams } from '../../../ts/index';
import { Capture, runCli } from './harness';

describe('devmapper command: arguments and failures (ts/cli/args.ts, failure.ts)', () => {
  it('wholeNumber takes decimal digits only, up to its bound', () => {
    expect(wholeNumber('SECTOR', '0', 'message')).to.equal(0);
    expect(wholeNumber('SECTOR', '4096', 'message')).to.equal(4096);
    for (const bad of ['', '-1', '0x10', '1e3', '1.5', ' 1', '12abc', '9007199254740993']) {
      expect(() => wholeNumber('SECTOR', bad, 'message'), bad).to.throw(UsageError);
    }
    expect(() => wholeNumber('--major', '4096', 'info', 0xfff)).to.throw(UsageError, /up to 4095/);
  });

  it('an operand of the form major:minor names a device by number, anything else by name', () => {
    expect(deviceOperand('253:7')).to.deep.equal({ dev: { major: 253, minor: 7 } });
    expect(deviceOperand('vol')).to.equal('vol');
    expect(deviceOperand('vol:1')).to.equal('vol:1');
  });

  it('--uuid or --major with --minor select a device; mixing them, or one of major/minor alone, is a usage error', () => {
    expect(selectedDevice({}, 'info')).to.equal(undefined);
    expect(selectedDevice({ uuid: 'U' }, 'info')).to.deep.equal({ uuid: 'U' });
    expect(selectedDevice({ major: '253', minor: '1' }, 'info')).to.deep.equal({ dev: { major: 253, minor: 1 } });
    expect(() => selectedDevice({ major: '253' }, 'info')).to.throw(UsageError, /go together/);
    expect(() => selectedDevice({ uuid: 'U', minor: '1' }, 'info')).to.throw(UsageError, /not both/);
    expect(() => selectedDevice({ major: '253', minor: '1048576' }, 'info')).to.throw(UsageError);
  });

  it('tableFromText parses rows with Table.parse, leaving out blank lines and # comments; no rows or bad rows are usage errors', () => {
    expect(tableFromText('# lower half\n0 8 zero\n\n8 8 error\n', 'FILE', 'create').toString()).to.equal('0 8 zero\n8 8 error');
    expect(() => tableFromText('# nothing\n\n', 'stdin', 'create')).to.throw(UsageError, /from stdin has no rows/);
    expect(() => tableFromText('0 8 zero\n9 8 zero', '--table', 'create')).to.throw(UsageError, /bad table from --table: .*gaps/);
    expect(() => tableFromText('0 8 linear', '--table', 'create')).to.throw(UsageError, /bad table/);
  });

  it('a DmError is told by its errno code and description, about its device; ENXIO exits 3, others 1', () => {
    const busy = new DmError({ errno: 16, syscall: 'ioctl', command: 'DM_DEV_REMOVE', device: 'vol' });
    expect(describeDmError(busy)).to.equal('EBUSY (device or resource busy)');
    expect(failureOf(busy, 'remove', 'other')).to.deep.equal({ exitCode: 1, device: 'vol', message: 'EBUSY (device or resource busy)', usageOf: undefined });
    const missing = new DmError({ errno: 6, syscall: 'ioctl', command: 'DM_DEV_STATUS' });
    expect(failureOf(missing, 'info', 'vol')).to.deep.include({ exitCode: 3, device: 'vol' });
    const loadMissing = new DmError({ errno: 6, syscall: 'ioctl', command: 'DM_TABLE_LOAD', device: 'vol' });
    expect(failureOf(loadMissing, 'create', 'vol').exitCode).to.equal(1);
    const detailed = new DmError({ errno: 22, syscall: 'ioctl', command: 'DM_TABLE_LOAD', device: 'vol', message: 'DM_TABLE_LOAD vol: Invalid argument (a detail)' });
    expect(describeDmError(detailed)).to.equal('EINVAL (invalid argument (a detail))');
    expect(failureOf(new DmParseError('bad', 'x', 'start'), 'create', undefined).exitCode).to.equal(2);
    expect(failureOf(new TypeError('Expected a device name for name but received "a/b"'), 'create', undefined).exitCode).to.equal(2);
    expect(failureOf(new RangeError('Expected 1 to 128 bytes for name but received ""'), 'create', undefined).exitCode).to.equal(2);
    expect(failureOf(new TypeError("Cannot read properties of undefined (reading 'x')"), 'create', undefined).exitCode).to.equal(1);
    expect(failureOf(new Error('other'), 'create', undefined).exitCode).to.equal(1);
  });

  it('drawTree draws branches and their continuation lines', () => {
    const leaf = (minor: number) => ({ dev: { major: 7, minor }, children: [] });
    expect(drawTree([
      { name: 'top', dev: { major: 254, minor: 2 }, children: [
        { name: 'a', dev: { major: 254, minor: 0 }, children: [leaf(0)] },
        { name: 'b', dev: { major: 254, minor: 1 }, children: [leaf(1), leaf(2)] },
      ] },
      { name: 'alone', dev: { major: 254, minor: 3 }, children: [] },
    ])).to.deep.equal([
      'top (254:2)',
      ' ├─a (254:0)',
      ' │  └─ (7:0)',
      ' └─b (254:1)',
      '    ├─ (7:1)',
      '    └─ (7:2)',
      'alone (254:3)',
    ]);
    expect(drawTree([{ name: 'v', dev: { major: 254, minor: 0 }, children: [{ dev: { major: 7, minor: 0 }, devname: 'loop0', children: [] }] }], true))
      .to.deep.equal(['v (254:0)', ' └─loop0 (7:0)']);
  });

  it('a table read from stdin that never ends is given up when the signal aborts: exit 130, nothing done', async () => {
    const controller = new AbortController();
    const stdin = new PassThrough();
    stdin.write('0 8 zero\n');
    const stderr = new Capture();
    const run = main(['create', 'never'], { stdout: new Capture(), stderr, stdin, env: {}, signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    expect(await run).to.equal(130);
    expect(stderr.text).to.equal('devmapper: create: interrupted\n');
    stdin.destroy();
  });

  it('a verb\'s arity is checked before it runs', async () => {
    const r = await runCli(['create']);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.match(/^devmapper: create: expects 1 to 2 operands \(NAME \[FILE\]\), got 0\n/);
  });

  it('keys: integrity algorithm keys are zeroed for display and make a table secure, as crypt keys do', () => {
    const key = 'c3'.repeat(32);
    const params = `7:0 0 32 J 3 journal_sectors:1000 internal_hash:hmac(sha256):${key} journal_mac:hmac(sha256):${key}`;
    expect(integrityMaskedParams(params)).to.equal(`7:0 0 32 J 3 journal_sectors:1000 internal_hash:hmac(sha256):${'0'.repeat(64)} journal_mac:hmac(sha256):${'0'.repeat(64)}`);
    expect(integrityMaskedParams('7:0 0 4 J 1 internal_hash:crc32c')).to.equal('7:0 0 4 J 1 internal_hash:crc32c');
    expect(Table.parse(`0 8192 integrity ${params}`).holdsSecrets).to.equal(true);
    expect(Table.parse('0 8192 integrity 7:0 0 4 J 1 internal_hash:crc32c').holdsSecrets).to.equal(false);
    expect(Table.parse(`0 2048 crypt aes-xts-plain64 ${key} 0 7:0 0`).holdsSecrets).to.equal(true);
    expect(Table.parse('0 2048 zero').holdsSecrets).to.equal(false);
  });

  it('a new device name that reads as major:minor is a usage error', () => {
    expect(() => newDeviceName('253:5', 'create')).to.throw(UsageError, /reads as a device number/);
    expect(newDeviceName('vol-253-5', 'create')).to.equal('vol-253-5');
  });
});
