import { UserError } from './errors.js';
import { escapeControl } from './quote.js';
import type { TraceFormat } from './bundle.js';

/** One problem found in an input: where it is and what was expected there. */
export interface Diagnostic {
  file: string;
  /** 1-based line number, for text inputs. */
  line?: number;
  /** Byte offset from the start of the file, for binary inputs. */
  byteOffset?: number;
  message: string;
}

/** A place in an input file as reports name it: `file:line` (text) or `file at byte N` (binary). */
export function placeText(p: { file: string; line?: number; byteOffset?: number }): string {
  const where = p.line !== undefined ? `:${p.line}` : p.byteOffset !== undefined ? ` at byte ${p.byteOffset}` : '';
  return `${p.file}${where}`;
}

/** Where an event of a file in `format` is, from its `line` column (a 1-based line for text, a byte offset for trace.dat). */
export function eventPlace(file: string, format: TraceFormat, line: number): { file: string; line?: number; byteOffset?: number } {
  return format === 'trace-dat' ? { file, byteOffset: line } : { file, line };
}

/** Formats a diagnostic as `file:line: message` or `file at byte N: message`, control characters escaped. */
export function formatDiagnostic(d: Diagnostic): string {
  return escapeControl(`${placeText(d)}: ${d.message}`);
}

/**
 * Collects the bad records of a run. Bad input is data: parsing goes on and the count is
 * reported at the end; with `strict` the first one becomes a UserError instead.
 * Only the first `keep` diagnostics are stored so memory stays bounded on huge bad inputs.
 */
export class Diagnostics {
  /** The first diagnostics, in the order they were found. */
  readonly list: Diagnostic[] = [];
  /** How many were found in all (may exceed list.length). */
  count = 0;

  constructor(
    readonly strict = false,
    readonly keep = 200,
  ) {}

  /** Records one bad record; throws a UserError when strict. */
  add(d: Diagnostic): void {
    if (this.strict) throw new UserError(formatDiagnostic(d));
    this.count++;
    if (this.list.length < this.keep) this.list.push(d);
  }

  /** Takes over the diagnostics another collector found (in their order, after this one's). */
  absorb(other: Diagnostics): void {
    for (const d of other.list) if (this.list.length < this.keep) this.list.push(d);
    this.count += other.count;
  }

  /** One clause for an error sentence: how many problems, and the first (empty when there are none). */
  brief(): string {
    if (this.count === 0 || this.list.length === 0) return '';
    return `${this.count} damaged or unparsable record(s) skipped, the first: ${formatDiagnostic(this.list[0])}`;
  }

  /** A human summary: the count and the first few diagnostics. */
  summary(show = 10): string {
    if (this.count === 0) return 'no unparsable lines';
    // A diagnostic with a line or byte offset is a record the parser could not read; one without
    // is a problem of the input as a whole (e.g. markers the host trace has no exit for).
    const records = this.list.every((d) => d.line !== undefined || d.byteOffset !== undefined);
    const lines = [records ? `${this.count} unparsable record(s):` : `${this.count} problem(s) in the inputs:`];
    for (const d of this.list.slice(0, show)) lines.push('  ' + formatDiagnostic(d));
    if (this.count > show) lines.push(`  … and ${this.count - show} more`);
    return lines.join('\n');
  }
}
