/**
 * Runs a prepared merge into the requested outputs (Chrome JSON, Perfetto, text, validation summary), each
 * written whole or not at all.
 */
import { releaseMerge, runMerge, type PreparedMerge } from '../merge/session.js';
import type { ValidationResult } from '../merge/validate.js';
import { AtomicWriter } from './atomic-writer.js';
import { ChromeJsonExporter, type ChromeJsonOptions } from './chrome-json.js';
import type { Timeline } from '../merge/merge.js';
import type { GuestPlan } from '../merge/plan.js';
import { TextExporter } from './text.js';
import { validationJson } from './validation-report.js';
import { VERSION } from '../model/version.js';
import { PerfettoExporter } from './perfetto/exporter.js';

/** Where the outputs go; `-` for stdout (text only). */
export interface MergeOutputs {
  json?: string;
  /** Perfetto protobuf trace (.pftrace). */
  perfetto?: string;
  text?: string;
  summary?: string;
  /** Builds, once the timeline is known, the flow hook of the Chrome JSON (see ChromeJsonOptions). */
  flows?: (tl: Timeline, plans: (GuestPlan | undefined)[]) => ChromeJsonOptions['flows'];
  /** Called now and then with the number of events merged so far. */
  onProgress?: (events: number) => void;
}

/** What a merge produced. */
export interface MergeReport {
  result: ValidationResult;
  events: number;
  perSource: { file: string; machine: string; events: number; outOfOrder: number; stats: Record<string, number>; clock: string; clockFrom: string; lostEvents: number }[];
}

/** Merges and writes every requested output; on any error no output is left half-written. */
export async function exportMerge(p: PreparedMerge, out: MergeOutputs): Promise<MergeReport> {
  const jsonW = out.json ? new AtomicWriter(out.json) : undefined;
  const textW = out.text ? new AtomicWriter(out.text) : undefined;
  const summaryW = out.summary ? new AtomicWriter(out.summary) : undefined;
  const pftW = out.perfetto ? new AtomicWriter(out.perfetto) : undefined;
  const writers = [jsonW, pftW, textW, summaryW].filter((w): w is AtomicWriter => w !== undefined);
  let json: ChromeJsonExporter | undefined;
  let pft: PerfettoExporter | undefined;
  let text: TextExporter | undefined;
  let sinceProgress = 0;
  try {
    // Every output file is created before any work: a path that cannot be written fails first.
    for (const w of writers) await w.open();
    const run = await runMerge(p, {
      // The vCPU state changes reach the Perfetto tracks (made once the timeline is known).
      vcpuStates: pftW && {
        transition: (...a) => pft?.transition(...a),
        syncPoint: (...a) => pft?.syncPoint(...a),
      },
      onTimeline: async (tl, plans) => {
        if (jsonW) {
          json = new ChromeJsonExporter(tl, p.tscKhz, plans, p.windowKind, { flows: out.flows?.(tl, plans) });
          await jsonW.write(json.begin());
        }
        if (pftW) {
          // Each call of the flows hook pairs on its own, for this output.
          pft = new PerfettoExporter(pftW, tl, p.tscKhz, plans, { flows: out.flows?.(tl, plans) });
          pft.begin();
          await pftW.settle();
        }
        if (textW) {
          text = new TextExporter(tl, p.tscKhz);
          await textW.write(text.header());
        }
      },
      onBatch: async (batch) => {
        if (json) {
          json.writeTo(batch, jsonW!);
          await jsonW!.settle();
        }
        if (pft) {
          pft.writeTo(batch);
          await pftW!.settle();
        }
        if (text) {
          text.writeTo(batch, textW!);
          await textW!.settle();
        }
        sinceProgress += batch.n;
        if (out.onProgress && sinceProgress >= 65536) {
          out.onProgress(sinceProgress);
          sinceProgress = 0;
        }
      },
    });
    const tl = run.timeline;
    const perSource = (tl?.sources ?? []).map((s, i) => ({
      file: s.open.spec.file,
      machine: s.machine,
      events: tl!.counts[i].events,
      outOfOrder: tl!.counts[i].outOfOrder,
      stats: s.open.stats(),
      clock: s.open.header.clock,
      clockFrom: s.open.header.clockFrom,
      lostEvents: s.open.header.lostEvents,
    }));
    if (json && jsonW) {
      json.end(jsonW, {
        producer: `kvmtrace ${VERSION}`,
        // The host TSC at ts 0 (the first event of the timeline).
        zeroHostTsc: tl && json.zeroT !== undefined ? (tl.base + BigInt(json.zeroT)).toString() : undefined,
        tscKhz: p.tscKhz,
        validation: run.result.ok ? 'passed' : 'FAILED',
      });
      await jsonW.settle();
    }
    if (pft && pftW) {
      const lost = perSource.filter((x) => x.lostEvents > 0).map((x) => ({ file: x.file, lostEvents: x.lostEvents }));
      pft.end(run.result, {
        producer: `kvmtrace ${VERSION}`,
        tscKhz: p.tscKhz!,
        summaryJson: validationJson(run.result, { tscKhz: p.tscKhz ?? null, events: run.events, lost, notes: p.notes }),
      });
      await pftW.settle();
    }
    if (summaryW) {
      const lost = perSource.filter((x) => x.lostEvents > 0).map((x) => ({ file: x.file, lostEvents: x.lostEvents }));
      await summaryW.write(validationJson(run.result, { tscKhz: p.tscKhz ?? null, events: run.events, lost, notes: p.notes }));
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
