/**
 * Bounds-checked reading of trace.dat bytes: a positioned file and a cursor over one buffer.
 * Every failure is a {@link TraceDatError} naming the file and the byte offset in it.
 */
import { closeSync, fstatSync, readSync } from 'node:fs';
import { UserError } from '../../model/errors.js';
import { inputError, openInput, readHeadOf } from '../input.js';

/** A problem at a byte offset of a trace.dat file (a UserError: the CLI prints it as it is). */
export class TraceDatError extends UserError {
  constructor(
    readonly file: string,
    /** Byte offset in the file where the problem was found. */
    readonly byteOffset: number,
    readonly detail: string,
  ) {
    super(`${file} at byte ${byteOffset}: ${detail}`);
  }
}

/**
 * A file opened for positioned reads; reads past its end are errors naming the offset. `close()`
 * releases the descriptor; a read after it opens the file again, so the metadata read once (formats,
 * options, lazily loaded sections) serves every later pass over the events.
 */
export class DatFile {
  private fd: number;
  /** File size in bytes. */
  readonly size: number;

  /** Opens `path` by the rule every input follows (no folder, no pipe: see `../input.ts`). */
  constructor(readonly path: string) {
    this.fd = openInput(path);
    this.size = fstatSync(this.fd).size;
  }

  /**
   * The first `n` bytes (fewer if the file is shorter), read whatever size the system gives
   * for the file, so that a file that cannot be read says so rather than looking empty.
   */
  head(n: number): Buffer {
    return readHeadOf(this.fd, this.path, n);
  }

  /** Reads exactly `len` bytes at `offset` (file bytes); `what` names the structure for the error. */
  read(offset: number, len: number, what: string): Buffer {
    return this.readInto(Buffer.allocUnsafe(len), offset, len, what);
  }

  /**
   * Reads exactly `len` bytes at `offset` into the start of `buf` (which must hold them) and
   * returns `buf[0, len)` — for readers that reuse one buffer.
   */
  readInto(buf: Buffer, offset: number, len: number, what: string): Buffer {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(len) || offset < 0 || len < 0)
      throw new TraceDatError(this.path, Math.max(0, Math.min(offset, this.size)), `${what}: impossible offset/size`);
    if (offset > this.size)
      throw new TraceDatError(this.path, this.size, `${what} is said to be at byte ${offset}, beyond the end of the file (${this.size} bytes): a corrupt offset`);
    if (offset + len > this.size)
      throw new TraceDatError(
        this.path,
        offset,
        `${what} needs ${len} bytes but the file ends at byte ${this.size} (truncated file?)`,
      );
    if (len > buf.length) throw new RangeError(`read of ${len} bytes into a buffer of ${buf.length}`);
    if (this.fd < 0) this.fd = openInput(this.path);
    let done = 0;
    while (done < len) {
      let n: number;
      try {
        n = readSync(this.fd, buf, done, len - done, offset + done);
      } catch (e) {
        throw inputError(this.path, e, offset + done);
      }
      if (n <= 0) throw new TraceDatError(this.path, offset + done, `${what}: unexpected end of file`);
      done += n;
    }
    return len === buf.length ? buf : buf.subarray(0, len);
  }

  /** Reads up to `len` bytes at `offset`, fewer at the end of the file. */
  readUpTo(offset: number, len: number): Buffer {
    const n = Math.max(0, Math.min(len, this.size - offset));
    return this.read(offset, n, 'data');
  }

  /** Closes the file descriptor (idempotent; a later read opens it again). */
  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

/** A cursor over a buffer whose first byte is at file offset `base` (for error offsets). */
export class Cursor {
  pos = 0;
  constructor(
    readonly buf: Buffer,
    readonly le: boolean,
    readonly file: string,
    /** File offset of buf[0]; for decompressed data, the offset of the compressed block. */
    readonly base: number,
    /** True when `buf` is decompressed data: offsets then name the section, not the byte. */
    readonly inflated = false,
  ) {}

  /** A TraceDatError at the cursor (or at the section start for decompressed data). */
  fail(detail: string, at = this.pos): TraceDatError {
    if (this.inflated) return new TraceDatError(this.file, this.base, `${detail} (at byte ${at} of the decompressed section)`);
    return new TraceDatError(this.file, this.base + at, detail);
  }

  private need(n: number, what: string): void {
    if (this.pos + n > this.buf.length)
      throw this.fail(`${what}: needs ${n} bytes, only ${this.buf.length - this.pos} left (truncated or corrupt)`);
  }

  /** Bytes left after the cursor. */
  get left(): number {
    return this.buf.length - this.pos;
  }

  u8(what = 'u8'): number {
    this.need(1, what);
    return this.buf[this.pos++];
  }

  u16(what = 'u16'): number {
    this.need(2, what);
    const v = this.le ? this.buf.readUInt16LE(this.pos) : this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  u32(what = 'u32'): number {
    this.need(4, what);
    const v = this.le ? this.buf.readUInt32LE(this.pos) : this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  u64(what = 'u64'): bigint {
    this.need(8, what);
    const v = this.le ? this.buf.readBigUInt64LE(this.pos) : this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  /** A u64 that must be a safe integer (sizes, offsets); an error naming `what` otherwise. */
  size64(what: string): number {
    const at = this.pos;
    const v = this.u64(what);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw this.fail(`${what} ${v} is impossibly large`, at);
    return Number(v);
  }

  /**
   * A u64 offset into a file of `fileSize` bytes (of a section, an option list, CPU data): an
   * error at the field when it points beyond the end of the file.
   */
  offset64(what: string, fileSize: number): number {
    const at = this.pos;
    const v = this.u64(what);
    if (v > BigInt(fileSize)) throw this.fail(`${what} ${v} is beyond the end of the file (${fileSize} bytes): a corrupt offset`, at);
    return Number(v);
  }

  /** A NUL-terminated string (latin1); the terminator is consumed. */
  cstr(what = 'string'): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) throw this.fail(`${what}: no terminating NUL before the end of the data`);
    const s = this.buf.toString('latin1', this.pos, end);
    this.pos = end + 1;
    return s;
  }

  /** The next `n` bytes (a view, not a copy). */
  bytes(n: number, what = 'data'): Buffer {
    if (!Number.isSafeInteger(n) || n < 0) throw this.fail(`${what}: impossible size ${n}`);
    this.need(n, what);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  /** `n` bytes as latin1 text. */
  text(n: number, what = 'text'): string {
    return this.bytes(n, what).toString('latin1');
  }
}

/** A sequential reader over a {@link DatFile} (for v6 metadata, which has no section table). */
export class FileCursor {
  constructor(
    readonly f: DatFile,
    readonly le: boolean,
    public pos: number,
  ) {}

  private take(n: number, what: string): Cursor {
    const c = new Cursor(this.f.read(this.pos, n, what), this.le, this.f.path, this.pos);
    this.pos += n;
    return c;
  }

  u16(what = 'u16'): number {
    return this.take(2, what).u16(what);
  }

  u32(what = 'u32'): number {
    return this.take(4, what).u32(what);
  }

  size64(what: string): number {
    return this.take(8, what).size64(what);
  }

  /** A u64 offset that must lie inside the file (see {@link Cursor.offset64}). */
  offset64(what: string): number {
    return this.take(8, what).offset64(what, this.f.size);
  }

  /** A NUL-terminated string of at most `max` bytes. */
  cstr(what = 'string', max = 4096): string {
    const chunk = this.f.readUpTo(this.pos, max);
    const end = chunk.indexOf(0);
    if (end < 0) throw new TraceDatError(this.f.path, this.pos, `${what}: no terminating NUL within ${max} bytes`);
    this.pos += end + 1;
    return chunk.toString('latin1', 0, end);
  }

  /** `n` bytes as a cursor positioned at their start. */
  cursor(n: number, what: string): Cursor {
    return this.take(n, what);
  }

  text(n: number, what: string): string {
    return this.take(n, what).buf.toString('latin1');
  }
}
