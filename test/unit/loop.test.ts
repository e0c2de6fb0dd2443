import { expect } from 'chai';
import { sameBacking } from '../../ts/loop';

describe('LoopDevice: which file a loop device is bound to', () => {
  const backing = { dev: { major: 8, minor: 1 }, inode: 2n ** 60n + 3n };

  it('compares inodes above 2^53 - 1 exactly, so detach neither rounds nor refuses them', () => {
    // lo_device 0x801 = 8:1; the addon hands 64-bit values above 2^53 - 1 over as bigint.
    expect(sameBacking({ device: 0x801, inode: 2n ** 60n + 3n }, backing, '/dev/loop0')).to.equal(true);
    expect(sameBacking({ device: 0x801, inode: 2n ** 60n + 2n }, backing, '/dev/loop0')).to.equal(false);
    expect(sameBacking({ device: 0x802, inode: 2n ** 60n + 3n }, backing, '/dev/loop0')).to.equal(false);
    expect(sameBacking({ device: 0x801, inode: 12 }, { dev: { major: 8, minor: 1 }, inode: 12n }, '/dev/loop0')).to.equal(true);
  });
});
