/**
 * What a host without kvm_entry/kvm_exit still says about its vCPUs (kvm-pvm on this machine,
 * see shared/kvm-lab.md): KVM_RUN spans (kvm_fpu load → unload on the vCPU thread), the thread's
 * sched-out gaps inside them, and why each KVM_RUN returned to user space (kvm_userspace_exit,
 * traced after the unload). A userspace exit's duration runs from kvm_userspace_exit to the next
 * kvm_fpu load on the thread: the time the VMM (QEMU) spent handling it before re-entering.
 * This is not a VM exit table — exits handled inside the kernel are invisible on such hosts.
 */
import type { MergedEvent } from '../merge/merged-event.js';
import { kvmFpu, kvmPioPort, schedSwitch } from '../parsers/event-fields.js';
import { SampleBuffer } from './samples.js';

/** KVM_RUN bookkeeping of one host thread. Times are timeline cycles. */
export class ThreadRuns {
  inRun = false;
  runStart = 0;
  onCpu = true;
  offSince = 0;
  runs = 0;
  runCycles = 0;
  /** Time inside KVM_RUN with the thread switched out. */
  offCpuCycles = 0;
  /** Time from a KVM_RUN's end to the next one's start. */
  outsideCycles = 0;
  lastUnload: number | undefined;
  pendingExit: string | undefined;
  pendingExitT = 0;
  readonly userspaceExits = new Map<string, SampleBuffer>();
  /** kvm_pio per `in|out port` → count. */
  readonly pio = new Map<string, number>();
  constructor(readonly tid: number) {}
}

/** `kvm_userspace_exit: reason KVM_EXIT_IO (2)` → `KVM_EXIT_IO`. */
export function userspaceExitReason(body: string): string {
  const i = body.indexOf('reason ');
  if (i < 0) return body.trim() || '?';
  const rest = body.slice(i + 7);
  const p = rest.indexOf(' (');
  return p > 0 ? rest.slice(0, p) : rest.trim();
}

/** Collects KVM_RUN spans and userspace exits per host thread. */
export class KvmRunAnalyzer {
  readonly threads = new Map<number, ThreadRuns>();

  /** Feeds one batch of merged events. */
  handle(batch: MergedEvent[]): void {
    for (const m of batch) {
      if (m.vcpu >= 0) continue;
      const ev = m.ev;
      if (ev.name === 'kvm_fpu') this.fpu(m.t, ev.pid, kvmFpu(ev.body));
      else if (ev.name === 'sched_switch') {
        const sw = schedSwitch(ev.body);
        if (!sw) continue;
        const out = this.threads.get(sw.prevPid);
        if (out?.inRun && out.onCpu) {
          out.onCpu = false;
          out.offSince = m.t;
        }
        const inn = this.threads.get(sw.nextPid);
        if (inn?.inRun && !inn.onCpu) {
          inn.onCpu = true;
          inn.offCpuCycles += m.t - inn.offSince;
        }
      } else if (ev.name === 'kvm_userspace_exit') {
        const th = this.threads.get(ev.pid);
        if (!th) continue;
        th.pendingExit = userspaceExitReason(ev.body);
        th.pendingExitT = m.t;
      } else if (ev.name === 'kvm_pio') {
        const th = this.threads.get(ev.pid);
        if (!th) continue;
        const dir = ev.body.includes('pio_write') ? 'out' : ev.body.includes('pio_read') ? 'in' : '?';
        const key = `${dir} 0x${kvmPioPort(ev.body).toString(16)}`;
        th.pio.set(key, (th.pio.get(key) ?? 0) + 1);
      }
    }
  }

  private fpu(t: number, tid: number, f: 1 | -1 | 0): void {
    let th = this.threads.get(tid);
    if (!th) this.threads.set(tid, (th = new ThreadRuns(tid)));
    if (f === 1 && !th.inRun) {
      th.inRun = true;
      th.onCpu = true;
      th.runStart = t;
      if (th.lastUnload !== undefined) th.outsideCycles += t - th.lastUnload;
      if (th.pendingExit !== undefined) {
        let b = th.userspaceExits.get(th.pendingExit);
        if (!b) th.userspaceExits.set(th.pendingExit, (b = new SampleBuffer()));
        b.push(t - th.pendingExitT);
        th.pendingExit = undefined;
      }
    } else if (f === -1 && th.inRun) {
      th.inRun = false;
      if (!th.onCpu) th.offCpuCycles += t - th.offSince;
      th.runs++;
      th.runCycles += t - th.runStart;
      th.lastUnload = t;
    }
  }
}
