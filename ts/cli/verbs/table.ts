/**
 * `devmapper table` and `devmapper deps`: a device's table as the kernel reads it back (crypt
 * keys hidden unless `--showkeys`), and the devices its table uses.
 * @packageDocumentation
 */
import type { DevNumber } from '../../dev';
import type { DevId } from '../../dev';
import type { DeviceMapperSync } from '../../sync';
import { parseTarget, type Table, type TableRow } from '../../table';
import { targetModules } from '../../targets/index';
import { SELECT_OPTIONS, eachDevice, someDevices } from '../args';
import { ExitCode, defineVerb } from '../verb';

/**
 * The devices a table/deps invocation is about: those named, or every device, read by the
 * name it was listed under (never by its number, which the kernel hands to the next device
 * at once: a device removed after the list would have another's table shown under its name).
 */
function devicesOf(dm: DeviceMapperSync, named: { id: DevId; label: string }[]): { id: DevId; label: string; listed: boolean }[] {
  if (named.length > 0) return named.map((n) => ({ ...n, listed: false }));
  return dm.listDevices()
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((d) => ({ id: { name: d.name }, label: d.name, listed: true }));
}

/** A row's params with its keys zeroed by its type's own rule (TargetModule.redact), or undefined when its type hides nothing. */
function maskedParams(row: TableRow): string | undefined {
  return targetModules[row.type]?.redact?.(row.params);
}

/** A row as `--json` shows it, its keys zeroed unless `showKeys`. */
function jsonRow(row: TableRow, showKeys: boolean): TableRow {
  const params = showKeys ? undefined : maskedParams(row);
  if (params === undefined) return row;
  return { start: row.start, length: row.length, type: row.type, params, target: parseTarget(row.type, params, false) };
}

/** `devmapper table`. */
export const table = defineVerb({
  name: 'table',
  summary: "Print a device's table as the kernel reads it back",
  usage: '[NAME | MAJOR:MINOR]...',
  description: `One device: its rows, one a line ("START LENGTH TYPE PARAMS", as dmsetup table). Several, or
none named (every device): "NAME: ROW" lines. Keys (crypt's; integrity's internal_hash,
journal_crypt and journal_mac) are shown as zeroes unless --showkeys.
JSON: [{ "device", "rows": [{ "start", "length", "type", "params", "target" }] | null }, ...].`,
  options: {
    ...SELECT_OPTIONS,
    inactive: { type: 'boolean', help: 'the inactive table (loaded, not yet resumed)' },
    showkeys: { type: 'boolean', help: 'show crypt and integrity keys' },
  },
  positionals: { min: 0, max: Infinity },
  async run(ctx) {
    const named = someDevices(ctx, ctx.options);
    const dm = ctx.syncClient();
    const showKeys = ctx.options.showkeys === true;
    // Always asked with DM_SECURE_DATA: the kernel and the addon wipe their copies of any key.
    const read = eachDevice(devicesOf(dm, named), (id) => dm.table(id, { inactive: ctx.options.inactive === true, secure: true }));
    if (ctx.global.json) {
      ctx.out.json(read.map(({ label, value }) => ({ device: label, rows: value === undefined ? null : value.rows.map((r) => jsonRow(r, showKeys)) })));
      return ExitCode.ok;
    }
    const text = (t: Table | undefined): string[] => (t === undefined ? [] : (showKeys ? t.toString() : t.redacted()).split('\n'));
    if (named.length === 1) for (const line of text(read[0]?.value)) ctx.out.line(line);
    else {
      for (const { label, value } of read) {
        const lines = text(value);
        if (lines.length === 0) ctx.out.line(`${label}:`);
        for (const line of lines) ctx.out.line(`${label}: ${line}`);
      }
    }
    return ExitCode.ok;
  },
});

/** `devmapper deps`. */
export const deps = defineVerb({
  name: 'deps',
  summary: "List the devices a device's table uses",
  usage: '[NAME | MAJOR:MINOR]...',
  description: `One device: "MAJOR:MINOR" a line. Several, or none named (every device): "NAME: MAJOR:MINOR ..."
lines. JSON: [{ "device", "deps": [{ "major", "minor" }, ...] }, ...].`,
  options: {
    ...SELECT_OPTIONS,
    inactive: { type: 'boolean', help: "the inactive table's devices" },
  },
  positionals: { min: 0, max: Infinity },
  async run(ctx) {
    const named = someDevices(ctx, ctx.options);
    const dm = ctx.syncClient();
    const read = eachDevice(devicesOf(dm, named), (id): DevNumber[] => dm.deps(id, { inactive: ctx.options.inactive === true }));
    if (ctx.global.json) {
      ctx.out.json(read.map(({ label, value }) => ({ device: label, deps: value })));
      return ExitCode.ok;
    }
    const dev = (d: DevNumber): string => `${d.major}:${d.minor}`;
    if (named.length === 1) for (const d of read[0]?.value ?? []) ctx.out.line(dev(d));
    else for (const { label, value } of read) ctx.out.line(`${label}:${value.map((d) => ` ${dev(d)}`).join('')}`);
    return ExitCode.ok;
  },
});
