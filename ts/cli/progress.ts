/**
 * Progress for the command line's long waits: a bar redrawn in place on a terminal (silent
 * when the output is piped), and, from typed statuses, how far each kind of long-running
 * kernel job has got and whether it is done: a raid or mirror sync, a snapshot merge, a cache
 * cleaning, a clone's hydration, an integrity recalculation. The done predicates are the
 * recipes' own (`raidStateOf`, `mirrorStateOf`, `snapshotMergeLeft`). Pure: nothing here
 * touches the kernel.
 */
import type { StatusRow } from '../status';
import type { TargetStatus } from '../targets/index';
import { mirrorStateOf } from '../workflows/mirror';
import { raidStateOf } from '../workflows/raid';
import { snapshotMergeLeft } from '../workflows/snapshot';
import { percent } from './status-text';

/** Where a bar is drawn: a writable stream, a terminal when `isTTY` (then `columns` wide). */
export interface ProgressOutput {
  /** Writes text as it is. */
  write(text: string): unknown;
  /** True on a terminal: only then is the bar drawn. */
  readonly isTTY?: boolean;
  /** The terminal's width (80 when unknown). */
  readonly columns?: number;
}

const DEFAULT_COLUMNS = 80;
const MIN_BAR = 10;

/**
 * A progress bar fed by a ratio (0 to 1). On a terminal (`isTTY`) it is redrawn in place
 * (`\r`, cleared to the line's end) as wide as `columns`, and only when its text changes;
 * `finish` leaves it on its line. Anywhere else it writes nothing, unless `finalLine`: then
 * `finish` writes its last state once, as a plain line.
 */
export class ProgressBar {
  readonly #out: ProgressOutput;
  readonly #label: string;
  readonly #finalLine: boolean;
  #last = '';
  #ratio = 0;
  #text = '';
  #finished = false;

  /** A bar on `out`, `label` before it; `finalLine`: piped, `finish` writes one plain line. */
  constructor(out: ProgressOutput, label: string, options: { finalLine?: boolean } = {}) {
    this.#out = out;
    this.#label = label;
    this.#finalLine = options.finalLine === true;
  }

  /** True when the bar is drawn (the output is a terminal). */
  get drawn(): boolean {
    return this.#out.isTTY === true;
  }

  /** The bar's line for `ratio` and `text` at `columns` wide (no control characters). */
  static line(label: string, ratio: number, text: string, columns: number): string {
    const r = Number.isFinite(ratio) ? Math.min(1, Math.max(0, ratio)) : 0;
    const pct = percent(r, 1).padStart(6);
    const fixed = `${label} [] ${pct}`;
    const tail = text === '' ? '' : ` ${text}`;
    const room = columns - 1 - fixed.length;
    const width = Math.max(MIN_BAR, Math.min(40, room - Math.min(tail.length, Math.max(0, room - MIN_BAR))));
    const filled = Math.floor(r * width);
    const line = `${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${pct}${tail}`;
    return line.length > columns - 1 ? line.slice(0, Math.max(0, columns - 1)) : line;
  }

  /** Shows `ratio` done (clamped to 0..1) with a short `text` after the percentage. */
  update(ratio: number, text = ''): void {
    if (this.#finished) return;
    this.#ratio = ratio;
    this.#text = text;
    if (!this.drawn) return;
    const line = ProgressBar.line(this.#label, ratio, text, this.#columns());
    if (line === this.#last) return;
    this.#last = line;
    this.#out.write(`\r${line}\x1b[K`);
  }

  /** Ends the bar: on a terminal the last line stays and the cursor goes to the next one; piped, the final line if asked for. */
  finish(ratio = this.#ratio, text = this.#text): void {
    if (this.#finished) return;
    if (this.drawn) {
      this.update(ratio, text);
      this.#out.write('\n');
    } else if (this.#finalLine) {
      this.#out.write(`${ProgressBar.line(this.#label, ratio, text, Number.MAX_SAFE_INTEGER)}\n`);
    }
    this.#finished = true;
  }

  #columns(): number {
    const c = this.#out.columns;
    return typeof c === 'number' && Number.isInteger(c) && c > 0 ? c : DEFAULT_COLUMNS;
  }
}

/** The kinds of long-running kernel job a status can report. */
export type SyncKind = 'raid-sync' | 'mirror-sync' | 'snapshot-merge' | 'cache-clean' | 'clone-hydration' | 'integrity-recalculation';

/** How far one row's long-running job has got. */
export interface SyncState {
  /** What the job is. */
  readonly kind: SyncKind;
  /** The share done, 0 to 1 (for a merge or a cleaning: of what was left at the first read). */
  readonly ratio: number;
  /** The job is over: nothing is left to do. */
  readonly done: boolean;
  /** Why it can never finish (a merge failed, the cache failed), if so. */
  readonly failure: string | undefined;
  /** What is left, in the job's own unit (sectors to merge, dirty blocks); for ratios against the first read. */
  readonly left: number;
  /** A short text of the state (`resync 1024/8192`, `12 dirty blocks`). */
  readonly text: string;
}

function state(kind: SyncKind, ratio: number, done: boolean, left: number, text: string, failure?: string): SyncState {
  return { kind, ratio: done ? 1 : Math.min(1, Math.max(0, ratio)), done, failure, left, text };
}

/** The share done of a job that counts down from `first` (its first reading) to 0. */
function countdown(left: number, first: number | undefined): number {
  const from = first === undefined || first < left ? left : first;
  return from === 0 ? 1 : 1 - left / from;
}

/**
 * The long-running job a status reports, and how far it has got, or undefined when its
 * target runs none that can be waited for. `first`, the state read at the start of a wait,
 * makes the ratio of a countdown (a merge, a cleaning) relative to it.
 *
 * - raid: the sync action and ratio; done when no action runs, the ratio is complete and no
 *   leg is out of sync (the raid recipe's `inSync`).
 * - mirror: regions in sync; done when all are (the mirror recipe's `inSync`).
 * - snapshot-merge: data sectors left to merge; done at 0 (the snapshot recipe's own test);
 *   a state other than valid (`Merge failed`, `Invalid`) is a failure.
 * - cache: dirty blocks; done at 0 (they only reach 0 for sure on the `cleaner` policy); a
 *   failed cache is a failure.
 * - clone: regions hydrated; done when all are. integrity: the recalculation's sector; done
 *   when the device is no longer recalculating.
 */
export function syncStateOf(status: TargetStatus, first?: SyncState): SyncState | undefined {
  if (!status.known) return undefined;
  switch (status.type) {
    case 'raid': {
      const r = raidStateOf(status);
      return state('raid-sync', r.progress, r.inSync, r.syncRatio.total - r.syncRatio.used, `${r.syncAction} ${r.syncRatio.used}/${r.syncRatio.total}`);
    }
    case 'mirror': {
      const m = mirrorStateOf(status);
      return state('mirror-sync', m.progress, m.inSync, m.regions.total - m.regions.used, `${m.regions.used}/${m.regions.total} regions`);
    }
    case 'snapshot-merge': {
      if (status.state !== 'valid') return state('snapshot-merge', 0, false, 0, status.state, `merge stopped: ${status.state}`);
      const left = snapshotMergeLeft(status);
      return state('snapshot-merge', countdown(left, first?.left), left === 0, left, `${left} sectors left`);
    }
    case 'cache': {
      if (status.failed !== false) return state('cache-clean', 0, false, 0, status.failed, `the cache has failed (${status.failed})`);
      return state('cache-clean', countdown(status.dirty, first?.left), status.dirty === 0, status.dirty, `${status.dirty} dirty blocks, policy ${status.policy}`);
    }
    case 'clone': {
      if (status.failed !== false) return state('clone-hydration', 0, false, 0, status.failed, `the clone has failed (${status.failed})`);
      const { used, total } = status.regions;
      return state('clone-hydration', total === 0 ? 1 : used / total, used === total, total - used, `${used}/${total} regions`);
    }
    case 'integrity': {
      const at = status.recalculatingSector;
      const total = status.providedDataSectors;
      const done = at === null || at >= total;
      return state('integrity-recalculation', done || total === 0 ? 1 : at / total, done, done ? 0 : total - at, done ? 'recalculated' : `sector ${at}/${total}`);
    }
    default:
      return undefined;
  }
}

/**
 * The long-running jobs of a device's status rows, taken together: undefined when no row runs
 * one; else done when every row's is, the ratio weighted by the rows' lengths, the first
 * failure, and the rows' texts joined. `first`, the same from the wait's first read, makes
 * countdowns relative to it (rows matched by position).
 */
export function deviceSyncState(rows: readonly StatusRow[], first?: readonly (SyncState | undefined)[]): { readonly total: SyncState; readonly rows: readonly (SyncState | undefined)[] } | undefined {
  const each = rows.map((r, i) => syncStateOf(r.status, first?.[i]));
  let weight = 0;
  let done = 0;
  let left = 0;
  let failure: string | undefined;
  const texts: string[] = [];
  let kind: SyncKind | undefined;
  each.forEach((s, i) => {
    const row = rows[i];
    if (s === undefined || row === undefined) return;
    kind ??= s.kind;
    const w = Math.max(1, row.length);
    weight += w;
    done += s.ratio * w;
    left += s.left;
    failure ??= s.failure;
    texts.push(s.text);
  });
  if (kind === undefined) return undefined;
  const allDone = each.every((s) => s === undefined || s.done);
  return { total: { kind, ratio: allDone ? 1 : done / weight, done: allDone, failure, left, text: texts.join('; ') }, rows: each };
}
