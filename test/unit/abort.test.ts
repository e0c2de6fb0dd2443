import { expect } from 'chai';
import { getEventListeners } from 'node:events';
import { onAbort } from '../../ts/abort';

describe('abort subscriptions (ts/abort.ts)', () => {
  it('many subscriptions to one signal share one listener, and each runs once on abort', () => {
    const controller = new AbortController();
    const calls: number[] = [];
    const offs = Array.from({ length: 300 }, (_, i) => onAbort(controller.signal, () => calls.push(i)));
    expect(getEventListeners(controller.signal, 'abort')).to.have.length(1);
    offs[7]?.();
    controller.abort();
    controller.abort();
    expect(calls).to.have.length(299);
    expect(calls).to.not.include(7);
    expect(getEventListeners(controller.signal, 'abort')).to.have.length(0);
    for (const off of offs) off(); // after the abort: no-ops
  });

  it('the listener goes with the last subscription, and a later one adds it again', () => {
    const controller = new AbortController();
    const a = onAbort(controller.signal, () => expect.fail('unsubscribed'));
    const b = onAbort(controller.signal, () => expect.fail('unsubscribed'));
    a();
    a();
    expect(getEventListeners(controller.signal, 'abort')).to.have.length(1);
    b();
    expect(getEventListeners(controller.signal, 'abort')).to.have.length(0);
    let called = 0;
    onAbort(controller.signal, () => called++);
    expect(getEventListeners(controller.signal, 'abort')).to.have.length(1);
    controller.abort();
    expect(called).to.equal(1);
  });

  it('no signal, no subscription', () => {
    const off = onAbort(undefined, () => expect.fail('never'));
    expect(() => {
      off();
    }).to.not.throw();
  });
});
