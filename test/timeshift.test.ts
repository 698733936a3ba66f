/**
 * trace-cmd's TIME_SHIFT as a clock mapping: constant, stepped, interpolated and scaled samples.
 * The samples are the docA guest file's own, changed to each case; the expected host times are
 * computed here from trace-cmd's documented formula (host = ((guest × scaling) >> frac) + offset,
 * the offset interpolated linearly between samples when flag bit 0 is set).
 */
import { guestTsc } from '../src/model/units.js';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Diagnostics } from '../src/model/diagnostics.js';
import { planGuest } from '../src/merge/plan.js';
import type { HostIndex } from '../src/host/index.js';

/** The facts of the host index a plan reads. */
type HostScan = Pick<HostIndex, 'tscWrites' | 'vcpuThreadsSeen'>;
import type { SourceSpec } from '../src/merge/source.js';
import { openTraceDat, type TraceDat, type TraceDatInfo } from '../src/parsers/trace-dat/index.js';
import { MASTERARBEIT, externalMissing } from './helpers/external.js';

const emptyScan: HostScan = { tscWrites: [], vcpuThreadsSeen: new Map() };

describe.skipIf(externalMissing)('TIME_SHIFT samples as the mapping (docA guest file)', () => {
  if (externalMissing) console.log(`skipped: ${externalMissing}`);
  const dat = (f: string): TraceDat => {
    const t = openTraceDat(join(MASTERARBEIT, f), new Diagnostics());
    t.close();
    return t;
  };
  // Opened when the tests run, not when they are collected: a clone without ../shared collects
  // them as skipped.
  let host: TraceDat;
  let guest: TraceDat;
  let samples: NonNullable<TraceDatInfo['options']['timeShift']>['cpus'][number];
  beforeAll(() => {
    host = dat('docA-host-trace.dat');
    guest = dat('docA-guest-trace-Salamander4.dat');
    samples = guest.options.timeShift!.cpus[0];
  });
  const plan = (change: (ts: NonNullable<TraceDatInfo['options']['timeShift']>) => void) => {
    const ts = structuredClone(guest.options.timeShift!);
    change(ts);
    const g: SourceSpec = { role: 'guest', machine: 'g', file: 'g.dat', dat: { ...guest, options: { ...guest.options, timeShift: ts } } };
    const h: SourceSpec = { role: 'host', machine: 'h', file: 'h.dat', dat: host };
    return planGuest(h, emptyScan, g, {}).vcpu(0);
  };

  it('is one exact offset when the samples agree (the file as recorded)', () => {
    const v = plan(() => undefined);
    expect(samples.length).toBe(2);
    expect(v.mapping.pieces.map((p) => p.offset)).toEqual([-63430235715905n]);
    expect(v.mapping.toHost(guestTsc(samples[0].time))).toBe(samples[0].time + 63430235715905n);
  });

  it('interpolates between samples whose offsets differ when flag bit 0 says so', () => {
    const v = plan((ts) => {
      ts.flags = 1;
      ts.cpus[0][1].offset += 2_918_400n; // 1 ms more at the second sample
    });
    const [a, b] = [samples[0], { ...samples[1], offset: samples[1].offset + 2_918_400n }];
    const mid = (a.time + b.time) / 2n;
    const expected = mid + a.offset + ((mid - a.time) * (b.offset - a.offset) + (b.time - a.time) / 2n) / (b.time - a.time);
    expect(v.mapping.toHost(guestTsc(mid))).toBe(expected);
    expect(v.mappingFrom).toMatch(/interpolated/);
    expect(v.mapping.toHost(guestTsc(a.time))).toBe(a.time + a.offset);
  });

  it('steps from one sample to the next without the flag (trace-cmd: the sample at or before the time)', () => {
    const c = { ...samples[1], time: samples[1].time + 1_000_000_000n, offset: samples[1].offset + 5_836_800n };
    const v = plan((ts) => {
      ts.flags = 0;
      ts.cpus[0][1].offset += 2_918_400n;
      ts.cpus[0].push({ ...c });
    });
    const [a, b] = [samples[0], { ...samples[1], offset: samples[1].offset + 2_918_400n }];
    expect(v.mapping.toHost(guestTsc((a.time + b.time) / 2n))).toBe((a.time + b.time) / 2n + a.offset);
    expect(v.mapping.toHost(guestTsc(b.time + 10n))).toBe(b.time + 10n + b.offset);
    expect(v.mapping.toHost(guestTsc(c.time + 10n))).toBe(c.time + 10n + b.offset); // past the last sample: the last pair's first
    expect(v.mappingFrom).toMatch(/stepped/);
  });

  it('applies the scaling ratio and its fraction bits, in trace-cmd\'s u64 arithmetic', () => {
    const v = plan((ts) => {
      for (const s of ts.cpus[0]) Object.assign(s, { scaling: 3n << 47n, fracBits: 48 }); // ×1.5
    });
    const g = samples[0].time + 123_456_789n;
    const u64 = (x: bigint): bigint => x & ((1n << 64n) - 1n);
    expect(v.mapping.toHost(guestTsc(g))).toBe(u64((u64(g * (3n << 47n)) >> 48n) + samples[0].offset));
    expect(v.mappingFrom).toMatch(/scaled/);
    // A small guest TSC, where the product fits in 64 bits: the plain ×1.5.
    expect(v.mapping.toHost(guestTsc(40_000n))).toBe(60_000n + samples[0].offset);
  });
});
