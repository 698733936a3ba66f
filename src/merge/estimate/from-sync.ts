/**
 * Offset estimation from sync points. A guest `kvmsync` marker brackets a VM exit it caused
 * (t0 < exit < t1, guest TSC read just before and after); the host traced the exit at host TSC h.
 * With guest = host + offset: t0 − h ≤ offset ≤ t1 − h.
 *
 * Which host event belongs to which marker is not known before the offset is (firmware may write
 * to the same port; the host trace may start late), so each marker allows the union over the host
 * events of its kind of [t0 − h, t1 − h] — or anything that puts its bracket outside the host
 * trace. The offsets that satisfy every marker are intersected like the window constraints, with a
 * count of markers matched per piece; the pieces that match the most markers win.
 *
 * With drift (a scaled guest TSC), offsets are no longer constant: `fitDrift` finds every line
 * guest = slope·host + intercept that passes between the brackets (the convex-hull method of
 * Duda et al., as Trace Compass uses it) and returns the extreme slopes and the central line.
 */
import { separate, strayAt } from '../line-fit.js';

/** An inclusive interval of relative offsets with the number of markers it matched. */
export type CountedSpan = [lo: number, hi: number, matched: number];

/** Intersects candidate offsets with each marker's allowed set; host event times sorted, relative to the host base. */
export class SyncRefiner {
  private spans: CountedSpan[] = [[-Infinity, Infinity, 0]];
  markers = 0;

  constructor(
    private readonly host: Float64Array,
    private readonly first: number,
    private readonly last: number,
  ) {}

  /** Feeds one marker: its bracket [t0, t1] in guest TSC relative to the guest base. */
  add(t0: number, t1: number): void {
    this.markers++;
    const out: CountedSpan[] = [];
    for (const [a, b, n] of this.spans) {
      // Bracket after the host's last event (o < t0 − last) or before its first (o > t1 − first): no evidence either way.
      if (a <= t0 - this.last - 1) out.push([a, Math.min(b, t0 - this.last - 1), n]);
      if (t1 - this.first + 1 <= b) out.push([Math.max(a, t1 - this.first + 1), b, n]);
      // Host events h with [t0 − h, t1 − h] meeting [a, b]: h ∈ [t0 − b, t1 − a].
      const hl = t0 - b;
      const hr = t1 - a;
      for (let i = lowerBound(this.host, hl); i < this.host.length && this.host[i] <= hr; i++) {
        const h = this.host[i];
        out.push([Math.max(a, t0 - h), Math.min(b, t1 - h), n + 1]);
      }
    }
    this.spans = merge(out);
  }

  /** The pieces that matched the most markers (at least one), sorted; empty when none matched any. */
  get best(): { spans: [number, number][]; matched: number } {
    let m = 0;
    for (const s of this.spans) if (s[2] > m) m = s[2];
    if (m === 0) return { spans: [], matched: 0 };
    return { spans: this.spans.filter((s) => s[2] === m).map(([a, b]) => [a, b] as [number, number]), matched: m };
  }
}

/** The first index of a sorted array whose value is ≥ x (a.length when none). */
export function lowerBound(a: Float64Array, x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Sorts pieces and merges overlapping ones; where pieces overlap, the larger count wins that part. */
function merge(spans: CountedSpan[]): CountedSpan[] {
  const s = spans.filter(([a, b]) => a <= b).sort((p, q) => p[0] - q[0] || q[2] - p[2]);
  const out: CountedSpan[] = [];
  for (const cur of s) {
    const l = out[out.length - 1];
    if (!l || cur[0] > l[1]) {
      if (l && cur[0] === l[1] + 1 && cur[2] === l[2]) l[1] = cur[1];
      else out.push([...cur]);
      continue;
    }
    // Overlap (pieces from one parent with the same count, or host events closer than a bracket).
    if (cur[2] === l[2]) l[1] = Math.max(l[1], cur[1]);
    else if (cur[2] > l[2]) {
      const tail: CountedSpan | undefined = l[1] > cur[1] ? [cur[1] + 1, l[1], l[2]] : undefined;
      l[1] = cur[0] - 1;
      if (l[1] < l[0]) out.pop();
      out.push([...cur]);
      if (tail) out.push(tail);
    } else if (cur[1] > l[1]) out.push([l[1] + 1, cur[1], cur[2]]);
  }
  return out;
}

/** One matched sync point: the bracket in guest TSC and the host TSC of the exit (relative values, as numbers). */
export interface SyncPair {
  t0: number;
  t1: number;
  h: number;
}

/**
 * The lines that pass between every bracket, written as offset(h) = offsetAtRef + drift·(h − hostRef):
 * the offset guest − host changing by `drift` cycles per host cycle (drift = ratio/2^frac − 1 for a
 * scaled TSC). Fitting the offset rather than the guest TSC keeps the numbers small and exact enough.
 */
export interface DriftFit {
  hostRef: number;
  /** Smallest and largest feasible drift. */
  driftMin: number;
  driftMax: number;
  /** The central line: the bisector of the two extreme lines. */
  drift: number;
  offsetAtRef: number;
  /** Over the pairs' host span, how far the feasible lines stray from the central one (cycles). */
  bound: number;
}

/**
 * Convex-hull fit (line-fit.ts): lower points (h, t0 − h) must lie on or below the line, upper
 * points (h, t1 − h) on or above it. Returns undefined with fewer than two pairs at distinct host
 * times, or when no line fits (the brackets are inconsistent).
 */
export function fitDrift(pairs: SyncPair[]): DriftFit | undefined {
  if (pairs.length < 2) return undefined;
  const ps = [...pairs].sort((a, b) => a.h - b.h);
  const hostRef = ps[0].h;
  const oRef = ps[0].t0 - ps[0].h;
  const f = separate(
    ps.map((p) => ({ x: p.h - hostRef, y: p.t0 - p.h - oRef })),
    ps.map((p) => ({ x: p.h - hostRef, y: p.t1 - p.h - oRef })),
  );
  if (!f) return undefined;
  const x1 = ps[ps.length - 1].h - hostRef;
  // The stray is largest at an end of the span (it is convex in x).
  const bound = Math.max(strayAt(f, 0), strayAt(f, x1));
  return { hostRef, driftMin: f.min.s, driftMax: f.max.s, drift: f.central.s, offsetAtRef: oRef + f.central.c, bound };
}
