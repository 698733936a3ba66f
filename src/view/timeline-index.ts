/**
 * The view's compact index of a merged capture, built in one pass over the merged stream:
 * - one lane per host vCPU thread: guest mode (kvm_entry → kvm_exit) and, between them, the time
 *   in the host named by the exit reason; on hosts without kvm_entry/kvm_exit (kvm-pvm), KVM_RUN
 *   on CPU, KVM_RUN switched out, and the time in user space named by kvm_userspace_exit;
 * - one lane per guest CPU: the running task (sched_switch), idle left empty; markers as points.
 * Everything is typed arrays in {@link IntervalLane}s; nothing keeps events. Memory is bounded by
 * lanes × the per-lane cap (default 1 Mi intervals ≈ 20 MiB) plus the string table.
 */
import type { MergedEvent } from '../merge/merged-event.js';
import type { Timeline } from '../merge/merge.js';
import type { GuestPlan } from '../merge/plan.js';
import type { WindowKind } from '../merge/validate.js';
import { isMarkerEvent, kvmEntryVcpu, kvmFpu, schedSwitch } from '../parsers/event-fields.js';
import { exitReasonText } from '../analysis/exit-reasons.js';
import { userspaceExitReason } from '../analysis/kvm-run.js';
import { DEFAULT_LANE_CAP, IntervalLane } from './lanes.js';

/** Kind codes shared by all lanes (index into {@link TimelineIndex.names}). */
export const GUEST_MODE = 0;
/** KVM_RUN with the vCPU thread switched out. */
export const OFF_CPU = 1;

/** The index the view renders from. Times are timeline cycles. */
export class TimelineIndex {
  readonly lanes: IntervalLane[] = [];
  /** Kind code → name (exit reason, task, userspace exit, marker text). */
  readonly names: string[] = ['guest mode', 'KVM_RUN, thread switched out'];
  /** Code → how it is drawn: 'guest', 'host' (exits and user space), 'off', 'task', 'marker'. */
  readonly classes: ('guest' | 'host' | 'off' | 'task' | 'marker')[] = ['guest', 'off'];
  first = Infinity;
  last = -Infinity;
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

/** Builds a {@link TimelineIndex} from merged batches. */
export class IndexBuilder {
  readonly index: TimelineIndex;
  private readonly hostLanes = new Map<number, IntervalLane>();
  private readonly guestLanes = new Map<string, IntervalLane>();
  private readonly vcpuOfTid = new Map<number, { vcpu: number; guest: string }>();
  private readonly inRun = new Map<number, boolean>();
  private readonly isGuestSrc: boolean[];
  private readonly machines: string[];
  private readonly laneTid = new Map<IntervalLane, number>();
  /** `src:vcpu` of guest vCPUs with events, to tell this guest's vCPU threads from other VMs'. */
  private readonly guestVcpusSeen = new Set<string>();

  constructor(
    tl: Timeline,
    plans: (GuestPlan | undefined)[],
    tscKhz: number | undefined,
    windowKind: WindowKind,
    private readonly cap = DEFAULT_LANE_CAP,
  ) {
    this.index = new TimelineIndex(tscKhz, windowKind);
    this.isGuestSrc = tl.sources.map((s) => s.role === 'guest');
    this.machines = tl.sources.map((s) => s.machine);
    plans.forEach((p, i) => {
      if (p) for (const v of p.vcpus.values()) if (v.tid !== undefined) this.vcpuOfTid.set(v.tid, { vcpu: v.vcpu, guest: tl.sources[i].machine });
    });
  }

  private hostLane(m: MergedEvent, vcpu: number): IntervalLane {
    let l = this.hostLanes.get(m.ev.pid);
    if (!l) {
      const known = this.vcpuOfTid.get(m.ev.pid);
      const v = vcpu >= 0 ? vcpu : (known?.vcpu ?? -1);
      const label = (v >= 0 ? `vCPU ${v} ` : '') + `${m.ev.pid} ${m.ev.comm}`;
      l = new IntervalLane(label, 'vcpu', (v >= 0 ? v : 999) * 1e7 + m.ev.pid, this.cap);
      this.laneTid.set(l, m.ev.pid);
      this.hostLanes.set(m.ev.pid, l);
      this.index.lanes.push(l);
    } else if (vcpu >= 0 && !l.label.startsWith('vCPU ')) {
      // The thread's first event was a kvm_exit; its first kvm_entry names the vCPU.
      l.label = `vCPU ${vcpu} ` + l.label;
      l.order = vcpu * 1e7 + m.ev.pid;
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

  /** Feeds one batch of merged events. */
  handle(batch: MergedEvent[]): void {
    const ix = this.index;
    for (const m of batch) {
      ix.events++;
      if (m.t < ix.first) ix.first = m.t;
      if (m.t > ix.last) ix.last = m.t;
      const ev = m.ev;
      if (this.isGuestSrc[m.src]) {
        if (m.vcpu >= 0 && this.guestVcpusSeen.size < 4096) this.guestVcpusSeen.add(this.machines[m.src] + ':' + m.vcpu);
        if (ev.name === 'sched_switch') {
          const sw = schedSwitch(ev.body);
          if (sw) this.guestLane(m).switchTo(m.t, sw.nextPid === 0 ? -1 : ix.code('task', `${sw.nextComm}-${sw.nextPid}`));
        } else if (isMarkerEvent(ev.name)) this.guestLane(m).point(m.t, ix.code('marker', ev.body.trim()));
        else this.guestLane(m);
        continue;
      }
      switch (ev.name) {
        case 'kvm_entry':
          this.hostLane(m, kvmEntryVcpu(ev.body)).switchTo(m.t, GUEST_MODE);
          break;
        case 'kvm_exit':
          this.hostLane(m, -1).switchTo(m.t, ix.code('host', exitReasonText(ev.body) || 'exit'));
          break;
        case 'kvm_fpu': {
          if (ix.windowKind !== 'kvm-run') break;
          const f = kvmFpu(ev.body);
          const l = this.hostLane(m, -1);
          if (f === 1) {
            this.inRun.set(ev.pid, true);
            l.switchTo(m.t, GUEST_MODE);
          } else if (f === -1) {
            this.inRun.set(ev.pid, false);
            l.switchTo(m.t, ix.code('host', 'user space'));
          }
          break;
        }
        case 'kvm_userspace_exit': {
          const l = this.hostLanes.get(ev.pid);
          if (l && ix.windowKind === 'kvm-run' && !this.inRun.get(ev.pid)) l.relabelOpen(ix.code('host', userspaceExitReason(ev.body)));
          break;
        }
        case 'sched_switch': {
          if (ix.windowKind !== 'kvm-run') break;
          const sw = schedSwitch(ev.body);
          if (!sw) break;
          const out = this.hostLanes.get(sw.prevPid);
          if (out && this.inRun.get(sw.prevPid) && out.openKind() === GUEST_MODE) out.switchTo(m.t, OFF_CPU);
          const inn = this.hostLanes.get(sw.nextPid);
          if (inn && this.inRun.get(sw.nextPid) && inn.openKind() === OFF_CPU) inn.switchTo(m.t, GUEST_MODE);
          break;
        }
      }
    }
  }

  /** Closes every lane at the end of the trace and orders the lanes; returns the index. */
  finish(): TimelineIndex {
    const ix = this.index;
    for (const l of ix.lanes) {
      l.close(ix.last);
      // This merge's guests' vCPU threads first, then other threads (other VMs on the host).
      const tid = this.laneTid.get(l);
      const own = tid !== undefined ? this.vcpuOfTid.get(tid) : undefined;
      if (tid !== undefined && !(own && this.guestVcpusSeen.has(own.guest + ':' + own.vcpu))) l.order += 1e13;
      if (own && this.guestVcpusSeen.has(own.guest + ':' + own.vcpu)) l.label += ` (${own.guest})`;
    }
    ix.lanes.sort((a, b) => a.order - b.order);
    if (!Number.isFinite(ix.first)) ix.first = ix.last = 0;
    return ix;
  }
}
