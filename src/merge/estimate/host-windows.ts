/**
 * The host's guest-mode windows of the vCPU threads, as the validator sees them, kept in memory for
 * estimation: per thread two sorted Float64Arrays (window start, window end) in host TSC cycles
 * relative to `base` — 16 bytes per window, whatever the event count. The state machine is the
 * validator's (validate.ts, three-valued: in guest mode, not, or not known): entry-exit hosts are
 * in guest mode from kvm_entry to the next kvm_exit; kvm-run hosts (kvm-pvm) inside KVM_RUN
 * (kvm_fpu load → unload) while the thread is on a CPU. A "window" here is any time a guest event
 * is accepted: in guest mode (boundaries inclusive) or not known (before the first evidence).
 * Outside the host trace's span nothing can be checked.
 */
import type { Diagnostics } from '../../model/diagnostics.js';
import { fieldOf } from '../../model/event.js';
import { isCpuidExit, kvmExitReason, kvmFpu, kvmPioPort, schedSwitch } from '../../parsers/event-fields.js';
import { openSource, type SourceSpec } from '../source.js';
import { SYNC_PORT, type WindowKind } from '../validate.js';

/** Guest-mode windows of one host thread (sorted, disjoint). Times are host TSC cycles relative to `HostWindows.base`. */
export interface ThreadWindows {
  tid: number;
  /** Starts; the first may be -Infinity (not known before the first evidence). */
  starts: Float64Array;
  /** Ends; the last may be +Infinity (in guest mode, or not known, when the trace ends). */
  ends: Float64Array;
  /** Host TSC (relative) of the thread's sync exits: kvm_pio on the sync port, kvm_exit for CPUID. Sorted. */
  pio: Float64Array;
  cpuid: Float64Array;
}

/** The windows of the requested threads and the host trace's checkable span. */
export interface HostWindows {
  /** Absolute host TSC of relative time 0. */
  base: bigint;
  kind: WindowKind;
  /** Host trace's first and last event (relative): guest events after the last cannot be checked. */
  first: number;
  last: number;
  threads: Map<number, ThreadWindows>;
  /** vCPU → number of `tsc_offset_zeroed` events (the stap method: KVM was made to write offset 0). */
  zeroed: Map<number, number>;
}

// Transition codes, in the order the validator acts on them (a thread's own event first proves it on a CPU).
const ENTER = 1;
const LEAVE = 2;
const RUN_ON = 3; // kvm_fpu load: KVM_RUN starts
const RUN_OFF = 4; // kvm_fpu unload
const SCHED_IN = 5;
const SCHED_OUT = 6;
const ON_CPU = 7; // kvm-run: the thread traced an event, so it is on a CPU

/** Reads the host once and returns the windows of `tids` (memory: the transitions of those threads only). */
export async function collectHostWindows(host: SourceSpec[], tids: number[], kind: WindowKind, diags: Diagnostics): Promise<HostWindows> {
  const want = new Set(tids);
  const trans = new Map<number, { t: number[]; code: number[] }>();
  const sync = new Map<number, { pio: number[]; cpuid: number[] }>();
  for (const tid of tids) {
    trans.set(tid, { t: [], code: [] });
    sync.set(tid, { pio: [], cpuid: [] });
  }
  let base: bigint | undefined;
  let first = Infinity;
  let last = -Infinity;
  const zeroed = new Map<number, number>();
  const add = (tid: number, t: number, code: number): void => {
    const tr = trans.get(tid)!;
    // Repeated proofs of being on a CPU change nothing: keep one.
    if (code === ON_CPU && tr.code[tr.code.length - 1] === ON_CPU) return;
    tr.t.push(t);
    tr.code.push(code);
  };
  for (const spec of host) {
    const src = await openSource(spec, diags);
    let shift = 0;
    for await (const batch of src.batches) {
      if (base === undefined) base = src.header.base!.value;
      shift = Number(src.header.base!.value - base);
      for (const ev of batch) {
        const t = ev.ts + shift;
        if (t > last) last = t;
        if (t < first) first = t;
        const c = ev.name.charCodeAt(0);
        if (c === 116 /* t */ && ev.name === 'tsc_offset_zeroed') {
          const v = Number(fieldOf(ev.body, 'vcpu'));
          if (Number.isSafeInteger(v)) zeroed.set(v, (zeroed.get(v) ?? 0) + 1);
          continue;
        }
        if (c === 115 /* s */ && ev.name === 'sched_switch') {
          if (kind !== 'kvm-run') continue;
          const sw = schedSwitch(ev.body);
          if (!sw) continue;
          if (want.has(sw.prevPid)) add(sw.prevPid, t, SCHED_OUT);
          if (want.has(sw.nextPid)) add(sw.nextPid, t, SCHED_IN);
          continue;
        }
        if (!want.has(ev.pid)) continue;
        if (kind === 'kvm-run') add(ev.pid, t, ON_CPU);
        if (c !== 107 /* k */) continue;
        if (ev.name === 'kvm_pio' && kvmPioPort(ev.body) === SYNC_PORT) sync.get(ev.pid)!.pio.push(t);
        else if (ev.name === 'kvm_exit' && isCpuidExit(kvmExitReason(ev.body))) sync.get(ev.pid)!.cpuid.push(t);
        if (kind === 'entry-exit') {
          if (ev.name === 'kvm_entry') add(ev.pid, t, ENTER);
          else if (ev.name === 'kvm_exit') add(ev.pid, t, LEAVE);
        } else if (kind === 'kvm-run' && ev.name === 'kvm_fpu') {
          const f = kvmFpu(ev.body);
          if (f !== 0) add(ev.pid, t, f === 1 ? RUN_ON : RUN_OFF);
        }
      }
    }
  }
  const threads = new Map<number, ThreadWindows>();
  const sorted = (a: number[]): Float64Array => Float64Array.from(a).sort();
  for (const [tid, tr] of trans) {
    const sy = sync.get(tid)!;
    threads.set(tid, { ...replay(tid, tr.t, tr.code, kind, host.length > 1), pio: sorted(sy.pio), cpuid: sorted(sy.cpuid) });
  }
  return { base: base ?? 0n, kind, first, last, threads, zeroed };
}

const YES = 1;
const NO = 0;
const UNKNOWN = -1;

/**
 * Runs the validator's three-valued state machine over one thread's transitions and returns the
 * times a guest event is accepted: while in guest mode (closed: an event at the exit's cycle is
 * inside) and while the state is not known (unknown is never a violation; half-open there).
 */
function replay(tid: number, t: number[], code: number[], kind: WindowKind, sort: boolean): Omit<ThreadWindows, 'pio' | 'cpuid'> {
  let order = t.map((_, i) => i);
  // Several host files (per-CPU text files): put the transitions in time order, stable.
  if (sort) order = order.sort((a, b) => t[a] - t[b] || a - b);
  const needsCpu = kind === 'kvm-run';
  const starts: number[] = [];
  const ends: number[] = [];
  const push = (a: number, b: number): void => {
    if (a > b) return;
    const n = ends.length;
    if (n && a <= ends[n - 1] + 1) ends[n - 1] = Math.max(ends[n - 1], b);
    else starts.push(a), ends.push(b);
  };
  let inRun = UNKNOWN;
  let onCpu = UNKNOWN;
  let state = UNKNOWN;
  let since = -Infinity;
  for (const i of order) {
    const x = t[i];
    switch (code[i]) {
      case ENTER:
      case RUN_ON:
        inRun = YES;
        break;
      case LEAVE:
      case RUN_OFF:
        inRun = NO;
        break;
      case SCHED_OUT:
        onCpu = NO;
        break;
      case SCHED_IN:
      case ON_CPU:
        onCpu = YES;
        break;
    }
    const now =
      inRun === YES && (!needsCpu || onCpu === YES) ? YES : inRun === NO || (inRun === YES && needsCpu && onCpu === NO) ? NO : UNKNOWN;
    if (now === state) continue;
    if (state === YES) push(since, x);
    else if (state === UNKNOWN) push(since, x - 1);
    state = now;
    since = x;
  }
  if (state !== NO) push(since, Infinity);
  return { tid, starts: Float64Array.from(starts), ends: Float64Array.from(ends) };
}

/** Index of the first window whose end is ≥ h (binary search), or the window count. */
export function firstEndingAtOrAfter(w: ThreadWindows, h: number): number {
  let lo = 0;
  let hi = w.ends.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (w.ends[mid] < h) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
