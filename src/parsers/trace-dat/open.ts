/**
 * Opening a trace.dat file (trace-cmd's format, versions 6 and 7; spec: trace-cmd's
 * `Documentation/trace-cmd/trace-cmd.dat.v6.5.txt` and `…v7.5.txt`): the header, the metadata
 * (event formats, kallsyms, printk formats, cmdlines) and the options, giving a
 * {@link TraceDatInfo}. Event data is read later, page by page (see `events.ts`).
 *
 * Known deviations from the written spec, seen in real files: v6 files carry options (after the
 * CPU count, introduced by `options  \0`; the list ends with a bare 2-byte id 0), and each v6
 * `flyrecord` CPU table is followed by a u64 length and the trace_clock text when the file has a
 * TRACECLOCK option.
 */
import type { Diagnostics } from '../../model/diagnostics.js';
import { Cursor, DatFile, FileCursor, TraceDatError } from './bytes.js';
import { inflaterFor, type Inflate } from './compress.js';
import { COMPRESS_HEADER_SIZE, parseCompressHeader, parseSectionHeader, SECTION_HEADER_SIZE } from './structs.js';
import { parseEventFormat, parseHeaderPage, type EventFormat } from './format.js';
import { Kallsyms } from './kallsyms.js';
import { cpuData, decodeOption, emptyOptions, OPT, selectedClock, type SectionOffsets } from './options.js';
import { pageSizeProblem } from './pages.js';
import { quoteInput } from '../../model/quote.js';
import type { TraceDatBuffer, TraceDatInfo, TraceDatOptions } from './types.js';

const MAGIC = Buffer.from([0x17, 0x08, 0x44, ...Buffer.from('tracing')]);

/** An open trace.dat: its metadata plus what event readers need (the file, the decompressor). */
export interface TraceDat extends TraceDatInfo {
  /** @internal the open file */
  readonly dat: DatFile;
  /** @internal the decompressor of v7 compressed data */
  readonly inflate?: Inflate;
  /** Closes the file. */
  close(): void;
}

/** Section ids in v7 files (same numbers as the options that point at them). */
const SEC = { OPTIONS: 0, HEADER_INFO: 16, FTRACE_EVENTS: 17, EVENT_FORMATS: 18, KALLSYMS: 19, PRINTK: 20, CMDLINES: 21 };

/**
 * Opens a trace.dat file and reads all its metadata. Structural damage in the metadata is a
 * {@link TraceDatError} (a UserError naming the file and byte offset); damage in event pages is
 * reported later, while reading events, through `diags`.
 */
export function openTraceDat(file: string, diags: Diagnostics): TraceDat {
  void diags;
  const dat = new DatFile(file);
  try {
    return readAll(dat);
  } catch (e) {
    dat.close();
    if (e instanceof TraceDatError) throw e;
    if (e instanceof RangeError || e instanceof TypeError || e instanceof SyntaxError)
      throw new TraceDatError(file, 0, `corrupt metadata (${e.message})`);
    throw e;
  }
}

function readAll(dat: DatFile): TraceDat {
  const file = dat.path;
  const head = dat.head(64);
  if (head.length < MAGIC.length || !head.subarray(0, MAGIC.length).equals(MAGIC))
    throw new TraceDatError(file, 0, 'not a trace.dat file (no "\\x17\\x08\\x44tracing" magic)');
  const fc = new FileCursor(dat, true, MAGIC.length);
  const versionText = fc.cstr('version', 16);
  const version = Number(versionText);
  if (!/^\d+$/.test(versionText) || (version !== 6 && version !== 7))
    throw new TraceDatError(file, MAGIC.length, `trace.dat version ${quoteInput(versionText)} is not supported (6 and 7 are)`);
  const endianByte = fc.cursor(1, 'endianness').u8();
  if (endianByte > 1) throw new TraceDatError(file, fc.pos - 1, `endianness byte ${endianByte} is neither 0 nor 1`);
  const le = endianByte === 0;
  const longSize = fc.cursor(1, 'long size').u8();
  if (longSize !== 4 && longSize !== 8) throw new TraceDatError(file, fc.pos - 1, `long size ${longSize} is neither 4 nor 8`);
  const f = new FileCursor(dat, le, fc.pos);
  const pageSize = f.u32('page size');
  const badPage = pageSizeProblem(pageSize);
  if (badPage) throw new TraceDatError(file, f.pos - 4, badPage);

  const meta: Meta = {
    opts: emptyOptions(),
    buffers: [],
    sections: new Map(),
    headerPage: '',
    headerPageAt: 0,
    headerEvent: '',
    events: new Map(),
    kallsyms: Kallsyms.empty(),
    printk: new Map(),
    cmdlines: new Map(),
    cpus: 0,
  };
  let compression: { name: string; version: string } | undefined;
  let inflate: Inflate | undefined;
  if (version >= 7) {
    const name = f.cstr('compression name', 64);
    const ver = f.cstr('compression version', 64);
    if (name !== 'none') {
      compression = { name, version: ver };
      inflate = inflaterFor(name);
      if (!inflate) throw new TraceDatError(file, f.pos, `compression ${quoteInput(name)} is not supported (zstd and zlib are)`);
    }
    const v7 = new V7(dat, le, pageSize, inflate);
    v7.readOptions(f.offset64('first options offset'), meta);
    v7.readMetaSections(meta, longSize);
    const top = meta.buffers.find((b) => b.name === '');
    // `cpus=N` is trace-cmd's max_cpu: the larger of CPUCOUNT and the top buffer's CPU table.
    meta.cpus = Math.max(meta.opts.cpuCount ?? 0, ...(top?.cpus.map((c) => c.cpu + 1) ?? []));
  } else readV6(f, le, pageSize, longSize, meta);

  // Trust TRACECLOCK over the per-buffer clock text (trace-cmd 3.1.6 can write a wrong one).
  for (const b of meta.buffers) if (meta.opts.traceClock) b.clock = meta.opts.traceClock;
  // Order: the top buffer first, then instances in file order (trace-cmd's handle order).
  meta.buffers.sort((a, b) => (a.name === '' ? -1 : b.name === '' ? 1 : 0));
  const hp = parseHeaderPage(meta.headerPage, longSize);
  // The page walk reads the commit word and the first event where header_page puts them.
  if ((hp.commitSize !== 4 && hp.commitSize !== 8) || hp.dataOffset < 8 + hp.commitSize || hp.dataOffset > 64)
    throw new TraceDatError(file, meta.headerPageAt, `header_page gives a ${hp.commitSize}-byte commit and page data at offset ${hp.dataOffset}; expected a 4- or 8-byte commit after the u64 timestamp, and the data after it within the page's first 64 bytes`);
  return {
    file,
    version,
    littleEndian: le,
    longSize,
    pageSize,
    compression,
    cpus: meta.cpus,
    buffers: meta.buffers,
    options: meta.opts,
    cmdlines: meta.cmdlines,
    kallsyms: meta.kallsyms,
    printk: meta.printk,
    events: meta.events,
    headerPage: meta.headerPage,
    headerEvent: meta.headerEvent,
    commitSize: hp.commitSize,
    pageDataOffset: hp.dataOffset,
    dat,
    inflate,
    close: () => dat.close(),
  };
}

interface Meta {
  opts: TraceDatOptions;
  buffers: TraceDatBuffer[];
  sections: SectionOffsets;
  headerPage: string;
  /** File offset naming the header_page text in errors. */
  headerPageAt: number;
  headerEvent: string;
  events: Map<number, EventFormat>;
  kallsyms: Kallsyms;
  printk: Map<bigint, string>;
  cmdlines: Map<number, string>;
  cpus: number;
}

/** Reads the v7 section-based layout. */
class V7 {
  constructor(
    readonly dat: DatFile,
    readonly le: boolean,
    readonly pageSize: number,
    readonly inflate: Inflate | undefined,
  ) {}

  /** Reads a section header at `offset` and returns its (decompressed) content. */
  section(offset: number, expectId: number | undefined, what: string, headerOnly = false): { id: number; flags: number; c: Cursor } {
    const { id, flags, size: size64 } = parseSectionHeader(this.dat.read(offset, SECTION_HEADER_SIZE, `${what} section header`), this.le);
    if (size64 > BigInt(this.dat.size)) throw new TraceDatError(this.dat.path, offset, `${what} section size ${size64} is larger than the file`);
    const size = Number(size64);
    if (expectId !== undefined && id !== expectId)
      throw new TraceDatError(this.dat.path, offset, `expected the ${what} section (id ${expectId}) here, found id ${id}`);
    const start = offset + 16;
    if (headerOnly) {
      // Checks that the section is there and whole, without reading it.
      if (start + size > this.dat.size)
        throw new TraceDatError(this.dat.path, offset, `${what} section of ${size} bytes runs past the end of the file (byte ${this.dat.size})`);
      return { id, flags, c: new Cursor(Buffer.alloc(0), this.le, this.dat.path, start) };
    }
    if (flags & 1) {
      if (!this.inflate) throw new TraceDatError(this.dat.path, offset, `${what} section is compressed but the file names no compression`);
      const { csize, usize } = parseCompressHeader(this.dat.read(start, COMPRESS_HEADER_SIZE, `${what} compression header`), this.le);
      if (usize > 1 << 28) throw new TraceDatError(this.dat.path, start, `${what} section claims ${usize} bytes uncompressed`);
      const data = this.dat.read(start + 8, csize, `${what} compressed data`);
      const out = this.inflateChecked(data, usize, start, what);
      return { id, flags, c: new Cursor(out, this.le, this.dat.path, start, true) };
    }
    return { id, flags, c: new Cursor(this.dat.read(start, size, `${what} section`), this.le, this.dat.path, start) };
  }

  inflateChecked(data: Buffer, usize: number, at: number, what: string): Buffer {
    let out: Buffer;
    try {
      out = this.inflate!(data, usize);
    } catch (e) {
      throw new TraceDatError(this.dat.path, at, `${what}: cannot decompress (${(e as Error).message})`);
    }
    if (out.length !== usize)
      throw new TraceDatError(this.dat.path, at, `${what}: decompressed to ${out.length} bytes, expected ${usize}`);
    return out;
  }

  /** Follows the chain of options sections from `offset`. */
  readOptions(offset: number, meta: Meta): void {
    const seen = new Set<number>();
    while (offset !== 0) {
      if (seen.has(offset)) throw new TraceDatError(this.dat.path, offset, 'options sections form a loop');
      seen.add(offset);
      const { c } = this.section(offset, SEC.OPTIONS, 'options');
      let next = 0;
      for (;;) {
        if (c.left === 0) throw c.fail('options section ends without a DONE option');
        const id = c.u16('option id');
        const size = c.u32('option size');
        const at = c.pos;
        const data = new Cursor(c.bytes(size, `option ${id}`), this.le, this.dat.path, c.base + at, c.inflated);
        if (id === OPT.DONE) {
          next = size >= 8 ? data.offset64('next options offset', this.dat.size) : 0;
          break;
        }
        decodeOption(id, data, meta, { v7: true, pageSize: this.pageSize, size: this.dat.size });
      }
      offset = next;
    }
    for (const b of meta.buffers) {
      const h = parseSectionHeader(this.dat.read(b.sectionOffset, SECTION_HEADER_SIZE, 'buffer section header'), this.le);
      // A buffer's section carries the id of the option that describes it (BUFFER, BUFFER_TEXT).
      const id = b.latency ? OPT.BUFFER_TEXT : OPT.BUFFER;
      if (h.id !== id) throw new TraceDatError(this.dat.path, b.sectionOffset, `expected the section of buffer "${b.name}" (id ${id}) here, found id ${h.id}`);
      b.compressed = (h.flags & 1) !== 0;
      if (h.size > BigInt(this.dat.size)) throw new TraceDatError(this.dat.path, b.sectionOffset, `buffer "${b.name}" section size ${h.size} is larger than the file`);
      const size = Number(h.size);
      // A latency buffer's section holds the tracer's text (in chunks when compressed).
      if (b.latency) b.text = { offset: b.sectionOffset + 16, size };
      if (b.compressed && !this.inflate)
        throw new TraceDatError(this.dat.path, b.sectionOffset, `buffer "${b.name}" is compressed but the file names no compression`);
    }
  }

  readMetaSections(meta: Meta, longSize: number): void {
    const s = meta.sections;
    const hi = s.get(OPT.HEADER_INFO);
    if (hi !== undefined) readHeaderInfo(this.section(hi, SEC.HEADER_INFO, 'header info').c, meta);
    const fe = s.get(OPT.FTRACE_EVENTS);
    if (fe !== undefined) readFtraceEvents(this.section(fe, SEC.FTRACE_EVENTS, 'ftrace events').c, meta);
    const ef = s.get(OPT.EVENT_FORMATS);
    if (ef !== undefined) readEventFormats(this.section(ef, SEC.EVENT_FORMATS, 'event formats').c, meta);
    const ks = s.get(OPT.KALLSYMS);
    // Read (and decompressed) only when a symbol is first looked up: most reports need none.
    if (ks !== undefined) {
      this.section(ks, SEC.KALLSYMS, 'kallsyms', true);
      meta.kallsyms = Kallsyms.lazy(() => {
        const c = this.section(ks, SEC.KALLSYMS, 'kallsyms').c;
        return c.bytes(c.u32('kallsyms size'), 'kallsyms');
      });
    }
    const pk = s.get(OPT.PRINTK);
    if (pk !== undefined) readPrintk(this.section(pk, SEC.PRINTK, 'printk').c, meta);
    const cl = s.get(OPT.CMDLINES);
    if (cl !== undefined) readCmdlines(this.section(cl, SEC.CMDLINES, 'cmdlines').c, meta);
    void longSize;
  }
}

function readHeaderInfo(c: Cursor, meta: Meta): void {
  if (c.cstr('header_page tag') !== 'header_page') throw c.fail('expected "header_page"');
  meta.headerPageAt = c.inflated ? c.base : c.base + c.pos;
  meta.headerPage = c.text(c.size64('header_page size'), 'header_page');
  if (c.cstr('header_event tag') !== 'header_event') throw c.fail('expected "header_event"');
  meta.headerEvent = c.text(c.size64('header_event size'), 'header_event');
}

function addFormat(c: Cursor, meta: Meta, text: string, system: string, at: number): void {
  const ev = parseEventFormat(text, system);
  if (typeof ev === 'string') throw c.fail(`${system} event format: ${ev}`, at);
  meta.events.set(ev.id, ev);
}

function readFtraceEvents(c: Cursor, meta: Meta): void {
  const n = c.u32('ftrace event count');
  for (let i = 0; i < n; i++) {
    const at = c.pos;
    addFormat(c, meta, c.text(c.size64('ftrace event format size'), 'ftrace event format'), 'ftrace', at);
  }
}

function readEventFormats(c: Cursor, meta: Meta): void {
  const systems = c.u32('event system count');
  for (let i = 0; i < systems; i++) {
    const system = c.cstr('event system name');
    const n = c.u32('event count');
    for (let j = 0; j < n; j++) {
      const at = c.pos;
      addFormat(c, meta, c.text(c.size64('event format size'), 'event format'), system, at);
    }
  }
}

function readKallsyms(c: Cursor, meta: Meta): void {
  const text = Buffer.from(c.bytes(c.u32('kallsyms size'), 'kallsyms'));
  meta.kallsyms = Kallsyms.lazy(() => text);
}

function readPrintk(c: Cursor, meta: Meta): void {
  const text = c.text(c.u32('printk size'), 'printk formats');
  for (const line of text.split('\n')) {
    const m = /^\s*(0x[0-9a-fA-F]+|[0-9a-fA-F]+)\s*:\s*"(.*)"\s*$/.exec(line);
    if (m) meta.printk.set(BigInt(m[1].startsWith('0x') ? m[1] : '0x' + m[1]), m[2].replace(/\\n/g, '\n'));
  }
}

function readCmdlines(c: Cursor, meta: Meta): void {
  const text = c.text(c.size64('cmdlines size'), 'cmdlines');
  for (const line of text.split('\n')) {
    const m = /^(\d+) (.*)$/.exec(line);
    if (m) meta.cmdlines.set(Number(m[1]), m[2]);
  }
}

/** Reads the v6 layout: fixed-order metadata, CPU count, options, then the flyrecord table. */
function readV6(f: FileCursor, le: boolean, pageSize: number, longSize: number, meta: Meta): void {
  const path = f.f.path;
  const tagAt = f.pos;
  if (f.cstr('header_page tag', 16) !== 'header_page') throw new TraceDatError(path, tagAt, 'expected "header_page"');
  meta.headerPageAt = f.pos;
  meta.headerPage = f.text(f.size64('header_page size'), 'header_page');
  const evAt = f.pos;
  if (f.cstr('header_event tag', 16) !== 'header_event') throw new TraceDatError(path, evAt, 'expected "header_event"');
  meta.headerEvent = f.text(f.size64('header_event size'), 'header_event');
  const n = f.u32('ftrace event count');
  if (n > 100000) throw new TraceDatError(path, f.pos - 4, `ftrace event count ${n} is implausible`);
  for (let i = 0; i < n; i++) {
    const sz = f.size64('ftrace event format size');
    const c = f.cursor(sz, 'ftrace event format');
    addFormat(c, meta, c.buf.toString('latin1'), 'ftrace', 0);
  }
  const systems = f.u32('event system count');
  if (systems > 100000) throw new TraceDatError(path, f.pos - 4, `event system count ${systems} is implausible`);
  for (let i = 0; i < systems; i++) {
    const system = f.cstr('event system name', 256);
    const ne = f.u32('event count');
    if (ne > 100000) throw new TraceDatError(path, f.pos - 4, `event count ${ne} is implausible`);
    for (let j = 0; j < ne; j++) {
      const sz = f.size64('event format size');
      const c = f.cursor(sz, 'event format');
      addFormat(c, meta, c.buf.toString('latin1'), system, 0);
    }
  }
  readKallsyms(f.cursor(4 + peekU32(f), 'kallsyms'), meta);
  readPrintk(f.cursor(4 + peekU32(f), 'printk formats'), meta);
  const clSize = f.size64('cmdlines size');
  f.pos -= 8;
  readCmdlines(f.cursor(8 + clSize, 'cmdlines'), meta);
  meta.cpus = f.u32('CPU count');
  if (meta.cpus > 1 << 16) throw new TraceDatError(path, f.pos - 4, `CPU count ${meta.cpus} is implausible`);
  let tagPos = f.pos;
  let tag = f.text(10, 'data type tag');
  if (tag.startsWith('options')) {
    for (;;) {
      const id = f.u16('option id');
      if (id === OPT.DONE) break;
      const size = f.u32('option size');
      const c = f.cursor(size, `option ${id}`);
      decodeOption(id, c, meta, { v7: false, pageSize, size: f.f.size });
    }
    tagPos = f.pos;
    tag = f.text(10, 'data type tag');
  }
  const top: TraceDatBuffer = { name: '', clock: '', latency: false, pageSize, compressed: false, cpus: [], sectionOffset: tagPos };
  if (tag.startsWith('latency')) {
    top.latency = true;
    top.text = { offset: f.pos, size: f.f.size - f.pos };
  } else if (tag.startsWith('flyrecord')) {
    readV6CpuTable(f, meta.cpus, top);
    if (meta.opts.traceClockText !== undefined) {
      // v6: the trace_clock text follows the CPU table (u64 size + text).
      const sz = f.size64('trace_clock size');
      const text = f.text(sz, 'trace_clock text');
      // The top buffer's own clock; TRACECLOCK (the option) stays the one trusted for the data.
      top.bufferClockText = text.replace(/\0+$/, '');
      meta.opts.v6FlyrecordClock = selectedClock(top.bufferClockText);
    }
  } else throw new TraceDatError(path, tagPos, `expected "flyrecord" or "latency", found ${quoteInput(tag)}`);
  // trace-cmd reads nothing but the text of a latency file.
  for (const b of top.latency ? [] : meta.buffers) {
    // v6 instance buffers: at their offset, a "flyrecord\0" tag and a CPU table like the top's.
    const bf = new FileCursor(f.f, le, b.sectionOffset);
    const t = bf.text(10, `buffer "${b.name}" tag`);
    if (!t.startsWith('flyrecord')) throw new TraceDatError(path, b.sectionOffset, `buffer "${b.name}": expected "flyrecord"`);
    readV6CpuTable(bf, meta.cpus, b);
  }
  meta.buffers.unshift(top);
  void longSize;
}

function readV6CpuTable(f: FileCursor, cpus: number, b: TraceDatBuffer): void {
  for (let cpu = 0; cpu < cpus; cpu++) b.cpus.push(cpuData(f.cursor(16, `CPU ${cpu} data offset and size`), cpu, f.f.size));
}

function peekU32(f: FileCursor): number {
  const v = f.u32('size');
  f.pos -= 4;
  return v;
}
