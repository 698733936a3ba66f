/**
 * Validation of a merged timeline, always on: every mapped guest event must fall inside a moment
 * its vCPU's host thread was running guest code. Those moments are the KVM-run tracker's GUEST
 * segments in the host index (kvm/tracker.ts has the rules: kvm_entry → kvm_exit on VMX/SVM hosts,
 * KVM_RUN on a CPU on kvm-pvm); validation is a lookup of each guest event in them (kvm/cursor.ts),
 * so it needs no host event of its own — `check` runs it without reading the host again.
 * Guest events outside the host trace's span, or where the tracker cannot tell, are not checkable
 * and counted apart.
 *
 * Sync points (`kvmsync … kind=pio|cpuid t0=… t1=…` markers) are matched to the host's event for
 * the exit (kvm_pio on port 0xe9, kvm_exit reason CPUID) on that vCPU's thread: the host event's
 * TSC must lie inside the mapped [t0, t1] bracket. Each matched point also bounds the offset:
 * t0 − h ≤ offset ≤ t1 − h.
 */
import { fieldsOf } from '../parsers/event-fields.js';
import type { HostIndex, WindowKind } from '../host/index.js';
import { SegmentCursor, INSIDE, OUTSIDE } from '../kvm/cursor.js';
import { EXIT, USERSPACE, stateRule } from '../kvm/states.js';
import { skewBound } from '../host/skew.js';
import { DEFAULT_LISTED, DetailContext, VcpuDetail, type EventList, type Residuals } from './validate-detail.js';
import type { MergedBatch } from './merged-event.js';
import type { EventBlock } from '../model/event-block.js';
import type { Timeline } from './merge.js';
import type { GuestPlan } from './plan.js';
import type { SyncMatch } from './consumer.js';
import type { SyncMarker } from '../model/kvm-fields.js';
import { cyclesToNs } from '../model/units.js';

export type { WindowKind } from '../host/index.js';
export { DEFAULT_LISTED } from './validate-detail.js';
export type { EventList, ListedEvent, HostEdge, Residual, Residuals } from './validate-detail.js';

/**
 * The host's cross-CPU TSC skew bound over the CPUs a vCPU thread ran on (host/skew.ts): cycles
 * (null when no pair of them has evidence both ways; 0 on one CPU), and the causal pair that sets it.
 */
export interface SkewFigures {
  cpus: number[];
  boundCycles: number | null;
  boundNs: number | null;
  pairsBounded: number;
  pairsUnbounded: number;
  /** Ordered pairs of host CPUs with a causal pair anywhere in the host trace (0: it has none, e.g. no sched events). */
  cpuPairsInTrace: number;
  pair: { from: number; to: number; gapCycles: number; cause: { event: string; at: string; hostTsc: string }; switchIn: { tid: number; at: string; hostTsc: string } } | null;
}

/** Validation figures of one vCPU (the `--summary` JSON, plus details). */
export interface VcpuValidation {
  vcpu: number;
  hostTid: number | null;
  windowKind: WindowKind;
  checked: number;
  inside: number;
  notCheckable: number;
  worstViolationCycles: number;
  /** Worst violation in ns, when the TSC frequency is known. */
  worstViolationNs: number | null;
  /** Kept for the summary's readers: the worst violation is exact (every outside event is measured against the index). */
  worstIsLowerBound: boolean;
  sync: { points: number; matched: number; noHostEvidence: number; offsetLow: string | null; offsetHigh: string | null };
  mappingFrom: string;
  /** kvm-run hosts: switch-ins of the vCPU thread the host trace lacks (their stretches are not checkable). */
  missedSwitchIns?: number;
  /** Guests traced with the `global` clock: events whose stamp may have been clamped (not checkable). */
  clampedStamps?: number;
  /** Guest events outside their windows, the first ones listed (DEFAULT_LISTED unless told). */
  violations: EventList;
  /** Guest events not checkable, the first ones listed, each with why. */
  notCheckableEvents: EventList;
  /** How close the mapping came to failing (see validate-detail.ts). */
  residual: Residuals;
  /** The host's cross-CPU TSC skew bound over the CPUs the vCPU thread ran on (null: no host thread known). */
  hostSkew: SkewFigures | null;
}

/**
 * Whether validation passed, failed, or did not apply (no guest was mapped to a host: a host-only
 * or guest-only merge) — what the outputs say as `validation`.
 */
export function validationVerdict(r: ValidationResult): 'passed' | 'FAILED' | 'not applicable' {
  return !r.ok ? 'FAILED' : r.guests.length === 0 ? 'not applicable' : 'passed';
}

/** `MACHINE:VCPU` of every guest vCPU that had events in the merge (each was judged, or found not checkable). */
export function vcpusWithEvents(r: ValidationResult): Set<string> {
  const seen = new Set<string>();
  for (const g of r.guests) for (const v of g.vcpus) if (v.checked + v.notCheckable > 0) seen.add(`${g.name}:${v.vcpu}`);
  return seen;
}

/** Validation of one guest. */
export interface GuestValidation {
  name: string;
  file: string;
  vcpus: VcpuValidation[];
  notes: string[];
}

/** The verdict of a whole merge. */
export interface ValidationResult {
  guests: GuestValidation[];
  ok: boolean;
  /** One line per failure, for the loud report. */
  failures: string[];
}

/** How many of a thread's latest sync exits (before the marker) a sync point is matched against. */
const RECENT_SYNC = 256;

/** Rules of not checkable events that no segment gives. */
const CLAMPED = 'not checkable: its global-clock stamp is shared with another CPU (it may have been clamped)';
const BEFORE_EVIDENCE = 'not checkable: before the host trace recorded anything but TSC offset writes';

class VcpuState {
  detail!: VcpuDetail;
  checked = 0;
  inside = 0;
  notCheckable = 0;
  worst = 0;
  clamped = 0;
  syncPoints = 0;
  syncMatched = 0;
  syncNoEvidence = 0;
  offLow: bigint | undefined;
  offHigh: bigint | undefined;
  constructor(
    readonly vcpu: number,
    readonly tid: number | undefined,
    /** Undefined when the index tracks no such thread: nothing can be judged. */
    readonly cursor: SegmentCursor | undefined,
  ) {}
}

/**
 * The `global` trace clock never goes backwards across CPUs: a stamp taken on one CPU is raised to
 * the last one taken anywhere. Guest events of such a source that share their raw stamp with an
 * event of another CPU may have been clamped, so they are held until the run of equal stamps ends
 * and, when it spans CPUs, not judged.
 */
interface HeldRun {
  raw: number;
  cpus: number;
  firstCpu: number;
  items: { t: number; vcpu: number; line: number; cpu: number }[];
}

/**
 * The validator, a merge consumer (merge/consumer.ts): it judges every merged guest event (host
 * events are ignored), and `end()` gives the figures and the verdict.
 */
export class Validator {
  private readonly states: VcpuState[][] = [];
  readonly kind: WindowKind;
  private tl!: Timeline;
  private plans: (GuestPlan | undefined)[] = [];
  private first = Infinity;
  private last = -Infinity;
  /** Per guest source of the `global` clock: its run of equal stamps held back. */
  private readonly held: (HeldRun | undefined)[] = [];
  private global: boolean[] = [];
  private ctx!: DetailContext;

  constructor(
    private readonly index: HostIndex | undefined,
    private readonly tscKhz: number | undefined,
    /** Told each sync point matched (the Perfetto output's flows). */
    private readonly onSync?: (m: SyncMatch) => void,
    /** Guest events listed per vCPU, of those outside and of those not checkable. */
    private readonly listed = DEFAULT_LISTED,
  ) {
    this.kind = index?.kind ?? 'none';
  }

  /** The timeline and each source's plan: states for every planned vCPU. */
  begin(tl: Timeline, plans: (GuestPlan | undefined)[]): void {
    this.tl = tl;
    this.plans = plans;
    this.ctx = new DetailContext(tl, this.index, this.tscKhz, this.listed);
    const index = this.index;
    this.first = index?.first !== undefined ? Number(index.first - tl.base) : Infinity;
    this.last = index?.last !== undefined ? Number(index.last - tl.base) : -Infinity;
    this.global = tl.sources.map((s) => s.role === 'guest' && s.open.header.clock === 'global');
    plans.forEach((p, src) => {
      this.states[src] = [];
      if (p) for (const v of p.vcpus.keys()) this.state(src, v);
    });
  }

  private state(src: number, vcpu: number): VcpuState {
    let s = this.states[src][vcpu];
    if (!s) {
      const tid = this.plans[src]!.vcpu(vcpu).tid;
      const th = tid !== undefined ? this.index?.threads.get(tid) : undefined;
      s = new VcpuState(vcpu, tid, th && this.kind !== 'none' ? new SegmentCursor(th.segments) : undefined);
      s.detail = new VcpuDetail(this.ctx, th?.segments);
      this.states[src][vcpu] = s;
    }
    return s;
  }

  /** Judges one batch of merged events (in timeline order). */
  batch(batch: MergedBatch): void {
    for (let k = 0; k < batch.n; k++) {
      const src = batch.src[k];
      if (!this.plans[src]) continue;
      const blk = batch.blk[k];
      const r = batch.row[k];
      // Only markers are read here: other kinds (sched_switch, most of all) are not decoded.
      if (blk.table.typedKind(blk.name[r]) === 'marker') {
        const f = fieldsOf(blk, r);
        if (f?.kind === 'marker' && f.sync) this.sync(batch.t[k], src, f.sync, blk.line[r]);
      }
      if (this.global[src]) this.hold(src, batch.t[k], batch.vcpu[k], blk, r);
      else this.judge(this.state(src, batch.vcpu[k]), batch.t[k], src, blk.line[r], blk.cpu[r]);
    }
  }

  /** Holds a `global`-clock guest event while its raw stamp repeats (see HeldRun). */
  private hold(src: number, t: number, vcpu: number, blk: EventBlock, r: number): void {
    const raw = blk.ts[r];
    const cpu = blk.cpu[r];
    const line = blk.line[r];
    const h = this.held[src];
    if (h && h.raw === raw) {
      if (cpu !== h.firstCpu) h.cpus = 2;
      h.items.push({ t, vcpu, line, cpu });
      return;
    }
    this.release(src);
    this.held[src] = { raw, cpus: 1, firstCpu: cpu, items: [{ t, vcpu, line, cpu }] };
  }

  private release(src: number): void {
    const h = this.held[src];
    if (!h) return;
    this.held[src] = undefined;
    for (const it of h.items) {
      const s = this.state(src, it.vcpu);
      if (h.cpus > 1) {
        s.clamped++;
        s.notCheckable++;
        s.detail.notCheckable(CLAMPED, -1, it.t, src, it.line, it.cpu);
      } else this.judge(s, it.t, src, it.line, it.cpu);
    }
  }

  /** A guest event of vCPU state `s` at timeline time t, from line `line` of source `src`, CPU `cpu`. */
  private judge(s: VcpuState, t: number, src: number, line: number, cpu: number): void {
    const c = s.cursor;
    if (!c || t < this.first || t > this.last) {
      s.notCheckable++;
      s.detail.notCheckable(this.whyNot(s, t), -1, t, src, line, cpu);
      return;
    }
    const v = c.judge(t);
    if (v === INSIDE) {
      s.checked++;
      s.inside++;
      s.detail.inside(c, t, src, line);
    } else if (v === OUTSIDE) {
      s.checked++;
      if (c.distance > s.worst) s.worst = c.distance;
      s.detail.outsideAt(c, this.ruleAt(c, t), t, src, line, cpu);
    } else {
      s.notCheckable++;
      const i = c.segs.at(t);
      s.detail.notCheckable(i < 0 ? BEFORE_EVIDENCE : this.ruleAt(c, t), i, t, src, line, cpu);
    }
  }

  /** The rule of the segment a time falls in (kvm/states.ts), with its reason. */
  private ruleAt(c: SegmentCursor, t: number): string {
    const i = c.segs.at(t);
    const st = c.segs.state(i);
    const arg = c.segs.arg(i);
    // EXIT and USERSPACE segments carry their reason's id.
    return stateRule(st, (st === EXIT || st === USERSPACE) && arg >= 0 ? this.index?.names[arg] : undefined);
  }

  /** Why a guest event with no cursor, or outside the host trace's span, is not checkable. */
  private whyNot(s: VcpuState, t: number): string {
    if (s.cursor) return t < this.first ? `not checkable: before the host trace's first event (host TSC ${this.index!.first})` : `not checkable: after the host trace's last event (host TSC ${this.index!.last})`;
    if (this.kind === 'none') return 'not checkable: the host trace has no guest-mode evidence (no kvm_entry/kvm_exit, no kvm_fpu)';
    if (s.tid === undefined) return 'not checkable: no host thread is known for this vCPU';
    return `not checkable: the host trace has no run evidence of host thread ${s.tid}`;
  }

  /**
   * A sync marker at timeline time `at`: the host's sync exits of its kind on the vCPU's thread up
   * to that time (host events come first at equal times), the latest RECENT_SYNC of them.
   */
  private sync(at: number, src: number, m: SyncMarker, line: number): void {
    const { cpu, kind, t0, t1 } = m;
    const plan = this.plans[src]!;
    const v = plan.cpuToVcpu(cpu);
    const s = this.state(src, v);
    s.syncPoints++;
    const all = s.tid !== undefined ? this.index?.sync.get(s.tid)?.[kind] : undefined;
    const end = all ? upperBound(all, at) : 0;
    if (end === 0) {
      s.syncNoEvidence++;
      return;
    }
    const map = plan.vcpu(v).mapping;
    const base = this.tl.base;
    const h0 = Number(map.toHost(t0) - base);
    const h1 = Number(map.toHost(t1) - base);
    const from = Math.max(0, end - RECENT_SYNC);
    // The residual: the candidate exit nearest to being (or deepest) inside the bracket.
    let best = from;
    for (let i = from + 1; i < end; i++) if (Math.min(all![i] - h0, h1 - all![i]) > Math.min(all![best] - h0, h1 - all![best])) best = i;
    s.detail.syncPoint(h0, h1, all![best], this.index!.syncWhere.get(s.tid!)![kind][best], src, line, m.seq);
    for (let i = from; i < end; i++) {
      const h = all![i];
      if (h >= h0 && h <= h1) {
        s.syncMatched++;
        const hAbs = base + BigInt(h);
        const lo = t0 - hAbs;
        const hi = t1 - hAbs;
        if (s.offLow === undefined || lo > s.offLow) s.offLow = lo;
        if (s.offHigh === undefined || hi < s.offHigh) s.offHigh = hi;
        this.onSync?.({ hostT: h, guestT: at, src, vcpu: v, tid: s.tid!, kind, seq: m.seq });
        return;
      }
    }
  }

  /** Closes the pass and returns the figures and the verdict. */
  end(): ValidationResult {
    this.held.forEach((_, src) => this.release(src));
    const guests: GuestValidation[] = [];
    const failures: string[] = [];
    this.plans.forEach((plan, src) => {
      if (!plan) return;
      const name = this.tl.sources[src].machine;
      const vcpus: VcpuValidation[] = [];
      for (const s of this.states[src]) {
        // vCPUs of other VMs seen on the host (kvm_entry) that this guest never used are not reported.
        if (!s || (s.checked + s.notCheckable + s.syncPoints === 0 && !plan.vm?.vcpus.some((c) => c.vcpu === s.vcpu))) continue;
        const v = this.figures(s, plan, src);
        vcpus.push(v);
        failures.push(...vcpuFailures(name, v, this.kind));
      }
      guests.push({ name, file: plan.spec.file, vcpus, notes: plan.notes });
    });
    return { guests, ok: failures.length === 0, failures };
  }

  private figures(s: VcpuState, plan: GuestPlan, src: number): VcpuValidation {
    const th = s.tid !== undefined ? this.index?.threads.get(s.tid) : undefined;
    return {
      vcpu: s.vcpu,
      hostTid: s.tid ?? null,
      windowKind: this.kind,
      checked: s.checked,
      inside: s.inside,
      notCheckable: s.notCheckable,
      worstViolationCycles: s.worst,
      worstViolationNs: this.tscKhz ? Math.round(cyclesToNs(s.worst, this.tscKhz)) : null,
      worstIsLowerBound: false,
      sync: {
        points: s.syncPoints,
        matched: s.syncMatched,
        noHostEvidence: s.syncNoEvidence,
        offsetLow: s.offLow?.toString() ?? null,
        offsetHigh: s.offHigh?.toString() ?? null,
      },
      mappingFrom: plan.vcpu(s.vcpu).mappingFrom,
      ...(this.kind === 'kvm-run' ? { missedSwitchIns: th?.missedSwitchIns ?? 0 } : {}),
      ...(this.global[src] ? { clampedStamps: s.clamped } : {}),
      violations: s.detail.outside,
      notCheckableEvents: s.detail.unchecked,
      residual: s.detail.residuals(),
      hostSkew: th ? this.skewOf(th.cpus) : null,
    };
  }

  /** The skew bound over `cpus`, with the pair that sets it named. */
  private skewOf(cpus: number[]): SkewFigures {
    const b = skewBound(this.index!.skew, cpus);
    const e = b.edge;
    const ctx = this.ctx;
    return {
      cpus: b.cpus,
      boundCycles: b.cycles,
      boundNs: b.cycles === null ? null : ctx.ns(b.cycles),
      pairsBounded: b.pairsBounded,
      pairsUnbounded: b.pairsUnbounded,
      cpuPairsInTrace: this.index!.skew.edges.length,
      pair: e
        ? {
            from: e.from,
            to: e.to,
            gapCycles: e.gapCycles,
            cause: { event: e.cause.event, at: ctx.hostPlace(e.cause.where), hostTsc: ctx.hostTsc(e.cause.t) },
            switchIn: { tid: e.switchIn.tid, at: ctx.hostPlace(e.switchIn.where), hostTsc: ctx.hostTsc(e.switchIn.t) },
          }
        : null,
    };
  }
}

/** The failure sentences of one vCPU's figures. */
function vcpuFailures(name: string, v: VcpuValidation, kind: WindowKind): string[] {
  const out: string[] = [];
  if (v.inside < v.checked)
    out.push(`${name} vCPU ${v.vcpu}: ${v.checked - v.inside} of ${v.checked} guest events fall outside the host's guest-mode windows (worst by ${v.worstViolationCycles} cycles)`);
  const checkableSync = v.sync.points - v.sync.noHostEvidence;
  if (v.checked === 0 && checkableSync === 0)
    out.push(
      `${name} vCPU ${v.vcpu}: nothing could be checked — ` +
        (kind === 'none'
          ? 'the host trace has no guest-mode evidence (no kvm_entry/kvm_exit, no kvm_fpu)'
          : v.hostTid === null
            ? 'no host thread is known for this vCPU'
            : `all ${v.notCheckable} guest events fall outside the host trace's span or before any evidence`) +
        ', so the mapping is unverified',
    );
  if (v.sync.matched < checkableSync)
    out.push(`${name} vCPU ${v.vcpu}: ${checkableSync - v.sync.matched} of ${checkableSync} sync points have no host event inside their [t0, t1] bracket`);
  return out;
}

/** The number of values of a sorted array that are ≤ x. */
function upperBound(a: Float64Array, x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
