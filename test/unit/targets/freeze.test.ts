// The freezing every typed target and status goes through (ts/targets/args.ts freeze).
import { expect } from 'chai';
import { freeze } from '../../../ts/targets/args';

describe('freeze (typed targets and statuses)', () => {
  it('freezes the object, the objects and arrays it holds, and theirs, leaving frozen members as they are', () => {
    const shared = Object.freeze({ major: 8, minor: 0 });
    const value = freeze({ type: 'multipath', raw: '', groups: [{ paths: [{ dev: { major: 8, minor: 16 }, state: 'A' }, { dev: shared }] }], none: null, gone: undefined });
    expect(Object.isFrozen(value)).to.equal(true);
    expect(Object.isFrozen(value.groups)).to.equal(true);
    expect(Object.isFrozen(value.groups[0])).to.equal(true);
    expect(Object.isFrozen(value.groups[0]?.paths)).to.equal(true);
    expect(Object.isFrozen(value.groups[0]?.paths[0])).to.equal(true);
    expect(Object.isFrozen(value.groups[0]?.paths[0]?.dev)).to.equal(true);
    expect(value.groups[0]?.paths[1]?.dev).to.equal(shared);
  });

  it('freezes only its own members: an enumerable one a prototype gives is left alone', () => {
    const inherited = { counter: 0 };
    const proto: Record<string, unknown> = {};
    Object.defineProperty(proto, 'inherited', { value: inherited, enumerable: true });
    const value: { own: { n: number }; inherited?: unknown } = Object.assign(Object.create(proto) as { own: { n: number } }, { own: { n: 1 } });
    freeze(value);
    expect(Object.isFrozen(value.own)).to.equal(true);
    expect(Object.isFrozen(inherited)).to.equal(false);
  });
});
