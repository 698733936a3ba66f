/**
 * What the line parsers that work on text share (tap-parser's shape; the stap parser, while the
 * ftrace text parser reads bytes into blocks): `write()` takes text split
 * anywhere and hands each complete line to `line()`, `end()` flushes the last one, and a bad line
 * becomes a diagnostic with its file and line number while parsing goes on.
 */
import type { Diagnostics } from '../model/diagnostics.js';
import type { SourceHeader, TraceEvent } from '../model/event.js';

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

  /** Flushes the last line (a file need not end with a newline). */
  end(): TraceEvent[] {
    const out: TraceEvent[] = [];
    const tail = this.rest;
    this.rest = '';
    if (tail.length) {
      this.lineNo++;
      this.stats.lines++;
      this.line(tail, 0, tail.length, out);
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
