/**
 * `devmapper status [NAME] [--target TYPE] [--raw]`: the targets' statuses, typed and readable
 * (`--raw`: as `dmsetup status` prints them; `--json`: the typed status rows).
 * @packageDocumentation
 */
import type { DevId } from '../../dev';
import type { StatusRow } from '../../status';
import type { DeviceMapperSync } from '../../sync';
import type { Target } from '../../targets/index';
import { statusRowRaw, statusRowText } from '../status-text';
import type { Output } from '../output';
import { ExitCode, defineVerb } from '../verb';

const TYPE_WORD = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

function rowsOf(dm: DeviceMapperSync, id: DevId, options: { inactive: boolean; noFlush: boolean }, type: string | undefined): StatusRow[] {
  const rows = dm.status(id, options);
  return type === undefined ? rows : rows.filter((r) => r.type === type);
}

/** The types whose text adds what only the table says: a thin pool's block size, multipath's queue_if_no_path. */
const TABLE_TYPES = new Set(['thin-pool', 'multipath']);

/**
 * The table's targets by row start, read only when a row is of a type that uses them (a
 * table can hold a key, crypt's, which this verb has no reason to read).
 */
function targetsOf(dm: DeviceMapperSync, id: DevId, inactive: boolean, rows: readonly StatusRow[]): Map<number, Target> {
  if (!rows.some((r) => TABLE_TYPES.has(r.type))) return new Map();
  // With DM_SECURE_DATA: a crypt row beside them brings its key, whose copies are then wiped.
  const table = dm.table(id, { inactive, secure: true });
  return new Map((table?.rows ?? []).map((r) => [r.start, r.target]));
}

function printRows(out: Output, rows: readonly StatusRow[], targets: Map<number, Target> | undefined, prefix: string, raw: boolean): void {
  for (const r of rows) out.line(raw ? `${prefix}${statusRowRaw(r)}` : `${prefix}${statusRowText(r, targets?.get(r.start))}`);
}

/** `devmapper status`. */
export const status = defineVerb({
  name: 'status',
  summary: "Print the targets' statuses, typed and readable",
  usage: '[NAME]',
  description: [
    'One device (NAME, or major:minor), or every device. Text: each row as "start length type",',
    'then its typed fields (sizes in sectors and binary units, used/total with percentages,',
    'health and sync state); a status the library cannot type is printed as the kernel gave it.',
    '--raw: one line a row as dmsetup status prints it ("NAME: " before it for every device).',
    'JSON: the typed status rows ([{ start, length, type, status }]); every device:',
    '[{ name, rows }].',
  ].join('\n'),
  options: {
    target: { type: 'string', value: 'TYPE', help: 'only the rows of this target type' },
    raw: { type: 'boolean', help: 'the kernel\'s status text, as dmsetup status prints it' },
    inactive: { type: 'boolean', help: 'the inactive table\'s status' },
    noflush: { type: 'boolean', help: 'do not commit the targets\' metadata first (thin-pool, cache)' },
  },
  positionals: { min: 0, max: 1 },
  async run(ctx) {
    const type = ctx.options.target;
    if (type !== undefined && !TYPE_WORD.test(type)) throw ctx.usageError(`--target expects a target type name, got ${JSON.stringify(type)}`);
    if (ctx.options.raw === true && ctx.global.json) throw ctx.usageError('--raw and --json cannot be used together');
    const options = { inactive: ctx.options.inactive === true, noFlush: ctx.options.noflush === true };
    const dm = ctx.syncClient();
    const readable = ctx.options.raw !== true && !ctx.global.json;
    if (ctx.args.length === 1) {
      const id = ctx.device(0);
      const rows = rowsOf(dm, id, options, type);
      if (ctx.global.json) ctx.out.json(rows);
      else printRows(ctx.out, rows, readable ? targetsOf(dm, id, options.inactive, rows) : undefined, '', !readable);
      return ExitCode.ok;
    }
    const devices = dm.listDevices().sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const all: { name: string; rows: StatusRow[] }[] = [];
    for (const d of devices) {
      // Read by the name it is listed under, never by its number: the kernel hands a removed
      // device's number to the next one at once, whose status would show under this name. A
      // device removed or renamed meanwhile is left out, also between its status and its table.
      const id: DevId = { name: d.name };
      let rows: StatusRow[];
      let targets: Map<number, Target> | undefined;
      try {
        rows = rowsOf(dm, id, options, type);
        targets = readable ? targetsOf(dm, id, options.inactive, rows) : undefined;
      } catch (e) {
        if (e instanceof Error && Reflect.get(e, 'code') === 'ENXIO') continue;
        throw e;
      }
      if (type !== undefined && rows.length === 0) continue;
      all.push({ name: d.name, rows });
      if (ctx.global.json) continue;
      if (ctx.options.raw === true) {
        if (rows.length === 0) ctx.out.line(`${d.name}: `);
        printRows(ctx.out, rows, undefined, `${d.name}: `, true);
      } else {
        ctx.out.line(ctx.out.bold(`${d.name}:`) + (rows.length === 0 ? ' no table' : ''));
        for (const r of rows) ctx.out.line(statusRowText(r, targets?.get(r.start)).split('\n').map((l) => `  ${l}`).join('\n'));
      }
    }
    if (ctx.global.json) ctx.out.json(all);
    else if (devices.length === 0) ctx.out.line('No devices found');
    return ExitCode.ok;
  },
});
