/**
 * trace.dat events as kvmtrace's common {@link TraceEvent}s: one buffer's CPUs merged in
 * timestamp order, page by page, yielded in batches. `ts` is the raw ring-buffer timestamp (TSC
 * cycles for x86-tsc and tsc2nsec files, ns for time clocks) minus the source's {@link TsBase};
 * `body` is the text `trace-cmd report` prints after the name column; `typed` the fields kvmtrace
 * interprets, read from the record's binary fields (kvm-fields.ts).
 */
import { parseClock } from '../../model/clock.js';
import type { Diagnostics } from '../../model/diagnostics.js';
import { UserError } from '../../model/errors.js';
import type { SourceHeader, TraceEvent } from '../../model/event.js';
import { TsBase } from '../../model/exact.js';
import { loadFastZstd } from './compress.js';
import { bufferBase, StreamMerger } from './merge-cpus.js';
import type { TraceDat } from './open.js';
import { EventPrinter, type FieldValues } from './printer.js';
import { TypedFields } from './kvm-fields.js';
import type { TraceDatBuffer } from './types.js';

/** A trace.dat event: the common fields plus the event's system and, on request, its raw fields. */
export interface TraceDatEvent extends TraceEvent {
  /** Event system (`sched`, `kvm`, …). */
  system: string;
  /** Field values decoded from the event's format (only with `fields: true`). */
  fields?: FieldValues;
}

/** Options of {@link readTraceDatEvents}. */
export interface ReadEventsOptions {
  /** Buffer (instance) name; default: the top buffer, or the only buffer with data. */
  buffer?: string;
  diags: Diagnostics;
  /** Events per batch (default 4096). */
  batchSize?: number;
  /** Decode every event's fields into `fields` (slower). */
  fields?: boolean;
}

/** An opened event stream of one buffer. */
export interface TraceDatStream {
  buffer: TraceDatBuffer;
  /** Header in kvmtrace's model; `base` is set before the first batch is yielded. */
  header: SourceHeader;
  batches: AsyncIterable<TraceDatEvent[]>;
}

/** Picks a buffer by name, or the default one (top when it has data, else the first with data). */
export function pickBuffer(t: TraceDat, name?: string): TraceDatBuffer {
  if (name !== undefined) {
    const b = t.buffers.find((x) => x.name === name);
    if (!b)
      throw new UserError(
        `${t.file}: no buffer named "${name}" (buffers: ${t.buffers.map((x) => JSON.stringify(x.name)).join(', ')})`,
      );
    return b;
  }
  const withData = buffersWithEvents(t);
  return withData.find((b) => b.name === '') ?? withData[0] ?? t.buffers[0];
}

/** The buffers that hold ring-buffer events: not latency text, and some CPU with data. */
export function buffersWithEvents(t: Pick<TraceDat, 'buffers'>): TraceDatBuffer[] {
  return t.buffers.filter((b) => !b.latency && b.cpus.some((c) => c.size > 0));
}

/** Opens one buffer's events as batches of {@link TraceDatEvent}, in timestamp order. */
export function readTraceDatEvents(t: TraceDat, o: ReadEventsOptions): TraceDatStream {
  const buffer = pickBuffer(t, o.buffer);
  if (buffer?.latency) throw new UserError(`${t.file}: buffer "${buffer.name}" is a latency (text) trace, not events`);
  const clock = parseClock(buffer?.clock ?? '') ?? 'unknown';
  const header: SourceHeader = {
    file: t.file,
    clock,
    clockFrom: clock === 'unknown' ? 'unknown' : 'header',
    base: undefined,
    cpus: t.cpus,
    lostEvents: 0,
  };
  const size = o.batchSize ?? 4096;
  async function* gen(): AsyncGenerator<TraceDatEvent[]> {
    if (!buffer) return;
    if (buffer.compressed && t.compression?.name === 'zstd') await loadFastZstd();
    const base = bufferBase(t, buffer);
    if (base === undefined) return;
    header.base = new TsBase(base);
    const p = new EventPrinter(t);
    const typed = new TypedFields(p);
    let batch: TraceDatEvent[] = [];
    const merger = new StreamMerger(t, [{ buffer, base }], o.diags, (x) => x.reader.ts);
    for (let s = merger.next(); s; s = merger.next()) {
      const r = s.reader;
      p.at(r.buf, r.dataPos, r.dataLen, r.pageEnd);
      const id = p.type();
      const pid = p.pid();
      const ev = p.event(id);
      if (r.missed > 0) header.lostEvents += r.missed;
      if (!ev) o.diags.add({ file: t.file, byteOffset: r.fileOffset, message: `CPU ${r.cpu}: event id ${id} has no format in the file` });
      const comm = p.comm(pid);
      const e: TraceDatEvent = {
        ts: r.ts,
        cpu: r.cpu,
        comm,
        pid,
        tgid: -1,
        flags: '',
        name: ev ? ev.name : '(NULL)',
        body: p.body(id, false),
        line: r.fileOffset,
        system: ev ? ev.system : '',
        typed: typed.of(id),
      };
      if (o.fields) e.fields = p.fields(id);
      batch.push(e);
      if (batch.length >= size) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length) yield batch;
  }
  return { buffer, header, batches: gen() };
}
