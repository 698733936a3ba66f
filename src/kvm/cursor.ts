/**
 * Where a guest event falls among its vCPU thread's segments (segments.ts): inside (running guest
 * code), outside (and how far from the nearest moment inside), or not checkable. Guest events come
 * in timeline order, so the cursor mostly moves forward; it searches when one comes earlier.
 *
 * Boundaries are inclusive: a guest event at the very cycle a GUEST segment ends is inside (the
 * merge puts host events first at equal times, and kvm_exit is stamped after the guest's last
 * instruction), like one at the cycle it starts.
 *
 * A window is a run of GUEST segments (a second kvm_entry does not end one). Its edges are the host
 * events that start it and end it, except where it reaches the host trace's first or last event:
 * there the trace, not the host, ends it, and that edge does not count (it is infinitely far).
 */
import type { ThreadSegments } from './segments.js';
import { GUEST, isNotCheckable } from './states.js';

/** The verdict of one time. */
export const INSIDE = 0;
export const OUTSIDE = 1;
export const NOT_CHECKABLE = 2;

/** A cursor over one thread's segments. */
export class SegmentCursor {
  /** The segment the last time fell in (-1: before the first). */
  private i = -1;
  /** Where the last GUEST stretch before segment i ended (-Infinity when none). */
  private guestEnd = -Infinity;
  /** Cached index of the first GUEST segment after i (n when none); stale once i reaches it. */
  private nextGuest = -1;
  /** After an OUTSIDE verdict: the distance in cycles to the nearest moment inside (Infinity when there is none). */
  distance = 0;
  /** After an INSIDE verdict: the distance in cycles to the nearer edge of its window (Infinity when neither edge counts). */
  margin = 0;
  /** After an INSIDE verdict: the segment whose start is that edge (-1 when none). */
  edge = -1;
  /** After an OUTSIDE verdict: the segment that ended the window before (-1 when none), and the one that starts the window after (-1 when none). */
  before = -1;
  after = -1;
  /** The segment that ended the last GUEST stretch before segment i (-1 when none). */
  private guestEndSeg = -1;
  /** While segment i is GUEST: the segment its window starts at (-1 when it reaches back to the trace's start). */
  private runStart = -1;
  /** Cached index of the first non-GUEST segment after i (n when none); stale once i reaches it. */
  private nextOut = -1;

  constructor(readonly segs: ThreadSegments) {}

  /** The verdict at timeline time t. */
  judge(t: number): number {
    this.moveTo(t);
    const s = this.segs;
    if (this.i < 0) return NOT_CHECKABLE;
    const st = s.state(this.i);
    if (st === GUEST) {
      const start = this.runStart < 0 ? -Infinity : s.time(this.runStart);
      const out = this.nextOutStart();
      const toStart = t - start;
      const toEnd = out < 0 ? Infinity : s.time(out) - t;
      this.margin = Math.min(toStart, toEnd);
      this.edge = toStart <= toEnd ? this.runStart : out;
      return INSIDE;
    }
    if (this.guestEnd === t) {
      this.margin = 0;
      this.edge = this.guestEndSeg;
      return INSIDE;
    }
    if (isNotCheckable(st)) return NOT_CHECKABLE;
    const next = this.nextGuestStart();
    this.distance = Math.min(t - this.guestEnd, next - t);
    this.before = this.guestEndSeg;
    this.after = this.nextGuest < s.n ? this.nextGuest : -1;
    return OUTSIDE;
  }

  private moveTo(t: number): void {
    const s = this.segs;
    if (this.i >= 0 && t < s.time(this.i)) this.seek(t);
    while (this.i + 1 < s.n && s.time(this.i + 1) <= t) {
      this.i++;
      const was = this.i > 0 && s.state(this.i - 1) === GUEST;
      const is = s.state(this.i) === GUEST;
      if (was && !is) (this.guestEnd = s.time(this.i)), (this.guestEndSeg = this.i);
      else if (is && !was) this.runStart = this.i === 0 ? -1 : this.i;
    }
  }

  /** Repositions before time t (an event that came earlier than the one before it). */
  private seek(t: number): void {
    const s = this.segs;
    this.i = s.at(t) - 1;
    this.nextGuest = -1;
    this.nextOut = -1;
    // The last GUEST → other change at or before segment i + 1 (replayed by moveTo from here).
    this.guestEnd = -Infinity;
    this.guestEndSeg = -1;
    for (let j = this.i; j > 0; j--)
      if (s.state(j - 1) === GUEST && s.state(j) !== GUEST) {
        this.guestEnd = s.time(j);
        this.guestEndSeg = j;
        break;
      }
    // Where the window holding segment i starts, when it is GUEST (moveTo sets it for a later one).
    let j = this.i;
    while (j > 0 && s.state(j - 1) === GUEST) j--;
    this.runStart = j <= 0 ? -1 : j;
  }

  /** The first non-GUEST segment after i (where its window ends), -1 when the window lasts to the trace's end. */
  private nextOutStart(): number {
    const s = this.segs;
    if (this.nextOut <= this.i) {
      let j = this.i + 1;
      while (j < s.n && s.state(j) === GUEST) j++;
      this.nextOut = j;
    }
    return this.nextOut < s.n ? this.nextOut : -1;
  }

  private nextGuestStart(): number {
    const s = this.segs;
    if (this.nextGuest <= this.i) {
      let j = this.i + 1;
      while (j < s.n && s.state(j) !== GUEST) j++;
      this.nextGuest = j;
    }
    return this.nextGuest < s.n ? s.time(this.nextGuest) : Infinity;
  }
}
