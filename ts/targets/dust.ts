/**
 * dm-dust: a linear mapping that emulates bad blocks. Blocks put on its bad block list fail
 * their reads with EIO once the emulation is enabled; a write to a bad block takes it off the
 * list (the "remapped sector" of a real drive), after failing as many times as its write fail
 * count says. Its reporting messages answer through DATA_OUT; the parsers of those answers are
 * here too. Pure data: nothing here touches the kernel.
 */
import type { DeviceRef } from '../dev';
import { expectedRange } from '../validate';
import { ArgReader, builderOptions, device, freeze, integer, parseUint, powerOfTwo, sectors, typedTarget } from './args';
import type { Target, TargetModule, TargetStatusBase } from './types';

/** The smallest dust block: 512 bytes. */
const MIN_BLKSZ = 512;
/** The largest dust block: 1 GiB (and never more than the row's length). */
const MAX_BLKSZ = 1073741824;

/** Options of a dust target. */
export interface DustOptions {
  /** `<device>`: the device mapped onto. */
  device: DeviceRef;
  /** `<offset>`: the sector of `device` where the row's first sector lands (512-byte sectors). */
  offset: number;
  /**
   * `<blksz>`: the size of a block, in **bytes** (not sectors): a power of two from 512 to
   * 1073741824 (1 GiB), and at most the row's length. Bad blocks are numbered in these blocks.
   */
  blockSize: number;
}

/** `dust <device> <offset> <blksz>`: `device` from sector `offset`, with emulated bad blocks of `blksz` bytes. */
export interface DustTarget extends Target {
  readonly type: 'dust';
  /** `<device>`, 'major:minor' or a /dev path: the device mapped onto. */
  readonly device: string;
  /** `<offset>`: the start sector on `device` (512-byte sectors). */
  readonly offset: number;
  /** `<blksz>`: the block size, in bytes (not sectors); bad blocks are numbered in these blocks. */
  readonly blockSize: number;
}

/**
 * Whether bad blocks are acted on: `bypass` (the default: every I/O passes, bad blocks are only
 * listed) or `fail_read_on_bad_block` (after `enable`: reads of bad blocks fail with EIO, writes
 * to them clear them).
 */
export type DustMode = 'bypass' | 'fail_read_on_bad_block';

/** The status of a dust target: `<device> <mode> <quiet mode>`. */
export interface DustStatus extends TargetStatusBase {
  readonly type: 'dust';
  readonly known: true;
  /** `<device>`: the underlying device ('major:minor'). */
  readonly device: string;
  /** `<mode>`: `bypass` or `fail_read_on_bad_block`, as the kernel prints it. */
  readonly mode: DustMode;
  /** True in `fail_read_on_bad_block` mode (after `enable`). */
  readonly failReadOnBadBlock: boolean;
  /** `<quiet mode>`: true for `quiet` (`quiet`: the kernel does not log bad blocks added, removed or cleared by writes); false when `verbose`. */
  readonly quiet: boolean;
  /** Words after the known fields (a newer kernel's), kept as given. */
  readonly extra: readonly string[];
}

/** Builds a dust target. Throws TypeError/RangeError naming the field at fault. */
export function dust(options: DustOptions): DustTarget {
  const o = builderOptions(options, 'dust options', ['device', 'offset', 'blockSize']);
  const dev = device(o.device, 'dust.device');
  const offset = sectors(o.offset, 'dust.offset');
  const blockSize = powerOfTwo(o.blockSize, 'dust.blockSize', MIN_BLKSZ, MAX_BLKSZ);
  return typedTarget({ type: 'dust', device: dev, offset, blockSize, params: `${dev} ${offset} ${blockSize}` });
}

/** Parses dust parameters ('7:0 0 4096'). Throws DmParseError naming the field. */
export function parseDust(params: string): DustTarget {
  const at = new ArgReader(params, 'dust');
  const dev = at.device('device');
  const offset = at.uint('offset');
  const blockSize = at.uint('blksz', MIN_BLKSZ, MAX_BLKSZ);
  if ((blockSize & (blockSize - 1)) !== 0) throw at.fail('<blksz> is a power of two', 'blksz');
  at.done();
  return dust({ device: dev, offset, blockSize });
}

/** Parses a dust target's status ('7:0 bypass verbose', '7:0 fail_read_on_bad_block quiet'). Throws DmParseError naming the field. */
export function parseDustStatus(text: string): DustStatus {
  const at = new ArgReader(text, 'dust status');
  const dev = at.device('device');
  const mode = at.oneOf('mode', ['bypass', 'fail_read_on_bad_block'] as const);
  const quiet = at.oneOf('quiet mode', ['verbose', 'quiet'] as const) === 'quiet';
  return freeze({ type: 'dust', raw: text, known: true, device: dev, mode, failReadOnBadBlock: mode === 'fail_read_on_bad_block', quiet, extra: at.rest() });
}

function block(value: unknown, name: string): number {
  return sectors(value, name);
}

/**
 * Messages a dust target takes (`dm.message(name, dustMessages.addBadBlock(60))`). Block
 * numbers count blocks of the table's block size, from 0; the kernel refuses (EINVAL) a block
 * past the end of the underlying device. `queryBlock`, `countBadBlocks`, `listBadBlocks` and
 * `clearBadBlocks` answer with text, which `parseDustQueryBlock`, `parseDustCountBadBlocks`,
 * `parseDustListBadBlocks` and `parseDustClearBadBlocks` read.
 */
export const dustMessages = Object.freeze({
  /**
   * `addbadblock <block> [<write fail count>]`: puts a block on the bad block list (EINVAL if it
   * is there already). With a write fail count (0 to 255), that many writes to the block fail
   * with EIO before one clears it; without, the first write clears it.
   */
  addBadBlock(blockNumber: number, writeFailCount?: number): string {
    const b = block(blockNumber, 'blockNumber');
    return writeFailCount === undefined ? `addbadblock ${b}` : `addbadblock ${b} ${integer(writeFailCount, 'writeFailCount', 0, 255)}`;
  },
  /** `removebadblock <block>`: takes a block off the list (EINVAL if it is not on it). */
  removeBadBlock(blockNumber: number): string {
    return `removebadblock ${block(blockNumber, 'blockNumber')}`;
  },
  /** `queryblock <block>`: whether a block is on the list; the answer is read by `parseDustQueryBlock`. */
  queryBlock(blockNumber: number): string {
    return `queryblock ${block(blockNumber, 'blockNumber')}`;
  },
  /** `countbadblocks`: how many blocks are on the list; the answer is read by `parseDustCountBadBlocks`. */
  countBadBlocks(): string {
    return 'countbadblocks';
  },
  /**
   * `listbadblocks`: every block on the list, in increasing order; the answer is read by
   * `parseDustListBadBlocks`. It only reports, so a long list may be asked for with
   * `{ repeatable: true }` (sent again with a larger buffer when it did not fit).
   */
  listBadBlocks(): string {
    return 'listbadblocks';
  },
  /** `clearbadblocks`: empties the list; the answer (whether there was anything to clear) is read by `parseDustClearBadBlocks`. */
  clearBadBlocks(): string {
    return 'clearbadblocks';
  },
  /** `enable`: reads of bad blocks fail with EIO, writes to them clear them (`fail_read_on_bad_block`). */
  enable(): string {
    return 'enable';
  },
  /** `disable`: every I/O passes again (`bypass`); the list is kept. */
  disable(): string {
    return 'disable';
  },
  /** `quiet`: toggles quiet mode (no kernel log lines for bad blocks added, removed or cleared by writes); the status shows which is on. */
  quiet(): string {
    return 'quiet';
  },
});

function answerReader(answer: string | undefined, what: string): { text: string; at: ArgReader } {
  const text = answer ?? '';
  return { text, at: new ArgReader(text, `dust ${what} answer`) };
}

/** What `queryblock` answers: the block asked about and whether it is on the bad block list. */
export interface DustBlockQuery {
  /** `block <n>`: the block number asked about (in blocks of the table's `<blksz>` bytes, from 0). */
  readonly block: number;
  /** True for `found in badblocklist`, false for `not found`. */
  readonly bad: boolean;
}

/**
 * Parses `queryblock`'s answer ('dust_query_block: block 3 found in badblocklist', or `not
 * found`; older kernels wrote `queryblock:` first). Throws DmParseError naming the field.
 */
export function parseDustQueryBlock(answer: string | undefined): DustBlockQuery {
  const { text, at } = answerReader(answer, 'queryblock');
  const m = /^\s*(?:dust_query_block|queryblock): block (\d+) (found|not found) in badblocklist\s*$/.exec(text);
  if (!m || m[1] === undefined) throw at.fail('the answer is "block <n> found in badblocklist" or "block <n> not found in badblocklist"', 'answer');
  return freeze({ block: parseUint(m[1], 'block', 0, Number.MAX_SAFE_INTEGER, at), bad: m[2] === 'found' });
}

/** Parses `countbadblocks`'s answer ('countbadblocks: 3 badblock(s) found'): the number of bad blocks. Throws DmParseError naming the field. */
export function parseDustCountBadBlocks(answer: string | undefined): number {
  const { text, at } = answerReader(answer, 'countbadblocks');
  const m = /^\s*countbadblocks: (\d+) badblock\(s\) found\s*$/.exec(text);
  if (!m || m[1] === undefined) throw at.fail('the answer is "countbadblocks: <n> badblock(s) found"', 'answer');
  return parseUint(m[1], 'count', 0, Number.MAX_SAFE_INTEGER, at);
}

/** Parses `listbadblocks`'s answer (one block number a line, or 'No blocks in badblocklist'): the bad blocks in order. Throws DmParseError naming the field. */
export function parseDustListBadBlocks(answer: string | undefined): number[] {
  const { text, at } = answerReader(answer, 'listbadblocks');
  if (/^\s*No blocks in badblocklist\s*$/.test(text)) return [];
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) throw at.fail('the answer is block numbers, one a line, or "No blocks in badblocklist"', 'answer');
  return lines.map((l) => parseUint(l.trim(), 'block', 0, Number.MAX_SAFE_INTEGER, at));
}

/**
 * Parses `clearbadblocks`' answer ('dust_clear_badblocks: badblocks cleared', or `no badblocks
 * found`): true when there were bad blocks to clear. Throws DmParseError naming the field.
 */
export function parseDustClearBadBlocks(answer: string | undefined): boolean {
  const { text, at } = answerReader(answer, 'clearbadblocks');
  const m = /^\s*(?:dust_clear_badblocks|clearbadblocks): (badblocks cleared|no badblocks found)\s*$/.exec(text);
  if (!m) throw at.fail('the answer is "badblocks cleared" or "no badblocks found"', 'answer');
  return m[1] === 'badblocks cleared';
}

/** The dust target type. */
export const dustModule: TargetModule<DustTarget, DustStatus> = {
  type: 'dust',
  parse: parseDust,
  parseStatus: parseDustStatus,
  // The kernel's rule: a block is no larger than the row.
  checkLength(target, length, name) {
    const t = parseDust(target.params);
    if (t.blockSize / 512 > length) throw expectedRange(`a length of at least one ${t.blockSize}-byte block (${t.blockSize / 512} sectors)`, name, length);
  },
};
