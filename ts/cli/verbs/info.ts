/**
 * `devmapper info`: what the kernel says of one, several or every device (DM_DEV_STATUS), as
 * an aligned table like `dmsetup info -c`.
 * @packageDocumentation
 */
import type { DeviceInfo } from '../../client';
import { DmError } from '../../errors';
import { SELECT_OPTIONS, someDevices } from '../args';
import type { Column } from '../output';
import { ExitCode, UsageError, defineVerb } from '../verb';

/** A column of `devmapper info`: its field name (dmsetup's), heading, alignment and value. */
interface Field {
  readonly column: Column;
  readonly value: (info: DeviceInfo) => string;
}

/** `L` live table, `I` inactive table, `s` suspended, `r`/`w` read-only or read-write (dmsetup's Stat). */
export function infoAttr(info: DeviceInfo): string {
  return `${info.activeTable ? 'L' : '-'}${info.inactiveTable ? 'I' : '-'}${info.suspended ? 's' : '-'}${info.readOnly ? 'r' : 'w'}`;
}

/** The fields `-o` takes, by dmsetup's names. */
export const INFO_FIELDS: Readonly<Record<string, Field>> = {
  name: { column: { heading: 'Name' }, value: (i) => i.name },
  major: { column: { heading: 'Maj', align: 'right' }, value: (i) => String(i.dev.major) },
  minor: { column: { heading: 'Min', align: 'right' }, value: (i) => String(i.dev.minor) },
  attr: { column: { heading: 'Stat' }, value: infoAttr },
  open: { column: { heading: 'Open', align: 'right' }, value: (i) => String(i.openCount) },
  segments: { column: { heading: 'Targ', align: 'right' }, value: (i) => String(i.targetCount) },
  events: { column: { heading: 'Event', align: 'right' }, value: (i) => String(i.eventNr) },
  uuid: { column: { heading: 'UUID' }, value: (i) => i.uuid },
  dev: { column: { heading: 'Dev' }, value: (i) => `${i.dev.major}:${i.dev.minor}` },
  path: { column: { heading: 'Path' }, value: (i) => i.path },
  deferred: { column: { heading: 'Deferred' }, value: (i) => (i.deferredRemove ? 'yes' : 'no') },
};

const DEFAULT_FIELDS = ['name', 'major', 'minor', 'attr', 'open', 'segments', 'events', 'uuid'];

/** `devmapper info`. */
export const info = defineVerb({
  name: 'info',
  summary: 'Show devices: name, number, state, open count, targets, event number, uuid',
  usage: '[NAME | MAJOR:MINOR]...',
  description: `Without NAME: every device, by name. Stat: L live table, I inactive table, s suspended,
r/w read-only or read-write.
Fields for -o (dmsetup's names): ${Object.keys(INFO_FIELDS).join(',')}
(default ${DEFAULT_FIELDS.join(',')}).
JSON: an array of the library's DeviceInfo objects, one per device.`,
  options: {
    ...SELECT_OPTIONS,
    columns: { type: 'boolean', short: 'c', help: 'columns (the default; accepted as dmsetup takes it)' },
    fields: { type: 'string', short: 'o', value: 'FIELD,...', help: 'the columns to show, in order' },
    noheadings: { type: 'boolean', help: 'no headings row' },
    separator: { type: 'string', value: 'SEP', help: 'join the columns with SEP instead of aligning them' },
    inactive: { type: 'boolean', help: "count the inactive table's targets" },
  },
  positionals: { min: 0, max: Infinity },
  async run(ctx) {
    const names = (ctx.options.fields ?? DEFAULT_FIELDS.join(',')).split(',').map((f) => f.trim());
    const fields = names.map((n) => {
      const field = INFO_FIELDS[n];
      if (field === undefined) throw new UsageError(`unknown field ${JSON.stringify(n)} (fields: ${Object.keys(INFO_FIELDS).join(', ')})`, 'info');
      return field;
    });
    const selected = someDevices(ctx, ctx.options);
    const dm = ctx.syncClient();
    const options = { inactive: ctx.options.inactive === true };
    const infos: DeviceInfo[] = [];
    if (selected.length > 0) for (const s of selected) infos.push(dm.info(s.id, options));
    else {
      for (const d of dm.listDevices().sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
        try {
          infos.push(dm.info({ dev: d.dev }, options));
        } catch (e) {
          if (!(e instanceof DmError && e.code === 'ENXIO')) throw e; // removed since the list
        }
      }
    }
    if (ctx.global.json) {
      ctx.out.json(infos);
      return ExitCode.ok;
    }
    const rows = infos.map((i) => fields.map((f) => f.value(i)));
    if (ctx.options.separator !== undefined) {
      if (ctx.options.noheadings !== true) ctx.out.line(fields.map((f) => f.column.heading).join(ctx.options.separator));
      for (const row of rows) ctx.out.line(row.join(ctx.options.separator));
    } else ctx.out.table(fields.map((f) => f.column), rows, { headings: ctx.options.noheadings !== true });
    return ExitCode.ok;
  },
});
