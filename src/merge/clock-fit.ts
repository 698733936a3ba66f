/**
 * The fit behind a time-clock guest's map to its TSC (clock-sync.ts): per CPU, the line
 * tsc = f(stamp) between its kvmsync markers' brackets — below it (s + res, t1), above it
 * (s − res, t0 of the next point of the same run) — by the convex-hull method (line-fit.ts), in
 * pieces of constant rate where one line does not fit them all.
 */
import { lineAt, separate, strayAt, type Separation } from './line-fit.js';

/** Markers further apart than this (ns) belong to different bursts. */
const BURST_GAP_NS = 1_000_000n;

/** A kvmsync marker as a time-clock trace shows it; `next` is the t0 of the same run's next point on the CPU. */
export interface Marker {
  ns: bigint;
  cpu: number;
  pid: number;
  seq: number;
  t0: bigint;
  t1: bigint;
  next?: bigint;
}

/** One piece of constant rate: tsc = tscRef + k·x + central(x), x = ns − nsRef. */
interface Segment {
  startNs: bigint;
  endNs: bigint;
  nsRef: bigint;
  tscRef: bigint;
  k: number;
  fit: Separation;
}

/** Events of a CPU outside its markers' span: how many, the farthest distance, and the uncertainty there. */
export interface Extrapolated {
  events: number;
  farthestNs: number;
  uncertaintyCycles: number;
}

/** How one guest CPU's clock maps to its TSC (the report's figures). Cycles are guest TSC cycles. */
export interface CpuClockFit {
  cpu: number;
  /** True when the CPU has no fit of its own and uses the fit of all CPUs' markers. */
  shared: boolean;
  /** Markers the fit rests on, those with an upper bound (a next point on the CPU), bursts and pieces. */
  markers: number;
  bounded: number;
  bursts: number;
  segments: number;
  /** The rate of the first piece (TSC cycles per ms). */
  tscKhz: number;
  /** Uncertainty of a mapped event between the first and the last marker: the fit's plus the print resolution's. */
  uncertaintyCycles: number;
  /** Of which the print resolution (tracefs rounds time clocks to the µs). */
  resolutionCycles: number;
  /** Delay from a marker's t1 to its stamp, by the fitted line: the least (the constant floor) and the median. */
  delayMinCycles: number;
  delayMedianCycles: number;
  /** The markers' span, absolute ns. */
  firstNs: bigint;
  lastNs: bigint;
  before: Extrapolated;
  after: Extrapolated;
}

/** The fitted pieces of one CPU (or of all CPUs together). */
export class CpuMap {
  private k = 0;
  constructor(
    readonly segments: Segment[],
    readonly markers: Marker[],
    readonly bursts: number,
    private readonly resolutionNs: number,
  ) {}

  /** The piece in force at ns (the last that starts at or before it; the first before all). */
  private segment(ns: bigint): Segment {
    const s = this.segments;
    let k = this.k;
    while (k > 0 && ns < s[k].startNs) k--;
    while (k + 1 < s.length && ns >= s[k + 1].startNs) k++;
    this.k = k;
    return s[k];
  }

  /** The guest TSC at clock time ns (absolute), by the central line of the piece in force. */
  toTsc(ns: bigint): bigint {
    const g = this.segment(ns);
    const x = Number(ns - g.nsRef);
    return g.tscRef + BigInt(Math.round(g.k * x + lineAt(g.fit.central, x)));
  }

  /** The fit's uncertainty at ns (cycles), without the print resolution. */
  strayAt(ns: bigint): number {
    const g = this.segment(ns);
    return strayAt(g.fit, Number(ns - g.nsRef));
  }

  /** The print resolution (± ns the stamps were rounded by) in cycles. */
  resolutionCycles(): number {
    return Math.ceil(this.resolutionNs * this.segments[0].k);
  }

  /** The report's figures for a CPU mapped by this fit, given its events before the first and after the last marker. */
  summary(cpu: number, shared: boolean, span: { before: number; firstEv?: bigint; after: number; lastEv?: bigint }): CpuClockFit {
    const first = this.segments[0].startNs;
    const last = this.segments[this.segments.length - 1].endNs;
    let within = 0;
    for (const g of this.segments) within = Math.max(within, strayAt(g.fit, Number(g.startNs - g.nsRef)), strayAt(g.fit, Number(g.endNs - g.nsRef)));
    const res = this.resolutionCycles();
    const delays = this.markers.map((m) => Number(this.toTsc(m.ns) - m.t1)).sort((a, b) => a - b);
    const out = (n: number, at: bigint | undefined, edge: bigint): Extrapolated => {
      if (n === 0 || at === undefined) return { events: 0, farthestNs: 0, uncertaintyCycles: 0 };
      const d = at < edge ? edge - at : at - edge;
      return { events: n, farthestNs: Number(d), uncertaintyCycles: Math.ceil(this.strayAt(at)) + res };
    };
    const g0 = this.segments[0];
    return {
      cpu,
      shared,
      markers: this.markers.length,
      bounded: this.markers.filter((m) => m.next !== undefined).length,
      bursts: this.bursts,
      segments: this.segments.length,
      tscKhz: Math.round((g0.k + g0.fit.central.s) * 1e6),
      uncertaintyCycles: Math.ceil(within) + res,
      resolutionCycles: res,
      delayMinCycles: delays[0],
      delayMedianCycles: delays[delays.length >> 1],
      firstNs: first,
      lastNs: last,
      before: out(span.before, span.firstEv, first),
      after: out(span.after, span.lastEv, last),
    };
  }
}

/** Splits markers (sorted by time) into bursts at gaps longer than BURST_GAP_NS. */
function bursts(ms: Marker[]): Marker[][] {
  const out: Marker[][] = [];
  for (const m of ms) {
    const b = out[out.length - 1];
    if (b && m.ns - b[b.length - 1].ns <= BURST_GAP_NS) b.push(m);
    else out.push([m]);
  }
  return out;
}

/**
 * Fits one CPU's markers: one line while one fits every bracket; where none does, a new piece
 * starts at the last burst that fitted (pieces share that burst). Undefined when no piece fits.
 */
export function fitCpu(ms: Marker[], resolutionNs: number): CpuMap | undefined {
  const bs = bursts(ms);
  const segs: Segment[] = [];
  let cur: Marker[][] = [];
  let curFit: Segment | undefined;
  for (const b of bs) {
    const tried = fitSegment([...cur, b].flat(), resolutionNs);
    if (tried || cur.length === 0) {
      cur.push(b);
      curFit = tried;
      continue;
    }
    if (curFit) segs.push(curFit);
    // Restart from the last burst that fitted; alone if even the two do not fit together.
    const again = fitSegment([cur[cur.length - 1], b].flat(), resolutionNs);
    cur = again ? [cur[cur.length - 1], b] : [b];
    curFit = again ?? fitSegment(b, resolutionNs);
  }
  if (curFit) segs.push(curFit);
  return segs.length ? new CpuMap(segs, ms, bs.length, resolutionNs) : undefined;
}

/**
 * The line through one piece's markers: below it the points (s + res, t1) (the stamp came after
 * t1), above it (s − res, t0 of the next point) (the write had returned). Coordinates are relative
 * to the first marker, and the rough rate k is taken out so that the hull works on small numbers.
 */
function fitSegment(ms: Marker[], resolutionNs: number): Segment | undefined {
  if (ms.length < 2) return undefined;
  const a = ms[0];
  const z = ms[ms.length - 1];
  if (z.ns === a.ns) return undefined;
  const k = Number(z.t1 - a.t1) / Number(z.ns - a.ns);
  const below = ms.map((m) => {
    const x = Number(m.ns - a.ns) + resolutionNs - (resolutionNs ? 1 : 0);
    return { x, y: Number(m.t1 - a.t1) - k * x };
  });
  const above = ms.flatMap((m) => {
    if (m.next === undefined) return [];
    const x = Number(m.ns - a.ns) - resolutionNs;
    return [{ x, y: Number(m.next - a.t1) - k * x }];
  });
  const fit = separate(below, above);
  return fit ? { startNs: a.ns, endNs: z.ns, nsRef: a.ns, tscRef: a.t1, k, fit } : undefined;
}
