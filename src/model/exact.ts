/**
 * Exact timestamps without a bigint per event.
 *
 * A source's timestamps are kept as safe-integer deltas from a bigint base (its first
 * timestamp). A decimal string is split at 10^9 into `hi * 1e9 + lo`; for any u64 both parts
 * are safe integers, and `(hi - baseHi) * 1e9 + (lo - baseLo)` is exact as long as the delta
 * itself is below 2^53 (≈ 34 days of a 3 GHz TSC inside one trace). Whole u64 TSC values
 * (which pass 2^53 after ~34 days of uptime) therefore never lose a cycle.
 */

const E9 = 1_000_000_000;
const E9n = 1_000_000_000n;

/** A timestamp base: the bigint value and its split parts. */
export class TsBase {
  readonly hi: number;
  readonly lo: number;
  constructor(readonly value: bigint) {
    this.hi = Number(value / E9n);
    this.lo = Number(value % E9n);
  }

  /** The delta of `hi * 1e9 + lo` from this base, exact while below 2^53 in magnitude. */
  rel(hi: number, lo: number): number {
    return (hi - this.hi) * E9 + (lo - this.lo);
  }

  /** The absolute value of a delta from this base. */
  abs(rel: number): bigint {
    return this.value + BigInt(rel);
  }
}

/**
 * Splits an unsigned decimal integer string (≤ 20 digits) into `[hi, lo]` with value = hi*1e9+lo.
 * Returns undefined when the text is not all digits.
 */
export function splitDecimal(s: string, start = 0, end = s.length): [number, number] | undefined {
  const n = end - start;
  if (n <= 0 || n > 20) return undefined;
  let hi = 0;
  let lo = 0;
  const cut = end - 9;
  for (let i = start; i < end; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return undefined;
    if (i < cut) hi = hi * 10 + d;
    else lo = lo * 10 + d;
  }
  return [hi, lo];
}

const U64 = 1n << 64n;

/** Reads a u64 printed by the kernel (`%llu`) as the signed s64 it encodes in two's complement. */
export function u64ToS64(v: bigint): bigint {
  return v >= 1n << 63n ? v - U64 : v;
}
