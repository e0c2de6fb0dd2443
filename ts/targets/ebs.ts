import type { DeviceRef } from '../dev';
import { expectedRange } from '../validate';
import { ArgReader, builderOptions, choice, device, freeze, integer, sectors, typedTarget } from './args';
import type { Target, TargetModule, TargetStatusBase } from './types';

/** Options of an ebs target (emulated block size). */
export interface EbsOptions {
  /** `<dev path>`: the device mapped onto. */
  device: DeviceRef;
  /** `<offset>`: start sector on `device` (512-byte sectors); a multiple of `emulatedSectors`. */
  offset: number;
  /** `<emulated sectors>`: the logical block size to emulate, in 512-byte sectors: 1, 2, 4 or 8. */
  emulatedSectors: 1 | 2 | 4 | 8;
  /** `<underlying sectors>`: the device's own logical block size in 512-byte sectors (a power of two); default: what the device reports. */
  underlyingSectors?: number;
}

/**
 * `ebs <device> <offset> <emulated sectors> [<underlying sectors>]`: like linear, but emulates
 * a smaller logical block size (512-byte sectors on a 4 KiB-native disk, say).
 */
export interface EbsTarget extends Target {
  readonly type: 'ebs';
  /** `<dev path>`, 'major:minor' or a /dev path: the device mapped onto. */
  readonly device: string;
  /** `<offset>`: start sector on `device` (512-byte sectors). */
  readonly offset: number;
  /** `<emulated sectors>`: the emulated logical block size, in 512-byte sectors. */
  readonly emulatedSectors: 1 | 2 | 4 | 8;
  /** `<underlying sectors>`: the underlying block size in 512-byte sectors, or null when the table omits it (taken from the device). */
  readonly underlyingSectors: number | null;
}

/** The status of an ebs target: the kernel reports none. */
export interface EbsStatus extends TargetStatusBase {
  readonly type: 'ebs';
  readonly known: true;
  /** Words a newer kernel prints, kept as given. */
  readonly extra: readonly string[];
}

const EMULATED = [1, 2, 4, 8] as const;

/** Builds an ebs target. Throws TypeError/RangeError on bad options. */
export function ebs(options: EbsOptions): EbsTarget {
  const o = builderOptions(options, 'ebs options', ['device', 'offset', 'emulatedSectors', 'underlyingSectors']);
  const dev = device(o.device, 'ebs.device');
  const emulatedSectors = choice(o.emulatedSectors, 'ebs.emulatedSectors', EMULATED);
  const offset = sectors(o.offset, 'ebs.offset');
  if (offset % emulatedSectors !== 0) throw expectedRange(`a multiple of ebs.emulatedSectors (${emulatedSectors})`, 'ebs.offset', offset);
  let underlyingSectors: number | null = null;
  if (o.underlyingSectors !== undefined) {
    const u = integer(o.underlyingSectors, 'ebs.underlyingSectors', 1, 0x80000000);
    if ((u & (u - 1)) !== 0) throw expectedRange('a power of two', 'ebs.underlyingSectors', u);
    underlyingSectors = u;
  }
  const params = [dev, offset, emulatedSectors, ...(underlyingSectors === null ? [] : [underlyingSectors])].join(' ');
  return typedTarget({ type: 'ebs', device: dev, offset, emulatedSectors, underlyingSectors, params });
}

/** Parses ebs parameters ('/dev/sda 1024 1', '7:0 128 2 4'). Throws DmParseError naming the field. */
export function parseEbs(params: string): EbsTarget {
  const at = new ArgReader(params, 'ebs');
  const dev = at.device('device');
  const offset = at.uint('offset');
  const emulated = at.uint('emulated sectors', 1, 8);
  const emulatedSectors = EMULATED.find((e) => e === emulated);
  if (emulatedSectors === undefined) throw at.fail('<emulated sectors> is 1, 2, 4 or 8', 'emulated sectors');
  if (offset % emulatedSectors !== 0) throw at.fail('<offset> is a multiple of <emulated sectors>', 'offset');
  let underlyingSectors: number | undefined;
  if (at.remaining > 0) {
    underlyingSectors = at.uint('underlying sectors', 1, 0x80000000);
    if ((underlyingSectors & (underlyingSectors - 1)) !== 0) throw at.fail('<underlying sectors> is a power of two', 'underlying sectors');
  }
  at.done();
  return ebs({ device: dev, offset, emulatedSectors, ...(underlyingSectors === undefined ? {} : { underlyingSectors }) });
}

/** Parses an ebs status (the kernel prints none). */
export function parseEbsStatus(text: string): EbsStatus {
  return freeze({ type: 'ebs', raw: text, known: true, extra: new ArgReader(text, 'ebs status').rest() });
}

/** The ebs target type (parse-only here: the sandbox kernel has no dm-ebs module). */
export const ebsModule: TargetModule<EbsTarget, EbsStatus> = { type: 'ebs', parse: parseEbs, parseStatus: parseEbsStatus };
