import type { TraceEvent } from '../model/event.js';
import type { EventBlock } from '../model/event-block.js';
import type { KvmTransitions } from '../kvm/replay.js';

/**
 * An event on the merged timeline. `t` is host TSC cycles minus the timeline's base (the host
 * trace's first timestamp), exact as a safe integer; the absolute value is `base + BigInt(t)`.
 */
export interface MergedEvent {
  /** Host TSC relative to the timeline base, in cycles. */
  t: number;
  /** Index of the source (0 = host when there is one). */
  src: number;
  /** Arrival order within the source (the deterministic tie-break). */
  seq: number;
  /** For guest events: the vCPU that ran it; -1 for host events. */
  vcpu: number;
  ev: TraceEvent;
}

/**
 * A batch of the merged timeline as columns, in its one order — host TSC, then source, then
 * arrival (see merge.ts) — where event k is row `row[k]` of block `blk[k]`, at
 * timeline time `t[k]` (host TSC cycles from the base), from source `src[k]`, run by vCPU
 * `vcpu[k]` (-1 for host events). Exporters read the columns; {@link events} gives objects.
 * The merge fills the same batch again once its consumer asks for the next one: read it, or copy
 * from it, before then.
 */
export class MergedBatch {
  n = 0;
  readonly t: Float64Array;
  readonly src: Int32Array;
  /** Arrival order within the source. */
  readonly seq: Float64Array;
  readonly vcpu: Int32Array;
  readonly row: Int32Array;
  readonly blk: EventBlock[];
  /** The KVM-run segments that start at this batch's host events (set by the merge session when the host is indexed). */
  kvm: KvmTransitions | undefined;
  private objects: MergedEvent[] | undefined;

  constructor(readonly capacity: number) {
    this.t = new Float64Array(capacity);
    this.src = new Int32Array(capacity);
    this.seq = new Float64Array(capacity);
    this.vcpu = new Int32Array(capacity);
    this.row = new Int32Array(capacity);
    this.blk = new Array<EventBlock>(capacity);
  }

  /** Empties the batch for refilling. */
  clear(): void {
    this.n = 0;
    this.objects = undefined;
  }

  /** Event k as an object. */
  ev(k: number): TraceEvent {
    return this.blk[k].event(this.row[k]);
  }

  /** The batch as merged-event objects (made once, on first call). */
  events(): MergedEvent[] {
    if (this.objects) return this.objects;
    const out = new Array<MergedEvent>(this.n);
    for (let k = 0; k < this.n; k++) out[k] = { t: this.t[k], src: this.src[k], seq: this.seq[k], vcpu: this.vcpu[k], ev: this.ev(k) };
    return (this.objects = out);
  }
}
