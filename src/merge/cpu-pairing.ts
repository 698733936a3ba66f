/**
 * Which vCPU runs each guest CPU. KVM's debugfs `vcpuN` (and kvm_entry's `vcpu N`) is the vCPU id,
 * which QEMU makes the APIC id; the guest numbers its CPUs in its own order, so CPU n need not be
 * vCPU n (trace-cmd had to fix exactly this). The pairing is taken from facts where the inputs have
 * them — the guest bundle's `cpuToVcpu` (the guest script reads each CPU's APIC id), the sync points
 * (a CPU's markers land on one vCPU thread: estimate/evidence.ts), a guest with one CPU in a VM
 * with one vCPU — and otherwise CPU n = vCPU n is an assumption, and the report says so.
 */

/** How guest CPUs pair with vCPUs, and on what that rests. */
export interface CpuPairing {
  /** guest CPU → vCPU, for the CPUs a fact pairs; the others are taken as CPU n = vCPU n. */
  map: Map<number, number>;
  /** What the pairing rests on, for the report. */
  from: string;
  /** True when some CPU is paired by assumption (CPU n = vCPU n) rather than by a fact. */
  assumed: boolean;
}

/** What the inputs say, in order of trust. */
export interface PairingFacts {
  /** The guest bundle's `guest.cpuToVcpu`. */
  bundle?: Map<number, number>;
  /** Learnt from sync points (estimate/evidence.ts), with a sentence saying how. */
  sync?: { map: Map<number, number>; from: string; complete: boolean };
  /** The guest's CPU count, when a header or the bundle says. */
  guestCpus?: number;
  /** The VM's own vCPUs (bundle metadata, trace-cmd's GUEST option), when known. */
  vmVcpus?: number[];
}

/** The pairing the facts support. */
export function cpuPairing(f: PairingFacts): CpuPairing {
  if (f.bundle) return { map: f.bundle, from: "the guest bundle's guest.cpuToVcpu", assumed: false };
  if (f.sync) return { map: f.sync.map, from: f.sync.from, assumed: !f.sync.complete };
  if (f.guestCpus === 1 && f.vmVcpus?.length === 1)
    return { map: new Map([[0, f.vmVcpus[0]]]), from: 'the guest has 1 CPU and the VM 1 vCPU', assumed: false };
  // One CPU is the guest's boot CPU, and QEMU's boot vCPU is vCPU 0 (APIC id 0).
  if (f.guestCpus === 1 && f.vmVcpus === undefined) return { map: new Map([[0, 0]]), from: 'the guest has 1 CPU, its boot CPU: vCPU 0', assumed: false };
  return { map: new Map(), from: 'nothing in the inputs pairs them', assumed: true };
}

/** The vCPU of a guest CPU under a pairing. */
export function vcpuOf(p: CpuPairing, cpu: number): number {
  return p.map.get(cpu) ?? cpu;
}
