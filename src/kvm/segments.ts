/**
 * The tracker's segments of one host thread, kept in typed arrays (20 bytes a segment): where each
 * starts (timeline cycles, and its place in the merge's host order), its state and arg, and where
 * its host event is in the host's files (`where`, host/where.ts: what a report names). A segment
 * lasts until the next one starts; the last one until the host trace ends.
 */
import { UserError } from '../model/errors.js';
import type { SegmentSink } from './tracker.js';
import { GUEST, isNotCheckable, type KvmState } from './states.js';

/** One thread's segments, in order (a {@link SegmentSink} that keeps them). */
export class ThreadSegments implements SegmentSink {
  n = 0;
  /** Start, timeline cycles. */
  t = new Float64Array(16);
  /** Start, as the ordinal of its host event in the merge's host order (see host/index.ts). */
  private k = new Uint32Array(16);
  /** State in the low 3 bits, the side of its place (ord & 1) in bit 3, arg + 1 above. */
  private info = new Int32Array(16);
  /**
   * `where` + 1 of each segment's host event (0: not known). 32 bits while every value fits (text
   * lines always do), 64-bit floats from the first that does not (a trace.dat past 4 GiB).
   */
  private loc: Uint32Array | Float64Array = new Uint32Array(16);

  /** Appends a segment (the tracker calls this in order). `ord` is 2 × host event ordinal + side. */
  segment(t: number, ord: number, state: KvmState, arg: number, where = -1): void {
    if (this.n === this.t.length) this.grow();
    if (ord >= 2 * 0x1_0000_0000) throw new UserError('the host trace has more than 2^32 events: too many for the host index');
    if (where + 1 > 0xffff_ffff && this.loc instanceof Uint32Array) this.loc = Float64Array.from(this.loc);
    this.t[this.n] = t;
    this.k[this.n] = ord / 2;
    this.loc[this.n] = where + 1;
    this.info[this.n++] = state | ((ord & 1) << 3) | ((arg + 1) << 4);
  }

  /** Where segment i's host event is (host/where.ts), -1 when not known. */
  where(i: number): number {
    return this.loc[i] - 1;
  }

  /** Place of segment i: 2 × the ordinal of its host event + side (1 for the thread a sched_switch switches to). */
  ord(i: number): number {
    return 2 * this.k[i] + ((this.info[i] >> 3) & 1);
  }

  /** Ordinal of segment i's host event in the merge's host order. */
  event(i: number): number {
    return this.k[i];
  }

  /** State of segment i. */
  state(i: number): KvmState {
    return this.info[i] & 7;
  }

  /** Arg of segment i: the vCPU (GUEST from kvm_entry), the reason's id (EXIT, USERSPACE), or -1. */
  arg(i: number): number {
    return (this.info[i] >> 4) - 1;
  }

  /** Index of the last segment starting at or before t (-1 when none). */
  at(t: number): number {
    let lo = 0;
    let hi = this.n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.t[mid] <= t) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }

  /** Drops the spare capacity once the tracker is done. */
  trim(): void {
    this.t = this.t.slice(0, this.n);
    this.k = this.k.slice(0, this.n);
    this.info = this.info.slice(0, this.n);
    this.loc = this.loc.slice(0, this.n);
  }

  /** Bytes held. */
  bytes(): number {
    return this.t.byteLength + this.k.byteLength + this.info.byteLength + this.loc.byteLength;
  }

  private grow(): void {
    const k = this.t.length * 2;
    const t = new Float64Array(k);
    t.set(this.t);
    this.t = t;
    const o = new Uint32Array(k);
    o.set(this.k);
    this.k = o;
    const f = new Int32Array(k);
    f.set(this.info);
    this.info = f;
    const l = this.loc instanceof Uint32Array ? new Uint32Array(k) : new Float64Array(k);
    l.set(this.loc);
    this.loc = l;
  }
}

/** Accepted stretches of a thread as two sorted arrays (closed intervals), for estimation. Times are timeline cycles. */
export interface GuestWindows {
  starts: Float64Array;
  ends: Float64Array;
}

/**
 * The stretches where a guest event of the thread is accepted — GUEST (closed: an event at the
 * exit's cycle is inside) and not checkable (up to the cycle before the next state) — merged where
 * they touch. The first segment starts at the host trace's first event; what lies before it cannot
 * be checked, so a first accepted stretch reaches back to -Infinity, and one open at the end runs
 * to +Infinity. A thread without segments is accepted everywhere.
 */
export function acceptedWindows(s: ThreadSegments | undefined): GuestWindows {
  const starts: number[] = [];
  const ends: number[] = [];
  const push = (a: number, b: number): void => {
    if (a > b) return;
    const k = ends.length - 1;
    if (k >= 0 && a <= ends[k] + 1) ends[k] = Math.max(ends[k], b);
    else starts.push(a), ends.push(b);
  };
  if (!s || s.n === 0) push(-Infinity, Infinity);
  else
    for (let i = 0; i < s.n; i++) {
      const st = s.state(i);
      const a = i === 0 ? -Infinity : s.t[i];
      const next = i + 1 < s.n ? s.t[i + 1] : Infinity;
      if (st === GUEST) push(a, next);
      else if (isNotCheckable(st)) push(a, next - 1);
    }
  return { starts: Float64Array.from(starts), ends: Float64Array.from(ends) };
}
