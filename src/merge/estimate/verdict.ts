/**
 * The clock check of a merge: per guest and vCPU, where the mapping came from, its offset(s) and
 * scaling, its error bound, what the evidence says (sync points, events inside guest-mode
 * windows), and a verdict:
 *  - EXACT: the mapping is stated (debugfs, kvm_write_tsc_offset, TIME_SHIFT, --tsc-offset) and
 *    every check passed — stated, then checked; a stated offset wrong by less than the slack of
 *    the windows would still pass, which is why the evidence counts are printed next to it;
 *  - BOUNDED (± N ns): the offset was estimated, every offset in [low, high] fitting the evidence;
 *    or the guest was traced with a time clock, mapped to its TSC through its markers with that
 *    uncertainty (clock-sync.ts);
 *  - FAILED: some guest event lies outside its vCPU's guest-mode windows, or a sync point has no
 *    host event inside its bracket.
 */
import type { PreparedMerge } from '../session.js';
import type { GuestPlan, VcpuPlan } from '../plan.js';
import { offsetsText } from '../plan-sources.js';
import type { EventList, Residuals, SkewFigures, ValidationResult } from '../validate.js';

/** A verdict. */
export type Verdict = 'EXACT' | 'BOUNDED' | 'FAILED';

/** The check of one vCPU. Offsets (guest − host TSC, cycles) are decimal strings: they exceed 2^53. */
export interface VcpuCheck {
  vcpu: number;
  hostTid: number | null;
  /** Where the mapping came from. */
  source: string;
  /** The offset (the first piece's when it changes over time). */
  offset: string;
  /** Every piece: from host TSC (-1: since before the trace), offset, scaling. */
  pieces: { fromHostTsc: string; offset: string; ratio: string | null; fracBits: number | null }[];
  /** Lowest and highest offset the evidence allows (equal to `offset` for a stated constant offset). */
  offsetLow: string;
  offsetHigh: string;
  /** The error bound: the farthest allowed offset from `offset`, in cycles and (when the TSC frequency is known) ns. */
  boundCycles: string;
  boundNs: number | null;
  syncPoints: number;
  syncChecked: number;
  syncSatisfied: number;
  checked: number;
  inside: number;
  notCheckable: number;
  worstViolationCycles: number;
  worstViolationNs: number | null;
  verdict: Verdict;
  /** `check` only: what the traces alone allow (sync points, windows), and whether the stated offset is in it. */
  evidence?: { offsetLow: string; offsetHigh: string; method: string; agrees: boolean };
  /** When the sources differ: each one's offsets and how it fares against the evidence; `followed` marks the mapping used. */
  sources?: { source: string; offsets: string; followed: boolean; syncChecked: number; syncSatisfied: number; checked: number; inside: number }[];
  /** A time-clock guest: the clock → TSC fit's uncertainty (cycles) between the markers (included in the bound) and where extrapolated. */
  clockFit?: { clock: string; uncertaintyCycles: number; extrapolatedCycles: number };
  /** How close the mapping came to failing: the tightest window and sync point (validate-detail.ts). */
  residual: Residuals;
  /** The host's cross-CPU TSC skew bound over the CPUs the vCPU thread ran on. */
  hostSkew: SkewFigures | null;
  /** The guest events outside their windows, and those not checkable: the first ones, and how many more. */
  violations: EventList;
  notCheckableEvents: EventList;
}

/** Which vCPU runs each guest CPU (cpu-pairing.ts), as the check reports it. */
export interface PairingCheck {
  /** guest CPU → vCPU for the CPUs a fact pairs (decimal-string keys). */
  map: Record<string, number>;
  from: string;
  /** True when CPU n = vCPU n is an assumption for some CPU. */
  assumed: boolean;
}

/** The check of one guest. */
export interface GuestCheck {
  name: string;
  file: string;
  verdict: Verdict;
  /** The largest error bound of its vCPUs, in ns (BOUNDED), when the TSC frequency is known. */
  boundNs: number | null;
  cpuPairing: PairingCheck;
  vcpus: VcpuCheck[];
  notes: string[];
  /** Warnings (a stated mapping the files contradict, a choice between sources, extrapolation). */
  warnings: string[];
}

/** The check of a whole merge. */
export interface ClockCheck {
  verdict: Verdict;
  guests: GuestCheck[];
  failures: string[];
}

const rank: Record<Verdict, number> = { EXACT: 0, BOUNDED: 1, FAILED: 2 };
const worse = (a: Verdict, b: Verdict): Verdict => (rank[a] >= rank[b] ? a : b);

/** Builds the check from a prepared merge and its validation. */
export function clockCheck(p: PreparedMerge, r: ValidationResult): ClockCheck {
  const ns = (cycles: bigint): number | null => (p.tscKhz ? Number((cycles * 1_000_000n + BigInt(p.tscKhz) - 1n) / BigInt(p.tscKhz)) : null);
  const guests: GuestCheck[] = [];
  for (const gv of r.guests) {
    const plan = p.guests.find((g) => g.plan?.spec.file === gv.file)?.plan;
    if (!plan) continue;
    const vcpus: VcpuCheck[] = [];
    for (const v of gv.vcpus) {
      const vp = plan.vcpus.get(v.vcpu) ?? plan.vcpu(v.vcpu);
      const pieces = vp.mapping.pieces;
      const offset = pieces[0].offset;
      let low = vp.bound?.low ?? offset;
      let high = vp.bound?.high ?? offset;
      if (!vp.bound)
        for (const x of pieces) {
          if (x.offset < low) low = x.offset;
          if (x.offset > high) high = x.offset;
        }
      // Every allowed offset is within this of the one used (half the width, rounded up, when it is the middle).
      const offBound = vp.bound ? (high - offset > offset - low ? high - offset : offset - low) : 0n;
      // A time-clock guest's events also carry the uncertainty of its clock → TSC fit.
      const fit = clockFitOf(plan, v.vcpu);
      const bound = offBound + BigInt(fit?.uncertaintyCycles ?? 0);
      const checkable = v.sync.points - v.sync.noHostEvidence;
      // An estimate the evidence pins to one cycle (or a zeroed offset) is exact.
      let verdict: Verdict = (vp.bound && vp.bound.high > vp.bound.low) || bound > 0n ? 'BOUNDED' : 'EXACT';
      if (v.inside < v.checked || v.sync.matched < checkable) verdict = 'FAILED';
      vcpus.push({
        vcpu: v.vcpu,
        hostTid: v.hostTid,
        source: vp.mappingFrom,
        offset: offset.toString(),
        pieces: pieces.map((x) => ({
          fromHostTsc: x.fromHostTsc.toString(),
          offset: x.offset.toString(),
          ratio: x.ratio?.toString() ?? null,
          fracBits: x.ratio === undefined ? null : (x.fracBits ?? null),
        })),
        offsetLow: low.toString(),
        offsetHigh: high.toString(),
        boundCycles: bound.toString(),
        boundNs: ns(bound),
        syncPoints: v.sync.points,
        syncChecked: checkable,
        syncSatisfied: v.sync.matched,
        checked: v.checked,
        inside: v.inside,
        notCheckable: v.notCheckable,
        worstViolationCycles: v.worstViolationCycles,
        worstViolationNs: v.worstViolationNs,
        verdict,
        ...(vp.offers.length ? { sources: sourcesOf(vp) } : {}),
        ...(fit ? { clockFit: fit } : {}),
        residual: v.residual,
        hostSkew: v.hostSkew,
        violations: v.violations,
        notCheckableEvents: v.notCheckableEvents,
      });
    }
    const verdict = vcpus.reduce<Verdict>((a, v) => worse(a, v.verdict), 'EXACT');
    const bounds = vcpus.filter((v) => v.verdict === 'BOUNDED' && v.boundNs !== null).map((v) => v.boundNs!);
    const pairing = { map: Object.fromEntries([...plan.pairing.map].map(([c, v]) => [String(c), v])), from: plan.pairing.from, assumed: plan.pairing.assumed };
    guests.push({ name: gv.name, file: gv.file, verdict, boundNs: bounds.length ? Math.max(...bounds) : null, cpuPairing: pairing, vcpus, notes: gv.notes, warnings: plan.warnings });
  }
  const verdict = guests.reduce<Verdict>((a, g) => worse(a, g.verdict), 'EXACT');
  return { verdict: r.ok ? verdict : 'FAILED', guests, failures: r.failures };
}

/** The sources of a vCPU whose sources differ, with their scores (when weighed) and which is followed. */
function sourcesOf(vp: VcpuPlan): NonNullable<VcpuCheck['sources']> {
  return vp.offers.map((o, i) => {
    const s = vp.scores?.[i];
    return {
      source: o.from,
      offsets: offsetsText(o),
      followed: o.kind === vp.followed,
      syncChecked: s?.syncChecked ?? 0,
      syncSatisfied: s?.syncSatisfied ?? 0,
      checked: s?.checked ?? 0,
      inside: s?.inside ?? 0,
    };
  });
}

/** The clock → TSC fit of a time-clock guest for one vCPU: the largest uncertainty of the CPUs it runs. */
function clockFitOf(plan: GuestPlan, vcpu: number): VcpuCheck['clockFit'] {
  if (!plan.clockSync) return undefined;
  let u: { within: number; extrapolated: number } | undefined;
  for (const cs of plan.clockSync.values()) {
    const x = cs.uncertainty((cpu) => plan.cpuToVcpu(cpu) === vcpu);
    if (x) u = { within: Math.max(u?.within ?? 0, x.within), extrapolated: Math.max(u?.extrapolated ?? 0, x.extrapolated) };
  }
  return u ? { clock: plan.spec.clock ?? 'unknown', uncertaintyCycles: u.within, extrapolatedCycles: u.extrapolated } : undefined;
}

/** A verdict as printed: `EXACT`, `BOUNDED (± 287 ns)`, `FAILED`. */
export function verdictText(v: Verdict, boundNs: number | null, boundCycles?: string): string {
  if (v !== 'BOUNDED') return v;
  return boundNs !== null ? `BOUNDED (± ${boundNs} ns)` : `BOUNDED (± ${boundCycles ?? '?'} cycles)`;
}
