/**
 * Ways to damage a real input, for the bad-input tests: cut it, flip bytes in a range, put NUL
 * bytes in it, give it CRLF line ends. Each takes the bytes and a seeded generator (see rng.ts)
 * and returns new bytes; the original is never touched.
 */
import type { Range } from './trace-dat-layout.js';

/** A whole number in [lo, hi). */
export const between = (r: () => number, lo: number, hi: number): number => lo + Math.floor(r() * Math.max(1, hi - lo));

/** One element of a list. */
export const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];

/** Each byte at `at` inverted (xor 0xff: never a no-op). */
export function flipAt(b: Buffer, at: number[]): Buffer {
  const out = Buffer.from(b);
  for (const i of at) out[i] ^= 0xff;
  return out;
}

/** `n` bytes inverted at random places in `range`. */
export function flipIn(b: Buffer, r: () => number, range: Range, n: number): Buffer {
  return flipAt(b, Array.from({ length: n }, () => between(r, range.start, range.end)));
}

/** The offsets where lines start (0 and each byte after a newline, except the end). */
export function lineStarts(b: Buffer): number[] {
  const s = [0];
  for (let i = b.indexOf(10); i >= 0 && i + 1 < b.length; i = b.indexOf(10, i + 1)) s.push(i + 1);
  return s;
}

/** An offset inside a line (neither its first byte nor its newline), in the byte range [lo, hi). */
export function midLine(b: Buffer, r: () => number, lo = 0, hi = b.length): number {
  for (;;) {
    const at = between(r, lo, hi);
    if (at > 0 && b[at - 1] !== 10 && b[at] !== 10) return at;
  }
}

/** The offset of a random line's start in [lo, hi) (a cut there leaves whole lines). */
export function atLineStart(b: Buffer, r: () => number, lo = 1, hi = b.length): number {
  const s = lineStarts(b).filter((x) => x >= lo && x < hi);
  return pick(r, s);
}

/** The text with every LF turned into CRLF. */
export const toCrlf = (b: Buffer): Buffer => Buffer.from(b.toString('latin1').replace(/\n/g, '\r\n'), 'latin1');

/** The bytes with `len` NUL bytes written over them at `at`. */
export function nulsAt(b: Buffer, at: number, len: number): Buffer {
  const out = Buffer.from(b);
  out.fill(0, at, Math.min(b.length, at + len));
  return out;
}
