/**
 * Which VM an analysis looks at (`--vm NAME|PID`), read from the host index's VMs (host/vms.ts),
 * and the sentences that say which VMs a host trace has — for a selection that matches nothing,
 * and for a report that mixes several VMs.
 */
import { UserError } from '../model/errors.js';
import type { HostIndex } from '../host/index.js';
import { findVm, vmLabel, vmOf, type HostVm } from '../host/vms.js';
import type { MergedEvent } from '../merge/merged-event.js';
import type { VcpuThreads } from './vcpu-threads.js';

/** A VM chosen by `--vm`: its vCPU threads, and the guests of this merge that run on it. */
export interface VmSelection {
  vm: HostVm;
  /** True for the VM's own host threads (its vCPU threads; with a TGID column, every thread of its QEMU). */
  hostThread: (tid: number, tgid?: number) => boolean;
  /** True for a guest machine of this merge that runs on the VM. */
  guest: (machine: string) => boolean;
}

/** Host threads with run evidence that no input places in a VM (other VMs, nobody named). */
export function unplacedThreads(index: HostIndex): number[] {
  return [...index.threads.keys()].filter((tid) => !vmOf(index.vms, tid)).sort((a, b) => a - b);
}

/** `VM NAME (QEMU pid P, vCPU threads T, …)` for each VM, then the threads no input places. */
export function vmsText(index: HostIndex | undefined): string {
  if (!index) return 'no host trace given, so no VMs are known';
  const parts = index.vms.map((v) => {
    const pid = v.qemuPid !== undefined && v.name !== undefined ? `QEMU pid ${v.qemuPid}, ` : '';
    return `VM ${vmLabel(v)} (${pid}vCPU thread${v.threads.length === 1 ? '' : 's'} ${v.threads.join(', ') || 'none seen'})`;
  });
  const rest = unplacedThreads(index);
  if (rest.length) parts.push(`vCPU thread${rest.length === 1 ? '' : 's'} ${rest.join(', ')} of no VM the inputs name`);
  return parts.length ? parts.join('; ') : 'no vCPU threads at all';
}

/** True when the host trace has vCPU threads of more than one VM (threads nobody places count as another). */
export function severalVms(index: HostIndex | undefined): boolean {
  if (!index) return false;
  return index.vms.filter((v) => v.threads.length).length + (unplacedThreads(index).length ? 1 : 0) > 1;
}

/** The VM `--vm SPEC` names (host/vms.ts findVm), or a UserError naming the VMs there are. */
export function selectVm(index: HostIndex | undefined, spec: string): VmSelection {
  const vm = index ? findVm(index.vms, spec) : undefined;
  if (!vm)
    throw new UserError(
      `--vm ${spec}: no VM of that name, QEMU pid or id in these inputs, which have: ${vmsText(index)}`,
    );
  const threads = new Set(vm.threads);
  return {
    vm,
    hostThread: (tid, tgid = -1) => threads.has(tid) || (vm.qemuPid !== undefined && tgid === vm.qemuPid),
    guest: (machine) => vm.guests.includes(machine),
  };
}

/** The events of a selected VM: its guests' events, and host events of its threads. */
export function eventsOfVm(sel: VmSelection, vt: VcpuThreads): (m: MergedEvent) => boolean {
  return (m) => (vt.isGuest(m) ? sel.guest(vt.machine(m)) : sel.hostThread(m.ev.pid, m.ev.tgid));
}
