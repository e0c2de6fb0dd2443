/**
 * `devmapper stats create|delete|list|print|clear`: dm-stats regions and their counters, over
 * the `@stats_*` messages of ts/stats.ts.
 * @packageDocumentation
 */
import type { DevId } from '../../dev';
import { parseStatsList, parseStatsPrint, parseStatsRegionId, statsMessages, type StatsArea, type StatsCreateOptions, type StatsRegion } from '../../stats';
import type { DeviceMapperSync } from '../../sync';
import { eachDevice } from '../args';
import { ExitCode, defineVerb, subcommandOf, type VerbContext } from '../verb';

const SUBCOMMANDS = {
  create: { operands: 'NAME', min: 1, max: 1, options: ['start', 'length', 'areas', 'area-size', 'precise', 'histogram', 'program-id', 'aux-data'] },
  delete: { operands: 'NAME REGION', min: 2, max: 2, options: [] },
  list: { operands: '[NAME]', min: 0, max: 1, options: ['program-id'] },
  print: { operands: 'NAME [REGION]', min: 1, max: 2, options: ['clear'] },
  clear: { operands: 'NAME REGION', min: 2, max: 2, options: [] },
} as const;

const OPTIONS = {
  start: { type: 'string', value: 'SECTOR', help: 'create: the first sector counted (with --length; default: all of it)' },
  length: { type: 'string', value: 'SECTORS', help: 'create: the sectors counted (with --start)' },
  areas: { type: 'string', value: 'N', help: 'create: cut the region into N areas (default 1)' },
  'area-size': { type: 'string', value: 'SECTORS', help: 'create: cut the region into areas of this size' },
  precise: { type: 'boolean', help: 'create: times in nanoseconds (precise_timestamps)' },
  histogram: { type: 'string', value: 'B1,B2..', help: 'create: latency histogram boundaries, ascending (ms; ns with --precise)' },
  'program-id': { type: 'string', value: 'ID', help: "create: the owner's program id; list: only its regions" },
  'aux-data': { type: 'string', value: 'TEXT', help: 'create: auxiliary data kept with the region' },
  clear: { type: 'boolean', help: 'print: clear the counters printed, atomically (@stats_print_clear)' },
} as const;

function whole(ctx: VerbContext, flag: string, text: string, min: number): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text)) || Number(text) < min) throw ctx.usageError(`${flag} expects a whole number of at least ${min}, got ${JSON.stringify(text)}`);
  return Number(text);
}

function createOptions(ctx: VerbContext<typeof OPTIONS>): StatsCreateOptions {
  const o = ctx.options;
  const options: StatsCreateOptions = {};
  if ((o.start === undefined) !== (o.length === undefined)) throw ctx.usageError('--start and --length go together');
  if (o.start !== undefined && o.length !== undefined) options.range = { start: whole(ctx, '--start', o.start, 0), length: whole(ctx, '--length', o.length, 1) };
  if (o.areas !== undefined && o['area-size'] !== undefined) throw ctx.usageError('--areas and --area-size cannot be used together');
  if (o.areas !== undefined) options.step = { areas: whole(ctx, '--areas', o.areas, 1) };
  if (o['area-size'] !== undefined) options.step = { areaSize: whole(ctx, '--area-size', o['area-size'], 1) };
  if (o.precise === true) options.preciseTimestamps = true;
  if (o.histogram !== undefined) options.histogram = o.histogram.split(',').map((b) => whole(ctx, '--histogram', b, 1));
  if (o['program-id'] !== undefined) options.programId = o['program-id'];
  if (o['aux-data'] !== undefined) options.auxData = o['aux-data'];
  return options;
}

function listOf(dm: DeviceMapperSync, id: DevId, programId: string | undefined): StatsRegion[] {
  return parseStatsList(dm.message(id, statsMessages.list(programId), { repeatable: true }));
}

const LIST_COLUMNS = [
  { heading: 'Name' },
  { heading: 'RgID', align: 'right' },
  { heading: 'RStart', align: 'right' },
  { heading: 'RSize', align: 'right' },
  { heading: 'ASize', align: 'right' },
  { heading: 'ProgID' },
  { heading: 'AuxData' },
] as const;

function listRow(name: string, r: StatsRegion): string[] {
  return [name, String(r.regionId), String(r.start), String(r.length), String(r.areaSize), r.programId ?? '-', r.auxData ?? '-'];
}

const PRINT_COLUMNS = [
  { heading: 'RgID', align: 'right' },
  { heading: 'Area' },
  { heading: 'Reads', align: 'right' },
  { heading: 'RMrg', align: 'right' },
  { heading: 'RSect', align: 'right' },
  { heading: 'RTime', align: 'right' },
  { heading: 'Writes', align: 'right' },
  { heading: 'WMrg', align: 'right' },
  { heading: 'WSect', align: 'right' },
  { heading: 'WTime', align: 'right' },
  { heading: 'InFl', align: 'right' },
  { heading: 'IOTime', align: 'right' },
  { heading: 'WIOTime', align: 'right' },
] as const;

function printRow(region: number, a: StatsArea): string[] {
  return [String(region), `${a.start}+${a.length}`, ...[a.reads, a.readsMerged, a.sectorsRead, a.readTime, a.writes, a.writesMerged, a.sectorsWritten, a.writeTime, a.inFlight, a.ioTime, a.weightedIoTime].map(String)];
}

/**
 * The regions of every device, each read by the name it is listed under (never by its number,
 * which the kernel hands to the next device at once); a device removed meanwhile is left out.
 */
function everyDevice(dm: DeviceMapperSync, programId: string | undefined): { name: string; regions: StatsRegion[] }[] {
  const listed = dm.listDevices().map((d) => ({ id: { name: d.name }, label: d.name, listed: true }));
  return eachDevice(listed, (id) => listOf(dm, id, programId)).map((d) => ({ name: d.label, regions: d.value }));
}

/** `devmapper stats`. */
export const stats = defineVerb({
  name: 'stats',
  summary: 'dm-stats: create, delete, list, print and clear I/O statistics regions',
  usage: 'create|delete|list|print|clear [NAME] [REGION]',
  description: [
    '  stats create NAME [--start S --length L] [--areas N | --area-size S] [--precise]',
    '               [--histogram B,..] [--program-id ID] [--aux-data TEXT]   prints the region id',
    '  stats delete NAME REGION',
    '  stats list [NAME] [--program-id ID]      every device\'s regions without NAME',
    '  stats print NAME [REGION] [--clear]      every region\'s areas without REGION',
    '  stats clear NAME REGION',
    'JSON: create { "regionId" }; list [{ "name", "regions": [...] }];',
    'print [{ "regionId", "areas": [...] }].',
  ].join('\n'),
  options: OPTIONS,
  positionals: { min: 1, max: 3 },
  async run(ctx) {
    const sub = subcommandOf(ctx, 'stats', SUBCOMMANDS);
    // Opened once the arguments are checked: a usage error sends nothing.
    const client = (): DeviceMapperSync => ctx.syncClient();
    const region = (): number => whole(ctx, 'REGION', ctx.args[2] ?? '', 0);
    switch (sub) {
      case 'create': {
        const message = statsMessages.create(createOptions(ctx));
        const regionId = parseStatsRegionId(client().message(ctx.device(1), message));
        if (ctx.global.json) ctx.out.json({ regionId });
        else ctx.out.line(String(regionId));
        return ExitCode.ok;
      }
      case 'delete':
      case 'clear': {
        const regionId = region();
        const message = sub === 'delete' ? statsMessages.delete(regionId) : statsMessages.clear(regionId);
        client().message(ctx.device(1), message);
        if (ctx.global.json) ctx.out.json(sub === 'delete' ? { regionId, deleted: true } : { regionId, cleared: true });
        return ExitCode.ok;
      }
      case 'list': {
        const programId = ctx.options['program-id'];
        if (programId !== undefined) statsMessages.list(programId);
        const dm = client();
        const all = ctx.args.length === 2 ? [{ name: ctx.args[1] ?? '', regions: listOf(dm, ctx.device(1), programId) }] : everyDevice(dm, programId);
        if (ctx.global.json) ctx.out.json(all);
        else ctx.out.table(LIST_COLUMNS, all.flatMap((d) => d.regions.map((r) => listRow(d.name, r))));
        return ExitCode.ok;
      }
      case 'print': {
        const id = ctx.device(1);
        const wanted = ctx.args.length === 3 ? region() : undefined;
        const dm = client();
        const ids = wanted === undefined ? listOf(dm, id, undefined).map((r) => r.regionId) : [wanted];
        const printed = ids.map((regionId) => ({
          regionId,
          areas: parseStatsPrint(dm.message(id, ctx.options.clear === true ? statsMessages.printClear(regionId) : statsMessages.print(regionId), ctx.options.clear === true ? {} : { repeatable: true })),
        }));
        if (ctx.global.json) ctx.out.json(printed);
        else ctx.out.table(PRINT_COLUMNS, printed.flatMap((p) => p.areas.map((a) => printRow(p.regionId, a))));
        return ExitCode.ok;
      }
    }
  },
});
