/**
 * Runs a prepared merge through analyzers: they are built once the timeline is known and fed
 * every batch in timeline order. Nothing is kept but what the analyzers keep.
 */
import { UserError } from '../model/errors.js';
import type { Timeline } from '../merge/merge.js';
import type { MergedBatch } from '../merge/merged-event.js';
import type { GuestPlan } from '../merge/plan.js';
import { runMerge, type PreparedMerge } from '../merge/session.js';
import type { ValidationResult } from '../merge/validate.js';
import { VcpuThreads } from './vcpu-threads.js';

/** Something fed the merged stream: each batch's columns, with the KVM-run segments starting in it (`mb.kvm`). */
export interface Analyzer {
  handle(mb: MergedBatch): void;
}

/** What an analysis run hands back besides its analyzers' state. */
export interface AnalysisRun<A> {
  analyzer: A;
  vcpuThreads: VcpuThreads;
  timeline: Timeline;
  validation: ValidationResult;
  events: number;
}

/** Merges and feeds every batch to the analyzer `make` builds; throws when the inputs hold no events. */
export async function analyse<A extends Analyzer>(
  p: PreparedMerge,
  make: (tl: Timeline, plans: (GuestPlan | undefined)[], vt: VcpuThreads) => A,
): Promise<AnalysisRun<A>> {
  let a: A | undefined;
  let vt: VcpuThreads | undefined;
  const run = await runMerge(p, {
    onTimeline: (tl, plans) => {
      vt = new VcpuThreads(tl, plans, p.index);
      a = make(tl, plans, vt);
    },
    onBatch: (mb) => {
      for (const m of mb.events()) vt!.note(m);
      a!.handle(mb);
    },
  });
  if (!a || !vt || !run.timeline) throw new UserError('the inputs hold no events: nothing to analyse');
  return { analyzer: a, vcpuThreads: vt, timeline: run.timeline, validation: run.result, events: run.events };
}

/** The TSC frequency an analysis needs to report ns, or a UserError saying how to give it. */
export function needTscKhz(p: PreparedMerge, what: string): number {
  if (!p.tscKhz) throw new UserError(`${what} reports nanoseconds and needs the TSC frequency: give --tsc-khz (bundles written by kvmtrace capture record it)`);
  return p.tscKhz;
}
