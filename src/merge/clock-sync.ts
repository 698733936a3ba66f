/**
 * Guests traced with a time clock (`mono`, `global`, `local`, `boot`: ns) are put on their TSC
 * through their own `kvmsync` markers: each marker is stamped with the trace clock and carries
 * the rdtsc values t0 and t1 read just before it was written. So (marker time, t1) pairs the two
 * clocks; between pairs the map is linear. Then the guest TSC goes to the host as for any guest.
 *
 * Error: the marker is stamped after t1 (the write costs ~1 µs), and tracefs prints time clocks
 * to the µs, so a mapped time is early by about the write latency, within ±1 µs of quantization.
 */
import type { Diagnostics } from '../model/diagnostics.js';
import { UserError } from '../model/errors.js';
import { guestTsc, type GuestTsc } from '../model/units.js';
import { fieldsOfEvent } from '../parsers/event-fields.js';
import { openSource, type SourceSpec } from './source.js';

/** Anchors closer than this (ns) say little about the rate; the first of each burst is kept. */
const MIN_SPACING_NS = 1_000_000n;

/** A piecewise-linear map from a guest's time clock (absolute ns) to its TSC (cycles). */
export class ClockToTsc {
  private k = 0;

  /** @param ns anchor times (strictly increasing), @param tsc the guest TSC at each */
  constructor(
    readonly ns: bigint[],
    readonly tsc: bigint[],
    readonly markers: number,
  ) {}

  /** Reads a guest source for its kvmsync markers; undefined when it has fewer than two usable anchors. */
  static async fromSource(spec: SourceSpec, diags: Diagnostics): Promise<ClockToTsc | undefined> {
    const src = await openSource(spec, diags);
    const pairs: [bigint, bigint][] = [];
    for await (const batch of src.batches)
      for (const ev of batch) {
        const f = fieldsOfEvent(ev);
        const m = f?.kind === 'marker' ? f.sync : undefined;
        if (m) pairs.push([src.header.base!.abs(ev.ts), m.t1]);
      }
    pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const ns: bigint[] = [];
    const tsc: bigint[] = [];
    for (const [t, c] of pairs)
      if (ns.length === 0 || t - ns[ns.length - 1] >= MIN_SPACING_NS) {
        if (tsc.length && c <= tsc[tsc.length - 1]) continue; // a TSC going back says nothing about the rate
        ns.push(t);
        tsc.push(c);
      }
    return ns.length >= 2 ? new ClockToTsc(ns, tsc, pairs.length) : undefined;
  }

  /** The guest TSC at a clock time: interpolated between anchors, extrapolated past the ends. */
  toTsc(t: bigint): GuestTsc {
    const { ns, tsc } = this;
    let k = this.k;
    while (k > 0 && t < ns[k]) k--;
    while (k + 2 < ns.length && t >= ns[k + 1]) k++;
    this.k = k;
    const dt = ns[k + 1] - ns[k];
    const d = (t - ns[k]) * (tsc[k + 1] - tsc[k]);
    // Floor division, also for times before the first anchor (negative d).
    const q = d / dt;
    return guestTsc(tsc[k] + (d < 0n && q * dt !== d ? q - 1n : q));
  }

  /** The rate it implies, in kHz (TSC cycles per ms), over all anchors. */
  get tscKhz(): number {
    const n = this.ns.length - 1;
    return Number(((this.tsc[n] - this.tsc[0]) * 1_000_000n) / (this.ns[n] - this.ns[0]));
  }
}

/** Builds the clock map of a guest whose trace clock is a time clock, or says what to record. */
export async function clockSyncFor(spec: SourceSpec, diags: Diagnostics): Promise<ClockToTsc> {
  const m = await ClockToTsc.fromSource(spec, diags);
  if (!m)
    throw new UserError(
      `${spec.file}: the guest was traced with the ${spec.clock} clock and has fewer than two kvmsync markers at least 1 ms apart to tie it to its TSC — record the guest with trace_clock x86-tsc, or run syncpt at the start and the end of the capture`,
    );
  return m;
}
