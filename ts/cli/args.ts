/**
 * Argument helpers shared by the verbs: which device an invocation names (an operand, or
 * `--uuid` / `--major` and `--minor`), whole numbers, and table text (from `--table`, a file,
 * or stdin), all checked before any ioctl; and a verb's act on several devices in turn.
 * @packageDocumentation
 */
import { readFile } from 'node:fs/promises';
import { parseDevNumber, type DevId } from '../dev';
import { DmError, DmParseError } from '../errors';
import { Table } from '../table';
import { UsageError, type VerbContext } from './verb';

/** The options that select a device other than by an operand (as dmsetup's -u, -j, -m). */
export const SELECT_OPTIONS = {
  uuid: { type: 'string', short: 'u', value: 'UUID', help: 'the device with this uuid (instead of NAME)' },
  major: { type: 'string', short: 'j', value: 'N', help: 'the device with this major number (with --minor; instead of NAME)' },
  minor: { type: 'string', short: 'm', value: 'N', help: 'the device with this minor number (with --major)' },
} as const;

/** The values of {@link SELECT_OPTIONS}. */
export interface SelectValues {
  readonly uuid?: string | undefined;
  readonly major?: string | undefined;
  readonly minor?: string | undefined;
}

/** A whole number written in decimal digits (no 0x10, 1e3, -1 or 12abc), at most `max`. */
export function wholeNumber(what: string, text: string, verb: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${what} expects a whole number, got ${JSON.stringify(text)}`, verb);
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n > max) throw new UsageError(`${what} expects a whole number up to ${max}, got ${text}`, verb);
  return n;
}

/** A device operand: `major:minor` names a device by number, anything else is a name. */
export function deviceOperand(text: string): DevId {
  const dev = parseDevNumber(text);
  return dev === undefined ? text : { dev };
}

/**
 * The name a device is to be given (create, rename): refused when it reads as `major:minor`,
 * since every verb takes such an operand for a device number, so the device could later only
 * be named by its uuid, and a `remove 253:5` meant for it would act on the device numbered so.
 */
export function newDeviceName(text: string, verb: string): string {
  if (parseDevNumber(text) !== undefined) {
    throw new UsageError(`the name ${JSON.stringify(text)} reads as a device number (major:minor): operands of that form name devices by number`, verb);
  }
  return text;
}

/** The device `--uuid` or `--major`/`--minor` select, when given. */
export function selectedDevice(values: SelectValues, verb: string): DevId | undefined {
  const byUuid = values.uuid !== undefined;
  const byNumber = values.major !== undefined || values.minor !== undefined;
  if (byUuid && byNumber) throw new UsageError('give either --uuid or --major and --minor, not both', verb);
  if (byUuid) return { uuid: values.uuid ?? '' };
  if (!byNumber) return undefined;
  if (values.major === undefined || values.minor === undefined) throw new UsageError('--major and --minor go together', verb);
  return { dev: { major: wholeNumber('--major', values.major, verb, 0xfff), minor: wholeNumber('--minor', values.minor, verb, 0xfffff) } };
}

/**
 * The one device an invocation names, and the operands after it: the device is `--uuid` or
 * `--major`/`--minor` when given (then every operand is the rest), else the first operand.
 * `rest` bounds the count of the other operands.
 */
export function oneDevice(
  ctx: VerbContext,
  values: SelectValues,
  rest: { min: number; max: number } = { min: 0, max: 0 },
): { id: DevId; label: string; rest: string[] } {
  const selected = selectedDevice(values, ctx.verb.name);
  const args = [...ctx.args];
  let id: DevId;
  let label: string;
  if (selected !== undefined) {
    id = selected;
    label = values.uuid !== undefined ? `uuid ${values.uuid}` : `${values.major ?? ''}:${values.minor ?? ''}`;
  } else {
    const first = args.shift();
    if (first === undefined) throw new UsageError('no device given (NAME, major:minor, --uuid or --major/--minor)', ctx.verb.name);
    id = deviceOperand(first);
    label = first;
  }
  if (args.length < rest.min || args.length > rest.max) {
    throw new UsageError(`expects ${ctx.verb.usage} (${args.length} operand${args.length === 1 ? '' : 's'} after the device)`, ctx.verb.name);
  }
  return { id, label, rest: args };
}

/**
 * The devices an invocation names: `--uuid` or `--major`/`--minor` (one device, no operand),
 * else each operand; none when neither (the verb then means every device).
 */
export function someDevices(ctx: VerbContext, values: SelectValues): { id: DevId; label: string }[] {
  const selected = selectedDevice(values, ctx.verb.name);
  if (selected !== undefined) {
    if (ctx.args.length > 0) throw new UsageError('--uuid or --major/--minor select the device: no NAME then', ctx.verb.name);
    return [{ id: selected, label: values.uuid !== undefined ? `uuid ${values.uuid}` : `${values.major ?? ''}:${values.minor ?? ''}` }];
  }
  return ctx.args.map((a) => ({ id: deviceOperand(a), label: a }));
}

/**
 * `act` on each device in turn, its results in order. The first failure stops: when several
 * devices were named, a warning first says which of them `act` was done to (`done`: 'removed',
 * 'suspended'...) and which were not tried, so that a script knows where things stand.
 */
export function actOnEach<T>(ctx: VerbContext, devices: readonly { id: DevId; label: string }[], done: string, act: (id: DevId) => T): T[] {
  const out: T[] = [];
  for (const [i, d] of devices.entries()) {
    try {
      out.push(act(d.id));
    } catch (e) {
      if (devices.length > 1) {
        const before = devices.slice(0, i).map((x) => x.label);
        const after = devices.slice(i + 1).map((x) => x.label);
        ctx.warn(`${before.length === 0 ? `none ${done}` : `${done} ${before.join(', ')}`} before ${d.label} failed; ${after.length === 0 ? 'no other was named' : `not tried: ${after.join(', ')}`}`);
      }
      throw e;
    }
  }
  return out;
}

/**
 * A table from its text, through `Table.parse`: rows one a line (blank lines and `#` comments
 * are left out). A text with no row, or one that does not parse, is a usage error.
 */
export function tableFromText(text: string, source: string, verb: string): Table {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  if (lines.length === 0) throw new UsageError(`the table from ${source} has no rows`, verb);
  try {
    return Table.parse(lines.join('\n'));
  } catch (e) {
    if (e instanceof DmParseError || e instanceof TypeError || e instanceof RangeError) throw new UsageError(`bad table from ${source}: ${e.message}`, verb);
    throw e;
  }
}

/** The table a create/load/reload is given: `--table TEXT`, else the FILE operand, else stdin. */
export async function tableInput(ctx: VerbContext, text: string | undefined, file: string | undefined): Promise<Table> {
  if (text !== undefined && file !== undefined) throw new UsageError('give the table either with --table or as FILE, not both', ctx.verb.name);
  if (text !== undefined) return tableFromText(text, '--table', ctx.verb.name);
  if (file !== undefined) {
    let content: string;
    try {
      content = file === '-' ? await ctx.readInput() : await readFile(file, 'utf8');
    } catch (e) {
      const code = e instanceof Error && 'code' in e && typeof e.code === 'string' ? e.code : 'error';
      throw new UsageError(`cannot read the table file ${file}: ${code}`, ctx.verb.name);
    }
    return tableFromText(content, file === '-' ? 'stdin' : file, ctx.verb.name);
  }
  return tableFromText(await ctx.readInput(), 'stdin', ctx.verb.name);
}


/** Runs `read` for each device; a listed device removed meanwhile is left out. */
export function eachDevice<T>(devices: { id: DevId; label: string; listed: boolean }[], read: (id: DevId) => T): { label: string; value: T }[] {
  const out: { label: string; value: T }[] = [];
  for (const d of devices) {
    try {
      out.push({ label: d.label, value: read(d.id) });
    } catch (e) {
      if (d.listed && e instanceof DmError && e.code === 'ENXIO') continue;
      throw e;
    }
  }
  return out;
}
