/**
 * Outputs are written whole or not at all: text goes to a temporary file in the target's folder
 * with back-pressure respected, and is renamed over the target only on `commit()`. `abort()`
 * (or any error) removes the temporary file, leaving the target as it was.
 */
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../model/errors.js';

/** A streaming writer to a file that appears only when complete. `-` writes to stdout. */
export class AtomicWriter {
  private readonly stream: WriteStream | NodeJS.WriteStream;
  private readonly tmp: string | undefined;
  private failed: Error | undefined;
  private pending = '';

  constructor(readonly path: string) {
    if (path === '-') {
      this.stream = process.stdout;
      return;
    }
    this.tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
    this.stream = createWriteStream(this.tmp, { flags: 'wx' });
    this.stream.on('error', (e) => (this.failed = e));
  }

  /** Queues text; flushes in 64 KiB pieces and waits for the stream to drain when it asks. */
  async write(text: string): Promise<void> {
    this.pending += text;
    if (this.pending.length >= 1 << 16) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.failed) throw new UserError(`cannot write ${this.path}: ${this.failed.message}`);
    const chunk = this.pending;
    this.pending = '';
    if (!chunk) return;
    if (!this.stream.write(chunk)) {
      try {
        await once(this.stream, 'drain');
      } catch (e) {
        throw new UserError(`cannot write ${this.path}: ${(e as Error).message}`);
      }
    }
  }

  /** Finishes the file and moves it into place. */
  async commit(): Promise<void> {
    await this.flush();
    if (this.tmp === undefined) return;
    await new Promise<void>((res, rej) => (this.stream as WriteStream).end((e?: Error | null) => (e ? rej(e) : res())));
    if (this.failed) throw new UserError(`cannot write ${this.path}: ${this.failed.message}`);
    try {
      await rename(this.tmp, this.path);
    } catch (e) {
      throw new UserError(`cannot write ${this.path}: ${(e as Error).message}`);
    }
  }

  /** Drops the partial output. */
  async abort(): Promise<void> {
    if (this.tmp === undefined) return;
    (this.stream as WriteStream).destroy();
    await unlink(this.tmp).catch(() => undefined);
  }
}
