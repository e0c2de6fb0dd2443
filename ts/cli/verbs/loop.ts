/**
 * `devmapper loop attach|detach|ls|refresh`: loop devices (over ts/loop.ts: LOOP_CONFIGURE,
 * LOOP_CLR_FD, LOOP_SET_CAPACITY; no losetup).
 * @packageDocumentation
 */
import { formatDev } from '../../dev';
import { LoopDevice, listLoopDevices, type LoopAttachOptions, type LoopStatus } from '../../loop';
import { ExitCode, defineVerb, subcommandOf, type VerbContext } from '../verb';

const SUBCOMMANDS = {
  attach: { operands: 'FILE', min: 1, max: 1, options: ['readonly', 'offset', 'sizelimit'] },
  detach: { operands: 'DEV', min: 1, max: 1, options: [] },
  ls: { operands: '', min: 0, max: 0, options: [] },
  refresh: { operands: 'DEV', min: 1, max: 1, options: [] },
} as const;

const OPTIONS = {
  readonly: { type: 'boolean', short: 'r', help: 'attach: a read-only device' },
  offset: { type: 'string', short: 'o', value: 'BYTES', help: 'attach: where in FILE the device starts' },
  sizelimit: { type: 'string', value: 'BYTES', help: 'attach: the device\'s size (default: to the end of FILE)' },
} as const;

function bytes(ctx: VerbContext, flag: string, text: string): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) throw ctx.usageError(`${flag} expects a whole number of bytes, got ${JSON.stringify(text)}`);
  return Number(text);
}

function devicePath(ctx: VerbContext, text: string): string {
  // `loop3` and `/dev/loop3` name the same device; nothing else is a loop device's name.
  const m = /^(?:\/dev\/)?loop(\d+)$/.exec(text);
  if (m === null) throw ctx.usageError(`DEV expects a loop device (/dev/loopN or loopN), got ${JSON.stringify(text)}`);
  return `/dev/loop${m[1] ?? ''}`;
}

function statusJson(path: string, s: LoopStatus): Record<string, unknown> {
  return { path, ...s, backingDev: formatDev(s.backingDev) };
}

/** `devmapper loop`. */
export const loop = defineVerb({
  name: 'loop',
  summary: 'Loop devices: attach a file, detach, list, refresh the size',
  usage: 'attach FILE | detach DEV | ls | refresh DEV',
  refusesGlobals: ['udev', 'control'],
  description: [
    '  loop attach FILE [--readonly] [--offset BYTES] [--sizelimit BYTES]   prints /dev/loopN',
    '  loop detach DEV       unbinds DEV (/dev/loopN or loopN), only from the file bound now',
    '  loop ls               the bound loop devices, as losetup --list shows them',
    '  loop refresh DEV      picks up a change in the backing file\'s size (LOOP_SET_CAPACITY)',
    'JSON: attach and ls give the devices\' status',
    '({ path, number, fileName, offset, sizeLimit, readOnly, ... }).',
  ].join('\n'),
  options: OPTIONS,
  positionals: { min: 1, max: 2 },
  async run(ctx) {
    const sub = subcommandOf(ctx, 'loop', SUBCOMMANDS);
    const operand = ctx.args[1] ?? '';
    switch (sub) {
      case 'attach': {
        const options: LoopAttachOptions = {};
        if (ctx.options.readonly === true) options.readOnly = true;
        if (ctx.options.offset !== undefined) options.offset = bytes(ctx, '--offset', ctx.options.offset);
        if (ctx.options.sizelimit !== undefined) options.sizeLimit = bytes(ctx, '--sizelimit', ctx.options.sizelimit);
        const dev = await LoopDevice.attach(operand, options);
        if (!ctx.global.json) {
          ctx.out.line(dev.path);
          return ExitCode.ok;
        }
        // The device is attached: if its status cannot be read, its path is still printed.
        let status: Awaited<ReturnType<LoopDevice['status']>>;
        try {
          status = await dev.status();
        } catch (e) {
          ctx.out.json({ path: dev.path });
          throw e;
        }
        ctx.out.json(statusJson(dev.path, status));
        return ExitCode.ok;
      }
      case 'detach': {
        const path = devicePath(ctx, operand);
        await (await LoopDevice.open(path)).detach();
        if (ctx.global.json) ctx.out.json({ path, detached: true });
        return ExitCode.ok;
      }
      case 'refresh': {
        const path = devicePath(ctx, operand);
        await (await LoopDevice.open(path)).refreshCapacity();
        if (ctx.global.json) ctx.out.json({ path, refreshed: true });
        return ExitCode.ok;
      }
      case 'ls': {
        const all = await listLoopDevices();
        if (ctx.global.json) ctx.out.json(all.map((d) => statusJson(d.path, d)));
        else {
          ctx.out.table(
            [{ heading: 'NAME' }, { heading: 'SIZELIMIT', align: 'right' }, { heading: 'OFFSET', align: 'right' }, { heading: 'RO', align: 'right' }, { heading: 'BACK-FILE' }],
            all.map((d) => [d.path, String(d.sizeLimit), String(d.offset), d.readOnly ? '1' : '0', d.fileName]),
          );
        }
        return ExitCode.ok;
      }
    }
  },
});
