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
}

/** The smallest first-page timestamp of a buffer's CPUs (its natural base), or undefined if empty. */
export function bufferBase(t: TraceDat, b: TraceDatBuffer): bigint | undefined {
  let min: bigint | undefined;
  for (const cd of b.cpus) {
    const ts = CpuReader.firstPageTs(t, b, cd);
    if (ts !== undefined && (min === undefined || ts < min)) min = ts;
  }
  return min;
}

/**
 * Merges the CPU streams of `buffers`; `key(stream)` gives the current event's ordering value
 * (a number). Yields the stream whose event is next; the caller reads it, then the merge
 * advances it.
 */
export function* mergeStreams(
  t: TraceDat,
  buffers: { buffer: TraceDatBuffer; base: bigint }[],
  diags: Diagnostics,
  key: (s: Stream) => number,
): Generator<Stream> {
  const live: Stream[] = [];
  const keys: number[] = [];
  buffers.forEach(({ buffer, base }, bufferIndex) => {
    for (const cd of buffer.cpus) {
      if (cd.size === 0) continue;
      const reader = new CpuReader(t, buffer, cd, base, diags);
      const s = { reader, buffer, bufferIndex };
      if (reader.next()) {
        live.push(s);
        keys.push(key(s));
      }
    }
  });
  while (live.length > 0) {
    let best = 0;
    let bk = keys[0];
    for (let i = 1; i < live.length; i++) {
      if (keys[i] < bk) {
        bk = keys[i];
        best = i;
      }
    }
    const s = live[best];
    yield s;
    if (s.reader.next()) keys[best] = key(s);
    else {
      live.splice(best, 1);
      keys.splice(best, 1);
    }
  }
}
