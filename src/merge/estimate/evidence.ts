/**
 * The evidence pass: when the sources of a vCPU's mapping disagree (or the user's word differs from
 * the files), each candidate mapping is checked against what the traces show — sync points with a
 * host exit inside their mapped bracket, guest events inside the vCPU's guest-mode windows — and
 * the one the evidence supports is followed. The same pass sees on which vCPU thread each guest
 * CPU's sync points land, which pairs guest CPUs with vCPUs where nothing else does.
 *
 * No host pass: the vCPU threads' windows and sync exits come from the host index
 * (host-windows.ts), the KVM-run tracker's segments validation judges by; one guest pass, whatever
 * the number of candidates.
 */
import type { Diagnostics } from '../../model/diagnostics.js';
import { isTscClock } from '../../model/clock.js';
import { isMarkerEvent, syncMarker } from '../../parsers/event-fields.js';
import type { GuestPlan } from '../plan.js';
import { offsetsText, type Offer, type OfferKind } from '../plan-sources.js';
import { openSource, type SourceSpec } from '../source.js';
import { VcpuMapping } from '../tsc-mapping.js';
import type { HostIndex } from '../../host/index.js';
import { guestTsc, type GuestTsc } from '../../model/units.js';
import { lowerBound } from './from-sync.js';
import { firstEndingAtOrAfter, hostWindows, type ThreadWindows } from './host-windows.js';

/** How one candidate mapping of a vCPU fares against the evidence. */
export interface OfferScore {
  kind: OfferKind;
  from: string;
  /** Its offsets as the report prints them. */
  offsets: string;
  /** Sync points whose kind of exit the vCPU's thread traced, and those with one inside their mapped bracket. */
  syncChecked: number;
  syncSatisfied: number;
  /** Guest events inside the host trace's span, and those inside a guest-mode window; the rest. */
  checked: number;
  inside: number;
  notCheckable: number;
}

/** On which vCPU threads one guest CPU's sync points land (with each vCPU's followed mapping). */
export interface Landing {
  markers: number;
  /** Markers whose kind of exit some vCPU thread traced. */
  checkable: number;
  /** vCPU → markers with one of its thread's exits inside their bracket. */
  on: Map<number, number>;
}

/** What the pass found. */
export interface Evidence {
  /** vCPU → a score per offer, in the order of the plan's `offers`. */
  scores: Map<number, OfferScore[]>;
  /** guest CPU → where its sync points land. */
  landed: Map<number, Landing>;
  /** Guest CPUs that have events. */
  cpus: Set<number>;
}

/** Runs the pass for a plan: scores the offers of every vCPU whose sources differ, and sees where sync points land. */
export async function weighEvidence(index: HostIndex, guest: SourceSpec[], plan: GuestPlan, diags: Diagnostics): Promise<Evidence> {
  const tids = [...new Set([...plan.vcpus.values()].map((v) => v.tid))].filter((t): t is number => t !== undefined);
  const hw = hostWindows(index, tids);
  const kind = hw.kind;
  const none: ThreadWindows = { tid: -1, starts: new Float64Array(0), ends: new Float64Array(0), pio: new Float64Array(0), cpuid: new Float64Array(0) };
  const win = (tid: number | undefined): ThreadWindows => (tid === undefined ? none : (hw.threads.get(tid) ?? none));
  const judged = new Map<number, { offers: Offer[]; maps: VcpuMapping[]; w: ThreadWindows; scores: OfferScore[] }>();
  for (const vp of plan.vcpus.values())
    if (vp.offers.length)
      judged.set(vp.vcpu, {
        offers: vp.offers,
        maps: vp.offers.map((o) => new VcpuMapping(o.pieces, o.direct)),
        w: win(vp.tid),
        scores: vp.offers.map((o) => ({ kind: o.kind, from: o.from, offsets: offsetsText(o), syncChecked: 0, syncSatisfied: 0, checked: 0, inside: 0, notCheckable: 0 })),
      });
  const ev: Evidence = { scores: new Map([...judged].map(([v, j]) => [v, j.scores])), landed: new Map(), cpus: new Set() };
  const rel = (m: VcpuMapping, g: GuestTsc): number => Number(m.toHost(g) - hw.base);
  const bracketHolds = (exits: Float64Array, h0: number, h1: number): boolean => {
    const i = lowerBound(exits, h0);
    return i < exits.length && exits[i] <= h1;
  };

  for (const spec of guest) {
    const src = await openSource(spec, diags);
    const cs = plan.clockSync?.get(spec.file);
    for await (const batch of src.batches) {
      // Window checks need the guest TSC: a TSC clock, or a time clock mapped through its markers.
      const tsc = cs !== undefined || isTscClock(src.header.clock) || src.header.clock === 'counter' || src.header.clock === 'unknown';
      for (const e of batch) {
        ev.cpus.add(e.cpu);
        const sp = isMarkerEvent(e.name) ? syncMarker(e.body) : undefined;
        if (sp) {
          const l = ev.landed.get(sp.cpu) ?? ev.landed.set(sp.cpu, { markers: 0, checkable: 0, on: new Map() }).get(sp.cpu)!;
          l.markers++;
          let checkable = false;
          for (const vp of plan.vcpus.values()) {
            const exits = win(vp.tid)[sp.kind];
            if (!exits.length) continue;
            checkable = true;
            if (bracketHolds(exits, rel(vp.mapping, sp.t0), rel(vp.mapping, sp.t1))) l.on.set(vp.vcpu, (l.on.get(vp.vcpu) ?? 0) + 1);
          }
          if (checkable) l.checkable++;
          const j = judged.get(plan.cpuToVcpu(sp.cpu));
          if (j && j.w[sp.kind].length)
            j.maps.forEach((m, i) => {
              j.scores[i].syncChecked++;
              if (bracketHolds(j.w[sp.kind], rel(m, sp.t0), rel(m, sp.t1))) j.scores[i].syncSatisfied++;
            });
        }
        const j = judged.get(plan.cpuToVcpu(e.cpu));
        if (!j) continue;
        const abs = src.header.base!.abs(e.ts);
        j.maps.forEach((m, i) => {
          const s = j.scores[i];
          if (!tsc || kind === 'none' || j.w.tid < 0) return void s.notCheckable++;
          const h = rel(m, cs ? cs.toTsc(abs, e.cpu) : guestTsc(abs));
          if (h < hw.first || h > hw.last) return void s.notCheckable++;
          s.checked++;
          const k = firstEndingAtOrAfter(j.w, h);
          if (k < j.w.ends.length && j.w.starts[k] <= h) s.inside++;
        });
      }
    }
  }
  return ev;
}

const violations = (s: OfferScore): number => s.syncChecked - s.syncSatisfied + (s.checked - s.inside);
const confirmations = (s: OfferScore): number => s.syncSatisfied + s.inside;

/** A score as the report says it: `40 of 40 sync points, 607 of 607 guest events inside`. */
export function scoreText(s: OfferScore): string {
  return `${s.syncSatisfied} of ${s.syncChecked} sync points, ${s.inside} of ${s.checked} guest events inside`;
}

/**
 * The offer the evidence supports: one that nothing contradicts and something confirms, else the
 * one with the largest share of confirmations; among equals, the most trusted (the first). When no
 * offer can be checked at all, the most trusted, and the sentence says the evidence could not tell.
 */
export function choose(offers: Offer[], scores: OfferScore[]): { kind: OfferKind; why: string } {
  const share = (s: OfferScore): number => confirmations(s) / Math.max(1, confirmations(s) + violations(s));
  const clean = (s: OfferScore): number => (violations(s) === 0 && confirmations(s) > 0 ? 1 : 0);
  const order = scores.map((_, i) => i).sort((a, b) => {
    const [x, y] = [scores[a], scores[b]];
    return clean(y) - clean(x) || share(y) - share(x) || confirmations(y) - confirmations(x) || a - b;
  });
  const best = order[0];
  const s = scores[best];
  if (confirmations(s) === 0 && violations(s) === 0)
    return { kind: offers[0].kind, why: `no sync point or guest event can be checked to tell them apart; following ${offers[0].from}, the most trusted` };
  if (clean(s)) return { kind: offers[best].kind, why: `the evidence supports ${offers[best].from} (${scoreText(s)}): following it` };
  return { kind: offers[best].kind, why: `no source fits all the evidence; ${offers[best].from} fits the most (${scoreText(s)}): following it` };
}

/**
 * guest CPU → vCPU from where each CPU's sync points land: a CPU is paired when its markers land
 * on one vCPU's thread (more than twice as often as on any other). Complete when every guest CPU
 * with events is paired. Undefined when no CPU is.
 */
export function pairingFromSync(ev: Evidence, plan: GuestPlan): { map: Map<number, number>; from: string; complete: boolean } | undefined {
  const map = new Map<number, number>();
  const said: string[] = [];
  for (const [cpu, l] of [...ev.landed].sort((a, b) => a[0] - b[0])) {
    const on = [...l.on].sort((a, b) => b[1] - a[1]);
    if (!on.length || (on.length > 1 && on[1][1] * 2 >= on[0][1])) continue;
    const [v, n] = on[0];
    map.set(cpu, v);
    said.push(`CPU ${cpu}'s land on thread ${plan.vcpus.get(v)?.tid}, ${n} of ${l.checkable} checkable`);
  }
  if (!map.size) return undefined;
  return { map, from: `sync points: ${said.join('; ')}`, complete: [...ev.cpus].every((c) => map.has(c)) };
}
