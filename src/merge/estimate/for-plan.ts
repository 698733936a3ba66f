/**
 * Estimation wired into the clock plan: for the vCPUs no source gives an offset for, estimate one
 * from the traces and hand it to `planGuest` as `estimated`, or explain why not.
 */
import type { Diagnostics } from '../../model/diagnostics.js';
import type { HostScan } from '../host-scan.js';
import type { GuestPlan } from '../plan.js';
import type { SourceSpec } from '../source.js';
import type { WindowKind } from '../validate.js';
import { estimateOffsets, type VcpuEstimate } from './index.js';

/** Estimates (per vCPU) and, for the vCPUs left without one, the reasons. */
export interface PlanEstimates {
  estimated: Map<number, { offset: bigint; low: bigint; high: bigint; method: string }>;
  details: Map<number, VcpuEstimate>;
  /** One sentence per vCPU that could not be estimated. */
  failures: string[];
}

/** The host's kind of guest-mode evidence. */
export function windowKindOf(scan: HostScan): WindowKind {
  return scan.counts.kvmEntry > 0 ? 'entry-exit' : scan.counts.kvmFpu > 0 ? 'kvm-run' : 'none';
}

/** Estimates the offsets of a plan's unmapped vCPUs (those with a known host thread). */
export async function estimateUnmapped(host: SourceSpec[], scan: HostScan, guest: SourceSpec, plan: GuestPlan, diags: Diagnostics): Promise<PlanEstimates> {
  const res: PlanEstimates = { estimated: new Map(), details: new Map(), failures: [] };
  const tids = new Map<number, number>();
  for (const [v, tid] of plan.unmapped) {
    if (tid === undefined) res.failures.push(`vCPU ${v}: its host thread is not known (no kvm_entry event names vCPU ${v}; give --vcpu-thread ${v}=TID)`);
    else tids.set(v, tid);
  }
  if (tids.size === 0) return res;
  const est = await estimateOffsets(host, guest, tids, plan.cpuToVcpu, windowKindOf(scan), diags);
  for (const [v, e] of est) {
    res.details.set(v, e);
    if (e.offset !== undefined) res.estimated.set(v, { offset: e.offset, low: e.low!, high: e.high!, method: e.method });
    else res.failures.push(`vCPU ${v}: ${e.why}`);
  }
  return res;
}

/** The sentence a refusal ends with: what to record next time so the mapping is known. */
export const RECORD_NEXT_TIME =
  'next time, capture with `kvmtrace capture host` (debugfs TSC offsets), record kvm_write_tsc_offset on the host from before the VM starts, ' +
  'record with trace-cmd\'s guest agent (-A, TIME_SHIFT), or run `syncpt` in the guest for kvmsync markers; or give --tsc-offset';
