/**
 * What a host without kvm_entry/kvm_exit still says about its vCPUs (kvm-pvm on this machine,
 * see shared/kvm-lab.md): KVM_RUN spans (kvm_fpu load → unload on the vCPU thread), the time the
 * thread was switched out inside them, the time it ran guest code, and why each KVM_RUN returned to
 * user space (kvm_userspace_exit, traced after the unload). All of it is read from the KVM-run
 * tracker's segments replayed in the merge (kvm/replay.ts), the states validation judged by. A
 * userspace exit's duration runs from kvm_userspace_exit to the next KVM_RUN start: the time the
 * VMM (QEMU) spent handling it before re-entering. This is not a VM exit table — exits handled
 * inside the kernel are invisible on such hosts.
 */
import type { HostIndex } from '../host/index.js';
import type { MergedBatch } from '../merge/merged-event.js';
import type { MergeConsumer } from '../merge/consumer.js';
import { GUEST, isInRun, PREEMPTED, USERSPACE } from '../kvm/states.js';
import { SampleBuffer } from './samples.js';


/** KVM_RUN bookkeeping of one host thread. Times are timeline cycles. */
export class ThreadRuns {
  /** The tracker state of the current segment, and where it started. */
  state = -1;
  since = 0;
  /** Where the current KVM_RUN started; NaN when it started before the trace (not a complete run). */
  runStart = NaN;
  /** Switched-out time in the current KVM_RUN so far. */
  runOff = 0;
  /** Complete KVM_RUN spans (load → unload, both traced). */
  runs = 0;
  runCycles = 0;
  /** Time inside complete KVM_RUN spans with the thread switched out. */
  offCpuCycles = 0;
  /** Time running guest code (every GUEST segment, up to the host trace's last event). */
  guestCycles = 0;
  /** Time from a KVM_RUN's end to the next one's start. */
  outsideCycles = 0;
  /** User-space time since the last KVM_RUN ended (counted once the next one starts). */
  outsidePending = 0;
  pendingExit: string | undefined;
  pendingExitT = 0;
  readonly userspaceExits = new Map<string, SampleBuffer>();
  /** kvm_pio per `in|out port` → count. */
  pio = new Map<string, number>();
  constructor(readonly tid: number) {}
}

/** Collects KVM_RUN spans and userspace exits per host thread from the tracker's segments. */
export class KvmRunAnalyzer implements MergeConsumer {
  readonly threads = new Map<number, ThreadRuns>();

  constructor(private readonly index: HostIndex | undefined) {}

  /** Feeds one merged batch (its segment starts). */
  batch(mb: MergedBatch): void {
    const tr = mb.kvm;
    if (!tr || this.index?.kind !== 'kvm-run') return;
    for (let i = 0; i < tr.n; i++) {
      const tid = tr.tid[i];
      const state = tr.state[i];
      let th = this.threads.get(tid);
      if (!th) {
        if (!isInRun(state) && state !== USERSPACE) continue;
        this.threads.set(tid, (th = new ThreadRuns(tid)));
        th.pio = this.index.pioPorts.get(tid) ?? new Map();
      }
      const blk = mb.blk[tr.row[i]];
      const r = mb.row[tr.row[i]];
      // A KVM_RUN whose start is traced begins at the thread's own kvm_fpu load; else it began before the trace.
      const atFpu = blk.pid[r] === tid && blk.nameOf(r) === 'kvm_fpu';
      this.segment(th, mb.t[tr.row[i]], state, tr.arg[i], atFpu);
    }
  }

  private segment(th: ThreadRuns, t: number, state: number, arg: number, atFpu: boolean): void {
    const prev = th.state;
    this.close(th, t);
    if (isInRun(state) && !isInRun(prev)) {
      th.runStart = atFpu ? t : NaN;
      th.runOff = 0;
      if (prev === USERSPACE) th.outsideCycles += th.outsidePending;
      if (prev === USERSPACE && th.pendingExit !== undefined) {
        let b = th.userspaceExits.get(th.pendingExit);
        if (!b) th.userspaceExits.set(th.pendingExit, (b = new SampleBuffer()));
        b.push(t - th.pendingExitT);
        th.pendingExit = undefined;
      }
    } else if (state === USERSPACE && isInRun(prev)) {
      th.outsidePending = 0;
      if (!Number.isNaN(th.runStart)) {
        th.runs++;
        th.runCycles += t - th.runStart;
        th.offCpuCycles += th.runOff;
      }
    }
    if (state === USERSPACE && arg >= 0) {
      th.pendingExit = this.index!.names[arg];
      th.pendingExitT = t;
    }
    th.state = state;
    th.since = t;
  }

  /** Adds the current segment's time, up to t, to what it counts toward. */
  private close(th: ThreadRuns, t: number): void {
    const d = t - th.since;
    if (th.state === GUEST) th.guestCycles += d;
    else if (th.state === PREEMPTED) th.runOff += d;
    else if (th.state === USERSPACE) th.outsidePending += d;
  }

  /** Closes the pass at the host trace's last event. */
  end(): void {
    const end = this.index?.lastT ?? 0;
    for (const th of this.threads.values()) this.close(th, end);
  }
}
