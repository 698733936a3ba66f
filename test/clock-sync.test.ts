/**
 * Guests traced with a time clock reach their TSC through their kvmsync markers. The check is real:
 * fixtures/clock-pair recorded the same events at once in three tracefs instances on this machine —
 * x86-tsc, then mono (with the sync markers), then x86-tsc again, in the order their probes run —
 * so the two x86-tsc copies bracket the moment each mono stamp was taken: the truth.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Diagnostics } from '../src/model/diagnostics.js';
import { ClockToTsc, describeClockSync } from '../src/merge/clock-sync.js';
import { readFtraceText } from '../src/parsers/ftrace-text.js';
import { kvmtrace, ROOT } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

const DIR = join(ROOT, 'fixtures', 'clock-pair');
const spec = { role: 'guest' as const, machine: 'g', file: join(DIR, 'mono.txt'), clock: 'mono' as const, clockFrom: 'flag' as const, format: 'ftrace-text' as const };
/** This machine's TSC, as its kernel log said when the fixture was recorded (`tsc: Detected 2096.018 MHz processor`). */
const TSC_KHZ = 2_096_018;

interface Ev {
  t: bigint;
  key: string;
}

/** Each CPU's events (markers left out: only the mono copy has them), in the order the CPU's buffer holds them. */
async function read(file: string, clock: 'mono' | 'x86-tsc'): Promise<Map<number, Ev[]>> {
  const out = new Map<number, Ev[]>();
  let p!: { header: { base?: { abs(x: number): bigint } } };
  for await (const b of readFtraceText(join(DIR, file), { clock, clockFrom: 'flag', diags: new Diagnostics() }, (x) => (p = x)))
    for (const e of b) {
      if (e.name === 'tracing_mark_write') continue;
      const l = out.get(e.cpu) ?? out.set(e.cpu, []).get(e.cpu)!;
      l.push({ t: p.header.base!.abs(e.ts), key: `${e.comm}|${e.pid}|${e.name}|${e.body}` });
    }
  return out;
}

/**
 * Where `b` starts relative to `a` (the instances were switched on one after the other, so one may
 * hold a few events more at the start): the shift that makes 40 events in a row agree.
 */
function shiftOf(a: Ev[], b: Ev[]): number {
  for (let d = -60; d <= 60; d++) {
    let ok = true;
    for (let i = 100; i < 140 && ok; i++) ok = a[i]?.key === b[i + d]?.key;
    if (ok) return d;
  }
  throw new Error('the copies do not align');
}

/** Every mono event with its stamp, its CPU, and the truth: the TSC of the same event in the copy before and after. */
async function truth(): Promise<{ ns: bigint; cpu: number; lo: bigint; hi: bigint }[]> {
  const [before, mono, after] = [await read('x86-tsc-before.txt', 'x86-tsc'), await read('mono.txt', 'mono'), await read('x86-tsc.txt', 'x86-tsc')];
  const out: { ns: bigint; cpu: number; lo: bigint; hi: bigint }[] = [];
  for (const [cpu, m] of mono) {
    const [a, b] = [before.get(cpu)!, after.get(cpu)!];
    const [da, db] = [shiftOf(m, a), shiftOf(m, b)];
    m.forEach((e, i) => {
      const [x, y] = [a[i + da], b[i + db]];
      if (!x || !y) return; // recorded by the mono instance only (switched on before / off after the other)
      expect(x.key).toBe(e.key);
      expect(y.key).toBe(e.key);
      expect(x.t <= y.t).toBe(true);
      out.push({ ns: e.t, cpu, lo: x.t, hi: y.t });
    });
  }
  return out;
}

const quantile = (s: number[], q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))];

describe('mapping a time clock to the TSC through kvmsync markers (fixtures/clock-pair)', () => {
  it('fits each CPU through its 5 bursts of markers, at the TSC rate the kernel measured', async () => {
    const cs = (await ClockToTsc.fromSource(spec, new Diagnostics()))!;
    const lines = readFileSync(join(DIR, 'mono.txt'), 'utf8').split('\n');
    expect(cs.markers).toBe(lines.filter((l) => l.includes('kvmsync')).length);
    for (const cpu of [0, 1]) {
      const f = cs.fits.get(cpu)!;
      const own = lines.filter((l) => l.includes(`[00${cpu}]`) && l.includes('kvmsync')).length;
      // syncpt -n 5 per CPU per burst: 4 of each 5 have a next point that bounds their stamp.
      expect(f).toMatchObject({ shared: false, markers: own, bounded: (own / 5) * 4, bursts: 5, segments: 1 });
      expect(Math.abs(f.tscKhz - TSC_KHZ)).toBeLessThanOrEqual(2);
      // tracefs printed mono to the µs: ± 500 ns of it is in the uncertainty.
      expect(f.resolutionCycles).toBe(Math.ceil((500 * TSC_KHZ) / 1e6));
      expect(f.delayMinCycles).toBeGreaterThan(0);
    }
  });

  it('puts every event inside its reported uncertainty of the x86-tsc truth, and says how far it extrapolates', async () => {
    const cs = (await ClockToTsc.fromSource(spec, new Diagnostics()))!;
    const events = await truth();
    expect(events.length).toBeGreaterThan(2000);
    const err: number[] = [];
    const mid: number[] = [];
    let beyond = 0;
    for (const e of events) {
      const g = cs.toTsc(e.ns, e.cpu);
      // Distance from the mapped TSC to the truth's bracket (0 inside it), and to its middle.
      const d = g < e.lo ? Number(g - e.lo) : g > e.hi ? Number(g - e.hi) : 0;
      err.push(d);
      mid.push(Number(g - (e.lo + e.hi) / 2n));
      const f = cs.fits.get(e.cpu)!;
      const out = e.ns < f.firstNs ? f.before : e.ns > f.lastNs ? f.after : undefined;
      if (out) beyond++;
      expect(Math.abs(d)).toBeLessThanOrEqual(out ? out.uncertaintyCycles : f.uncertaintyCycles);
    }
    const abs = err.map(Math.abs).sort((a, b) => a - b);
    const s = [...err].sort((a, b) => a - b);
    const m = [...mid].sort((a, b) => a - b);
    const fits = [...cs.fits.values()];
    console.log(
      `clock-pair: ${events.length} events (${beyond} extrapolated past the markers), error against the x86-tsc bracket in cycles: ` +
        `median ${quantile(s, 0.5)}, |error| p99 ${quantile(abs, 0.99)}, worst ${s[0]} / ${s[s.length - 1]}; ` +
        `against the bracket's middle: median ${quantile(m, 0.5)}, p1 ${quantile(m, 0.01)}, p99 ${quantile(m, 0.99)}; ` +
        `reported uncertainty ± ${fits.map((f) => `${f.uncertaintyCycles} (CPU ${f.cpu})`).join(', ')}, extrapolated ± ${fits.map((f) => Math.max(f.before.uncertaintyCycles, f.after.uncertaintyCycles)).join(', ')}`,
    );
    // The fit counts every mono event past the markers; a few of them have no x86-tsc copy (switched on later).
    const counted = fits.reduce((a, f) => a + f.before.events + f.after.events, 0);
    expect(beyond).toBeGreaterThan(0);
    expect(beyond).toBeLessThanOrEqual(counted);
    expect(counted - beyond).toBeLessThanOrEqual(events.length * 0.01);
    expect(abs[abs.length - 1]).toBeLessThanOrEqual(Math.max(...fits.map((f) => Math.max(f.uncertaintyCycles, f.before.uncertaintyCycles, f.after.uncertaintyCycles))));
  });

  it('fits in pieces when the clock changes rate: the same capture with mono slewed by 100 ppm from its middle burst on', async () => {
    // The real stamps, rewritten as if NTP had sped the clock up by 100 ppm at the third burst's first
    // marker (kept to the µs tracefs prints); the events' true TSCs are unchanged.
    const text = readFileSync(join(DIR, 'mono.txt'), 'utf8');
    const burstStarts = [...text.matchAll(/ (\d+)\.(\d{6}): tracing_mark_write: kvmsync seq=0 /g)].map((m) => BigInt(m[1]) * 1_000_000n + BigInt(m[2]));
    const kink = burstStarts[2]; // µs
    const slewed = (us: bigint): bigint => (us <= kink ? us : kink + ((us - kink) * 10_001n + 5_000n) / 10_000n);
    const file = join(tempDir('kvmtrace-slew-'), 'mono-slewed.txt');
    writeFileSync(file, text.replace(/ (\d+)\.(\d{6}): /g, (_, a: string, b: string) => {
      const us = slewed(BigInt(a) * 1_000_000n + BigInt(b));
      return ` ${us / 1_000_000n}.${String(us % 1_000_000n).padStart(6, '0')}: `;
    }));
    const cs = (await ClockToTsc.fromSource({ ...spec, file }, new Diagnostics()))!;
    const events = await truth();
    for (const cpu of [0, 1]) expect(cs.fits.get(cpu)).toMatchObject({ segments: 2, bursts: 5 });
    let worst = 0;
    for (const e of events) {
      const us = e.ns / 1000n;
      const g = cs.toTsc(slewed(us) * 1000n, e.cpu);
      const d = g < e.lo ? Number(g - e.lo) : g > e.hi ? Number(g - e.hi) : 0;
      const f = cs.fits.get(e.cpu)!;
      const out = e.ns < f.firstNs ? f.before : slewed(us) * 1000n > f.lastNs ? f.after : undefined;
      expect(Math.abs(d)).toBeLessThanOrEqual(out ? out.uncertaintyCycles : f.uncertaintyCycles);
      worst = Math.max(worst, Math.abs(d));
    }
    console.log(`clock-pair slewed 100 ppm from the 3rd burst: 2 pieces per CPU, worst error against the x86-tsc bracket ${worst} cycles; reported ± ${[...cs.fits.values()].map((f) => f.uncertaintyCycles).join(', ')}`);
  });

  it("maps a CPU without markers of its own by the other CPUs' fit, and says so: CPU 1's markers removed", async () => {
    const text = readFileSync(join(DIR, 'mono.txt'), 'utf8');
    const file = join(tempDir('kvmtrace-onecpu-'), 'mono-cpu0-markers.txt');
    writeFileSync(file, text.split('\n').filter((l) => !(l.includes('kvmsync') && l.includes('[001]'))).join('\n'));
    const cs = (await ClockToTsc.fromSource({ ...spec, file }, new Diagnostics()))!;
    const [f0, f1] = [cs.fits.get(0)!, cs.fits.get(1)!];
    expect(f0.shared).toBe(false);
    expect(f1).toMatchObject({ shared: true, markers: f0.markers, uncertaintyCycles: f0.uncertaintyCycles });
    let n = 0;
    for (const e of await truth()) {
      if (e.cpu !== 1) continue;
      const g = cs.toTsc(e.ns, 1);
      const d = g < e.lo ? Number(g - e.lo) : g > e.hi ? Number(g - e.hi) : 0;
      const out = e.ns < f1.firstNs ? f1.before : e.ns > f1.lastNs ? f1.after : undefined;
      if (out) n++;
      // This guest's TSCs and mono clock agree across CPUs, so CPU 0's fit serves CPU 1 as well.
      expect(Math.abs(d)).toBeLessThanOrEqual(out ? out.uncertaintyCycles : f1.uncertaintyCycles);
    }
    expect(n).toBeLessThanOrEqual(f1.before.events + f1.after.events);
    expect(n).toBeGreaterThan(0);
    const d = describeClockSync({ ...spec, file }, cs, (c) => c);
    expect(d.warnings).toContain(`${file}: CPU 1 (vCPU 1) has no kvmsync markers of its own: it is mapped with the fit of all CPUs' markers`);
  });

  it('merges a mono guest with --guest-clock mono: BOUNDED by the fit, the fit per CPU, a warning for extrapolation even with -q', () => {
    const out = tempDir('kvmtrace-clocksync-');
    const args = ['--host', join(DIR, 'x86-tsc.txt'), '--host-clock', 'x86-tsc', '--guest', join(DIR, 'mono.txt'), '--guest-clock', 'mono', '--tsc-offset', '0', '--tsc-khz', String(TSC_KHZ)];
    const r = kvmtrace(['merge', ...args, '--text', join(out, 'm.txt'), '--summary', join(out, 's.json')]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/the mono clock is mapped to the guest TSC through 50 kvmsync markers: per CPU, the line between their brackets/);
    expect(r.stderr).toMatch(/CPU 0 \(vCPU 0\): 25 markers \(20 bounded by a next point\) in 5 burst\(s\), 1 piece\(s\) of constant rate, 209601\d kHz; t1 → stamp delay ≥ \d+ cycles, median \d+; uncertainty ± \d+ cycles/);
    const lines = readFileSync(join(out, 'm.txt'), 'utf8').split('\n').filter((l) => / guest /.test(l));
    expect(lines.length).toBe((readFileSync(join(DIR, 'mono.txt'), 'utf8').match(/^\s+\S.*\[\d{3}\]/gm) ?? []).length);
    // The summary carries the clock check: per vCPU the fit's uncertainty, which is the bound.
    const s = JSON.parse(readFileSync(join(out, 's.json'), 'utf8'));
    for (const v of s.clock.guests[0].vcpus) {
      expect(v.clockFit.clock).toBe('mono');
      expect(v.boundCycles).toBe(String(v.clockFit.uncertaintyCycles));
      expect(v.verdict).toBe('BOUNDED');
    }
    expect(s.clock.guests[0].cpuPairing.assumed).toBe(true);
    const q = kvmtrace(['merge', '-q', ...args, '--text', join(out, 'q.txt')]);
    expect(q.stderr).toMatch(/warning: guest: .*mono\.txt: CPU 0 \(vCPU 0\): \d+ event\(s\) before the first marker \(up to [\d.]+ ms before it\) and \d+ after the last \(up to [\d.]+ ms after it\) are mapped by extrapolating the fit: uncertainty up to ± \d+ cycles/);
  });

  it('refuses a time-clock guest without markers, saying what to record', () => {
    const r = kvmtrace(['merge', '--host', join(DIR, 'x86-tsc.txt'), '--guest', join(ROOT, 'fixtures', 'ftrace-text', 'mono-stack.txt'), '--guest-clock', 'mono', '--tsc-offset', '0']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/its kvmsync markers do not tie it to its TSC .* record the guest with trace_clock x86-tsc, or run syncpt \(-n 2 or more\) at the start and the end/);
  });
});
