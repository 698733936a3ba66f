/**
 * kvmtrace systemtap output: the line format every script in `stap/` prints (stap/README.md, "Line format").
 *
 *   # kvmtrace-stap 1 side=host script=host-kvm clock=get_cycles
 *   TSC<TAB>CPU<TAB>TID<TAB>PID<TAB>COMM<TAB>EVENT<TAB>BODY
 *
 * TSC is get_cycles() (the raw TSC on x86) as an unsigned decimal, CPU the CPU the probe ran on
 * (a guest CPU in the guest), TID/PID the thread and process ids, COMM the task name escaped by
 * stap's text_str() (so it holds no tab), EVENT a name without spaces, BODY the rest of the line.
 * `#` lines are header or comment lines. When stap's stderr was merged into the file, its
 * `WARNING:` lines are counted (and `skipped probes: N` is added to the lost events) and its
 * `ERROR:` lines become diagnostics.
 */
import { createReadStream } from 'node:fs';
import type { Diagnostics } from '../model/diagnostics.js';
import { LineParser } from './line-parser.js';
import { TsBase, splitDecimal } from '../model/exact.js';
import type { SourceHeader, TraceEvent } from '../model/event.js';
import type { TraceClock } from '../model/clock.js';
import { registerDetector } from './detect.js';
import { checkInput, inputError } from './input.js';
import { clipInput, quoteInput } from '../model/quote.js';

/** The magic that opens every kvmtrace stap output. */
export const STAP_MAGIC = '# kvmtrace-stap ';
/** The line format version this parser reads. */
export const STAP_FORMAT_VERSION = 1;

/** Options for one stap source. */
export interface StapOptions {
  /** The file name used in diagnostics. */
  file: string;
  /** Overrides the clock the format defines (get_cycles → x86-tsc); for non-x86 counters. */
  clock?: TraceClock;
  clockFrom?: 'metadata' | 'flag';
  diags: Diagnostics;
}

/** Counts of what a parse met, for the report. */
export interface StapStats {
  lines: number;
  events: number;
  headerLines: number;
  stapMessages: number;
  badLines: number;
}

/**
 * A streaming parser: `write()` takes text or bytes split anywhere (a UTF-8 sequence split across
 * chunks is kept until complete), returns the events whose lines are complete; `end()` flushes.
 */
export class StapParser extends LineParser {
  readonly header: SourceHeader;
  readonly stats: StapStats = { lines: 0, events: 0, headerLines: 0, stapMessages: 0, badLines: 0 };
  /** `key=value` pairs of the `# kvmtrace-stap` header line (side, script, kernel, …). */
  readonly meta: Record<string, string> = {};
  /** The scripts' own `#` comment lines after the header (`# zeroing armed…`, `# cross-check FAILED…`), first 100, with line numbers. */
  readonly comments: { line: number; text: string }[] = [];
  private readonly decoder = new TextDecoder('utf-8');

  constructor(opts: StapOptions) {
    super(opts.diags);
    // The format defines its clock (get_cycles(), the TSC on x86); metadata or a flag may say otherwise.
    this.header = {
      file: opts.file,
      clock: opts.clock ?? 'x86-tsc',
      clockFrom: opts.clock ? (opts.clockFrom ?? 'flag') : 'header',
      base: undefined,
      lostEvents: 0,
    };
  }

  /** Parses a chunk of text or bytes (UTF-8 split anywhere); returns the events whose lines are complete. */
  override write(chunk: string | Uint8Array): TraceEvent[] {
    return super.write(typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true }));
  }

  /** Ends the input (a last line without a newline was cut off: reported, see LineParser.end). */
  override end(): TraceEvent[] {
    const tail = this.decoder.decode();
    const out = tail.length ? super.write(tail) : [];
    for (const e of super.end()) out.push(e);
    return out;
  }

  protected line(s: string, from: number, to: number, out: TraceEvent[]): void {
    if (from === to) return;
    if (s.charCodeAt(from) === 35 /* # */) return this.headerLine(s.slice(from, to));
    if (s.startsWith('WARNING:', from)) return this.warning(s.slice(from, to));
    if (s.startsWith('ERROR:', from)) return this.bad(`systemtap reported: ${clipInput(s.slice(from, Math.min(to, from + 201)), 200)}`);

    // Six tab-terminated columns, then the body.
    const cols: number[] = [from];
    let k = from;
    while (cols.length < 7) {
      const t = s.indexOf('\t', k);
      if (t < 0 || t >= to) break;
      cols.push(t + 1);
      k = t + 1;
    }
    if (cols.length < 7) {
      return this.bad(`expected 7 tab-separated columns "TSC CPU TID PID COMM EVENT BODY", found ${cols.length}`);
    }
    const tsEnd = cols[1] - 1;
    const parts = splitDecimal(s, from, tsEnd);
    if (!parts) return this.bad(`expected the TSC (an unsigned decimal of at most 20 digits), found ${quoteInput(s.slice(from, Math.min(tsEnd, from + 81)))}`);
    const cpu = intCol(s, cols[1], cols[2] - 1);
    if (cpu < 0) return this.bad(`expected a CPU number, found ${quoteInput(s.slice(cols[1], cols[2] - 1))}`);
    const tid = intCol(s, cols[2], cols[3] - 1);
    if (tid < 0) return this.bad(`expected a thread id, found ${quoteInput(s.slice(cols[2], cols[3] - 1))}`);
    const pid = intCol(s, cols[3], cols[4] - 1);
    if (pid < 0) return this.bad(`expected a process id, found ${quoteInput(s.slice(cols[3], cols[4] - 1))}`);
    const comm = s.slice(cols[4], cols[5] - 1);
    const name = s.slice(cols[5], cols[6] - 1);
    if (name.length === 0 || name.includes(' ')) return this.bad(`expected an event name without spaces, found ${quoteInput(name)}`);

    if (this.header.base === undefined) this.header.base = new TsBase(BigInt(parts[0]) * 1_000_000_000n + BigInt(parts[1]));
    const ts = this.header.base.rel(parts[0], parts[1]);
    if (!Number.isSafeInteger(ts)) {
      return this.bad(`TSC ${s.slice(from, tsEnd)} is more than 2^53 cycles from the trace's first TSC: not one trace`);
    }
    this.stats.events++;
    out.push({ ts, cpu, comm, pid: tid, tgid: pid, flags: '', name, body: s.slice(cols[6], to), line: this.lineNo });
  }

  private headerLine(t: string): void {
    this.stats.headerLines++;
    if (!t.startsWith(STAP_MAGIC)) {
      if (this.comments.length < 100) this.comments.push({ line: this.lineNo, text: t.replace(/^#\s*/, '') });
      return;
    }
    const words = t.slice(STAP_MAGIC.length).trim().split(/\s+/);
    const version = Number(words[0]);
    if (version !== STAP_FORMAT_VERSION) {
      this.stats.headerLines--;
      return this.bad(`this kvmtrace reads kvmtrace-stap format ${STAP_FORMAT_VERSION}, the header says ${quoteInput(words[0])}`);
    }
    for (const w of words.slice(1)) {
      const eq = w.indexOf('=');
      if (eq > 0) this.meta[w.slice(0, eq)] = w.slice(eq + 1);
    }
    const cpus = Number(this.meta.cpus);
    if (Number.isSafeInteger(cpus) && cpus > 0) this.header.cpus = cpus;
  }

  /** stap's own warnings (when stderr went into the file too); skipped probes are lost events. */
  private warning(t: string): void {
    this.stats.stapMessages++;
    const m = /skipped probes: (\d+)/.exec(t);
    if (m) this.header.lostEvents += Number(m[1]);
  }
}

/** A non-negative decimal int column, or -1. */
function intCol(s: string, from: number, to: number): number {
  if (to <= from || to - from > 15) return -1;
  let v = 0;
  for (let i = from; i < to; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

/**
 * True when the head of a file is kvmtrace stap output: it opens with the `# kvmtrace-stap` line,
 * or (headerless) its first non-comment lines are all well-formed event lines.
 */
export function detectStap(head: string): boolean {
  const lines = head.split('\n');
  const first = lines.find((l) => l.trim().length > 0);
  if (first === undefined) return false;
  if (first.startsWith(STAP_MAGIC)) return true;
  // Without the header: decide on the complete lines only (the head may end mid-line).
  const complete = lines.slice(0, lines.length - 1).slice(0, 50);
  let events = 0;
  let bad = 0;
  const p = new StapParser({ file: '(detect)', diags: { add: () => void bad++ } as unknown as Diagnostics });
  for (const l of complete) events += p.write(l + '\n').length;
  return events > 0 && bad === 0 && events > p.stats.stapMessages;
}

// Content-based detection: `detectFormat` tries this before ftrace text.
registerDetector('stap', (h) => detectStap(h.toString('utf8')));

/** Feeds a file to a parser chunk by chunk (bounded memory), yielding the events as they complete. */
async function* streamInto(parser: StapParser, path: string): AsyncGenerator<TraceEvent[]> {
  checkInput(path);
  const stream = createReadStream(path, { highWaterMark: 1 << 20 });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const evs = parser.write(chunk);
      if (evs.length) yield evs;
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code) throw inputError(path, e);
    throw e;
  }
  const last = parser.end();
  if (last.length) yield last;
}

/** Reads a whole stap output file as batches of events, chunk by chunk (bounded memory). */
export async function* readStap(
  path: string,
  opts: Omit<StapOptions, 'file'> & { file?: string },
  parserOut?: (p: StapParser) => void,
): AsyncGenerator<TraceEvent[]> {
  const parser = new StapParser({ ...opts, file: opts.file ?? path });
  parserOut?.(parser);
  yield* streamInto(parser, path);
}

/**
 * Opens a stap output file as a merge source. The parser exists at once, so `parser.header`
 * (updated in place while reading: base, lost events) and `parser.stats` can be handed out before
 * the first batch is pulled.
 */
export function openStap(
  path: string,
  opts: Omit<StapOptions, 'file'> & { file?: string },
): { parser: StapParser; batches: AsyncGenerator<TraceEvent[]> } {
  const parser = new StapParser({ ...opts, file: opts.file ?? path });
  return { parser, batches: streamInto(parser, path) };
}

/** Parses a whole text at once (tests, small files): the events and the parser with its header and stats. */
export function parseStap(text: string | Uint8Array, opts: StapOptions): { events: TraceEvent[]; parser: StapParser } {
  const parser = new StapParser(opts);
  const events = parser.write(text);
  for (const e of parser.end()) events.push(e);
  return { events, parser };
}
