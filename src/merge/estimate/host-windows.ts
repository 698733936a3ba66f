/**
 * The host's guest-mode windows of the vCPU threads, as the validator sees them, kept in memory for
 * estimation: per thread two sorted Float64Arrays (window start, window end) in host TSC cycles
 * relative to `base` — 16 bytes per window, whatever the event count. The state machine is the
 * validator's (validate.ts): entry-exit hosts open a window at kvm_entry and close it at the next
 * kvm_exit; kvm-run hosts (kvm-pvm) open it at kvm_fpu load or a sched-in inside KVM_RUN and close
 * it at kvm_fpu unload or a sched-out. Boundaries are inclusive. Before the thread's first window
 * evidence (`known`) and after the host trace's last event nothing can be checked.
 */
import type { Diagnostics } from '../../model/diagnostics.js';
import { kvmFpu, schedSwitch } from '../../parsers/event-fields.js';
import { openSource, type SourceSpec } from '../source.js';
import type { WindowKind } from '../validate.js';

/** Guest-mode windows of one host thread. Times are host TSC cycles relative to `HostWindows.base`. */
export interface ThreadWindows {
  tid: number;
  starts: Float64Array;
  /** Ends; the last may be +Infinity (in guest mode when the trace ends). */
  ends: Float64Array;
  /** First window evidence on the thread: guest events before it cannot be checked. */
  known: number;
}

/** The windows of the requested threads and the host trace's checkable span. */
export interface HostWindows {
  /** Absolute host TSC of relative time 0. */
  base: bigint;
  kind: WindowKind;
  /** Host trace's last event (relative): guest events after it cannot be checked. */
  last: number;
  threads: Map<number, ThreadWindows>;
}

// Transition codes, in the order the validator would act on events of equal time within one file.
const ENTER = 1;
const LEAVE = 2;
const RUN_ON = 3; // kvm_fpu load: KVM_RUN starts, and the thread runs
const RUN_OFF = 4; // kvm_fpu unload
const SCHED_IN = 5;
const SCHED_OUT = 6;

/** Reads the host once and returns the windows of `tids` (memory: the transitions of those threads only). */
export async function collectHostWindows(host: SourceSpec[], tids: number[], kind: WindowKind, diags: Diagnostics): Promise<HostWindows> {
  const want = new Set(tids);
  const trans = new Map<number, { t: number[]; code: number[] }>();
  for (const tid of tids) trans.set(tid, { t: [], code: [] });
  let base: bigint | undefined;
  let last = -Infinity;
  const add = (tid: number, t: number, code: number): void => {
    const tr = trans.get(tid)!;
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
        const c = ev.name.charCodeAt(0);
        if (c === 115 /* s */ && kind === 'kvm-run' && ev.name === 'sched_switch') {
          const sw = schedSwitch(ev.body);
          if (!sw) continue;
          if (want.has(sw.prevPid)) add(sw.prevPid, t, SCHED_OUT);
          if (want.has(sw.nextPid)) add(sw.nextPid, t, SCHED_IN);
          continue;
        }
        if (c !== 107 /* k */ || !want.has(ev.pid)) continue;
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
  for (const [tid, tr] of trans) threads.set(tid, replay(tid, tr.t, tr.code, host.length > 1));
  return { base: base ?? 0n, kind, last, threads };
}

/** Runs the validator's state machine over one thread's transitions. */
function replay(tid: number, t: number[], code: number[], sort: boolean): ThreadWindows {
  let order = t.map((_, i) => i);
  // Several host files (per-CPU text files): put the transitions in time order, stable.
  if (sort) order = order.sort((a, b) => t[a] - t[b] || a - b);
  const starts: number[] = [];
  const ends: number[] = [];
  let known = Infinity;
  let inGuest = false;
  let inRun = false;
  let start = 0;
  const enter = (x: number): void => {
    if (inGuest) return;
    inGuest = true;
    start = x;
  };
  const leave = (x: number): void => {
    if (known === Infinity) known = x;
    if (!inGuest) return;
    inGuest = false;
    starts.push(start);
    ends.push(x);
  };
  for (const i of order) {
    const x = t[i];
    switch (code[i]) {
      case ENTER:
        if (known === Infinity) known = x;
        enter(x);
        break;
      case LEAVE:
        leave(x);
        break;
      case RUN_ON:
        inRun = true;
        if (known === Infinity) known = x;
        enter(x);
        break;
      case RUN_OFF:
        inRun = false;
        leave(x);
        break;
      case SCHED_OUT:
        leave(x);
        break;
      case SCHED_IN:
        if (inRun) enter(x);
        break;
    }
  }
  if (inGuest) {
    starts.push(start);
    ends.push(Infinity);
  }
  return { tid, starts: Float64Array.from(starts), ends: Float64Array.from(ends), known };
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
