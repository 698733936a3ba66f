/**
 * Validation of a merged timeline, always on, in the same single pass as the export.
 *
 * Every mapped guest event must fall inside a guest-mode window of its vCPU's host thread:
 *  - `entry-exit`: from kvm_entry to the next kvm_exit on that thread (VMX/SVM hosts);
 *  - `kvm-run`: where the host has no kvm_entry/kvm_exit (kvm-pvm, see shared/kvm-lab.md), the
 *    KVM_RUN span (kvm_fpu load → unload on the thread) minus the thread's sched-out gaps.
 * Boundaries are inclusive. Guest events outside the host trace's span, or before the first
 * window evidence of their vCPU, cannot be checked and are counted apart.
 *
 * Sync points (`kvmsync … kind=pio|cpuid t0=… t1=…` markers) are matched to the host's event for
 * the exit (kvm_pio on port 0xe9, kvm_exit reason CPUID) on that vCPU's thread: the host event's
 * TSC must lie inside the mapped [t0, t1] bracket. Each matched point also bounds the offset:
 * t0 − h ≤ offset ≤ t1 − h.
 */
import { isCpuidExit, isMarkerEvent, kvmExitReason, kvmFpu, kvmPioPort, schedSwitch, syncMarker } from '../parsers/event-fields.js';
import type { HostScan } from './host-scan.js';
import type { MergedBatch } from './merged-event.js';
import type { EventBlock } from '../model/event-block.js';
import type { Timeline } from './merge.js';
import type { GuestPlan } from './plan.js';
import type { VcpuRunState, VcpuTransitionListener } from '../model/vcpu-transition.js';

/** Which kind of guest-mode evidence the host trace has. */
export type WindowKind = 'entry-exit' | 'kvm-run' | 'none';

/** The sync port kvmtrace's `syncpt` writes to. */
export const SYNC_PORT = 0xe9;

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
  /** True when more outside events came in one gap than are measured (PENDING_CAP): the worst is a lower bound. */
  worstIsLowerBound: boolean;
  sync: { points: number; matched: number; noHostEvidence: number; offsetLow: string | null; offsetHigh: string | null };
  mappingFrom: string;
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

const RING = 256;
/** At most this many outside events wait for their gap's end to be measured (memory bound). */
const PENDING_CAP = 1 << 16;

/** A three-valued fact: known yes, known no, or not known (yet). */
const YES = 1;
const NO = 0;
const UNKNOWN = -1;
type Fact = typeof YES | typeof NO | typeof UNKNOWN;

class VcpuState {
  /** entry-exit: in guest mode (kvm_entry → kvm_exit); kvm-run: inside KVM_RUN (kvm_fpu load → unload). */
  inRun: Fact = UNKNOWN;
  /** kvm-run only: the thread is on a CPU (sched_switch, or any event it traced). */
  onCpu: Fact = UNKNOWN;
  /** Whether the vCPU can be executing guest code now, from the two facts above. */
  inGuest: Fact = UNKNOWN;
  lastLeave = -Infinity;
  /** Guest events seen while the vCPU was known out of guest mode, waiting for the next entry to measure them. */
  pending: number[] = [];
  /** Outside events beyond PENDING_CAP in one gap: counted, not measured. */
  unmeasured = 0;
  checked = 0;
  inside = 0;
  notCheckable = 0;
  worst = 0;
  // Recent host sync evidence on the thread: a ring of timestamps per kind.
  pio = new Float64Array(RING);
  pioN = 0;
  cpuid = new Float64Array(RING);
  cpuidN = 0;
  syncPoints = 0;
  syncMatched = 0;
  syncNoEvidence = 0;
  offLow: bigint | undefined;
  offHigh: bigint | undefined;
  constructor(
    readonly guest: number,
    readonly vcpu: number,
    readonly tid: number | undefined,
    private readonly needsCpu: boolean,
    private readonly listener?: VcpuTransitionListener,
  ) {}

  /** The reason of the latest exit (entry-exit), for listeners. */
  exitReason = '';
  /** The state listeners were told last. */
  private told: VcpuRunState | undefined;
  private toldReason = '';

  /**
   * Tells listeners the state the facts above give — no rule of its own: guest ⇔ inGuest is YES,
   * not checkable ⇔ UNKNOWN; out of guest mode is an exit (entry-exit), user space (out of
   * KVM_RUN), or preempted (in KVM_RUN, switched out).
   */
  private tell(t: number): void {
    if (!this.listener || this.tid === undefined) return;
    const st: VcpuRunState =
      this.inGuest === YES ? 'guest' : this.inGuest === UNKNOWN ? 'unknown' : this.inRun === NO ? (this.needsCpu ? 'userspace' : 'exit') : 'preempted';
    const reason = st === 'exit' ? this.exitReason : '';
    if (st === this.told && reason === this.toldReason) return;
    this.told = st;
    this.toldReason = reason;
    this.listener.transition(t, this.guest, this.vcpu, this.tid, st, reason);
  }

  /** Guest events (in the host's span) that came before the first run evidence, with the on-CPU fact at each. */
  early: number[] = [];
  earlyCpu: Fact[] = [];

  /** A run-state change (kvm_entry/exit, kvm_fpu load/unload) at t. */
  setRun(v: Fact, t: number): void {
    if (this.inRun === UNKNOWN) this.resolveEarly(v === YES ? NO : YES, t);
    this.inRun = v;
    this.update(t);
  }

  /**
   * The first run evidence tells what came before it: an entry (or KVM_RUN start) at t means the
   * vCPU was out since the trace began — nesting is impossible — and an exit (or KVM_RUN end)
   * means it was in. Early guest events are judged by that: inside, or outside by the time left
   * until t. Off-CPU moments stay not checkable (the trace may lack a switch-in, see below).
   */
  private resolveEarly(before: Fact, t: number): void {
    for (let i = 0; i < this.early.length; i++) {
      const p = this.early[i];
      if (before === YES) {
        if (this.needsCpu && this.earlyCpu[i] === NO) this.notCheckable++;
        else (this.checked++, this.inside++);
      } else {
        this.checked++;
        if (t - p > this.worst) this.worst = t - p;
      }
    }
    this.early.length = 0;
    this.earlyCpu.length = 0;
  }

  /** Recomputes `inGuest` after a change at time t; measures pending violations on entry. */
  update(t: number): void {
    // Off-CPU counts only inside a known KVM_RUN span: before the first kvm_fpu the run state is
    // unknown, and a switch-out whose switch-in the trace lacks (seen on this lab's host) must not
    // turn into a violation on its own.
    const now: Fact =
      this.inRun === YES && (!this.needsCpu || this.onCpu === YES)
        ? YES
        : this.inRun === NO || (this.inRun === YES && this.needsCpu && this.onCpu === NO)
          ? NO
          : UNKNOWN;
    if (now === this.inGuest) return this.tell(t);
    if (now === YES) {
      for (const p of this.pending) {
        const d = Math.min(p - this.lastLeave, t - p);
        if (d <= 0) this.inside++;
        else if (d > this.worst) this.worst = d;
      }
      this.pending.length = 0;
    } else if (this.inGuest === YES) this.lastLeave = t;
    this.inGuest = now;
    this.tell(t);
  }
}

/** The streaming validator: feed it every merged event in order, then `finalize()`. */
export class Validator {
  private readonly states: VcpuState[][] = [];
  private readonly byTid = new Map<number, VcpuState[]>();
  readonly kind: WindowKind;
  private readonly first: number;
  private readonly last: number;

  constructor(
    private readonly tl: Timeline,
    scan: HostScan | undefined,
    private readonly plans: (GuestPlan | undefined)[],
    private readonly tscKhz: number | undefined,
    /** Told every vCPU state change and matched sync point (the Perfetto vCPU tracks). */
    private readonly listener?: VcpuTransitionListener,
  ) {
    this.kind = !scan ? 'none' : scan.counts.kvmEntry > 0 ? 'entry-exit' : scan.counts.kvmFpu > 0 ? 'kvm-run' : 'none';
    this.first = scan?.first !== undefined ? Number(scan.first - tl.base) : Infinity;
    this.last = scan?.last !== undefined ? Number(scan.last - tl.base) : -Infinity;
    plans.forEach((p, src) => {
      this.states[src] = [];
      if (p) for (const v of p.vcpus.keys()) this.state(src, v);
    });
  }

  private state(src: number, vcpu: number): VcpuState {
    let s = this.states[src][vcpu];
    if (!s) {
      const tid = this.plans[src]!.vcpu(vcpu).tid;
      s = new VcpuState(src, vcpu, tid, this.kind === 'kvm-run', this.listener);
      this.states[src][vcpu] = s;
      if (tid !== undefined) {
        const l = this.byTid.get(tid) ?? [];
        l.push(s);
        this.byTid.set(tid, l);
      }
    }
    return s;
  }

  /** Feeds one batch of merged events (in timeline order). */
  handle(batch: MergedBatch): void {
    for (let k = 0; k < batch.n; k++) {
      if (batch.vcpu[k] < 0) this.host(batch.t[k], batch.blk[k], batch.row[k]);
      else this.guest(batch.t[k], batch.src[k], batch.vcpu[k], batch.blk[k], batch.row[k]);
    }
  }

  /** A host event at timeline time `t`: row `r` of `blk`. */
  private host(t: number, blk: EventBlock, r: number): void {
    const name = blk.nameOf(r);
    const c = name.charCodeAt(0);
    if (c === 115 /* s */ && name === 'sched_switch') {
      const sw = schedSwitch(blk.body(r));
      if (!sw) return;
      const out = this.byTid.get(sw.prevPid);
      if (out) for (const s of out) (s.onCpu = NO), s.update(t);
      const inn = this.byTid.get(sw.nextPid);
      if (inn) for (const s of inn) (s.onCpu = YES), s.update(t);
      return;
    }
    const ss = this.byTid.get(blk.pid[r]);
    if (!ss) return;
    // The thread traced this event, so it is on a CPU now (covers switch-ins the trace missed).
    if (this.kind === 'kvm-run') for (const s of ss) if (s.onCpu !== YES) (s.onCpu = YES), s.update(t);
    if (c !== 107 /* k */) return;
    switch (name) {
      case 'kvm_entry':
        if (this.kind === 'entry-exit') for (const s of ss) s.setRun(YES, t);
        break;
      case 'kvm_exit': {
        const reason = kvmExitReason(blk.body(r));
        if (this.kind === 'entry-exit') for (const s of ss) (s.exitReason = reason), s.setRun(NO, t);
        if (isCpuidExit(reason)) for (const s of ss) s.cpuid[s.cpuidN++ % RING] = t;
        break;
      }
      case 'kvm_fpu': {
        if (this.kind !== 'kvm-run') break;
        const f = kvmFpu(blk.body(r));
        if (f !== 0) for (const s of ss) s.setRun(f === 1 ? YES : NO, t);
        break;
      }
      case 'kvm_pio':
        if (kvmPioPort(blk.body(r)) === SYNC_PORT) for (const s of ss) s.pio[s.pioN++ % RING] = t;
        break;
    }
  }

  /** A guest event of source `src`, run by `vcpu`, at timeline time `t`: row `r` of `blk`. */
  private guest(t: number, src: number, vcpu: number, blk: EventBlock, r: number): void {
    const s = this.state(src, vcpu);
    if (isMarkerEvent(blk.nameOf(r))) {
      const sp = syncMarker(blk.body(r));
      if (sp) this.sync(src, sp.cpu, sp.kind, sp.t0, sp.t1, t, sp.seq);
    }
    if (this.kind === 'none' || s.tid === undefined || t < this.first || t > this.last) {
      s.notCheckable++;
      return;
    }
    if (s.inRun === UNKNOWN) {
      // Before the first run evidence of this vCPU: judged when it comes (see resolveEarly).
      if (s.early.length < PENDING_CAP) (s.early.push(t), s.earlyCpu.push(s.onCpu));
      else s.notCheckable++;
      return;
    }
    if (s.inGuest === UNKNOWN) {
      s.notCheckable++;
      return;
    }
    s.checked++;
    if (s.inGuest === YES || t === s.lastLeave) s.inside++;
    else if (s.pending.length < PENDING_CAP) s.pending.push(t);
    else {
      // Bounded memory: past the cap, an outside event still counts (checked − inside) but is not
      // measured; the worst violation reported is then a lower bound, and says so.
      s.unmeasured++;
    }
  }

  private sync(src: number, cpu: number, kind: 'pio' | 'cpuid', t0: bigint, t1: bigint, guestT: number, seq: number): void {
    const plan = this.plans[src]!;
    const v = plan.cpuToVcpu(cpu);
    const s = this.state(src, v);
    s.syncPoints++;
    const map = plan.vcpu(v).mapping;
    const base = this.tl.base;
    const h0 = Number(map.toHost(t0) - base);
    const h1 = Number(map.toHost(t1) - base);
    const ring = kind === 'pio' ? s.pio : s.cpuid;
    const n = Math.min(kind === 'pio' ? s.pioN : s.cpuidN, RING);
    if (n === 0) {
      s.syncNoEvidence++;
      return;
    }
    for (let i = 0; i < n; i++) {
      const h = ring[i];
      if (h >= h0 && h <= h1) {
        s.syncMatched++;
        const hAbs = base + BigInt(h);
        const lo = t0 - hAbs;
        const hi = t1 - hAbs;
        if (s.offLow === undefined || lo > s.offLow) s.offLow = lo;
        if (s.offHigh === undefined || hi < s.offHigh) s.offHigh = hi;
        if (s.tid !== undefined) this.listener?.syncPoint?.(h, guestT, src, v, s.tid, kind, seq);
        return;
      }
    }
  }

  /** Closes the pass and returns the figures and the verdict. */
  finalize(): ValidationResult {
    const guests: GuestValidation[] = [];
    const failures: string[] = [];
    this.plans.forEach((plan, src) => {
      if (!plan) return;
      const name = this.tl.sources[src].machine;
      const vcpus: VcpuValidation[] = [];
      for (const s of this.states[src]) {
        // vCPUs of other VMs seen on the host (kvm_entry) that this guest never used are not reported.
        if (!s || (s.checked + s.notCheckable + s.syncPoints === 0 && !plan.vm?.vcpus.some((c) => c.vcpu === s.vcpu))) continue;
        for (const p of s.pending) {
          const d = p - s.lastLeave;
          if (d > s.worst) s.worst = d;
        }
        // No run evidence ever came for these: nothing to judge them by.
        s.notCheckable += s.early.length;
        s.early.length = 0;
        s.pending.length = 0;
        const p = plan.vcpu(s.vcpu);
        const v: VcpuValidation = {
          vcpu: s.vcpu,
          hostTid: s.tid ?? null,
          windowKind: this.kind,
          checked: s.checked,
          inside: s.inside,
          notCheckable: s.notCheckable,
          worstViolationCycles: s.worst,
          worstViolationNs: this.tscKhz ? Math.round((s.worst * 1e6) / this.tscKhz) : null,
          worstIsLowerBound: s.unmeasured > 0,
          sync: {
            points: s.syncPoints,
            matched: s.syncMatched,
            noHostEvidence: s.syncNoEvidence,
            offsetLow: s.offLow?.toString() ?? null,
            offsetHigh: s.offHigh?.toString() ?? null,
          },
          mappingFrom: p.mappingFrom,
        };
        vcpus.push(v);
        if (v.inside < v.checked)
          failures.push(`${name} vCPU ${v.vcpu}: ${v.checked - v.inside} of ${v.checked} guest events fall outside the host's guest-mode windows (worst by ${v.worstViolationCycles} cycles)`);
        const checkableSync = v.sync.points - v.sync.noHostEvidence;
        if (v.checked === 0 && checkableSync === 0)
          failures.push(
            `${name} vCPU ${v.vcpu}: nothing could be checked — ` +
              (this.kind === 'none'
                ? 'the host trace has no guest-mode evidence (no kvm_entry/kvm_exit, no kvm_fpu)'
                : v.hostTid === null
                  ? 'no host thread is known for this vCPU'
                  : `all ${v.notCheckable} guest events fall outside the host trace's span or before any evidence`) +
              ', so the mapping is unverified',
          );
        if (v.sync.matched < checkableSync)
          failures.push(`${name} vCPU ${v.vcpu}: ${checkableSync - v.sync.matched} of ${checkableSync} sync points have no host event inside their [t0, t1] bracket`);
      }
      guests.push({ name, file: plan.spec.file, vcpus, notes: plan.notes });
    });
    return { guests, ok: failures.length === 0, failures };
  }
}
