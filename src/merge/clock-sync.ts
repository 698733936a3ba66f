/**
 * Guests traced with a time clock (`mono`, `global`, `local`, `boot`: ns) are put on their TSC
 * through their own `kvmsync` markers; the guest TSC then goes to the host as for any guest.
 *
 * What a marker proves: syncpt reads t1 (rdtsc), then writes the marker, which the kernel stamps
 * with the trace clock at s inside that write; its next point on the same CPU reads t0' only after
 * the write returned. So the guest TSC at the stamp lies in [t1, t0'] — a bracket, not a point.
 * The delay from t1 to the stamp is noise with a floor (1.3 M cycles and more under an emulated
 * guest, a few µs in a nested one): interpolating through (s, t1) pairs puts events early by it.
 * Instead, the line tsc = f(s) is fitted between the brackets by the convex-hull method
 * (line-fit.ts, as Trace Compass does; NTP's minimum-delay filter in spirit): only the
 * least-delayed markers touch the hulls, the central line is the estimate, and the spread of the
 * feasible lines is its uncertainty, exact at every s. tracefs prints time clocks rounded to the
 * µs, so s stands for [s − 500, s + 499] ns and the brackets are widened by that.
 *
 * Per guest CPU (its markers are stamped by its own clock and carry its own TSC): one line while a
 * line fits every bracket; where none does (the clock was slewed), a new piece starts at the last
 * burst of markers that fitted. A CPU without markers uses the fit of all CPUs' markers, and the
 * report says so. Past the first and the last marker the line is extrapolated; its uncertainty
 * grows with the distance, and the report warns with the figures.
 */
import type { Diagnostics } from '../model/diagnostics.js';
import { UserError } from '../model/errors.js';
import { isMarkerEvent, syncMarker } from '../parsers/event-fields.js';
import { lineAt, separate, strayAt, type Separation } from './line-fit.js';
import { openSource, type SourceSpec } from './source.js';

/** Markers further apart than this (ns) belong to different bursts. */
const BURST_GAP_NS = 1_000_000n;

/** A kvmsync marker as a time-clock trace shows it; `next` is the t0 of the same run's next point on the CPU. */
interface Marker {
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
class CpuMap {
  private k = 0;
  constructor(
    readonly segments: Segment[],
    readonly markers: Marker[],
    readonly bursts: number,
    private readonly resolutionNs: number,
  ) {}

  /** The piece in force at ns (the last that starts at or before it; the first before all). */
  segment(ns: bigint): Segment {
    const s = this.segments;
    let k = this.k;
    while (k > 0 && ns < s[k].startNs) k--;
    while (k + 1 < s.length && ns >= s[k + 1].startNs) k++;
    this.k = k;
    return s[k];
  }

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

  resolutionCycles(): number {
    return Math.ceil(this.resolutionNs * this.segments[0].k);
  }

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

/** A guest's time clock → its TSC, per CPU, fitted through its kvmsync markers. */
export class ClockToTsc {
  private constructor(
    private readonly perCpu: Map<number, CpuMap>,
    private readonly shared: CpuMap | undefined,
    /** Per CPU, what the report says (CPUs with events or markers). */
    readonly fits: Map<number, CpuClockFit>,
    /** All kvmsync markers read. */
    readonly markers: number,
  ) {}

  /** Reads a guest source for its kvmsync markers; undefined when no fit is possible (see clockSyncFor). */
  static async fromSource(spec: SourceSpec, diags: Diagnostics): Promise<ClockToTsc | undefined> {
    const src = await openSource(spec, diags);
    const byCpu = new Map<number, Marker[]>();
    // Per CPU: events before its first marker, since its latest marker, and the first and last event.
    const span = new Map<number, { before: number; after: number; firstEv?: bigint; lastEv?: bigint; marked: boolean }>();
    let all = 0;
    let whole = true;
    for await (const batch of src.batches)
      for (const ev of batch) {
        const ns = src.header.base!.abs(ev.ts);
        const sp = span.get(ev.cpu) ?? span.set(ev.cpu, { before: 0, after: 0, marked: false }).get(ev.cpu)!;
        if (sp.firstEv === undefined || ns < sp.firstEv) sp.firstEv = ns;
        if (sp.lastEv === undefined || ns > sp.lastEv) sp.lastEv = ns;
        const m = isMarkerEvent(ev.name) ? syncMarker(ev.body) : undefined;
        if (!m) {
          if (sp.marked) sp.after++;
          else sp.before++;
          continue;
        }
        all++;
        sp.marked = true;
        sp.after = 0;
        if (ns % 1000n !== 0n) whole = false;
        const seq = Number(/seq=(\d+)/.exec(ev.body)?.[1] ?? -1);
        (byCpu.get(ev.cpu) ?? byCpu.set(ev.cpu, []).get(ev.cpu)!).push({ ns, cpu: ev.cpu, pid: ev.pid, seq, t0: m.t0, t1: m.t1 });
      }
    // Stamps all on whole µs: tracefs printed them rounded to the µs (kernel ns2usecs: +500, /1000).
    const resolutionNs = whole && all > 1 ? 500 : 0;
    const perCpu = new Map<number, CpuMap>();
    const every: Marker[] = [];
    for (const [cpu, ms] of byCpu) {
      ms.sort((a, b) => (a.ns < b.ns ? -1 : a.ns > b.ns ? 1 : a.seq - b.seq));
      for (let i = 0; i + 1 < ms.length; i++) {
        const [a, b] = [ms[i], ms[i + 1]];
        if (b.pid === a.pid && b.seq === a.seq + 1 && b.t0 > a.t1) a.next = b.t0;
      }
      every.push(...ms);
      const m = fitCpu(ms, resolutionNs);
      if (m) perCpu.set(cpu, m);
    }
    every.sort((a, b) => (a.ns < b.ns ? -1 : a.ns > b.ns ? 1 : 0));
    const shared = byCpu.size > 1 || perCpu.size === 0 ? fitCpu(every, resolutionNs) : undefined;
    if (perCpu.size === 0 && !shared) return undefined;
    const fits = new Map<number, CpuClockFit>();
    for (const cpu of [...new Set([...span.keys(), ...byCpu.keys()])].sort((a, b) => a - b)) {
      const own = perCpu.get(cpu);
      const m = own ?? shared;
      const sp = span.get(cpu) ?? { before: 0, after: 0, marked: false };
      // A CPU without markers of its own: its events lie before or after the shared span by their times.
      if (m) fits.set(cpu, m.summary(cpu, !own, own ? sp : sharedSpan(sp, m)));
    }
    return new ClockToTsc(perCpu, shared, fits, all);
  }

  /** The guest TSC of guest CPU `cpu` at clock time `ns` (absolute). */
  toTsc(ns: bigint, cpu: number): bigint {
    const m = this.perCpu.get(cpu) ?? this.shared;
    if (!m) throw new UserError(`guest CPU ${cpu} has no kvmsync markers, and the other CPUs' markers give no common fit`);
    return m.toTsc(ns);
  }

  /** The largest uncertainty (cycles) of the CPUs that `pick` selects, between their markers and where extrapolated. */
  uncertainty(pick: (cpu: number) => boolean): { within: number; extrapolated: number } | undefined {
    let within = -1;
    let extrapolated = 0;
    for (const f of this.fits.values()) {
      if (!pick(f.cpu)) continue;
      within = Math.max(within, f.uncertaintyCycles);
      extrapolated = Math.max(extrapolated, f.before.uncertaintyCycles, f.after.uncertaintyCycles);
    }
    return within < 0 ? undefined : { within, extrapolated };
  }
}

/** For a CPU mapped by the shared fit: its events counted before/after that fit's span only roughly (its own stream order). */
function sharedSpan(sp: { before: number; after: number; firstEv?: bigint; lastEv?: bigint }, m: CpuMap): { before: number; firstEv?: bigint; after: number; lastEv?: bigint } {
  const first = m.segments[0].startNs;
  const last = m.segments[m.segments.length - 1].endNs;
  const n = sp.before + sp.after;
  return {
    before: sp.firstEv !== undefined && sp.firstEv < first ? n : 0,
    firstEv: sp.firstEv,
    after: sp.lastEv !== undefined && sp.lastEv > last ? n : 0,
    lastEv: sp.lastEv,
  };
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
function fitCpu(ms: Marker[], resolutionNs: number): CpuMap | undefined {
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

/** Builds the clock map of a guest whose trace clock is a time clock, or says what to record. */
export async function clockSyncFor(spec: SourceSpec, diags: Diagnostics): Promise<ClockToTsc> {
  const m = await ClockToTsc.fromSource(spec, diags);
  if (!m)
    throw new UserError(
      `${spec.file}: the guest was traced with the ${spec.clock} clock, and its kvmsync markers do not tie it to its TSC (it needs consecutive points of one syncpt run — each bounds the next marker's stamp — at two moments or more) — record the guest with trace_clock x86-tsc, or run syncpt (-n 2 or more) at the start and the end of the capture`,
    );
  return m;
}

/** A duration in ns as the report prints it (ns, µs or ms, 3 significant digits or more). */
function dur(ns: number): string {
  if (ns < 1000) return `${Math.round(ns)} ns`;
  if (ns < 1e6) return `${(ns / 1000).toFixed(1)} µs`;
  return `${(ns / 1e6).toFixed(1)} ms`;
}

/**
 * The report's lines about a time-clock guest's fit: a note per CPU (markers, rate, delay after t1,
 * uncertainty), and warnings — printed even when quiet — for CPUs mapped without markers of their
 * own and for events past the first or last marker, where the line is extrapolated.
 */
export function describeClockSync(spec: SourceSpec, cs: ClockToTsc, cpuToVcpu: (cpu: number) => number): { notes: string[]; warnings: string[] } {
  const notes = [
    `${spec.file}: the ${spec.clock} clock is mapped to the guest TSC through ${cs.markers} kvmsync markers: per CPU, the line between their brackets [t1, next t0] (convex-hull fit, docs/clock-sync.md)`,
  ];
  const warnings: string[] = [];
  for (const f of cs.fits.values()) {
    const ns = (cycles: number): string => dur((cycles * 1e6) / f.tscKhz);
    const who = `CPU ${f.cpu} (vCPU ${cpuToVcpu(f.cpu)})`;
    if (f.shared)
      warnings.push(
        `${spec.file}: ${who} has no kvmsync markers of its own: it is mapped with the fit of all CPUs' markers` +
          (spec.clock === 'local' ? ", but the local clock is per CPU: its events may be off by the difference between the CPUs' clocks" : ''),
      );
    notes.push(
      `${who}: ${f.shared ? 'all CPUs\' ' : ''}${f.markers} markers (${f.bounded} bounded by a next point) in ${f.bursts} burst(s), ${f.segments} piece(s) of constant rate, ${f.tscKhz} kHz; ` +
        `t1 → stamp delay ≥ ${f.delayMinCycles} cycles, median ${f.delayMedianCycles}; uncertainty ± ${f.uncertaintyCycles} cycles (± ${ns(f.uncertaintyCycles)}` +
        `${f.resolutionCycles ? `, of which ± ${f.resolutionCycles} from the µs the trace prints` : ''})`,
    );
    const past: string[] = [];
    if (f.before.events) past.push(`${f.before.events} event(s) before the first marker (up to ${dur(f.before.farthestNs)} before it)`);
    if (f.after.events) past.push(`${f.after.events} after the last (up to ${dur(f.after.farthestNs)} after it)`);
    if (past.length) {
      const u = Math.max(f.before.uncertaintyCycles, f.after.uncertaintyCycles);
      warnings.push(`${spec.file}: ${who}: ${past.join(' and ')} are mapped by extrapolating the fit: uncertainty up to ± ${u} cycles (± ${ns(u)}) there`);
    }
  }
  return { notes, warnings };
}
