/**
 * The VMs on the host and which vCPU threads each one has, for the host index (index.ts). What
 * names a VM, in order of trust: a host bundle's `vms` (name, QEMU pid, vCPU threads from
 * debugfs), a host trace.dat's GUEST option (name, vCPU threads), `--vcpu-thread` (threads of the
 * guest being merged), the trace's TGID column (QEMU's pid). Threads with run evidence that none
 * of these place belong to a VM nobody names: they stay apart (`vmOf` gives undefined), since two
 * such threads may be of two VMs. A VM without a name takes the name of the guest merged with it
 * (see {@link attachGuest}).
 */

/** A VM as the inputs describe it before the host trace is read. */
export interface KnownVm {
  name?: string;
  qemuPid?: number;
  /** An id the inputs give it (a trace.dat GUEST option's trace id, `0x…`). */
  id?: string;
  /** vCPU → host thread. */
  vcpus: Map<number, number>;
  /** Where this comes from (`host bundle`, `trace.dat GUEST option`, `--vcpu-thread`). */
  from: string;
}

/** A VM on the host. */
export interface HostVm {
  /** Its name (bundle, GUEST option, or the guest merged with it); undefined when nothing names it. */
  name: string | undefined;
  /** QEMU's pid (bundle metadata, or the TGID column); undefined when unknown. */
  qemuPid: number | undefined;
  /** An id the inputs give it (trace.dat GUEST option: the guest's trace id), for a VM with no name. */
  id: string | undefined;
  /** Its vCPU threads (tids), ascending. */
  threads: number[];
  /** Machine names of the guests of this merge that run on it. */
  guests: string[];
  /** Where it is known from. */
  from: string;
}

/** A tracked host thread, as the index has it. */
interface ThreadFacts {
  tid: number;
  tgid: number;
}

/** Groups the tracked threads into VMs: the known VMs first (merged where they share a thread), then one VM per TGID. */
export function groupVms(known: KnownVm[], threads: Iterable<ThreadFacts>): HostVm[] {
  const vms: HostVm[] = [];
  const byTid = new Map<number, HostVm>();
  for (const k of known) {
    const tids = [...k.vcpus.values()];
    let vm = tids.map((t) => byTid.get(t)).find((v) => v !== undefined) ?? vms.find((v) => k.qemuPid !== undefined && v.qemuPid === k.qemuPid);
    if (!vm) vms.push((vm = { name: undefined, qemuPid: undefined, id: undefined, threads: [], guests: [], from: k.from }));
    vm.name ??= k.name || undefined;
    vm.qemuPid ??= k.qemuPid;
    vm.id ??= k.id;
    for (const t of tids) if (!byTid.has(t)) byTid.set(t, vm), vm.threads.push(t);
  }
  for (const th of threads) {
    if (byTid.has(th.tid) || th.tgid < 0) continue;
    let vm = vms.find((v) => v.qemuPid === th.tgid);
    if (!vm) vms.push((vm = { name: undefined, qemuPid: th.tgid, id: undefined, threads: [], guests: [], from: 'TGID column' }));
    byTid.set(th.tid, vm);
    vm.threads.push(th.tid);
  }
  for (const vm of vms) vm.threads.sort((a, b) => a - b);
  return vms;
}

/** The VM a host thread belongs to, or undefined when nothing places it. */
export function vmOf(vms: readonly HostVm[], tid: number): HostVm | undefined {
  return vms.find((v) => v.threads.includes(tid));
}

/** Notes that guest `machine` runs on the VM of these threads (the plan's); a VM nobody named takes the guest's name. */
export function attachGuest(vms: HostVm[], machine: string, tids: number[]): void {
  for (const tid of tids) {
    let vm = vmOf(vms, tid);
    if (!vm) vms.push((vm = { name: undefined, qemuPid: undefined, id: undefined, threads: [tid], guests: [], from: `the clock plan of guest ${machine}` }));
    if (!vm.guests.includes(machine)) vm.guests.push(machine);
    vm.name ??= machine;
  }
}

/** How a VM is called in tables and lanes: its name, else `QEMU <pid>`, else `id <id>`, else `?` (a thread no input places). */
export function vmLabel(vm: HostVm | undefined): string {
  return vm?.name ?? (vm?.qemuPid !== undefined ? `QEMU ${vm.qemuPid}` : vm?.id !== undefined ? `id ${vm.id}` : '?');
}

/** The VM `--vm NAME|PID|ID` names: by name (its own, or a guest's on it), else by QEMU pid, else by id. */
export function findVm(vms: readonly HostVm[], spec: string): HostVm | undefined {
  const byName = vms.find((v) => v.name === spec || v.guests.includes(spec));
  if (byName) return byName;
  if (/^\d+$/.test(spec)) return vms.find((v) => v.qemuPid === Number(spec));
  const id = spec.replace(/^id /, '').toLowerCase();
  return vms.find((v) => v.id?.toLowerCase() === id);
}
