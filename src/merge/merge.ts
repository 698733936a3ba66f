/**
 * The streaming k-way merge: every source (the host, any number of guests) is read batch by
 * batch, guest timestamps are mapped to host TSC, each source passes through a bounded reorder
 * window (mapped guest events from different vCPUs, or per-CPU buffers, may interleave slightly
 * out of order), and the heads are merged by (host TSC, source, arrival). Memory is bounded by
 * the window size per source, whatever the input size.
 */
import { isTscClock } from '../model/clock.js';
import type { Diagnostics } from '../model/diagnostics.js';
import { UserError } from '../model/errors.js';
import type { TraceEvent } from '../model/event.js';
import { compareMerged, type MergedEvent } from './merged-event.js';
import type { GuestPlan } from './plan.js';
import type { OpenSource } from './source.js';
import { guestToHost } from './tsc-mapping.js';

/** One input of the merge. */
export interface TimelineSource {
  role: 'host' | 'guest';
  machine: string;
  open: OpenSource;
  /** For guests: how their TSC maps to the host's. */
  plan?: GuestPlan;
}

/** The merged timeline's frame of reference, known once the first host batch is read. */
export interface Timeline {
  /** Absolute host TSC (or the single source's clock value) at t = 0. */
  base: bigint;
  sources: TimelineSource[];
  /** Events each source contributed; events a source emitted out of order beyond the window. */
  counts: { events: number; outOfOrder: number }[];
}

/** Options of a merge. */
export interface MergeOptions {
  diags: Diagnostics;
  /** Events held per source to restore order (default 4096). */
  window?: number;
  /** Events per yielded batch (default 4096). */
  batch?: number;
  /** Called with the timeline once its base is known (before the first batch is yielded). */
  onTimeline?: (tl: Timeline) => void;
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** Merges the sources into one ordered stream of batches. Sources[0] must be the host when there is one. */
export async function* mergeTimeline(sources: TimelineSource[], opts: MergeOptions): AsyncGenerator<MergedEvent[]> {
  const W = opts.window ?? 1024;
  const B = opts.batch ?? 1024;
  const n = sources.length;
  const iters = sources.map((s) => s.open.batches[Symbol.asyncIterator]());
  const heaps = sources.map(() => new SourceQueue());
  const eof = sources.map(() => false);
  const seqs = new Array<number>(n).fill(0);
  const lastOut = new Array<number>(n).fill(-Infinity);
  const counts = sources.map(() => ({ events: 0, outOfOrder: 0 }));
  let timeline: Timeline | undefined;
  const mappers: ((ev: TraceEvent) => MergedEvent)[] = [];

  const makeTimeline = (base: bigint): void => {
    timeline = { base, sources, counts };
    opts.onTimeline?.(timeline);
  };

  const refill = async (i: number): Promise<void> => {
    while (!eof[i] && heaps[i].size < W) {
      const r = await iters[i].next();
      if (r.done) {
        eof[i] = true;
        break;
      }
      if (!timeline) {
        const base = sources[i].open.header.base;
        if (!base) continue;
        // The host's first timestamp anchors the timeline; without a host, the first source's.
        if (sources[0].role === 'host' && i !== 0) {
          await refill(0);
          if (!timeline) makeTimeline((sources[0].open.header.base ?? base).value);
        } else makeTimeline(base.value);
      }
      // A source's mapper needs its own base, known once its first batch is read.
      const map = (mappers[i] ??= makeMapper(sources[i], i, timeline!.base, () => seqs[i]++));
      const batch = r.value;
      const mapped = new Array<MergedEvent>(batch.length);
      for (let k = 0; k < batch.length; k++) mapped[k] = map(batch[k]);
      heaps[i].pushBatch(mapped);
    }
  };

  try {
    for (let i = 0; i < n; i++) await refill(i);
    let out: MergedEvent[] = [];
    for (;;) {
      let best = -1;
      let bestE: MergedEvent | undefined;
      for (let i = 0; i < n; i++) {
        if (!eof[i] && heaps[i].size < W >> 1) await refill(i);
        const e = heaps[i].peek();
        if (e && (bestE === undefined || e.t < bestE.t || (e.t === bestE.t && i < best))) {
          best = i;
          bestE = e;
        }
      }
      if (!bestE) break;
      heaps[best].shift();
      if (bestE.t < lastOut[best]) counts[best].outOfOrder++;
      else lastOut[best] = bestE.t;
      counts[best].events++;
      out.push(bestE);
      if (out.length >= B) {
        yield out;
        out = [];
      }
    }
    if (out.length) yield out;
    for (let i = 0; i < n; i++)
      if (counts[i].outOfOrder)
        opts.diags.add({
          file: sources[i].open.spec.file,
          message: `${counts[i].outOfOrder} event(s) arrived more than ${W} events out of time order and were emitted late`,
        });
  } finally {
    // Also when stopped early (an error, or the consumer left): every source's reader ends and
    // closes its file.
    for (const it of iters) await it.return?.(undefined);
  }
}

/**
 * A source's reorder window: a FIFO while events arrive in order (the common case: O(1) per event),
 * re-sorted (stable, by time then arrival) when a batch brings an event earlier than one queued.
 */
class SourceQueue {
  private items: MergedEvent[] = [];
  private head = 0;
  private maxIn = -Infinity;

  get size(): number {
    return this.items.length - this.head;
  }

  peek(): MergedEvent | undefined {
    return this.head < this.items.length ? this.items[this.head] : undefined;
  }

  shift(): MergedEvent {
    const e = this.items[this.head++];
    if (this.head >= 8192 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return e;
  }

  pushBatch(batch: MergedEvent[]): void {
    let sorted = true;
    let max = this.maxIn;
    for (const e of batch) {
      if (e.t < max) sorted = false;
      else max = e.t;
      this.items.push(e);
    }
    this.maxIn = max;
    if (!sorted) {
      this.items = this.items.slice(this.head).sort(compareMerged);
      this.head = 0;
    }
  }
}

/** Builds the function that puts a source's events on the timeline. */
function makeMapper(s: TimelineSource, src: number, base: bigint, nextSeq: () => number): (ev: TraceEvent) => MergedEvent {
  const srcBase = s.open.header.base!;
  if (s.role === 'host' || !s.plan) {
    const shift = Number(srcBase.value - base);
    return (ev) => ({ t: ev.ts + shift, src, seq: nextSeq(), vcpu: -1, ev });
  }
  const plan0 = s.plan;
  const clockSync = plan0.clockSync?.get(s.open.spec.file);
  if (clockSync) {
    // A time-clock guest: ns → guest TSC (its markers) → host TSC (its vCPU's mapping); exact bigints.
    return (ev) => {
      const vcpu = plan0.cpuToVcpu(ev.cpu);
      const t = Number(plan0.vcpu(vcpu).mapping.toHost(clockSync.toTsc(srcBase.abs(ev.ts))) - base);
      return { t, src, seq: nextSeq(), vcpu, ev };
    };
  }
  const clock = s.open.header.clock;
  if (!isTscClock(clock) && clock !== 'counter')
    throw new UserError(
      `${s.open.spec.file}: the guest was traced with the ${clock === 'unknown' ? 'a time clock (seconds)' : clock + ' clock'}; mapping it to host TSC needs the x86-tsc clock, or kvmsync markers and the clock named (--guest-clock, or the bundle's traceClock)`,
    );
  const plan = s.plan;
  // Per vCPU: a constant shift when the mapping is one offset (the common case), else exact bigint math.
  const shifts = new Map<number, number | null>();
  const shiftOf = (vcpu: number): number | null => {
    let d = shifts.get(vcpu);
    if (d !== undefined) return d;
    const m = plan.vcpu(vcpu).mapping;
    d = m.isConstantShift ? Number(guestToHost(m.pieces[0], srcBase.value) - base) : null;
    shifts.set(vcpu, d);
    return d;
  };
  return (ev) => {
    const vcpu = plan.cpuToVcpu(ev.cpu);
    const d = shiftOf(vcpu);
    const t = d !== null ? ev.ts + d : Number(plan.vcpu(vcpu).mapping.toHost(srcBase.abs(ev.ts)) - base);
    if (t > MAX_SAFE || t < -MAX_SAFE)
      throw new UserError(
        `${s.open.spec.file}:${ev.line}: this guest event maps ${t} cycles away from the host trace's start — the TSC mapping is wrong or the guest trace does not belong to this host trace`,
      );
    return { t, src, seq: nextSeq(), vcpu, ev };
  };
}
