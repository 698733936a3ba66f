/**
 * Flow arrows for the Chrome JSON (`kvmtrace merge --flows FROM:TO`): the same pairing as
 * `latency`, turned into `s` (at each `from`) and `f` (at the `to` that completes it) marks with a
 * shared id, so Perfetto UI draws an arrow from, say, a guest marker to the VM exit it caused.
 * A `from` that never pairs leaves an `s` without an `f`, which viewers ignore.
 */
import { UserError } from '../model/errors.js';
import type { Timeline } from '../merge/merge.js';
import type { GuestPlan } from '../merge/plan.js';
import type { MergedEvent } from '../merge/merged-event.js';
import { parseMatch, type Match } from './match.js';
import { Pairer, type PairKey, type PairCounts } from './pairing.js';
import { VcpuThreads } from './vcpu-threads.js';
import type { HostIndex } from '../host/index.js';

/** A flow mark as the Chrome JSON exporter takes it (structurally its FlowMark). */
export interface FlowEnd {
  ph: 's' | 'f';
  id: number;
  name: string;
}

const SIDE_START = /^(host|guest(=[^:\[\]~]+)?|\*):/;
const BARE_SIDE = /^(host|guest(=[^:\[\]~]+)?|\*)$/;

/**
 * Splits `FROM:TO` where both halves may carry a `side:` prefix. Among the colons outside
 * brackets, the split is the one whose halves both parse, preferring a right half that starts
 * with a side (`guest:marker~x:host:kvm_exit` splits before `host:`).
 */
export function splitFlowSpec(spec: string): [Match, Match] {
  const cuts: number[] = [];
  let depth = 0;
  for (let i = 0; i < spec.length; i++) {
    const c = spec[i];
    if (c === '[') depth++;
    else if (c === ']') depth--;
    else if (c === ':' && depth === 0) cuts.push(i);
  }
  const valid: { i: number; sided: boolean; pair: [Match, Match] }[] = [];
  for (const i of cuts) {
    const left = spec.slice(0, i);
    const right = spec.slice(i + 1);
    if (BARE_SIDE.test(left) || BARE_SIDE.test(right)) continue;
    try {
      valid.push({ i, sided: SIDE_START.test(right), pair: [parseMatch(left, '--flows'), parseMatch(right, '--flows')] });
    } catch {
      // not a split point
    }
  }
  const sided = valid.filter((v) => v.sided);
  const pick = sided.length ? sided[0] : valid.length === 1 ? valid[0] : undefined;
  if (!pick)
    throw new UserError(
      `--flows ${JSON.stringify(spec)}: expected FROM:TO, two matchers joined by a colon, e.g. guest:marker~kvmsync:host:kvm_pio[port=0xe9]` +
        (valid.length > 1 ? ' (ambiguous: give the TO matcher a side, host: or guest:)' : ''),
    );
  return pick.pair;
}

/** Builds the exporter's flow hook from `--flows`; `counts()` tells how many arrows were drawn. */
export function flowHook(spec: string, key: PairKey = { kind: 'vcpu' }): {
  make: (tl: Timeline, plans: (GuestPlan | undefined)[], index?: HostIndex) => (m: MergedEvent) => FlowEnd[] | undefined;
  counts: () => PairCounts | undefined;
} {
  const [from, to] = splitFlowSpec(spec);
  const name = `${from.text} → ${to.text}`;
  let pairer: Pairer | undefined;
  return {
    make: (tl, plans, index) => {
      const vt = new VcpuThreads(index);
      vt.begin(tl, plans);
      pairer = new Pairer(from, to, key, vt);
      const p = pairer;
      return (m) => {
        vt.note(m);
        const step = p.offer(m);
        if (!step) return undefined;
        const out: FlowEnd[] = [];
        if (step.finished) out.push({ ph: 'f', id: step.finished.id, name });
        if (step.started !== undefined) out.push({ ph: 's', id: step.started, name });
        return out.length ? out : undefined;
      };
    },
    counts: () => pairer?.finish(),
  };
}
