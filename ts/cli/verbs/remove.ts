/**
 * `devmapper remove` and `devmapper remove-all`.
 * @packageDocumentation
 */
import { SELECT_OPTIONS, actOnEach, someDevices } from '../args';
import { ExitCode, defineVerb } from '../verb';

/** EBUSY retries of `remove --retry` (the library's default: udev and blkid scans race removes). */
const RETRIES = 5;

/** `devmapper remove`. */
export const remove = defineVerb({
  name: 'remove',
  summary: 'Remove devices',
  usage: 'NAME...',
  description: `Each device in turn; the first failure stops (a warning then names those removed before it
and those not tried). An open device is not removed (EBUSY) unless --deferred: then the kernel
removes it at its last close. With --force an open device's table is first replaced by one that
fails all I/O (an opener that keeps it open still makes the remove fail, but its I/O fails).
--retry retries an EBUSY a few times (a udev or blkid scan may hold the device a moment).
/dev/mapper/NAME is gone when it returns. JSON: { "removed": [NAME, ...] }.`,
  options: {
    ...SELECT_OPTIONS,
    deferred: { type: 'boolean', help: 'if the device is open, remove it at its last close' },
    force: { type: 'boolean', short: 'f', help: 'if the device is open, make all its I/O fail first (an error table)' },
    retry: { type: 'boolean', help: `retry up to ${RETRIES} times while it is busy (EBUSY)` },
  },
  positionals: { min: 0, max: Infinity },
  async run(ctx) {
    const devices = someDevices(ctx, ctx.options);
    if (devices.length === 0) throw ctx.usageError('no device given (NAME, major:minor, --uuid or --major/--minor)');
    const dm = ctx.syncClient();
    const options = { deferred: ctx.options.deferred === true, force: ctx.options.force === true, retries: ctx.options.retry === true ? RETRIES : 0 };
    actOnEach(ctx, devices, 'removed', (id) => dm.remove(id, options));
    if (ctx.global.json) ctx.out.json({ removed: devices.map((d) => d.label) });
    return ExitCode.ok;
  },
});

/** `devmapper remove-all`. */
export const removeAll = defineVerb({
  name: 'remove-all',
  aliases: ['remove_all'],
  summary: 'Remove every device that is not open (or those of a name/uuid prefix)',
  usage: '--all | --prefix P | --uuid-prefix P',
  description: `With --all this is the kernel's DM_REMOVE_ALL: every device-mapper device of the machine that
is not open goes, also those of LVM, cryptsetup and others (with --deferred the open ones at
their last close); the kernel names none of them. With a prefix only the devices whose name
(uuid) starts with it, one by one, top-down: their names are printed
(JSON: { "removed": [NAME, ...] }). One of the three is required.`,
  options: {
    all: { type: 'boolean', help: "every device of the machine (the kernel's DM_REMOVE_ALL)" },
    deferred: { type: 'boolean', help: 'open devices go at their last close' },
    prefix: { type: 'string', value: 'P', help: 'only devices whose name starts with P' },
    'uuid-prefix': { type: 'string', value: 'P', help: 'only devices whose uuid starts with P' },
  },
  positionals: { min: 0, max: 0 },
  async run(ctx) {
    if (ctx.options.prefix === '' || ctx.options['uuid-prefix'] === '') throw ctx.usageError('an empty prefix would match every device: --all says that');
    const filtered = ctx.options.prefix !== undefined || ctx.options['uuid-prefix'] !== undefined;
    if (filtered && ctx.options.all === true) throw ctx.usageError('--all and a prefix exclude each other');
    if (!filtered && ctx.options.all !== true) throw ctx.usageError('give --prefix P, --uuid-prefix P, or --all for every device of the machine');
    const removed = ctx.syncClient().removeAll({
      deferred: ctx.options.deferred === true,
      ...(ctx.options.prefix !== undefined ? { prefix: ctx.options.prefix } : {}),
      ...(ctx.options['uuid-prefix'] !== undefined ? { uuidPrefix: ctx.options['uuid-prefix'] } : {}),
    });
    if (ctx.global.json) ctx.out.json({ removed });
    else for (const name of removed) ctx.out.line(name);
    return ExitCode.ok;
  },
});
