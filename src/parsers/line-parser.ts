/**
 * What the line parsers that work on text share (tap-parser's shape; the stap parser, while the
 * ftrace text parser reads bytes into blocks): `write()` takes text split
 * anywhere and hands each complete line to `line()`, `end()` flushes the last one, and a bad line
 * becomes a diagnostic with its file and line number while parsing goes on.
 */
import type { Diagnostics } from '../model/diagnostics.js';
import type { SourceHeader, TraceEvent } from '../model/event.js';

/**
 * What a text parser says about a last line without a newline. Every producer of these formats
 * (tracefs, trace-cmd report, the stap scripts) ends each line with one, so a line without it was
 * cut off — the file truncated, or copied while still being written — and one of its fields may
 * be cut short: it is reported, not read as an event.
 */
export const CUT_OFF_LINE = 'the last line ends without a newline: it was cut off (truncated file, or one still being written?) and is not read';

/** True when s[from, to) holds more than blanks (spaces, tabs, a carriage return). */
export function hasText(s: string, from = 0, to = s.length): boolean {
  return /[^ \t\r]/.test(s.slice(from, to));
}

/** The base of the text parsers: line splitting, line numbers, bad-line diagnostics. */
export abstract class LineParser {
  abstract readonly header: SourceHeader;
  abstract readonly stats: { lines: number; badLines: number };
  /** 1-based number of the line being parsed. */
  protected lineNo = 0;
  private rest = '';

  constructor(protected readonly diags: Diagnostics) {}

  /** Parses one line s[from, to) (no newline), appending its events to `out`. */
  protected abstract line(s: string, from: number, to: number, out: TraceEvent[]): void;

  /** Called by `end()` after the last line, for parsers that hold an event back. */
  protected flush(out: TraceEvent[]): void {
    void out;
  }

  /** Parses a chunk of text; returns the events whose lines are complete. */
  write(chunk: string): TraceEvent[] {
    const out: TraceEvent[] = [];
    // Only the new text is searched for the first line end (what is held has none), so a line
    // longer than a chunk is not rescanned with every chunk.
    const first = chunk.indexOf('\n');
    if (first < 0) {
      this.rest += chunk;
      return out;
    }
    const text = this.rest.length ? this.rest + chunk : chunk;
    let nl = this.rest.length + first;
    let start = 0;
    while (nl >= 0) {
      this.lineNo++;
      this.stats.lines++;
      this.line(text, start, nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl, out);
      start = nl + 1;
      nl = text.indexOf('\n', start);
    }
    this.rest = start < text.length ? text.slice(start) : '';
    return out;
  }

  /** Ends the input: a last line without a newline is reported as cut off ({@link CUT_OFF_LINE}). */
  end(): TraceEvent[] {
    const out: TraceEvent[] = [];
    const tail = this.rest;
    this.rest = '';
    if (tail.length) {
      this.lineNo++;
      this.stats.lines++;
      if (hasText(tail)) this.bad(CUT_OFF_LINE);
    }
    this.flush(out);
    return out;
  }

  /** Records a bad line (file, line number, what was expected); throws under --strict. */
  protected bad(message: string): void {
    this.stats.badLines++;
    this.diags.add({ file: this.header.file, line: this.lineNo, message });
  }
}
