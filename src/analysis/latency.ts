/**
 * `kvmtrace latency`: from-event → to-event latencies on the merged timeline, reported as
 * netperf's omni test names its latency statistics (µs), with netperf's decade histogram.
 * Samples are kept in cycles in a Float64Array; statistics use d3-array (quantiles on one sorted
 * copy, sample standard deviation, binning).
 */
import { bin } from 'd3-array';
import type { MergedBatch, MergedEvent } from '../merge/merged-event.js';
import type { MergeConsumer } from '../merge/consumer.js';
import { Pairer, type PairCounts } from './pairing.js';
import { SampleBuffer, sampleStats, cyclesToNsF } from './samples.js';

/** Feeds a {@link Pairer} and keeps each pair's latency (cycles). */
export class LatencyAnalyzer implements MergeConsumer {
  readonly samples = new SampleBuffer(1024);
  constructor(
    readonly pairer: Pairer,
    /** Only these events are offered (`--vm`: the VM's own); undefined offers all. */
    private readonly keep?: (m: MergedEvent) => boolean,
  ) {}

  /** Feeds one batch of merged events. */
  batch(mb: MergedBatch): void {
    for (const m of mb.events()) {
      if (this.keep && !this.keep(m)) continue;
      const step = this.pairer.offer(m);
      if (step?.finished) this.samples.push(m.t - step.finished.fromT);
    }
  }
}

/** netperf omni output selectors for latency, in netperf's names. */
export const NETPERF_KEYS = ['MIN_LATENCY', 'MEAN_LATENCY', 'P50_LATENCY', 'P90_LATENCY', 'P99_LATENCY', 'MAX_LATENCY', 'STDDEV_LATENCY'] as const;
/** kvmtrace's own keys for the pairing counts. */
export const COUNT_KEYS = ['LATENCY_SAMPLES', 'FROM_EVENTS', 'TO_EVENTS', 'UNPAIRED_FROM', 'SUPERSEDED_FROM', 'OPEN_FROM_AT_END', 'UNMATCHED_TO', 'NO_KEY'] as const;
/** Every selectable key. */
export const LATENCY_KEYS = [...NETPERF_KEYS, ...COUNT_KEYS] as const;
/** A selectable key. */
export type LatencyKey = (typeof LATENCY_KEYS)[number];

/** netperf's histogram rows (netlib.c: `HIST_add`), each of ten buckets. */
export const HIST_ROWS = ['UNIT_USEC', 'TEN_USEC', 'HUNDRED_USEC', 'UNIT_MSEC', 'TEN_MSEC', 'HUNDRED_MSEC', 'UNIT_SEC', 'TEN_SEC'] as const;

/** netperf's decade histogram: `rows[r][b]` counts latencies in [b·10^r, (b+1)·10^r) µs; bucket 0 of rows above the first stays empty, as in netperf. */
export interface DecadeHistogram {
  rows: number[][];
  /** Latencies of 100 s or more (netperf's `>100_SECS`). */
  over100s: number;
  total: number;
}

/** The report of a latency run. Latencies are µs (not rounded). */
export interface LatencyReport {
  from: string;
  to: string;
  key: string;
  /** The VM `--vm` selected (its label), or null for events of every VM. */
  vm: string | null;
  values: Record<LatencyKey, number | null>;
  counts: PairCounts;
  histogram: DecadeHistogram;
}

/**
 * Bins µs latencies like netperf's HIST_add, which truncates to whole µs and then divides by ten
 * until the value is below ten: thresholds 1…9, 10…90, …, 10^7…9·10^7, and 10^8 µs (100 s).
 */
export function decadeHistogram(us: Float64Array): DecadeHistogram {
  const thresholds: number[] = [];
  for (let r = 0; r < 8; r++) for (let b = 1; b <= 9; b++) thresholds.push(b * 10 ** r);
  thresholds.push(1e8);
  let max = 1e8 + 1; // keeps the 10^8 threshold inside the domain (d3 drops thresholds at its ends)
  for (let i = 0; i < us.length; i++) if (us[i] > max) max = us[i];
  const bins = bin<number, number>().domain([0, max]).thresholds(thresholds)(us as unknown as number[]);
  const rows = HIST_ROWS.map(() => new Array<number>(10).fill(0));
  // Bin 0 is [0, 1); then 9 bins per decade r: [b·10^r, (b+1)·10^r) for b = 1…9; the last is ≥ 10^8.
  for (let i = 0; i < bins.length; i++) {
    const n = bins[i].length;
    if (i === 0) rows[0][0] += n;
    else if (i <= 72) rows[Math.floor((i - 1) / 9)][((i - 1) % 9) + 1] += n;
  }
  return { rows, over100s: bins.length > 73 ? bins[73].length : 0, total: us.length };
}

/** Builds the report from a finished analyzer (`vm`: the label of the VM selected, if any). */
export function buildLatencyReport(a: LatencyAnalyzer, tscKhz: number, key: string, vm: string | null = null): LatencyReport {
  const counts = a.pairer.finish();
  const us = new Float64Array(a.samples.length);
  const v = a.samples.view();
  for (let i = 0; i < v.length; i++) us[i] = cyclesToNsF(v[i], tscKhz) / 1000;
  const s = sampleStats(a.samples);
  const u = (c: number | undefined): number | null => (c === undefined ? null : cyclesToNsF(c, tscKhz) / 1000);
  const values: Record<LatencyKey, number | null> = {
    MIN_LATENCY: u(s?.min),
    MEAN_LATENCY: u(s?.mean),
    P50_LATENCY: u(s?.p50),
    P90_LATENCY: u(s?.p90),
    P99_LATENCY: u(s?.p99),
    MAX_LATENCY: u(s?.max),
    STDDEV_LATENCY: u(s?.stddev),
    LATENCY_SAMPLES: counts.paired,
    FROM_EVENTS: counts.fromEvents,
    TO_EVENTS: counts.toEvents,
    UNPAIRED_FROM: counts.superseded + counts.openAtEnd,
    SUPERSEDED_FROM: counts.superseded,
    OPEN_FROM_AT_END: counts.openAtEnd,
    UNMATCHED_TO: counts.unmatchedTo,
    NO_KEY: counts.noKey,
  };
  return { from: a.pairer.from.text, to: a.pairer.to.text, key, vm, values, counts, histogram: decadeHistogram(us) };
}

/** `KEY=VALUE` lines like `netperf -k`; latencies in µs with 3 decimals (ns), `n/a` when undefined. */
export function latencyKeysText(r: LatencyReport, keys: readonly LatencyKey[]): string {
  return keys
    .map((k) => {
      const v = r.values[k];
      const isCount = (COUNT_KEYS as readonly string[]).includes(k);
      return `${k}=${v === null ? 'n/a' : isCount ? String(v) : v.toFixed(3)}`;
    })
    .join('\n') + '\n';
}

/** netperf's histogram block (the layout of netperf's HIST_report). */
export function histogramText(h: DecadeHistogram, title: string): string {
  let s = `Histogram of ${title}\n`;
  HIST_ROWS.forEach((name, r) => {
    s += name.padEnd(14) + h.rows[r].map((n) => ': ' + String(n).padStart(4)).join('') + '\n';
  });
  s += `>100_SECS: ${h.over100s}\n`;
  s += `HIST_TOTAL:      ${h.total}\n`;
  return s;
}
