/**
 * The fields kvmtrace interprets, typed: one record per event of the few kinds it reads (KVM run
 * evidence and exits, TSC offset writes, scheduling of threads, trace_marker text). A trace.dat
 * record's are read from its binary fields by name at import (parsers/trace-dat/kvm-fields.ts); an
 * ftrace text event's are parsed from its body, once by the one consumer that reads them in a pass
 * (parsers/event-fields.ts). No consumer parses printed text itself.
 * Formats: include/trace/events/kvm.h, arch/x86/kvm/trace.h, include/trace/events/sched.h.
 */
import type { GuestTsc } from './units.js';

/** A decoded kvm_write_tsc_offset (offsets signed, as KVM holds them). */
export interface TscOffsetWrite {
  vcpu: number;
  /** Offsets: guest − host TSC, signed. */
  prev: bigint;
  next: bigint;
}

/** A decoded sched_switch. */
export interface SchedSwitch {
  prevComm: string;
  prevPid: number;
  nextComm: string;
  nextPid: number;
}

/** A `kvmsync` sync point written by the guest (docs/bundle.md). */
export interface SyncMarker {
  seq: number;
  cpu: number;
  kind: 'cpuid' | 'pio';
  /** The guest's rdtsc just before and just after the exit. */
  t0: GuestTsc;
  t1: GuestTsc;
}

/** The typed fields of one event. */
export type KvmFields =
  /** kvm_entry: the vCPU index, -1 when the event does not say. */
  | { kind: 'kvm_entry'; vcpu: number }
  /** kvm_exit: the reason as the kernel names it (`EPT_MISCONFIG`, `PF excp`), '' when absent. */
  | { kind: 'kvm_exit'; reason: string }
  /** kvm_fpu: +1 load (KVM_RUN starts), -1 unload, 0 otherwise. */
  | { kind: 'kvm_fpu'; fpu: 1 | -1 | 0 }
  /** kvm_pio: direction and port (-1 when absent). */
  | { kind: 'kvm_pio'; dir: 'in' | 'out' | '?'; port: number }
  /** kvm_write_tsc_offset: undefined when its fields are missing. */
  | { kind: 'kvm_write_tsc_offset'; write: TscOffsetWrite | undefined }
  /** kvm_userspace_exit: the exit's name (`KVM_EXIT_IO`). */
  | { kind: 'kvm_userspace_exit'; reason: string }
  /** tsc_offset_zeroed (the stap method): the vCPU, NaN when absent. */
  | { kind: 'tsc_offset_zeroed'; vcpu: number }
  | { kind: 'sched_switch'; sw: SchedSwitch | undefined }
  /** sched_wakeup, sched_wakeup_new, sched_migrate_task: the thread it is about, -1 when absent. */
  | { kind: 'sched_target'; pid: number }
  /** A trace_marker write: its sync point, when it is one. */
  | { kind: 'marker'; sync: SyncMarker | undefined };

/** Names of the events that have typed fields, and the kind of each. */
export const TYPED_EVENTS: ReadonlyMap<string, KvmFields['kind']> = new Map<string, KvmFields['kind']>([
  ['kvm_entry', 'kvm_entry'],
  ['kvm_exit', 'kvm_exit'],
  ['kvm_fpu', 'kvm_fpu'],
  ['kvm_pio', 'kvm_pio'],
  ['kvm_write_tsc_offset', 'kvm_write_tsc_offset'],
  ['kvm_userspace_exit', 'kvm_userspace_exit'],
  ['tsc_offset_zeroed', 'tsc_offset_zeroed'],
  ['sched_switch', 'sched_switch'],
  ['sched_wakeup', 'sched_target'],
  ['sched_wakeup_new', 'sched_target'],
  ['sched_migrate_task', 'sched_target'],
  ['tracing_mark_write', 'marker'],
  ['print', 'marker'],
]);
