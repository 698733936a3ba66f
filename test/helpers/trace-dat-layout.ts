/**
 * Where the parts of a trace.dat file are, read by the test itself from trace-cmd's
 * `trace-cmd.dat.v6(5)` / `.v7(5)` layout (not by kvmtrace's reader, which is what the tests
 * damage): the file header, the options, each BUFFER option's page-size field, the CPU data and
 * its pages or compressed chunks. Only little-endian files with 8-byte longs (all the fixtures).
 */

/** A byte range [start, end) of the file. */
export interface Range {
  start: number;
  end: number;
}

/** One compressed chunk of CPU data: its 8-byte header (csize, usize) and its data. */
export interface Chunk {
  header: Range;
  data: Range;
}

/** The parts of a trace.dat file. */
export interface TraceDatLayout {
  version: number;
  pageSize: number;
  /** Magic, version, endianness, long size, page size (v7: compression strings, first options offset). */
  header: Range;
  /** v7: the compression library's version text in the header (nothing checks it: trace-cmd ignores it too). */
  compressionVersion?: Range;
  /** The data of each option (after its id and size). */
  options: (Range & { id: number })[];
  /** v7: offset of each BUFFER option's u32 page size. */
  bufferPageSizeAt: number[];
  /** Uncompressed ring-buffer pages. */
  pages: Range[];
  /** Compressed chunks (v7 zstd/zlib). */
  chunks: Chunk[];
  /** v7: the 16-byte headers of the sections (options, metadata, buffers). */
  sectionHeaders: Range[];
  /** v6: the metadata between the header and the options (formats, kallsyms, printk, cmdlines). */
  metadata: Range;
}

class Reader {
  constructor(
    readonly b: Buffer,
    public p: number,
  ) {}
  cstr(): string {
    const e = this.b.indexOf(0, this.p);
    const s = this.b.toString('latin1', this.p, e);
    this.p = e + 1;
    return s;
  }
  u16(): number {
    return (this.p += 2), this.b.readUInt16LE(this.p - 2);
  }
  u32(): number {
    return (this.p += 4), this.b.readUInt32LE(this.p - 4);
  }
  u64(): number {
    return (this.p += 8), Number(this.b.readBigUInt64LE(this.p - 8));
  }
}

const BUFFER = 3;
/** Option ids HEADER_INFO … CMDLINES: each holds the offset of a metadata section. */
const FIRST_SECTION = 16;
const LAST_SECTION = 21;

/** Splits CPU data into its pages, or (compressed) its chunks: a u32 count, then csize, usize, data. */
function cpuData(b: Buffer, offset: number, size: number, compressed: boolean, pageSize: number, out: TraceDatLayout): void {
  if (size === 0) return;
  if (!compressed) {
    for (let at = offset; at + pageSize <= offset + size; at += pageSize) out.pages.push({ start: at, end: at + pageSize });
    return;
  }
  const r = new Reader(b, offset);
  const n = r.u32();
  for (let i = 0; i < n; i++) {
    const h = r.p;
    const csize = r.u32();
    r.u32();
    out.chunks.push({ header: { start: h, end: h + 8 }, data: { start: r.p, end: r.p + csize } });
    r.p += csize;
  }
}

function readV7(b: Buffer, r: Reader, out: TraceDatLayout): void {
  const compressed = r.cstr() !== 'none';
  const v = r.p;
  r.cstr();
  out.compressionVersion = { start: v, end: r.p - 1 };
  let off = r.u64();
  out.header.end = r.p;
  out.metadata = { start: r.p, end: r.p };
  const section = (at: number): void => void out.sectionHeaders.push({ start: at, end: at + 16 });
  while (off !== 0) {
    section(off);
    const s = new Reader(b, off + 16);
    let next = 0;
    for (;;) {
      const id = s.u16();
      const size = s.u32();
      out.options.push({ id, start: s.p, end: s.p + size });
      if (id === 0) {
        next = size >= 8 ? Number(b.readBigUInt64LE(s.p)) : 0;
        break;
      }
      if (id >= FIRST_SECTION && id <= LAST_SECTION) section(Number(b.readBigUInt64LE(s.p)));
      if (id === BUFFER) {
        const o = new Reader(b, s.p);
        section(o.u64());
        o.cstr();
        o.cstr();
        out.bufferPageSizeAt.push(o.p);
        const pageSize = o.u32();
        const n = o.u32();
        for (let i = 0; i < n; i++) {
          o.u32();
          cpuData(b, o.u64(), o.u64(), compressed, pageSize, out);
        }
      }
      s.p += size;
    }
    off = next;
  }
}

function readV6(b: Buffer, r: Reader, out: TraceDatLayout): void {
  out.header.end = r.p;
  // (`r.p += r.u64()` would add to the position from before the size was read.)
  const skip = (n: number): void => void (r.p += n);
  const text64 = (): void => skip(r.u64());
  r.cstr();
  text64(); // header_page
  r.cstr();
  text64(); // header_event
  for (let n = r.u32(); n > 0; n--) text64(); // ftrace formats
  for (let systems = r.u32(); systems > 0; systems--) {
    r.cstr();
    for (let n = r.u32(); n > 0; n--) text64();
  }
  skip(r.u32()); // kallsyms
  skip(r.u32()); // printk
  text64(); // cmdlines
  const cpus = r.u32();
  out.metadata = { start: out.header.end, end: r.p };
  if (r.b.toString('latin1', r.p, r.p + 10).startsWith('options')) {
    r.p += 10;
    for (;;) {
      const id = r.u16();
      if (id === 0) break;
      const size = r.u32();
      out.options.push({ id, start: r.p, end: r.p + size });
      r.p += size;
    }
  }
  // The top buffer's CPU table follows "flyrecord\0"; each instance (BUFFER option: its offset,
  // then its name) has a "flyrecord\0" and a table of its own at that offset.
  const tables = [r.p, ...out.options.filter((o) => o.id === BUFFER).map((o) => Number(b.readBigUInt64LE(o.start)))];
  for (const at of tables) {
    const t = new Reader(b, at + 10);
    for (let cpu = 0; cpu < cpus; cpu++) cpuData(b, t.u64(), t.u64(), false, out.pageSize, out);
  }
}

/** Reads the layout of an undamaged trace.dat (v6 or v7, little-endian, 8-byte longs). */
export function traceDatLayout(b: Buffer): TraceDatLayout {
  const r = new Reader(b, 10);
  const version = Number(r.cstr());
  r.p += 2; // endianness, long size
  const pageSize = r.u32();
  const out: TraceDatLayout = {
    version,
    pageSize,
    header: { start: 0, end: r.p },
    options: [],
    bufferPageSizeAt: [],
    pages: [],
    chunks: [],
    sectionHeaders: [],
    metadata: { start: 0, end: 0 },
  };
  if (version === 7) readV7(b, r, out);
  else readV6(b, r, out);
  return out;
}
