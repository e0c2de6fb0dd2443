/**
 * Per-device queues: the multi-step operations of one client on one device run one after
 * another, so that each result describes what happened to its own table.
 * @internal
 */
export class DeviceLocks {
  private readonly tails = new Map<string, Promise<void>>();

  /** Waits for the operations queued on `key` before this one; resolves with the release. */
  async acquire(key: string): Promise<() => void> {
    const previous = this.tails.get(key);
    let release: () => void = () => undefined;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous === undefined ? mine : previous.then(() => mine);
    this.tails.set(key, tail);
    if (previous !== undefined) await previous;
    return () => {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
  }

  /**
   * The release at once when nothing is queued on `key` (the caller goes on without a pause,
   * so its first request leaves in the order of the calls), else undefined: then `acquire`.
   */
  tryAcquire(key: string): (() => void) | undefined {
    if (this.tails.has(key)) return undefined;
    let release: () => void = () => undefined;
    const tail = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.tails.set(key, tail);
    return () => {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
  }

  /** How many devices have operations queued or running. */
  get size(): number {
    return this.tails.size;
  }
}
