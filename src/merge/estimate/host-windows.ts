/**
 * The host's guest-mode windows of the vCPU threads, for estimation, read from the host index: per
 * thread two sorted Float64Arrays (window start, window end) in host TSC cycles relative to `base`
 * — 16 bytes per window. They are the KVM-run tracker's segments (kvm/tracker.ts), the very ones
 * validation judges by: a "window" is any time a guest event is accepted — running guest code
 * (boundaries inclusive) or not checkable. Outside the host trace's span nothing can be checked.
 */
import type { HostIndex, WindowKind } from '../../host/index.js';
import { acceptedWindows } from '../../kvm/segments.js';

/** Guest-mode windows of one host thread (sorted, disjoint). Times are host TSC cycles relative to `HostWindows.base`. */
export interface ThreadWindows {
  tid: number;
  /** Starts; the first may be -Infinity (not known before the first evidence). */
  starts: Float64Array;
  /** Ends; the last may be +Infinity (in guest mode, or not known, when the trace ends). */
  ends: Float64Array;
  /** Host TSC (relative) of the thread's sync exits: kvm_pio on the sync port, kvm_exit for CPUID. Sorted. */
  pio: Float64Array;
  cpuid: Float64Array;
}

/** The windows of the requested threads and the host trace's checkable span. */
export interface HostWindows {
  /** Absolute host TSC of relative time 0. */
  base: bigint;
  kind: WindowKind;
  /** Host trace's first and last event (relative): guest events after the last cannot be checked. */
  first: number;
  last: number;
  threads: Map<number, ThreadWindows>;
  /** vCPU → number of `tsc_offset_zeroed` events (the stap method: KVM was made to write offset 0). */
  zeroed: Map<number, number>;
}

const NONE = new Float64Array(0);

/** The windows of `tids` from the index (no pass over the host). */
export function hostWindows(index: HostIndex, tids: number[]): HostWindows {
  const threads = new Map<number, ThreadWindows>();
  for (const tid of tids) {
    const w = acceptedWindows(index.threads.get(tid)?.segments);
    const sy = index.sync.get(tid);
    threads.set(tid, { tid, ...w, pio: sy?.pio ?? NONE, cpuid: sy?.cpuid ?? NONE });
  }
  return { base: index.base, kind: index.kind, first: index.firstT, last: index.lastT, threads, zeroed: index.zeroed };
}

/** Index of the first window whose end is ≥ h (binary search), or the window count. */
export function firstEndingAtOrAfter(w: ThreadWindows, h: number): number {
  let lo = 0;
  let hi = w.ends.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (w.ends[mid] < h) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
