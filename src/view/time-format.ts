/**
 * Times on the view's axis and status line: cycles → ns with the TSC frequency, printed in the unit
 * that suits the zoom (ns, µs, ms, s). Without a TSC frequency, cycles are printed as cycles.
 */
import { cyclesToNs } from '../model/units.js';

/** Units, from the smallest. */
const UNITS: [string, number][] = [
  ['ns', 1],
  ['µs', 1e3],
  ['ms', 1e6],
  ['s', 1e9],
];

/** Converts cycles to ns (or returns cycles when the frequency is unknown). */
export function toNs(cycles: number, tscKhz: number | undefined): number {
  return tscKhz ? cyclesToNs(cycles, tscKhz) : cycles;
}

/** Converts ns (or cycles) back to cycles. */
export function fromNs(ns: number, tscKhz: number | undefined): number {
  return tscKhz ? (ns * tscKhz) / 1e6 : ns;
}

/** The unit a step of `stepNs` is best printed in. */
export function unitFor(stepNs: number): [string, number] {
  let u = UNITS[0];
  for (const x of UNITS) if (stepNs >= x[1]) u = x;
  return u;
}

/** A "nice" axis step (1, 2 or 5 × 10^k) of at least `minNs`. */
export function niceStep(minNs: number): number {
  const p = 10 ** Math.floor(Math.log10(Math.max(minNs, 1e-9)));
  for (const m of [1, 2, 5, 10]) if (m * p >= minNs) return m * p;
  return 10 * p;
}

/** Prints a time (ns, or cycles when `cycles`) with the unit of `scaleNs` and enough decimals for `resolutionNs`. */
export function fmtTime(ns: number, scaleNs: number, resolutionNs: number, cycles = false): string {
  if (cycles) return `${Math.round(ns).toLocaleString('en-US')} cyc`;
  const [name, div] = unitFor(scaleNs);
  const decimals = Math.max(0, Math.min(6, Math.ceil(Math.log10(div / Math.max(resolutionNs, 1e-9)) - 1e-9)));
  return `${(ns / div).toFixed(decimals)} ${name}`;
}

/** A duration with 4 significant digits in its own unit (`12.35 µs`). */
export function fmtDuration(ns: number, cycles = false): string {
  if (cycles) return `${Math.round(ns).toLocaleString('en-US')} cyc`;
  const [name, div] = unitFor(ns);
  const v = ns / div;
  return `${v >= 100 ? v.toFixed(1) : v >= 10 ? v.toFixed(2) : v.toFixed(3)} ${name}`;
}
