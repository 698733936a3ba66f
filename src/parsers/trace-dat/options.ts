/**
 * trace.dat options (v6 and v7): ids and decoding of each option's data into
 * {@link TraceDatOptions} and buffer descriptions.
 */
import type { Cursor } from './bytes.js';
import { pageSizeProblem } from './pages.js';
import { quoteInput } from '../../model/quote.js';
import { parseTsc2Nsec } from './structs.js';
import type { CpuData, TimeShiftSample, TraceDatBuffer, TraceDatOptions } from './types.js';

/** Option ids (trace-cmd's `enum tracecmd_file_options`). */
export const OPT = {
  DONE: 0,
  DATE: 1,
  CPUSTAT: 2,
  BUFFER: 3,
  TRACECLOCK: 4,
  UNAME: 5,
  HOOK: 6,
  OFFSET: 7,
  CPUCOUNT: 8,
  VERSION: 9,
  PROCMAPS: 10,
  TRACEID: 11,
  TIME_SHIFT: 12,
  GUEST: 13,
  TSC2NSEC: 14,
  STRINGS: 15,
  HEADER_INFO: 16,
  FTRACE_EVENTS: 17,
  EVENT_FORMATS: 18,
  KALLSYMS: 19,
  PRINTK: 20,
  CMDLINES: 21,
  BUFFER_TEXT: 22,
  BTF_FILE: 23,
  LAST_BOOT_INFO: 24,
  MODULES_FILE: 25,
} as const;

/** A fresh, empty options record. */
export function emptyOptions(): TraceDatOptions {
  return { guests: [], cpustat: [], unknown: [] };
}

/** Section offsets named by v7 options (HEADER_INFO … CMDLINES), by option id. */
export type SectionOffsets = Map<number, number>;

/** Text of an option's data up to its first NUL. */
function cText(c: Cursor): string {
  const end = c.buf.indexOf(0, c.pos);
  return c.buf.toString('latin1', c.pos, end < 0 ? c.buf.length : end);
}

/** The selected clock of a `trace_clock` text (`local [x86-tsc] mono`), or undefined. */
export function selectedClock(text: string): string | undefined {
  const m = /\[([^\]]+)\]/.exec(text);
  return m ? m[1] : undefined;
}

/** What an option is decoded into: the options record, the buffers and the v7 section offsets. */
export interface OptionsInto {
  opts: TraceDatOptions;
  buffers: TraceDatBuffer[];
  sections: SectionOffsets;
}

/** What decoding an option needs to know about its file. */
export interface OptionsFile {
  /** True for v7 files (buffer options then carry clock and CPU tables). */
  v7: boolean;
  /** The header's page size (a buffer's own, in v7, comes with it). */
  pageSize: number;
  /** File size in bytes: every offset an option gives must lie inside it. */
  size: number;
}

/** Decodes one option into `into`. `c` covers exactly the option's data. */
export function decodeOption(id: number, c: Cursor, into: OptionsInto, file: OptionsFile): void {
  const { opts, buffers, sections } = into;
  const size = c.buf.length;
  switch (id) {
    case OPT.DATE: {
      const text = cText(c).trim();
      // Hex microseconds with a 0x prefix (strtoll base 0): trace-cmd multiplies by 1000.
      const v = parseCInt(text);
      if (v === undefined) throw c.fail(`DATE option ${quoteInput(text)} is not a number`);
      opts.date = { text, offsetNs: v * 1000n };
      break;
    }
    case OPT.OFFSET: {
      const text = cText(c).trim();
      const v = parseCInt(text);
      if (v === undefined) throw c.fail(`OFFSET option ${quoteInput(text)} is not a number`);
      opts.offset = { text, value: v };
      break;
    }
    case OPT.CPUSTAT:
      opts.cpustat.push(cText(c));
      break;
    case OPT.BUFFER:
    case OPT.BUFFER_TEXT:
      buffers.push(decodeBuffer(id, c, file));
      break;
    case OPT.TRACECLOCK:
      opts.traceClockText = cText(c);
      opts.traceClock = selectedClock(opts.traceClockText);
      break;
    case OPT.UNAME:
      opts.uname = cText(c);
      break;
    case OPT.VERSION:
      opts.version = cText(c);
      break;
    case OPT.CPUCOUNT:
      opts.cpuCount = c.u32('CPUCOUNT');
      break;
    case OPT.TRACEID:
      opts.traceId = c.u64('TRACEID');
      break;
    case OPT.TIME_SHIFT:
      opts.timeShift = decodeTimeShift(c);
      break;
    case OPT.GUEST: {
      const name = c.cstr('guest name');
      const traceId = c.u64('guest trace id');
      const n = c.u32('guest vCPU count');
      const vcpuToPid = new Map<number, number>();
      for (let i = 0; i < n; i++) {
        const vcpu = c.u32('vCPU id');
        vcpuToPid.set(vcpu, c.u32('host pid'));
      }
      opts.guests.push({ name, traceId, vcpuToPid });
      break;
    }
    case OPT.TSC2NSEC:
      opts.tsc2nsec = parseTsc2Nsec(c.bytes(16, 'TSC2NSEC'), c.le);
      break;
    case OPT.HEADER_INFO:
      opts.headerInfoOffset = c.offset64('HEADER_INFO section offset', file.size);
      sections.set(id, opts.headerInfoOffset);
      break;
    case OPT.FTRACE_EVENTS:
    case OPT.EVENT_FORMATS:
    case OPT.KALLSYMS:
    case OPT.PRINTK:
    case OPT.CMDLINES:
      sections.set(id, c.offset64('section offset', file.size));
      break;
    case OPT.HOOK:
    case OPT.PROCMAPS:
    case OPT.STRINGS:
    case OPT.BTF_FILE:
    case OPT.LAST_BOOT_INFO:
    case OPT.MODULES_FILE:
      break;
    default:
      opts.unknown.push({ id, size });
  }
}

/**
 * BUFFER / BUFFER_TEXT: the buffer's name and where its data is; in v7 also its clock text, its
 * page size and its CPUs' data. Every size and offset is checked here, before anyone uses it: the
 * page size by the rule of the page walk, each CPU's data inside the file.
 */
function decodeBuffer(id: number, c: Cursor, file: OptionsFile): TraceDatBuffer {
  const offset = c.offset64('buffer offset', file.size);
  const name = c.cstr('buffer name');
  const buf: TraceDatBuffer = { name, clock: '', latency: id === OPT.BUFFER_TEXT, pageSize: file.pageSize, compressed: false, cpus: [], sectionOffset: offset };
  if (!file.v7) return buf;
  buf.bufferClockText = c.cstr('buffer clock');
  buf.clock = buf.bufferClockText;
  if (id !== OPT.BUFFER) {
    buf.text = { offset, size: -1 };
    return buf;
  }
  const psAt = c.pos;
  buf.pageSize = c.u32('buffer page size');
  const bad = pageSizeProblem(buf.pageSize);
  if (bad) throw c.fail(`buffer ${quoteInput(name)}: ${bad}`, psAt);
  const n = c.u32('buffer CPU count');
  if (n > 1 << 16) throw c.fail(`buffer ${quoteInput(name)} claims ${n} CPUs`);
  for (let i = 0; i < n; i++) {
    const cpu = c.u32('CPU id');
    buf.cpus.push(cpuData(c, cpu, file.size));
  }
  return buf;
}

/** A CPU's data offset and size (u64 each), which must lie inside the file when there is data. */
export function cpuData(c: Cursor, cpu: number, fileSize: number): CpuData {
  const at = c.pos;
  const offset = c.size64(`CPU ${cpu} data offset`);
  const size = c.size64(`CPU ${cpu} data size`);
  if (size > 0 && offset + size > fileSize)
    throw c.fail(`CPU ${cpu} data (${size} bytes at byte ${offset}) runs past the end of the file (${fileSize} bytes): a corrupt offset or size, or a truncated file`, at);
  return { cpu, offset, size };
}

/** TIME_SHIFT: peer id, flags, per-CPU samples, then (newer files) per-sample fraction bits. */
function decodeTimeShift(c: Cursor) {
  const peerTraceId = c.u64('TIME_SHIFT peer id');
  const flags = c.u32('TIME_SHIFT flags');
  const ncpu = c.u32('TIME_SHIFT CPU count');
  if (ncpu > 1 << 16) throw c.fail(`TIME_SHIFT claims ${ncpu} CPUs`);
  const cpus: TimeShiftSample[][] = [];
  for (let i = 0; i < ncpu; i++) {
    const n = c.u32('TIME_SHIFT sample count');
    if (n * 24 > c.left) throw c.fail(`TIME_SHIFT CPU ${i} claims ${n} samples, more than the option holds`);
    const s: TimeShiftSample[] = [];
    for (let j = 0; j < n; j++) s.push({ time: 0n, offset: 0n, scaling: 1n, fracBits: 0 });
    for (const x of s) x.time = c.u64();
    for (const x of s) x.offset = BigInt.asIntN(64, c.u64());
    for (const x of s) x.scaling = c.u64();
    cpus.push(s);
  }
  if (c.left > 0)
    for (const s of cpus) for (const x of s) x.fracBits = Number(c.u64('TIME_SHIFT fraction bits'));
  // trace-cmd sorts each CPU's samples by time and drops repeated times.
  for (let i = 0; i < cpus.length; i++) {
    const s = cpus[i].sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
    cpus[i] = s.filter((x, k) => k === 0 || x.time !== s[k - 1].time);
  }
  return { peerTraceId, flags, cpus };
}

/** strtoll(text, NULL, 0): decimal, 0x hex or 0 octal, optionally signed; undefined if none. */
export function parseCInt(text: string): bigint | undefined {
  const m = /^\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)/.exec(text);
  if (!m) return undefined;
  const body = m[2];
  let v: bigint;
  if (/^0[xX]/.test(body)) v = BigInt(body);
  else if (body.length > 1 && body.startsWith('0')) v = BigInt('0o' + body.slice(1));
  else v = BigInt(body);
  return m[1] === '-' ? -v : v;
}
