/**
 * Estimation from sync points: on the real kvm-pvm capture (fixtures/pvm-1vcpu) with the bundle's
 * debugfs offsets left out; on sync points built around the real kvm_exits of the docA host; and,
 * with drift, on brackets computed with the kernel's scaling formula.
 */
import { hostTsc } from '../src/model/units.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Diagnostics } from '../src/model/diagnostics.js';
import { estimateOffsets } from '../src/merge/estimate/index.js';
import { hostWindows } from '../src/merge/estimate/host-windows.js';
import { hostIndex } from './helpers/host.js';
import { fitDrift, SyncRefiner, type SyncPair } from '../src/merge/estimate/from-sync.js';
import { hostToGuest, type TscPiece } from '../src/merge/tsc-mapping.js';
import { DOCA, externalMissing, MASTERARBEIT } from './helpers/external.js';
import { ROOT } from './helpers/cli.js';
import { exportMerge } from '../src/export/export-merge.js';
import { prepareMerge } from '../src/merge/session.js';
import { clockCheck } from '../src/merge/estimate/verdict.js';
import { tempDir } from './helpers/tmp.js';

const PVM = join(ROOT, 'fixtures', 'pvm-1vcpu');

describe('the kvm-pvm capture, its files read bare (no debugfs snapshot)', () => {
  it('brackets the offset the guest really sees (0, per the fixture README) from its 40 pio sync points and the KVM_RUN windows', async () => {
    const est = await estimateOffsets(
      await hostIndex([{ file: join(PVM, 'host', 'trace.txt'), clock: 'x86-tsc' }]),
      { role: 'guest', machine: 'guest', file: join(PVM, 'guest', 'trace.txt'), clock: 'x86-tsc' },
      new Map([[0, 26619]]),
      (cpu) => cpu,
      new Diagnostics(false),
    );
    const e = est.get(0)!;
    expect(e.syncMarkers).toBe(80); // 40 pio + 40 cpuid; the host sees no CPUID exit on kvm-pvm
    expect(e.syncMatched).toBe(40);
    expect(e.low! <= 0n && 0n <= e.high!).toBe(true);
    // The README's smallest margin at offset 0 is 6,214 cycles: a pio bracket ends that close.
    expect(e.low).toBe(-6214n);
    expect(e.method).toMatch(/^estimate from sync points \(40 of 80 matched to a host exit on thread 26619\); guest-mode windows of thread 26619/);
  });
});

describe.skipIf(externalMissing)('sync points around the real kvm_exits of the docA host', () => {
  if (externalMissing) console.log(`skipped: ${externalMissing}`);

  it('matches each marker to its exit among 5,000 others and intersects the bounds exactly', async () => {
    const hw = hostWindows(await hostIndex([{ file: join(MASTERARBEIT, 'docA-host-trace.dat') }]), [DOCA.vcpuThread]);
    const w = hw.threads.get(DOCA.vcpuThread)!;
    const exits = w.ends.filter((x) => Number.isFinite(x));
    expect(exits.length).toBeGreaterThan(5000);
    const truth = 987_654_321; // guest − host, relative to the two bases
    const r = new SyncRefiner(exits, hw.first, hw.last);
    let lo = -Infinity;
    let hi = Infinity;
    let n = 0;
    // Two markers whose exits happened before the host trace started: no evidence either way.
    r.add(truth + hw.first - 50_000_000, truth + hw.first - 49_999_000);
    r.add(truth + hw.first - 40_000_000, truth + hw.first - 39_999_000);
    for (let i = 0; i < exits.length; i += 97) {
      const h = exits[i];
      const t0 = h + truth - (150 + ((i * 7) % 400));
      const t1 = h + truth + (120 + ((i * 13) % 300));
      r.add(t0, t1);
      lo = Math.max(lo, t0 - h);
      hi = Math.min(hi, t1 - h);
      n++;
    }
    expect(r.best).toEqual({ spans: [[lo, hi]], matched: n });
    expect(lo <= truth && truth <= hi).toBe(true);
  });
});

describe('drift: a scaled guest TSC (the kernel formula)', () => {
  // guest = ((host × ratio) >> 48) + offset, ratio 1 + 20 ppm.
  const ratio = (1n << 48n) + (1n << 48n) / 50_000n;
  const piece: TscPiece = { fromHostTsc: hostTsc(-1n), offset: -63430235715905n, ratio, fracBits: 48, source: 'test' };
  const hostBase = 1_000_000_000_000n;
  const pairs: SyncPair[] = [];
  const gBase = hostToGuest(piece, hostTsc(hostBase));
  for (let i = 0; i < 200; i++) {
    const h = hostBase + BigInt(i) * 29_184_000n + BigInt((i * 7919) % 100_000); // ~10 ms apart over 2 s
    const t0 = hostToGuest(piece, hostTsc(h - 300n - BigInt(i % 50)));
    const t1 = hostToGuest(piece, hostTsc(h + 250n + BigInt(i % 70)));
    pairs.push({ t0: Number(t0 - gBase), t1: Number(t1 - gBase), h: Number(h - hostBase) });
  }
  const trueDrift = Number(ratio - (1n << 48n)) / 2 ** 48;

  it('no constant offset fits every bracket over 2 s at 20 ppm', () => {
    const r = new SyncRefiner(Float64Array.from(pairs.map((p) => p.h)), 0, pairs[pairs.length - 1].h);
    for (const p of pairs) r.add(p.t0, p.t1);
    expect(r.best.matched).toBeLessThan(pairs.length);
  });

  it('the convex-hull fit brackets the true drift and offset, and the bound holds at every pair', () => {
    const f = fitDrift(pairs)!;
    expect(f.driftMin <= trueDrift && trueDrift <= f.driftMax).toBe(true);
    expect(Math.abs(f.drift - trueDrift)).toBeLessThan(1e-8);
    for (const p of pairs) {
      const off = f.offsetAtRef + f.drift * (p.h - f.hostRef);
      expect(off).toBeGreaterThanOrEqual(p.t0 - p.h - 1e-3);
      expect(off).toBeLessThanOrEqual(p.t1 - p.h + 1e-3);
    }
    expect(f.bound).toBeLessThan(600);
  });

  it('refuses brackets no line can pass between', () => {
    const bad = [...pairs.slice(0, 10), { t0: pairs[5].t0 + 10_000, t1: pairs[5].t1 + 10_000, h: pairs[5].h + 1 }];
    expect(fitDrift(bad)).toBeUndefined();
  });
});

describe('drift on real data: the pvm capture as a guest with TSC scaling would have recorded it', () => {
  // Every guest TSC value (timestamps, marker brackets) passed through KVM's formula with ratio
  // 1 + 50 ppm and another offset: what the same run gives with a scaled guest TSC. The host copy
  // lacks its two kvm_write_tsc_offset lines (recorded before the capture was armed), so nothing
  // states the mapping and it must come from the sync points.
  const R = (1n << 48n) + (1n << 48n) / 20_000n;
  const OFF = -5_000_000_000_000n;
  const scale = (x: string): string => (((BigInt(x) * R) >> 48n) + OFF).toString();

  it('pairs the sync points chunk by chunk, fits the drift, and maps every checkable marker and event inside', async () => {
    const dir = tempDir('kvmtrace-drift-');
    const guest = readFileSync(join(PVM, 'guest', 'trace.txt'), 'utf8')
      .replace(/^(.*?\] \S+ )(\d+)(: )/gm, (_m, a: string, ts: string, b: string) => a + scale(ts) + b)
      .replace(/ t([01])=(\d+)/g, (_m, k: string, v: string) => ` t${k}=${scale(v)}`);
    const host = readFileSync(join(PVM, 'host', 'trace.txt'), 'utf8').split('\n').filter((l) => !l.includes('kvm_write_tsc_offset:')).join('\n');
    writeFileSync(join(dir, 'guest.txt'), guest);
    writeFileSync(join(dir, 'host.txt'), host);
    const p = await prepareMerge({
      bundles: [], hostFiles: [join(dir, 'host.txt')], guestFiles: [join(dir, 'guest.txt')], hostClock: 'x86-tsc', guestClock: 'x86-tsc',
      overrides: { vcpuThreads: new Map([[0, 26619]]) },
    });
    const v = p.guests[0].plan!.vcpu(0);
    expect(v.mappingFrom).toMatch(/^estimate from sync points with drift \(40 of 40 pio markers paired/);
    const piece = v.mapping.pieces[0];
    expect(piece.fracBits).toBe(48);
    // The brackets (~60 µs wide, ~10 s apart) pin the rate to a few ppm: the fit is well within that.
    expect(Math.abs(Number(piece.ratio! - R)) / 2 ** 48).toBeLessThan(1e-6);
    const r = await exportMerge(p, {});
    const val = r.result.guests[0].vcpus[0];
    expect(val.sync).toMatchObject({ points: 80, matched: 40, noHostEvidence: 40 });
    expect(val.checked).toBeGreaterThan(300);
    expect(val.inside).toBe(val.checked);
    expect(clockCheck(p, r.result).guests[0].verdict).toBe('BOUNDED');
  });
});
