import type { DeviceRef } from '../dev';
import { expected, expectedRange } from '../validate';
import { ArgReader, builderOptions, choice, device, freeze, integer, typedTarget } from './args';
import type { Target, TargetModule, TargetStatusBase } from './types';

/** The optional `<key> <value>` parameters of a vdo table, in the order they are formatted. */
export const VDO_OPTION_KEYS = ['ack', 'bio', 'bioRotationInterval', 'cpu', 'hash', 'logical', 'physical', 'maxDiscard', 'deduplication', 'compression'] as const;

/** Options of a vdo target (table version V4). */
export interface VdoOptions {
  /** `<storage device>`: the device holding the volume's data and metadata. */
  storage: DeviceRef;
  /** `<storage device size>`: the volume's storage, in 4096-byte blocks (must match the formatted volume). */
  storageBlocks: number;
  /** `<minimum I/O size>`: smallest I/O accepted, in bytes: 512 or 4096. */
  minimumIoSize: 512 | 4096;
  /** `<block map cache size>`: in 4096-byte blocks (at least 32768). */
  blockMapCacheBlocks: number;
  /** `<block map era length>`: how fast the block map cache writes out modified pages, a count of block map writes (1 to 16380; smaller: faster rebuilds, more writes). */
  blockMapEraLength: number;
  /** `ack <n>`: a count of threads completing bios (1 to 100, default 1). */
  ack?: number;
  /** `bio <n>`: a count of threads issuing bios to the storage (1 to 100, default 4). */
  bio?: number;
  /** `bioRotationInterval <n>`: bios queued on each bio thread before moving to the next (1 to 1024, default 64). */
  bioRotationInterval?: number;
  /** `cpu <n>`: a count of threads hashing and compressing (1 to 100, default 1). */
  cpu?: number;
  /** `hash <n>`: a count of threads comparing data for deduplication (0 to 100, default 0). */
  hash?: number;
  /** `logical <n>`: a count of threads of the logical address space (default 0, at most 60). */
  logical?: number;
  /** `physical <n>`: a count of threads of the physical storage (default 0, at most 16). */
  physical?: number;
  /** `maxDiscard <n>`: largest discard accepted, in 4096-byte blocks (default 1). */
  maxDiscard?: number;
  /** `deduplication on|off` (default on). */
  deduplication?: boolean;
  /** `compression on|off` (default off). */
  compression?: boolean;
}

/** `vdo V4 <storage> <storage blocks> <min I/O> <cache blocks> <era length> [<key> <value>]*`: deduplication and compression. */
export interface VdoTarget extends Target {
  readonly type: 'vdo';
  /** `<storage device>`, 'major:minor' or a /dev path. */
  readonly storage: string;
  /** `<storage device size>`: in 4096-byte blocks. */
  readonly storageBlocks: number;
  /** `<minimum I/O size>`: bytes. */
  readonly minimumIoSize: 512 | 4096;
  /** `<block map cache size>`: in 4096-byte blocks. */
  readonly blockMapCacheBlocks: number;
  /** `<block map era length>`: a count of block map writes. */
  readonly blockMapEraLength: number;
  /** The optional `<key> <value>` parameters given, by key (units as in `VdoOptions`; absent ones take the kernel's defaults). */
  readonly options: Readonly<Partial<Record<(typeof VDO_OPTION_KEYS)[number], number | boolean>>>;
}

/**
 * The status of a vdo target: `<device> <operating mode> <in recovery> <index state>
 * <compression state> <physical blocks used> <total physical blocks>`.
 */
export interface VdoStatus extends TargetStatusBase {
  readonly type: 'vdo';
  readonly known: true;
  /** `<device>`: the vdo volume's name. */
  readonly device: string;
  /** `<operating mode>`: 'normal', 'recovering' or 'read-only' (data loss: writes refused). */
  readonly operatingMode: string;
  /** `<in recovery>`: true while recovering (`recovering`), false for `-`. */
  readonly inRecovery: boolean;
  /** `<index state>`: the deduplication index: 'closed', 'closing', 'error', 'offline', 'online', 'opening' or 'unknown'. */
  readonly indexState: string;
  /** `<compression state>`: 'offline' or 'online'. */
  readonly compressionState: string;
  /** `<physical blocks used> <total physical blocks>`: a count of 4096-byte blocks (two words, not a ratio). */
  readonly physicalBlocks: {
    /** `<physical blocks used>`: 4096-byte blocks holding data or metadata. */
    readonly used: number;
    /** `<total physical blocks>`: 4096-byte blocks of the storage. */
    readonly total: number;
  };
  /** Words after the known fields (a newer kernel's), kept as given. */
  readonly extra: readonly string[];
}

const LIMITS: Record<string, [number, number]> = {
  ack: [1, 100],
  bio: [1, 100],
  bioRotationInterval: [1, 1024],
  cpu: [1, 100],
  hash: [0, 100],
  logical: [0, 60],
  physical: [0, 16],
  maxDiscard: [1, Math.floor(0xffffffff / 4096)],
};

/** Builds a vdo target. Throws TypeError/RangeError on bad options. */
export function vdo(options: VdoOptions): VdoTarget {
  const o = builderOptions(options, 'vdo options', ['storage', 'storageBlocks', 'minimumIoSize', 'blockMapCacheBlocks', 'blockMapEraLength', ...VDO_OPTION_KEYS]);
  const storage = device(o.storage, 'vdo.storage');
  const storageBlocks = integer(o.storageBlocks, 'vdo.storageBlocks', 1, Number.MAX_SAFE_INTEGER);
  const minimumIoSize = choice(o.minimumIoSize, 'vdo.minimumIoSize', [512, 4096] as const);
  const blockMapCacheBlocks = integer(o.blockMapCacheBlocks, 'vdo.blockMapCacheBlocks', 32768, 0xffffffff);
  const blockMapEraLength = integer(o.blockMapEraLength, 'vdo.blockMapEraLength', 1, 16380);
  const chosen: Partial<Record<(typeof VDO_OPTION_KEYS)[number], number | boolean>> = {};
  const words: string[] = [];
  for (const key of VDO_OPTION_KEYS) {
    const v: unknown = o[key];
    if (v === undefined) continue;
    if (key === 'deduplication' || key === 'compression') {
      if (typeof v !== 'boolean') throw expected('a boolean', `vdo.${key}`, v);
      chosen[key] = v;
      words.push(key, v ? 'on' : 'off');
    } else {
      const [min, max] = LIMITS[key] ?? [0, 0];
      const n = integer(v, `vdo.${key}`, min, max);
      chosen[key] = n;
      words.push(key, String(n));
    }
  }
  const threads = [chosen.hash, chosen.logical, chosen.physical];
  if (threads.some((t) => typeof t === 'number' && t > 0) && threads.some((t) => t === 0 || t === undefined)) {
    throw expectedRange('hash, logical and physical all non-zero, or all zero', 'vdo.hash/logical/physical', threads.map((t) => t ?? 0).join('/'));
  }
  const params = ['V4', storage, storageBlocks, minimumIoSize, blockMapCacheBlocks, blockMapEraLength, ...words].join(' ');
  return typedTarget({ type: 'vdo', storage, storageBlocks, minimumIoSize, blockMapCacheBlocks, blockMapEraLength, options: chosen, params });
}

/** Parses vdo parameters ('V4 /dev/dm-1 262144 4096 32768 16380 maxDiscard 8'). Throws DmParseError naming the field. */
export function parseVdo(params: string): VdoTarget {
  const at = new ArgReader(params, 'vdo');
  at.oneOf('version', ['V4']);
  const storage = at.device('storage device');
  const storageBlocks = at.uint('storage device size', 1);
  const io = at.uint('minimum I/O size');
  if (io !== 512 && io !== 4096) throw at.fail('<minimum I/O size> is 512 or 4096', 'minimum I/O size');
  const blockMapCacheBlocks = at.uint('block map cache size', 32768, 0xffffffff);
  const blockMapEraLength = at.uint('block map era length', 1, 16380);
  const flags: Partial<Record<'deduplication' | 'compression', boolean>> = {};
  const counts: Partial<Record<Exclude<(typeof VDO_OPTION_KEYS)[number], 'deduplication' | 'compression'>, number>> = {};
  while (at.remaining > 0) {
    const key = at.oneOf('option', VDO_OPTION_KEYS);
    if (key in flags || key in counts) throw at.fail(`<${key}> is given twice`, key);
    if (key === 'deduplication' || key === 'compression') flags[key] = at.oneOf(key, ['on', 'off']) === 'on';
    else {
      const [min, max] = LIMITS[key] ?? [0, 0];
      counts[key] = at.uint(key, min, max);
    }
  }
  try {
    return vdo({ storage, storageBlocks, minimumIoSize: io, blockMapCacheBlocks, blockMapEraLength, ...counts, ...flags });
  } catch (e) {
    throw at.fail(e instanceof Error ? e.message : String(e), 'hash');
  }
}

/** Parses a vdo status ('vdo0 normal - online online 1234 262144'). Throws DmParseError naming the field. */
export function parseVdoStatus(text: string): VdoStatus {
  const at = new ArgReader(text, 'vdo status');
  const dev = at.word('device');
  const operatingMode = at.word('operating mode');
  const rec = at.word('in recovery');
  const indexState = at.word('index state');
  const compressionState = at.word('compression state');
  const used = at.uint('physical blocks used');
  const total = at.uint('total physical blocks');
  return freeze({
    type: 'vdo',
    raw: text,
    known: true,
    device: dev,
    operatingMode,
    inRecovery: rec !== '-',
    indexState,
    compressionState,
    physicalBlocks: { used, total },
    extra: at.rest(),
  });
}

/** The vdo target type (parse-only here: the sandbox kernel, Linux 6.1, predates dm-vdo). */
export const vdoModule: TargetModule<VdoTarget, VdoStatus> = { type: 'vdo', parse: parseVdo, parseStatus: parseVdoStatus };

/** Builders of the vdo target's messages. */
export const vdoMessages = Object.freeze({
  /** `stats`: the volume's statistics (answered through DATA_OUT). */
  stats(): string {
    return 'stats';
  },
  /** `dump [<what>...]`: internal structures to the kernel log. */
  dump(...what: readonly ('viopool' | 'pools' | 'vdo' | 'queues' | 'threads' | 'default' | 'all')[]): string {
    const ok = ['viopool', 'pools', 'vdo', 'queues', 'threads', 'default', 'all'];
    what.forEach((w, i) => {
      if (!ok.includes(w)) throw expectedRange(`one of ${ok.join(', ')}`, `what[${i}]`, w);
    });
    return ['dump', ...what].join(' ');
  },
  /** `dump-on-shutdown`: a default dump when the volume next shuts down. */
  dumpOnShutdown(): string {
    return 'dump-on-shutdown';
  },
});
