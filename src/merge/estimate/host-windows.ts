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

/** A growable list of doubles outside the JS heap (typed-array storage: 8 bytes per value). */
class F64List {
  a = new Float64Array(256);
  n = 0;
  push(x: number): void {
    if (this.n === this.a.length) {
      const b = new Float64Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = x;
  }
  last(): number {
    return this.a[this.n - 1];
  }
  setLast(x: number): void {
    this.a[this.n - 1] = x;
  }
  done(): Float64Array {
    return this.a.slice(0, this.n);
  }
}

/** Reads the host once and returns the windows of `tids` (memory: 16 bytes per window and 8 per sync exit of those threads). */
export async function collectHostWindows(host: SourceSpec[], tids: number[], kind: WindowKind, diags: Diagnostics): Promise<HostWindows> {
  const want = new Set(tids);
  const machines = new Map<number, WindowMachine>();
  const sync = new Map<number, { pio: F64List; cpuid: F64List }>();
  // One host file: events arrive in time order, so the machines run as they come. Several files
  // (per-CPU text files): keep each thread's transitions (8+8 bytes each) and sort them first.
  const buffered = host.length > 1 ? new Map<number, { t: F64List; code: F64List }>() : undefined;
  for (const tid of tids) {
    machines.set(tid, new WindowMachine(kind === 'kvm-run'));
    sync.set(tid, { pio: new F64List(), cpuid: new F64List() });
    buffered?.set(tid, { t: new F64List(), code: new F64List() });
  }
  let base: bigint | undefined;
  let first = Infinity;
  let last = -Infinity;
  const zeroed = new Map<number, number>();
  const add = (tid: number, t: number, code: number): void => {
    if (!buffered) return machines.get(tid)!.step(t, code);
    const b = buffered.get(tid)!;
    // Repeated proofs of being on a CPU change nothing: keep one.
    if (code === ON_CPU && b.code.n && b.code.last() === ON_CPU) return;
    b.t.push(t);
    b.code.push(code);
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
  for (const tid of tids) {
    const m = machines.get(tid)!;
    const b = buffered?.get(tid);
    if (b) {
      const t = b.t.done();
      const code = b.code.done();
      const order = Uint32Array.from(t.keys()).sort((x, y) => t[x] - t[y] || x - y);
      for (const i of order) m.step(t[i], code[i]);
    }
    const sy = sync.get(tid)!;
    threads.set(tid, { tid, ...m.finish(), pio: sy.pio.done().sort(), cpuid: sy.cpuid.done().sort() });
  }
  return { base: base ?? 0n, kind, first, last, threads, zeroed };
}

const YES = 1;
const NO = 0;
const UNKNOWN = -1;

/**
 * The validator's three-valued state machine for one thread, fed transitions in time order; it
 * records the times a guest event is accepted: while in guest mode (closed: an event at the exit's
 * cycle is inside) and while the state is not known (never a violation; half-open there).
 */
class WindowMachine {
  private inRun = UNKNOWN;
  private onCpu = UNKNOWN;
  private state = UNKNOWN;
  private since = -Infinity;
  private readonly starts = new F64List();
  private readonly ends = new F64List();

  constructor(private readonly needsCpu: boolean) {}

  step(x: number, code: number): void {
    switch (code) {
      case ENTER:
      case RUN_ON:
        this.inRun = YES;
        break;
      case LEAVE:
      case RUN_OFF:
        this.inRun = NO;
        break;
      case SCHED_OUT:
        this.onCpu = NO;
        break;
      case SCHED_IN:
      case ON_CPU:
        this.onCpu = YES;
        break;
    }
    const { inRun, onCpu, needsCpu } = this;
    const now = inRun === YES && (!needsCpu || onCpu === YES) ? YES : inRun === NO || (inRun === YES && needsCpu && onCpu === NO) ? NO : UNKNOWN;
    if (now === this.state) return;
    if (this.state === YES) this.push(this.since, x);
    else if (this.state === UNKNOWN) this.push(this.since, x - 1);
    this.state = now;
    this.since = x;
  }

  private push(a: number, b: number): void {
    if (a > b) return;
    if (this.ends.n && a <= this.ends.last() + 1) this.ends.setLast(Math.max(this.ends.last(), b));
    else this.starts.push(a), this.ends.push(b);
  }

  finish(): { starts: Float64Array; ends: Float64Array } {
    if (this.state !== NO) this.push(this.since, Infinity);
    return { starts: this.starts.done(), ends: this.ends.done() };
  }
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
