import { expect } from 'chai';
import fc from 'fast-check';
import { Table, multipathMessages, parseStatus, targets, type MultipathGroupOptions, type MultipathSelector } from '../../../ts/index';
import { parseMultipath, parseMultipathStatus } from '../../../ts/targets/multipath';
import { devArb, fieldOf, expectOnlyParseErrors } from './property';

const rr = (...devices: string[]): MultipathGroupOptions => ({ selector: 'round-robin', paths: devices.map((device) => ({ device })) });

describe('targets: multipath', () => {
  it('builds the kernel params from typed options, in the form the kernel prints back', () => {
    expect(targets.multipath({ groups: [rr('7:0', '7:1')] }).params).to.equal('0 0 1 1 round-robin 0 2 1 7:0 1 7:1 1');
    expect(targets.multipath({ groups: [] }).params).to.equal('0 0 0 0');
    const two = targets.multipath({ groups: [rr('7:0'), { selector: 'service-time', paths: [{ device: { major: 7, minor: 1 }, relativeThroughput: 10, repeatCount: 0 }] }], initialGroup: 2 });
    expect(two.params).to.equal('0 0 2 2 round-robin 0 1 1 7:0 1 service-time 0 1 2 7:1 0 10');
    expect(two.groups[1]).to.deep.equal({ selector: 'service-time', baseWeight: undefined, thresholdMultiplier: undefined, paths: [{ device: '7:1', repeatCount: 0, relativeThroughput: 10, cpumask: undefined }] });
    const all = targets.multipath({ groups: [{ selector: 'queue-length', paths: [{ device: '/dev/loop0' }] }], queueIfNoPath: true, pgInitRetries: 3, pgInitDelayMsecs: 100, queueMode: 'bio' });
    expect(all.params).to.equal('8 queue_if_no_path pg_init_retries 3 pg_init_delay_msecs 100 retain_attached_hw_handler queue_mode bio 0 1 1 queue-length 0 1 1 /dev/loop0 1');
    expect(all).to.deep.include({ type: 'multipath', queueIfNoPath: true, pgInitRetries: 3, pgInitDelayMsecs: 100, retainAttachedHwHandler: true, queueMode: 'bio', hwHandler: undefined, initialGroup: 1 });
    // rq and mq are the kernel's default (one request-based mode since Linux 5.0): no feature words.
    expect(targets.multipath({ groups: [rr('7:0')], queueMode: 'mq' })).to.deep.include({ queueMode: 'rq', params: '0 0 1 1 round-robin 0 1 1 7:0 1' });
    expect(targets.multipath({ groups: [rr('7:0')], retainAttachedHwHandler: true, hwHandler: 'alua', hwHandlerArgs: ['x'] }).params).to.equal('1 retain_attached_hw_handler 2 alua x 1 1 round-robin 0 1 1 7:0 1');
    const hst = targets.multipath({ groups: [{ selector: 'historical-service-time', paths: [{ device: '7:0' }, { device: '7:1' }] }] });
    expect(hst.params).to.equal('0 0 1 1 historical-service-time 2 972 0 2 1 7:0 0 7:1 0');
    expect(targets.multipath({ groups: [{ selector: 'historical-service-time', baseWeight: 0, thresholdMultiplier: 3, paths: [{ device: '7:0', repeatCount: 0 }] }] }).params).to.equal('0 0 1 1 historical-service-time 2 0 3 1 1 7:0 0');
    expect(targets.multipath({ groups: [{ selector: 'io-affinity', paths: [{ device: '7:0', cpumask: '1' }, { device: '7:1', cpumask: 'ff,00000000' }] }] }).params).to.equal('0 0 1 1 io-affinity 0 2 1 7:0 1 7:1 ff,00000000');
  });

  it('refuses bad options with the field named, before any ioctl', () => {
    expect(() => targets.multipath({ groups: [rr('7:0')], initialGroup: 2 })).to.throw(RangeError, /multipath\.initialGroup/);
    expect(() => targets.multipath({ groups: [rr('7:0')], initialGroup: 0 })).to.throw(RangeError, /multipath\.initialGroup/);
    expect(() => targets.multipath({ groups: [], initialGroup: 1 })).to.throw(RangeError, /multipath\.initialGroup/);
    expect(() => targets.multipath({ groups: [{ selector: 'round-robin', paths: [] }] })).to.throw(RangeError, /multipath\.groups\[0\]\.paths/);
    expect(() => targets.multipath({ groups: [{ selector: 'random' as never, paths: [{ device: '7:0' }] }] })).to.throw(RangeError, /multipath\.groups\[0\]\.selector/);
    expect(() => targets.multipath({ groups: [rr('7:0', 'sdb')] })).to.throw(/multipath\.groups\[0\]\.paths\[1\]\.device/);
    expect(() => targets.multipath({ groups: [{ selector: 'round-robin', paths: [{ device: '7:0', repeatCount: 128 }] }] })).to.throw(RangeError, /multipath\.groups\[0\]\.paths\[0\]\.repeatCount/);
    expect(() => targets.multipath({ groups: [{ selector: 'round-robin', paths: [{ device: '7:0', relativeThroughput: 2 }] }] })).to.throw(RangeError, /paths\[0\]\.relativeThroughput/);
    expect(() => targets.multipath({ groups: [{ selector: 'service-time', paths: [{ device: '7:0', relativeThroughput: 101 }] }] })).to.throw(RangeError, /paths\[0\]\.relativeThroughput/);
    expect(() => targets.multipath({ groups: [{ selector: 'queue-length', paths: [{ device: '7:0', cpumask: '1' }] }] })).to.throw(RangeError, /paths\[0\]\.cpumask/);
    expect(() => targets.multipath({ groups: [{ selector: 'io-affinity', paths: [{ device: '7:0' }] }] })).to.throw(TypeError, /paths\[0\]\.cpumask/);
    expect(() => targets.multipath({ groups: [{ selector: 'io-affinity', paths: [{ device: '7:0', cpumask: 'xyz' }] }] })).to.throw(RangeError, /paths\[0\]\.cpumask/);
    expect(() => targets.multipath({ groups: [{ selector: 'io-affinity', paths: [{ device: '7:0', cpumask: '1', repeatCount: 1 }] }] })).to.throw(RangeError, /paths\[0\]\.repeatCount/);
    expect(() => targets.multipath({ groups: [{ selector: 'historical-service-time', paths: [{ device: '7:0', repeatCount: 1 }] }] })).to.throw(RangeError, /paths\[0\]\.repeatCount/);
    expect(() => targets.multipath({ groups: [{ selector: 'historical-service-time', baseWeight: 1024, paths: [{ device: '7:0' }] }] })).to.throw(RangeError, /groups\[0\]\.baseWeight/);
    expect(() => targets.multipath({ groups: [{ ...rr('7:0'), baseWeight: 5 }] })).to.throw(RangeError, /groups\[0\]\.baseWeight/);
    expect(() => targets.multipath({ groups: [{ ...rr('7:0'), thresholdMultiplier: 5 }] })).to.throw(RangeError, /groups\[0\]\.thresholdMultiplier/);
    expect(() => targets.multipath({ groups: [rr('7:0')], pgInitRetries: 0 })).to.throw(RangeError, /multipath\.pgInitRetries/);
    expect(() => targets.multipath({ groups: [rr('7:0')], pgInitRetries: 51 })).to.throw(RangeError, /multipath\.pgInitRetries/);
    expect(() => targets.multipath({ groups: [rr('7:0')], pgInitDelayMsecs: 60001 })).to.throw(RangeError, /multipath\.pgInitDelayMsecs/);
    expect(() => targets.multipath({ groups: [rr('7:0')], queueMode: 'nvme' as never })).to.throw(RangeError, /multipath\.queueMode/);
    expect(() => targets.multipath({ groups: [rr('7:0')], queueMode: 'bio', hwHandler: 'alua' })).to.throw(RangeError, /multipath\.hwHandler/);
    expect(() => targets.multipath({ groups: [rr('7:0')], queueMode: 'bio', retainAttachedHwHandler: false })).to.throw(RangeError, /multipath\.retainAttachedHwHandler/);
    expect(() => targets.multipath({ groups: [rr('7:0')], hwHandlerArgs: ['1'] })).to.throw(RangeError, /multipath\.hwHandlerArgs/);
    expect(() => targets.multipath({ groups: [rr('7:0')], hwHandler: 'a b' })).to.throw(RangeError, /multipath\.hwHandler/);
    expect(() => targets.multipath({ groups: [rr('7:0')], queueIfNoPath: 'yes' as never })).to.throw(TypeError, /multipath\.queueIfNoPath/);
    expect(() => targets.multipath({ groups: [rr('7:0')], features: [] } as never)).to.throw(TypeError, /unknown option "features"/);
    expect(() => targets.multipath({ groups: [{ ...rr('7:0'), weight: 1 } as never] })).to.throw(TypeError, /multipath\.groups\[0\].*unknown option "weight"/);
    expect(() => targets.multipath({ groups: [{ selector: 'round-robin', paths: [{ device: '7:0', count: 1 } as never] }] })).to.throw(TypeError, /unknown option "count"/);
    expect(() => targets.multipath(undefined as never)).to.throw(TypeError, /multipath options/);
  });

  it('parses the kernel documentation\'s tables (byte for byte back) and statuses', () => {
    // Documentation/admin-guide/device-mapper/dm-service-time.rst and dm-queue-length.rst.
    for (const line of ['0 0 1 1 service-time 0 2 2 8:0 128 1 8:16 128 4', '0 0 1 1 service-time 0 2 2 8:0 128 2 8:16 128 8', '0 0 1 1 queue-length 0 2 1 8:0 128 8:16 128']) {
      expect(parseMultipath(line).params).to.equal(line);
    }
    for (const line of ['2 0 0 0 1 1 E 0 2 2 8:0 A 0 0 1 8:16 A 0 0 4', '2 0 0 0 1 1 E 0 2 2 8:0 A 0 0 2 8:16 A 0 0 8', '2 0 0 0 1 1 E 0 2 1 8:0 A 0 0 8:16 A 0 0']) {
      expect(parseMultipathStatus(line)).to.deep.include({ raw: line, queueIo: false, nextGroup: 1, extra: [] });
    }
    expect(parseMultipathStatus('2 0 0 0 1 1 E 0 2 2 8:0 A 0 0 2 8:16 A 0 0 8').groups[0]?.paths.map((p) => p.relativeThroughput)).to.deep.equal([2, 8]);
    const st = parseMultipath('0 0 1 1 service-time 0 2 2 8:0 128 1 8:16 128 4');
    expect(st.groups[0]?.paths.map((p) => [p.device, p.repeatCount, p.relativeThroughput])).to.deep.equal([['8:0', 128, 1], ['8:16', 128, 4]]);
  });

  it('parses what users write, normalised as the kernel does', () => {
    // Per-path args left out take their defaults, written out as the kernel prints them.
    expect(parseMultipath('0 0 1 1 round-robin 0 2 0 7:0 7:1').params).to.equal('0 0 1 1 round-robin 0 2 1 7:0 1 7:1 1');
    expect(parseMultipath('0 0 1 1 service-time 0 2 1 7:0 1 7:1 0').params).to.equal('0 0 1 1 service-time 0 2 2 7:0 1 1 7:1 0 1');
    expect(parseMultipath('0 0 1 1 historical-service-time 1 500 1 0 7:0').params).to.equal('0 0 1 1 historical-service-time 2 500 0 1 1 7:0 0');
    // Feature names in any case and order; rq/mq are the default; bio implies retain; the last value wins.
    expect(parseMultipath('7 pg_init_delay_msecs 100 QUEUE_IF_NO_PATH pg_init_retries 3 queue_mode BIO 0 1 1 round-robin 0 1 0 7:0').params).to.equal(
      '8 queue_if_no_path pg_init_retries 3 pg_init_delay_msecs 100 retain_attached_hw_handler queue_mode bio 0 1 1 round-robin 0 1 1 7:0 1',
    );
    expect(parseMultipath('2 queue_mode mq 0 1 1 round-robin 0 1 0 7:0').params).to.equal('0 0 1 1 round-robin 0 1 1 7:0 1');
    expect(parseMultipath('4 pg_init_retries 3 pg_init_retries 5 0 1 1 round-robin 0 1 0 7:0').pgInitRetries).to.equal(5);
    expect(parseMultipath('2 queue_if_no_path queue_if_no_path 0 1 1 round-robin 0 1 0 7:0').params).to.equal('1 queue_if_no_path 0 1 1 round-robin 0 1 1 7:0 1');
    // Selector args of selectors that take none are dropped, and so is a handler in bio mode.
    expect(parseMultipath('0 0 1 1 round-robin 1 x 1 0 7:0').params).to.equal('0 0 1 1 round-robin 0 1 1 7:0 1');
    expect(parseMultipath('2 queue_mode bio 2 emc 1 1 1 round-robin 0 1 0 7:0')).to.deep.include({ hwHandler: undefined, hwHandlerArgs: [] });
    const emc = parseMultipath('0 2 emc 1 1 1 round-robin 0 1 0 /dev/loop0');
    expect(emc).to.deep.include({ hwHandler: 'emc', hwHandlerArgs: ['1'] });
    expect(emc.groups[0]?.paths[0]?.device).to.equal('/dev/loop0');
    expect(parseMultipath('0 0 1 1 io-affinity 0 1 1 7:0 f').groups[0]?.paths[0]?.cpumask).to.equal('f');
    expect(parseMultipath('0 0 2 2 round-robin 0 1 1 7:0 1 queue-length 0 1 1 7:1 0').initialGroup).to.equal(2);
  });

  it('refuses malformed params with the field named', () => {
    expect(fieldOf(() => parseMultipath('1 fast 0 1 1 round-robin 0 1 0 7:0'))).to.equal('feature args');
    expect(fieldOf(() => parseMultipath('9 a a a a a a a a a 0 0 0'))).to.equal('feature args count');
    expect(fieldOf(() => parseMultipath('1 pg_init_retries 0 1 1 round-robin 0 1 0 7:0'))).to.equal('pg_init_retries');
    expect(fieldOf(() => parseMultipath('2 pg_init_retries 0 0 1 1 round-robin 0 1 0 7:0'))).to.equal('pg_init_retries');
    expect(fieldOf(() => parseMultipath('2 pg_init_delay_msecs 60001 0 1 1 round-robin 0 1 0 7:0'))).to.equal('pg_init_delay_msecs');
    expect(fieldOf(() => parseMultipath('2 queue_mode nvme 0 1 1 round-robin 0 1 0 7:0'))).to.equal('queue_mode');
    expect(fieldOf(() => parseMultipath('0 5 emc 1 0 0'))).to.equal('hw handler args count');
    expect(fieldOf(() => parseMultipath('0 0 2 0 round-robin 0 1 0 7:0 round-robin 0 1 0 7:1'))).to.equal('initial group');
    expect(fieldOf(() => parseMultipath('0 0 1 2 round-robin 0 1 0 7:0'))).to.equal('initial group');
    expect(fieldOf(() => parseMultipath('0 0 0 1'))).to.equal('initial group');
    expect(fieldOf(() => parseMultipath('0 0 1025 1'))).to.equal('priority groups');
    expect(fieldOf(() => parseMultipath('0 0 1 1 Round-Robin 0 1 0 7:0'))).to.equal('group 1 selector');
    expect(fieldOf(() => parseMultipath('0 0 1 1 round-robin 0 0 0'))).to.equal('group 1 paths');
    expect(fieldOf(() => parseMultipath('0 0 1 1 round-robin 0 1 2 7:0 1 2'))).to.equal('group 1 path args');
    expect(fieldOf(() => parseMultipath('0 0 1 1 service-time 0 1 3 7:0 1 2 3'))).to.equal('group 1 path args');
    expect(fieldOf(() => parseMultipath('0 0 1 1 io-affinity 0 1 0 7:0'))).to.equal('group 1 path args');
    expect(fieldOf(() => parseMultipath('0 0 1 1 io-affinity 0 1 1 7:0 z'))).to.equal('group 1 path 0 cpumask');
    expect(fieldOf(() => parseMultipath('0 0 1 1 service-time 0 1 2 7:0 1 101'))).to.equal('group 1 path 0 relative throughput');
    expect(fieldOf(() => parseMultipath('0 0 1 1 round-robin 0 1 1 7:0 -1'))).to.equal('group 1 path 0 repeat count');
    expect(fieldOf(() => parseMultipath('0 0 1 1 round-robin 0 1 1 7:0 4294967296'))).to.equal('group 1 path 0 repeat count');
    expect(fieldOf(() => parseMultipath('0 0 1 1 round-robin 0 1 1 7:0'))).to.equal('group 1 path 0 args');
    expect(fieldOf(() => parseMultipath('0 0 1 1 round-robin 0 1 1 sdb 1'))).to.equal('group 1 path 0 device');
    expect(fieldOf(() => parseMultipath('0 0 1 1 historical-service-time 3 1 2 3 1 0 7:0'))).to.equal('group 1 selector args');
    expect(fieldOf(() => parseMultipath('0 0 1 1 historical-service-time 1 1024 1 0 7:0'))).to.equal('group 1 base weight');
    expect(fieldOf(() => parseMultipath('0 0 2 1 round-robin 0 1 0 7:0'))).to.equal('group 2 selector');
    expect(fieldOf(() => parseMultipath('0 0 1 1 round-robin 0 1 0 7:0 7:1'))).to.equal('params');
  });

  it('reads every status form: features, group states, path health and fail counts, each selector\'s words', () => {
    const s = parseMultipathStatus('2 0 0 0 2 2 E 0 1 0 7:0 F 1 A 0 1 0 7:1 A 0');
    expect(s).to.deep.include({ type: 'multipath', known: true, queueIo: false, pgInitCount: 0, hwHandlerStatus: [], nextGroup: 2, extra: [] });
    expect(s.groups.map((g) => g.state)).to.deep.equal(['enabled', 'active']);
    expect(s.groups[0]?.paths[0]).to.deep.include({ device: '7:0', health: 'failed', failCount: 1, inFlight: undefined, selectorArgs: [] });
    expect(s.groups[1]?.paths[0]).to.deep.include({ device: '7:1', health: 'active', failCount: 0 });
    expect(parseMultipathStatus('2 1 3 0 1 1 D 0 1 0 7:0 A 4').groups[0]?.state).to.equal('disabled');
    expect(parseMultipathStatus('2 1 3 0 1 1 D 0 1 0 7:0 A 4')).to.deep.include({ queueIo: true, pgInitCount: 3 });
    expect(parseMultipathStatus('2 1 0 0 0 0')).to.deep.include({ nextGroup: 0, groups: [] });
    // queue-length: in-flight I/Os; service-time (dm-service-time.rst): in-flight bytes and relative throughput.
    expect(parseMultipathStatus('2 0 0 0 1 1 A 0 2 1 7:0 A 0 3 7:1 A 0 0').groups[0]?.paths[0]?.inFlight).to.equal(3);
    const st = parseMultipathStatus('2 0 0 0 1 1 E 0 2 2 8:0 A 0 0 1 8:16 A 0 65536 4');
    expect(st.groups[0]?.paths[1]).to.deep.include({ device: '8:16', inFlightSize: 65536, relativeThroughput: 4 });
    expect(parseMultipathStatus('2 0 0 0 1 1 E 0 2 1 8:0 A 0 0 8:16 A 0 0').groups[0]?.paths[1]?.inFlight).to.equal(0);
    // historical-service-time: its two group words, three 64-bit words per path.
    const hst = parseMultipathStatus('2 0 0 0 1 1 A 2 972 0 2 3 7:0 A 0 1024 0 0 7:1 F 1 5242880 1 18446744073709551615');
    expect(hst.groups[0]).to.deep.include({ baseWeight: 972, thresholdMultiplier: 0, selectorArgs: [] });
    expect(hst.groups[0]?.paths[1]).to.deep.include({ health: 'failed', historicalServiceTime: 5242880n, outstanding: 1n, staleAfter: 18446744073709551615n });
    // Another selector's words stay words.
    const other = parseMultipathStatus('2 0 0 0 1 1 A 1 x 1 4 7:0 A 0 a b c d');
    expect(other.groups[0]?.selectorArgs).to.deep.equal(['x']);
    expect(other.groups[0]?.paths[0]?.selectorArgs).to.deep.equal(['a', 'b', 'c', 'd']);
    expect(parseMultipathStatus('2 0 0 0 0 0 more').extra).to.deep.equal(['more']);
    expect(parseMultipathStatus('2 0 0 0 1 1 A 0 1 1 7:0 A 0 -2').groups[0]?.paths[0]?.inFlight).to.equal(-2);
    expect(fieldOf(() => parseMultipathStatus('3 0 0 0 0 0 0'))).to.equal('features count');
    expect(fieldOf(() => parseMultipathStatus('2 2 0 0 0 0'))).to.equal('queue io');
    expect(fieldOf(() => parseMultipathStatus('2 0 0 0 1 1 X 0 1 0 7:0 A 0'))).to.equal('group 1 state');
    expect(fieldOf(() => parseMultipathStatus('2 0 0 0 1 1 A 0 1 0 7:0 B 0'))).to.equal('group 1 path 0 health');
    expect(fieldOf(() => parseMultipathStatus('2 0 0 0 1 1 A 0 1 0 7:0 A x'))).to.equal('group 1 path 0 fail count');
    expect(fieldOf(() => parseMultipathStatus('2 0 0 0 1 1 A 0 1 2 7:0 A 0 1'))).to.equal('group 1 path 0 relative throughput');
    expect(fieldOf(() => parseMultipathStatus('2 0 0 0 1 1 A 0 1 4 7:0 A 0 1'))).to.equal('group 1 path 0 selector status');
    expect(fieldOf(() => parseMultipathStatus('2 0 0 0 1 1 A 0 1 3 7:0 A 0 1 2 -3'))).to.equal('group 1 path 0 stale after');
    expect(fieldOf(() => parseMultipathStatus('2 0 0 0 2 1 A 0 1 0 7:0 A 0'))).to.equal('group 2 state');
    const [row] = parseStatus('0 32768 multipath 2 0 0 0 1 1 A 0 2 0 7:0 A 0 7:1 F 1');
    expect(row?.status.known && row.status.type === 'multipath' && row.status.groups[0]?.paths[1]?.health).to.equal('failed');
  });

  it('makes the messages the kernel takes, checking their arguments', () => {
    expect(multipathMessages.failPath('7:1')).to.equal('fail_path 7:1');
    expect(multipathMessages.failPath({ major: 7, minor: 1 })).to.equal('fail_path 7:1');
    expect(multipathMessages.reinstatePath('/dev/loop1')).to.equal('reinstate_path /dev/loop1');
    expect(multipathMessages.disableGroup(1)).to.equal('disable_group 1');
    expect(multipathMessages.enableGroup(2)).to.equal('enable_group 2');
    expect(multipathMessages.switchGroup(2)).to.equal('switch_group 2');
    expect(multipathMessages.queueIfNoPath()).to.equal('queue_if_no_path');
    expect(multipathMessages.failIfNoPath()).to.equal('fail_if_no_path');
    expect(() => multipathMessages.failPath('sdb')).to.throw(/path/);
    expect(() => multipathMessages.switchGroup(0)).to.throw(RangeError, /group/);
    expect(() => multipathMessages.disableGroup(1.5)).to.throw(RangeError, /group/);
    expect(() => multipathMessages.enableGroup('1' as never)).to.throw(TypeError, /group/);
  });

  it('property: random valid targets round-trip through format and parse', () => {
    const selectorArb = fc.constantFrom<MultipathSelector>('round-robin', 'queue-length', 'service-time', 'historical-service-time', 'io-affinity');
    const pathArb = fc.record({ device: devArb, repeatCount: fc.option(fc.nat(1), { nil: undefined }), relativeThroughput: fc.option(fc.nat(100), { nil: undefined }), cpumask: fc.constantFrom('1', '3', 'ff', '80000000,00000001') });
    const groupArb = fc.record({ selector: selectorArb, paths: fc.array(pathArb, { minLength: 1, maxLength: 4 }), baseWeight: fc.nat(1023), thresholdMultiplier: fc.nat(0xffffffff) }).map(({ selector, paths, baseWeight, thresholdMultiplier }): MultipathGroupOptions => ({
      selector,
      ...(selector === 'historical-service-time' ? { baseWeight, thresholdMultiplier } : {}),
      paths: paths.map((p) =>
        selector === 'io-affinity'
          ? { device: p.device, cpumask: p.cpumask }
          : selector === 'historical-service-time'
            ? { device: p.device }
            : selector === 'service-time'
              ? { device: p.device, repeatCount: p.repeatCount, relativeThroughput: p.relativeThroughput }
              : { device: p.device, repeatCount: p.repeatCount },
      ),
    }));
    fc.assert(
      fc.property(
        fc.array(groupArb, { maxLength: 4 }),
        fc.record({
          queueIfNoPath: fc.boolean(),
          pgInitRetries: fc.option(fc.integer({ min: 1, max: 50 }), { nil: undefined }),
          pgInitDelayMsecs: fc.option(fc.integer({ min: 0, max: 60000 }), { nil: undefined }),
          retainAttachedHwHandler: fc.boolean(),
          queueMode: fc.constantFrom(undefined, 'bio' as const, 'rq' as const, 'mq' as const),
          hw: fc.option(fc.tuple(fc.constantFrom('alua', 'emc', 'rdac'), fc.array(fc.constantFrom('0', '1', 'x'), { maxLength: 3 })), { nil: undefined }),
          initial: fc.nat(),
        }),
        (groups, o) => {
          const hw = o.queueMode === 'bio' || o.hw === undefined ? {} : { hwHandler: o.hw[0], hwHandlerArgs: o.hw[1] };
          const t = targets.multipath({
            groups,
            initialGroup: groups.length === 0 ? 0 : 1 + (o.initial % groups.length),
            queueIfNoPath: o.queueIfNoPath,
            pgInitRetries: o.pgInitRetries,
            pgInitDelayMsecs: o.pgInitDelayMsecs,
            retainAttachedHwHandler: o.queueMode === 'bio' ? undefined : o.retainAttachedHwHandler,
            queueMode: o.queueMode,
            ...hw,
          });
          expect(parseMultipath(t.params)).to.deep.equal(t);
          const line = `0 32768 multipath ${t.params}`;
          expect(Table.parse(line).toString()).to.equal(line);
        },
      ),
    );
  });

  it('property: random and mutated lines never crash or hang, and fail only with DmParseError', () => {
    expectOnlyParseErrors([parseMultipath, parseMultipathStatus], [
        '8 queue_if_no_path pg_init_retries 3 pg_init_delay_msecs 100 retain_attached_hw_handler queue_mode bio 0 1 1 round-robin 0 2 1 7:0 1 7:1 1',
        '0 1 emc 2 1 round-robin 0 1 1 7:0 1 service-time 0 1 2 7:1 1 10',
        '0 0 1 1 historical-service-time 2 972 0 2 1 7:0 0 7:1 0',
        '0 0 1 1 io-affinity 0 2 1 7:0 1 7:1 2',
        '2 0 0 0 2 2 E 0 1 0 7:0 F 1 A 0 1 2 7:1 A 0 0 10',
        '2 0 0 0 1 1 A 2 972 0 2 3 7:0 A 0 1024 0 0 7:1 F 1 5242880 1 18446744073709551615',
      ]);
  });
});
