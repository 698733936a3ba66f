/**
 * What a trace.dat file says about itself (trace-cmd's `trace-cmd.dat.v6(5)` / `.v7(5)`).
 * 64-bit values (trace ids, offsets of the clock mapping) are bigint; sizes and offsets in the
 * file are safe integers.
 */
import type { EventFormat } from './format.js';
import type { Kallsyms } from './kallsyms.js';

/** Where one CPU's ring-buffer pages are in the file. */
export interface CpuData {
  /** CPU number. */
  cpu: number;
  /** Byte offset in the file (for compressed files: of the chunk table). */
  offset: number;
  /** Bytes in the file from `offset` (compressed size for compressed files). */
  size: number;
}

/** One ftrace buffer (instance) recorded in the file. The top-level buffer has the name ''. */
export interface TraceDatBuffer {
  name: string;
  /** The clock the buffer's timestamps are in: TRACECLOCK's selected clock when present (trusted),
   * else the clock text written for the buffer. */
  clock: string;
  /** The clock text written with the buffer (v7 BUFFER option; may be wrong in trace-cmd 3.1.6). */
  bufferClockText?: string;
  /** True for a latency (text) buffer: its data is `trace` file text, not ring-buffer pages. */
  latency: boolean;
  /** Ring-buffer page size in bytes. */
  pageSize: number;
  /** Whether the buffer's data is compressed in chunks (v7). */
  compressed: boolean;
  /** Per-CPU data, indexed by position (not necessarily by CPU number). */
  cpus: CpuData[];
  /** File offset of the buffer's section (v7) or of its `flyrecord` CPU table (v6). */
  sectionOffset: number;
  /** For latency buffers: where the text is (offset, size; size -1 = to the end of the file). */
  text?: { offset: number; size: number };
}

/** One time-synchronisation sample of a TIME_SHIFT option (guest → host). */
export interface TimeShiftSample {
  /** Guest timestamp (raw ring-buffer units) when the sample was taken. */
  time: bigint;
  /** Signed correction: host = ((guest × scaling) >> fracBits) + offset. */
  offset: bigint;
  /** Scaling ratio (1 when the guest TSC is not scaled). */
  scaling: bigint;
  /** Fraction bits of `scaling` (0 when the file has none). */
  fracBits: number;
}

/** TIME_SHIFT: how this (guest) file's timestamps map onto its peer's (host's). */
export interface TimeShift {
  /** TRACEID of the peer (usually the host file). */
  peerTraceId: bigint;
  /** Protocol flags (bit 0: interpolate between samples). */
  flags: number;
  /** Samples per guest CPU (index = guest CPU). */
  cpus: TimeShiftSample[][];
}

/** GUEST: a guest traced in the same session as this (host) file. */
export interface GuestInfo {
  name: string;
  /** The guest file's TRACEID. */
  traceId: bigint;
  /** vCPU number → host thread id running it. */
  vcpuToPid: Map<number, number>;
}

/** TSC2NSEC: ns = ((tsc × mult) >> shift) + offset (the offset is not applied by trace-cmd 3.1.6). */
export interface Tsc2Nsec {
  mult: number;
  shift: number;
  offset: bigint;
}

/** The decoded options of a file (the ones kvmtrace uses, plus the texts of the others). */
export interface TraceDatOptions {
  /** TRACECLOCK text as written (`local global [x86-tsc] …`). */
  traceClockText?: string;
  /** The clock selected in TRACECLOCK (the bracketed name). */
  traceClock?: string;
  /** v6: the selected clock of the text after the top flyrecord table (trace-cmd reads it too). */
  v6FlyrecordClock?: string;
  tsc2nsec?: Tsc2Nsec;
  timeShift?: TimeShift;
  guests: GuestInfo[];
  traceId?: bigint;
  /** DATE: offset of timestamps from the time of day, as written (hex µs, `0x…`), and in ns. */
  date?: { text: string; offsetNs: bigint };
  /** OFFSET: a fixed offset added to timestamps (as written, and its value). */
  offset?: { text: string; value: bigint };
  /** CPUSTAT texts in file order (each names its buffer in a `Buffer:` line when not the top). */
  cpustat: string[];
  uname?: string;
  version?: string;
  cpuCount?: number;
  /** v7: file offset of the HEADER INFO section (HEADER_INFO option). */
  headerInfoOffset?: number;
  /** Option ids the reader did not know, with their sizes. */
  unknown: { id: number; size: number }[];
}

/** A trace.dat file's metadata, as {@link openTraceDat} returns it. */
export interface TraceDatInfo {
  file: string;
  /** File format version (6 or 7). */
  version: number;
  littleEndian: boolean;
  /** Size of a user-space `long` of the traced machine (4 or 8). */
  longSize: number;
  /** Page size of the traced machine in bytes. */
  pageSize: number;
  /** v7 compression (name and version), undefined when none. */
  compression?: { name: string; version: string };
  /** CPU count as `trace-cmd report` prints it (`cpus=N`). */
  cpus: number;
  /** Buffers in file order: the top-level one (name '') first when present. */
  buffers: TraceDatBuffer[];
  options: TraceDatOptions;
  /** pid → comm from the saved cmdlines. */
  cmdlines: Map<number, string>;
  kallsyms: Kallsyms;
  /** trace_printk format strings by address. */
  printk: Map<bigint, string>;
  /** Event formats by event id. */
  events: Map<number, EventFormat>;
  /** The header_page and header_event format texts. */
  headerPage: string;
  headerEvent: string;
  /** Size in bytes of the ring-buffer page header's commit field (the kernel's long). */
  commitSize: number;
  /** Offset of the data in a ring-buffer page (after timestamp and commit). */
  pageDataOffset: number;
}
