import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { DeviceMapper, DmError } from '../../ts/index';
import { errnoCode } from '../../ts/errors';

describe('DeviceMapper.open on a host without device-mapper', () => {
  it('says what is missing (dm-mod) and points to the kernel sandbox', async function () {
    const path = '/nonexistent/mapper/control';
    const e: unknown = await DeviceMapper.open({ path }).catch((x: unknown) => x);
    expect(e).to.be.instanceOf(DmError);
    expect(e).to.include({ code: 'ENOENT', syscall: 'open', device: path });
    expect((e as Error).message).to.contain('modprobe dm-mod').and.contain('devmapper-sandbox');
    if (!existsSync('/dev/mapper/control')) {
      const d: unknown = await DeviceMapper.open().catch((x: unknown) => x);
      expect((d as Error).message).to.match(/^open \/dev\/mapper\/control: .*does not exist: this kernel has no device-mapper loaded/);
    }
  });

  it('refuses unknown and malformed options before opening anything', async () => {
    for (const [options, pattern] of [
      [{ pth: '/dev/null' }, /unknown option "pth"/],
      [{ path: 3 }, /options\.path/],
      [new Date(), /plain options object/],
      [[], /options object/],
    ] as const) {
      const e: unknown = await DeviceMapper.open(options as never).catch((x: unknown) => x);
      expect(e).to.be.instanceOf(TypeError);
      expect((e as Error).message).to.match(pattern);
    }
  });

  it('names every errno the kernel can answer with, ESTALE and EOVERFLOW included', () => {
    expect(errnoCode(116)).to.equal('ESTALE');
    expect(errnoCode(75)).to.equal('EOVERFLOW');
    expect(errnoCode(11)).to.equal('EAGAIN');
    expect(errnoCode(99999)).to.equal('E99999');
  });
});
