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
import { guestTsc, type GuestTsc } from '../model/units.js';
import { fieldsOfEvent } from '../parsers/event-fields.js';
import { CpuMap, fitCpu, type CpuClockFit, type Marker } from './clock-fit.js';
import { openSource, type SourceSpec } from './source.js';

export type { CpuClockFit, Extrapolated } from './clock-fit.js';

/** A CPU's events before and after a span of markers, and its first and last event (absolute ns). */
interface Counts {
  before: number;
  after: number;
  firstEv?: bigint;
  lastEv?: bigint;
}

/** Per CPU, while reading: counts against its own markers and against any CPU's, and whether it has a marker yet. */
interface Span {
  own: Counts;
  any: Counts;
  marked: boolean;
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
    // Per CPU: its events before its own first marker and since its latest (`own`), the same for
    // any CPU's markers (`any`: the span of the fit of all CPUs), and its first and last event.
    // The stream is in time order, as tracefs and trace-cmd print it.
    const span = new Map<number, Span>();
    let all = 0;
    let whole = true;
    for await (const batch of src.batches)
      for (const ev of batch) {
        const ns = src.header.base!.abs(ev.ts);
        const sp = span.get(ev.cpu) ?? span.set(ev.cpu, { own: { before: 0, after: 0 }, any: { before: 0, after: 0 }, marked: false }).get(ev.cpu)!;
        if (sp.own.firstEv === undefined || ns < sp.own.firstEv) sp.own.firstEv = sp.any.firstEv = ns;
        if (sp.own.lastEv === undefined || ns > sp.own.lastEv) sp.own.lastEv = sp.any.lastEv = ns;
        const f = fieldsOfEvent(ev);
        const m = f?.kind === 'marker' ? f.sync : undefined;
        if (!m) {
          sp.own[sp.marked ? 'after' : 'before']++;
          sp.any[all > 0 ? 'after' : 'before']++;
          continue;
        }
        all++;
        sp.marked = true;
        sp.own.after = 0;
        for (const x of span.values()) x.any.after = 0;
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
    // The fit of all CPUs' markers, for CPUs without a fit of their own (with one CPU marked, that CPU's).
    const shared = byCpu.size === 1 && perCpu.size === 1 ? [...perCpu.values()][0] : fitCpu(every, resolutionNs);
    if (perCpu.size === 0 && !shared) return undefined;
    const fits = new Map<number, CpuClockFit>();
    for (const cpu of [...new Set([...span.keys(), ...byCpu.keys()])].sort((a, b) => a - b)) {
      const own = perCpu.get(cpu);
      const m = own ?? shared;
      const sp = span.get(cpu) ?? { own: { before: 0, after: 0 }, any: { before: 0, after: 0 }, marked: false };
      if (m) fits.set(cpu, m.summary(cpu, !own, own ? sp.own : sp.any));
    }
    return new ClockToTsc(perCpu, shared, fits, all);
  }

  /** The guest TSC of guest CPU `cpu` at clock time `ns` (absolute). */
  toTsc(ns: bigint, cpu: number): GuestTsc {
    const m = this.perCpu.get(cpu) ?? this.shared;
    if (!m) throw new UserError(`guest CPU ${cpu} has no kvmsync markers, and the other CPUs' markers give no common fit`);
    return guestTsc(m.toTsc(ns));
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
