/**
 * The tracker's segments replayed in the merge: as the merged stream passes the host event that
 * starts a segment, the segment is handed to whoever draws or counts (the Chrome JSON slices, the
 * view's lanes, the analyses), next to the event itself. Every listener thus sees the very states
 * validation judged by, at the event where they start, in one order.
 *
 * The place of a segment is its `ord` (host/index.ts): 2 × the ordinal of its host event in the
 * merge's host order, + 1 for the thread a sched_switch switches to. The merge gives host events in
 * the same order as the index's pass, so counting them finds each segment's event.
 */
import type { HostIndex } from '../host/index.js';
import type { ThreadSegments } from './segments.js';
import type { KvmState } from './states.js';

/** The segments starting in one merged batch, in order: segment i starts at row `row[i]` of the batch. */
export class KvmTransitions {
  n = 0;
  row = new Int32Array(64);
  tid = new Int32Array(64);
  state = new Uint8Array(64);
  arg = new Int32Array(64);

  /** Empties the list for the next batch. */
  clear(): void {
    this.n = 0;
  }

  /** Appends a segment start. */
  push(row: number, tid: number, state: KvmState, arg: number): void {
    if (this.n === this.row.length) this.grow();
    this.row[this.n] = row;
    this.tid[this.n] = tid;
    this.state[this.n] = state;
    this.arg[this.n++] = arg;
  }

  private grow(): void {
    const k = this.row.length * 2;
    const g = <A extends Int32Array | Uint8Array>(a: A, b: A): A => (b.set(a), b);
    this.row = g(this.row, new Int32Array(k));
    this.tid = g(this.tid, new Int32Array(k));
    this.state = g(this.state, new Uint8Array(k));
    this.arg = g(this.arg, new Int32Array(k));
  }
}

interface Cursor {
  tid: number;
  segs: ThreadSegments;
  i: number;
}

/** Walks every tracked thread's segments in their order, batch by batch of the merge. */
export class KvmReplay {
  /** Cursors of the threads with segments left, as a binary heap by the next segment's place. */
  private readonly heap: Cursor[] = [];
  /** Host events passed so far. */
  private k = 0;
  readonly out = new KvmTransitions();

  constructor(
    index: HostIndex,
    /** Source indexes below this are the host's. */
    private readonly hostSources: number,
  ) {
    // Threads in ascending tid order: segments at the same place come out in a fixed order.
    for (const th of [...index.threads.values()].sort((a, b) => a.tid - b.tid)) if (th.segments.n) this.push({ tid: th.tid, segs: th.segments, i: 0 });
  }

  /** The segments starting at the batch's host events (read `out` before the next call). */
  mark(src: Int32Array, n: number): KvmTransitions {
    const out = this.out;
    out.clear();
    const heap = this.heap;
    for (let j = 0; j < n; j++) {
      if (src[j] >= this.hostSources) continue;
      const k = this.k++;
      while (heap.length && heap[0].segs.event(heap[0].i) === k) {
        const c = heap[0];
        out.push(j, c.tid, c.segs.state(c.i), c.segs.arg(c.i));
        if (++c.i < c.segs.n) this.down(0);
        else this.pop();
      }
    }
    return out;
  }

  private key(c: Cursor): number {
    return c.segs.ord(c.i);
  }

  private less(a: Cursor, b: Cursor): boolean {
    const ka = this.key(a);
    const kb = this.key(b);
    return ka < kb || (ka === kb && a.tid < b.tid);
  }

  private push(c: Cursor): void {
    const h = this.heap;
    h.push(c);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length) {
      h[0] = last;
      this.down(0);
    }
  }

  private down(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l], h[m])) m = l;
      if (r < h.length && this.less(h[r], h[m])) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m], h[i]];
      i = m;
    }
  }
}
