/**
 * Offset estimation from guest-mode windows alone, for guests that carry no sync points.
 *
 * Evidence: every guest event of a vCPU must lie inside a guest-mode window of the vCPU's host
 * thread (where the host can check it). With host = guest − offset, an event at guest TSC g allows
 * the offsets { g − h : h in a window, or h outside the checkable span }; the offsets that satisfy
 * every event are the intersection of those sets — an interval or a few.
 *
 * Computing it in two streaming passes over the guest, with bounded state:
 *  1. Candidates. The host's longest gap between two windows (x, y) — the guest is out of guest
 *     mode all that time — must fall between two consecutive guest events g₁ < g₂ (a hole in the
 *     guest's event stream at least as long): g₁ − x ≤ offset ≤ g₂ − y. Only holes ≥ y − x qualify,
 *     so the candidates are few. (Assumption, stated in the report: that gap lies within the guest
 *     trace's span; the guest would otherwise have no hole to put it in.)
 *  2. Refinement. Each guest event intersects the candidate intervals with its allowed set (binary
 *     search over the windows); what survives every event is the answer, exact to the cycle.
 *
 * All arithmetic here is on safe integers relative to two bases: o' = (g − guestBase) − (h − hostBase),
 * so offset = (guestBase − hostBase) + o'.
 */
import { firstEndingAtOrAfter, type ThreadWindows } from './host-windows.js';

/** An inclusive interval of relative offsets o'. */
export type Span = [lo: number, hi: number];

/** The host's longest gap between consecutive windows of a thread, or undefined with fewer than two windows. */
export function longestGap(w: ThreadWindows): { x: number; y: number } | undefined {
  return longestGaps(w, 1)[0];
}

/** The host's `k` longest gaps between consecutive windows of a thread, longest first. */
export function longestGaps(w: ThreadWindows, k: number): { x: number; y: number }[] {
  const best: { x: number; y: number }[] = [];
  for (let i = 0; i + 1 < w.starts.length; i++) {
    const x = w.ends[i];
    const y = w.starts[i + 1];
    if (y <= x || (best.length === k && y - x <= best[k - 1].y - best[k - 1].x)) continue;
    best.push({ x, y });
    best.sort((p, q) => q.y - q.x - (p.y - p.x));
    if (best.length > k) best.pop();
  }
  return best;
}

/** Pass 1 for one vCPU: the holes of the guest's event stream long enough to hold the host's gap. */
export class HoleCandidates {
  private prev = -Infinity;
  readonly spans: Span[] = [];
  /** Events that arrived earlier than the one before them (their holes are not trusted). */
  disorder = 0;

  constructor(private readonly gap: { x: number; y: number }, private readonly cap: number) {}

  /** Feeds one guest event (guest TSC relative to the guest base). */
  add(g: number): void {
    if (g < this.prev) {
      this.disorder++;
      return;
    }
    const { x, y } = this.gap;
    if (this.prev !== -Infinity && g - this.prev >= y - x && this.spans.length <= this.cap) this.spans.push([this.prev - x, g - y]);
    this.prev = g;
  }

  /** True when there were more qualifying holes than the cap (then refinement would be too slow). */
  get overflow(): boolean {
    return this.spans.length > this.cap;
  }
}

/** Pass 2 for one vCPU: intersects the candidate intervals with each event's allowed offsets. */
export class WindowRefiner {
  private spans: Span[];
  /** Guest events that constrained at least one candidate (inside the checkable span for it). */
  constraining = 0;

  constructor(
    private readonly w: ThreadWindows,
    /** First and last checkable host time (the host trace's first and last event). */
    private readonly first: number,
    private readonly last: number,
    candidates: Span[],
  ) {
    this.spans = normalize(candidates);
  }

  /** The surviving intervals (sorted, disjoint). */
  get result(): Span[] {
    return this.spans;
  }

  /** Feeds one guest event (guest TSC relative to the guest base). */
  add(g: number): void {
    const cur = this.spans;
    if (cur.length === 0) return;
    const first = this.first;
    const out: Span[] = [];
    let constrained = false;
    for (const [a, b] of cur) {
      // Offsets that put the event after the host's last event, or before its first: not checkable.
      if (a <= g - this.last - 1) out.push([a, Math.min(b, g - this.last - 1)]);
      const lo = Math.max(a, g - this.last);
      const hi = Math.min(b, g - first);
      if (lo <= hi) {
        constrained = true;
        // Host times g − hi … g − lo must be inside a window: o' ∈ [g − end, g − start] for each window met.
        const hl = g - hi;
        const hr = g - lo;
        const inside: Span[] = [];
        for (let i = firstEndingAtOrAfter(this.w, hl); i < this.w.starts.length && this.w.starts[i] <= hr; i++)
          inside.push([g - Math.min(this.w.ends[i], hr), g - Math.max(this.w.starts[i], hl)]);
        for (let k = inside.length - 1; k >= 0; k--) out.push(inside[k]);
      }
      if (g - first + 1 <= b) out.push([Math.max(a, g - first + 1), b]);
    }
    if (constrained) this.constraining++;
    this.spans = normalize(out);
  }
}

/** Sorts and merges touching or overlapping integer intervals. */
export function normalize(spans: Span[]): Span[] {
  const s = spans.filter(([a, b]) => a <= b).sort((p, q) => p[0] - q[0]);
  const out: Span[] = [];
  for (const [a, b] of s) {
    const l = out[out.length - 1];
    if (l && a <= l[1] + 1) l[1] = Math.max(l[1], b);
    else out.push([a, b]);
  }
  return out;
}
