/**
 * Ring-buffer pages of one CPU (layout: libtraceevent's `kbuffer-parse.c`, the kernel's
 * `ring_buffer.c`): a page header (u64 timestamp, a `long` commit whose bits 31/30 flag lost
 * events), then events, each with a u32 header `type_len:5, time_delta:27` (little-endian: type_len
 * in the low bits; big-endian: in the high bits). type_len 29 = padding, 30 = time extend,
 * 31 = absolute timestamp (as `header_event` in every file says), 0 = length in the next u32, 1..28 = length / 4.
 *
 * The reader holds one block of pages at a time (a file window or one decompressed chunk), so
 * memory stays bounded whatever the file size.
 */
import type { Diagnostics } from '../../model/diagnostics.js';
import { Cursor } from './bytes.js';
import { InflateError } from './compress.js';
import type { TraceDat } from './open.js';
import type { CpuData, TraceDatBuffer } from './types.js';
import { COMPRESS_HEADER_SIZE, parseCompressHeader } from './structs.js';

const TS_SHIFT = 27;
const DELTA_MASK = (1 << 27) - 1;
const MISSING_EVENTS = 0x80000000;
const MISSING_STORED = 0x40000000;
const COMMIT_MASK = (1 << 27) - 1;
/** Bytes of an uncompressed CPU stream read at once. */
const WINDOW = 256 * 1024;

/** Smallest and largest ring-buffer page (sub-buffer) size: 4 KiB, the smallest page of any Linux architecture; 16 MiB, far above the kernel's largest sub-buffer. */
const MIN_PAGE = 4096;
const MAX_PAGE = 1 << 24;

/**
 * Why `n` cannot be a ring-buffer page size (the header's, or a BUFFER option's), or undefined
 * when it can: a power of two from 4 KiB to 16 MiB. Every page walk relies on it (a size of 0
 * would never advance).
 */
export function pageSizeProblem(n: number): string | undefined {
  if (n >= MIN_PAGE && n <= MAX_PAGE && (n & (n - 1)) === 0) return undefined;
  return `page size ${n} is not a power of two from 4096 to ${MAX_PAGE} bytes`;
}

/** A source of whole pages: file windows or decompressed chunks. */
export interface BlockSource {
  /** The next block of pages (valid until the following call), with the file offset that names it in errors; null at the end. */
  next(): { buf: Buffer; fileOffset: number; inflated: boolean } | null;
}

/**
 * Windows of an uncompressed CPU stream, all read into one buffer: a block is valid until the next
 * call (the reader is done with its pages by then), so memory does not wait for the collector.
 */
function plainSource(t: TraceDat, cd: CpuData, pageSize: number): BlockSource {
  let pos = cd.offset;
  const end = cd.offset + cd.size;
  const win = Math.max(pageSize, Math.floor(WINDOW / pageSize) * pageSize);
  let room: Buffer | undefined;
  return {
    next() {
      if (pos >= end) return null;
      const n = Math.min(win, end - pos);
      room ??= Buffer.allocUnsafeSlow(Math.min(win, cd.size));
      const buf = t.dat.readInto(room, pos, n, `CPU ${cd.cpu} data`);
      const r = { buf, fileOffset: pos, inflated: false };
      pos += n;
      return r;
    },
  };
}

/** Where a reader reports a damaged part of its data (file offset, what was wrong), to be skipped. */
export type ReportBad = (fileOffset: number, message: string) => void;

/**
 * The decompressed chunks of a compressed v7 data area (CPU data or latency text). Like file
 * windows, each chunk is valid until the next call: the compressed and decompressed bytes go
 * through two buffers that are reused (grown when a chunk needs more).
 *
 * A chunk that cannot be decompressed is reported through `bad` and skipped (its pages are lost,
 * the next chunk is read), as a damaged page is; a chunk header whose compressed size runs past
 * the data leaves no way to find the next chunk, so the rest of the data is reported and skipped.
 */
export function chunkSource(t: TraceDat, cd: CpuData, bad: ReportBad, pageSize = t.pageSize): BlockSource {
  const le = t.littleEndian;
  let packed = Buffer.alloc(0);
  let room = Buffer.alloc(0);
  let count = -1;
  let done = 0;
  let pos = cd.offset;
  // The CPU size written by trace-cmd 3.1 counts the chunks but not the leading u32 chunk count
  // (3.2 counts it); the data cannot run past the file either way.
  const end = Math.min(cd.offset + 4 + cd.size, t.dat.size);
  const pages = (n: number): string => `${Math.ceil(n / pageSize)} page(s), ${n} bytes`;
  return {
    next() {
      if (cd.size === 0) return null;
      if (count < 0) {
        count = new Cursor(t.dat.read(pos, 4, `CPU ${cd.cpu} chunk count`), le, t.file, pos).u32();
        pos += 4;
      }
      for (; done < count; done++) {
        const at = pos;
        if (at + COMPRESS_HEADER_SIZE > end) {
          bad(at, `chunk ${done + 1} of ${count} would start past the end of the CPU's data (byte ${end}); the chunk count is wrong, nothing more to read`);
          return null;
        }
        const { csize, usize } = parseCompressHeader(t.dat.read(pos, COMPRESS_HEADER_SIZE, `CPU ${cd.cpu} chunk header`), le);
        if (at + 8 + csize > end) {
          bad(at, `chunk ${done + 1} of ${count}: its compressed size ${csize} runs past the end of the CPU's data (byte ${end}); the rest of the data (${end - at} bytes) skipped`);
          return null;
        }
        pos += 8 + csize;
        if (usize > 1 << 26) {
          bad(at, `chunk ${done + 1} of ${count} claims ${usize} bytes uncompressed (at most 64 MiB expected); chunk skipped`);
          continue;
        }
        if (csize > packed.length) packed = Buffer.allocUnsafeSlow(csize);
        if (usize > room.length) room = Buffer.allocUnsafeSlow(usize);
        const data = t.dat.readInto(packed, at + 8, csize, `CPU ${cd.cpu} chunk`);
        let buf: Buffer;
        try {
          buf = t.inflate!(data, usize, room);
        } catch (e) {
          if (!(e instanceof InflateError)) throw e;
          bad(at, `compressed chunk ${done + 1} of ${count} (${csize} bytes) cannot be decompressed (${e.message}); its ${pages(usize)}, skipped`);
          continue;
        }
        if (buf.length !== usize) {
          bad(at, `compressed chunk ${done + 1} of ${count} decompressed to ${buf.length} bytes, not the ${usize} its header gives; its pages skipped`);
          continue;
        }
        done++;
        return { buf, fileOffset: at, inflated: true };
      }
      return null;
    },
  };
}

/**
 * Iterates one CPU's events in order. After {@link next} returns true, the public fields describe
 * the current event: its timestamp (raw ring-buffer units, relative to `base`), its record bytes
 * (`buf[dataPos .. dataPos+dataLen)`) and the events lost just before it.
 */
export class CpuReader {
  /** CPU number. */
  readonly cpu: number;
  /** Timestamp of the current event minus `base`, in raw ring-buffer units. */
  ts = 0;
  /** The block holding the current event. */
  buf: Buffer = Buffer.alloc(0);
  /** Offset of the current event's record in `buf`, and its length in bytes. */
  dataPos = 0;
  dataLen = 0;
  /** Events lost before the current one: 0 none, -1 some (count unknown), else the count. */
  missed = 0;
  /** File offset naming the current event (its byte, or its chunk's for compressed data). */
  fileOffset = 0;
  /** Index in `buf` where the current event's page ends. */
  pageEnd = 0;

  private src: BlockSource;
  private blockOffset = 0;
  private inflated = false;
  private pageStart = 0;
  private pos = 0;
  private end = 0;
  private pageRel = 0;
  private pageTs = 0n;
  private delta = 0;
  private pendingMissed = 0;
  private firstOnPage = false;
  private readonly le: boolean;
  private readonly pageSize: number;
  private readonly commitSize: number;
  private readonly dataOffset: number;
  private readonly path: string;

  constructor(
    t: TraceDat,
    buffer: TraceDatBuffer,
    cd: CpuData,
    /** The bigint every `ts` is relative to. */
    public base: bigint,
    private readonly diags: Diagnostics,
  ) {
    this.cpu = cd.cpu;
    this.le = t.littleEndian;
    this.pageSize = buffer.pageSize;
    this.commitSize = t.commitSize;
    this.dataOffset = t.pageDataOffset;
    this.path = t.file;
    this.src = buffer.compressed
      ? chunkSource(t, cd, (at, msg) => this.report(at, msg), buffer.pageSize)
      : plainSource(t, cd, buffer.pageSize);
    this.buf = Buffer.alloc(0);
    this.pageStart = -this.pageSize;
  }

  /** The raw timestamp of the first page of this CPU (undefined when it has no data). */
  static firstPageTs(t: TraceDat, buffer: TraceDatBuffer, cd: CpuData): bigint | undefined {
    if (cd.size === 0) return undefined;
    // A damaged chunk is skipped here without a word: the reader that walks the pages reports it.
    const src = buffer.compressed ? chunkSource(t, cd, () => {}, buffer.pageSize) : plainSource(t, cd, buffer.pageSize);
    const b = src.next();
    if (!b || b.buf.length < 8) return undefined;
    return t.littleEndian ? b.buf.readBigUInt64LE(0) : b.buf.readBigUInt64BE(0);
  }

  /** The u32 at `at` of the block (callers check it lies inside the page), from its bytes. */
  private u32(at: number): number {
    const b = this.buf;
    return this.le
      ? b[at + 3] * 0x1000000 + ((b[at + 2] << 16) | (b[at + 1] << 8) | b[at])
      : b[at] * 0x1000000 + ((b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]);
  }

  private bad(at: number, msg: string): void {
    const where = this.inflated ? this.blockOffset : this.blockOffset + at;
    const detail = this.inflated ? `${msg} (byte ${at} of the decompressed chunk)` : msg;
    this.report(where, `${detail}; rest of the page skipped`);
  }

  /** Reports damage at a file offset of this CPU's data (a diagnostic; the first is fatal with --strict). */
  private report(fileOffset: number, message: string): void {
    this.diags.add({ file: this.path, byteOffset: fileOffset, message: `CPU ${this.cpu}: ${message}` });
  }

  /** Loads the next page; false at the end of the CPU's data. */
  private nextPage(): boolean {
    for (;;) {
      let start = this.pageStart + this.pageSize;
      if (start + this.pageSize > this.buf.length) {
        if (start < this.buf.length)
          this.bad(start, `trailing ${this.buf.length - start} bytes are not a whole page`);
        const b = this.src.next();
        if (!b) return false;
        this.buf = b.buf;
        this.blockOffset = b.fileOffset;
        this.inflated = b.inflated;
        start = 0;
        if (b.buf.length < this.pageSize) {
          this.bad(0, `data block of ${b.buf.length} bytes is smaller than a page`);
          this.pageStart = b.buf.length;
          continue;
        }
      }
      this.pageStart = start;
      this.pageEnd = start + this.pageSize;
      const pts = this.le ? this.buf.readBigUInt64LE(start) : this.buf.readBigUInt64BE(start);
      const cAt = start + 8;
      let flags: number;
      if (this.commitSize === 8) flags = this.le ? this.buf.readUInt32LE(cAt) : this.buf.readUInt32BE(cAt + 4);
      else flags = this.u32(cAt);
      const size = flags & COMMIT_MASK;
      const dataStart = start + this.dataOffset;
      if (this.dataOffset + size > this.pageSize) {
        this.bad(cAt, `page commit ${size} runs past the ${this.pageSize}-byte page`);
        continue;
      }
      this.pendingMissed = 0;
      if (flags & MISSING_EVENTS) {
        this.pendingMissed = -1;
        if (flags & MISSING_STORED && this.dataOffset + size + this.commitSize <= this.pageSize) {
          const at = dataStart + size;
          const lo = this.le ? this.buf.readUInt32LE(at) : this.buf.readUInt32BE(at + this.commitSize - 4);
          const hi = this.commitSize === 8 ? (this.le ? this.buf.readUInt32LE(at + 4) : this.buf.readUInt32BE(at)) : 0;
          this.pendingMissed = hi * 2 ** 32 + lo;
        }
      }
      this.pageTs = pts;
      this.pageRel = Number(pts - this.base);
      this.delta = 0;
      this.pos = dataStart;
      this.end = dataStart + size;
      this.firstOnPage = true;
      return true;
    }
  }

  /** Advances to the next data event; false at the end of the CPU's data. */
  next(): boolean {
    for (;;) {
      try {
        return this.step();
      } catch (e) {
        // A read outside the block can only come from damaged sizes: report it and skip the page.
        if (!(e instanceof RangeError)) throw e;
        this.bad(this.pos, `damaged event data (${e.message})`);
        this.pos = this.end;
      }
    }
  }

  private step(): boolean {
    for (;;) {
      if (this.pos >= this.end) {
        if (!this.nextPage()) return false;
        continue;
      }
      const at = this.pos;
      if (at + 4 > this.end) {
        this.bad(at, 'event header runs past the page commit');
        this.pos = this.end;
        continue;
      }
      const h = this.u32(at);
      let typeLen: number;
      let d: number;
      if (this.le) {
        typeLen = h & 31;
        d = h >>> 5;
      } else {
        typeLen = h >>> 27;
        d = h & DELTA_MASK;
      }
      const first = this.firstOnPage && at === this.pageStart + this.dataOffset;
      this.firstOnPage = false;
      if (typeLen >= 29) {
        if (at + 8 > this.end) {
          this.bad(at, `type ${typeLen} event runs past the page commit`);
          this.pos = this.end;
          continue;
        }
        const arg = this.u32(at + 4);
        if (typeLen === 29) {
          this.delta += d;
          const next = at + 4 + arg;
          if (arg === 0 || next > this.end) {
            // Padding to the end of the page (length 0 or past commit): nothing more here.
            this.pos = this.end;
          } else this.pos = next;
        } else if (typeLen === 30) {
          this.delta += arg * 2 ** TS_SHIFT + d;
          this.pos = at + 8;
        } else {
          // Absolute timestamp: the low 59 bits, with the page timestamp's top 5 bits.
          const abs = ((BigInt(arg) << 27n) + BigInt(d)) | (this.pageTs & (0xf8n << 56n));
          this.delta = Number(abs - this.pageTs);
          this.pos = at + 8;
        }
        continue;
      }
      this.delta += d;
      let len: number;
      let dataAt: number;
      if (typeLen === 0) {
        if (at + 8 > this.end) {
          this.bad(at, 'event length runs past the page commit');
          this.pos = this.end;
          continue;
        }
        const l = this.u32(at + 4);
        if (l < 4) {
          this.bad(at, `event length ${l} is impossible`);
          this.pos = this.end;
          continue;
        }
        len = Math.floor((l - 4 + 3) / 4) * 4;
        dataAt = at + 8;
      } else {
        len = typeLen * 4;
        dataAt = at + 4;
      }
      if (dataAt + len > this.end) {
        this.bad(at, `event of ${len} bytes runs past the page commit`);
        this.pos = this.end;
        continue;
      }
      this.pos = dataAt + len;
      this.ts = this.pageRel + this.delta;
      this.dataPos = dataAt;
      this.dataLen = len;
      this.missed = first ? this.pendingMissed : 0;
      this.fileOffset = this.inflated ? this.blockOffset : this.blockOffset + at;
      return true;
    }
  }
}
