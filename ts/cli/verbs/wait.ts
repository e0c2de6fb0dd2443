/**
 * `devmapper wait NAME [EVENT_NR]` and `devmapper watch [NAME...]`: a device's events, one
 * wait (DM_DEV_WAIT) or a stream of them (DM_DEV_ARM_POLL).
 * @packageDocumentation
 */
import { formatDev } from '../../dev';
import type { DeviceEvent } from '../../client';
import { ExitCode, defineVerb } from '../verb';

function eventNumber(text: string | undefined, usage: (m: string) => Error): number {
  if (text === undefined) return 0;
  if (!/^\d+$/.test(text) || Number(text) > 0xffffffff) throw usage(`EVENT_NR expects a whole number from 0 to 4294967295, got ${JSON.stringify(text)}`);
  return Number(text);
}

/** `devmapper wait`. */
export const wait = defineVerb({
  name: 'wait',
  summary: "Wait until a device's event counter moves past EVENT_NR",
  usage: 'NAME [EVENT_NR]',
  description: [
    'Like dmsetup wait: sleeps until the event counter of NAME (or major:minor) is other than',
    'EVENT_NR (default 0: until the first event, at once if there was one), then prints the',
    'counter. JSON: { "name", "eventNr" }. Ends with status 130 on SIGINT.',
  ].join('\n'),
  options: {},
  positionals: { min: 1, max: 2 },
  async run(ctx) {
    const nr = eventNumber(ctx.args[1], (m) => ctx.usageError(m));
    const id = ctx.device(0);
    const dm = await ctx.client();
    const info = await dm.waitEvent(id, nr, { signal: ctx.signal });
    if (ctx.global.json) ctx.out.json({ name: info.name, eventNr: info.eventNr });
    else ctx.out.line(String(info.eventNr));
    return ExitCode.ok;
  },
});

/** `devmapper watch`. */
export const watch = defineVerb({
  name: 'watch',
  summary: 'Print device events as they happen, until interrupted',
  usage: '[NAME...]',
  description: [
    'One line per event of every device (or of the devices NAME...): "NAME EVENT_NR MAJOR:MINOR".',
    'JSON: one line per event, { "name", "uuid"?, "dev": { "major", "minor" }, "eventNr" }.',
    'Runs until SIGINT or SIGTERM (status 130).',
  ].join('\n'),
  options: {},
  positionals: { min: 0, max: Infinity },
  async run(ctx) {
    for (const name of ctx.args) if (name === '') throw ctx.usageError('NAME must not be empty');
    const names = new Set(ctx.args);
    const dm = await ctx.client();
    const show = (ev: DeviceEvent): void => {
      if (ctx.global.json) ctx.out.jsonLine(ev);
      else ctx.out.line(`${ev.name} ${ev.eventNr} ${formatDev(ev.dev)}`);
    };
    for await (const ev of dm.watch({ signal: ctx.signal })) {
      if (names.size === 0 || names.has(ev.name) || names.has(formatDev(ev.dev))) show(ev);
    }
    return ExitCode.interrupted;
  },
});
