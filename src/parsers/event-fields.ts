/**
 * The typed fields of the events kvmtrace interprets (model/kvm-fields.ts): {@link fieldsOf} returns
 * a block row's fields, decoded at import (trace.dat: from the record's binary fields by name) or,
 * for text, by parsing its body here — the readers below take the
 * printed text as the kernel's print fmt (tracefs) or trace-cmd's plugins (trace-cmd report) write
 * it. Formats: include/trace/events/kvm.h, arch/x86/kvm/trace.h, include/trace/events/sched.h.
 */
import { fieldOf, type TraceEvent } from '../model/event.js';
import { u64ToS64 } from '../model/exact.js';
import { guestTsc } from '../model/units.js';
import type { EventBlock } from '../model/event-block.js';
import { TYPED_EVENTS, type KvmFields, type SchedSwitch, type SyncMarker, type TscOffsetWrite } from '../model/kvm-fields.js';

export type { KvmFields, SchedSwitch, SyncMarker, TscOffsetWrite } from '../model/kvm-fields.js';

/**
 * Row r's typed fields (undefined for events kvmtrace does not interpret): as decoded at import
 * (trace.dat), else parsed from the body text. Text rows are not cached: each is read by one
 * consumer per pass (the host index, or validation for markers, or one picture for guest
 * sched_switch), and keeping an object per row cost ~20 MB of peak RSS at docA ×20.
 */
export function fieldsOf(blk: EventBlock, r: number): KvmFields | undefined {
  const kind = blk.table.typedKind(blk.name[r]);
  if (kind === undefined) return undefined;
  const f = blk.typed?.[r];
  if (f !== undefined) return f ?? undefined;
  // The most frequent kinds straight from the body's bytes (same rules as their text readers).
  if (blk.bodyText?.[r] === undefined && (kind === 'kvm_entry' || kind === 'kvm_exit' || kind === 'sched_switch'))
    return fieldsFromBytes(kind, blk.bytes, blk.bodyStart[r], blk.bodyEnd[r]);
  return fieldsFromText(kind, blk.body(r));
}

/** kvm_entry, kvm_exit and sched_switch fields from a body held as bytes [s, e) (ASCII). */
function fieldsFromBytes(kind: 'kvm_entry' | 'kvm_exit' | 'sched_switch', b: Buffer, s: number, e: number): KvmFields {
  if (kind === 'kvm_entry') {
    const i = find(b, 'vcpu ', s, e);
    const v = i < 0 ? -1 : digitsAt(b, i + 5, e, false);
    return { kind, vcpu: v >= 0 || i < 0 ? v : kvmEntryVcpu(latin1(b, s, e)) };
  }
  if (kind === 'kvm_exit') {
    const i = find(b, 'reason ', s, e);
    if (i < 0) return { kind, reason: '' };
    const rs = i + 7;
    const rip = find(b, ' rip ', rs, e);
    let re = rip > rs ? rip : find(b, ' ', rs, e);
    if (re < 0) re = e;
    return { kind, reason: latin1(b, rs, re) };
  }
  const arrow = find(b, ' ==> ', s, e);
  // trace-cmd's plugin form (and anything odd) goes through the text reader.
  if (arrow < 0 || find(b, 'prev_comm=', s, s + 10) !== s) return { kind, sw: schedSwitch(latin1(b, s, e)) };
  const pp = find(b, ' prev_pid=', s, e);
  const nc = find(b, 'next_comm=', arrow, e);
  const np = find(b, ' next_pid=', arrow, e);
  const prevPid = pp < 0 ? -1 : digitsAt(b, pp + 10, e);
  const nextPid = np < 0 ? -1 : digitsAt(b, np + 10, e);
  if (prevPid < 0 || nextPid < 0) return { kind, sw: schedSwitch(latin1(b, s, e)) };
  return { kind, sw: { prevComm: latin1(b, s + 10, pp), prevPid, nextComm: nc >= 0 && np > nc ? latin1(b, nc + 10, np) : '', nextPid } };
}

/** Index of the ASCII `needle` in b[from, to), or -1 (bounded: Buffer.indexOf would search the whole chunk). */
function find(b: Buffer, needle: string, from: number, to: number): number {
  const n = needle.length;
  const c0 = needle.charCodeAt(0);
  outer: for (let i = from; i + n <= to; i++) {
    if (b[i] !== c0) continue;
    for (let k = 1; k < n; k++) if (b[i + k] !== needle.charCodeAt(k)) continue outer;
    return i;
  }
  return -1;
}

/** The decimal number at b[i, …) (with `whole`, it must end at a space or `to`); -1 when there is none. */
function digitsAt(b: Buffer, i: number, to: number, whole = true): number {
  let v = 0;
  let n = 0;
  for (; i < to && n < 15; i++, n++) {
    const c = b[i] - 48;
    if (c < 0 || c > 9) break;
    v = v * 10 + c;
  }
  // Past 15 digits the text readers' Number() rounds: leave those to them.
  if (n === 15 && i < to && b[i] >= 48 && b[i] <= 57) return -1;
  return n > 0 && (!whole || i === to || b[i] === 32) ? v : -1;
}

const latin1 = (b: Buffer, s: number, e: number): string => b.toString('latin1', s, e);

/** An event object's typed fields: decoded at import (trace.dat), else from its text. */
export function fieldsOfEvent(ev: TraceEvent): KvmFields | undefined {
  if (ev.typed !== undefined) return ev.typed ?? undefined;
  const kind = TYPED_EVENTS.get(ev.name);
  return kind === undefined ? undefined : fieldsFromText(kind, ev.body);
}

/** Decodes the fields of an event whose typed kind is `kind` from its printed body. */
function fieldsFromText(kind: KvmFields['kind'], body: string): KvmFields {
  switch (kind) {
    case 'kvm_entry':
      return { kind, vcpu: kvmEntryVcpu(body) };
    case 'kvm_exit':
      return { kind, reason: kvmExitReason(body) };
    case 'kvm_fpu':
      return { kind, fpu: kvmFpu(body) };
    case 'kvm_pio':
      return { kind, dir: kvmPioDirection(body), port: kvmPioPort(body) };
    case 'kvm_write_tsc_offset':
      return { kind, write: kvmWriteTscOffset(body) };
    case 'kvm_userspace_exit':
      return { kind, reason: userspaceExitReason(body) };
    case 'tsc_offset_zeroed':
      return { kind, vcpu: Number(fieldOf(body, 'vcpu')) };
    case 'sched_switch':
      return { kind, sw: schedSwitch(body) };
    case 'sched_target':
      return { kind, pid: schedTargetPid(body) };
    case 'marker':
      return { kind, sync: syncMarker(body) };
  }
}

/** `kvm_entry: vcpu 0 rip 0x…` (also `vcpu 0, rip …`): the vCPU index, or -1. */
export function kvmEntryVcpu(body: string): number {
  const m = /vcpu (\d+)/.exec(body);
  return m ? Number(m[1]) : -1;
}

/**
 * `kvm_exit: [vcpu N ]reason EPT_MISCONFIG rip …`: the exit reason as printed, '' when absent. The
 * kvm_exit print fmt (arch/x86/kvm/trace.h) names it with VMX's table on Intel (`EPT_MISCONFIG`)
 * and SVM's on AMD (`npf`, `PF excp`, some with a space), then ` rip 0x…`: the reason is the text
 * between `reason ` and ` rip `, spaces included (the first word would fold `PF excp` and `GP
 * excp`); without ` rip `, the word after `reason `.
 */
export function kvmExitReason(body: string): string {
  const i = body.indexOf('reason ');
  if (i < 0) return '';
  const s = i + 7;
  const rip = body.indexOf(' rip ', s);
  if (rip > s) return body.slice(s, rip);
  let e = body.indexOf(' ', s);
  if (e < 0) e = body.length;
  return body.slice(s, e);
}

/** True for the CPUID exit on either vendor (VMX prints CPUID, SVM prints cpuid). */
export function isCpuidExit(reason: string): boolean {
  return reason === 'CPUID' || reason === 'cpuid';
}

/** Decodes `kvm_write_tsc_offset: vcpu=%u prev=%llu next=%llu` (u64 printed, two's complement); undefined when the text does not have its fields. */
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

/** `kvm_pio: pio_write at 0xe9 …`: `out` for a write, `in` for a read, `?` otherwise. */
export function kvmPioDirection(body: string): 'in' | 'out' | '?' {
  return body.includes('pio_write') ? 'out' : body.includes('pio_read') ? 'in' : '?';
}

/** `kvm_userspace_exit: reason KVM_EXIT_IO (2)` → `KVM_EXIT_IO`. */
export function userspaceExitReason(body: string): string {
  const i = body.indexOf('reason ');
  if (i < 0) return body.trim() || '?';
  const rest = body.slice(i + 7);
  const p = rest.indexOf(' (');
  return p > 0 ? rest.slice(0, p) : rest.trim();
}

/** `kvm_fpu: load|unload`: +1 for load (KVM_RUN starts), -1 for unload, 0 otherwise. */
export function kvmFpu(body: string): 1 | -1 | 0 {
  const t = body.trim();
  return t === 'load' ? 1 : t === 'unload' ? -1 : 0;
}

/** A sched_switch as its text gives it: the fields the tracker reads, and the rest the Perfetto output writes. */
export interface SchedSwitchText extends SchedSwitch {
  prevState: string;
  /** Priorities as printed; NaN when the text has none. */
  prevPrio: number;
  nextPrio: number;
}

const PLUGIN_SWITCH = /^(.*):(\d+) \[(-?\d+)\] (\S+) ==> (.*):(\d+) \[(-?\d+)\]$/;

/** The fields the tracker reads from a {@link PLUGIN_SWITCH} match. */
const pluginSwitch = (m: RegExpExecArray): SchedSwitch => ({ prevComm: m[1], prevPid: Number(m[2]), nextComm: m[5], nextPid: Number(m[6]) });

/**
 * Decodes sched_switch from the kernel's `prev_comm=… prev_pid=… ==> next_comm=… next_pid=…` or
 * trace-cmd's plugin form `comm:pid [prio] S ==> comm:pid [prio]`. Comms may hold spaces. The
 * fields the tracker reads (what the binary decoder gives); {@link schedSwitchText} adds the rest.
 */
export function schedSwitch(body: string): SchedSwitch | undefined {
  if (body.indexOf(' ==> ') < 0) return undefined;
  if (body.startsWith('prev_comm=')) {
    const prevPid = fieldOf(body, 'prev_pid');
    const nextPid = fieldOf(body, 'next_pid');
    if (prevPid === undefined || nextPid === undefined) return undefined;
    const arrow = body.indexOf(' ==> ');
    const pp = body.indexOf(' prev_pid=');
    const nc = body.indexOf('next_comm=', arrow);
    const np = body.indexOf(' next_pid=', arrow);
    return { prevComm: body.slice(10, pp), prevPid: Number(prevPid), nextComm: nc >= 0 && np > nc ? body.slice(nc + 10, np) : '', nextPid: Number(nextPid) };
  }
  const m = PLUGIN_SWITCH.exec(body);
  return m ? pluginSwitch(m) : undefined;
}

/** sched_switch with the previous task's state and both priorities too (the Perfetto output writes them). */
export function schedSwitchText(body: string): SchedSwitchText | undefined {
  if (!body.startsWith('prev_comm=')) {
    // The plugin form: its one match gives every field (through schedSwitch it would be matched twice).
    const m = PLUGIN_SWITCH.exec(body);
    return m ? { ...pluginSwitch(m), prevPrio: Number(m[3]), prevState: m[4], nextPrio: Number(m[7]) } : undefined;
  }
  const sw = schedSwitch(body);
  if (!sw) return undefined;
  return { ...sw, prevState: fieldOf(body, 'prev_state') ?? '', prevPrio: Number(fieldOf(body, 'prev_prio') ?? NaN), nextPrio: Number(fieldOf(body, 'next_prio') ?? NaN) };
}

const PLUGIN_WAKEUP = /^(.*):(\d+) \[-?\d+\]/;

/**
 * The thread a sched_wakeup, sched_wakeup_new or sched_migrate_task is about: the kernel's
 * `comm=… pid=N …`, or trace-cmd's wakeup plugin form `comm:N [prio] …`; -1 when neither.
 */
export function schedTargetPid(body: string): number {
  const f = fieldOf(body, 'pid');
  if (f !== undefined) return Number(f);
  const m = PLUGIN_WAKEUP.exec(body);
  return m ? Number(m[2]) : -1;
}

const SYNC = /kvmsync seq=(\d+) cpu=(\d+) kind=(cpuid|pio) t0=(\d+) t1=(\d+)/;

/** Decodes a kvmsync marker from a trace_marker event's text; undefined for other markers. */
export function syncMarker(body: string): SyncMarker | undefined {
  if (body.indexOf('kvmsync ') < 0) return undefined;
  const m = SYNC.exec(body);
  if (!m) return undefined;
  return { seq: Number(m[1]), cpu: Number(m[2]), kind: m[3] as 'cpuid' | 'pio', t0: guestTsc(BigInt(m[4])), t1: guestTsc(BigInt(m[5])) };
}

/** True for the events that carry trace_marker text (tracefs and trace-cmd names). */
export function isMarkerEvent(name: string): boolean {
  return name === 'tracing_mark_write' || name === 'print';
}
