import type { TsBase } from './exact.js';
import type { TraceClock } from './clock.js';
import type { KvmFields } from './kvm-fields.js';

/**
 * One trace event as every parser produces it.
 *
 * `ts` is exact: the source clock's value minus the source's {@link TsBase}, in the clock's
 * unit (cycles for counter clocks, ns for time clocks). Fields are kept as the printed text
 * (`body`); its `key=value` fields are read only where someone asks ({@link fieldOf}), so a
 * parser does not pay for fields nobody reads.
 */
export interface TraceEvent {
  /** Timestamp relative to the source's base, in the source clock's unit. */
  ts: number;
  /** CPU the event was recorded on (a guest CPU for guest sources). */
  cpu: number;
  /** Task name as the tracer printed it (`<...>` when unknown; may contain spaces). */
  comm: string;
  /** Thread id (the kernel's pid). */
  pid: number;
  /** Thread-group id when the trace has a TGID column, else -1. */
  tgid: number;
  /** The irq-info column (`d..2.`), '' when the trace has none. */
  flags: string;
  /** Event name (`sched_switch`, `kvm_exit`, `tracing_mark_write`, …). */
  name: string;
  /** The event's printed text after `name: `. */
  body: string;
  /** Where it came from: 1-based line for text, byte offset for binary. */
  line: number;
  /** Typed fields decoded at import (trace.dat); null when the event has none; absent: decode from `body`. */
  typed?: KvmFields | null;
}

/** What a parser knows about the stream it reads. */
export interface SourceHeader {
  /** File the events come from (as the user named it). */
  file: string;
  /** The trace clock, from the file's header, bundle metadata or a flag; 'unknown' when none says. */
  clock: TraceClock;
  /** Where the clock name came from, for the report. */
  clockFrom: 'header' | 'metadata' | 'flag' | 'unknown';
  /** Base of every event's `ts`; set when the first timestamp is read. */
  base: TsBase | undefined;
  /** CPU count when the file says (`cpus=N`, `entries-in-buffer/entries-written: …  #P:N`). */
  cpus?: number;
  /** Total events the tracer reported lost (`[LOST N EVENTS]`, page headers). */
  lostEvents: number;
  /** Unit of `ts` once known: cycles for counter clocks, ns for time clocks (from the clock or the data). */
  unit?: 'cycles' | 'ns';
}

/** Reads one `key=value` field from a body without splitting all of it; undefined when absent. */
export function fieldOf(body: string, key: string): string | undefined {
  let at = 0;
  for (;;) {
    const i = body.indexOf(key + '=', at);
    if (i < 0) return undefined;
    if (i === 0 || body.charCodeAt(i - 1) === 32) {
      const vs = i + key.length + 1;
      let e = body.indexOf(' ', vs);
      if (e < 0) e = body.length;
      return body.slice(vs, e);
    }
    at = i + 1;
  }
}
