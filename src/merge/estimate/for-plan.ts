/**
 * Estimation wired into the clock plan: for the vCPUs no source gives an offset for, estimate one
 * from the traces and hand it to `planGuest` as `estimated`, or explain why not.
 */
import type { Diagnostics } from '../../model/diagnostics.js';
import type { HostIndex } from '../../host/index.js';
import { planGuest, type GuestOverrides, type GuestPlan } from '../plan.js';
import { choose, pairingFromSync, weighEvidence } from './evidence.js';
import type { PreparedMerge } from '../session.js';
import type { ClockCheck, VcpuCheck } from './verdict.js';
import { cpuCount, type SourceSpec } from '../source.js';
import { estimateOffsets, type VcpuEstimate } from './index.js';

/** Estimates (per vCPU) and, for the vCPUs left without one, the reasons. */
export interface PlanEstimates {
  estimated: Map<number, { offset: bigint; low: bigint; high: bigint; method: string; ratio?: bigint; fracBits?: number }>;
  details: Map<number, VcpuEstimate>;
  /** One sentence per vCPU that could not be estimated. */
  failures: string[];
}

/** Estimates the offsets of a plan's unmapped vCPUs (those with a known host thread). */
export async function estimateUnmapped(index: HostIndex, guest: SourceSpec, plan: GuestPlan, diags: Diagnostics): Promise<PlanEstimates> {
  const res: PlanEstimates = { estimated: new Map(), details: new Map(), failures: [] };
  // vCPUs beyond the guest's CPU count (threads of other VMs seen on the host) need no estimate.
  const cpus = cpuCount(guest);
  const identity = !guest.meta?.guest?.cpuToVcpu;
  const tids = new Map<number, number | undefined>([...plan.unmapped].filter(([v]) => !(cpus && identity && v >= cpus)));
  if (tids.size === 0) return res;
  const est = await estimateOffsets(index, guest, tids, plan.cpuToVcpu, diags);
  for (const [v, e] of est) {
    res.details.set(v, e);
    if (e.offset !== undefined) res.estimated.set(v, { offset: e.offset, low: e.low!, high: e.high!, method: e.method, ratio: e.ratio, fracBits: e.fracBits });
    else res.failures.push(`vCPU ${v}: ${e.why}`);
  }
  return res;
}

/**
 * Settles a plan by the evidence (evidence.ts): where a vCPU's sources differ, each is checked
 * and the one the evidence supports is followed (the user's stated offset stays followed, its
 * figures shown); where nothing pairs guest CPUs with vCPUs, the sync points may. A pairing that
 * changes which events belong to which vCPU is weighed once more. No pass when there is nothing
 * to settle.
 */
export async function settleByEvidence(host: SourceSpec[], index: HostIndex, guest: SourceSpec[], plan: GuestPlan, over: GuestOverrides, diags: Diagnostics): Promise<GuestPlan> {
  let cur = plan;
  let o = over;
  for (let round = 0; round < 2; round++) {
    const disputed = [...cur.vcpus.values()].filter((v) => v.offers.length);
    if (!disputed.length && !cur.pairing.assumed) break;
    const ev = await weighEvidence(index, guest, cur, diags);
    const chosen = new Map(disputed.map((v) => {
      const scores = ev.scores.get(v.vcpu)!;
      return [v.vcpu, v.offers[0].kind === 'flag' ? { kind: 'flag' as const, why: 'following --tsc-offset as stated', scores } : { ...choose(v.offers, scores), scores }];
    }));
    const sync = cur.pairing.assumed ? pairingFromSync(ev, cur) : undefined;
    const remapped = sync !== undefined && [...sync.map].some(([c, v]) => cur.cpuToVcpu(c) !== v);
    o = { ...o, chosen, ...(sync ? { syncPairing: sync } : {}) };
    const next = planGuest(host[0], index, guest[0], o);
    next.clockSync = cur.clockSync;
    cur = next;
    if (!remapped || !disputed.length) break;
  }
  return cur;
}

/** The sentence a refusal ends with: what to record next time so the mapping is known. */
export const RECORD_NEXT_TIME =
  'next time, capture with `kvmtrace capture host` (debugfs TSC offsets), record kvm_write_tsc_offset on the host from before the VM starts, ' +
  'record with trace-cmd\'s guest agent (-A, TIME_SHIFT), or run `syncpt` in the guest for kvmsync markers; or give --tsc-offset';

/**
 * Sets each stated mapping against an estimate from the traces alone (sync points, guest-mode
 * windows): a vCPU's `evidence` says what the evidence allows and whether the stated offset is in
 * it; a FAILED vCPU, or a disagreement, also gets a sentence in the guest's notes. Mappings with
 * offset changes are not cross-checked (the estimate is one constant offset).
 */
export async function crossCheck(p: PreparedMerge, c: ClockCheck): Promise<void> {
  for (const g of c.guests) {
    const plan = p.guests.find((x) => x.plan?.spec.file === g.file)?.plan;
    if (!plan || !p.index) continue;
    const tids = new Map<number, number | undefined>();
    const constant = (v: VcpuCheck): boolean => v.pieces.every((x) => x.offset === v.offset && x.ratio === null);
    for (const v of g.vcpus)
      if (v.hostTid !== null && (v.verdict === 'FAILED' || (!v.source.startsWith('estimate') && constant(v)))) tids.set(v.vcpu, v.hostTid);
    if (tids.size === 0) continue;
    const est = await estimateOffsets(p.index, plan.spec, tids, plan.cpuToVcpu, p.diags);
    for (const v of g.vcpus) {
      const e = est.get(v.vcpu);
      if (!e) continue;
      const stated = v.pieces.length > 1 ? `offsets ${v.pieces.map((x) => x.offset).join(', ')}` : `offset ${v.offset}`;
      if (e.offset === undefined) {
        if (v.verdict === 'FAILED') g.notes.push(`vCPU ${v.vcpu}: ${v.source} gives ${stated}, and the traces do not pin down another offset either (${e.why})`);
        continue;
      }
      const agrees = constant(v) && e.low! <= BigInt(v.offset) && BigInt(v.offset) <= e.high!;
      v.evidence = { offsetLow: e.low!.toString(), offsetHigh: e.high!.toString(), method: e.method, agrees };
      if (!agrees)
        g.notes.push(
          `vCPU ${v.vcpu}: ${v.source} gives ${stated}, but the traces allow only [${e.low}, ${e.high}] (${e.method}) — the sources disagree, and the evidence points to offset ${e.offset} ± ${(e.high! - e.low! + 1n) / 2n} cycles`,
        );
    }
  }
}
