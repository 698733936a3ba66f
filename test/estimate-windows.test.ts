/**
 * Offset estimation from guest-mode windows: the refinement is exactly the set of offsets that
 * put every guest event inside a window (checked against brute force), and on the real docA pair
 * with the file's offsets ignored it brackets the true offset.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Diagnostics } from '../src/model/diagnostics.js';
import { estimateOffsets } from '../src/merge/estimate/index.js';
import { HoleCandidates, longestGap, longestGaps, WindowRefiner, type Span } from '../src/merge/estimate/from-windows.js';
import { hostWindows, type ThreadWindows } from '../src/merge/estimate/host-windows.js';
import { hostIndex } from './helpers/host.js';
import { exportMerge } from '../src/export/export-merge.js';
import { prepareMerge } from '../src/merge/session.js';
import { DOCA, externalMissing, MASTERARBEIT, reference } from './helpers/external.js';
import { tempDir } from './helpers/tmp.js';

/** A deterministic pseudo-random sequence (xorshift32). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

/** Host windows with random lengths and gaps, from `from` on. */
function windows(r: () => number, n: number, from: number): ThreadWindows {
  const starts: number[] = [];
  const ends: number[] = [];
  let t = from;
  for (let i = 0; i < n; i++) {
    t += Math.floor(r() * 40);
    starts.push(t);
    t += 5 + Math.floor(r() * 60);
    ends.push(t);
  }
  return { tid: 1, starts: Float64Array.from(starts), ends: Float64Array.from(ends), pio: new Float64Array(0), cpuid: new Float64Array(0) };
}

/** Brute force: does offset o' put every guest event inside a window (or outside the checkable span)? */
function fits(w: ThreadWindows, first: number, last: number, guest: number[], o: number): boolean {
  return guest.every((g) => {
    const h = g - o;
    if (h < first || h > last) return true;
    for (let i = 0; i < w.starts.length; i++) if (w.starts[i] <= h && h <= w.ends[i]) return true;
    return false;
  });
}

describe('refinement over guest-mode windows', () => {
  for (const seed of [1, 7, 42, 1234, 99991]) {
    it(`keeps exactly the offsets that fit every event (brute force, seed ${seed})`, () => {
      const r = rng(seed);
      const w = windows(r, 60, 100);
      const last = w.ends[w.ends.length - 1] + 20;
      const truth = 5000;
      // Guest events inside random windows, at the true offset, in time order.
      const guest: number[] = [];
      for (let i = 0; i < w.starts.length; i++) {
        if (r() < 0.3) continue;
        const k = 1 + Math.floor(r() * 4);
        for (let j = 0; j < k; j++) guest.push(truth + w.starts[i] + Math.floor(r() * (w.ends[i] - w.starts[i] + 1)));
      }
      guest.sort((a, b) => a - b);
      const range: Span = [truth - 400, truth + 400];
      const first = w.starts[0] - 15;
      const ref = new WindowRefiner(w, first, last, [range]);
      for (const g of guest) ref.add(g);
      const got = new Set<number>();
      for (const [a, b] of ref.result) for (let o = a; o <= b; o++) got.add(o);
      const want = new Set<number>();
      for (let o = range[0]; o <= range[1]; o++) if (fits(w, first, last, guest, o)) want.add(o);
      expect(got.has(truth)).toBe(true);
      expect([...got].sort((a, b) => a - b)).toEqual([...want].sort((a, b) => a - b));
    });
  }

  it("finds the true offset among the guest's holes long enough for the host's longest gap", () => {
    const r = rng(5);
    const w = windows(r, 40, 0);
    const truth = -123456;
    const guest: number[] = [];
    for (let i = 0; i < w.starts.length; i++) guest.push(truth + w.starts[i], truth + w.ends[i]);
    const gap = longestGap(w)!;
    const holes = new HoleCandidates(gap, 100);
    for (const g of guest) holes.add(g);
    expect(holes.spans.some(([a, b]) => a <= truth && truth <= b)).toBe(true);
    const ref = new WindowRefiner(w, -Infinity, Infinity, holes.spans);
    for (const g of guest) ref.add(g);
    // Events at both ends of every window pin the offset to the cycle.
    expect(ref.result).toEqual([[truth, truth]]);
  });
});

describe.skipIf(externalMissing)('docA with the file offsets ignored', () => {
  if (externalMissing) console.log(`skipped: ${externalMissing}`);
  const host = join(MASTERARBEIT, 'docA-host-trace.dat');
  const guest = join(MASTERARBEIT, 'docA-guest-trace-Salamander4.dat');

  it('brackets the true offset (−63430235715905) from the windows alone', async () => {
    const est = await estimateOffsets(
      await hostIndex([{ file: host }]),
      { role: 'guest', machine: 'guest', file: guest },
      new Map([[0, DOCA.vcpuThread]]),
      (cpu) => cpu,
      new Diagnostics(false),
    );
    const e = est.get(0)!;
    expect(e.intervals.length).toBe(1);
    expect(e.low! <= DOCA.tscOffset && DOCA.tscOffset <= e.high!).toBe(true);
    expect(e.constraining).toBe(89827);
    // A bound well under a microsecond at 2.9184 GHz.
    expect(Number(e.high! - e.low!)).toBeLessThan(2918);
  });

  it('gives the same interval from the host split into per-CPU text files (transitions sorted across files)', async () => {
    const raw = readFileSync(reference('docA-host-trace.dat.report-rawts.txt'), 'utf8').split('\n');
    const dir = tempDir('kvmtrace-split-');
    const even = raw.filter((l) => /\[\d*[02468]\]/.test(l));
    const odd = raw.filter((l) => /\[\d*[13579]\]/.test(l));
    expect(even.length).toBeGreaterThan(100);
    expect(odd.length).toBeGreaterThan(100);
    writeFileSync(join(dir, 'even.txt'), even.join('\n') + '\n');
    writeFileSync(join(dir, 'odd.txt'), odd.join('\n') + '\n');
    const g = { role: 'guest' as const, machine: 'guest', file: reference('docA-guest-trace-Salamander4.dat.report-rawts.txt'), clock: 'x86-tsc' as const };
    const run = (files: string[]) =>
      hostIndex(files.map((f) => ({ file: f, clock: 'x86-tsc' as const }))).then((ix) => estimateOffsets(ix, g, new Map([[0, DOCA.vcpuThread]]), (c) => c, new Diagnostics(false)));
    const split = (await run([join(dir, 'even.txt'), join(dir, 'odd.txt')])).get(0)!;
    const whole = (await run([reference('docA-host-trace.dat.report-rawts.txt')])).get(0)!;
    expect(split.intervals).toEqual(whole.intervals);
    expect(whole.low! <= DOCA.tscOffset && DOCA.tscOffset <= whole.high!).toBe(true);
  });

  it("falls back to the host's next longest gap when the guest trace starts after the longest", async () => {
    const host = reference('docA-host-trace.dat.report-rawts.txt');
    const hs = [{ role: 'host' as const, machine: 'host', file: host, clock: 'x86-tsc' as const }];
    const hix = await hostIndex(hs);
    const hw = hostWindows(hix, [DOCA.vcpuThread]);
    const [gap1] = longestGaps(hw.threads.get(DOCA.vcpuThread)!, 3);
    // The guest's events from just after the longest gap on (guest TSC = host TSC + offset).
    const cut = hw.base + BigInt(gap1.y) + DOCA.tscOffset + 1000n;
    const dir = tempDir('kvmtrace-cut-');
    const lines = readFileSync(reference('docA-guest-trace-Salamander4.dat.report-rawts.txt'), 'utf8').split('\n');
    const kept = lines.filter((l) => {
      const m = /\](\d+):/.exec(l);
      return m !== null && BigInt(m[1]) > cut;
    });
    expect(kept.length).toBeGreaterThan(10_000);
    expect(kept.length).toBeLessThan(lines.length - 10_000);
    writeFileSync(join(dir, 'guest.txt'), kept.join('\n') + '\n');
    const est = await estimateOffsets(hix, { role: 'guest', machine: 'guest', file: join(dir, 'guest.txt'), clock: 'x86-tsc' }, new Map([[0, DOCA.vcpuThread]]), (c) => c, new Diagnostics(false));
    const e = est.get(0)!;
    expect(e.method).toMatch(/^estimate from the host's 2nd longest out-of-guest gap/);
    expect(e.intervals.length).toBe(1);
    expect(e.low! <= DOCA.tscOffset && DOCA.tscOffset <= e.high!).toBe(true);
  });

  it('merges with the estimate: bounded mapping, every checkable guest event inside', async () => {
    const p = await prepareMerge({ bundles: [], hostFiles: [host], guestFiles: [guest], overrides: { noFileOffsets: true } });
    const v = p.guests[0].plan!.vcpu(0);
    expect(v.mappingFrom).toMatch(/^estimate from the host.s longest out-of-guest gap .* guest-mode windows of thread 483882 \(89827 guest events checked\)$/);
    expect(v.tid).toBe(DOCA.vcpuThread);
    expect(v.tidFrom).toBe('kvm_entry events');
    expect(v.bound!.low <= DOCA.tscOffset && DOCA.tscOffset <= v.bound!.high).toBe(true);
    const r = await exportMerge(p, {});
    expect(r.result.guests[0].vcpus[0]).toMatchObject({ vcpu: 0, checked: 89827, inside: 89827 });
  });
});
