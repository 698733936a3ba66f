/**
 * The view's compact index of a merged capture, built in one pass over the merged stream:
 * - one lane per host vCPU thread, drawn from the KVM-run tracker's segments replayed in the merge
 *   (kvm/replay.ts), the states validation judged by: guest mode and, between windows, the time in
 *   the host named by the exit reason; on hosts without kvm_entry/kvm_exit (kvm-pvm), KVM_RUN on CPU,
 *   KVM_RUN switched out, switch-in not traced, and the time in user space named by
 *   kvm_userspace_exit; host lanes end where the host trace ends;
 * - one lane per guest CPU: the running task (sched_switch), idle left empty; markers as points.
 * Host lanes are named after their VM (host/vms.ts), guest lanes after their machine; with a VM
 * selected (`--vm`), only its lanes are built. Times on screen count from the timeline's time 0
 * (merge.ts Timeline.zero), as in the text and the JSON.
 * Everything is typed arrays in {@link IntervalLane}s; nothing keeps events. Memory is bounded by
 * lanes × the per-lane cap (default 1 Mi intervals ≈ 20 MiB) plus the string table.
 */
import type { MergedBatch, MergedEvent } from '../merge/merged-event.js';
import type { MergeConsumer, MergeDone } from '../merge/consumer.js';
import { vcpusWithEvents } from '../merge/validate.js';
import { zeroHostTsc, type Timeline } from '../merge/merge.js';
import type { GuestPlan } from '../merge/plan.js';
import type { HostIndex, WindowKind } from '../host/index.js';
import { fieldsOf, isMarkerEvent } from '../parsers/event-fields.js';
import { EXIT, GUEST, NOT_TRACED, PREEMPTED, USERSPACE } from '../kvm/states.js';
import { DEFAULT_LANE_CAP, IntervalLane } from './lanes.js';
import { vmLabel, vmOf } from '../host/vms.js';
import type { VmSelection } from '../analysis/vm-select.js';

/** Kind codes shared by all lanes (index into {@link TimelineIndex.names}). */
export const GUEST_MODE = 0;
/** KVM_RUN with the vCPU thread switched out. */
export const OFF_CPU = 1;
/** KVM_RUN, switched out, but the thread ran again with no switch-in traced: not checkable. */
export const NOT_TRACED_CODE = 2;

/** The index the view renders from. Times are timeline cycles. */
export class TimelineIndex {
  readonly lanes: IntervalLane[] = [];
  /** Kind code → name (exit reason, task, userspace exit, marker text). */
  readonly names: string[] = ['guest mode', 'KVM_RUN, thread switched out', 'KVM_RUN, switch-in not traced (not checkable)'];
  /** Code → how it is drawn: 'guest', 'host' (exits and user space), 'off', 'unknown', 'task', 'marker'. */
  readonly classes: ('guest' | 'host' | 'off' | 'unknown' | 'task' | 'marker')[] = ['guest', 'off', 'unknown'];
  first = Infinity;
  last = -Infinity;
  /** Timeline time of time 0 on screen: the merge's first event (Timeline.zero). */
  zero = 0;
  /** Its absolute host TSC, for the screen to state (undefined until the timeline is known). */
  zeroHostTsc: bigint | undefined;
  /** The VM the lanes are limited to (`--vm`), by its label. */
  vm: string | undefined;
  events = 0;
  private readonly codes = new Map<string, number>();

  constructor(
    readonly tscKhz: number | undefined,
    readonly windowKind: WindowKind,
  ) {}

  /** The code of a name in a class (names are interned per class). */
  code(cls: 'host' | 'task' | 'marker', name: string): number {
    const key = cls + '\0' + name;
    let c = this.codes.get(key);
    if (c === undefined) {
      c = this.names.length;
      this.names.push(name);
      this.classes.push(cls);
      this.codes.set(key, c);
    }
    return c;
  }

  /** Bytes held by all lanes' arrays. */
  bytes(): number {
    return this.lanes.reduce((a, l) => a + l.bytes(), 0);
  }
}

/** Builds a {@link TimelineIndex} from merged batches: a merge consumer; `index` is complete after `end`. */
export class IndexBuilder implements MergeConsumer {
  readonly index: TimelineIndex;
  private readonly hostLanes = new Map<number, IntervalLane>();
  private readonly guestLanes = new Map<string, IntervalLane>();
  private readonly vcpuOfTid = new Map<number, { vcpu: number; guest: string }>();
  private isGuestSrc: boolean[] = [];
  private machines: string[] = [];
  private readonly laneTid = new Map<IntervalLane, number>();
  /** The tracker's current state per host lane. */
  private readonly laneState = new Map<IntervalLane, number>();

  constructor(
    tscKhz: number | undefined,
    private readonly host: HostIndex | undefined,
    private readonly cap = DEFAULT_LANE_CAP,
    /** Only this VM's lanes (`--vm`). */
    private readonly only?: VmSelection,
  ) {
    this.index = new TimelineIndex(tscKhz, host?.kind ?? 'none');
    if (only) this.index.vm = vmLabel(only.vm);
  }

  /** The sources, the vCPU threads the plans name, and time 0. */
  begin(tl: Timeline, plans: (GuestPlan | undefined)[]): void {
    this.index.zero = tl.zero;
    this.index.zeroHostTsc = zeroHostTsc(tl);
    this.isGuestSrc = tl.sources.map((s) => s.role === 'guest');
    this.machines = tl.sources.map((s) => s.machine);
    plans.forEach((p, i) => {
      if (p) for (const v of p.vcpus.values()) if (v.tid !== undefined) this.vcpuOfTid.set(v.tid, { vcpu: v.vcpu, guest: tl.sources[i].machine });
    });
  }

  /** The lane of host thread `tid`, made on its first drawn segment (`comm` names it). */
  private hostLane(tid: number, comm: string): IntervalLane {
    let l = this.hostLanes.get(tid);
    if (!l) {
      const seen = this.host?.threads.get(tid)?.vcpu ?? -1;
      const v = seen >= 0 ? seen : (this.vcpuOfTid.get(tid)?.vcpu ?? -1);
      const label = `${vmLabel(this.host && vmOf(this.host.vms, tid))} ` + (v >= 0 ? `vCPU ${v} ` : '') + `${tid} ${comm}`;
      l = new IntervalLane(label, 'vcpu', (v >= 0 ? v : 999) * 1e7 + tid, this.cap);
      this.laneTid.set(l, tid);
      this.hostLanes.set(tid, l);
      this.index.lanes.push(l);
    }
    return l;
  }

  private guestLane(m: MergedEvent): IntervalLane {
    const key = m.src + ':' + m.ev.cpu;
    let l = this.guestLanes.get(key);
    if (!l) {
      const v = m.vcpu >= 0 && m.vcpu !== m.ev.cpu ? ` (vCPU ${m.vcpu})` : '';
      l = new IntervalLane(`${this.machines[m.src]} CPU ${m.ev.cpu}${v}`, 'cpu', 1e15 + m.src * 1e6 + m.ev.cpu, this.cap);
      this.guestLanes.set(key, l);
      this.index.lanes.push(l);
    }
    return l;
  }

  /** Feeds one merged batch. */
  batch(mb: MergedBatch): void {
    const ix = this.index;
    const tr = mb.kvm;
    let ti = 0;
    const events = mb.events();
    for (let k = 0; k < mb.n; k++) {
      const m = events[k];
      ix.events++;
      if (m.t < ix.first) ix.first = m.t;
      if (m.t > ix.last) ix.last = m.t;
      if (tr) for (; ti < tr.n && tr.row[ti] === k; ti++) this.segment(m, tr.tid[ti], tr.state[ti], tr.arg[ti]);
      const ev = m.ev;
      if (!this.isGuestSrc[m.src] || (this.only && !this.only.guest(this.machines[m.src]))) continue;
      const f = fieldsOf(mb.blk[k], mb.row[k]);
      if (f?.kind === 'sched_switch') {
        const sw = f.sw;
        if (sw) this.guestLane(m).switchTo(m.t, sw.nextPid === 0 ? -1 : ix.code('task', `${sw.nextComm}-${sw.nextPid}`));
      } else if (isMarkerEvent(ev.name)) this.guestLane(m).point(m.t, ix.code('marker', ev.body.trim()));
      else this.guestLane(m);
    }
  }

  /** A tracker segment of host thread `tid` starting at event `m`: the lane's next interval. */
  private segment(m: MergedEvent, tid: number, state: number, arg: number): void {
    const ix = this.index;
    const names = this.host!.names;
    const code =
      state === GUEST ? GUEST_MODE
      : state === EXIT ? ix.code('host', names[arg] || 'exit')
      : state === PREEMPTED ? OFF_CPU
      : state === NOT_TRACED ? NOT_TRACED_CODE
      : state === USERSPACE ? ix.code('host', arg >= 0 ? names[arg] : 'user space')
      : -1;
    let l = this.hostLanes.get(tid);
    if (!l) {
      if (code < 0 || (this.only && !this.only.hostThread(tid))) return;
      l = this.hostLane(tid, m.ev.pid === tid ? m.ev.comm : (this.host!.comms.get(tid) ?? '?'));
    }
    const prev = this.laneState.get(l);
    this.laneState.set(l, state);
    // A kvm_userspace_exit names the user-space stretch that began at the unload.
    if (state === USERSPACE && prev === USERSPACE && arg >= 0) l.relabelOpen(code);
    else l.switchTo(m.t, code);
  }

  /** Closes every lane at the end of the trace (host lanes where the host trace ends) and orders the lanes. */
  end(done: MergeDone): void {
    const ix = this.index;
    const seen = vcpusWithEvents(done.result);
    for (const l of ix.lanes) {
      const tid = this.laneTid.get(l);
      l.close(tid !== undefined && this.host ? this.host.lastT : ix.last);
      // This merge's guests' vCPU threads first, then other threads (other VMs on the host).
      const own = tid !== undefined ? this.vcpuOfTid.get(tid) : undefined;
      if (tid !== undefined && !(own && seen.has(own.guest + ':' + own.vcpu))) l.order += 1e13;
    }
    ix.lanes.sort((a, b) => a.order - b.order);
    if (!Number.isFinite(ix.first)) ix.first = ix.last = 0;
  }
}
