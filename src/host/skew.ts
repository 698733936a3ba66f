/**
 * A bound on the skew between the host CPUs' TSCs, from causal pairs in the host trace: a thread
 * woken (sched_wakeup, sched_wakeup_new) or moved (sched_migrate_task) by an event stamped on CPU
 * a, then switched in (sched_switch to it) on CPU b. The switch-in happened after its cause, so
 * stamp_b − stamp_a = real gap + (skew_b − skew_a) with a real gap ≥ 0: skew_b − skew_a is at most
 * the stamps' difference. The smallest difference seen a → b, and the smallest b → a, bound
 * |skew_b − skew_a| by the larger of the two; a pair of CPUs with evidence one way only is not
 * bounded. (Both hold at once, so the two never sum below 0 and the bound is never negative.)
 *
 * Pairs are taken in the trace's order, gathered in the host index's one pass (builder.ts): a
 * thread's causes wait for its next switch-in, the latest per CPU (the tightest), and are dropped
 * at its switch-out (a thread still running when woken gives no pair). This assumes the skew is
 * smaller than the time from a wakeup to the switch-in it causes — a skew that reordered them would
 * put the switch-in first and leave the pair out, never pair a cause with an earlier switch-in.
 */

/** One cause of a switch-in waiting for it. */
interface Cause {
  cpu: number;
  t: number;
  where: number;
  event: string;
}

/** The tightest causal pair seen from CPU `from` to CPU `to`. Times are timeline cycles; `where` as host/where.ts packs it. */
export interface SkewEdge {
  from: number;
  to: number;
  /** Switch-in stamp − cause stamp, cycles (may be negative: then CPU `to` is behind CPU `from` by at least that much). */
  gapCycles: number;
  cause: { event: string; t: number; where: number };
  switchIn: { tid: number; t: number; where: number };
}

/** The causal pairs of a host trace: the tightest one per ordered pair of CPUs. */
export interface HostSkew {
  edges: SkewEdge[];
}

/** Gathers the causal pairs, one host event at a time (the index builder calls it in host order). */
export class SkewPairs {
  private readonly waiting = new Map<number, Cause[]>();
  private readonly edges = new Map<number, SkewEdge>();

  /** A wakeup or migration of thread `tid`, stamped `t` on `cpu`. */
  cause(tid: number, t: number, cpu: number, where: number, event: string): void {
    let list = this.waiting.get(tid);
    if (!list) this.waiting.set(tid, (list = []));
    const c = list.find((x) => x.cpu === cpu);
    if (c) (c.t = t), (c.where = where), (c.event = event);
    else list.push({ cpu, t, where, event });
  }

  /** Thread `tid` switched in at `t` on `cpu`: each waiting cause on another CPU is a pair. */
  switchIn(tid: number, t: number, cpu: number, where: number): void {
    const list = this.waiting.get(tid);
    if (!list) return;
    this.waiting.delete(tid);
    for (const c of list) {
      if (c.cpu === cpu) continue;
      const key = c.cpu * 0x10000 + cpu;
      const e = this.edges.get(key);
      const gap = t - c.t;
      if (!e || gap < e.gapCycles)
        this.edges.set(key, { from: c.cpu, to: cpu, gapCycles: gap, cause: { event: c.event, t: c.t, where: c.where }, switchIn: { tid, t, where } });
    }
  }

  /** Thread `tid` switched out: causes that came while it ran cause nothing. */
  switchOut(tid: number): void {
    this.waiting.delete(tid);
  }

  /** The pairs found. */
  done(): HostSkew {
    return { edges: [...this.edges.values()].sort((a, b) => a.from - b.from || a.to - b.to) };
  }
}

/** The skew bound over a set of CPUs (those a vCPU thread ran on). */
export interface SkewBound {
  cpus: number[];
  /** Largest |skew| between two of the CPUs, cycles; 0 with one CPU; null when no pair of them is bounded. */
  cycles: number | null;
  /** Pairs of the CPUs bounded both ways, and pairs with evidence one way or none. */
  pairsBounded: number;
  pairsUnbounded: number;
  /** The pair that sets the bound (the larger of its two ways). */
  edge: SkewEdge | undefined;
}

/** The bound on |skew_a − skew_b| over every pair of `cpus` with evidence both ways. */
export function skewBound(skew: HostSkew, cpus: readonly number[]): SkewBound {
  const by = new Map<number, SkewEdge>();
  for (const e of skew.edges) by.set(e.from * 0x10000 + e.to, e);
  let cycles: number | null = cpus.length <= 1 ? 0 : null;
  let edge: SkewEdge | undefined;
  let pairsBounded = 0;
  let pairsUnbounded = 0;
  for (let i = 0; i < cpus.length; i++)
    for (let j = i + 1; j < cpus.length; j++) {
      const ab = by.get(cpus[i] * 0x10000 + cpus[j]);
      const ba = by.get(cpus[j] * 0x10000 + cpus[i]);
      if (!ab || !ba) {
        pairsUnbounded++;
        continue;
      }
      pairsBounded++;
      const e = ab.gapCycles >= ba.gapCycles ? ab : ba;
      if (cycles === null || e.gapCycles > cycles) (cycles = e.gapCycles), (edge = e);
    }
  return { cpus: [...cpus], cycles, pairsBounded, pairsUnbounded, edge };
}
