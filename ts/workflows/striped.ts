/**
 * A striped set, end to end: data spread over several devices chunk by chunk (dm-stripe),
 * where each sector of the device lands by the stripe math, and the health the kernel reports
 * for each stripe. Built on `DeviceMapper` and the typed striped target.
 */
import type { DeviceInfo, DeviceMapper, RemoveOptions } from '../client';
import type { DevId } from '../dev';
import type { StatusRow } from '../status';
import { parseStriped, striped, type StripedOptions, type StripedStatus, type StripedTarget } from '../targets/striped';
import { checkInteger, checkSector } from '../validate';
import { checkCreate, checkSame, createVerified, onlyRow, onlyStatus, oneRow } from './one-row';
import { idOf } from './common';

/** Options of `Striped.create`: the striped target's options, the device's size, and an optional uuid. */
export interface StripedCreateOptions extends StripedOptions {
  /**
   * The device's length in 512-byte sectors: it splits evenly among the stripes in whole
   * chunks (size = stripes × chunkSize × k), and each stripe holds size / stripes sectors past
   * its offset.
   */
  size: number;
  /** The device's uuid (then every later call names the device by it). */
  uuid?: string;
}

/** Where a sector of a striped device lands. */
export interface StripeLocation {
  /** The stripe's index, in table order. */
  readonly stripe: number;
  /** The stripe's device ('major:minor', as the kernel reads the table back). */
  readonly device: string;
  /** The sector on that device (its offset included). */
  readonly sector: number;
}

function isStripedStatus(s: StatusRow['status']): s is StripedStatus {
  return s.known && s.type === 'striped';
}

/**
 * Where sector `sector` of a striped row lands: chunk c = ⌊sector / chunkSize⌋ goes to stripe
 * c mod n, as that stripe's chunk ⌊c / n⌋, so at offset + ⌊c / n⌋ × chunkSize + (sector mod
 * chunkSize) on its device.
 */
export function stripeLocation(target: StripedTarget, sector: number): StripeLocation {
  checkSector(sector, 'sector');
  const n = target.stripes.length;
  const chunk = Math.floor(sector / target.chunkSize);
  const index = chunk % n;
  const stripe = target.stripes[index];
  if (stripe === undefined) throw new RangeError(`Expected a stripe at index ${index} but the target has ${n}`);
  return { stripe: index, device: stripe.device, sector: stripe.offset + Math.floor(chunk / n) * target.chunkSize + (sector % target.chunkSize) };
}

/**
 * A striped set (the kernel's dm-stripe target) on one device: one row over the whole
 * device. Calls name the device by its uuid when it has one, else by its name.
 */
export class Striped {
  /** The client the set is driven through. */
  readonly dm: DeviceMapper;
  /** The device's name. */
  readonly name: string;
  /** The device's uuid ('' for none). */
  readonly uuid: string;
  /** The device's number, node and state when it was created or opened. */
  readonly info: DeviceInfo;
  /** The table's target (chunk size, stripes), as the kernel read it back. */
  readonly target: StripedTarget;
  /** The device's length in 512-byte sectors. */
  readonly size: number;

  private constructor(dm: DeviceMapper, info: DeviceInfo, target: StripedTarget, size: number) {
    this.dm = dm;
    this.name = info.name;
    this.uuid = info.uuid;
    this.info = info;
    this.target = target;
    this.size = size;
  }

  /** How the device is named in each call: its uuid, else its name. */
  get id(): DevId {
    return idOf(this);
  }

  /**
   * Creates the device with one striped row of `size` sectors (DM_DEV_CREATE, DM_TABLE_LOAD,
   * resume) and reads its table back. A size that does not split into whole chunks per stripe
   * is refused (RangeError) before any ioctl, as the kernel would refuse it; a stripe too
   * small for its share fails the resume (EINVAL) and the device is removed again.
   */
  static async create(dm: DeviceMapper, name: string, options: StripedCreateOptions): Promise<Striped> {
    const { size, uuid, rest } = checkCreate(name, options, 'striped');
    const target = striped(rest);
    return createVerified(dm, name, oneRow(size, target), uuid, async (info) => {
      const s = await Striped.read(dm, info);
      const shape = (t: StripedTarget): string => `${t.chunkSize} ${t.stripes.map((x) => x.offset).join(' ')}`;
      if (shape(s.target) !== shape(target) || s.size !== size) throw new Error(`${name}: the kernel's table is not the one loaded (${s.size} striped ${s.target.params})`);
      return s;
    });
  }

  /** Takes over an existing striped device: reads its info and table (a device with another table is refused). */
  static async open(dm: DeviceMapper, id: DevId): Promise<Striped> {
    return Striped.read(dm, await dm.info(id));
  }

  private static async read(dm: DeviceMapper, info: DeviceInfo): Promise<Striped> {
    const row = await onlyRow(dm, idOf(info), info.name, 'striped');
    return new Striped(dm, info, parseStriped(row.params), row.length);
  }

  /** Where sector `sector` of this device lands (see `stripeLocation`). */
  locate(sector: number): StripeLocation {
    return stripeLocation(this.target, checkInteger(sector, 'sector', 0, this.size - 1));
  }

  /** DM_TABLE_STATUS: each stripe's device and health (`dead` once an I/O error was seen on it). */
  async status(): Promise<StripedStatus> {
    await checkSame(this.dm, this.id, this.name, this.info.dev);
    return onlyStatus(this.dm, this.id, this.name, isStripedStatus, 'striped');
  }

  /** Removes the device (DM_DEV_REMOVE). */
  async remove(options?: RemoveOptions): Promise<void> {
    await checkSame(this.dm, this.id, this.name, this.info.dev);
    await this.dm.remove(this.id, options);
  }
}
