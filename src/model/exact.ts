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

/**
 * Splits `SECONDS.FRACTION` (6 or 9 decimals) into `[seconds, nanoseconds]`, i.e. hi/lo at 1e9 of the
 * value in ns. Returns undefined for any other shape.
 */
export function splitSeconds(s: string, start = 0, end = s.length): [number, number] | undefined {
  const dot = s.indexOf('.', start);
  if (dot < 0 || dot >= end) return undefined;
  const frac = end - dot - 1;
  if (frac !== 6 && frac !== 9) return undefined;
  let sec = 0;
  for (let i = start; i < dot; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return undefined;
    sec = sec * 10 + d;
  }
  if (dot === start) return undefined;
  let ns = 0;
  for (let i = dot + 1; i < end; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return undefined;
    ns = ns * 10 + d;
  }
  if (frac === 6) ns *= 1000;
  return [sec, ns];
}

/** Parses a decimal string that may be negative (two's complement u64 values are not handled here). */
export function parseBigInt(s: string): bigint | undefined {
  return /^-?\d+$/.test(s.trim()) ? BigInt(s.trim()) : undefined;
}

const U64 = 1n << 64n;

/** Reads a u64 printed by the kernel (`%llu`) as the signed s64 it encodes in two's complement. */
export function u64ToS64(v: bigint): bigint {
  return v >= 1n << 63n ? v - U64 : v;
}

/** Converts cycles to ns exactly rounded down, given the TSC frequency in kHz. */
export function cyclesToNs(cycles: bigint, tscKhz: number): bigint {
  return (cycles * 1_000_000n) / BigInt(tscKhz);
}
