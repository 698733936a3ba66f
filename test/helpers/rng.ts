/**
 * A small deterministic PRNG (mulberry32), so that a test drawing random offsets or bytes draws
 * the same ones on every run and a failure can be replayed.
 */

/** A generator of numbers in [0, 1), fixed by `seed`. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
