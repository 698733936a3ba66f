/**
 * Outputs are written whole or not at all: text goes to a temporary file in the target's folder
 * and is renamed over the target only on `commit()`. `abort()` (or any error) removes the
 * temporary file, leaving the target as it was. A target that is a device or a pipe (`-o
 * /dev/null`, a FIFO) cannot be replaced and is written directly. A run that ends before either
 * (a signal, a failed stdout) removes the temporary files still open with
 * {@link removeTemporaryFiles}. Errors name the target, never the temporary file.
 *
 * Text is encoded straight into a large Buffer (no Buffer per string); full buffers are written
 * while the next one fills, and `settle()` is the back-pressure: a writer never runs more than a
 * buffer or two ahead of the disk.
 */
import { statSync, unlinkSync } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { errnoText, UserError } from '../model/errors.js';

const SIZE = 1 << 22;
/** Text a JSON string literal holds as it is: printable ASCII except `"` and `\\`. */
const JSON_PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
/** The same, by byte: 1 for the bytes JSON.stringify leaves as they are (a table lookup per byte). */
const JSON_AS_IS = new Uint8Array(256).map((_, c) => (c >= 0x20 && c <= 0x7e && c !== 0x22 && c !== 0x5c ? 1 : 0));

/** "00" to "99" as ASCII digit pairs: pair n at [2n, 2n + 1]. */
const DIGIT_PAIRS = Uint8Array.from({ length: 200 }, (_, k) => 48 + (k & 1 ? (k >> 1) % 10 : Math.floor((k >> 1) / 10)));

/** The temporary files of this process not yet committed or removed. */
const temporaryFiles = new Set<string>();

/**
 * Removes every temporary file of this process at once, synchronously: for a run that ends before
 * its writers could commit or abort (the CLI calls it on a signal and before an early exit).
 */
export function removeTemporaryFiles(): void {
  for (const f of temporaryFiles) {
    try {
      unlinkSync(f);
    } catch {
      // already gone
    }
  }
  temporaryFiles.clear();
}

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
  private failure: Error | undefined;
  private finished = false;
  /** The temporary file exists and is this writer's (only then may abort remove it). */
  private created = false;

  /** The target is a device or a pipe (`/dev/null`, a FIFO): written directly, never renamed over. */
  private readonly device: boolean;

  constructor(readonly path: string) {
    let device = false;
    try {
      const st = path === '-' ? undefined : statSync(path);
      device = st !== undefined && !st.isFile() && !st.isDirectory();
    } catch {
      // no such file yet: a regular output
    }
    this.device = device;
    if (path !== '-') this.tmp = device ? path : join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  }

  /** Opens the file the bytes go to: the temporary file, created new, or the device itself. */
  private async openTarget(): Promise<FileHandle> {
    const fh = await open(this.tmp!, this.device ? 'w' : 'wx');
    if (!this.device) {
      this.created = true;
      temporaryFiles.add(this.tmp!);
    }
    return fh;
  }

  private fail(e: unknown): never {
    throw new UserError(`cannot write ${this.path}: ${errnoText(e)}`);
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

  /** Queues the current buffer for the file and takes a fresh one. */
  private rotate(): void {
    if (this.off > 0) this.queue.push(this.buf.subarray(0, this.off));
    this.buf = this.pool.pop() ?? Buffer.allocUnsafe(SIZE);
    this.off = 0;
  }

  /**
   * Appends a string without making any: one-byte text is copied char by char, anything else
   * goes through the UTF-8 encoder. For the exporters' hot paths, with `uint`, `pad` and `byte`.
   */
  text(s: string): void {
    const n = s.length;
    if (this.off + n * 3 > SIZE) {
      if (n * 3 > SIZE) return this.put(s);
      this.rotate();
    }
    if (n > 24) {
      this.off += this.buf.write(s, this.off, 'utf8');
      return;
    }
    const b = this.buf;
    let o = this.off;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 128) {
        this.off = o + b.write(s.slice(i), o, 'utf8');
        return;
      }
      b[o++] = c;
    }
    this.off = o;
  }

  /** Appends bytes: the exporters' cached fragments (one copy instead of a call per piece). */
  bytes(u: Uint8Array): void {
    if (this.off + u.length > SIZE) {
      this.rotate();
      if (u.length > SIZE) {
        this.queue.push(Buffer.from(u));
        return;
      }
    }
    this.buf.set(u, this.off);
    this.off += u.length;
  }

  /**
   * Appends a string as a JSON string literal. Printable ASCII without `"` or `\\` (nearly every
   * event body) is copied as it is; anything else goes through JSON.stringify.
   */
  json(s: string): void {
    if (JSON_PLAIN.test(s)) {
      if (this.off + s.length + 2 > SIZE) {
        if (s.length + 2 > SIZE) return this.put(JSON.stringify(s));
        this.rotate();
      }
      const b = this.buf;
      b[this.off] = 34;
      const n = b.write(s, this.off + 1, 'latin1');
      b[this.off + 1 + n] = 34;
      this.off += n + 2;
    } else this.put(JSON.stringify(s));
  }

  /** Appends src[start, end): an event body kept as bytes of its input (no string made). */
  range(src: Buffer, start: number, end: number): void {
    const n = end - start;
    if (this.off + n > SIZE) {
      this.rotate();
      if (n > SIZE) {
        this.queue.push(Buffer.from(src.subarray(start, end)));
        return;
      }
    }
    if (n > 96) {
      this.off += src.copy(this.buf, this.off, start, end);
      return;
    }
    const b = this.buf;
    let o = this.off;
    for (let k = start; k < end; k++) b[o++] = src[k];
    this.off = o;
  }

  /**
   * Appends the ASCII bytes src[start, end) as a JSON string literal: copied as they are when no
   * byte needs an escape (nearly every event body), else as {@link json} writes the text.
   */
  jsonRange(src: Buffer, start: number, end: number): void {
    const n = end - start;
    if (this.off + n + 2 > SIZE) {
      if (n + 2 > SIZE) return this.put(JSON.stringify(src.toString('latin1', start, end)));
      this.rotate();
    }
    const b = this.buf;
    let o = this.off;
    b[o++] = 34;
    for (let k = start; k < end; k++) {
      const c = src[k];
      if (JSON_AS_IS[c] === 0) return this.json(src.toString('latin1', start, end));
      b[o++] = c;
    }
    b[o++] = 34;
    this.off = o;
  }

  /**
   * Room for `n` bytes (at most a buffer) at the write position: returns the offset to write them
   * at in {@link view}; {@link advance} then takes the bytes written. For callers that copy into
   * the buffer themselves (a table of recent encodings).
   */
  reserve(n: number): number {
    if (this.off + n > SIZE) this.rotate();
    if (this.dv.buffer !== this.buf.buffer) this.dv = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    return this.off;
  }

  /** The current buffer as a DataView, valid after {@link reserve}. */
  get view(): DataView<ArrayBufferLike> {
    return this.dv;
  }
  private dv: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));

  /** Takes `n` bytes written at the offset {@link reserve} gave. */
  advance(n: number): void {
    this.off += n;
  }

  /** Appends one ASCII byte. */
  byte(c: number): void {
    if (this.off + 1 > SIZE) this.rotate();
    this.buf[this.off++] = c;
  }

  /**
   * Appends a non-negative ns count as µs with at most 3 decimals, trailing zeros of the fraction
   * dropped (Chrome's `ts`, as cyclesToMicros).
   */
  micros(ns: number): void {
    if (this.off + 32 > SIZE) this.rotate();
    const us = Math.floor(ns / 1000);
    let f = ns - us * 1000;
    this.uint(us);
    if (f === 0) return;
    const b = this.buf;
    let o = this.off;
    b[o++] = 46;
    const d0 = (f / 100) | 0;
    f -= d0 * 100;
    b[o++] = 48 + d0;
    if (f !== 0) {
      const d1 = (f / 10) | 0;
      b[o++] = 48 + d1;
      f -= d1 * 10;
      if (f !== 0) b[o++] = 48 + f;
    }
    this.off = o;
  }

  /** Appends a non-negative safe integer in decimal. */
  uint(v: number): void {
    this.pad(v, 1);
  }

  /** Appends a non-negative safe integer in decimal, left-padded with zeros to `width` digits. */
  pad(v: number, width: number): void {
    if (this.off + width + 16 > SIZE) this.rotate();
    const b = this.buf;
    if (v < 2147483648) {
      // Below 2^31 (pids, CPUs, ns fractions, the parts of a split TSC): int32 arithmetic.
      let len = v < 10 ? 1 : v < 100 ? 2 : v < 1000 ? 3 : v < 10000 ? 4 : v < 100000 ? 5 : v < 1000000 ? 6 : v < 10000000 ? 7 : v < 100000000 ? 8 : v < 1000000000 ? 9 : 10;
      if (len < width) len = width;
      let o = this.off + len;
      this.off = o;
      // Two digits per division, from the end; zeros fill the width.
      let i = len;
      for (; i >= 2; i -= 2) {
        const q = (v / 100) | 0;
        const d = (v - q * 100) << 1;
        b[--o] = DIGIT_PAIRS[d + 1];
        b[--o] = DIGIT_PAIRS[d];
        v = q;
      }
      if (i === 1) b[--o] = 48 + v;
      return;
    }
    let len = 1;
    for (let x = v; x >= 10; x = Math.floor(x / 10)) len++;
    if (len < width) len = width;
    let o = this.off + len;
    this.off = o;
    for (let i = 0; i < len; i++) {
      const q = Math.floor(v / 10);
      b[--o] = 48 + (v - q * 10);
      v = q;
    }
  }

  /** Starts writing queued buffers; waits while more than one is outstanding (back-pressure). */
  async settle(): Promise<void> {
    while (this.queue.length > 0) {
      await this.inflight;
      if (this.failure) throw this.failure;
      const next = this.queue.shift()!;
      // A failed write is kept and thrown by the next settle/commit (never an unhandled rejection).
      this.inflight = this.writeOut(next).then(
        () => {
          // Reuse only what went to a file: a stream may still hold a buffer it was given.
          if (this.tmp !== undefined && next.buffer.byteLength === SIZE && this.pool.length < 2) this.pool.push(Buffer.from(next.buffer, 0, SIZE));
        },
        (e: unknown) => void (this.failure = e instanceof Error ? e : new Error(String(e))),
      );
      if (this.queue.length === 0) break;
    }
  }

  /** Creates the temporary file now, so a path that cannot be written fails before any work. */
  async open(): Promise<void> {
    if (this.tmp === undefined || this.fh) return;
    try {
      this.fh = await this.openTarget();
    } catch (e) {
      this.fail(e);
    }
  }

  private async writeOut(b: Buffer): Promise<void> {
    try {
      if (this.tmp === undefined) {
        if (!process.stdout.write(b)) await new Promise((res) => process.stdout.once('drain', res));
        return;
      }
      this.fh ??= await this.openTarget();
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

  /** Writes out everything and closes the temporary file (the target is not touched yet). */
  async finish(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    await this.flush();
    await this.inflight;
    if (this.failure) throw this.failure;
    if (this.tmp === undefined) return;
    try {
      this.fh ??= await this.openTarget();
      await this.fh.close();
      this.fh = undefined;
    } catch (e) {
      this.fail(e);
    }
  }

  /** Finishes the file and moves it into place. */
  async commit(): Promise<void> {
    await this.finish();
    if (this.tmp === undefined || this.device) return;
    try {
      await rename(this.tmp, this.path);
      temporaryFiles.delete(this.tmp);
      this.created = false;
    } catch (e) {
      this.fail(e);
    }
  }

  /** Drops the partial output. */
  async abort(): Promise<void> {
    await this.inflight?.catch(() => undefined);
    await this.fh?.close().catch(() => undefined);
    this.fh = undefined;
    if (this.created) {
      await unlink(this.tmp!).catch(() => undefined);
      temporaryFiles.delete(this.tmp!);
      this.created = false;
    }
  }
}
