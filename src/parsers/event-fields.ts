/**
 * Readers for the fields kvmtrace interprets, from the printed text of kvm and sched events as
 * the kernel's print fmt (tracefs) or trace-cmd's plugins (trace-cmd report) write them.
 * Formats: include/trace/events/kvm.h, arch/x86/kvm/trace.h, include/trace/events/sched.h.
 */
import { fieldOf } from '../model/event.js';
import { u64ToS64 } from '../model/exact.js';

/** `kvm_entry: vcpu 0 rip 0x…` (also `vcpu 0, rip …`): the vCPU index, or -1. */
export function kvmEntryVcpu(body: string): number {
  const m = /vcpu (\d+)/.exec(body);
  return m ? Number(m[1]) : -1;
}

/** `kvm_exit: [vcpu N ]reason EPT_MISCONFIG rip …`: the exit reason as printed, or '' when absent. */
export function kvmExitReason(body: string): string {
  const i = body.indexOf('reason ');
  if (i < 0) return '';
  const s = i + 7;
  let e = body.indexOf(' ', s);
  if (e < 0) e = body.length;
  return body.slice(s, e);
}

/** True for the CPUID exit on either vendor (VMX prints CPUID, SVM prints cpuid). */
export function isCpuidExit(reason: string): boolean {
  return reason === 'CPUID' || reason === 'cpuid';
}

/** A decoded `kvm_write_tsc_offset: vcpu=%u prev=%llu next=%llu` (u64 printed, two's complement). */
export interface TscOffsetWrite {
  vcpu: number;
  prev: bigint;
  next: bigint;
}

/** Decodes kvm_write_tsc_offset; undefined when the text does not have its fields. */
export function kvmWriteTscOffset(body: string): TscOffsetWrite | undefined {
  const m = /vcpu=(\d+) prev=(\d+) next=(\d+)/.exec(body);
  if (!m) return undefined;
  return { vcpu: Number(m[1]), prev: u64ToS64(BigInt(m[2])), next: u64ToS64(BigInt(m[3])) };
}

/** `kvm_pio: pio_write at 0xe9 size 1 count 1 val 0x0`: the port, or -1. */
export function kvmPioPort(body: string): number {
  const m = /at 0x([0-9a-f]+)/.exec(body);
  return m ? parseInt(m[1], 16) : -1;
}

/** `kvm_fpu: load|unload`: +1 for load (KVM_RUN starts), -1 for unload, 0 otherwise. */
export function kvmFpu(body: string): 1 | -1 | 0 {
  const t = body.trim();
  return t === 'load' ? 1 : t === 'unload' ? -1 : 0;
}

/** A decoded sched_switch. */
export interface SchedSwitch {
  prevComm: string;
  prevPid: number;
  prevState: string;
  nextComm: string;
  nextPid: number;
  /** Priorities as printed; NaN when the text has none. */
  prevPrio: number;
  nextPrio: number;
}

const PLUGIN_SWITCH = /^(.*):(\d+) \[(-?\d+)\] (\S+) ==> (.*):(\d+) \[(-?\d+)\]$/;

/**
 * Decodes sched_switch from the kernel's `prev_comm=… prev_pid=… ==> next_comm=… next_pid=…` or
 * trace-cmd's plugin form `comm:pid [prio] S ==> comm:pid [prio]`. Comms may hold spaces.
 */
export function schedSwitch(body: string): SchedSwitch | undefined {
  const arrow = body.indexOf(' ==> ');
  if (arrow < 0) return undefined;
  if (body.startsWith('prev_comm=')) {
    const prevPid = fieldOf(body, 'prev_pid');
    const nextPid = fieldOf(body, 'next_pid');
    if (prevPid === undefined || nextPid === undefined) return undefined;
    const pp = body.indexOf(' prev_pid=');
    const nc = body.indexOf('next_comm=', arrow);
    const np = body.indexOf(' next_pid=', arrow);
    return {
      prevComm: body.slice(10, pp),
      prevPid: Number(prevPid),
      prevState: fieldOf(body, 'prev_state') ?? '',
      nextComm: nc >= 0 && np > nc ? body.slice(nc + 10, np) : '',
      nextPid: Number(nextPid),
      prevPrio: Number(fieldOf(body, 'prev_prio') ?? NaN),
      nextPrio: Number(fieldOf(body, 'next_prio') ?? NaN),
    };
  }
  const m = PLUGIN_SWITCH.exec(body);
  if (!m) return undefined;
  return { prevComm: m[1], prevPid: Number(m[2]), prevPrio: Number(m[3]), prevState: m[4], nextComm: m[5], nextPid: Number(m[6]), nextPrio: Number(m[7]) };
}

/** A `kvmsync` sync point written by the guest (docs/bundle.md). */
export interface SyncMarker {
  seq: number;
  cpu: number;
  kind: 'cpuid' | 'pio';
  t0: bigint;
  t1: bigint;
}

const SYNC = /kvmsync seq=(\d+) cpu=(\d+) kind=(cpuid|pio) t0=(\d+) t1=(\d+)/;

/** Decodes a kvmsync marker from a trace_marker event's text; undefined for other markers. */
export function syncMarker(body: string): SyncMarker | undefined {
  if (body.indexOf('kvmsync ') < 0) return undefined;
  const m = SYNC.exec(body);
  if (!m) return undefined;
  return { seq: Number(m[1]), cpu: Number(m[2]), kind: m[3] as 'cpuid' | 'pio', t0: BigInt(m[4]), t1: BigInt(m[5]) };
}

/** True for the events that carry trace_marker text (tracefs and trace-cmd names). */
export function isMarkerEvent(name: string): boolean {
  return name === 'tracing_mark_write' || name === 'print';
}
