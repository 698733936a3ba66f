/**
 * The tracker's segments of one host thread: where each starts (timeline cycles, and its place in
 * the merge's host order), its state and arg, and where its host event is in the host's files
 * (`where`, host/where.ts: what a report names). A segment lasts until the next one starts; the
 * last one until the host trace ends.
 *
 * They are kept packed (segment-pack.ts: 5 to 7 bytes a segment on real hosts) and read through a
 * few unpacked chunks: the validator's cursor, the merge's replay and the reports each read near
 * where the merge is, so the chunks they read stay unpacked while they do.
 */
import type { SegmentSink } from './tracker.js';
import { GUEST, isNotCheckable, type KvmState } from './states.js';
import { CHUNK, CHUNK_SHIFT, SegmentPacker, type SegmentColumns } from './segment-pack.js';

/** Chunks kept unpacked at once (readers: the cursor and the chunk after it, the replay, a report's edge). */
const SLOTS = 4;
const MASK = CHUNK - 1;
const NO_COLUMNS: SegmentColumns = { t: new Float64Array(0), event: new Float64Array(0), state: new Uint8Array(0), arg: new Float64Array(0), where: new Float64Array(0) };

/** One thread's segments, in order (a {@link SegmentSink} that keeps them). */
export class ThreadSegments implements SegmentSink {
  private readonly packed = new SegmentPacker();
  /** The unpacked chunks, slot s at rows [s·CHUNK, (s + 1)·CHUNK); made on the first read (most threads' segments are never read). */
  private cols: SegmentColumns = NO_COLUMNS;
  /** The chunk in each slot (-1: none), and when each was last made the hot one. */
  private readonly slotChunk = new Int32Array(SLOTS).fill(-1);
  private readonly slotUsed = new Float64Array(SLOTS);
  private uses = 0;
  /** The chunk read last, and the first row of its slot. */
  private hot = -1;
  private hotRow = 0;

  /** Number of segments. */
  get n(): number {
    return this.packed.n;
  }

  /** Appends a segment (the tracker calls this in order). `ord` is 2 × host event ordinal + side. */
  segment(t: number, ord: number, state: KvmState, arg: number, where = -1): void {
    const c = this.packed.n >>> CHUNK_SHIFT;
    // The open chunk changes: an unpacked copy of it is stale.
    for (let s = 0; s < SLOTS; s++) if (this.slotChunk[s] === c) (this.slotChunk[s] = -1), (this.hot = -1);
    const side = ord & 1;
    this.packed.push(t, (ord - side) / 2, side, state, arg, where);
  }

  /** Start of segment i, timeline cycles. */
  time(i: number): number {
    const r = this.row(i);
    return this.cols.t[r];
  }

  /** Where segment i's host event is (host/where.ts), -1 when not known. */
  where(i: number): number {
    const r = this.row(i);
    return this.cols.where[r];
  }

  /** Place of segment i: 2 × the ordinal of its host event + side (1 for the thread a sched_switch switches to). */
  ord(i: number): number {
    const r = this.row(i);
    return 2 * this.cols.event[r] + (this.cols.state[r] >> 3);
  }

  /** Ordinal of segment i's host event in the merge's host order. */
  event(i: number): number {
    const r = this.row(i);
    return this.cols.event[r];
  }

  /** State of segment i. */
  state(i: number): KvmState {
    const r = this.row(i);
    return this.cols.state[r] & 7;
  }

  /** Arg of segment i: the vCPU (GUEST from kvm_entry), the reason's id (EXIT, USERSPACE), or -1. */
  arg(i: number): number {
    const r = this.row(i);
    return this.cols.arg[r];
  }

  /** Index of the last segment starting at or before t (-1 when none): the chunk by its first time, then the segment in it. */
  at(t: number): number {
    const p = this.packed;
    let lo = 0;
    let hi = (p.n + MASK) >>> CHUNK_SHIFT;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (p.chunkT[mid] <= t) lo = mid + 1;
      else hi = mid;
    }
    if (lo === 0) return -1;
    const first = (lo - 1) * CHUNK;
    const base = this.row(first) - first;
    const times = this.cols.t;
    let a = first;
    let b = Math.min(p.n, first + CHUNK);
    while (a < b) {
      const mid = (a + b) >> 1;
      if (times[base + mid] <= t) a = mid + 1;
      else b = mid;
    }
    return a - 1;
  }

  /** Drops the spare capacity once the tracker is done. */
  trim(): void {
    this.packed.trim();
  }

  /** Bytes held (packed, and the unpacked chunks). */
  bytes(): number {
    const c = this.cols;
    return this.packed.bytes() + c.t.byteLength + c.event.byteLength + c.state.byteLength + c.arg.byteLength + c.where.byteLength;
  }

  /** The row of segment i in the unpacked columns, unpacking its chunk when it is not (call it before reading `cols`: it may make them). */
  private row(i: number): number {
    const c = i >>> CHUNK_SHIFT;
    return (c === this.hot ? this.hotRow : this.load(c)) + (i & MASK);
  }

  /** Makes chunk c the hot one (unpacking it into the least recently used slot when it is not unpacked); returns its first row. */
  private load(c: number): number {
    let slot = this.slotChunk.indexOf(c);
    if (slot < 0) {
      if (this.cols === NO_COLUMNS) this.cols = unpackedColumns();
      slot = 0;
      for (let s = 1; s < SLOTS; s++) if (this.slotUsed[s] < this.slotUsed[slot]) slot = s;
      this.packed.unpack(c, this.cols, slot * CHUNK);
      this.slotChunk[slot] = c;
    }
    this.slotUsed[slot] = ++this.uses;
    this.hot = c;
    this.hotRow = slot * CHUNK;
    return this.hotRow;
  }
}

function unpackedColumns(): SegmentColumns {
  const k = SLOTS * CHUNK;
  return { t: new Float64Array(k), event: new Float64Array(k), state: new Uint8Array(k), arg: new Float64Array(k), where: new Float64Array(k) };
}

/** Accepted stretches of a thread as two sorted arrays (closed intervals), for estimation. Times are timeline cycles. */
export interface GuestWindows {
  starts: Float64Array;
  ends: Float64Array;
}

/**
 * The stretches where a guest event of the thread is accepted — GUEST (closed: an event at the
 * exit's cycle is inside) and not checkable (up to the cycle before the next state) — merged where
 * they touch. The first segment starts at the host trace's first event; what lies before it cannot
 * be checked, so a first accepted stretch reaches back to -Infinity, and one open at the end runs
 * to +Infinity. A thread without segments is accepted everywhere.
 */
export function acceptedWindows(s: ThreadSegments | undefined): GuestWindows {
  const starts: number[] = [];
  const ends: number[] = [];
  const push = (a: number, b: number): void => {
    if (a > b) return;
    const k = ends.length - 1;
    if (k >= 0 && a <= ends[k] + 1) ends[k] = Math.max(ends[k], b);
    else starts.push(a), ends.push(b);
  };
  if (!s || s.n === 0) push(-Infinity, Infinity);
  else
    for (let i = 0; i < s.n; i++) {
      const st = s.state(i);
      const a = i === 0 ? -Infinity : s.time(i);
      const next = i + 1 < s.n ? s.time(i + 1) : Infinity;
      if (st === GUEST) push(a, next);
      else if (isNotCheckable(st)) push(a, next - 1);
    }
  return { starts: Float64Array.from(starts), ends: Float64Array.from(ends) };
}
