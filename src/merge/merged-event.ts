import type { TraceEvent } from '../model/event.js';

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

/** The one comparator of the merged timeline: host TSC, then source, then arrival order. */
export function compareMerged(a: MergedEvent, b: MergedEvent): number {
  return a.t - b.t || a.src - b.src || a.seq - b.seq;
}
