// The kernel tests' own timeouts (a test that needs minutes says so) must never shorten the
// run's: the Valgrind phase gives every test 600 s (DEVMAPPER_TEST_TIMEOUT).
import { expect } from 'chai';
import { timeoutAtLeast } from '../kernel/helpers';

describe('kernel test helpers: timeoutAtLeast', () => {
  it('raises a test\'s timeout to what it asks, and never lowers the run\'s', function () {
    const run = this.timeout();
    timeoutAtLeast(this, run - 1);
    expect(this.timeout(), 'a shorter time asked for').to.equal(run);
    timeoutAtLeast(this, run + 5000);
    expect(this.timeout(), 'a longer time asked for').to.equal(run + 5000);
  });

  it('works on a suite as on a test', () => {
    let timeout = 600_000;
    const suite = { timeout: ((ms?: number) => (ms === undefined ? timeout : (timeout = ms))) as { (): number; (ms: number): unknown } };
    timeoutAtLeast(suite, 120_000);
    expect(timeout).to.equal(600_000);
    timeout = 60_000;
    timeoutAtLeast(suite, 120_000);
    expect(timeout).to.equal(120_000);
  });
});
