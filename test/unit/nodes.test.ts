// The /dev/mapper paths of device names: the fast path agrees with path.join for every name.
import { expect } from 'chai';
import { join } from 'node:path';
import { MAPPER_DIR, mapperPath } from '../../ts/nodes';

describe('mapperPath', () => {
  it('gives what path.join gives, for ordinary and awkward names alike', () => {
    const names = ['vol', 'a-b_c.d', '.hidden', '..x', 'x..', '.', '..', '', 'a/b', '/abs', 'a//b', 'trail/', 'sp ace', 'ünï', 'a\\b', '-', 'control'];
    for (const name of names) {
      expect(mapperPath(name), JSON.stringify(name)).to.equal(join(MAPPER_DIR, name));
      expect(mapperPath(name, '/tmp/m/'), JSON.stringify(name)).to.equal(join('/tmp/m/', name));
    }
  });
});
