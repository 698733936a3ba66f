/**
 * Which host thread runs which vCPU, for the analyses: first from the clock plans (bundle
 * metadata, `--vcpu-thread`, kvm_entry evidence), then from the host index (`vcpu N` of a thread's
 * first kvm_entry) — the only evidence on host-only traces and for other VMs' threads on the same
 * host. Task names are learned from the stream.
 */
import type { Timeline } from '../merge/merge.js';
import type { GuestPlan } from '../merge/plan.js';
import type { MergedBatch, MergedEvent } from '../merge/merged-event.js';
import type { MergeConsumer, MergeDone } from '../merge/consumer.js';
import { vcpusWithEvents } from '../merge/validate.js';
import type { HostIndex } from '../host/index.js';
import { vmLabel, vmOf, type HostVm } from '../host/vms.js';

/** What is known about one host thread that runs a vCPU. */
export interface VcpuThread {
  tid: number;
  comm: string;
  /** vCPU index, -1 until known. */
  vcpu: number;
  /** Machine name of the guest it runs, when a guest source of this merge maps to it. */
  guest: string | undefined;
}

/** Resolves host threads to vCPUs and gives every event its vCPU pairing key; a merge consumer that learns from the stream. */
export class VcpuThreads implements MergeConsumer {
  readonly byTid = new Map<number, VcpuThread>();
  /** Source index → machine name. */
  private machines: string[] = [];
  /** Source index → true for guest sources. */
  private guestSrc: boolean[] = [];

  constructor(private readonly index?: HostIndex) {}

  /** The sources, and the threads the plans name. */
  begin(tl: Timeline, plans: (GuestPlan | undefined)[]): void {
    this.machines = tl.sources.map((s) => s.machine);
    this.guestSrc = tl.sources.map((s) => s.role === 'guest');
    plans.forEach((p, i) => {
      if (!p) return;
      for (const v of p.vcpus.values())
        if (v.tid !== undefined && !this.byTid.has(v.tid))
          this.byTid.set(v.tid, { tid: v.tid, comm: '', vcpu: v.vcpu, guest: tl.sources[i].machine });
    });
  }

  /** Learns from every event of a batch (see {@link note}). */
  batch(mb: MergedBatch): void {
    for (const m of mb.events()) this.note(m);
  }

  /** `machine:vcpu` of every guest vCPU that had events in this merge, once it has ended (validate.ts vcpusWithEvents). */
  private guestVcpusSeen = new Set<string>();

  /** The merge's end: which guest vCPUs had events. */
  end(done: MergeDone): void {
    this.guestVcpusSeen = vcpusWithEvents(done.result);
  }

  /** True for events of a guest source (with or without a host to map to). */
  isGuest(m: MergedEvent): boolean {
    return this.guestSrc[m.src];
  }

  /** The vCPU index of a host thread, -1 when unknown. */
  hostVcpu(tid: number): number {
    return this.byTid.get(tid)?.vcpu ?? -1;
  }

  /** Learns from a host event: kvm_entry names the vCPU of its thread, and task names are learned (guest events teach nothing here). */
  note(m: MergedEvent): void {
    if (this.guestSrc[m.src]) return;
    const ev = m.ev;
    if (ev.name !== 'kvm_entry' && ev.name !== 'kvm_exit' && ev.name !== 'kvm_fpu') {
      const known = this.byTid.get(ev.pid);
      if (known && !known.comm) known.comm = ev.comm;
      return;
    }
    let t = this.byTid.get(ev.pid);
    if (!t) this.byTid.set(ev.pid, (t = { tid: ev.pid, comm: ev.comm, vcpu: this.index?.threads.get(ev.pid)?.vcpu ?? -1, guest: undefined }));
    if (!t.comm || t.comm === '<...>') t.comm = ev.comm;
  }

  /** The machine of a merged event's source. */
  machine(m: MergedEvent): string {
    return this.machines[m.src];
  }

  /**
   * The key that pairs events of one vCPU across host and guest: `machine:vcpu` for guest events
   * and for host threads known to run that vCPU; `tid:T` for other host threads (so host → host
   * pairs stay on one thread).
   */
  vcpuKey(m: MergedEvent): string {
    // Without a host (no plan), a guest event's vCPU is its CPU.
    if (this.guestSrc[m.src]) return `${this.machines[m.src]}:${m.vcpu >= 0 ? m.vcpu : m.ev.cpu}`;
    const t = this.byTid.get(m.ev.pid);
    return t?.guest !== undefined ? `${t.guest}:${t.vcpu}` : `tid:${m.ev.pid}`;
  }

  /**
   * The guest a host thread runs, when the guest's trace has events of that vCPU. The plan may
   * name a thread for a vCPU index the guest does not have (another VM's thread seen running
   * `vcpu 1` in kvm_entry); such threads are not attributed.
   */
  guestOf(tid: number): string | undefined {
    const t = this.byTid.get(tid);
    return t?.guest !== undefined && this.guestVcpusSeen.has(`${t.guest}:${t.vcpu}`) ? t.guest : undefined;
  }

  /** The VM a host thread belongs to, as the host index has it (host/vms.ts); undefined when no input places it. */
  vmOf(tid: number): HostVm | undefined {
    return this.index ? vmOf(this.index.vms, tid) : undefined;
  }

  /** How the VM of a host thread is called: its name, `QEMU <pid>`, or `?` (vms.ts vmLabel). */
  vmLabel(tid: number): string {
    return vmLabel(this.vmOf(tid));
  }

  /** A label for a host thread: `comm-tid (vCPU n of VM x)`. */
  label(tid: number): string {
    const t = this.byTid.get(tid);
    const v = t && t.vcpu >= 0 ? `vCPU ${t.vcpu} of ` : '';
    return `${t?.comm || '?'}-${tid} (${v}VM ${this.vmLabel(tid)})`;
  }
}
