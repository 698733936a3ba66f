/**
 * The states of a host thread that runs a vCPU, as the KVM-run tracker (tracker.ts) derives them,
 * and what each means for validation and for the pictures drawn of it. A state holds from the host
 * event that started it until the next state of the same thread.
 *
 * | state       | host kind   | meaning                                                     | a guest event there |
 * |-------------|-------------|-------------------------------------------------------------|---------------------|
 * | GUEST       | both        | running guest code: kvm_entry → kvm_exit, or inside KVM_RUN on a CPU | inside   |
 * | EXIT        | entry-exit  | in the host after a kvm_exit (arg: the exit reason)         | outside             |
 * | OUT         | both        | before the thread's first run evidence, which shows it was out | outside          |
 * | PREEMPTED   | kvm-run     | inside KVM_RUN, switched out (sched_switch)                 | outside             |
 * | USERSPACE   | kvm-run     | KVM_RUN returned (kvm_fpu unload) until the next one (arg: the userspace exit) | outside |
 * | NOT_TRACED  | kvm-run     | switched out, but the thread ran again with no switch-in traced | not checkable   |
 * | UNKNOWN     | both        | nothing tells (no run evidence at all)                      | not checkable       |
 */

/** A state code (a small integer, stored in typed arrays). */
export type KvmState = number;

/** Nothing tells what the thread was doing. */
export const UNKNOWN = 0;
/** Running guest code. */
export const GUEST = 1;
/** In the host handling a VM exit (entry-exit hosts); the segment's arg is the reason's id. */
export const EXIT = 2;
/** Known out of guest mode before the thread's first run evidence (no exit reason to give). */
export const OUT = 3;
/** Inside KVM_RUN but switched out (kvm-run hosts). */
export const PREEMPTED = 4;
/** Outside KVM_RUN, in the VMM (kvm-run hosts); the segment's arg is the userspace exit's id, or -1. */
export const USERSPACE = 5;
/** Switched out, then seen running with no switch-in traced: from the latest lower bound to the proof. */
export const NOT_TRACED = 6;

/** Names of the states, for reports and tests. */
export const STATE_NAMES: readonly string[] = ['unknown', 'guest', 'exit', 'out', 'preempted', 'userspace', 'not checkable (switch-in not traced)'];

/**
 * The rule that judges a guest event in each state, as reports give it (with the segment's arg —
 * an exit or userspace-exit reason — when it has one).
 */
export function stateRule(s: KvmState, reason: string | undefined): string {
  const why = reason !== undefined ? ` (${reason})` : '';
  switch (s) {
    case GUEST:
      return 'inside a guest-mode window';
    case EXIT:
      return `outside any window: the vCPU thread was in the host after a kvm_exit${why}`;
    case OUT:
      return "outside any window: before the vCPU thread's first run evidence, which shows it out of guest mode";
    case PREEMPTED:
      return 'outside any window: the vCPU thread was inside KVM_RUN but switched out';
    case USERSPACE:
      return `outside any window: the vCPU thread was outside KVM_RUN, in the VMM${why}`;
    case NOT_TRACED:
      return 'not checkable (switch-in not traced): the vCPU thread ran again with no sched_switch to it';
    default:
      return 'not checkable: the host trace has no run evidence of the vCPU thread';
  }
}

/** True where a guest event is inside its vCPU's guest-mode windows. */
export function isInside(s: KvmState): boolean {
  return s === GUEST;
}

/** True where a guest event cannot be judged (the state is not known). */
export function isNotCheckable(s: KvmState): boolean {
  return s === UNKNOWN || s === NOT_TRACED;
}

/** True inside a KVM_RUN span (kvm-run hosts): on a CPU or not. */
export function isInRun(s: KvmState): boolean {
  return s === GUEST || s === PREEMPTED || s === NOT_TRACED;
}
