/**
 * Number formatting shared by the exporters, exact for TSC values past 2^53.
 */
import { cyclesToNs } from '../model/units.js';

const E9 = 1_000_000_000;

/** Prints `base + t` (base split as hi·1e9 + lo) exactly without a bigint per call. */
export function absDecimal(baseHi: number, baseLo: number, t: number): string {
  let lo = baseLo + t;
  let hi = baseHi;
  if (lo >= E9 || lo < 0) {
    const carry = Math.floor(lo / E9);
    hi += carry;
    lo -= carry * E9;
  }
  if (hi === 0) return String(lo);
  if (hi < 0) return (BigInt(hi) * 1_000_000_000n + BigInt(lo)).toString();
  return String(hi) + String(lo).padStart(9, '0');
}

/** Microseconds since the start with at most 3 decimals (Chrome's `ts`/`dur`), from cycles and TSC kHz. */
export function cyclesToMicros(t: number, tscKhz: number): string {
  const ns = Math.round(cyclesToNs(t, tscKhz));
  if (ns < 0) return '-' + nsToMicros(-ns);
  return nsToMicros(ns);
}

/** Formats a non-negative ns count as µs with trailing zeros of the fraction dropped (no regex). */
function nsToMicros(ns: number): string {
  const us = Math.floor(ns / 1000);
  const f = ns - us * 1000;
  if (f === 0) return String(us);
  if (f % 100 === 0) return us + '.' + f / 100;
  if (f % 10 === 0) return us + (f < 100 ? '.0' : '.') + f / 10;
  return us + (f < 10 ? '.00' : f < 100 ? '.0' : '.') + f;
}
