/**
 * Sync points under drift: when the guest's TSC runs at another rate than the host's (TSC
 * scaling), no constant offset fits every bracket of a long trace. Markers close in time still
 * agree on an offset, so they are paired with their host exits chunk by chunk, and the pairs are
 * fitted with the convex-hull method (from-sync.ts). The result is a scaled mapping in KVM's own
 * form: guest = ((host × ratio) >> 48) + offset.
 */
import { fitDrift, lowerBound, SyncRefiner, type DriftFit, type SyncPair } from './from-sync.js';

/** A marker's bracket, guest TSC relative to the guest base. */
export interface Bracket {
  t0: number;
  t1: number;
}

/** Consecutive markers per chunk to start with: close enough in time for drift to stay below a bracket's width. */
const CHUNK = 8;

/**
 * Pairs markers with host exits: per chunk of consecutive markers, the constant offsets that match
 * all of them; a marker is paired when exactly one host exit fits its bracket at those offsets. A
 * chunk no constant offset fits (it straddles a long pause, so drift shows) is split in halves.
 */
export function pairChunks(markers: Bracket[], host: Float64Array, first: number, last: number): SyncPair[] {
  const ms = [...markers].sort((a, b) => a.t0 - b.t0);
  const pairs: SyncPair[] = [];
  const chunk = (part: Bracket[]): void => {
    if (part.length < 2) return;
    const r = new SyncRefiner(host, first, last);
    for (const m of part) r.add(m.t0, m.t1);
    const best = r.best;
    if (best.spans.length !== 1 || best.matched < part.length) {
      if (part.length > 2) {
        const half = part.length >> 1;
        chunk(part.slice(0, half));
        chunk(part.slice(half));
      }
      return;
    }
    const [lo, hi] = best.spans[0];
    for (const m of part) {
      const fit: number[] = [];
      for (let i = lowerBound(host, m.t0 - hi); i < host.length && host[i] <= m.t1 - lo; i++) fit.push(host[i]);
      if (fit.length === 1) pairs.push({ t0: m.t0, t1: m.t1, h: fit[0] });
    }
  };
  for (let c = 0; c < ms.length; c += CHUNK) chunk(ms.slice(c, c + CHUNK));
  return pairs;
}


/** A fitted drift as KVM's scaled mapping (48 fraction bits), with the fit's bound in cycles. */
export interface DriftMapping {
  ratio: bigint;
  fracBits: 48;
  offset: bigint;
  boundCycles: bigint;
  fit: DriftFit;
}

/**
 * Turns a fit (offset guest − host relative to the two bases, as a line in relative host time)
 * into guest = ((host × ratio) >> 48) + offset, exact at the fit's reference point.
 */
export function driftMapping(fit: DriftFit, guestBase: bigint, hostBase: bigint): DriftMapping {
  const ratio = (1n << 48n) + BigInt(Math.round(fit.drift * 2 ** 48));
  const hostRef = hostBase + BigInt(Math.round(fit.hostRef));
  const guestRef = hostRef + (guestBase - hostBase) + BigInt(Math.round(fit.offsetAtRef));
  const offset = guestRef - ((hostRef * ratio) >> 48n);
  return { ratio, fracBits: 48, offset, boundCycles: BigInt(Math.ceil(fit.bound)) + 1n, fit };
}

/** Pairs and fits; undefined when fewer than three markers pair or no line fits. */
export function estimateDrift(markers: Bracket[], host: Float64Array, first: number, last: number): { pairs: SyncPair[]; fit: DriftFit } | undefined {
  const pairs = pairChunks(markers, host, first, last);
  if (pairs.length < 3) return undefined;
  const fit = fitDrift(pairs);
  return fit ? { pairs, fit } : undefined;
}
