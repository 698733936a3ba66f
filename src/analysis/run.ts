/**
 * Runs a prepared merge through an analyzer, a merge consumer (merge/consumer.ts), with the
 * vCPU-thread resolver beside it. Nothing is kept but what the analyzer keeps.
 */
import { UserError } from '../model/errors.js';
import type { Timeline } from '../merge/merge.js';
import type { MergeConsumer } from '../merge/consumer.js';
import { runMerge, type PreparedMerge } from '../merge/session.js';
import type { ValidationResult } from '../merge/validate.js';
import { VcpuThreads } from './vcpu-threads.js';

/** What an analysis run hands back besides its analyzer's state. */
export interface AnalysisRun<A> {
  analyzer: A;
  vcpuThreads: VcpuThreads;
  timeline: Timeline;
  validation: ValidationResult;
  events: number;
}

/** Merges and feeds every batch to the analyzer `make` builds (given the vCPU-thread resolver); throws when the inputs hold no events. */
export async function analyse<A extends MergeConsumer>(p: PreparedMerge, make: (vt: VcpuThreads) => A): Promise<AnalysisRun<A>> {
  const vt = new VcpuThreads(p.index);
  const a = make(vt);
  const run = await runMerge(p, [vt, a]);
  if (!run.timeline) throw new UserError('the inputs hold no events: nothing to analyse');
  return { analyzer: a, vcpuThreads: vt, timeline: run.timeline, validation: run.result, events: run.events };
}

/** The TSC frequency an analysis needs to report ns, or a UserError saying how to give it. */
export function needTscKhz(p: PreparedMerge, what: string): number {
  if (!p.tscKhz) throw new UserError(`${what} reports nanoseconds and needs the TSC frequency: give --tsc-khz (bundles written by kvmtrace capture record it)`);
  return p.tscKhz;
}
