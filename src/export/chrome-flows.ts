/**
 * The flow arrows of the Chrome JSON, as records: `--flows` matches (category `flow`) and the sync
 * points validation matched (category `sync`, from the host's sync exit to the guest's kvmsync
 * marker).
 *
 * Each flow end is bound to a zero-length `X` slice of its own, on the event's track at its time,
 * written just before the `s`/`f` record with the same track, time and category. Every consumer
 * binds it there: Perfetto binds an `s`, and an `f` with "bp":"e", to the innermost slice open on
 * the track (dropping it as `flow_no_enclosing_slice` when there is none), and a zero-length slice
 * stays on its track's stack until a later slice there; Chrome DevTools binds a flow record to the
 * event with its pid, tid, ts and cat. The event's own slice or instant cannot serve: a switch to
 * the idle task opens none, and categories differ between a flow's two ends, where both must
 * share the flow's.
 */
import type { SyncMatch } from '../merge/consumer.js';
import type { EventBlock } from '../model/event-block.js';
import { fieldsOf } from '../parsers/event-fields.js';
import { jsonString } from './json-string.js';

/** One end of a flow arrow, drawn at a merged event: `s` starts it, `f` finishes it (same `id`). */
export interface FlowMark {
  ph: 's' | 'f';
  id: number;
  name: string;
}

/**
 * Sync flows' ids start here, far above those of `--flows` (counters from 1): Perfetto keeps flows
 * apart by category and name as well, but Chrome DevTools by id alone.
 */
const SYNC_FLOW_BASE = 2 ** 40;

/** A sync flow's start, due when the stream reaches its host exit. */
export interface SyncStart {
  /** Host thread and timeline time of the exit. */
  tid: number;
  t: number;
  records: string[];
}

/** The flow records of one export; `ts` formats a timeline time as the file's `ts`. */
export class ChromeFlows {
  private starts: (SyncMatch & { id: number })[] = [];
  private ends: { src: number; t: number; seq: number; id: number }[] = [];
  private syncIds = 0;

  constructor(private readonly ts: (t: number) => string) {}

  /** The records of `--flows` marks at one event: its carrier slice (named after the flow), then each mark. */
  marks(pid: number, tid: number, t: number, event: string, marks: FlowMark[]): string[] {
    const at = `"cat":"flow","ts":${this.ts(t)},"pid":${pid},"tid":${tid}`;
    const out = [`{"ph":"X","name":${jsonString(marks[0].name)},${at},"dur":0,"args":{"event":${jsonString(event)}}}`];
    for (const f of marks) out.push(`{"ph":"${f.ph}","id":${f.id},"name":${jsonString(f.name)},${at}${f.ph === 'f' ? ',"bp":"e"' : ''}}`);
    return out;
  }

  /**
   * A sync point validation matched. It is told before the marker's batch, when the exit may be
   * past: its start is written as soon as the stream has reached the exit (see {@link due}) —
   * behind its time when the exit was in an earlier batch, the one kind of record the file may
   * hold out of stream order (every consumer sorts) — and its end with the marker
   * ({@link endAt}). Written then rather than at every possible sync exit, as no exit is known to
   * be a sync point until a marker claims it, and most would start no arrow.
   */
  syncPoint(m: SyncMatch): void {
    const id = SYNC_FLOW_BASE + ++this.syncIds;
    this.starts.push({ ...m, id });
    this.ends.push({ src: m.src, t: m.guestT, seq: m.seq, id });
  }

  /** True while a sync start waits to be written. */
  get pending(): boolean {
    return this.starts.length > 0;
  }

  /** The sync starts whose host exit is at or before timeline time `upTo`, each on its vCPU thread of host process `pid`; removed from the pending ones. */
  due(pid: number, upTo: number): SyncStart[] {
    if (!this.starts.some((m) => m.hostT <= upTo)) return [];
    const due = this.starts.filter((m) => m.hostT <= upTo);
    this.starts = this.starts.filter((m) => m.hostT > upTo);
    return due.map((m) => {
      const at = `"cat":"sync","ts":${this.ts(m.hostT)},"pid":${pid},"tid":${m.tid}`;
      return { tid: m.tid, t: m.hostT, records: [`{"ph":"X","name":"sync point",${at},"dur":0,"args":{"seq":${m.seq},"kind":"${m.kind}"}}`, `{"ph":"s","id":${m.id},"name":"sync point",${at}}`] };
    });
  }

  /** At a guest event of source `src` (row r of blk, timeline time t, on track pid/tid): the records ending the sync flow whose marker it is, if any. */
  endAt(src: number, pid: number, tid: number, t: number, blk: EventBlock, r: number): string[] | undefined {
    if (!this.ends.length) return undefined;
    const i = this.ends.findIndex((e) => e.t === t && e.src === src);
    if (i < 0) return undefined;
    const f = fieldsOf(blk, r);
    const e = this.ends[i];
    if (f?.kind !== 'marker' || f.sync?.seq !== e.seq) return undefined;
    this.ends.splice(i, 1);
    const at = `"cat":"sync","ts":${this.ts(t)},"pid":${pid},"tid":${tid}`;
    return [`{"ph":"X","name":"sync point",${at},"dur":0,"args":{"seq":${e.seq}}}`, `{"ph":"f","id":${e.id},"name":"sync point",${at},"bp":"e"}`];
  }
}
