/**
 * A plain dm-crypt volume: a block device encrypted sector by sector with a key given in the
 * table (hex) or held in the kernel keyring, as `cryptsetup open --type plain` makes one (no
 * on-disk header: the cipher, key, offset and size are the whole description, and the same
 * parameters open the same data).
 *
 * Keys are secrets: every table that holds one goes to the kernel and comes back with
 * DM_SECURE_DATA (the kernel wipes its copies, the library its buffers), and `table()` shows
 * hex keys zeroed, as `dmsetup table` does without `--showkeys`, unless asked for them.
 * Node has no call for the kernel keyring: a keyring key is added beforehand with
 * `keyctl padd logon <service:name> @u < keyfile` or the add_key(2) system call.
 */
import { readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { DeviceMapper, type DeviceInfo } from '../client';
import { formatDev, type DevId, type DeviceRef, type DevNumber } from '../dev';
import { DmError } from '../errors';
import { Table } from '../table';
import { maskCryptKeys, type CryptKeyringKeyOptions, type CryptLegacyCipherOptions, type CryptCapiCipherOptions, type CryptTarget } from '../targets/crypt';
import { targets } from '../targets/index';
import type { Target } from '../targets/types';
import { checkBoolean, checkName, checkOptions, checkSector, checkUuid, expected, expectedRange } from '../validate';
import { checkDeviceMapper, closeDevice, deviceNumber, fsCall, idOf, infoOfSame } from './common';

/** The cipher of a new volume when none is named: AES in XTS mode, 64-bit little-endian sector IVs. */
export const CRYPT_DEFAULT_CIPHER = 'aes-xts-plain64';

/** Options of `Crypt.open`. */
export interface CryptOpenOptions {
  /** The encrypted block device: 'major:minor', a /dev path, or `{ major, minor }`. */
  device: DeviceRef;
  /**
   * The key: its bytes, hex text, or a key of the kernel keyring (`{ keySize, keyType:
   * 'logon' | 'user', description }`, looked up when the table is loaded). Its size must be one
   * the cipher takes (aes-xts-plain64: 32, 48 or 64 bytes). It is never quoted in an error.
   */
  key: Uint8Array | string | CryptKeyringKeyOptions;
  /** The cipher spec or its parts (default `aes-xts-plain64`). */
  cipher?: string | CryptLegacyCipherOptions | CryptCapiCipherOptions;
  /** The sector of `device` where the encrypted data starts (512-byte sectors, default 0): cryptsetup's `--offset`. */
  offset?: number;
  /** Sectors mapped (512-byte sectors; default: the rest of the device after `offset`): cryptsetup's `--size`. */
  length?: number;
  /** `iv_offset`: sectors added to the sector number in the IVs (default 0): cryptsetup's `--skip`. */
  ivOffset?: number | bigint;
  /** The encryption sector, bytes: a power of two from 512 (the default) to 4096. */
  sectorSize?: number;
  /** IVs count `sectorSize` sectors rather than 512-byte ones (cryptsetup's choice with a larger sector size). */
  ivLargeSectors?: boolean;
  /** Pass discards down (off by default: they show which blocks are free). */
  allowDiscards?: boolean;
  /** Load the table read-only. */
  readOnly?: boolean;
  /** The device's uuid (default `DEVMAPPER-CRYPT-` and 16 random hex digits): how the volume is known after the create. */
  uuid?: string;
}

/** Options of `Crypt.table` and `Crypt.target`. */
export interface CryptTableOptions {
  /** Give hex keys as the kernel holds them (default false: zeroed, as `dmsetup table` shows them without `--showkeys`). */
  showKeys?: boolean;
}

/** Options of `Crypt.close`. */
export interface CryptCloseOptions {
  /** Let the kernel remove the device when its last opener closes it, as `cryptsetup close --deferred`. */
  deferred?: boolean;
}

const OPEN_OPTIONS = ['device', 'key', 'cipher', 'offset', 'length', 'ivOffset', 'sectorSize', 'ivLargeSectors', 'allowDiscards', 'readOnly', 'uuid'] as const;

/** A block device's size in 512-byte sectors, as sysfs gives it (`/sys/dev/block/M:m/size` counts 512-byte sectors whatever the device's block size). */
async function deviceSectors(dev: DevNumber): Promise<number> {
  const sys = `/sys/dev/block/${formatDev(dev)}/size`;
  const text = (await fsCall(sys, () => readFile(sys, 'utf8'))).trim();
  if (!/^\d+$/.test(text)) throw new RangeError(`the size of block device ${formatDev(dev)} reads ${JSON.stringify(text)}, not a number of sectors`);
  return Number(text);
}

function isCryptTarget(t: Target): t is CryptTarget {
  return t.type === 'crypt' && 'cipher' in t && 'key' in t;
}

/** The device's crypt rows, or why it is not a crypt volume. */
function cryptRows(table: Table | undefined): CryptTarget[] | string {
  if (table === undefined) return 'no live table';
  const rows = table.rows.map((r) => r.target);
  const crypt = rows.filter(isCryptTarget);
  if (crypt.length !== rows.length) return `rows of type ${[...new Set(rows.map((t) => t.type))].join(', ')}`;
  return crypt;
}

/**
 * An open dm-crypt volume: `/dev/dm-N` (and `/dev/mapper/<name>`) reads and writes the
 * plaintext, the backing device holds only ciphertext. Known by its uuid (else its name) and
 * device number: a call that finds another device under that id fails with ESTALE.
 */
export class Crypt {
  readonly #dm: DeviceMapper;
  readonly #id: DevId;
  /** The device's name. */
  readonly name: string;
  /** The device's uuid ('' for a device made without one). */
  readonly uuid: string;
  /** The device's number. */
  readonly dev: DevNumber;
  /** The device node, `/dev/dm-N`. */
  readonly path: string;

  private constructor(dm: DeviceMapper, info: DeviceInfo) {
    this.#dm = dm;
    this.#id = idOf(info);
    this.name = info.name;
    this.uuid = info.uuid;
    this.dev = info.dev;
    this.path = info.path;
  }

  /**
   * Opens a plain dm-crypt volume over `options.device`: one `crypt` row, created, loaded and
   * resumed with DM_SECURE_DATA (the kernel wipes its copy of the table, which holds the key).
   * The same cipher, key, offset and size open the same data with `cryptsetup open --type
   * plain`. Bad options are refused (TypeError/RangeError, never quoting the key) before any
   * ioctl; a table the kernel refuses (a cipher it lacks, a keyring key it cannot find: ENOKEY)
   * rejects with its DmError and leaves no device behind.
   */
  static async open(dm: DeviceMapper, name: string, options: CryptOpenOptions): Promise<Crypt> {
    checkDeviceMapper(dm);
    checkName(name);
    const o = checkOptions(options, 'options', [...OPEN_OPTIONS]);
    if (o.device === undefined) throw expected("'major:minor', a /dev path or { major, minor }", 'options.device', o.device);
    if (o.key === undefined) throw expected('the key bytes, hex text or a keyring key', 'options.key', undefined);
    const offset = o.offset === undefined ? 0 : checkSector(o.offset, 'options.offset');
    const readOnly = checkBoolean(o.readOnly, 'options.readOnly', false);
    const uuid = o.uuid === undefined ? `DEVMAPPER-CRYPT-${randomBytes(8).toString('hex')}` : checkUuid(o.uuid, 'options.uuid');
    const target = targets.crypt({
      cipher: o.cipher ?? CRYPT_DEFAULT_CIPHER,
      key: o.key,
      ivOffset: o.ivOffset,
      device: o.device,
      offset,
      sectorSize: o.sectorSize,
      ivLargeSectors: o.ivLargeSectors,
      allowDiscards: o.allowDiscards,
    });
    let length: number;
    if (o.length !== undefined) {
      length = checkSector(o.length, 'options.length');
      if (length === 0) throw expectedRange('a length of at least one sector', 'options.length', length);
    } else {
      const size = await deviceSectors(await deviceNumber(o.device, 'options.device'));
      if (offset >= size) throw expectedRange(`an offset inside the device (${size} sectors)`, 'options.offset', offset);
      // Whole encryption sectors only: the kernel refuses a row that ends inside one.
      const per = target.sectorSize / 512;
      length = Math.floor((size - offset) / per) * per;
      if (length === 0) throw expectedRange(`a device with room for one ${target.sectorSize}-byte sector after the offset`, 'options.device', o.device);
    }
    const table = new Table([{ start: 0, length, target }]);
    const info = await dm.create(name, { table, uuid, readOnly, secure: true });
    return new Crypt(dm, info);
  }

  /**
   * A crypt volume that exists already (made by `Crypt.open`, `cryptsetup open` or `dmsetup`),
   * by its name, uuid or number: its table is read (with DM_SECURE_DATA) to check that every
   * row is `crypt`. Rejects with RangeError when it is not a crypt volume.
   */
  static async attach(dm: DeviceMapper, id: DevId): Promise<Crypt> {
    checkDeviceMapper(dm);
    const info = await dm.info(id);
    const rows = cryptRows(await dm.table(info.uuid !== '' ? { uuid: info.uuid } : { dev: info.dev }, { secure: true }));
    if (typeof rows === 'string') throw expectedRange('a crypt volume', 'id', `${info.name} (${rows})`);
    return new Crypt(dm, info);
  }

  /** Checks that the device under this volume's id is still this volume (same number), and gives what DEV_STATUS says of it. */
  async info(): Promise<DeviceInfo> {
    return infoOfSame(this.#dm, this.#id, this.name, this.dev);
  }

  /**
   * The live table, read with DM_SECURE_DATA (the kernel wipes its copy of the answer). Hex
   * keys are zeroed, as `dmsetup table` shows them, unless `showKeys` (then they are in
   * clear in the Table's text and rows: keep it only as long as needed). Keyring keys are
   * shown as they are (`:64:logon:service:name`): they name a key, they do not hold it.
   */
  async table(options?: CryptTableOptions): Promise<Table> {
    const showKeys = checkBoolean(checkOptions(options, 'options', ['showKeys']).showKeys, 'options.showKeys', false);
    await this.info();
    const table = await this.#dm.table(this.#id, { secure: true });
    const rows = cryptRows(table);
    if (typeof rows === 'string' || table === undefined) throw new DmError({ errno: 116, syscall: 'ioctl', command: 'DM_TABLE_STATUS', device: this.name, message: `${this.name} is no longer a crypt volume (${typeof rows === 'string' ? rows : 'no table'})` });
    return showKeys ? table : Table.parse(maskCryptKeys(table));
  }

  /** The typed crypt target of the first row (cipher, key, offsets, flags), keys zeroed unless `showKeys`. */
  async target(options?: CryptTableOptions): Promise<CryptTarget> {
    const first = (await this.table(options)).rows[0]?.target;
    if (first === undefined || !isCryptTarget(first)) throw new DmError({ errno: 116, syscall: 'ioctl', command: 'DM_TABLE_STATUS', device: this.name, message: `${this.name} has no crypt row` });
    return first;
  }

  /**
   * Closes the volume: DEV_REMOVE (the kernel wipes the key it held). An open volume is busy
   * (EBUSY, after the client's few retries) unless `deferred`.
   */
  async close(options?: CryptCloseOptions): Promise<void> {
    await closeDevice(this.#dm, this.#id, this.name, this.dev, options);
  }
}
