import { expect } from 'chai';
import fc from 'fast-check';
import { inspect } from 'node:util';
import { DmParseError, Table, cryptKeySizes, cryptMaskedParams, cryptMessages, maskCryptKeys, parseCryptCipher, parseStatus, targets, type CryptIvMode } from '../../../ts/index';
import { parseCrypt, parseCryptStatus } from '../../../ts/targets/crypt';
import { devArb, fieldOf, expectOnlyParseErrors } from './property';

const K64 = '0123456789abcdef'.repeat(8); // 64 bytes: aes-xts-plain64 with AES-256
const K32 = K64.slice(0, 64);
const K16 = K64.slice(0, 32);
const base = { cipher: 'aes-xts-plain64', key: K64, device: '7:0', offset: 0 };

/** The message of what `f` throws. */
function messageOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  throw new Error('no error');
}

describe('targets: crypt', () => {
  it('builds the kernel params from typed options, optional params in the kernel order', () => {
    expect(targets.crypt(base).params).to.equal(`aes-xts-plain64 ${K64} 0 7:0 0`);
    const all = targets.crypt({
      ...base,
      key: K64.toUpperCase(),
      ivOffset: 8,
      device: { major: 7, minor: 3 },
      offset: 2048,
      ivLargeSectors: true,
      sectorSize: 4096,
      noWriteWorkqueue: true,
      noReadWorkqueue: true,
      submitFromCryptCpus: true,
      sameCpuCrypt: true,
      allowDiscards: true,
      integrity: { tagSize: 32, type: 'aead' },
    });
    // The kernel's order, and its lowercase hex.
    expect(all.params).to.equal(`aes-xts-plain64 ${K64} 8 7:3 2048 8 allow_discards same_cpu_crypt submit_from_crypt_cpus no_read_workqueue no_write_workqueue integrity:32:aead sector_size:4096 iv_large_sectors`);
    expect(all).to.deep.include({ type: 'crypt', ivOffset: 8n, device: '7:3', offset: 2048, sectorSize: 4096, allowDiscards: true, ivLargeSectors: true });
    expect(all.key).to.deep.equal({ kind: 'hex', keySize: 64, hex: K64 });
    expect(all.integrity).to.deep.equal({ tagSize: 32, type: 'aead' });
    expect(targets.crypt({ ...base, sectorSize: 512 }).params).to.equal(`aes-xts-plain64 ${K64} 0 7:0 0`);
    expect(targets.crypt({ ...base, ivOffset: 18446744073709551615n }).params).to.equal(`aes-xts-plain64 ${K64} 18446744073709551615 7:0 0`);
  });

  it('takes keys as hex, bytes, none and keyring keys', () => {
    expect(targets.crypt({ ...base, key: Uint8Array.from(Buffer.from(K64, 'hex')) }).key).to.deep.equal({ kind: 'hex', keySize: 64, hex: K64 });
    expect(targets.crypt({ ...base, cipher: 'cipher_null-ecb', key: null }).params).to.equal('cipher_null-ecb - 0 7:0 0');
    expect(targets.crypt({ ...base, cipher: 'cipher_null-ecb', key: '-' }).key).to.deep.equal({ kind: 'none', keySize: 0 });
    const kr = targets.crypt({ ...base, key: { keySize: 64, keyType: 'logon', description: 'cryptsetup:448c473d-d0' } });
    expect(kr.params).to.equal('aes-xts-plain64 :64:logon:cryptsetup:448c473d-d0 0 7:0 0');
    expect(kr.key).to.deep.equal({ kind: 'keyring', keySize: 64, keyType: 'logon', description: 'cryptsetup:448c473d-d0' });
    expect(targets.crypt({ ...base, key: kr.key }).params).to.equal(kr.params);
    expect(targets.crypt({ ...base, key: { keySize: 64, keyType: 'user', description: 'my-key' } }).params).to.equal('aes-xts-plain64 :64:user:my-key 0 7:0 0');
  });

  it('takes cipher specs in both forms, as strings or parts', () => {
    expect(targets.crypt({ ...base, cipher: { cipher: 'aes', chainMode: 'xts', ivMode: 'plain64' } }).params).to.equal(base.cipher + ` ${K64} 0 7:0 0`);
    expect(targets.crypt({ ...base, key: K32, cipher: { cipher: 'aes', keyCount: 2, chainMode: 'cbc', ivMode: 'essiv', ivOptions: 'sha256' } }).cipher.spec).to.equal('aes:2-cbc-essiv:sha256');
    expect(targets.crypt({ ...base, key: K32, cipher: { capi: 'cbc(aes)', ivMode: 'essiv', ivOptions: 'sha256' } }).cipher).to.deep.equal({ spec: 'capi:cbc(aes)-essiv:sha256', form: 'capi', cipher: null, chainMode: null, api: 'cbc(aes)', keyCount: 1, ivMode: 'essiv', ivOptions: 'sha256' });
    expect(targets.crypt({ ...base, key: K16, cipher: { capi: 'ecb(aes)' } }).cipher).to.deep.include({ spec: 'capi:ecb(aes)', ivMode: null });
    expect(targets.crypt({ ...base, key: K16, cipher: { cipher: 'aes', chainMode: 'ecb' } }).cipher).to.deep.include({ spec: 'aes-ecb', api: 'ecb(aes)', ivMode: null });
    // The original format: the cipher alone, and cipher-plain, are cbc with plain IVs.
    expect(targets.crypt({ ...base, key: K16, cipher: 'aes' }).cipher).to.deep.include({ spec: 'aes', chainMode: 'cbc', ivMode: 'plain', api: 'cbc(aes)' });
    expect(targets.crypt({ ...base, key: K16, cipher: 'aes-plain' }).cipher).to.deep.include({ spec: 'aes-plain', chainMode: 'cbc', ivMode: 'plain' });
    const ae = targets.crypt({ ...base, key: '00'.repeat(96), cipher: 'capi:authenc(hmac(sha256),xts(aes))-plain64', integrity: { tagSize: 32, type: 'aead' } });
    expect(ae.cipher).to.deep.include({ api: 'authenc(hmac(sha256),xts(aes))', ivMode: 'plain64', ivOptions: null });
    expect(ae.params).to.equal(`capi:authenc(hmac(sha256),xts(aes))-plain64 ${'00'.repeat(96)} 0 7:0 0 1 integrity:32:aead`);
    expect(targets.crypt({ ...base, cipher: 'capi:rfc7539(chacha20,poly1305)-random', key: K32, integrity: { tagSize: 28, type: 'aead' } }).cipher.api).to.equal('rfc7539(chacha20,poly1305)');
  });

  it('knows the key sizes of the common ciphers, and leaves the others to the kernel', () => {
    const parseSizes = (spec: string): readonly number[] | undefined => cryptKeySizes(parseCryptCipher(spec));
    expect(parseSizes('cipher_null-ecb')).to.deep.equal([0]);
    expect(parseSizes('aes-xts-plain64')).to.deep.equal([32, 48, 64]);
    expect(parseSizes('aes-cbc-essiv:sha256')).to.deep.equal([16, 24, 32]);
    expect(parseSizes('aes:2-cbc-plain')).to.deep.equal([32, 48, 64]);
    expect(parseSizes('aes-lrw-benbi')).to.deep.equal([32, 40, 48]);
    expect(parseSizes('aes:64-cbc-lmk')).to.deep.equal([1024, 1040, 1536, 1560, 2048, 2080]);
    expect(parseSizes('aes-cbc-tcw')).to.deep.equal([48, 56, 64]);
    expect(parseSizes('aes-cbc-elephant')).to.deep.equal([32, 48, 64]);
    expect(parseSizes('aes-ecb-lmk')).to.deep.equal([16, 24, 32]);
    expect(parseSizes('capi:xts(aes)-plain64')).to.deep.equal([32, 48, 64]);
    expect(parseSizes('capi:authenc(hmac(sha256),xts(aes))-random')).to.deep.equal([64, 80, 96]);
    expect(parseSizes('capi:cbc(aes)-lmk')).to.deep.equal([1024, 1040, 1536, 1560, 2048, 2080]);
    expect(parseSizes('capi:gcm(aes)-random')).to.equal(undefined);
    expect(parseSizes('blowfish-cbc-plain')).to.equal(undefined);
  });

  it('refuses bad options with the field named, before any ioctl, never quoting the key', () => {
    expect(() => targets.crypt({ ...base, key: K16 })).to.throw(RangeError, /crypt\.key.*16 bytes/);
    expect(messageOf(() => targets.crypt({ ...base, key: K16 }))).to.equal('Expected a key of 32, 48 or 64 bytes (the sizes aes-xts-plain64 takes) for crypt.key but received a key of 16 bytes');
    expect(messageOf(() => targets.crypt({ ...base, cipher: 'serpent-cbc-plain64' }))).to.equal('Expected a key of 0 to 32 bytes (the sizes serpent-cbc-plain64 takes) for crypt.key but received a key of 64 bytes');
    expect(() => targets.crypt({ ...base, key: K64.slice(1) })).to.throw(RangeError, /crypt\.key/);
    expect(() => targets.crypt({ ...base, key: 'zz' + K64.slice(2) })).to.throw(RangeError, /crypt\.key/);
    for (const bad of [K64.slice(1), 'zz' + K64.slice(2), K64 + ' ']) expect(messageOf(() => targets.crypt({ ...base, key: bad }))).to.not.include(K64.slice(2, 40));
    expect(messageOf(() => targets.crypt({ ...base, key: 'abc' }))).to.match(/received a string of length 3$/);
    expect(() => targets.crypt({ ...base, key: new Uint8Array(0) })).to.throw(RangeError, /crypt\.key/);
    expect(() => targets.crypt({ ...base, key: 5 as never })).to.throw(TypeError, /crypt\.key/);
    expect(() => targets.crypt({ ...base, key: null })).to.throw(RangeError, /for crypt\.key .*0 bytes/);
    expect(() => targets.crypt({ ...base, key: { keySize: 64, keyType: 'big' as never, description: 'x' } })).to.throw(RangeError, /crypt\.key\.keyType/);
    expect(() => targets.crypt({ ...base, key: { keySize: 0, keyType: 'user', description: 'x' } })).to.throw(RangeError, /crypt\.key\.keySize/);
    expect(() => targets.crypt({ ...base, key: { keySize: 64, keyType: 'user', description: 'a b' } })).to.throw(RangeError, /crypt\.key\.description/);
    expect(() => targets.crypt({ ...base, key: { keySize: 64, keyType: 'logon', description: 'noprefix' } })).to.throw(RangeError, /crypt\.key\.description/);
    expect(() => targets.crypt({ ...base, key: { keySize: 64, keyType: 'user', description: 'x', extra: 1 } as never })).to.throw(TypeError, /unknown option "extra"/);
    expect(() => targets.crypt({ ...base, key: { kind: 'hex', keySize: 3, hex: K64 } })).to.throw(RangeError, /crypt\.key\.keySize/);
    expect(() => targets.crypt({ ...base, cipher: 'aes-xts' })).to.throw(RangeError, /needs an IV mode.*for crypt\.cipher /);
    expect(() => targets.crypt({ ...base, cipher: 'aes-xts-plain65' })).to.throw(RangeError, /unknown IV mode.*for crypt\.cipher /);
    expect(() => targets.crypt({ ...base, cipher: 'aes-cbc-essiv' })).to.throw(RangeError, /essiv needs.*for crypt\.cipher /);
    expect(() => targets.crypt({ ...base, cipher: 'aes:3-xts-plain64' })).to.throw(RangeError, /power of two.*for crypt\.cipher /);
    expect(() => targets.crypt({ ...base, cipher: 'xts(aes)-plain64' })).to.throw(RangeError, /capi.*for crypt\.cipher /);
    expect(() => targets.crypt({ ...base, cipher: 'capi:-plain64' })).to.throw(RangeError, /crypt\.cipher/);
    expect(() => targets.crypt({ ...base, cipher: 'aes xts' })).to.throw(RangeError, /crypt\.cipher/);
    expect(() => targets.crypt({ ...base, cipher: { cipher: 'aes', chainMode: 'xts' } })).to.throw(RangeError, /crypt\.cipher\.ivMode/);
    expect(() => targets.crypt({ ...base, cipher: { cipher: 'aes', chainMode: 'xts', ivMode: 'fast' as CryptIvMode } })).to.throw(RangeError, /crypt\.cipher\.ivMode/);
    expect(() => targets.crypt({ ...base, cipher: { cipher: 'a-es', chainMode: 'xts', ivMode: 'plain64' } })).to.throw(RangeError, /crypt\.cipher\.cipher/);
    expect(() => targets.crypt({ ...base, cipher: { cipher: 'aes', chainMode: 'xts', ivMode: 'plain64', keyCount: 3 } })).to.throw(RangeError, /crypt\.cipher\.keyCount/);
    expect(() => targets.crypt({ ...base, cipher: { cipher: 'aes', chainMode: 'cbc', ivOptions: 'sha256' } })).to.throw(RangeError, /crypt\.cipher\.ivMode/);
    expect(() => targets.crypt({ ...base, cipher: { capi: 'xts(aes)', ivMode: 'plain64', ivOptions: 'a:b' } })).to.throw(RangeError, /crypt\.cipher\.ivOptions/);
    expect(() => targets.crypt({ ...base, cipher: { capi: 'xts(aes)', mode: 1 } as never })).to.throw(TypeError, /unknown option "mode"/);
    expect(() => targets.crypt({ ...base, ivOffset: -1 })).to.throw(RangeError, /crypt\.ivOffset/);
    expect(() => targets.crypt({ ...base, ivOffset: 2n ** 64n })).to.throw(RangeError, /crypt\.ivOffset/);
    expect(() => targets.crypt({ ...base, offset: 1.5 })).to.throw(RangeError, /crypt\.offset/);
    expect(() => targets.crypt({ ...base, device: 'sdb' })).to.throw(/crypt\.device/);
    expect(() => targets.crypt({ ...base, sectorSize: 1024 * 8 })).to.throw(RangeError, /crypt\.sectorSize/);
    expect(() => targets.crypt({ ...base, sectorSize: 1000 })).to.throw(RangeError, /crypt\.sectorSize/);
    expect(() => targets.crypt({ ...base, sectorSize: 4096, ivOffset: 7 })).to.throw(RangeError, /multiple of 8.*for crypt\.ivOffset/);
    expect(() => targets.crypt({ ...base, sectorSize: 4096, offset: 3 })).to.throw(RangeError, /multiple of 8.*for crypt\.offset/);
    expect(() => targets.crypt({ ...base, cipher: 'aes:64-cbc-lmk', key: '00'.repeat(1024), sectorSize: 4096 })).to.throw(RangeError, /crypt\.sectorSize/);
    expect(() => targets.crypt({ ...base, integrity: { tagSize: 481, type: 'aead' } })).to.throw(RangeError, /crypt\.integrity\.tagSize/);
    expect(() => targets.crypt({ ...base, integrity: { tagSize: 32, type: 'hmac' as never } })).to.throw(RangeError, /crypt\.integrity\.type/);
    expect(() => targets.crypt({ ...base, allowDiscards: 'yes' as never })).to.throw(TypeError, /crypt\.allowDiscards/);
    expect(() => targets.crypt({ ...base, discards: true } as never)).to.throw(TypeError, /unknown option "discards"/);
  });

  it('parses what users and the kernel write, refusing malformed text with the field named and the key zeroed', () => {
    // The kernel takes optional params in any order, repeated, flags in any case; it prints them its way.
    const t = parseCrypt(`aes-xts-plain64 ${K64.toUpperCase()} 0 7:0 0 8 iv_large_sectors ALLOW_DISCARDS allow_discards sector_size:4096 no_write_workqueue integrity:28:none same_cpu_crypt no_read_workqueue`);
    expect(t.params).to.equal(`aes-xts-plain64 ${K64} 0 7:0 0 7 allow_discards same_cpu_crypt no_read_workqueue no_write_workqueue integrity:28:none sector_size:4096 iv_large_sectors`);
    expect(parseCrypt(`aes-xts-plain64 ${K64} 0 7:0 0 0`).params).to.equal(`aes-xts-plain64 ${K64} 0 7:0 0`);
    expect(parseCrypt(`aes-xts-plain64 ${K64} 0 7:0 0 1 sector_size:512`).params).to.equal(`aes-xts-plain64 ${K64} 0 7:0 0`);
    expect(parseCrypt('aes-xts-plain64 :064:user:k 0 /dev/loop0 0').key).to.deep.equal({ kind: 'keyring', keySize: 64, keyType: 'user', description: 'k' });
    expect(parseCrypt('aes-xts-plain64 :64:logon:cryptsetup:448c473d-f76d-d0 0 7:0 32768').key).to.deep.include({ description: 'cryptsetup:448c473d-f76d-d0' });
    expect(parseCrypt(`aes-xts-plain64 ${K64} 18446744073709551615 7:0 0`).ivOffset).to.equal(18446744073709551615n);
    expect(fieldOf(() => parseCrypt(`aes-xts ${K64} 0 7:0 0`))).to.equal('cipher');
    expect(fieldOf(() => parseCrypt(`aes-xts-plain64 ${K64.slice(1)} 0 7:0 0`))).to.equal('key');
    expect(fieldOf(() => parseCrypt(`aes-xts-plain64 ${K16} 0 7:0 0`))).to.equal('key');
    expect(fieldOf(() => parseCrypt('aes-xts-plain64 - 0 7:0 0'))).to.equal('key');
    expect(fieldOf(() => parseCrypt('aes-xts-plain64 :64:LOGON:a:b 0 7:0 0'))).to.equal('key');
    expect(fieldOf(() => parseCrypt('aes-xts-plain64 :64:logon:nocolon 0 7:0 0'))).to.equal('key');
    expect(fieldOf(() => parseCrypt('aes-xts-plain64 :0:user:k 0 7:0 0'))).to.equal('key');
    expect(fieldOf(() => parseCrypt('aes-xts-plain64 :64:user: 0 7:0 0'))).to.equal('key');
    expect(fieldOf(() => parseCrypt(`aes-xts-plain64 ${K64} -1 7:0 0`))).to.equal('iv_offset');
    expect(fieldOf(() => parseCrypt(`aes-xts-plain64 ${K64} 18446744073709551616 7:0 0`))).to.equal('iv_offset');
    expect(fieldOf(() => parseCrypt(`aes-xts-plain64 ${K64} 7 7:0 0 1 sector_size:4096`))).to.equal('iv_offset');
    expect(fieldOf(() => parseCrypt(`aes-xts-plain64 ${K64} 0 7:0 3 1 sector_size:4096`))).to.equal('offset');
    expect(fieldOf(() => parseCrypt(`aes-xts-plain64 ${K64} 0 sdb 0`))).to.equal('device path');
    expect(fieldOf(() => parseCrypt(`aes-xts-plain64 ${K64} 0 7:0`))).to.equal('offset');
    expect(fieldOf(() => parseCrypt(`aes-xts-plain64 ${K64} 0 7:0 0 1 Sector_Size:4096`))).to.equal('opt_params');
    expect(fieldOf(() => parseCrypt(`aes-xts-plain64 ${K64} 0 7:0 0 1 sector_size:1000`))).to.equal('opt_params');
    expect(fieldOf(() => parseCrypt(`aes-xts-plain64 ${K64} 0 7:0 0 1 integrity:0:aead`))).to.equal('opt_params');
    expect(fieldOf(() => parseCrypt(`aes-xts-plain64 ${K64} 0 7:0 0 1 integrity:32:hmac`))).to.equal('opt_params');
    expect(fieldOf(() => parseCrypt(`aes-xts-plain64 ${K64} 0 7:0 0 9 allow_discards allow_discards allow_discards allow_discards allow_discards allow_discards allow_discards allow_discards allow_discards`))).to.equal('opt_params count');
    expect(fieldOf(() => parseCrypt(`aes-xts-plain64 ${K64} 0 7:0 0 2 allow_discards`))).to.equal('opt_params count');
    expect(fieldOf(() => parseCrypt(`aes-xts-plain64 ${K64} 0 7:0 0 1 allow_discards x`))).to.equal('params');
    for (const bad of [`aes-xts-plain64 ${K64} 0 sdb 0`, `aes-xts-plain64 ${K64} 0 7:0 0 1 foo`, `aes-xts-plain64 ${K64.slice(1)} 0 7:0 0`, `aes-xts ${K64} 0 7:0 0`]) {
      try {
        parseCrypt(bad);
        expect.fail('parsed');
      } catch (e) {
        if (!(e instanceof DmParseError)) throw e;
        expect(e.message).to.not.include(K64.slice(4, 40));
        expect(e.text).to.not.include(K64.slice(4, 40));
      }
    }
  });

  it('round-trips the kernel print-back of cryptsetup and dmsetup tables byte for byte', () => {
    for (const line of [
      `0 65536 crypt aes-xts-plain64 ${K64} 0 7:0 0`,
      `0 65536 crypt aes-xts-plain64 ${K64} 0 7:0 0 4 allow_discards same_cpu_crypt no_read_workqueue sector_size:4096`,
      '0 32768 crypt aes-xts-plain64 :64:logon:cryptsetup:448c473d-f76d-4e91-a663-bb40b4c859a7-d0 0 7:0 32768',
      '0 91184 crypt capi:authenc(hmac(sha256),xts(aes))-plain64 :96:logon:cryptsetup:4cff482f-5b07-4bf2-9f5a-06ad6a27ee8f-d0 0 254:0 0 1 integrity:32:aead',
      '0 65536 crypt cipher_null-ecb - 0 7:0 0',
      `0 65536 crypt aes ${K16} 0 7:0 0`,
      `0 65536 crypt capi:cbc(aes)-essiv:sha256 ${K32} 0 7:0 0`,
      `0 65536 crypt aes:2-cbc-plain ${K32} 0 7:0 0`,
      `0 65536 crypt aes-xts-plain64 ${'0'.repeat(128)} 0 7:0 0`,
    ]) {
      expect(Table.parse(line).toString()).to.equal(line);
    }
  });

  it('keeps the key out of util.inspect, and masks tables as dmsetup table does', () => {
    const t = targets.crypt({ ...base, allowDiscards: true });
    expect(inspect(t)).to.not.include(K64);
    expect(inspect(t)).to.include("hex: '" + '0'.repeat(128));
    expect(inspect(parseCrypt(t.params))).to.not.include(K64);
    expect(t.params).to.include(K64);
    expect(Object.keys(t)).to.not.include('inspect');
    expect(cryptMaskedParams(t)).to.equal(`aes-xts-plain64 ${'0'.repeat(128)} 0 7:0 0 1 allow_discards`);
    const table = Table.parse([`0 8 crypt aes-xts-plain64 ${K64} 0 7:0 0`, '8 8 crypt cipher_null-ecb - 0 7:0 0', '16 8 crypt aes-xts-plain64 :64:user:k 0 7:0 0', '24 8 linear 7:0 0', '32 8 zero'].join('\n'));
    expect(maskCryptKeys(table)).to.equal([`0 8 crypt aes-xts-plain64 ${'0'.repeat(128)} 0 7:0 0`, '8 8 crypt cipher_null-ecb 0 0 7:0 0', '16 8 crypt aes-xts-plain64 :64:user:k 0 7:0 0', '24 8 linear 7:0 0', '32 8 zero'].join('\n'));
    expect(table.redacted()).to.equal(maskCryptKeys(table));
    // A key out of its place, or a word a message quotes: never in an error.
    for (const text of [`${K64} 0 7:0 0`, `aes-xts-plain64 ${K64} 0 7:0 0 1 allow_discards ${K64}`, `aes-xts-plain64 ${K64} 0 7:0 0 2 allow_discards`, `aes-xts-plain64 ${K64} x 7:0 0`]) {
      expect(messageOf(() => parseCrypt(text)), text).to.not.include(K64.slice(4, 40));
      expect(messageOf(() => Table.parse(`0 8 crypt ${text}`)), text).to.not.include(K64.slice(4, 40));
    }
    expect(table.holdsSecrets).to.equal(true);
  });

  it('checks a row is whole encryption sectors', () => {
    const t = targets.crypt({ ...base, sectorSize: 4096 });
    expect(new Table([{ start: 0, length: 64, target: t }]).size).to.equal(64);
    expect(() => new Table([{ start: 0, length: 65, target: t }])).to.throw(RangeError, /4096-byte sectors.*for rows\[0\]\.length/);
    expect(() => Table.parse(`0 12 crypt ${t.params}`)).to.throw(DmParseError, /multiple of 8/);
  });

  it('Table.parse errors about crypt rows never carry the key: the text they quote has it zeroed', () => {
    const key = K64;
    const texts: string[] = [];
    for (const text of [
      `8 8 crypt aes-xts-plain64 ${key} 0 7:0 0`, // a gap before the row: its start is refused
      `0 0 crypt aes-xts-plain64 ${key} 0 7:0 0`, // a zero length
      `0 12 crypt aes-xts-plain64 ${key} 0 7:0 0 1 sector_size:4096`, // not whole sectors (the Table's check)
      `0 8 crypt aes-xts-plain64 ${key} 0 7:0`, // the params' own parse
    ]) {
      try {
        Table.parse(text);
        expect.fail(`parsed: ${text}`);
      } catch (e) {
        expect(e).to.be.instanceOf(DmParseError);
        texts.push((e as DmParseError).text, (e as Error).message);
      }
    }
    for (const shown of texts) expect(shown).to.not.contain(key.slice(0, 16));
    expect(texts[0]).to.equal(`8 8 crypt aes-xts-plain64 ${'0'.repeat(128)} 0 7:0 0`);
  });

  it('reads the status: empty, any words kept', () => {
    expect(parseCryptStatus('')).to.deep.equal({ type: 'crypt', raw: '', known: true, extra: [] });
    expect(parseCryptStatus('new words').extra).to.deep.equal(['new', 'words']);
    const [row] = parseStatus('0 65536 crypt ');
    expect(row?.status).to.deep.include({ type: 'crypt', known: true, extra: [] });
  });

  it('makes key set and key wipe, checking the key without quoting it', () => {
    expect(cryptMessages.keyWipe()).to.equal('key wipe');
    expect(cryptMessages.keySet(K64.toUpperCase())).to.equal(`key set ${K64}`);
    expect(cryptMessages.keySet(Buffer.from(K16, 'hex'))).to.equal(`key set ${K16}`);
    expect(cryptMessages.keySet({ keySize: 64, keyType: 'logon', description: 'dm:k1' })).to.equal('key set :64:logon:dm:k1');
    expect(cryptMessages.keySet(null)).to.equal('key set -');
    expect(cryptMessages.keySet(parseCrypt(`aes-xts-plain64 ${K64} 0 7:0 0`).key)).to.equal(`key set ${K64}`);
    expect(() => cryptMessages.keySet(K64.slice(1))).to.throw(RangeError, /for key but received a string of length 127$/);
    expect(() => cryptMessages.keySet({ keySize: 64, keyType: 'user', description: '' })).to.throw(RangeError, /key\.description/);
    expect(() => cryptMessages.keySet(undefined as never)).to.throw(TypeError, /for key/);
  });

  it('property: random valid targets round-trip through format and parse', () => {
    const hexArb = (bytes: number) => fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((a) => Buffer.from(a).toString('hex'));
    const cipherKey = fc.oneof(
      fc.tuple(fc.constantFrom('aes-xts-plain64', 'aes-xts-essiv:sha256', 'capi:xts(aes)-plain64', 'aes-xts-plain', 'aes-xts-plain64be'), fc.constantFrom(32, 48, 64)),
      fc.tuple(fc.constantFrom('aes-cbc-essiv:sha256', 'aes-cbc-benbi', 'aes', 'aes-plain', 'capi:cbc(aes)-essiv:sha256', 'aes-ecb', 'capi:ecb(aes)', 'aes-cbc-null', 'aes-cbc-eboiv'), fc.constantFrom(16, 24, 32)),
      fc.tuple(fc.constantFrom('aes:4-cbc-plain64', 'capi:gcm(aes)-random', 'capi:authenc(hmac(sha256),cbc(aes))-essiv:sha256'), fc.constantFrom(64)),
      fc.tuple(fc.constantFrom('serpent-cbc-plain64', 'serpent-xts-plain64'), fc.constantFrom(16, 32)),
    );
    const keyArb = (size: number) =>
      fc.oneof(
        hexArb(size),
        fc.record({ keySize: fc.constant(size), keyType: fc.constantFrom('user' as const, 'logon' as const), description: fc.tuple(fc.constantFrom('cryptsetup', 'dm'), fc.uuid()).map(([a, b]) => `${a}:${b}-d0`) }),
      );
    fc.assert(
      fc.property(
        cipherKey.chain(([cipher, size]) => fc.tuple(fc.constant(cipher), keyArb(size))),
        fc.record({
          device: devArb,
          sectorShift: fc.integer({ min: 0, max: 3 }),
          ivUnits: fc.bigInt({ min: 0n, max: 2n ** 61n - 1n }),
          offsetUnits: fc.nat(2 ** 40),
          allowDiscards: fc.boolean(),
          sameCpuCrypt: fc.boolean(),
          submitFromCryptCpus: fc.boolean(),
          noReadWorkqueue: fc.boolean(),
          noWriteWorkqueue: fc.boolean(),
          ivLargeSectors: fc.boolean(),
          integrity: fc.option(fc.record({ tagSize: fc.integer({ min: 1, max: 480 }), type: fc.constantFrom('aead' as const, 'none' as const) }), { nil: undefined }),
        }),
        ([cipher, key], o) => {
          const per = 2 ** o.sectorShift;
          const t = targets.crypt({
            cipher,
            key,
            device: o.device,
            ivOffset: o.ivUnits * BigInt(per),
            offset: o.offsetUnits * per,
            sectorSize: 512 * per,
            allowDiscards: o.allowDiscards,
            sameCpuCrypt: o.sameCpuCrypt,
            submitFromCryptCpus: o.submitFromCryptCpus,
            noReadWorkqueue: o.noReadWorkqueue,
            noWriteWorkqueue: o.noWriteWorkqueue,
            ivLargeSectors: o.ivLargeSectors,
            integrity: o.integrity,
          });
          expect(parseCrypt(t.params)).to.deep.equal(t);
          const line = `0 ${8 * 4096} crypt ${t.params}`;
          expect(Table.parse(line).toString()).to.equal(line);
        },
      ),
    );
  });

  it('property: random and mutated lines never crash or hang, and fail only with DmParseError', () => {
    expectOnlyParseErrors([parseCrypt, parseCryptStatus], [
        `aes-xts-plain64 ${K64} 8 7:3 2048 8 allow_discards same_cpu_crypt submit_from_crypt_cpus no_read_workqueue no_write_workqueue integrity:32:aead sector_size:4096 iv_large_sectors`,
        'aes-xts-plain64 :64:logon:cryptsetup:448c473d-f76d-4e91-a663-bb40b4c859a7-d0 0 7:0 32768',
        'capi:authenc(hmac(sha256),xts(aes))-plain64 :96:logon:cryptsetup:4cff-d0 0 254:0 0 1 integrity:32:aead',
        `aes:2-cbc-essiv:sha256 ${K32} 0 7:0 0 1 sector_size:1024`,
        'cipher_null-ecb - 0 7:0 0',
      ], 1000);
  });
});
