// Answers in the addon's indexed form (binding.d.ts NativeIndexed), built from plain rows and
// devices, for tests that drive programs without a kernel.
import type { NativeIndexed, NativeRows } from '../../binding';

const WORDS = 8;

/** Appends a NUL-terminated UTF-8 string; returns its offset and byte length. */
function put(bytes: number[], text: string): [number, number] {
  const b = Buffer.from(text, 'utf8');
  const at = bytes.length;
  bytes.push(...b, 0);
  return [at, b.length];
}

function words(value: number | bigint): [number, number] {
  const v = BigInt(value);
  return [Number(v & 0xffffffffn), Number(v >> 32n)];
}

/** Rows as TABLE_STATUS answers them. */
export function nativeRows(rows: readonly { start: number | bigint; length: number | bigint; type: string; params: string; status?: number }[]): NativeRows {
  const bytes: number[] = [0];
  const index: number[] = [];
  const types: string[] = [];
  for (const r of rows) {
    if (!types.includes(r.type)) types.push(r.type);
    const [at, len] = put(bytes, r.params);
    index.push(...words(r.start), ...words(r.length), r.status ?? 0, types.indexOf(r.type), at, len);
  }
  const ascii = rows.every((r) => /^\p{ASCII}*$/u.test(r.params));
  return { bytes: Uint8Array.from(bytes).buffer, index: Uint32Array.from(index), count: rows.length, ascii, types };
}

/** Devices as LIST_DEVICES answers them. */
export function nativeDevices(devices: readonly { name: string; dev: number | bigint; eventNr?: number; uuid?: string }[]): NativeIndexed {
  const bytes: number[] = [0];
  const index: number[] = [];
  for (const d of devices) {
    const [at, len] = put(bytes, d.name);
    const [uuidAt, uuidLen] = d.uuid === undefined ? [0, 0] : put(bytes, d.uuid);
    index.push(...words(d.dev), at, len, d.eventNr === undefined ? 0 : 1, d.eventNr ?? 0, uuidAt, uuidLen);
  }
  if (index.length !== devices.length * WORDS) throw new Error('bad index');
  const ascii = devices.every((d) => /^\p{ASCII}*$/u.test(d.name + (d.uuid ?? '')));
  return { bytes: Uint8Array.from(bytes).buffer, index: Uint32Array.from(index), count: devices.length, ascii };
}
