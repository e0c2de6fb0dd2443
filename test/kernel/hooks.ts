import type { Control, NativeCallResult, NativeCompactResult, NativeRequest, NativeResult, NativeWatch } from '../../binding';
import { fromCall, fromCompact } from '../../ts/answer';
import type { DeviceMapper, DeviceMapperSync } from '../../ts/index';

/** What a test may run between a client's steps (the way another actor's steps can fall there). */
export interface ControlHooks {
  /** Before a request is sent. */
  before?: (request: NativeRequest) => Promise<void> | void;
  /** Once it answered. */
  after?: (request: NativeRequest, result: NativeResult) => Promise<void> | void;
  /** Wraps the callback a watch gets after each arm. */
  onArmed?: (onArmed: () => void) => () => void;
}

/** The request the positional `call`/`callSync` arguments stand for. */
function requestOf(cmd: number, flags: number, dev: number, eventNr: number, name: string, uuid: string, payload: NativeRequest | undefined): NativeRequest {
  if (payload !== undefined) return payload;
  return { cmd, flags, ...(name === '' ? {} : { name }), ...(uuid === '' ? {} : { uuid }), ...(dev === 0 ? {} : { dev }), ...(eventNr === 0 ? {} : { eventNr }) };
}

function isControl(value: unknown): value is Control {
  return typeof value === 'object' && value !== null && typeof Reflect.get(value, 'ioctl') === 'function';
}

/** The native control of one DeviceMapper or DeviceMapperSync (its private `control`). */
export function nativeControl(dm: DeviceMapper | DeviceMapperSync): Control {
  const control: unknown = Reflect.get(dm, 'control');
  if (!isControl(control)) throw new Error('DeviceMapper has no native control');
  return control;
}

/**
 * Puts `hooks` around the native control of one DeviceMapper or DeviceMapperSync (its private
 * `control`): the client code runs unchanged. Around `callSync` and `ioctlSync` (the compact forms
 * the synchronous client uses; `after` gets the answer as the object form gives it) the hooks must not return a
 * promise. Returns the function that takes them away again.
 */
export function hookControl(dm: DeviceMapper | DeviceMapperSync, hooks: ControlHooks): () => void {
  const control = nativeControl(dm);
  const proxy = new Proxy(control, {
    get(target, property) {
      if (property === 'ioctl') {
        return async (request: NativeRequest): Promise<NativeResult> => {
          if (hooks.before) await hooks.before(request);
          const result = await target.ioctl(request);
          if (hooks.after) await hooks.after(request, result);
          return result;
        };
      }
      if (property === 'call') {
        return async (cmd: number, flags: number, dev: number, eventNr: number, name: string, uuid: string, payload: NativeRequest | undefined): Promise<NativeCallResult> => {
          const request = requestOf(cmd, flags, dev, eventNr, name, uuid, payload);
          if (hooks.before) await hooks.before(request);
          const result = await target.call(cmd, flags, dev, eventNr, name, uuid, payload);
          if (hooks.after) await hooks.after(request, fromCall(result));
          return result;
        };
      }
      if (property === 'ioctlSync') {
        return (request: NativeRequest, header: Float64Array): NativeCompactResult => {
          if (hooks.before?.(request) instanceof Promise) throw new Error('a hook of a synchronous call returned a promise');
          const result = target.ioctlSync(request, header);
          if (hooks.after?.(request, fromCompact(header, result)) instanceof Promise) throw new Error('a hook of a synchronous call returned a promise');
          return result;
        };
      }
      if (property === 'callSync') {
        return (cmd: number, flags: number, dev: number, eventNr: number, name: string, uuid: string, payload: NativeRequest | undefined, header: Float64Array): NativeCompactResult => {
          const request = requestOf(cmd, flags, dev, eventNr, name, uuid, payload);
          if (hooks.before?.(request) instanceof Promise) throw new Error('a hook of a synchronous call returned a promise');
          const result = target.callSync(cmd, flags, dev, eventNr, name, uuid, payload, header);
          if (hooks.after?.(request, fromCompact(header, result)) instanceof Promise) throw new Error('a hook of a synchronous call returned a promise');
          return result;
        };
      }
      if (property === 'watch' && hooks.onArmed) {
        const wrap = hooks.onArmed;
        return (onArmed: () => void, onError: (e: Error) => void): NativeWatch => target.watch(wrap(onArmed), onError);
      }
      const value: unknown = Reflect.get(target, property);
      return typeof value === 'function' ? (...args: unknown[]): unknown => Reflect.apply(value, target, args) : value;
    },
  });
  Reflect.set(dm, 'control', proxy);
  return () => {
    Reflect.set(dm, 'control', control);
  };
}
