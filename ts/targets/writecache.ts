/**
 * dm-writecache: writes land on a fast device (persistent memory or an SSD) and are written
 * back to the origin in the background; reads of blocks still in the cache are served from it.
 * Pure data: nothing here touches the kernel.
 */
import type { DeviceRef } from '../dev';
import { expectedRange } from '../validate';
import { ArgReader, U32_MAX, builderOptions, choice, device, flag, freeze, join, optionalInteger, powerOfTwo, sectors, typedTarget } from './args';
import type { Target, TargetModule, TargetStatusBase } from './types';

/** The cache device's kind: `pmem` persistent memory (DAX, `p`) or `ssd` a block device (`s`). */
export type WritecacheMode = 'pmem' | 'ssd';

/** Longest autocommit_time the kernel takes, ms (one hour). */
const MAX_AUTOCOMMIT_MS = 3600000;
/** Longest max_age the kernel takes, ms (one day). */
const MAX_AGE_MS = 86400000;
/** Longest pause_writeback the kernel takes, ms (one minute). */
const MAX_PAUSE_MS = 60000;

/** Options of a writecache target. */
export interface WritecacheOptions {
  /** `<p|s>`: the cache device's kind. */
  mode: WritecacheMode;
  /** `<origin>`: the slow device being cached. */
  originDevice: DeviceRef;
  /** `<cache>`: the fast device holding the cached blocks and their metadata. */
  cacheDevice: DeviceRef;
  /** `<block size>`: the cache block size in bytes (not sectors): a power of two from 512 to 4096 (the page size); 4096 is the usual choice. */
  blockSize: number;
  /** `start_sector <n>`: the 512-byte sector of the cache device where the cache starts (room for a superblock of another's). */
  startSector?: number;
  /** `high_watermark <n>`: percent of the cache in use above which writeback starts (0 to 100; the kernel's default 50). */
  highWatermark?: number;
  /** `low_watermark <n>`: percent of the cache in use below which writeback stops (0 to 100, at most highWatermark; default 45). */
  lowWatermark?: number;
  /** `writeback_jobs <n>`: a count of cache blocks that may be being written back at once. */
  writebackJobs?: number;
  /** `autocommit_blocks <n>`: a count of cache blocks written after which the metadata is committed (ssd default 65536, pmem 64). */
  autocommitBlocks?: number;
  /** `autocommit_time <ms>`: milliseconds after which the metadata is committed (default 1000; at most one hour). */
  autocommitTime?: number;
  /** `max_age <ms>`: milliseconds a block may stay in the cache before it is written back (at most one day). */
  maxAge?: number;
  /** `cleaner`: write everything back and take no new writes into the cache (to remove it). */
  cleaner?: boolean;
  /** pmem only: write back with FUA (`fua`, the default) or without (`nofua`, with flushes instead). */
  fua?: boolean;
  /** `metadata_only`: cache only metadata I/O (REQ_META), send the rest to the origin. */
  metadataOnly?: boolean;
  /** ssd only, `pause_writeback <ms>`: milliseconds writeback waits after the last write to the device (at most one minute; default 3000). */
  pauseWriteback?: number;
}

/**
 * `writecache <p|s> <origin> <cache> <block size> <#optional args> [<arg>]*`: writes cached on
 * a fast device.
 */
export interface WritecacheTarget extends Target {
  readonly type: 'writecache';
  /** `<p|s>`: the cache device's kind. */
  readonly mode: WritecacheMode;
  /** `<origin>`, 'major:minor' or a /dev path: the slow device. */
  readonly originDevice: string;
  /** `<cache>`, 'major:minor' or a /dev path: the fast device. */
  readonly cacheDevice: string;
  /** `<block size>`: the cache block size, bytes. */
  readonly blockSize: number;
  /** `start_sector <n>`: 512-byte sectors skipped at the start of the cache device. */
  readonly startSector: number | undefined;
  /** `high_watermark <n>`: percent of the cache in use at which writeback starts. */
  readonly highWatermark: number | undefined;
  /** `low_watermark <n>`: percent of the cache in use at which writeback stops. */
  readonly lowWatermark: number | undefined;
  /** `writeback_jobs <n>`: a count of cache blocks in flight during writeback. */
  readonly writebackJobs: number | undefined;
  /** `autocommit_blocks <n>`: a count of cache blocks written between commits. */
  readonly autocommitBlocks: number | undefined;
  /** `autocommit_time <ms>`: milliseconds between commits. */
  readonly autocommitTime: number | undefined;
  /** `max_age <ms>`: milliseconds a block may stay before writeback. */
  readonly maxAge: number | undefined;
  /** `cleaner`: everything is written back, no new writes are cached (0/1 flag). */
  readonly cleaner: boolean;
  /** `fua` (true), `nofua` (false), or neither (undefined). */
  readonly fua: boolean | undefined;
  /** `metadata_only`: only REQ_META I/O is cached. */
  readonly metadataOnly: boolean;
  /** `pause_writeback <ms>`: milliseconds writeback waits after the last write. */
  readonly pauseWriteback: number | undefined;
}

/**
 * The writecache's counters since activation or the last `clear_stats` (Linux 5.15 and
 * later), status words 5 to 14. The read and write counters count cache blocks (of the
 * table's block size), not requests: a 64 KiB write over 4 KiB blocks counts 16; the last
 * three count requests.
 */
export interface WritecacheStats {
  /** Word 5: cache blocks read (a count of blocks, not requests). */
  readonly reads: number;
  /** Word 6: cache blocks read that were found in the cache (blocks). */
  readonly readHits: number;
  /** Word 7: cache blocks written (blocks, not requests). */
  readonly writes: number;
  /** Word 8: blocks written over a cached block not yet committed (overwritten in place; blocks). */
  readonly writeHitsUncommitted: number;
  /** Word 9: blocks written over a cached block already committed (blocks). */
  readonly writeHitsCommitted: number;
  /** Word 10: blocks written around the cache to the origin (cleaner mode, metadata_only, or a full cache; blocks). */
  readonly writesAround: number;
  /** Word 11: blocks written that took a new cache block (blocks). */
  readonly writesAllocate: number;
  /** Word 12: write requests that waited for a free cache block (requests). */
  readonly writesBlockedOnFreelist: number;
  /** Word 13: flush requests (requests). */
  readonly flushes: number;
  /** Word 14: discard requests (requests). */
  readonly discards: number;
}

/**
 * The status of a writecache target: `<error> <#blocks> <#free blocks> <#blocks under
 * writeback>` and, on Linux 5.15 and later, ten counters (see `WritecacheStats`).
 */
export interface WritecacheStatus extends TargetStatusBase {
  readonly type: 'writecache';
  readonly known: true;
  /** `<error>`: 0, or the negative errno of an I/O error the cache met (it then refuses writes). */
  readonly error: number;
  /** `<#blocks>`: cache blocks in all (a count of blocks of the table's block size). */
  readonly blocks: number;
  /** `<#free blocks>`: cache blocks free (a count). */
  readonly freeBlocks: number;
  /** `<#blocks under writeback>`: cache blocks being written back now (a count). */
  readonly writebackBlocks: number;
  /** The counters (undefined from a kernel before 5.15, which reports only the four fields above). */
  readonly stats: WritecacheStats | undefined;
  /** Words after the known fields (a newer kernel's), kept as given. */
  readonly extra: readonly string[];
}

const KNOWN = ['mode', 'originDevice', 'cacheDevice', 'blockSize', 'startSector', 'highWatermark', 'lowWatermark', 'writebackJobs', 'autocommitBlocks', 'autocommitTime', 'maxAge', 'cleaner', 'fua', 'metadataOnly', 'pauseWriteback'] as const;

/**
 * Builds a writecache target; the optional args in the order the kernel prints them back
 * (start_sector, high_watermark, low_watermark, writeback_jobs, autocommit_blocks,
 * autocommit_time, max_age, cleaner, fua/nofua, metadata_only, pause_writeback). Throws
 * TypeError/RangeError naming the field at fault.
 */
export function writecache(options: WritecacheOptions): WritecacheTarget {
  const o = builderOptions(options, 'writecache options', [...KNOWN]);
  const mode = choice(o.mode, 'writecache.mode', ['pmem', 'ssd'] as const);
  const originDevice = device(o.originDevice, 'writecache.originDevice');
  const cacheDevice = device(o.cacheDevice, 'writecache.cacheDevice');
  const blockSize = powerOfTwo(o.blockSize, 'writecache.blockSize', 512, 4096);
  const startSector = o.startSector === undefined ? undefined : sectors(o.startSector, 'writecache.startSector');
  const highWatermark = optionalInteger(o.highWatermark, 'writecache.highWatermark', 0, 100);
  const lowWatermark = optionalInteger(o.lowWatermark, 'writecache.lowWatermark', 0, 100);
  // The kernel compares the values in effect: its defaults are 50 (high) and 45 (low).
  if ((highWatermark ?? 50) < (lowWatermark ?? 45)) throw expectedRange(`a percentage no higher than highWatermark (${highWatermark ?? 50})`, 'writecache.lowWatermark', lowWatermark);
  const writebackJobs = optionalInteger(o.writebackJobs, 'writecache.writebackJobs', 0, U32_MAX);
  const autocommitBlocks = optionalInteger(o.autocommitBlocks, 'writecache.autocommitBlocks', 0, U32_MAX);
  const autocommitTime = optionalInteger(o.autocommitTime, 'writecache.autocommitTime', 0, MAX_AUTOCOMMIT_MS);
  const maxAge = optionalInteger(o.maxAge, 'writecache.maxAge', 0, MAX_AGE_MS);
  const cleaner = flag(o.cleaner, 'writecache.cleaner');
  if (o.fua !== undefined && mode !== 'pmem') throw expectedRange('no value (fua/nofua is for pmem only)', 'writecache.fua', o.fua);
  const fua = o.fua === undefined ? undefined : flag(o.fua, 'writecache.fua');
  const metadataOnly = flag(o.metadataOnly, 'writecache.metadataOnly');
  if (o.pauseWriteback !== undefined && mode !== 'ssd') throw expectedRange('no value (pause_writeback is for ssd only)', 'writecache.pauseWriteback', o.pauseWriteback);
  const pauseWriteback = optionalInteger(o.pauseWriteback, 'writecache.pauseWriteback', 0, MAX_PAUSE_MS);
  const one = (key: string, v: number | undefined): (string | number)[] => (v === undefined ? [] : [key, v]);
  const args: (string | number)[] = [
    ...one('start_sector', startSector),
    ...one('high_watermark', highWatermark),
    ...one('low_watermark', lowWatermark),
    ...one('writeback_jobs', writebackJobs),
    ...one('autocommit_blocks', autocommitBlocks),
    ...one('autocommit_time', autocommitTime),
    ...one('max_age', maxAge),
    ...(cleaner ? ['cleaner'] : []),
    ...(fua === undefined ? [] : [fua ? 'fua' : 'nofua']),
    ...(metadataOnly ? ['metadata_only'] : []),
    ...one('pause_writeback', pauseWriteback),
  ];
  const params = join([mode === 'pmem' ? 'p' : 's', originDevice, cacheDevice, blockSize, args.length, ...args]);
  return typedTarget({ type: 'writecache', mode, originDevice, cacheDevice, blockSize, startSector, highWatermark, lowWatermark, writebackJobs, autocommitBlocks, autocommitTime, maxAge, cleaner, fua, metadataOnly, pauseWriteback, params });
}

/**
 * Parses writecache parameters ('s 7:0 7:1 4096 2 high_watermark 60'), the optional args in
 * any order (the kernel prints them back in its own). Throws DmParseError naming the field.
 */
export function parseWritecache(params: string): WritecacheTarget {
  const at = new ArgReader(params, 'writecache');
  const mode = at.oneOf('mode', ['p', 's'] as const) === 'p' ? 'pmem' : 'ssd';
  const originDevice = at.device('origin dev');
  const cacheDevice = at.device('cache dev');
  const blockSize = at.uint('block size', 512, 4096);
  if ((blockSize & (blockSize - 1)) !== 0) throw at.fail('<block size> is a power of two', 'block size');
  const words = at.group('optional args', 32);
  at.done();
  const a = new ArgReader(words.join(' '), 'writecache optional args');
  const o: WritecacheOptions = { mode, originDevice, cacheDevice, blockSize };
  const seen = new Set<string>();
  while (a.remaining > 0) {
    const key = a.word('optional arg');
    const again = (k: string): void => {
      if (seen.has(k)) throw at.fail(`${k} given twice`, k);
      seen.add(k);
    };
    switch (key) {
      case 'start_sector':
        again(key);
        o.startSector = a.uint(key);
        break;
      case 'high_watermark':
        again(key);
        o.highWatermark = a.uint(key, 0, 100);
        break;
      case 'low_watermark':
        again(key);
        o.lowWatermark = a.uint(key, 0, 100);
        break;
      case 'writeback_jobs':
        again(key);
        o.writebackJobs = a.uint(key, 0, U32_MAX);
        break;
      case 'autocommit_blocks':
        again(key);
        o.autocommitBlocks = a.uint(key, 0, U32_MAX);
        break;
      case 'autocommit_time':
        again(key);
        o.autocommitTime = a.uint(key, 0, MAX_AUTOCOMMIT_MS);
        break;
      case 'max_age':
        again(key);
        o.maxAge = a.uint(key, 0, MAX_AGE_MS);
        break;
      case 'pause_writeback':
        again(key);
        o.pauseWriteback = a.uint(key, 0, MAX_PAUSE_MS);
        break;
      case 'cleaner':
        again(key);
        o.cleaner = true;
        break;
      case 'metadata_only':
        again(key);
        o.metadataOnly = true;
        break;
      case 'fua':
      case 'nofua':
        again('fua');
        o.fua = key === 'fua';
        break;
      default:
        throw at.fail(`unknown optional arg ${JSON.stringify(key)}`, 'optional args');
    }
  }
  try {
    return writecache(o);
  } catch (e) {
    // Well-formed but against the kernel's rules (fua on ssd, low above high): name the rule.
    throw at.fail(e instanceof Error ? e.message : String(e), 'params');
  }
}

/** Parses a writecache target's status ('0 2040 1880 0 320 160 160 0 0 0 160 0 0 0'). Throws DmParseError naming the field. */
export function parseWritecacheStatus(text: string): WritecacheStatus {
  const at = new ArgReader(text, 'writecache status');
  const error = at.int('error', -4095, 0);
  const blocks = at.uint('blocks');
  const freeBlocks = at.uint('free blocks');
  const writebackBlocks = at.uint('writeback blocks');
  let stats: WritecacheStats | undefined;
  if (at.remaining > 0) {
    stats = {
      reads: at.uint('reads'),
      readHits: at.uint('read hits'),
      writes: at.uint('writes'),
      writeHitsUncommitted: at.uint('write hits uncommitted'),
      writeHitsCommitted: at.uint('write hits committed'),
      writesAround: at.uint('writes around'),
      writesAllocate: at.uint('writes allocate'),
      writesBlockedOnFreelist: at.uint('writes blocked on freelist'),
      flushes: at.uint('flushes'),
      discards: at.uint('discards'),
    };
  }
  return freeze({ type: 'writecache', raw: text, known: true, error, blocks, freeBlocks, writebackBlocks, stats, extra: at.rest() });
}

/**
 * Messages a writecache takes (`dm.message(name, writecacheMessages.flush())`). Each returns
 * the message text.
 */
export const writecacheMessages = Object.freeze({
  /** `flush`: commits the metadata and writes every cached block back to the origin; returns when done. */
  flush(): string {
    return 'flush';
  },
  /** `flush_on_suspend`: makes the next suspend write everything back (as `flush`), for the reload that removes the cache. */
  flushOnSuspend(): string {
    return 'flush_on_suspend';
  },
  /** `cleaner`: turns cleaner mode on: everything is written back and new writes bypass the cache. */
  cleaner(): string {
    return 'cleaner';
  },
  /** `clear_stats`: resets the status counters (words 5 to 14) to zero. */
  clearStats(): string {
    return 'clear_stats';
  },
});

/** The writecache target type. */
export const writecacheModule: TargetModule<WritecacheTarget, WritecacheStatus> = { type: 'writecache', parse: parseWritecache, parseStatus: parseWritecacheStatus };
