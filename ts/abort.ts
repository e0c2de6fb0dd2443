import { expected } from './validate';

/** The error an aborted call rejects with: the signal's reason when it is an Error, else an AbortError. */
export function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const e = new Error('The operation was aborted');
  e.name = 'AbortError';
  return e;
}

/** An optional AbortSignal option. */
export function checkSignal(value: unknown, name: string): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof AbortSignal)) throw expected('an AbortSignal', name, value);
  return value;
}

// One 'abort' listener per signal, however many waits and watches share it: a caller that
// aborts 200 waits with one controller gets no MaxListenersExceededWarning from Node.
const subscribers = new WeakMap<AbortSignal, Set<() => void>>();
const listeners = new WeakMap<Set<() => void>, () => void>();

/**
 * Calls `fn` once when `signal` aborts; returns the function that unsubscribes it. All the
 * subscriptions to one signal share a single listener, removed with the last of them.
 */
export function onAbort(signal: AbortSignal | undefined, fn: () => void): () => void {
  if (signal === undefined) return () => undefined;
  let set = subscribers.get(signal);
  if (set === undefined) {
    const fresh = new Set<() => void>();
    const listener = (): void => {
      subscribers.delete(signal);
      for (const f of fresh) f();
      fresh.clear();
    };
    set = fresh;
    subscribers.set(signal, fresh);
    listeners.set(fresh, listener);
    signal.addEventListener('abort', listener, { once: true });
  }
  const own = set;
  const entry = (): void => fn();
  own.add(entry);
  return () => {
    if (!own.delete(entry) || own.size > 0) return;
    const listener = listeners.get(own);
    if (listener !== undefined) signal.removeEventListener('abort', listener);
    if (subscribers.get(signal) === own) subscribers.delete(signal);
  };
}
