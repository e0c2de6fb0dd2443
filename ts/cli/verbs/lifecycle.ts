/**
 * The verbs that make devices and change their tables and state: `create`, `load`, `reload`,
 * `suspend`, `resume`, `clear`. Tables given as text go through `Table.parse` before any ioctl.
 * @packageDocumentation
 */
import type { DeviceInfo } from '../../client';
import { actOnEach, newDeviceName, oneDevice, SELECT_OPTIONS, someDevices, tableInput } from '../args';
import { ExitCode, UsageError, defineVerb, type VerbContext } from '../verb';

const TABLE_OPTION = { type: 'string', value: 'ROWS', help: 'the table, rows one a line (else FILE, else stdin)' } as const;

const TABLE_HELP = `The table is "START LENGTH TYPE PARAMS" rows, one a line (blank lines and # comments are
left out): from --table, else the file FILE ("-": stdin), else stdin. It is parsed and checked
before any ioctl: a bad table is a usage error and nothing is done. A table with a crypt row goes
with DM_SECURE_DATA (the kernel wipes its copies of the key).`;

/** Text output of a verb that changed one device: nothing; JSON: its DeviceInfo. */
function report(ctx: VerbContext, info: DeviceInfo): number {
  if (ctx.global.json) ctx.out.json(info);
  return ExitCode.ok;
}

/** `devmapper create`. */
export const create = defineVerb({
  name: 'create',
  summary: 'Create a device, load its table and make it live',
  usage: 'NAME [FILE]',
  description: `${TABLE_HELP}
The device is created, loaded and resumed; if a step fails, what was made is removed again.
--notable creates it with no table. JSON: the new device's DeviceInfo.`,
  options: {
    table: TABLE_OPTION,
    uuid: { type: 'string', short: 'u', value: 'UUID', help: "the device's uuid" },
    readonly: { type: 'boolean', short: 'r', help: 'load the table read-only' },
    notable: { type: 'boolean', help: 'create the device with no table' },
  },
  positionals: { min: 1, max: 2 },
  async run(ctx) {
    const [given, file] = ctx.args;
    if (given === undefined) throw ctx.usageError('no NAME given');
    const name = newDeviceName(given, ctx.verb.name);
    const base = { ...(ctx.options.uuid !== undefined ? { uuid: ctx.options.uuid } : {}), readOnly: ctx.options.readonly === true };
    if (ctx.options.notable === true) {
      if (ctx.options.table !== undefined || file !== undefined) throw ctx.usageError('--notable takes no table (--table or FILE)');
      return report(ctx, ctx.syncClient().create(name, base));
    }
    // The table is read and checked before the control node is even opened.
    const table = await tableInput(ctx, ctx.options.table, file);
    return report(ctx, ctx.syncClient().create(name, { ...base, table, secure: table.holdsSecrets }));
  },
});

/** `devmapper load`. */
export const load = defineVerb({
  name: 'load',
  summary: "Load a table into a device's inactive slot (resume makes it live)",
  usage: 'NAME [FILE]',
  description: `${TABLE_HELP}
JSON: the device's DeviceInfo.`,
  options: {
    ...SELECT_OPTIONS,
    table: TABLE_OPTION,
    readonly: { type: 'boolean', short: 'r', help: 'load the table read-only' },
  },
  positionals: { min: 0, max: 2 },
  async run(ctx) {
    const { id, rest } = oneDevice(ctx, ctx.options, { min: 0, max: 1 });
    const table = await tableInput(ctx, ctx.options.table, rest[0]);
    return report(ctx, ctx.syncClient().load(id, table, { readOnly: ctx.options.readonly === true, secure: table.holdsSecrets }));
  },
});

/** `devmapper reload`. */
export const reload = defineVerb({
  name: 'reload',
  summary: "Replace a live device's table: load, suspend, resume, rolled back on failure",
  usage: 'NAME [FILE]',
  description: `${TABLE_HELP}
The new table is loaded, the device suspended and resumed on it; if a step fails, the device
is put back on its old table and left running (never suspended). JSON: the device's DeviceInfo.`,
  options: {
    ...SELECT_OPTIONS,
    table: TABLE_OPTION,
    readonly: { type: 'boolean', short: 'r', help: 'load the table read-only' },
    noflush: { type: 'boolean', help: 'suspend without flushing queued I/O' },
    nolockfs: { type: 'boolean', help: 'suspend without freezing the filesystem' },
  },
  positionals: { min: 0, max: 2 },
  async run(ctx) {
    const { id, rest } = oneDevice(ctx, ctx.options, { min: 0, max: 1 });
    const table = await tableInput(ctx, ctx.options.table, rest[0]);
    return report(ctx, ctx.syncClient().reload(id, table, {
      readOnly: ctx.options.readonly === true,
      noFlush: ctx.options.noflush === true,
      noLockfs: ctx.options.nolockfs === true,
      secure: table.holdsSecrets,
    }));
  },
});

/** The devices a suspend/resume names (at least one). */
function named(ctx: VerbContext, values: { uuid?: string | undefined; major?: string | undefined; minor?: string | undefined }): ReturnType<typeof someDevices> {
  const devices = someDevices(ctx, values);
  if (devices.length === 0) throw new UsageError('no device given (NAME, major:minor, --uuid or --major/--minor)', ctx.verb.name);
  return devices;
}

/** `devmapper suspend`. */
export const suspend = defineVerb({
  name: 'suspend',
  summary: 'Suspend devices (I/O is held until resume)',
  usage: 'NAME...',
  description: 'Each device in turn; the first failure stops (a warning then names those done before it and\nthose not tried). JSON: an array of the DeviceInfo of each.',
  options: {
    ...SELECT_OPTIONS,
    noflush: { type: 'boolean', help: 'do not flush queued I/O (it is kept and resubmitted on resume)' },
    nolockfs: { type: 'boolean', help: 'do not freeze the filesystem on the device' },
  },
  positionals: { min: 0, max: Infinity },
  async run(ctx) {
    const devices = named(ctx, ctx.options);
    const dm = ctx.syncClient();
    const infos = actOnEach(ctx, devices, 'suspended', (id) => dm.suspend(id, { noFlush: ctx.options.noflush === true, noLockfs: ctx.options.nolockfs === true }));
    if (ctx.global.json) ctx.out.json(infos);
    return ExitCode.ok;
  },
});

/** `devmapper resume`. */
export const resume = defineVerb({
  name: 'resume',
  summary: 'Resume devices (an inactive table becomes live)',
  usage: 'NAME...',
  description: 'Each device in turn; the first failure stops (a warning then names those done before it and\nthose not tried). JSON: an array of the DeviceInfo of each.',
  options: { ...SELECT_OPTIONS },
  positionals: { min: 0, max: Infinity },
  async run(ctx) {
    const devices = named(ctx, ctx.options);
    const dm = ctx.syncClient();
    const infos = actOnEach(ctx, devices, 'resumed', (id) => dm.resume(id));
    if (ctx.global.json) ctx.out.json(infos);
    return ExitCode.ok;
  },
});

/** `devmapper clear`. */
export const clear = defineVerb({
  name: 'clear',
  summary: "Drop a device's inactive table",
  usage: 'NAME',
  description: "JSON: the device's DeviceInfo.",
  options: { ...SELECT_OPTIONS },
  positionals: { min: 0, max: 1 },
  async run(ctx) {
    const { id } = oneDevice(ctx, ctx.options);
    return report(ctx, ctx.syncClient().clear(id));
  },
});
