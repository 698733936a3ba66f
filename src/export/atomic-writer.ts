/**
 * Outputs are written whole or not at all: text goes to a temporary file in the target's folder
 * and is renamed over the target only on `commit()`. `abort()` (or any error) removes the
 * temporary file, leaving the target as it was.
 *
 * Text is encoded straight into a large Buffer (no Buffer per string); full buffers are written
 * while the next one fills, and `settle()` is the back-pressure: a writer never runs more than a
 * buffer or two ahead of the disk.
 */
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../model/errors.js';

const SIZE = 1 << 22;

/** A streaming writer to a file that appears only when complete. `-` writes to stdout. */
export class AtomicWriter {
  private fh: FileHandle | undefined;
  private readonly tmp: string | undefined;
  private buf: Buffer = Buffer.allocUnsafe(SIZE);
  private off = 0;
  /** Filled buffers waiting for the file, and emptied ones to reuse. */
  private readonly queue: Buffer[] = [];
  private readonly pool: Buffer[] = [];
  private inflight: Promise<void> | undefined;

  constructor(readonly path: string) {
    if (path !== '-') this.tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  }

  private fail(e: unknown): never {
    throw new UserError(`cannot write ${this.path}: ${(e as Error).message}`);
  }

  /** Appends text and lets a full buffer go to the file. */
  async write(text: string): Promise<void> {
    this.put(text);
    await this.settle();
  }

  /**
   * Appends text synchronously. A full buffer is queued for writing and a fresh one taken; call
   * `settle()` regularly (after each batch) so at most one buffer waits for the disk.
   */
  put(text: string): void {
    // A UTF-16 code unit takes at most 3 bytes in UTF-8.
    if (this.off + text.length * 3 > SIZE) {
      this.queue.push(this.buf.subarray(0, this.off));
      this.buf = this.pool.pop() ?? Buffer.allocUnsafe(SIZE);
      this.off = 0;
      if (text.length * 3 > SIZE) {
        this.queue.push(Buffer.from(text, 'utf8'));
        return;
      }
    }
    this.off += this.buf.write(text, this.off, 'utf8');
  }

  /** Starts writing queued buffers; waits while more than one is outstanding (back-pressure). */
  async settle(): Promise<void> {
    while (this.queue.length > 0) {
      await this.inflight;
      const next = this.queue.shift()!;
      this.inflight = this.writeOut(next).then(() => {
        if (next.buffer.byteLength === SIZE && this.pool.length < 2) this.pool.push(Buffer.from(next.buffer, 0, SIZE));
      });
      if (this.queue.length === 0) break;
    }
  }

  private async writeOut(b: Buffer): Promise<void> {
    try {
      if (this.tmp === undefined) {
        if (!process.stdout.write(b)) await new Promise((res) => process.stdout.once('drain', res));
        return;
      }
      this.fh ??= await open(this.tmp, 'wx');
      let done = 0;
      while (done < b.length) done += (await this.fh.write(b, done, b.length - done)).bytesWritten;
    } catch (e) {
      this.fail(e);
    }
  }

  private async flush(): Promise<void> {
    if (this.off > 0) {
      this.queue.push(this.buf.subarray(0, this.off));
      this.buf = this.pool.pop() ?? Buffer.allocUnsafe(SIZE);
      this.off = 0;
    }
    await this.settle();
  }

  /** Finishes the file and moves it into place. */
  async commit(): Promise<void> {
    await this.flush();
    await this.inflight;
    if (this.tmp === undefined) return;
    try {
      this.fh ??= await open(this.tmp, 'wx');
      await this.fh.close();
      this.fh = undefined;
      await rename(this.tmp, this.path);
    } catch (e) {
      this.fail(e);
    }
  }

  /** Drops the partial output. */
  async abort(): Promise<void> {
    await this.inflight?.catch(() => undefined);
    await this.fh?.close().catch(() => undefined);
    this.fh = undefined;
    if (this.tmp !== undefined) await unlink(this.tmp).catch(() => undefined);
  }
}
