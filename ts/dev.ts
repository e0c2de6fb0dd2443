import { checkInteger, checkName, checkUuid, expected, expectedRange } from './validate';

/** A block device number. */
export interface DevNumber {
  /** The major number (12 bits in the kernel). */
  major: number;
  /** The minor number (20 bits in the kernel). */
  minor: number;
}

/**
 * How a device-mapper device is named in a call: its name, `{ name }`, `{ uuid }`, or its
 * device number `{ dev: { major, minor } }`.
 */
export type DevId =
  | string
  | {
      /** The device's name. */
      name: string;
    }
  | {
      /** The device's uuid. */
      uuid: string;
    }
  | {
      /** The device's number. */
      dev: DevNumber;
    };

/** A device in table parameters: 'major:minor', a /dev path, or `{ major, minor }`. */
export type DeviceRef = string | DevNumber;

/** Encodes a device number the way dm_ioctl.dev carries it (the kernel's huge encoding). */
export function encodeDev(dev: DevNumber): number {
  const { major, minor } = checkDevNumber(dev, 'dev');
  return (minor & 0xff) + major * 0x100 + Math.floor(minor / 0x100) * 0x100000;
}

/** Decodes dm_ioctl.dev (huge encoding: major 12 bits, minor 20 bits). */
export function decodeDev(encoded: number): DevNumber {
  // What the kernel's numbers are (major < 4096, minor < 2^20 take 32 bits): integer shifts.
  if (encoded >>> 0 === encoded) return { major: (encoded >>> 8) & 0xfff, minor: (encoded & 0xff) | ((encoded >>> 12) & 0xfff00) };
  if (!Number.isSafeInteger(encoded) || encoded < 0) throw expectedRange('an encoded device number', 'dev', encoded);
  const low = encoded % 0x100000000;
  return { major: Math.floor(low / 0x100) & 0xfff, minor: (low & 0xff) | (Math.floor(low / 0x1000) & 0xfff00) };
}

/** Decodes a Linux `st_rdev` (glibc encoding) from fs.stat. */
export function decodeRdev(rdev: number): DevNumber {
  const low = rdev % 0x100000000;
  const high = Math.floor(rdev / 0x100000000);
  const major = (Math.floor(low / 0x100) & 0xfff) | ((high & 0xfffff000) >>> 0);
  const minor = ((low & 0xff) | (Math.floor(rdev / 0x1000) % 0x100000000 & 0xffffff00)) >>> 0;
  return { major, minor };
}

/** Checks a { major, minor } pair (major < 4096, minor < 2^20: what dm_ioctl.dev can carry). */
export function checkDevNumber(value: unknown, name: string): DevNumber {
  if (typeof value !== 'object' || value === null) throw expected('{ major, minor }', name, value);
  const major: unknown = Reflect.get(value, 'major');
  const minor: unknown = Reflect.get(value, 'minor');
  return {
    major: checkInteger(major, `${name}.major`, 0, 0xfff),
    minor: checkInteger(minor, `${name}.minor`, 0, 0xfffff),
  };
}

/** 'major:minor' of a device number. */
export function formatDev(dev: DevNumber): string {
  return `${dev.major}:${dev.minor}`;
}

/** Parses 'major:minor'; undefined when the text is not of that form. */
export function parseDevNumber(text: string): DevNumber | undefined {
  const m = /^(\d+):(\d+)$/.exec(text);
  if (!m || m[1] === undefined || m[2] === undefined) return undefined;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  if (major > 0xfff || minor > 0xfffff) return undefined;
  return { major, minor };
}

/** The request fields that name one device, and how to mention it in messages. */
export interface ResolvedId {
  /** The name to send, checked. */
  name?: string;
  /** The uuid to send, checked. */
  uuid?: string;
  /** The device number to send, in the kernel's encoding (see {@link encodeDev}). */
  dev?: number;
  /** How errors name the device ('vol', 'uuid X', '253:0'). */
  label: string;
}

/** Checks a DevId and turns it into exactly one of name, uuid or dev (the kernel's rule). */
export function resolveId(id: unknown, argName = 'id'): ResolvedId {
  const what = "a device name, { name }, { uuid } or { dev: { major, minor } }";
  if (typeof id === 'string') return { name: checkName(id, argName), label: id };
  if (typeof id !== 'object' || id === null || Array.isArray(id)) throw expected(what, argName, id);
  const keys = Object.keys(id).filter((k) => Reflect.get(id, k) !== undefined);
  if (keys.length !== 1) throw expected(what, argName, id);
  const name: unknown = Reflect.get(id, 'name');
  const uuid: unknown = Reflect.get(id, 'uuid');
  const dev: unknown = Reflect.get(id, 'dev');
  if (name !== undefined) {
    const checked = checkName(name, `${argName}.name`);
    return { name: checked, label: checked };
  }
  if (uuid !== undefined) {
    const checked = checkUuid(uuid, `${argName}.uuid`);
    return { uuid: checked, label: `uuid ${checked}` };
  }
  if (dev !== undefined) {
    const d = checkDevNumber(dev, `${argName}.dev`);
    return { dev: encodeDev(d), label: formatDev(d) };
  }
  throw expected(what, argName, id);
}

/** Normalises a DeviceRef for a table: 'major:minor' stays, `{major, minor}` is formatted, a path stays. */
export function formatDeviceRef(ref: unknown, name: string): string {
  if (typeof ref === 'string') {
    if (parseDevNumber(ref)) return ref;
    if (ref.startsWith('/dev/') && !/[\s\0]/.test(ref)) return ref;
    throw expectedRange("a device as 'major:minor', a /dev path or { major, minor }", name, ref);
  }
  return formatDev(checkDevNumber(ref, name));
}
