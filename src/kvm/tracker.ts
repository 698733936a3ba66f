/**
 * The KVM-run tracker: the one state machine that says, for a host thread that runs a vCPU, when it
 * was running guest code. Validation, estimation, the Chrome JSON slices, the analyses and the view
 * all read what it emits (see states.ts for the states), so the proof and the pictures agree.
 *
 * It is fed one thread's inputs in the merge's host order (host TSC, then source, then arrival),
 * each with its time `t` (timeline cycles), its place `ord` (see host/index.ts) and where its host
 * event is (`where`, passed through to the segment it starts), and emits final segments — a state
 * from (t, ord) on — to its sink, in order. Two facts, each three-valued
 * (yes, no, not known yet):
 *  - in run: entry-exit hosts (VMX/SVM) are in guest mode from kvm_entry to kvm_exit; kvm-run hosts
 *    (kvm-pvm, no kvm_entry/kvm_exit) inside KVM_RUN from kvm_fpu load to unload;
 *  - on a CPU (kvm-run only): from sched_switch, and from any event the thread traces itself.
 * Guest code runs where both hold (entry-exit: the first alone).
 *
 * Rules (each lives here only):
 *  - Before the thread's first run evidence nothing is known; that evidence tells what came before,
 *    since a run cannot nest: an entry (or KVM_RUN start) means out since the trace began (OUT), an
 *    exit (or KVM_RUN end) means in. Segments of that stretch are emitted once it is known.
 *  - Own events prove the thread on a CPU: the host may miss a switch-in (this lab's host never
 *    records some threads' sched_switch, shared/kvm-lab.md).
 *  - Missing switch-ins: when a switched-out thread shows up through its own event, or through a
 *    second switch-out, with no switch-in between, the switch-in was not traced. From the latest lower
 *    bound (the switch-out, or a later sched_wakeup / sched_migrate_task of the thread) up to that
 *    proof the state is NOT_TRACED (not checkable); before the bound it stays PREEMPTED. Counted.
 *    An off-CPU stretch is emitted once it ends, so its segments are final.
 *  - entry-exit: every kvm_entry and every kvm_exit starts a segment (a second entry starts a new
 *    GUEST segment: pictures draw each window); other changes only when the state changes.
 *  - A kvm_userspace_exit in USERSPACE starts a USERSPACE segment carrying its reason.
 */
import { EXIT, GUEST, NOT_TRACED, OUT, PREEMPTED, UNKNOWN, USERSPACE, type KvmState } from './states.js';

/** Inputs of the tracker (one host event may give a thread two: its own event, then what it is). */
export const ENTER = 1; // kvm_entry (arg: vCPU index)
export const LEAVE = 2; // kvm_exit (arg: reason id)
export const RUN_ON = 3; // kvm_fpu load: KVM_RUN starts
export const RUN_OFF = 4; // kvm_fpu unload: KVM_RUN ends
export const SCHED_OUT = 5; // sched_switch away from the thread
export const SCHED_IN = 6; // sched_switch to the thread
export const OWN = 7; // any event the thread traced (not its own switch-out): it is on a CPU
export const BOUND = 8; // sched_wakeup / sched_wakeup_new / sched_migrate_task of the thread: a lower bound of a switch-in
export const USER_EXIT = 9; // kvm_userspace_exit (arg: reason id)

/**
 * Where segments go: a state from time `t` (timeline cycles) and place `ord` on, with its arg, and
 * `where`, the location its host event came with (opaque here; the host index packs the file and
 * line into it, host/where.ts; -1 when none was given).
 */
export interface SegmentSink {
  segment(t: number, ord: number, state: KvmState, arg: number, where: number): void;
}

/** Which kind of run evidence the tracker follows. */
export type TrackerMode = 'entry-exit' | 'kvm-run';

const YES = 1;
const NO = 0;
const UNK = -1;

// What the on-CPU layer says about a stretch: on a CPU (or not known), switched out, switch-in not traced.
const ON = 0;
const PRE = 1;
const NT = 2;

/** The tracker of one host thread. */
export class KvmRunTracker {
  /** Switch-ins the trace lacks (kvm-run), found by the proofs above. */
  missedSwitchIns = 0;
  private inRun = UNK;
  private onCpu = UNK;
  /** The open off-CPU stretch (onCpu NO): its switch-out and its latest lower bound. */
  private gapT = 0;
  private gapOrd = 0;
  private gapWhere = -1;
  private boundT = 0;
  private boundOrd = 0;
  private boundWhere = -1;
  /** The on-CPU layer's stretches while the run fact is not known yet: (t, ord, where, ON|PRE|NT). */
  private early: number[] = [];
  private lastState = -1;
  private lastArg = -2;
  /** The current on-CPU stretch's kind (what a run that starts now is in). */
  private sub = ON;

  constructor(
    readonly mode: TrackerMode,
    /** Where the trace begins for this thread: the host trace's first event. */
    private readonly startT: number,
    private readonly startOrd: number,
    private readonly sink: SegmentSink,
    /** Where the host trace's first event is (see SegmentSink). */
    private readonly startWhere = -1,
  ) {
    this.early.push(startT, startOrd, startWhere, ON);
  }

  /** One input at time t and place ord, its host event at `where` (see SegmentSink). */
  step(code: number, t: number, ord: number, arg: number, where = -1): void {
    if (this.mode === 'entry-exit') {
      if (code === ENTER) this.setRun(YES, t, ord, arg, where);
      else if (code === LEAVE) this.setRun(NO, t, ord, arg, where);
      return;
    }
    switch (code) {
      case OWN:
        if (this.onCpu === NO) {
          this.closeGap(true);
          this.onSub(t, ord, where, ON);
        }
        this.onCpu = YES;
        break;
      case SCHED_OUT:
        if (this.onCpu === NO) this.closeGap(true);
        this.onCpu = NO;
        this.gapT = this.boundT = t;
        this.gapOrd = this.boundOrd = ord;
        this.gapWhere = this.boundWhere = where;
        break;
      case SCHED_IN:
        if (this.onCpu === NO) {
          this.closeGap(false);
          this.onSub(t, ord, where, ON);
        }
        this.onCpu = YES;
        break;
      case BOUND:
        if (this.onCpu === NO && ord > this.boundOrd) (this.boundT = t), (this.boundOrd = ord), (this.boundWhere = where);
        break;
      case RUN_ON:
        this.setRun(YES, t, ord, -1, where);
        break;
      case RUN_OFF:
        this.setRun(NO, t, ord, -1, where);
        break;
      case USER_EXIT:
        if (this.inRun === NO) this.emit(t, ord, where, USERSPACE, arg, true);
        break;
    }
  }

  /** Ends the thread's trace: an off-CPU stretch with no proof stays PREEMPTED; no run evidence at all leaves it UNKNOWN. */
  finish(): void {
    if (this.onCpu === NO) this.closeGap(false);
    if (this.inRun === UNK) {
      this.early.length = 0;
      this.emit(this.startT, this.startOrd, this.startWhere, UNKNOWN, -1);
    }
  }

  /**
   * Ends the open off-CPU stretch: with a switch-in traced, all of it was PREEMPTED; with a proof
   * instead (`missed`), PREEMPTED up to the latest lower bound and NOT_TRACED from there.
   */
  private closeGap(missed: boolean): void {
    if (!missed) return this.onSub(this.gapT, this.gapOrd, this.gapWhere, PRE);
    this.missedSwitchIns++;
    if (this.boundOrd > this.gapOrd) this.onSub(this.gapT, this.gapOrd, this.gapWhere, PRE);
    this.onSub(this.boundT, this.boundOrd, this.boundWhere, NT);
  }

  /** The on-CPU layer starts a stretch of kind `sub` at (t, ord). */
  private onSub(t: number, ord: number, where: number, sub: number): void {
    this.sub = sub;
    if (this.inRun === UNK) this.early.push(t, ord, where, sub);
    else if (this.inRun === YES) this.emit(t, ord, where, SUB_STATE[sub], -1);
  }

  /** A run-state change at (t, ord); entry-exit's arg is the vCPU (entry) or the reason (exit). */
  private setRun(v: number, t: number, ord: number, arg: number, where: number): void {
    if (this.inRun === UNK) this.resolveEarly(v === YES ? NO : YES);
    const was = this.inRun;
    this.inRun = v;
    if (this.mode === 'entry-exit') return this.emit(t, ord, where, v === YES ? GUEST : EXIT, arg, true);
    if (v === was) return;
    if (v === YES) this.emit(t, ord, where, SUB_STATE[this.sub], -1);
    else this.emit(t, ord, where, USERSPACE, -1);
  }

  /** The first run evidence: `before` is the run fact since the trace began. */
  private resolveEarly(before: number): void {
    const e = this.early;
    if (before === NO) this.emit(this.startT, this.startOrd, this.startWhere, OUT, -1);
    else for (let i = 0; i < e.length; i += 4) this.emit(e[i], e[i + 1], e[i + 2], SUB_STATE[e[i + 3]], -1);
    this.early = [];
  }

  private emit(t: number, ord: number, where: number, state: KvmState, arg: number, force = false): void {
    if (!force && state === this.lastState && arg === this.lastArg) return;
    this.lastState = state;
    this.lastArg = arg;
    this.sink.segment(t, ord, state, arg, where);
  }
}

/** The state of a run stretch by its on-CPU kind. */
const SUB_STATE: readonly KvmState[] = [GUEST, PREEMPTED, NOT_TRACED];
