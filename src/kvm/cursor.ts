/**
 * Where a guest event falls among its vCPU thread's segments (segments.ts): inside (running guest
 * code), outside (and how far from the nearest moment inside), or not checkable. Guest events come
 * in timeline order, so the cursor mostly moves forward; it searches when one comes earlier.
 *
 * Boundaries are inclusive: a guest event at the very cycle a GUEST segment ends is inside (the
 * merge puts host events first at equal times, and kvm_exit is stamped after the guest's last
 * instruction), like one at the cycle it starts.
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

  constructor(readonly segs: ThreadSegments) {}

  /** The verdict at timeline time t. */
  judge(t: number): number {
    this.moveTo(t);
    const s = this.segs;
    if (this.i < 0) return NOT_CHECKABLE;
    const st = s.state(this.i);
    if (st === GUEST || this.guestEnd === t) return INSIDE;
    if (isNotCheckable(st)) return NOT_CHECKABLE;
    const next = this.nextGuestStart();
    this.distance = Math.min(t - this.guestEnd, next - t);
    return OUTSIDE;
  }

  private moveTo(t: number): void {
    const s = this.segs;
    if (this.i >= 0 && t < s.t[this.i]) this.seek(t);
    while (this.i + 1 < s.n && s.t[this.i + 1] <= t) {
      this.i++;
      if (this.i > 0 && s.state(this.i - 1) === GUEST && s.state(this.i) !== GUEST) this.guestEnd = s.t[this.i];
    }
  }

  /** Repositions before time t (an event that came earlier than the one before it). */
  private seek(t: number): void {
    const s = this.segs;
    this.i = s.at(t) - 1;
    this.nextGuest = -1;
    // The last GUEST → other change at or before segment i + 1 (replayed by moveTo from here).
    this.guestEnd = -Infinity;
    for (let j = this.i; j > 0; j--)
      if (s.state(j - 1) === GUEST && s.state(j) !== GUEST) {
        this.guestEnd = s.t[j];
        break;
      }
  }

  private nextGuestStart(): number {
    const s = this.segs;
    if (this.nextGuest <= this.i) {
      let j = this.i + 1;
      while (j < s.n && s.state(j) !== GUEST) j++;
      this.nextGuest = j;
    }
    return this.nextGuest < s.n ? s.t[this.nextGuest] : Infinity;
  }
}
