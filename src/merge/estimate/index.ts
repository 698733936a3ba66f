/**
 * Estimation of a guest's TSC offset when no source states it: from the host's guest-mode windows
 * (every guest event must lie inside one) and, when the guest traced `kvmsync` markers, from sync
 * points (each bounds the offset: t0 − h ≤ offset ≤ t1 − h). Two streaming passes over the guest;
 * the host is read once for the windows of the vCPU threads.
 */
import type { Diagnostics } from '../../model/diagnostics.js';
import { isTscClock } from '../../model/clock.js';
import { UserError } from '../../model/errors.js';
import { openSource, type SourceSpec } from '../source.js';
import type { WindowKind } from '../validate.js';
import { HoleCandidates, longestGap, WindowRefiner, type Span } from './from-windows.js';
import { collectHostWindows } from './host-windows.js';

/** What estimation found for one vCPU. Offsets are guest − host TSC, in cycles. */
export interface VcpuEstimate {
  vcpu: number;
  /** The offsets consistent with every piece of evidence: sorted, disjoint, inclusive. Empty: none. */
  intervals: [bigint, bigint][];
  /** The estimate: the middle of the interval (of their hull when several). */
  offset: bigint | undefined;
  /** Hull of the intervals. */
  low: bigint | undefined;
  high: bigint | undefined;
  /** What the estimate rests on, for the report. */
  method: string;
  /** Why there is no estimate, when there is none. */
  why?: string;
  /** Guest events that constrained the result. */
  constraining: number;
}

/** Most qualifying guest holes refined at once (beyond it the host's longest gap is not selective enough). */
const MAX_CANDIDATES = 4096;

/**
 * Estimates the offset of each vCPU in `vcpuTids` (vCPU → host thread) from the host's windows.
 * `cpuToVcpu` maps a guest CPU to its vCPU.
 */
export async function estimateFromWindows(
  host: SourceSpec[],
  guest: SourceSpec,
  vcpuTids: Map<number, number>,
  cpuToVcpu: (cpu: number) => number,
  kind: WindowKind,
  diags: Diagnostics,
): Promise<Map<number, VcpuEstimate>> {
  const out = new Map<number, VcpuEstimate>();
  const fail = (v: number, why: string): void => {
    out.set(v, { vcpu: v, intervals: [], offset: undefined, low: undefined, high: undefined, method: 'guest-mode windows', why, constraining: 0 });
  };
  if (kind === 'none') {
    for (const v of vcpuTids.keys()) fail(v, 'the host trace has no guest-mode evidence (no kvm_entry/kvm_exit, no kvm_fpu)');
    return out;
  }
  const hw = await collectHostWindows(host, [...new Set(vcpuTids.values())], kind, diags);
  const holes = new Map<number, HoleCandidates>();
  const gaps = new Map<number, { x: number; y: number }>();
  for (const [v, tid] of vcpuTids) {
    const w = hw.threads.get(tid)!;
    const gap = longestGap(w);
    if (!gap) fail(v, `host thread ${tid} has ${w.starts.length} guest-mode window(s): no gap between two windows to align the guest with`);
    else {
      gaps.set(v, gap);
      holes.set(v, new HoleCandidates(gap, MAX_CANDIDATES));
    }
  }
  if (holes.size === 0) return out;

  // Pass 1: candidate offsets from the guest's holes.
  const used = new Set<number>();
  const gBase = await forEachGuestEvent(guest, diags, (cpu, g) => {
    const v = cpuToVcpu(cpu);
    used.add(v);
    holes.get(v)?.add(g);
  });
  if (gBase === undefined) {
    for (const v of holes.keys()) fail(v, `${guest.file} has no events`);
    return out;
  }
  const refiners = new Map<number, WindowRefiner>();
  // vCPUs the guest trace never shows (another VM's threads seen on the host) need no estimate.
  for (const v of vcpuTids.keys()) if (!used.has(v)) out.delete(v);
  for (const [v, h] of holes) {
    if (!used.has(v)) continue;
    const gap = gaps.get(v)!;
    const lenCycles = gap.y - gap.x;
    if (h.overflow) fail(v, `more than ${MAX_CANDIDATES} holes in the guest's event stream are as long as the host's longest gap (${lenCycles} cycles): the windows do not single out an offset`);
    else if (h.spans.length === 0) fail(v, `no hole in the guest's event stream is as long as the host's longest out-of-guest gap (${lenCycles} cycles): the guest trace does not cover it, or does not belong to this host trace`);
    else refiners.set(v, new WindowRefiner(hw.threads.get(vcpuTids.get(v)!)!, hw.last, h.spans));
  }
  // Pass 2: refine.
  await forEachGuestEvent(guest, diags, (cpu, g) => refiners.get(cpuToVcpu(cpu))?.add(g));
  const shift = gBase - hw.base;
  for (const [v, r] of refiners) {
    const spans = r.result;
    const gap = gaps.get(v)!;
    const method = `guest-mode windows (${r.constraining} guest events checked; host gap of ${gap.y - gap.x} cycles aligned with the guest's holes)`;
    if (spans.length === 0) {
      fail(v, `no offset puts every guest event inside a guest-mode window of host thread ${vcpuTids.get(v)} (${holes.get(v)!.spans.length} alignments tried)`);
      continue;
    }
    out.set(v, fromSpans(v, spans, shift, method, r.constraining));
  }
  return out;
}

/** Turns relative spans into the estimate (bigint offsets). */
export function fromSpans(v: number, spans: Span[], shift: bigint, method: string, constraining: number): VcpuEstimate {
  const intervals = spans.map(([a, b]) => [shift + BigInt(a), shift + BigInt(b)] as [bigint, bigint]);
  const low = intervals[0][0];
  const high = intervals[intervals.length - 1][1];
  return { vcpu: v, intervals, offset: low + (high - low) / 2n, low, high, method, constraining };
}

/**
 * Streams a guest source and calls `f(cpu, guestTsc − base)` for every event; returns the base
 * (the source's first timestamp), or undefined for an empty source. The guest must be traced with
 * a TSC clock (or counter).
 */
async function forEachGuestEvent(spec: SourceSpec, diags: Diagnostics, f: (cpu: number, g: number) => void): Promise<bigint | undefined> {
  const src = await openSource(spec, diags);
  let base: bigint | undefined;
  for await (const batch of src.batches) {
    if (base === undefined) {
      base = src.header.base!.value;
      const clock = src.header.clock;
      if (!isTscClock(clock) && clock !== 'counter' && clock !== 'unknown')
        throw new UserError(`${spec.file}: estimating the offset from guest-mode windows needs a guest traced with the TSC (clock ${clock})`);
    }
    for (const ev of batch) f(ev.cpu, ev.ts);
  }
  return base;
}
