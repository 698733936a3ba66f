/**
 * Estimation of a guest's TSC offset when no source states it, from two kinds of evidence:
 *  - sync points: `kvmsync` markers (guest) bracket a VM exit the host traced (kvm_pio on the sync
 *    port, or a CPUID kvm_exit): t0 − h ≤ offset ≤ t1 − h (from-sync.ts);
 *  - guest-mode windows: every guest event must lie inside a window of its vCPU's host thread
 *    (from-windows.ts).
 * Both are intersections of unions of intervals, so they combine exactly: the sync points' interval
 * (when there are markers) or the guest's holes (when there are none) seed the window refinement.
 * Two streaming passes over the guest; the host's windows and sync exits come from the host index
 * (no pass over the host).
 */
import type { Diagnostics } from '../../model/diagnostics.js';
import { isTscClock } from '../../model/clock.js';
import { UserError } from '../../model/errors.js';
import type { TraceEvent } from '../../model/event.js';
import { fieldsOfEvent } from '../../parsers/event-fields.js';
import { openSource, type SourceSpec } from '../source.js';
import type { HostIndex } from '../../host/index.js';
import { HoleCandidates, longestGaps, normalize, WindowRefiner, type Span } from './from-windows.js';
import { SyncRefiner } from './from-sync.js';
import { driftMapping, estimateDrift, type Bracket } from './drift.js';
import { hostWindows, type ThreadWindows } from './host-windows.js';

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
  /** Guest events that constrained the result (window evidence). */
  constraining: number;
  /** Sync markers seen for the vCPU, and how many the estimate matched to a host exit. */
  syncMarkers: number;
  syncMatched: number;
  /** With drift: KVM's scaling ratio (48 fraction bits) of the mapping guest = ((host × ratio) >> 48) + offset. */
  ratio?: bigint;
  fracBits?: number;
}

/** Most qualifying guest holes refined at once (beyond it the host's longest gap is not selective enough). */
const MAX_CANDIDATES = 4096;
/** How many of the host's longest gaps are tried, one guest pass each, when a shorter trace does not cover the longest. */
const GAPS_TRIED = 3;

/** Per-vCPU state of the estimation. */
interface VcpuWork {
  tid: number | undefined;
  /** Candidates from each of the host's longest gaps (longest first), and which one is being refined. */
  holes: HoleCandidates[];
  gaps: { x: number; y: number }[];
  attempt: number;
  pio?: SyncRefiner;
  cpuid?: SyncRefiner;
  markers: number;
  brackets: { pio: Bracket[]; cpuid: Bracket[] };
  used: boolean;
  /** Seed of the window refinement, and what it came from. */
  seed?: Span[];
  seedFrom?: string;
  syncMatched: number;
  refiner?: WindowRefiner;
  /** The refiner has seen the whole guest. */
  refined?: boolean;
}

/** Seeds the window refinement from the holes of gap `attempt` (or the next one that has any); false when none is left. */
function seedFromHoles(wk: VcpuWork): boolean {
  for (; wk.attempt < wk.gaps.length; wk.attempt++) {
    const h = wk.holes[wk.attempt];
    if (h.overflow || h.spans.length === 0) continue;
    const len = wk.gaps[wk.attempt].y - wk.gaps[wk.attempt].x;
    const nth = wk.attempt === 0 ? 'longest' : `${['', '2nd', '3rd'][wk.attempt] ?? `${wk.attempt + 1}th`} longest`;
    wk.seed = h.spans;
    wk.seedFrom = `estimate from the host's ${nth} out-of-guest gap (${len} cycles) aligned with ${h.spans.length} hole(s) of the guest's event stream`;
    return true;
  }
  return false;
}

/**
 * Estimates the offset of each vCPU in `vcpuTids` (vCPU → host thread). `cpuToVcpu` maps a guest
 * CPU to its vCPU. vCPUs that the guest trace never shows are left out of the result.
 */
export async function estimateOffsets(
  index: HostIndex,
  guest: SourceSpec,
  vcpuTids: Map<number, number | undefined>,
  cpuToVcpu: (cpu: number) => number,
  diags: Diagnostics,
): Promise<Map<number, VcpuEstimate>> {
  const out = new Map<number, VcpuEstimate>();
  const tids = [...new Set(vcpuTids.values())].filter((t): t is number => t !== undefined);
  const hw = hostWindows(index, tids);
  const kind = hw.kind;
  const work = new Map<number, VcpuWork>();
  const none = new Float64Array(0);
  for (const [v, tid] of vcpuTids) {
    const w = tid !== undefined ? hw.threads.get(tid)! : { starts: none, ends: none, pio: none, cpuid: none };
    const gaps = kind === 'none' || tid === undefined ? [] : longestGaps(w as ThreadWindows, GAPS_TRIED);
    work.set(v, {
      tid,
      gaps,
      attempt: 0,
      holes: gaps.map((gap) => new HoleCandidates(gap, MAX_CANDIDATES)),
      pio: w.pio.length ? new SyncRefiner(w.pio, hw.first, hw.last) : undefined,
      cpuid: w.cpuid.length ? new SyncRefiner(w.cpuid, hw.first, hw.last) : undefined,
      markers: 0,
      brackets: { pio: [], cpuid: [] },
      used: false,
      syncMatched: 0,
    });
  }

  // Pass 1: the guest's holes, and its sync markers against the host's sync exits.
  let gBase = 0n;
  const base = await forEachGuestEvent(guest, diags, (b) => (gBase = b), (ev, g) => {
    const wk = work.get(cpuToVcpu(ev.cpu));
    if (wk) {
      wk.used = true;
      for (const h of wk.holes) h.add(g);
    }
    const f = fieldsOfEvent(ev);
    if (f?.kind === 'marker') {
      const sp = f.sync;
      const sw = sp && work.get(cpuToVcpu(sp.cpu));
      if (sp && sw) {
        sw.markers++;
        const b = { t0: Number(sp.t0 - gBase), t1: Number(sp.t1 - gBase) };
        sw[sp.kind]?.add(b.t0, b.t1);
        if (sw[sp.kind]) sw.brackets[sp.kind].push(b);
      }
    }
  });
  const fail = (v: number, why: string, wk?: VcpuWork): void => {
    out.set(v, { vcpu: v, intervals: [], offset: undefined, low: undefined, high: undefined, method: 'estimate', why, constraining: 0, syncMarkers: wk?.markers ?? 0, syncMatched: 0 });
  };
  if (base === undefined) {
    for (const v of vcpuTids.keys()) fail(v, `${guest.file} has no events`);
    return out;
  }

  for (const [v, wk] of work) {
    if (!wk.used) continue;
    // The stap method: the host made KVM write offset 0, so the guest reads the host's TSC.
    const z = hw.zeroed.get(v);
    if (z) {
      out.set(v, { vcpu: v, intervals: [[0n, 0n]], offset: 0n, low: 0n, high: 0n, method: `zeroed offset (${z} tsc_offset_zeroed event(s) on the host: the stap method)`, constraining: 0, syncMarkers: wk.markers, syncMatched: 0 });
      continue;
    }
    if (wk.tid === undefined) {
      fail(v, `its host thread is not known (no kvm_entry event names vCPU ${v}; give --vcpu-thread ${v}=TID)`, wk);
      continue;
    }
    const w = hw.threads.get(wk.tid)!;
    // Drift: markers of a kind that no constant offset matches, half of them or more, but that pair up chunk by chunk.
    let drifted = false;
    for (const k of ['pio', 'cpuid'] as const) {
      const ms = wk.brackets[k];
      if (drifted || !wk[k] || ms.length < 4 || wk[k]!.best.matched * 2 > ms.length) continue;
      const d = estimateDrift(ms, w[k], hw.first, hw.last);
      if (!d || d.pairs.length * 2 < ms.length) continue;
      const m = driftMapping(d.fit, base, hw.base);
      const ppm = (Number(m.ratio - (1n << 48n)) / 2 ** 48) * 1e6;
      out.set(v, {
        vcpu: v,
        intervals: [[m.offset - m.boundCycles, m.offset + m.boundCycles]],
        offset: m.offset,
        low: m.offset - m.boundCycles,
        high: m.offset + m.boundCycles,
        ratio: m.ratio,
        fracBits: m.fracBits,
        method: `estimate from sync points with drift (${d.pairs.length} of ${ms.length} ${k} markers paired with a host exit on thread ${wk.tid}; convex-hull fit: ${ppm.toFixed(3)} ppm, ratio ${m.ratio}/2^48)`,
        constraining: 0,
        syncMarkers: wk.markers,
        syncMatched: d.pairs.length,
      });
      drifted = true;
    }
    if (drifted) continue;
    // Sync points first: the interval every kind of marker agrees on.
    const kinds = [wk.pio?.best, wk.cpuid?.best].filter((b) => b && b.matched > 0) as { spans: Span[]; matched: number }[];
    if (kinds.length) {
      let seed = kinds[0].spans;
      for (const k of kinds.slice(1)) seed = intersect(seed, k.spans);
      wk.syncMatched = kinds.reduce((a, k) => a + k.matched, 0);
      if (seed.length === 0) {
        fail(v, `the pio and cpuid sync points on vCPU ${v} allow no common offset`, wk);
        continue;
      }
      wk.seed = seed;
      wk.seedFrom = `estimate from sync points (${wk.syncMatched} of ${wk.markers} matched to a host exit on thread ${wk.tid})`;
    } else if (wk.markers > 0 && !wk.gaps.length)
      diags.add({ file: guest.file, message: `vCPU ${v}: ${wk.markers} kvmsync marker(s), but host thread ${wk.tid} traced no sync exit (kvm_pio on port 0xe9, CPUID kvm_exit)` });
    if (!wk.gaps.length) {
      if (wk.seed) continue; // sync points alone
      fail(v, kind === 'none'
        ? 'the host trace has no guest-mode evidence (no kvm_entry/kvm_exit, no kvm_fpu) and the guest no sync points'
        : `host thread ${wk.tid} has ${w.starts.length} guest-mode window(s): no gap between two windows to align the guest with, and the guest has no sync points`, wk);
      continue;
    }
    if (!wk.seed && !seedFromHoles(wk)) {
      const h = wk.holes[0];
      const len = wk.gaps[0].y - wk.gaps[0].x;
      fail(v, h.overflow
        ? `more than ${MAX_CANDIDATES} holes in the guest's event stream are as long as the host's longest out-of-guest gap (${len} cycles): the windows do not single out an offset`
        : `no hole in the guest's event stream is as long as the host's longest out-of-guest gaps (${wk.gaps.map((x) => x.y - x.x).join(', ')} cycles): the guest trace does not cover them, or does not belong to this host trace`, wk);
    }
    if (wk.seed) wk.refiner = new WindowRefiner(w, hw.first, hw.last, wk.seed);
  }

  // Pass 2: refine by every guest event. A gap that the guest trace turns out not to cover leaves
  // nothing: then the next longest gap's candidates get their own pass (at most GAPS_TRIED in all).
  for (let pass = 0; pass < GAPS_TRIED && [...work.values()].some((wk) => wk.refiner && !wk.refined); pass++) {
    await forEachGuestEvent(guest, diags, () => {}, (ev, g) => {
      const wk = work.get(cpuToVcpu(ev.cpu));
      if (wk && !wk.refined) wk.refiner?.add(g);
    });
    for (const wk of work.values()) {
      if (!wk.refiner || wk.refined) continue;
      wk.refined = true;
      if (wk.refiner.result.length || wk.seedFrom?.startsWith('estimate from sync')) continue;
      wk.attempt++;
      if (seedFromHoles(wk)) {
        wk.refiner = new WindowRefiner(hw.threads.get(wk.tid!)!, hw.first, hw.last, wk.seed!);
        wk.refined = false;
      }
    }
  }
  const shift = base - hw.base;
  for (const [v, wk] of work) {
    if (!wk.used || out.has(v) || !wk.seed) continue;
    const spans = wk.refiner ? wk.refiner.result : wk.seed;
    const win = wk.refiner ? `; guest-mode windows of thread ${wk.tid} (${wk.refiner.constraining} guest events checked)` : '';
    if (spans.length === 0) {
      fail(v, wk.seedFrom?.startsWith('estimate from sync')
        ? `no offset allowed by ${wk.seedFrom} puts every guest event inside a guest-mode window of host thread ${wk.tid}`
        : `no offset that aligns one of the host's ${wk.gaps.length} longest out-of-guest gaps with a hole of the guest's event stream puts every guest event inside a guest-mode window of host thread ${wk.tid}: the guest trace does not belong to this host trace, or its offset changed during the trace`, wk);
      continue;
    }
    out.set(v, { ...fromSpans(v, spans, shift, `${wk.seedFrom}${win}`, wk.refiner?.constraining ?? 0), syncMarkers: wk.markers, syncMatched: wk.syncMatched });
  }
  return out;
}

/** Intersection of two sorted, disjoint interval lists. */
function intersect(a: Span[], b: Span[]): Span[] {
  const out: Span[] = [];
  for (const [p, q] of a) for (const [r, s] of b) if (Math.max(p, r) <= Math.min(q, s)) out.push([Math.max(p, r), Math.min(q, s)]);
  return normalize(out);
}

/** Turns relative spans into the estimate (bigint offsets). */
function fromSpans(v: number, spans: Span[], shift: bigint, method: string, constraining: number): Omit<VcpuEstimate, 'syncMarkers' | 'syncMatched'> {
  const intervals = spans.map(([a, b]) => [shift + BigInt(a), shift + BigInt(b)] as [bigint, bigint]);
  const low = intervals[0][0];
  const high = intervals[intervals.length - 1][1];
  if (intervals.length === 1) return { vcpu: v, intervals, offset: low + (high - low) / 2n, low, high, method, constraining };
  // Several disjoint intervals: the bound is their hull, and the estimate the middle of the widest
  // one (the hull's middle may fit no evidence at all).
  let w = intervals[0];
  for (const x of intervals) if (x[1] - x[0] > w[1] - w[0]) w = x;
  const why = `${method}; ${intervals.length} disjoint intervals fit the evidence, the estimate is in the widest`;
  return { vcpu: v, intervals, offset: w[0] + (w[1] - w[0]) / 2n, low, high, method: why, constraining };
}

/**
 * Streams a guest source and calls `f(event, guestTsc − base)` for every event, after `onBase(base)`
 * (the source's first timestamp); returns the base, or undefined for an empty source. The guest must
 * be traced with a TSC clock (or counter).
 */
async function forEachGuestEvent(
  spec: SourceSpec,
  diags: Diagnostics,
  onBase: (base: bigint) => void,
  f: (ev: TraceEvent, g: number) => void,
): Promise<bigint | undefined> {
  const src = await openSource(spec, diags);
  let base: bigint | undefined;
  for await (const batch of src.batches) {
    if (base === undefined) {
      base = src.header.base!.value;
      const clock = src.header.clock;
      if (!isTscClock(clock) && clock !== 'counter' && clock !== 'unknown')
        throw new UserError(`${spec.file}: the guest was traced with the ${clock} clock; estimating its TSC offset needs the x86-tsc clock (record the guest with trace_clock x86-tsc)`);
      onBase(base);
    }
    for (const ev of batch) f(ev, ev.ts);
  }
  return base;
}
