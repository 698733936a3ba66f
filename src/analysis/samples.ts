/**
 * Growable typed arrays of samples (cycles, exact as safe integers) and their statistics. Numbers
 * stay in a Float64Array — 8 bytes per sample — never in arrays of event objects.
 */
import { deviation, quantileSorted } from 'd3-array';
import { cyclesToNs } from '../model/units.js';

/** An append-only Float64Array that doubles when full. */
export class SampleBuffer {
  private buf: Float64Array;
  length = 0;
  constructor(initial = 64) {
    this.buf = new Float64Array(initial);
  }

  /** Appends one value. */
  push(v: number): void {
    if (this.length === this.buf.length) {
      const n = new Float64Array(this.buf.length * 2);
      n.set(this.buf);
      this.buf = n;
    }
    this.buf[this.length++] = v;
  }

  /** The samples, in insertion order (a view, not a copy). */
  view(): Float64Array {
    return this.buf.subarray(0, this.length);
  }

  /** A sorted copy of the samples. */
  sorted(): Float64Array {
    return Float64Array.from(this.view()).sort();
  }
}

/** Summary statistics of a sample set, in the samples' unit. */
export interface SampleStats {
  count: number;
  sum: number;
  min: number;
  max: number;
  mean: number;
  /** Quantiles by linear interpolation between closest ranks (d3's R-7). */
  p50: number;
  p90: number;
  p99: number;
  /** Sample standard deviation (n − 1); undefined for fewer than two samples. */
  stddev: number | undefined;
}

/** Statistics of the samples; undefined when there are none. */
export function sampleStats(b: SampleBuffer): SampleStats | undefined {
  if (b.length === 0) return undefined;
  const s = b.sorted();
  // d3's types ask for an array; quantileSorted only indexes, so a typed array is read in place.
  const arr = s as unknown as number[];
  let sum = 0;
  for (let i = 0; i < s.length; i++) sum += s[i];
  return {
    count: s.length,
    sum,
    min: s[0],
    max: s[s.length - 1],
    mean: sum / s.length,
    p50: quantileSorted(arr, 0.5)!,
    p90: quantileSorted(arr, 0.9)!,
    p99: quantileSorted(arr, 0.99)!,
    stddev: s.length >= 2 ? deviation(s) : undefined,
  };
}

/** Cycles as ns (not rounded): model/units.ts's conversion. */
export const cyclesToNsF = cyclesToNs;
