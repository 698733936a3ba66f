/**
 * The one clock of the Perfetto output: absolute host TSC converted to ns with the TSC frequency,
 * ns = ⌊tsc × 10^6 / kHz⌋, exact for any u64 TSC. Timeline times are safe-integer cycles from a
 * bigint base; the base is converted once with bigints, and each event's delta with numbers that
 * stay exact (each product is below 2^53), so no cycle is lost before the division.
 */

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** Converts timeline times (cycles from `base`) to absolute ns. */
export class NsClock {
  private readonly baseNs: bigint;
  /** `baseNs` as a number while base + any delta stays a safe integer, else undefined. */
  private readonly baseNsNum: number | undefined;
  /** (base × 10^6) mod kHz: the part of a ns the base carries into every delta. */
  private readonly rem: number;

  constructor(
    base: bigint,
    private readonly khz: number,
  ) {
    const k = BigInt(khz);
    const scaled = base * 1_000_000n;
    this.baseNs = scaled / k;
    this.rem = Number(scaled % k);
    this.baseNsNum = this.baseNs < 1n << 51n ? Number(this.baseNs) : undefined;
  }

  /** ns from the base's ns to timeline time `t` (t may be negative: guest events before the host's first). */
  relNs(t: number): number {
    const k = this.khz;
    let a = Math.floor(t / k);
    let b = t - a * k;
    // Float division can land one off for |t| near 2^53: bring b back into [0, k).
    if (b < 0) (a--, (b += k));
    else if (b >= k) (a++, (b -= k));
    return a * 1_000_000 + Math.floor((this.rem + b * 1_000_000) / k);
  }

  /** Absolute ns at timeline time `t` as a number when that is exact, else undefined (use {@link nsBig}). */
  ns(t: number): number | undefined {
    if (this.baseNsNum === undefined) return undefined;
    const v = this.baseNsNum + this.relNs(t);
    return v <= MAX_SAFE && v >= 0 ? v : undefined;
  }

  /** Absolute ns at timeline time `t`, as a bigint. */
  nsBig(t: number): bigint {
    return this.baseNs + BigInt(this.relNs(t));
  }
}
