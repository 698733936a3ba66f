/**
 * ftrace text, every variant a user has:
 *  - tracefs `trace` (with its `#` header) and `trace_pipe` (without);
 *  - with or without the irq-info column (`d..2.` — 4 or 5 flag characters) and the TGID column
 *    (`(   1234)` or `(-------)`);
 *  - `trace-cmd report` output: an optional `name: ` prefix (buffer or file), `cpus=N`, and for
 *    counter clocks no space between `]` and the timestamp;
 *  - `[LOST N EVENTS]` lines, and kernel stack traces (` => func` lines, counted, not events).
 *
 * Line shape: `[prefix: ] TASK-PID [(TGID)] [CPU] [FLAGS] TIMESTAMP: EVENT: BODY`. The task name
 * may hold spaces, slashes and dashes (`CPU 0/KVM-4242`), so the line is anchored on the `[CPU]`
 * column and the pid is the digits after the last dash before it.
 * Reference: the kernel's trace_output.c (lat and default formats) and trace-cmd's report output.
 */
import { closeSync } from 'node:fs';
import { isAscii } from 'node:buffer';
import type { Diagnostics } from '../model/diagnostics.js';
import { EventBlock, StringTable } from '../model/event-block.js';
import { TsBase } from '../model/exact.js';
import type { SourceHeader, TraceEvent } from '../model/event.js';
import { isCounterClock, type TraceClock } from '../model/clock.js';
import { clipInput, quoteInput } from '../model/quote.js';
import { openInput } from './input.js';
import { lineChunks } from './line-chunks.js';
import { CUT_OFF_LINE, HeldLine, longLineMessage, MAX_LINE_BYTES } from './line-parser.js';

/** Options for one ftrace text source. */
export interface FtraceTextOptions {
  /** The file name used in diagnostics. */
  file: string;
  /** The clock when known from metadata or a flag; otherwise taken from the timestamps' shape, and said so. */
  clock?: TraceClock;
  clockFrom?: 'metadata' | 'flag';
  diags: Diagnostics;
}

/** Counts of the non-event lines a parse met, for the report. */
export interface FtraceTextStats {
  lines: number;
  events: number;
  headerLines: number;
  stackLines: number;
  lostLines: number;
  badLines: number;
}

/** Bytes of a non-event line that are decoded to look at it (see `line`). */
const META_LINE = 4096;
const NOT_EVENT = 'expected an ftrace event line "TASK-PID [CPU] TIMESTAMP: EVENT: …"';

/** Input bytes b[from, to) quoted for a message (escaped, cut short; decodes no more than it shows). */
function quoteBytes(b: Buffer, from: number, to: number): string {
  const shown = b.toString('utf8', from, Math.min(to, from + 81));
  return to - from <= 81 ? quoteInput(shown) : `"${clipInput(shown.slice(0, 80))}… (${to - from} bytes)"`;
}

/** Largest timestamp distance from a file's first event that is kept exactly (2^53 − 1). */
const MAX_DELTA = Number.MAX_SAFE_INTEGER;
const SP = 32;
const RBRACK = 93;
const COLON = 58;

/**
 * A streaming parser over bytes: {@link parseChunk} takes whole lines and returns their events as
 * an {@link EventBlock} whose bodies are ranges of those bytes; `write()` takes text split
 * anywhere and returns event objects; `end()` flushes the last line. Bad lines become diagnostics.
 */
export class FtraceTextParser {
  readonly header: SourceHeader;
  readonly stats: FtraceTextStats = { lines: 0, events: 0, headerLines: 0, stackLines: 0, lostLines: 0, badLines: 0 };
  /** `name: ` prefixes seen (trace-cmd buffer or file names); events carry none. */
  readonly prefixes = new Set<string>();
  /** The ids the events' strings have; shared by every block of this source. */
  readonly table = new StringTable();
  /** 1-based number of the line being parsed. */
  private lineNo = 0;
  /** The timestamp shape of the first event: 'int' for counter clocks, 'sec' for time clocks. */
  private shape: 'int' | 'sec' | undefined;
  /** Interned strings by (length, first byte, last byte), and each id's bytes to compare with. */
  private readonly interned = new Map<number, number>();
  private readonly idBytes: Buffer[] = [];
  /** Each pid's last task name id. */
  private readonly comms = new Map<number, number>();
  /** A `<stack trace>` event still collecting its frames (its body is text). */
  private stack: TraceEvent | undefined;
  /** The unfinished line given to `write()`. */
  private readonly held = new HeldLine();
  private readonly emptyId: number;

  constructor(private readonly opts: FtraceTextOptions) {
    this.header = {
      file: opts.file,
      clock: opts.clock ?? 'unknown',
      clockFrom: opts.clock ? (opts.clockFrom ?? 'flag') : 'unknown',
      base: undefined,
      lostEvents: 0,
    };
    if (opts.clock) this.shape = isCounterClock(opts.clock) ? 'int' : 'sec';
    this.emptyId = this.table.id('');
    this.idBytes[this.emptyId] = Buffer.alloc(0);
  }

  /** Parses text split anywhere; returns the events whose lines are complete. */
  write(chunk: string): TraceEvent[] {
    // Only the new text is searched for a line end: what is held has none.
    const first = chunk.indexOf('\n');
    if (first < 0) {
      this.held.hold(chunk);
      return [];
    }
    const { text } = this.held.join(chunk, first, (n) => this.skipLongLine(n));
    const nl = text.lastIndexOf('\n');
    if (nl < 0) {
      this.held.hold(text);
      return [];
    }
    this.held.hold(text.slice(nl + 1));
    const buf = Buffer.from(text.slice(0, nl + 1), 'utf8');
    return this.parseChunk(buf, buf.length).events();
  }

  /** Ends the input: a last line without a newline is reported as cut off, a pending stack trace flushed. */
  end(): TraceEvent[] {
    const tail = this.held.take();
    if (tail.dropped >= 0) {
      this.skipLongLine(tail.dropped);
      return this.endChunk(Buffer.alloc(0), 0).events();
    }
    const buf = Buffer.from(tail.text, 'utf8');
    return this.endChunk(buf, buf.length).events();
  }

  /**
   * Counts and reports the next line as one too long to read ({@link MAX_LINE_BYTES}); the reader
   * that found it did not assemble it (`line-chunks.ts`).
   */
  skipLongLine(bytes: number): void {
    this.lineNo++;
    this.stats.lines++;
    this.bad(longLineMessage(bytes));
  }

  /** Parses buf[0, end), which ends at a line end: the events of its lines. The bytes are kept by the block, never written. */
  parseChunk(buf: Buffer, end: number): EventBlock {
    const blk = new EventBlock(this.table, buf, Math.max(16, end >>> 6));
    // Bodies are byte ranges when the chunk is ASCII (nearly all ftrace text), decoded text otherwise.
    const ascii = isAscii(buf.subarray(0, end));
    // ftrace never writes a NUL (task names are C strings), but a file of a machine that crashed
    // has blocks of them; a line holding one is damaged, however well the rest of it parses. One
    // search per chunk finds the first; lines before it are not searched again.
    let nul = buf.indexOf(0);
    let start = 0;
    while (start < end) {
      let nl = buf.indexOf(10, start);
      if (nl < 0 || nl >= end) nl = end;
      this.lineNo++;
      this.stats.lines++;
      const hasNul = nul >= 0 && nul < nl;
      if (hasNul) nul = buf.indexOf(0, nl + 1);
      if (nl - start > MAX_LINE_BYTES) this.bad(longLineMessage(nl - start));
      else if (hasNul) this.bad('expected text, found NUL bytes (a damaged file?)');
      else this.line(buf, start, nl > start && buf[nl - 1] === 13 ? nl - 1 : nl, blk, ascii);
      start = nl + 1;
    }
    return blk;
  }

  /**
   * Parses the last bytes of the input and flushes what is held. Bytes after the last newline are
   * a line that was cut off ({@link CUT_OFF_LINE}): reported, not read as an event.
   */
  endChunk(buf: Buffer, end: number): EventBlock {
    const cut = end > 0 ? buf.lastIndexOf(10, end - 1) + 1 : 0;
    const blk = cut > 0 ? this.parseChunk(buf, cut) : new EventBlock(this.table, buf, 16);
    if (cut < end) {
      this.lineNo++;
      this.stats.lines++;
      // ftrace ends every line it writes with a newline: bytes after the last one, even blanks,
      // are the start of a line the file lost.
      this.bad(CUT_OFF_LINE);
    }
    this.flushStack(blk);
    return blk;
  }

  private line(b: Buffer, from: number, to: number, blk: EventBlock, ascii: boolean): void {
    let i = from;
    while (i < to && b[i] === SP) i++;
    if (i === to) return; // blank
    // Header and other non-event lines are read from their first bytes only: what is looked for
    // there (#P:, cpus=, [LOST N EVENTS], => frames) is short, and a damaged line may be huge.
    if (b[i] === 35 /* # */) return this.headerLine(b.toString('utf8', i, Math.min(to, i + META_LINE)));
    // Locate the CPU column: " [digits]" (first occurrence); everything before is task-pid.
    const cpuOpen = findCpuColumn(b, i, to);
    if (cpuOpen < 0) return to - i > META_LINE ? this.bad(NOT_EVENT) : this.otherLine(b.toString('utf8', i, to));
    let cpu = 0;
    let cpuClose = cpuOpen + 1;
    for (; b[cpuClose] !== RBRACK; cpuClose++) cpu = cpu * 10 + (b[cpuClose] - 48);

    // Task part: [prefix: ]comm-pid[ (tgid)]
    let taskEnd = cpuOpen;
    while (taskEnd > i && b[taskEnd - 1] === SP) taskEnd--;
    let tgid = -1;
    if (b[taskEnd - 1] === 41 /* ) */) {
      let open = taskEnd - 2;
      while (open >= i && b[open] !== 40 /* ( */) open--;
      if (open < i) return this.bad('expected "(TGID)" before the CPU column');
      const t = b.toString('utf8', open + 1, taskEnd - 1).trim();
      if (/^\d+$/.test(t)) tgid = Number(t);
      else if (!/^-+$/.test(t)) return this.bad(`expected a TGID number in ${quoteInput(`(${t})`)}`);
      taskEnd = open;
      while (taskEnd > i && b[taskEnd - 1] === SP) taskEnd--;
    }
    let dash = taskEnd - 1;
    while (dash >= i && b[dash] !== 45 /* - */) dash--;
    if (dash < i || dash === taskEnd - 1) return this.bad('expected TASK-PID before the CPU column');
    let pid = 0;
    for (let k = dash + 1; k < taskEnd; k++) {
      const d = b[k] - 48;
      if (d < 0 || d > 9) return this.bad('expected a numeric PID after the last "-" of TASK-PID');
      pid = pid * 10 + d;
    }
    let commStart = i;
    // An optional `name: ` prefix (trace-cmd buffers / several input files).
    let pfx = dash - 1;
    while (pfx >= i && !(b[pfx] === COLON && b[pfx + 1] === SP)) pfx--;
    if (pfx >= i) {
      this.prefixes.add(b.toString('utf8', i, pfx));
      commStart = pfx + 2;
      while (commStart < dash && b[commStart] === SP) commStart++;
    }
    const comm = this.commOf(pid, b, commStart, dash);

    // After "]": [FLAGS] TIMESTAMP:
    let j = cpuClose + 1;
    while (j < to && b[j] === SP) j++;
    let tokEnd = j;
    while (tokEnd < to && b[tokEnd] !== SP) tokEnd++;
    let flags = this.emptyId;
    if (b[tokEnd - 1] !== COLON) {
      if (tokEnd - j < 4 || tokEnd - j > 5)
        return this.bad(`expected 4 or 5 irq-info flags or a timestamp after the CPU column, found ${quoteBytes(b, j, tokEnd)}`);
      flags = this.intern(b, j, tokEnd);
      j = tokEnd;
      while (j < to && b[j] === SP) j++;
      tokEnd = j;
      while (tokEnd < to && b[tokEnd] !== SP) tokEnd++;
      if (b[tokEnd - 1] !== COLON) return this.bad('expected "TIMESTAMP:" after the irq-info flags');
    }
    const tsEnd = tokEnd - 1;
    const shape = readTimestamp(b, j, tsEnd);
    if (shape === 0) return this.bad(`expected a timestamp (integer counter or seconds with 6 or 9 decimals), found ${quoteBytes(b, j, tsEnd)}`);
    if (this.shape === undefined) {
      this.shape = shape === 1 ? 'int' : 'sec';
      if (this.header.clockFrom === 'unknown') this.header.clock = shape === 1 ? 'counter' : 'unknown';
      this.header.unit = shape === 1 ? 'cycles' : 'ns';
    } else if ((this.shape === 'int') !== (shape === 1)) {
      return this.bad(
        shape === 1
          ? `expected a timestamp in seconds (clock ${this.header.clock}), found the integer ${quoteBytes(b, j, tsEnd)}`
          : `expected an integer counter timestamp (clock ${this.header.clock}), found seconds ${quoteBytes(b, j, tsEnd)}`,
      );
    }
    if (this.header.base === undefined) this.header.base = new TsBase(BigInt(TS_HI) * 1_000_000_000n + BigInt(TS_LO));
    const ts = this.header.base.rel(TS_HI, TS_LO);
    if (ts > MAX_DELTA || ts < -MAX_DELTA)
      return this.bad(`timestamp ${b.toString('utf8', j, tsEnd)} lies more than 2^53 units from the file's first timestamp (${this.header.base.value}); it cannot be one trace`);

    // EVENT: BODY
    let e = tokEnd + 1;
    while (e < to && b[e] === SP) e++;
    if (b[e] === 60 /* < */ && b[to - 1] === 62 /* > */) {
      // `<stack trace>` / `<user stack trace>`: its ` => frame` lines follow and become its body.
      this.flushStack(blk);
      const l = this.table.list;
      this.stack = { ts, cpu, comm: l[comm], pid, tgid, flags: l[flags], name: b.toString('utf8', e + 1, to - 1).replace(/ /g, '_'), body: '', line: this.lineNo };
      return;
    }
    let nameEnd = e;
    while (nameEnd < to && b[nameEnd] !== COLON) nameEnd++;
    if (nameEnd >= to || nameEnd === e) return this.bad('expected "EVENT:" after the timestamp');
    const name = this.intern(b, e, nameEnd);
    let s = nameEnd + 1;
    while (s < to && b[s] === SP) s++;
    this.flushStack(blk);
    this.stats.events++;
    const r = blk.row(ts, cpu, pid, tgid, comm, name, flags, this.lineNo);
    if (ascii) {
      blk.bodyStart[r] = s;
      blk.bodyEnd[r] = to;
    } else blk.setBodyText(r, b.toString('utf8', s, to));
  }

  /**
   * Event names, flags and task names repeat on almost every line: the id of the same bytes seen
   * before, found by (length, first byte, last byte) and compared in place, so the hot path decodes
   * no string.
   */
  private intern(b: Buffer, from: number, to: number): number {
    const key = (to - from) * 65536 + b[from] * 256 + b[to - 1];
    const hit = this.interned.get(key);
    if (hit !== undefined && sameBytes(b, from, to, this.idBytes[hit])) return hit;
    const id = this.newId(b, from, to);
    if (this.interned.size < 4096) this.interned.set(key, id);
    return id;
  }

  private commOf(pid: number, b: Buffer, from: number, to: number): number {
    const hit = this.comms.get(pid);
    if (hit !== undefined && sameBytes(b, from, to, this.idBytes[hit])) return hit;
    const id = this.newId(b, from, to);
    if (this.comms.size < 65536) this.comms.set(pid, id);
    return id;
  }

  private newId(b: Buffer, from: number, to: number): number {
    const id = this.table.id(b.toString('utf8', from, to));
    this.idBytes[id] ??= Buffer.from(b.subarray(from, to));
    return id;
  }

  private flushStack(blk: EventBlock): void {
    const st = this.stack;
    if (!st) return;
    this.stats.events++;
    const t = this.table;
    blk.setBodyText(blk.row(st.ts, st.cpu, st.pid, st.tgid, t.id(st.comm), t.id(st.name), t.id(st.flags), st.line), st.body);
    this.stack = undefined;
  }

  private headerLine(t: string): void {
    this.stats.headerLines++;
    const p = /#P:(\d+)/.exec(t);
    if (p) this.header.cpus = Number(p[1]);
  }

  /** Lines without a CPU column: known non-event lines, or bad ones. */
  private otherLine(t: string): void {
    let m: RegExpExecArray | null;
    if ((m = /^cpus=(\d+)$/.exec(t)) || (m = /^\S+: cpus=(\d+)$/.exec(t))) {
      this.header.cpus = Math.max(this.header.cpus ?? 0, Number(m[1]));
      this.stats.headerLines++;
    } else if ((m = /\[LOST (\d+) EVENTS\]/.exec(t)) || (m = /\[(\d+) EVENTS DROPPED\]/.exec(t))) {
      this.header.lostEvents += Number(m[1]);
      this.stats.lostLines++;
    } else if (t.startsWith('=>')) {
      this.stats.stackLines++;
      if (this.stack) this.stack.body += (this.stack.body ? ' ' : '') + t;
    } else if (/^version = \d+$/.test(t) || /^CPU \d+ is empty$/.test(t) || /^(\S+: )?CPU\d* ?is empty$/.test(t)) {
      this.stats.headerLines++;
    } else {
      this.bad(NOT_EVENT);
    }
  }

  /** Records a bad line (file, line number, what was expected); throws under --strict. */
  private bad(message: string): void {
    this.stats.badLines++;
    this.opts.diags.add({ file: this.header.file, line: this.lineNo, message });
  }
}

/** True when b[from, to) holds exactly `word`'s bytes. */
function sameBytes(b: Buffer, from: number, to: number, word: Buffer): boolean {
  if (to - from !== word.length) return false;
  for (let k = 0; k < word.length; k++) if (b[from + k] !== word[k]) return false;
  return true;
}

// The last timestamp read, split at 1e9 (value = TS_HI·1e9 + TS_LO): module scratch, so the hot
// path allocates nothing for it.
let TS_HI = 0;
let TS_LO = 0;

/**
 * Reads `DIGITS` (a counter; ≤ 20 digits) or `SECONDS.FRACTION` (6 or 9 decimals, kept as ns) in
 * s[start, end) into TS_HI/TS_LO. Returns 1 for a counter, 2 for seconds, 0 for neither.
 */
function readTimestamp(s: Buffer, start: number, end: number): 0 | 1 | 2 {
  const n = end - start;
  // Seconds have their dot 7 or 10 places from the end (6 or 9 decimals); anything else is a counter.
  const dot = n >= 8 && s[end - 7] === 46 ? end - 7 : n >= 11 && s[end - 10] === 46 ? end - 10 : -1;
  if (dot < 0) {
    if (n === 0 || n > 20) return 0;
    const cut = end - 9;
    let hi = 0;
    let lo = 0;
    for (let k = start; k < end; k++) {
      const d = s[k] - 48;
      if (d < 0 || d > 9) return 0;
      if (k < cut) hi = hi * 10 + d;
      else lo = lo * 10 + d;
    }
    TS_HI = hi;
    TS_LO = lo;
    return 1;
  }
  if (dot === start || dot - start > 15) return 0;
  let sec = 0;
  for (let k = start; k < dot; k++) {
    const d = s[k] - 48;
    if (d < 0 || d > 9) return 0;
    sec = sec * 10 + d;
  }
  let ns = 0;
  for (let k = dot + 1; k < end; k++) {
    const d = s[k] - 48;
    if (d < 0 || d > 9) return 0;
    ns = ns * 10 + d;
  }
  TS_HI = sec;
  TS_LO = end - dot === 7 ? ns * 1000 : ns;
  return 2;
}

/** Finds `[digits]` preceded by a space (or a TGID's ")"), returning the index of "[" or -1. */
function findCpuColumn(s: Buffer, from: number, to: number): number {
  let k = from;
  while (k < to && s[k] !== 91) k++;
  while (k < to) {
    const prev = s[k - 1];
    if (k > from && (prev === SP || prev === 41)) {
      let m = k + 1;
      while (m < to && s[m] >= 48 && s[m] <= 57) m++;
      if (m > k + 1 && s[m] === RBRACK) return k;
    }
    k++;
    while (k < to && s[k] !== 91) k++;
  }
  return -1;
}

/** True when the head of a file looks like ftrace text (any of the variants above). */
export function detectFtraceText(head: string): boolean {
  const lines = head.split('\n').slice(0, 50);
  if (lines.some((l) => l.startsWith('# tracer:'))) return true;
  const p = new FtraceTextParser({ file: '(detect)', diags: { add() {} } as unknown as Diagnostics });
  let events = 0;
  for (const l of lines.slice(0, lines.length - 1)) events += p.write(l + '\n').length;
  return events > 0 && events >= p.stats.badLines;
}

/**
 * The CPU count a text file's header states (`cpus=N`, `#P:N`), read from its head as the parser
 * reads it; undefined when the head says none, or holds no event line (the header may go on).
 */
export function textHeadCpus(head: string): number | undefined {
  const p = new FtraceTextParser({ file: '(head)', diags: { add() {} } as unknown as Diagnostics });
  const whole = head.slice(0, head.lastIndexOf('\n') + 1);
  return p.write(whole).length > 0 ? p.header.cpus : undefined;
}

/**
 * Reads a whole ftrace text file as blocks of events, one per chunk of whole lines (256 KiB reads,
 * bounded memory, linear in the longest line: see `line-chunks.ts`). A line or a UTF-8 sequence is
 * never split; each block refers to the bytes of its own chunk.
 */
export async function* readFtraceBlocks(
  path: string,
  opts: Omit<FtraceTextOptions, 'file'> & { file?: string },
  parserOut?: (p: FtraceTextParser) => void,
): AsyncGenerator<EventBlock> {
  const parser = new FtraceTextParser({ ...opts, file: opts.file ?? path });
  parserOut?.(parser);
  const fd = openInput(path);
  try {
    for await (const c of lineChunks(fd, path)) {
      if (c.longLine !== undefined) parser.skipLongLine(c.longLine);
      const blk = c.last ? parser.endChunk(c.buf, c.end) : parser.parseChunk(c.buf, c.end);
      if (blk.n) yield blk;
    }
  } finally {
    closeSync(fd);
  }
}

/** Reads a whole ftrace text file as batches of event objects (see {@link readFtraceBlocks}). */
export async function* readFtraceText(
  path: string,
  opts: Omit<FtraceTextOptions, 'file'> & { file?: string },
  parserOut?: (p: FtraceTextParser) => void,
): AsyncGenerator<TraceEvent[]> {
  for await (const blk of readFtraceBlocks(path, opts, parserOut)) yield blk.events();
}
