import * as fs from 'node:fs';

/**
 * Follows a host file that the sandboxed command appends to (through hostfs, whose writes reach
 * the host file at once) and hands every new byte to `onChunk`, in order, exactly once.
 * inotify (fs.watch) wakes it promptly; a slow poll covers filesystems where it is silent.
 * @internal
 */
export class FileTail {
  private readonly path: string;
  private readonly onChunk: (chunk: Buffer) => void;
  private fd: number | undefined;
  private offset = 0;
  private watcher: fs.FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pending: Promise<void> = Promise.resolve();
  private queued = false;

  constructor(path: string, onChunk: (chunk: Buffer) => void) {
    this.path = path;
    this.onChunk = onChunk;
  }

  /** Opens the (already created) file and starts following it. */
  start(pollMs = 200): void {
    this.fd = fs.openSync(this.path, 'r');
    try {
      this.watcher = fs.watch(this.path, { persistent: false }, () => this.schedule());
      this.watcher.on('error', () => undefined);
    } catch {
      this.watcher = undefined;
    }
    this.timer = setInterval(() => this.schedule(), pollMs);
    this.timer.unref();
  }

  /** Reads what is left, stops following and closes the file. */
  async stop(): Promise<void> {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.queued = false;
    await this.pending;
    await this.drain();
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }

  private schedule(): void {
    if (this.queued) return;
    this.queued = true;
    this.pending = this.pending.then(async () => {
      this.queued = false;
      await this.drain();
    }).catch(() => undefined); // a failed read is retried by the next wake-up and by stop()
  }

  private async drain(): Promise<void> {
    const fd = this.fd;
    if (fd === undefined) return;
    const buffer = Buffer.allocUnsafe(64 * 1024);
    for (;;) {
      const bytesRead = await new Promise<number>((resolve, reject) => {
        fs.read(fd, buffer, 0, buffer.length, this.offset, (err, n) => (err ? reject(err) : resolve(n)));
      });
      if (bytesRead === 0) return;
      this.offset += bytesRead;
      this.onChunk(Buffer.from(buffer.subarray(0, bytesRead)));
    }
  }
}
