/**
 * The contract between the one thing that knows what each vCPU is doing (today the validator's
 * per-vCPU state; the KVM-run tracker of issue 13 once it lands) and its listeners (the Perfetto
 * vCPU tracks, …): a stream of transitions in timeline order.
 */

/**
 * What a vCPU is doing: running guest code; in the host handling an exit; inside KVM_RUN but its
 * thread switched out; out of KVM_RUN (QEMU in user space); or not known from the trace.
 */
export type VcpuRunState = 'guest' | 'exit' | 'preempted' | 'userspace' | 'unknown';

/** Listens to the vCPU state transitions of a merge. */
export interface VcpuTransitionListener {
  /**
   * vCPU `vcpu` of guest source `src`, run by host thread `tid`, enters `state` at timeline time
   * `t` (host TSC cycles from the timeline base); `exitReason` names the exit for 'exit', else ''.
   */
  transition(t: number, src: number, vcpu: number, tid: number, state: VcpuRunState, exitReason: string): void;
  /**
   * A sync point was matched: the host's exit event at `hostT` (kvm_pio on the sync port, or a
   * CPUID exit) lies inside the bracket of the guest's kvmsync marker at `guestT`.
   */
  syncPoint?(hostT: number, guestT: number, src: number, vcpu: number, tid: number, kind: 'pio' | 'cpuid', seq: number): void;
}
