/**
 * The streaming k-way merge: every source (the host, any number of guests) is read batch by
 * batch, guest timestamps are mapped to host TSC, each source passes through a bounded reorder
 * window (mapped guest events from different vCPUs, or per-CPU buffers, may interleave slightly
 * out of order), and the heads are merged by (host TSC, source, arrival). Memory is bounded by
 * the window size per source, whatever the input size.
 */
import { isTscClock } from '../model/clock.js';
import { formatDiagnostic, type Diagnostics } from '../model/diagnostics.js';
import { UserError } from '../model/errors.js';
import type { EventBlock } from '../model/event-block.js';
import { MergedBatch } from './merged-event.js';
import type { GuestPlan } from './plan.js';
import type { OpenSource } from './source.js';
import { guestToHost } from './tsc-mapping.js';
import { guestTsc, hostTsc, type HostTsc } from '../model/units.js';

/** One input of the merge. */
export interface TimelineSource {
  role: 'host' | 'guest';
  machine: string;
  open: OpenSource;
  /** For guests: how their TSC maps to the host's. */
  plan?: GuestPlan;
}

/** What a source contributed to the merge. */
export interface SourceCounts {
  events: number;
  /** Events that came later than the reorder window reaches: emitted late, out of time order. */
  outOfOrder: number;
  /** How far behind the source's latest emitted event the worst of them was, in timeline cycles. */
  outOfOrderCycles: number;
  /** The first of them: its line (text) or byte offset (binary) in the source file. */
  firstOutOfOrder: number | undefined;
}

/** The merged timeline's frame of reference, known once the first host batch is read. */
export interface Timeline {
  /** Absolute host TSC (or the single source's clock value) at t = 0. */
  base: HostTsc;
  sources: TimelineSource[];
  counts: SourceCounts[];
  /** Events held per source to restore order. */
  window: number;
  /**
   * Timeline time of the merge's first event: time 0 of every output that prints relative times
   * (the text's +SECONDS, the Chrome JSON's `ts`, the view's axis). Known before the first batch is
   * yielded (NaN until then); the one place that zero is decided.
   */
  zero: number;
}

/** The absolute host TSC (or the single source's clock value) of the timeline's time 0 (see {@link Timeline.zero}). */
export function zeroHostTsc(tl: Timeline): HostTsc {
  return hostTsc(tl.base + BigInt(tl.zero));
}

/**
 * The failures an out-of-order source makes: the merged output is not in time order where its
 * late events went, so the run's verdict cannot be PASSED (one line per such source).
 */
export function reorderFailures(tl: Timeline): string[] {
  return tl.sources.flatMap((s, i) => {
    const c = tl.counts[i];
    if (c.outOfOrder === 0) return [];
    const at = s.open.format === 'trace-dat' ? { byteOffset: c.firstOutOfOrder } : { line: c.firstOutOfOrder };
    return [
      `${s.open.spec.file}: ${c.outOfOrder} event(s) out of time order by more than the ${tl.window}-event reorder window (by up to ${c.outOfOrderCycles} cycles), ` +
        `so the merged timeline is not in time order there; the first is ${formatDiagnostic({ file: s.open.spec.file, ...at, message: '' }).slice(0, -2)}`,
    ];
  });
}

/** Options of a merge. */
export interface MergeOptions {
  diags: Diagnostics;
  /** Events held per source to restore order (default 1024). */
  window?: number;
  /** Events per yielded batch (default 1024). */
  batch?: number;
  /** Called with the timeline once its base is known (before the first batch is yielded). */
  onTimeline?: (tl: Timeline) => void;
  /** The timeline's base when the host is not among the sources (a merge of guests on an indexed host's timeline). */
  base?: HostTsc;
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** Merges the sources into one ordered stream of batches. Sources[0] must be the host when there is one. */
export async function* mergeTimeline(sources: TimelineSource[], opts: MergeOptions): AsyncGenerator<MergedBatch> {
  const W = opts.window ?? 1024;
  const B = opts.batch ?? 1024;
  const n = sources.length;
  const iters = sources.map((s) => s.open.blocks[Symbol.asyncIterator]());
  const queues = sources.map(() => new SourceQueue());
  const eof = sources.map(() => false);
  const lastOut = new Array<number>(n).fill(-Infinity);
  const counts: SourceCounts[] = sources.map(() => ({ events: 0, outOfOrder: 0, outOfOrderCycles: 0, firstOutOfOrder: undefined }));
  let timeline: Timeline | undefined;
  const mappers: BlockMapper[] = [];

  const makeTimeline = (base: bigint): void => {
    timeline = { base: hostTsc(base), sources, counts, window: W, zero: NaN };
    opts.onTimeline?.(timeline);
  };

  const refill = async (i: number): Promise<void> => {
    while (!eof[i] && queues[i].size < W) {
      const r = await iters[i].next();
      if (r.done) {
        eof[i] = true;
        break;
      }
      if (!timeline && opts.base !== undefined) makeTimeline(opts.base);
      if (!timeline) {
        const base = sources[i].open.header.base;
        if (!base) continue;
        // The host's first timestamp anchors the timeline; without a host, the first source's.
        if (sources[0].role === 'host' && i !== 0) {
          await refill(0);
          if (!timeline) makeTimeline((sources[0].open.header.base ?? base).value);
        } else makeTimeline(base.value);
      }
      // A source's mapper needs its own base, known once its first block is read.
      const map = (mappers[i] ??= makeMapper(sources[i], timeline!.base));
      map(r.value, queues[i]);
    }
  };

  try {
    for (let i = 0; i < n; i++) await refill(i);
    const out = new MergedBatch(B);
    for (;;) {
      let best = -1;
      let bestT = 0;
      for (let i = 0; i < n; i++) {
        const q = queues[i];
        if (!eof[i] && q.size < W >> 1) await refill(i);
        if (q.size && (best < 0 || q.t[q.head] < bestT)) {
          best = i;
          bestT = q.t[q.head];
        }
      }
      if (best < 0) break;
      const q = queues[best];
      const h = q.head;
      if (bestT < lastOut[best]) late(counts[best], lastOut[best] - bestT, q.blk[h].line[q.row[h]]);
      else lastOut[best] = bestT;
      counts[best].events++;
      // The first event out is the earliest of every source's head: time 0 of the outputs.
      if (timeline!.zero !== timeline!.zero) timeline!.zero = bestT;
      const k = out.n++;
      out.t[k] = bestT;
      out.src[k] = best;
      out.seq[k] = q.seq[h];
      out.vcpu[k] = q.vcpu[h];
      out.row[k] = q.row[h];
      out.blk[k] = q.blk[h];
      q.shift();
      if (out.n === B) {
        yield out;
        // The consumer is done with the batch when it asks for the next: refill the same columns.
        out.clear();
      }
    }
    if (out.n) yield out;
  } finally {
    // Also when stopped early (an error, or the consumer left): every source's reader ends and
    // closes its file.
    for (const it of iters) await it.return?.(undefined);
  }
}

/** Counts an event emitted `byCycles` behind its source's latest, found at `where` in its file. */
function late(c: SourceCounts, byCycles: number, where: number): void {
  if (c.outOfOrder++ === 0) c.firstOutOfOrder = where;
  if (byCycles > c.outOfOrderCycles) c.outOfOrderCycles = byCycles;
}

/**
 * A source's reorder window, as columns: a FIFO while events arrive in order (the common case:
 * O(1) per event), re-sorted (stable, by time then arrival) when a block brings an event earlier
 * than one queued.
 */
class SourceQueue {
  head = 0;
  private tail = 0;
  private maxIn = -Infinity;
  private seqNext = 0;
  /** Whether the rows appended since the last {@link settle} kept time order. */
  private sorted = true;
  t = new Float64Array(4096);
  seq = new Float64Array(4096);
  vcpu = new Int32Array(4096);
  row = new Int32Array(4096);
  blk: EventBlock[] = new Array<EventBlock>(4096);

  get size(): number {
    return this.tail - this.head;
  }

  shift(): void {
    this.blk[this.head] = undefined as unknown as EventBlock; // let the block go once its rows are out
    this.head++;
  }

  /** Makes room for `extra` more rows. */
  reserve(extra: number): void {
    if (this.tail + extra <= this.t.length) return;
    const live = this.size;
    let cap = this.t.length;
    while (live + extra > cap) cap *= 2;
    const move = <A extends Float64Array | Int32Array>(a: A, make: (n: number) => A): A => {
      const b = cap === a.length ? a : make(cap);
      b.set(a.subarray(this.head, this.tail));
      return b;
    };
    this.t = move(this.t, (k) => new Float64Array(k));
    this.seq = move(this.seq, (k) => new Float64Array(k));
    this.vcpu = move(this.vcpu, (k) => new Int32Array(k));
    this.row = move(this.row, (k) => new Int32Array(k));
    const blk = new Array<EventBlock>(cap);
    for (let k = 0; k < live; k++) blk[k] = this.blk[this.head + k];
    this.blk = blk;
    this.head = 0;
    this.tail = live;
  }

  /** Appends a row (after {@link reserve}). */
  push(t: number, vcpu: number, blk: EventBlock, row: number): void {
    const k = this.tail++;
    this.t[k] = t;
    this.seq[k] = this.seqNext++;
    this.vcpu[k] = vcpu;
    this.row[k] = row;
    this.blk[k] = blk;
    if (t < this.maxIn) this.sorted = false;
    else this.maxIn = t;
  }

  /** Restores time order after a block's rows are appended, when they broke it. */
  settle(): void {
    if (this.sorted) return;
    this.sorted = true;
    const h = this.head;
    const order = Array.from({ length: this.size }, (_, k) => h + k);
    order.sort((a, b) => this.t[a] - this.t[b] || this.seq[a] - this.seq[b]);
    const t = order.map((k) => this.t[k]);
    const seq = order.map((k) => this.seq[k]);
    const vcpu = order.map((k) => this.vcpu[k]);
    const row = order.map((k) => this.row[k]);
    const blk = order.map((k) => this.blk[k]);
    for (let k = 0; k < order.length; k++) {
      this.t[h + k] = t[k];
      this.seq[h + k] = seq[k];
      this.vcpu[h + k] = vcpu[k];
      this.row[h + k] = row[k];
      this.blk[h + k] = blk[k];
    }
  }
}

/** Puts one block of a source on the timeline, into the source's queue. */
type BlockMapper = (blk: EventBlock, q: SourceQueue) => void;

/** Builds the function that puts a source's events on the timeline. */
function makeMapper(s: TimelineSource, base: bigint): BlockMapper {
  const srcBase = s.open.header.base!;
  if (s.role === 'host' || !s.plan) {
    const shift = Number(srcBase.value - base);
    return (blk, q) => {
      q.reserve(blk.n);
      for (let r = 0; r < blk.n; r++) q.push(blk.ts[r] + shift, -1, blk, r);
      q.settle();
    };
  }
  const plan0 = s.plan;
  const clockSync = plan0.clockSync?.get(s.open.spec.file);
  if (clockSync) {
    // A time-clock guest: ns → the CPU's guest TSC (its markers' fit) → host TSC (its vCPU's mapping).
    return (blk, q) => {
      q.reserve(blk.n);
      for (let r = 0; r < blk.n; r++) {
        const vcpu = plan0.cpuToVcpu(blk.cpu[r]);
        q.push(Number(plan0.vcpu(vcpu).mapping.toHost(clockSync.toTsc(srcBase.abs(blk.ts[r]), blk.cpu[r])) - base), vcpu, blk, r);
      }
      q.settle();
    };
  }
  const clock = s.open.header.clock;
  if (!isTscClock(clock) && clock !== 'counter')
    throw new UserError(
      `${s.open.spec.file}: the guest was traced with the ${clock === 'unknown' ? 'a time clock (seconds)' : clock + ' clock'}; mapping it to host TSC needs the x86-tsc clock, or kvmsync markers and the clock named (--guest-clock, or the bundle's traceClock)`,
    );
  const plan = s.plan;
  // Per guest CPU: its vCPU, and a constant shift when the vCPU's mapping is one offset (the common
  // case; NaN when not), else exact bigint math.
  const vcpuOf: number[] = [];
  const shiftOf: number[] = [];
  const learn = (cpu: number): void => {
    const vcpu = plan.cpuToVcpu(cpu);
    const m = plan.vcpu(vcpu).mapping;
    vcpuOf[cpu] = vcpu;
    shiftOf[cpu] = m.isConstantShift ? Number(guestToHost(m.pieces[0], guestTsc(srcBase.value)) - base) : NaN;
  };
  return (blk, q) => {
    q.reserve(blk.n);
    for (let r = 0; r < blk.n; r++) {
      const cpu = blk.cpu[r];
      if (vcpuOf[cpu] === undefined) learn(cpu);
      const vcpu = vcpuOf[cpu];
      const d = shiftOf[cpu];
      const t = d === d ? blk.ts[r] + d : Number(plan.vcpu(vcpu).mapping.toHost(guestTsc(srcBase.abs(blk.ts[r]))) - base);
      if (t > MAX_SAFE || t < -MAX_SAFE)
        throw new UserError(
          `${s.open.spec.file}:${blk.line[r]}: this guest event maps ${t} cycles away from the host trace's start — the TSC mapping is wrong or the guest trace does not belong to this host trace`,
        );
      q.push(t, vcpu, blk, r);
    }
    q.settle();
  };
}
