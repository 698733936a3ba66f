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

/**
 * The longest line the text parsers read. The kernel formats each ftrace event into one page
 * (a trace_seq of PAGE_SIZE, 4 KiB on x86; trace_marker writes are cut to fit), and trace-cmd and
 * the stap scripts print within the same bounds, so a longer line is not an event: it is damage
 * (a binary file, a file with its newlines lost). Such a line is reported and skipped, never
 * assembled: memory stays bounded whatever the input.
 */
export const MAX_LINE_BYTES = 1 << 20;

/** What a text parser says about a line longer than {@link MAX_LINE_BYTES}. */
export function longLineMessage(bytes: number): string {
  return `the line is ${bytes} bytes long, longer than any trace event line (at most 1 MiB): not read`;
}

/**
 * The unfinished last line of text given to a parser's `write()`, held until its newline comes;
 * past {@link MAX_LINE_BYTES} it is only measured (its text is dropped), so memory stays bounded.
 */
export class HeldLine {
  private text = '';
  /** Length of a line past the bound, so far; -1 while the line is held. */
  private dropped = -1;

  /** Holds `s` (which has no newline) as more of the unfinished line. */
  hold(s: string): void {
    if (this.dropped >= 0) this.dropped += s.length;
    else if (this.text.length + s.length > MAX_LINE_BYTES) {
      this.dropped = this.text.length + s.length;
      this.text = '';
    } else this.text += s;
  }

  /**
   * The text to parse when `s` holds a newline at `first`, and where its first line end is: the
   * held start of the line joined with `s`; or, when the held line was too long, `s` after that
   * newline (the line's length given to `long`; the end is then searched in what is left).
   */
  join(s: string, first: number, long: (length: number) => void): { text: string; nl: number } {
    if (this.dropped >= 0) {
      long(this.dropped + first);
      this.dropped = -1;
      const text = s.slice(first + 1);
      return { text, nl: text.indexOf('\n') };
    }
    const held = this.text.length;
    const text = held ? this.text + s : s;
    this.text = '';
    return { text, nl: held + first };
  }

  /** Ends the input: the unfinished line's text, or its length when it was too long (then text is ''). */
  take(): { text: string; dropped: number } {
    const r = { text: this.text, dropped: this.dropped };
    this.text = '';
    this.dropped = -1;
    return r;
  }
}

/** The base of the text parsers: line splitting, line numbers, bad-line diagnostics. */
export abstract class LineParser {
  abstract readonly header: SourceHeader;
  abstract readonly stats: { lines: number; badLines: number };
  /** 1-based number of the line being parsed. */
  protected lineNo = 0;
  private readonly held = new HeldLine();

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
      this.held.hold(chunk);
      return out;
    }
    const joined = this.held.join(chunk, first, (n) => this.longLine(n));
    const text = joined.text;
    let nl = joined.nl;
    let start = 0;
    while (nl >= 0) {
      this.lineNo++;
      this.stats.lines++;
      if (nl - start > MAX_LINE_BYTES) this.bad(longLineMessage(nl - start));
      else this.line(text, start, nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl, out);
      start = nl + 1;
      nl = text.indexOf('\n', start);
    }
    if (start < text.length) this.held.hold(text.slice(start));
    return out;
  }

  /** Counts and reports a line too long to read (see {@link MAX_LINE_BYTES}). */
  private longLine(length: number): void {
    this.lineNo++;
    this.stats.lines++;
    this.bad(longLineMessage(length));
  }

  /** Ends the input: a last line without a newline is reported as cut off ({@link CUT_OFF_LINE}). */
  end(): TraceEvent[] {
    const out: TraceEvent[] = [];
    const tail = this.held.take();
    if (tail.dropped >= 0) this.longLine(tail.dropped);
    else if (tail.text.length) {
      this.lineNo++;
      this.stats.lines++;
      this.bad(CUT_OFF_LINE); // even blanks: the tools end every line they write with a newline
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
