/**
 * The k-way merge of ring-buffer CPU streams (of one buffer or of several), in the order trace-cmd
 * reads them: the smallest key first, ties to the stream listed first (`tracecmd_iterate_events`).
 */
import type { Diagnostics } from '../../model/diagnostics.js';
import type { TraceDat } from './open.js';
import { CpuReader } from './pages.js';
import type { TraceDatBuffer } from './types.js';

/** One CPU stream with the buffer it belongs to. */
export interface Stream {
  reader: CpuReader;
  buffer: TraceDatBuffer;
  /** Index of the buffer in the merge. */
  bufferIndex: number;
  /** Index of the stream in the merge (0 … count-1, in creation order). */
  index: number;
}

/**
 * The smallest first-page timestamp of a buffer's CPUs (its natural base), or undefined if it holds
 * no data. A buffer whose data is all damaged (no page can be read) still has a base (0): its
 * readers must walk it to report the damage, and it yields no event.
 */
export function bufferBase(t: TraceDat, b: TraceDatBuffer): bigint | undefined {
  let min: bigint | undefined;
  for (const cd of b.cpus) {
    const ts = CpuReader.firstPageTs(t, b, cd);
    if (ts !== undefined && (min === undefined || ts < min)) min = ts;
  }
  return min ?? (b.cpus.some((cd) => cd.size > 0) ? 0n : undefined);
}

/**
 * Merges the CPU streams of `buffers`; `key(stream)` gives the current event's ordering value
 * (a number). {@link next} returns the stream whose event is next; the caller reads it, and the
 * following call advances it (a class rather than a generator: this runs once per event).
 */
export class StreamMerger {
  private live: Stream[] = [];
  private keys: number[] = [];
  private last = -1;
  /** Number of streams the merge started with. */
  readonly count: number;

  constructor(
    t: TraceDat,
    buffers: { buffer: TraceDatBuffer; base: bigint }[],
    diags: Diagnostics,
    private readonly key: (s: Stream) => number,
  ) {
    buffers.forEach(({ buffer, base }, bufferIndex) => {
      for (const cd of buffer.cpus) {
        if (cd.size === 0) continue;
        const reader = new CpuReader(t, buffer, cd, base, diags);
        const s = { reader, buffer, bufferIndex, index: this.live.length };
        if (reader.next()) {
          this.live.push(s);
          this.keys.push(key(s));
        }
      }
    });
    this.count = this.live.length;
  }

  /** The stream holding the next event, or undefined at the end. */
  next(): Stream | undefined {
    const live = this.live;
    const keys = this.keys;
    if (this.last >= 0) {
      const s = live[this.last];
      if (s.reader.next()) keys[this.last] = this.key(s);
      else {
        live.splice(this.last, 1);
        keys.splice(this.last, 1);
      }
      this.last = -1;
    }
    const n = live.length;
    if (n === 0) return undefined;
    let best = 0;
    let bk = keys[0];
    for (let i = 1; i < n; i++) {
      if (keys[i] < bk) {
        bk = keys[i];
        best = i;
      }
    }
    this.last = best;
    return live[best];
  }
}
