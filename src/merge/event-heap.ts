/**
 * A binary min-heap of merged events ordered by (t, seq): the per-source reorder window.
 */
import type { MergedEvent } from './merged-event.js';

/** Min-heap by `t`, then `seq` (arrival order), so equal timestamps keep their input order. */
export class EventHeap {
  private a: MergedEvent[] = [];

  get size(): number {
    return this.a.length;
  }

  /** The smallest event, without removing it. */
  peek(): MergedEvent | undefined {
    return this.a[0];
  }

  push(e: MergedEvent): void {
    const a = this.a;
    let i = a.length;
    a.push(e);
    while (i > 0) {
      const p = (i - 1) >> 1;
      const q = a[p];
      if (q.t < e.t || (q.t === e.t && q.seq < e.seq)) break;
      a[i] = q;
      i = p;
    }
    a[i] = e;
  }

  pop(): MergedEvent | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length === 0 || last === undefined) return top;
    const n = a.length;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && (a[r].t < a[l].t || (a[r].t === a[l].t && a[r].seq < a[l].seq))) c = r;
      const x = a[c];
      if (last.t < x.t || (last.t === x.t && last.seq < x.seq)) break;
      a[i] = x;
      i = c;
    }
    a[i] = last;
    return top;
  }
}
