/**
 * Runs a prepared merge into the requested outputs (Chrome JSON, text, validation summary), each
 * written whole or not at all.
 */
import { releaseMerge, runMerge, type PreparedMerge } from '../merge/session.js';
import type { ValidationResult } from '../merge/validate.js';
import { AtomicWriter } from './atomic-writer.js';
import { checkOutputTargets, type OutputTarget } from './output-targets.js';
import { ChromeJsonExporter, type ChromeJsonOptions } from './chrome-json.js';
import type { MergeConsumer, MergeDone } from '../merge/consumer.js';
import { TextExporter } from './text.js';
import { validationJson } from './validation-report.js';
import { clockCheck } from '../merge/estimate/verdict.js';
import { PerfettoExporter } from './perfetto/exporter.js';

/** Where the outputs go; `-` for stdout (text only). */
export interface MergeOutputs {
  json?: string;
  /** Perfetto protobuf trace (.pftrace). */
  perfetto?: string;
  text?: string;
  summary?: string;
  /** The flow hook of the Chrome JSON, made once the timeline is known (see ChromeJsonOptions). */
  flows?: ChromeJsonOptions['flows'];
  /** Called now and then with the number of events merged so far. */
  onProgress?: (events: number) => void;
}

/** What a merge produced. */
export interface MergeReport {
  result: ValidationResult;
  events: number;
  perSource: { file: string; machine: string; events: number; outOfOrder: number; stats: Record<string, number>; clock: string; clockFrom: string; lostEvents: number }[];
}

/** A consumer that reports progress every 64 Ki events. */
export function progressConsumer(onProgress: (events: number) => void): MergeConsumer {
  let since = 0;
  return {
    batch: (mb) => {
      since += mb.n;
      if (since >= 65536) {
        onProgress(since);
        since = 0;
      }
    },
  };
}

/** Merges and writes every requested output; on any error no output is left half-written. */
export async function exportMerge(p: PreparedMerge, out: MergeOutputs): Promise<MergeReport> {
  const targets: (OutputTarget | undefined)[] = [
    out.json === undefined ? undefined : { path: out.json, what: 'the Chrome JSON output' },
    out.perfetto === undefined ? undefined : { path: out.perfetto, what: 'the Perfetto output' },
    out.text === undefined ? undefined : { path: out.text, what: 'the text output' },
    out.summary === undefined ? undefined : { path: out.summary, what: 'the validation summary' },
  ];
  try {
    checkOutputTargets(targets.filter((t): t is OutputTarget => t !== undefined), p.inputs);
  } catch (e) {
    await releaseMerge(p);
    throw e;
  }
  const jsonW = out.json ? new AtomicWriter(out.json) : undefined;
  const textW = out.text ? new AtomicWriter(out.text) : undefined;
  const summaryW = out.summary ? new AtomicWriter(out.summary) : undefined;
  const pftW = out.perfetto ? new AtomicWriter(out.perfetto) : undefined;
  const writers = [jsonW, pftW, textW, summaryW].filter((w): w is AtomicWriter => w !== undefined);
  try {
    // Every output file is created before any work: a path that cannot be written fails first.
    for (const w of writers) await w.open();
    const consumers: MergeConsumer[] = [];
    if (jsonW) consumers.push(new ChromeJsonExporter(jsonW, p.tscKhz, p.index, { flows: out.flows }));
    if (pftW) consumers.push(new PerfettoExporter(pftW, p.tscKhz, p.index, { flows: out.flows, summaryJson: (done) => summaryOf(p, done) }));
    if (textW) consumers.push(new TextExporter(textW, p.tscKhz));
    if (out.onProgress) consumers.push(progressConsumer(out.onProgress));
    const run = await runMerge(p, consumers);
    const tl = run.timeline;
    const perSource = tl.sources.map((s, i) => ({
      file: s.open.spec.file,
      machine: s.machine,
      events: tl.counts[i].events,
      outOfOrder: tl.counts[i].outOfOrder,
      stats: s.open.stats(),
      clock: s.open.header.clock,
      clockFrom: s.open.header.clockFrom,
      lostEvents: s.open.header.lostEvents,
    }));
    if (summaryW) {
      await summaryW.write(summaryOf(p, run));
    }
    // Whole or not at all: every file is complete before the first one is moved into place.
    for (const w of writers) await w.finish();
    for (const w of writers) await w.commit();
    return { result: run.result, events: run.events, perSource };
  } catch (e) {
    for (const w of writers) await w.abort();
    await releaseMerge(p);
    throw e;
  }
}

/** The validation summary of a finished merge: the `--summary` JSON, also kept in the Perfetto trace's attributes. */
function summaryOf(p: PreparedMerge, done: MergeDone): string {
  const lost = done.timeline.sources
    .filter((s) => s.open.header.lostEvents > 0)
    .map((s) => ({ file: s.open.spec.file, lostEvents: s.open.header.lostEvents }));
  return validationJson(done.result, { tscKhz: p.tscKhz ?? null, events: done.events, lost, notes: p.notes, clock: clockCheck(p, done.result) });
}
