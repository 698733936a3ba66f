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
import { closeSync, openSync, readSync } from 'node:fs';
import { isAscii } from 'node:buffer';
import type { Diagnostics } from '../model/diagnostics.js';
import { LineParser } from './line-parser.js';
import { UserError } from '../model/errors.js';
import { TsBase } from '../model/exact.js';
import type { SourceHeader, TraceEvent } from '../model/event.js';
import { isCounterClock, type TraceClock } from '../model/clock.js';

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

/** Largest timestamp distance from a file's first event that is kept exactly (2^53 − 1). */
const MAX_DELTA = Number.MAX_SAFE_INTEGER;
const SP = 32;
const RBRACK = 93;
const COLON = 58;

/**
 * A streaming parser: `write()` takes text chunks of any size (split anywhere), returns the
 * events completed so far; `end()` flushes the last line. Bad lines become diagnostics.
 */
export class FtraceTextParser extends LineParser {
  readonly header: SourceHeader;
  readonly stats: FtraceTextStats = { lines: 0, events: 0, headerLines: 0, stackLines: 0, lostLines: 0, badLines: 0 };
  /** `name: ` prefixes seen (trace-cmd buffer or file names); events carry none. */
  readonly prefixes = new Set<string>();
  /** The timestamp shape of the first event: 'int' for counter clocks, 'sec' for time clocks. */
  private shape: 'int' | 'sec' | undefined;
  private readonly interned = new Map<number, string>();
  private readonly comms = new Map<number, string>();
  /** A `<stack trace>` event still collecting its frames. */
  private stack: TraceEvent | undefined;

  constructor(opts: FtraceTextOptions) {
    super(opts.diags);
    this.header = {
      file: opts.file,
      clock: opts.clock ?? 'unknown',
      clockFrom: opts.clock ? (opts.clockFrom ?? 'flag') : 'unknown',
      base: undefined,
      lostEvents: 0,
    };
    if (opts.clock) this.shape = isCounterClock(opts.clock) ? 'int' : 'sec';
  }

  protected override flush(out: TraceEvent[]): void {
    this.flushStack(out);
  }

  protected line(s: string, from: number, to: number, out: TraceEvent[]): void {
    let i = from;
    while (i < to && s.charCodeAt(i) === SP) i++;
    if (i === to) return; // blank
    const c0 = s.charCodeAt(i);
    if (c0 === 35 /* # */) return this.headerLine(s.slice(i, to));
    // Locate the CPU column: " [digits]" (first occurrence); everything before is task-pid.
    const cpuOpen = findCpuColumn(s, i, to);
    if (cpuOpen < 0) return this.otherLine(s.slice(i, to));
    const cpuClose = s.indexOf(']', cpuOpen);
    let cpu = 0;
    for (let k = cpuOpen + 1; k < cpuClose; k++) cpu = cpu * 10 + (s.charCodeAt(k) - 48);

    // Task part: [prefix: ]comm-pid[ (tgid)]
    let taskEnd = cpuOpen;
    while (taskEnd > i && s.charCodeAt(taskEnd - 1) === SP) taskEnd--;
    let tgid = -1;
    if (s.charCodeAt(taskEnd - 1) === 41 /* ) */) {
      const open = s.lastIndexOf('(', taskEnd - 1);
      if (open < i) return this.bad('expected "(TGID)" before the CPU column');
      const t = s.slice(open + 1, taskEnd - 1).trim();
      if (/^\d+$/.test(t)) tgid = Number(t);
      else if (!/^-+$/.test(t)) return this.bad(`expected a TGID number in "(${t})"`);
      taskEnd = open;
      while (taskEnd > i && s.charCodeAt(taskEnd - 1) === SP) taskEnd--;
    }
    // Bounded backward scans (lastIndexOf would search past the line into the chunk before it).
    let dash = taskEnd - 1;
    while (dash >= i && s.charCodeAt(dash) !== 45 /* - */) dash--;
    if (dash < i || dash === taskEnd - 1) return this.bad('expected TASK-PID before the CPU column');
    let pid = 0;
    for (let k = dash + 1; k < taskEnd; k++) {
      const d = s.charCodeAt(k) - 48;
      if (d < 0 || d > 9) return this.bad('expected a numeric PID after the last "-" of TASK-PID');
      pid = pid * 10 + d;
    }
    let commStart = i;
    // An optional `name: ` prefix (trace-cmd buffers / several input files).
    let pfx = dash - 1;
    while (pfx >= i && !(s.charCodeAt(pfx) === COLON && s.charCodeAt(pfx + 1) === SP)) pfx--;
    if (pfx >= i) {
      this.prefixes.add(s.slice(i, pfx));
      commStart = pfx + 2;
      while (commStart < dash && s.charCodeAt(commStart) === SP) commStart++;
    }
    const comm = this.commOf(pid, s, commStart, dash);

    // After "]": [FLAGS] TIMESTAMP:
    let j = cpuClose + 1;
    while (j < to && s.charCodeAt(j) === SP) j++;
    let tokEnd = s.indexOf(' ', j);
    if (tokEnd < 0 || tokEnd > to) tokEnd = to;
    let flags = '';
    if (s.charCodeAt(tokEnd - 1) !== COLON) {
      flags = this.intern(s, j, tokEnd);
      if (flags.length < 4 || flags.length > 5) return this.bad(`expected 4 or 5 irq-info flags or a timestamp after the CPU column, found "${flags}"`);
      j = tokEnd;
      while (j < to && s.charCodeAt(j) === SP) j++;
      tokEnd = s.indexOf(' ', j);
      if (tokEnd < 0 || tokEnd > to) tokEnd = to;
      if (s.charCodeAt(tokEnd - 1) !== COLON) return this.bad('expected "TIMESTAMP:" after the irq-info flags');
    }
    const tsEnd = tokEnd - 1;
    const shape = readTimestamp(s, j, tsEnd);
    if (shape === 0) return this.bad(`expected a timestamp (integer counter or seconds with 6 or 9 decimals), found "${s.slice(j, tsEnd)}"`);
    if (this.shape === undefined) {
      this.shape = shape === 1 ? 'int' : 'sec';
      if (this.header.clockFrom === 'unknown') this.header.clock = shape === 1 ? 'counter' : 'unknown';
      this.header.unit = shape === 1 ? 'cycles' : 'ns';
    } else if ((this.shape === 'int') !== (shape === 1)) {
      return this.bad(
        shape === 1
          ? `expected a timestamp in seconds (clock ${this.header.clock}), found the integer "${s.slice(j, tsEnd)}"`
          : `expected an integer counter timestamp (clock ${this.header.clock}), found seconds "${s.slice(j, tsEnd)}"`,
      );
    }
    if (this.header.base === undefined) this.header.base = new TsBase(BigInt(TS_HI) * 1_000_000_000n + BigInt(TS_LO));
    const ts = this.header.base.rel(TS_HI, TS_LO);
    if (ts > MAX_DELTA || ts < -MAX_DELTA)
      return this.bad(`timestamp ${s.slice(j, tsEnd)} lies more than 2^53 units from the file's first timestamp (${this.header.base.value}); it cannot be one trace`);

    // EVENT: BODY
    let e = tokEnd + 1;
    while (e < to && s.charCodeAt(e) === SP) e++;
    if (s.charCodeAt(e) === 60 /* < */ && s.charCodeAt(to - 1) === 62 /* > */) {
      // `<stack trace>` / `<user stack trace>`: its ` => frame` lines follow and become its body.
      this.flushStack(out);
      this.stack = { ts, cpu, comm, pid, tgid, flags, name: s.slice(e + 1, to - 1).replace(/ /g, '_'), body: '', line: this.lineNo };
      return;
    }
    const nameEnd = s.indexOf(':', e);
    if (nameEnd < 0 || nameEnd >= to || nameEnd === e) return this.bad('expected "EVENT:" after the timestamp');
    const name = this.intern(s, e, nameEnd);
    let b = nameEnd + 1;
    while (b < to && s.charCodeAt(b) === SP) b++;
    this.flushStack(out);
    this.stats.events++;
    out.push({ ts, cpu, comm, pid, tgid, flags, name, body: s.slice(b, to), line: this.lineNo });
  }

  /**
   * Event names, flags and task names repeat on almost every line: reuse the string seen before
   * when the text matches (startsWith compares in place), so the hot path allocates none of them.
   */
  private intern(s: string, from: number, to: number): string {
    const key = (to - from) * 65536 + s.charCodeAt(from) * 256 + (s.charCodeAt(to - 1) & 255);
    const hit = this.interned.get(key);
    if (hit !== undefined && sameAt(s, from, hit)) return hit;
    const fresh = s.slice(from, to);
    if (this.interned.size < 4096) this.interned.set(key, fresh);
    return fresh;
  }

  private commOf(pid: number, s: string, from: number, to: number): string {
    const hit = this.comms.get(pid);
    if (hit !== undefined && hit.length === to - from && sameAt(s, from, hit)) return hit;
    const fresh = s.slice(from, to);
    if (this.comms.size < 65536) this.comms.set(pid, fresh);
    return fresh;
  }

  private flushStack(out: TraceEvent[]): void {
    if (!this.stack) return;
    this.stats.events++;
    out.push(this.stack);
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
      this.bad('expected an ftrace event line "TASK-PID [CPU] TIMESTAMP: EVENT: …"');
    }
  }
}

/** True when `s` holds `word` at `at` (a plain loop: startsWith with a position is slow on long strings). */
function sameAt(s: string, at: number, word: string): boolean {
  for (let k = 0; k < word.length; k++) if (s.charCodeAt(at + k) !== word.charCodeAt(k)) return false;
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
function readTimestamp(s: string, start: number, end: number): 0 | 1 | 2 {
  let dot = -1;
  for (let k = start; k < end; k++) {
    const c = s.charCodeAt(k);
    if (c === 46 && dot < 0) dot = k;
    else if (c < 48 || c > 57) return 0;
  }
  if (dot < 0) {
    const n = end - start;
    if (n === 0 || n > 20) return 0;
    const cut = end - 9;
    let hi = 0;
    let lo = 0;
    for (let k = start; k < end; k++) {
      if (k < cut) hi = hi * 10 + (s.charCodeAt(k) - 48);
      else lo = lo * 10 + (s.charCodeAt(k) - 48);
    }
    TS_HI = hi;
    TS_LO = lo;
    return 1;
  }
  const frac = end - dot - 1;
  if (dot === start || (frac !== 6 && frac !== 9) || dot - start > 15) return 0;
  let sec = 0;
  for (let k = start; k < dot; k++) sec = sec * 10 + (s.charCodeAt(k) - 48);
  let ns = 0;
  for (let k = dot + 1; k < end; k++) ns = ns * 10 + (s.charCodeAt(k) - 48);
  TS_HI = sec;
  TS_LO = frac === 6 ? ns * 1000 : ns;
  return 2;
}

/** Finds `[digits]` preceded by a space (or a TGID's ")"), returning the index of "[" or -1. */
function findCpuColumn(s: string, from: number, to: number): number {
  let k = s.indexOf('[', from);
  while (k >= 0 && k < to) {
    const prev = s.charCodeAt(k - 1);
    if (k > from && (prev === SP || prev === 41)) {
      let m = k + 1;
      while (m < to && s.charCodeAt(m) >= 48 && s.charCodeAt(m) <= 57) m++;
      if (m > k + 1 && s.charCodeAt(m) === RBRACK) return k;
    }
    k = s.indexOf('[', k + 1);
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
 * Reads a whole ftrace text file as batches of events, 64 KiB at a time (bounded memory). Reads
 * are synchronous: parsing is CPU-bound and the page cache answers at once, so an asynchronous
 * read would only add a wait per chunk. Only whole lines are decoded (the bytes after the last
 * newline wait for the next read), so a UTF-8 sequence is never split, and chunks of pure ASCII —
 * nearly all ftrace text — take the cheaper one-byte decoding.
 */
export async function* readFtraceText(
  path: string,
  opts: Omit<FtraceTextOptions, 'file'> & { file?: string },
  parserOut?: (p: FtraceTextParser) => void,
): AsyncGenerator<TraceEvent[]> {
  const parser = new FtraceTextParser({ ...opts, file: opts.file ?? path });
  parserOut?.(parser);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new UserError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  try {
    let buf = Buffer.allocUnsafe(1 << 16);
    let carry = 0;
    for (;;) {
      if (carry === buf.length) {
        // A line longer than the buffer: grow it (lines are short; this is the rare exception).
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, carry);
        buf = bigger;
      }
      let n: number;
      try {
        n = readSync(fd, buf, carry, buf.length - carry, null);
      } catch (e) {
        throw new UserError(`cannot read ${path}: ${(e as Error).message}`);
      }
      const end = carry + n;
      if (n === 0) {
        if (end > 0) {
          const evs = parser.write(decode(buf, end));
          if (evs.length) yield evs;
        }
        break;
      }
      const cut = buf.lastIndexOf(10, end - 1) + 1;
      if (cut === 0) {
        carry = end;
        continue;
      }
      const evs = parser.write(decode(buf, cut));
      buf.copy(buf, 0, cut, end);
      carry = end - cut;
      if (evs.length) yield evs;
    }
    const last = parser.end();
    if (last.length) yield last;
  } finally {
    closeSync(fd);
  }
}

/** Decodes buf[0, end): one-byte decoding when it is all ASCII, UTF-8 otherwise. */
function decode(buf: Buffer, end: number): string {
  return buf.toString(isAscii(buf.subarray(0, end)) ? 'latin1' : 'utf8', 0, end);
}
