/**
 * `devmapper wait-sync NAME [--timeout S]`: waits for a device's long-running kernel job to
 * end (a raid or mirror sync, a snapshot merge, a cache cleaning, a clone's hydration, an
 * integrity recalculation), with a progress bar on a terminal.
 * @packageDocumentation
 */
import { DmError } from '../../errors';
import type { StatusRow } from '../../status';
import { DEFAULT_PROGRESS_INTERVAL, waitForState } from '../../workflows/one-row';
import { ProgressBar, deviceSyncState, type SyncState } from '../progress';
import { CliError, ExitCode, defineVerb } from '../verb';

/** The longest wait `setTimeout` and the waits take (about 24.8 days): "no timeout". */
const FOREVER_MS = 0x7fffffff;
const LABELS: Readonly<Record<SyncState['kind'], string>> = {
  'raid-sync': 'sync',
  'mirror-sync': 'sync',
  'snapshot-merge': 'merge',
  'cache-clean': 'clean',
  'clone-hydration': 'hydrate',
  'integrity-recalculation': 'recalc',
};

type Reading = { readonly rows: readonly StatusRow[]; readonly total: SyncState; readonly each: readonly (SyncState | undefined)[] };

/** `devmapper wait-sync`. */
export const waitSync = defineVerb({
  name: 'wait-sync',
  summary: 'Wait for a sync, merge or cleaning to finish, with a progress bar on a terminal',
  usage: 'NAME',
  description: [
    "Follows NAME's status until its long-running job is over: a raid or mirror sync (in sync,",
    'no sync action running), a snapshot merge (no data left to merge), a cache cleaning (no',
    'dirty block: load the cleaner policy first), a clone hydration, an integrity recalculation.',
    'The status is read at each device event and every second. On a terminal a progress bar is',
    'drawn on stdout; piped, nothing is printed. JSON: the last state and the status rows.',
    'Exit status: 0 done; 1 the job failed or --timeout passed; 2 NAME runs no such job.',
  ].join('\n'),
  options: {
    timeout: { type: 'string', value: 'S', help: 'give up after S seconds (exit status 1)' },
  },
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    let timeout = FOREVER_MS;
    const t = ctx.options.timeout;
    if (t !== undefined) {
      if (!/^\d+$/.test(t) || Number(t) < 1 || Number(t) * 1000 > FOREVER_MS) throw ctx.usageError(`--timeout expects whole seconds from 1 to ${Math.floor(FOREVER_MS / 1000)}, got ${JSON.stringify(t)}`);
      timeout = Number(t) * 1000;
    }
    const id = ctx.device(0);
    const dm = await ctx.client();
    const info = await dm.info(id);
    let first: readonly (SyncState | undefined)[] | undefined;
    const read = async (): Promise<Reading> => {
      const rows = await dm.status(id);
      const s = deviceSyncState(rows, first);
      if (s === undefined) throw ctx.usageError(`${info.name} runs nothing to wait for (its targets: ${rows.map((r) => r.type).join(', ') || 'no table'})`);
      first ??= s.rows;
      if (s.total.failure !== undefined) throw new CliError(`${info.name}: ${s.total.failure}`);
      return { rows, total: s.total, each: s.rows };
    };
    const start = await read();
    const bar = ctx.global.json ? undefined : new ProgressBar(ctx.io.stdout, `${info.name} ${LABELS[start.total.kind]}`);
    bar?.update(start.total.ratio, start.total.text);
    let last = start;
    try {
      last = await waitForState(dm, id, info.name, info.dev, read, (r) => r.total.done, (r) => `${r.total.ratio} ${r.total.text}`, {
        timeout,
        signal: ctx.signal,
        progressInterval: DEFAULT_PROGRESS_INTERVAL,
        // Also what makes the wait read the status between events: a merge raises none as it goes.
        onProgress: (r) => {
          last = r;
          bar?.update(r.total.ratio, r.total.text);
        },
      }, LABELS[start.total.kind]);
    } catch (e) {
      if (bar?.drawn === true) ctx.io.stdout.write('\n');
      if (e instanceof DmError && e.code === 'ETIMEDOUT') throw new CliError(`${info.name}: not done after ${timeout / 1000} s (${last.total.text})`);
      throw e;
    }
    bar?.finish(1, last.total.text);
    if (ctx.global.json) ctx.out.json({ name: info.name, ...last.total, rows: last.rows });
    return ExitCode.ok;
  },
});
