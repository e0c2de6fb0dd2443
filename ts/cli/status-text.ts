/**
 * The library's typed statuses as readable text, for the `devmapper status` verb: one
 * formatter per target type the library models (the table below is checked by the compiler
 * to cover every member of `KnownTargetStatus`), and the kernel's words for a status it could
 * not type. Pure: nothing here touches the kernel.
 */
import type { StatusRow } from '../status';
import { raidStateOf } from '../workflows/raid';
import { snapshotMergeLeft } from '../workflows/snapshot';
import type { KnownTargetStatus, MultipathTarget, RawTargetStatus, Target, TargetStatus, ThinPoolTarget, UsedTotal } from '../targets/index';

/** One line of a status's text: a label and its value. */
export type StatusField = readonly [label: string, value: string];

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

/** Bytes in binary units: `512 B`, `1 MiB`, `1.5 GiB` (one decimal, truncated, when not whole). */
export function humanBytes(bytes: number): string {
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  const text = Number.isInteger(v) ? String(v) : (Math.floor(v * 10) / 10).toFixed(1);
  return `${text} ${UNITS[u] ?? 'B'}`;
}

/** 512-byte sectors with their size: `2048 sectors (1 MiB)`. */
export function humanSectors(sectors: number): string {
  return `${sectors} ${sectors === 1 ? 'sector' : 'sectors'} (${humanBytes(sectors * 512)})`;
}

/**
 * The share `used` of `total` as a percentage with one decimal, truncated so that 100% means
 * done (`99.9%` while one block of 2000 is left); `-` when `total` is 0.
 */
export function percent(used: number, total: number): string {
  if (total === 0) return '-';
  return `${(Math.floor((used / total) * 1000) / 10).toFixed(1)}%`;
}

/** `used/total unit (p%)`, and the sizes when the unit's size in sectors is known. */
export function usedTotal(r: UsedTotal, unit: string, unitSectors?: number): string {
  const sizes = unitSectors === undefined ? '' : `, ${humanBytes(r.used * unitSectors * 512)} of ${humanBytes(r.total * unitSectors * 512)}`;
  return `${r.used}/${r.total} ${unit} (${percent(r.used, r.total)}${sizes})`;
}

function yesNo(b: boolean): string {
  return b ? 'yes' : 'no';
}

function extra(words: readonly string[]): StatusField[] {
  return words.length === 0 ? [] : [['more', words.join(' ')]];
}

type Formatter<S> = (status: S, target: Target | undefined) => StatusField[];
type Formatters = { readonly [K in KnownTargetStatus['type']]: Formatter<Extract<KnownTargetStatus, { type: K }>> };

function failedState(state: string, words: readonly string[]): StatusField[] {
  return [['state', state], ...extra(words)];
}

function isThinPoolTarget(t: Target | undefined): t is ThinPoolTarget {
  return t?.type === 'thin-pool' && 'blockSize' in t && typeof t.blockSize === 'number';
}

function isMultipathTarget(t: Target | undefined): t is MultipathTarget {
  return t?.type === 'multipath' && 'queueIfNoPath' in t && typeof t.queueIfNoPath === 'boolean';
}

const RAID_LETTER = { 'in-sync': 'A', 'out-of-sync': 'a', dead: 'D', missing: '-' } as const;
const MIRROR_LETTER = { alive: 'A', 'flush-failed': 'F', 'write-failed': 'D', 'sync-failed': 'S', 'read-failed': 'R', unclassified: 'U' } as const;

function snapshotFields(s: Extract<KnownTargetStatus, { type: 'snapshot' | 'snapshot-merge' }>): StatusField[] {
  if (s.state !== 'valid') return failedState(s.state, s.extra);
  const fields: StatusField[] = [
    ['state', 'valid'],
    ['cow used', `${s.usage.used}/${s.usage.total} sectors (${percent(s.usage.used, s.usage.total)}, ${humanBytes(s.usage.used * 512)} of ${humanBytes(s.usage.total * 512)})`],
    ['metadata', humanSectors(s.metadataSectors)],
  ];
  if (s.type === 'snapshot-merge') {
    const left = snapshotMergeLeft(s);
    fields.push(['merging', left === 0 ? 'done' : `${humanSectors(left)} left`]);
  }
  return [...fields, ...extra(s.extra)];
}

const FORMATTERS: Formatters = {
  linear: () => [],
  zero: () => [],
  error: () => [],
  'snapshot-origin': () => [],
  unstriped: () => [],
  crypt: (s) => extra(s.extra),
  ebs: (s) => extra(s.extra),
  flakey: (s) => extra(s.extra),
  switch: (s) => extra(s.extra),
  striped: (s) => [['stripes', s.stripes.map((x) => `${x.device} ${x.health}`).join(', ')], ...extra(s.extra)],
  delay: (s) => [['held back', `${s.reads} reads, ${s.writes} writes, ${s.flushes} flushes`], ...extra(s.extra)],
  dust: (s) => [
    ['device', s.device],
    ['mode', s.failReadOnBadBlock ? 'fail reads on bad blocks' : 'bypass (bad blocks not failed)'],
    ['logging', s.quiet ? 'quiet' : 'verbose'],
    ...extra(s.extra),
  ],
  'log-writes': (s) => [
    ['entries', String(s.loggedEntries)],
    ['log used to', humanSectors(s.highestSector)],
    ['logging', s.loggingEnabled ? 'enabled' : 'stopped (log device full or failed)'],
    ...extra(s.extra),
  ],
  integrity: (s) => [
    ['mismatches', String(s.mismatches)],
    ['data', humanSectors(s.providedDataSectors)],
    ['recalculating', s.recalculatingSector === null ? 'no' : `at sector ${s.recalculatingSector} (${percent(s.recalculatingSector, s.providedDataSectors)})`],
    ...extra(s.extra),
  ],
  verity: (s) => [
    ['verification', s.corrupted ? 'corruption found (C)' : 'valid so far (V)'],
    ...(s.fecCorrected === undefined ? [] : [['fec corrected', s.fecCorrected === null ? 'no FEC' : `${s.fecCorrected} blocks`] as const]),
    ...extra(s.extra),
  ],
  vdo: (s) => [
    ['volume', s.device],
    ['mode', s.operatingMode + (s.inRecovery ? ', recovering' : '')],
    ['index', s.indexState],
    ['compression', s.compressionState],
    ['physical', usedTotal(s.physicalBlocks, 'blocks', 8)],
    ...extra(s.extra),
  ],
  writecache: (s) => [
    ['error', s.error === 0 ? 'none' : String(s.error)],
    ['blocks', `${s.blocks - s.freeBlocks}/${s.blocks} in use (${percent(s.blocks - s.freeBlocks, s.blocks)}), ${s.freeBlocks} free, ${s.writebackBlocks} being written back`],
    ...(s.stats === undefined
      ? []
      : ([
          ['reads', `${s.stats.reads} (${s.stats.readHits} hits)`],
          ['writes', `${s.stats.writes} (${s.stats.writeHitsUncommitted} uncommitted hits, ${s.stats.writeHitsCommitted} committed hits, ${s.stats.writesAround} around, ${s.stats.writesAllocate} allocating, ${s.stats.writesBlockedOnFreelist} blocked on the free list)`],
          ['flushes', String(s.stats.flushes)],
          ['discards', String(s.stats.discards)],
        ] as const)),
    ...extra(s.extra),
  ],
  zoned: (s) => [
    ['zones', String(s.zones)],
    ...(s.cache === null ? [] : [['cache zones', `${s.cache.free}/${s.cache.total} free`] as const]),
    ...s.devices.map((d, i): StatusField => [`device ${i}`, `random ${d.random.free}/${d.random.total} free, sequential ${d.sequential.free}/${d.sequential.total} free`]),
    ...extra(s.extra),
  ],
  era: (s) =>
    s.failed !== false
      ? failedState(s.failed, s.extra)
      : [
          ['metadata', usedTotal(s.metadataBlocks, 'blocks', s.metadataBlockSize)],
          ['current era', String(s.currentEra)],
          ['held root', s.heldMetadataRoot === null ? 'none' : String(s.heldMetadataRoot)],
          ...extra(s.extra),
        ],
  clone: (s) =>
    s.failed !== false
      ? failedState(s.failed, s.extra)
      : [
          ['metadata', `${usedTotal(s.metadataBlocks, 'blocks', s.metadataBlockSize)}, ${s.metadataMode}`],
          ['hydrated', `${usedTotal(s.regions, 'regions', s.regionSize)}${s.regions.used === s.regions.total ? ', complete' : ''}`],
          ['hydrating', `${s.hydrating} regions now${s.noHydration ? ', background hydration off' : ''}`],
          ['hydration', `threshold ${s.hydrationThreshold}, batch ${s.hydrationBatchSize}`],
          ['discards', s.noDiscardPassdown ? 'not passed down' : 'passed down'],
          ...extra(s.extra),
        ],
  cache: (s) =>
    s.failed !== false
      ? failedState(s.failed, s.extra)
      : [
          ['metadata', `${usedTotal(s.metadataBlocks, 'blocks', s.metadataBlockSize)}, ${s.metadataMode}${s.needsCheck ? ', needs_check' : ''}${s.metadata2 ? ', metadata2' : ''}`],
          ['cache', usedTotal(s.cacheBlocks, 'blocks', s.cacheBlockSize)],
          ['dirty', `${s.dirty} blocks (${humanBytes(s.dirty * s.cacheBlockSize * 512)})`],
          ['reads', `${s.readHits} hits, ${s.readMisses} misses (${percent(s.readHits, s.readHits + s.readMisses)} hits)`],
          ['writes', `${s.writeHits} hits, ${s.writeMisses} misses (${percent(s.writeHits, s.writeHits + s.writeMisses)} hits)`],
          ['migrations', `${s.promotions} promotions, ${s.demotions} demotions, threshold ${humanSectors(s.migrationThreshold)}`],
          ['mode', `${s.mode}${s.discardPassdown ? '' : ', no discard passdown'}`],
          ['policy', [s.policy, ...Object.entries(s.policyArgs).map(([k, v]) => `${k}=${v}`)].join(' ')],
          ...extra(s.extra),
        ],
  'thin-pool': (s, target) => {
    if (s.failed !== false) return failedState(s.failed, s.extra);
    const blockSize = isThinPoolTarget(target) ? target.blockSize : undefined;
    return [
      ['transaction', String(s.transactionId)],
      ['data', usedTotal(s.data, 'blocks', blockSize)],
      ['metadata', usedTotal(s.metadata, 'blocks', 8)],
      ['mode', s.mode === 'rw' ? 'read-write' : s.mode === 'ro' ? 'read-only' : 'out of data space'],
      ['needs check', yesNo(s.needsCheck)],
      ['no space', s.noSpace === 'queue' ? 'queue writes' : 'error writes'],
      ['discards', s.discard.replaceAll('_', ' ')],
      ['held root', s.heldMetadataRoot === null ? 'none' : String(s.heldMetadataRoot)],
      ['low watermark', `${s.metadataLowWatermark} metadata blocks`],
      ...extra(s.extra),
    ];
  },
  thin: (s) =>
    s.failed !== false
      ? failedState(s.failed, s.extra)
      : [
          ['mapped', humanSectors(s.mappedSectors)],
          ['highest mapped', s.highestMappedSector === null ? 'none' : `sector ${s.highestMappedSector}`],
          ...extra(s.extra),
        ],
  mirror: (s) => [
    ['sync', `${usedTotal(s.regions, 'regions')}${s.regions.used === s.regions.total ? ', in sync' : ', syncing'}`],
    ['legs', s.legs.map((l) => `${l.device} ${MIRROR_LETTER[l.health]} (${l.health})`).join(', ')],
    ['log', s.log.type === 'core' ? 'core' : `disk ${s.log.device} ${s.log.health}`],
    ...extra(s.extra),
  ],
  raid: (s) => {
    const { used, total } = s.syncRatio;
    const { inSync, degraded } = raidStateOf(s);
    return [
      ['level', s.raidType],
      ['health', `${s.devices.map((d) => RAID_LETTER[d]).join('')} (${inSync ? 'in sync' : 'not in sync'}${degraded ? ', degraded' : ''})`],
      ['sync', `${used}/${total} sectors (${percent(used, total)}), action ${s.syncAction}`],
      ['mismatches', String(s.mismatchCount)],
      ['data offset', `sector ${s.dataOffset}`],
      ...(s.journal === 'none' ? [] : [['journal', s.journal] as const]),
      ...extra(s.extra),
    ];
  },
  multipath: (s, target) => {
    const fields: StatusField[] = [];
    if (isMultipathTarget(target)) fields.push(['queue if no path', yesNo(target.queueIfNoPath)]);
    fields.push(['queueing', s.queueIo ? 'I/O held (queue_io)' : 'no']);
    fields.push(['pg init count', String(s.pgInitCount)]);
    fields.push(['next group', s.nextGroup === 0 ? 'none' : String(s.nextGroup)]);
    s.groups.forEach((g, i) => {
      const active = g.paths.filter((p) => p.health === 'active').length;
      fields.push([`group ${i + 1}`, `${g.state}, ${active}/${g.paths.length} paths active`]);
      for (const p of g.paths) fields.push([`  path ${p.device}`, `${p.health}, ${p.failCount} ${p.failCount === 1 ? 'failure' : 'failures'}${p.inFlight === undefined ? '' : `, ${p.inFlight} in flight`}`]);
    });
    return [...fields, ...extra(s.extra)];
  },
  snapshot: snapshotFields,
  'snapshot-merge': snapshotFields,
};

function rawFields(s: RawTargetStatus): StatusField[] {
  return s.words.length === 0 ? [] : [['status', s.words.join(' ')]];
}

/**
 * A status as labelled lines: the typed fields of a type the library models (sizes in
 * sectors and binary units, used/total with percentages, health letters and their meaning),
 * or the kernel's words for a raw status. `target`, the row's typed table target when the
 * caller read it, adds what only the table says (a thin pool's block size, multipath's
 * `queue_if_no_path`).
 */
export function statusFields(status: TargetStatus, target?: Target): StatusField[] {
  if (!status.known) return rawFields(status);
  const format = FORMATTERS[status.type] as Formatter<KnownTargetStatus>;
  return format(status, target);
}

/**
 * A status row as text: a heading line (`start length type`, the length in human units too),
 * then one indented, aligned `label  value` line per field.
 */
export function statusRowText(row: StatusRow, target?: Target): string {
  const head = `${row.start} ${row.length} ${row.type} (${humanBytes(row.length * 512)})`;
  const fields = statusFields(row.status, target);
  const width = Math.max(0, ...fields.map(([label]) => label.length));
  return [head, ...fields.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`)].join('\n');
}

/** A status row as `dmsetup status` prints it: `start length type`, a space, and the kernel's text as it gave it. */
export function statusRowRaw(row: StatusRow): string {
  return `${row.start} ${row.length} ${row.type} ${row.status.raw}`;
}
