/**
 * Pairs `from` events with `to` events on the merged timeline, for `latency` and `--flows`.
 *
 * Each event is first offered as a `to` (it completes the pending `from` of its key, if any),
 * then as a `from` (it becomes its key's pending `from`). One `from` is pending per key: a second
 * `from` before any `to` supersedes the first, which stays unpaired (counted). A `to` with no
 * pending `from` is counted as unmatched (usually harmless: most VM exits have no marker before
 * them). Keys: the vCPU (default; a guest event's vCPU and the host thread that runs it share a
 * key), the guest CPU, a field's value (a marker's sequence number), or none (one global queue).
 * Memory: one pending entry per key — a handful for vcpu/cpu keys; for field keys, at most one per
 * distinct value still waiting for its `to`.
 */
import { UserError } from '../model/errors.js';
import type { MergedEvent } from '../merge/merged-event.js';
import { eventField, matches, parseMatch, type Match } from './match.js';
import type { VcpuThreads } from './vcpu-threads.js';

/** How `from` and `to` events are paired. */
export type PairKey = { kind: 'vcpu' } | { kind: 'cpu' } | { kind: 'field'; field: string } | { kind: 'none' };

/** Parses `--key vcpu|cpu|none|field:NAME`. */
export function parsePairKey(s: string): PairKey {
  if (s === 'vcpu' || s === 'cpu' || s === 'none') return { kind: s };
  const m = /^field:([A-Za-z0-9_.]+)$/.exec(s);
  if (m) return { kind: 'field', field: m[1] };
  throw new UserError(`--key ${s}: expected vcpu, cpu, none or field:NAME (e.g. field:seq)`);
}

/** Counts of a pairing run. */
export interface PairCounts {
  fromEvents: number;
  toEvents: number;
  paired: number;
  /** `from` events replaced by a later `from` on the same key before any `to`. */
  superseded: number;
  /** `from` events still waiting when the trace ended. */
  openAtEnd: number;
  /** `to` events with no pending `from`. */
  unmatchedTo: number;
  /** Events that matched but had no key (a host thread of no known vCPU, a missing field). */
  noKey: number;
}

/** What offering one event did. */
export interface PairStep {
  /** Set when the event completed a pair: the pair's id and the `from` event's time. */
  finished?: { id: number; fromT: number };
  /** Set when the event became a pending `from`: its id. */
  started?: number;
}

/** The pairing state machine. */
export class Pairer {
  readonly counts: PairCounts = { fromEvents: 0, toEvents: 0, paired: 0, superseded: 0, openAtEnd: 0, unmatchedTo: 0, noKey: 0 };
  private readonly pending = new Map<string, { t: number; id: number }>();
  private nextId = 1;
  readonly from: Match;
  readonly to: Match;

  constructor(
    from: Match | string,
    to: Match | string,
    readonly key: PairKey,
    private readonly vt: VcpuThreads,
  ) {
    this.from = typeof from === 'string' ? parseMatch(from, '--from') : from;
    this.to = typeof to === 'string' ? parseMatch(to, '--to') : to;
  }

  private keyOf(m: MergedEvent): string | undefined {
    switch (this.key.kind) {
      case 'none':
        return '*';
      case 'cpu':
        return `${this.vt.machine(m)}:${m.ev.cpu}`;
      case 'field': {
        const v = eventField(m, this.key.field, this.vt);
        return v === undefined ? undefined : v;
      }
      default:
        return this.vt.vcpuKey(m);
    }
  }

  /** Offers one event (in timeline order). */
  offer(m: MergedEvent): PairStep | undefined {
    const isTo = matches(this.to, m, this.vt);
    const isFrom = matches(this.from, m, this.vt);
    if (!isTo && !isFrom) return undefined;
    const key = this.keyOf(m);
    if (key === undefined) {
      this.counts.noKey++;
      return undefined;
    }
    const step: PairStep = {};
    if (isTo) {
      this.counts.toEvents++;
      const p = this.pending.get(key);
      if (p) {
        this.pending.delete(key);
        this.counts.paired++;
        step.finished = { id: p.id, fromT: p.t };
      } else this.counts.unmatchedTo++;
    }
    if (isFrom) {
      this.counts.fromEvents++;
      if (this.pending.has(key)) this.counts.superseded++;
      const id = this.nextId++;
      this.pending.set(key, { t: m.t, id });
      step.started = id;
    }
    return step;
  }

  /** Ends the run: pending `from` events are counted as open. */
  finish(): PairCounts {
    this.counts.openAtEnd = this.pending.size;
    this.pending.clear();
    return this.counts;
  }
}
