/**
 * `kvmtrace latency` on the real docA pair (Intel VMX host + guest): guest → host, host → host and
 * guest → guest pairs, checked against an independent computation from the raw text (bigint TSCs
 * mapped with the known offset, a plain pairing loop, hand-written statistics), plus goldens.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { prepareMerge } from '../src/merge/session.js';
import { mergeRequest } from '../src/cli/commands/merge.js';
import { analyse } from '../src/analysis/run.js';
import { parseMatch } from '../src/analysis/match.js';
import { Pairer, parsePairKey } from '../src/analysis/pairing.js';
import { buildLatencyReport, decadeHistogram, histogramText, LatencyAnalyzer, latencyKeysText, LATENCY_KEYS, type LatencyReport } from '../src/analysis/latency.js';
import { readFileSync as readText } from 'node:fs';
import { join } from 'node:path';
import { splitFlowSpec } from '../src/analysis/flows.js';
import { checkChromeJson, sliceAt } from './helpers/chrome-check.js';
import { kvmtrace } from './helpers/cli.js';
import { DOCA, externalMissing, reference } from './helpers/external.js';
import { expectGolden } from './helpers/golden.js';
import { tempDir } from './helpers/tmp.js';

interface Raw {
  t: bigint;
  host: boolean;
  tid: number;
  name: string;
  body: string;
}

const LINE = /^\s*.*?-(\d+)\s+\[(\d+)\]\s*(\d+): ([\w]+):\s+(.*)$/;

/** Reads a raw-TSC report independently of kvmtrace's parser; guest TSCs mapped to host TSC with the offset. */
function readRaw(file: string, host: boolean): Raw[] {
  const out: Raw[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const t = BigInt(m[3]) - (host ? 0n : DOCA.tscOffset);
    out.push({ t, host, tid: Number(m[1]), name: m[4], body: m[5] });
  }
  return out;
}

/** The plain pairing loop: one pending from; a to completes it; latencies in µs as numbers. */
function pairPlain(events: Raw[], isFrom: (e: Raw) => boolean, isTo: (e: Raw) => boolean): number[] {
  const out: number[] = [];
  let pending: bigint | undefined;
  for (const e of events) {
    if (isTo(e) && pending !== undefined) {
      out.push((Number(e.t - pending) * 1e6) / DOCA.tscKhz / 1000);
      pending = undefined;
    }
    if (isFrom(e)) pending = e.t;
  }
  return out;
}

/** Statistics written out by hand (R-7 quantiles, sample standard deviation). */
function plainStats(xs: number[]): Record<string, number> {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number): number => {
    const h = (s.length - 1) * p;
    const lo = Math.floor(h);
    return lo + 1 < s.length ? s[lo] + (s[lo + 1] - s[lo]) * (h - lo) : s[lo];
  };
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  const varS = s.reduce((a, b) => a + (b - mean) ** 2, 0) / (s.length - 1);
  return { MIN_LATENCY: s[0], MAX_LATENCY: s[s.length - 1], MEAN_LATENCY: mean, P50_LATENCY: q(0.5), P90_LATENCY: q(0.9), P99_LATENCY: q(0.99), STDDEV_LATENCY: Math.sqrt(varS) };
}

describe.skipIf(externalMissing)('latency on the real docA pair', () => {
  if (externalMissing) console.log(`skipped: ${externalMissing}`);
  let host: string;
  let guest: string;
  let args: string[];
  let merged: Raw[];
  const run = async (from: string, to: string, key = 'vcpu'): Promise<LatencyReport> => {
    const p = await prepareMerge(
      mergeRequest([], { host: [host], guest: [guest], tscOffset: [String(DOCA.tscOffset)], vcpuThread: [`0=${DOCA.vcpuThread}`], tscKhz: String(DOCA.tscKhz) }),
    );
    const r = await analyse(p, (vt) => new LatencyAnalyzer(new Pairer(parseMatch(from), parseMatch(to), parsePairKey(key), vt)));
    return buildLatencyReport(r.analyzer, DOCA.tscKhz, key);
  };

  beforeAll(() => {
    host = reference('docA-host-trace.dat.report-rawts.txt');
    guest = reference('docA-guest-trace-Salamander4.dat.report-rawts.txt');
    args = ['--host', host, '--guest', guest, '--tsc-offset', String(DOCA.tscOffset), '--vcpu-thread', `0=${DOCA.vcpuThread}`, '--tsc-khz', String(DOCA.tscKhz)];
    // Host first at equal TSC (the merge's tie-break: source index), stable otherwise.
    merged = [...readRaw(host, true), ...readRaw(guest, false)].sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : Number(b.host) - Number(a.host)));
  });

  const checkAgainst = (r: LatencyReport, plain: number[]): void => {
    expect(r.values.LATENCY_SAMPLES).toBe(plain.length);
    const s = plainStats(plain);
    for (const [k, v] of Object.entries(s)) expect(r.values[k as keyof typeof r.values]).toBeCloseTo(v, 6);
    // The histogram, counted by netperf's rule (whole µs, divide by ten until below ten).
    const rows = Array.from({ length: 8 }, () => new Array<number>(10).fill(0));
    let over = 0;
    for (const us of plain) {
      let v = Math.trunc(us);
      let r0 = 0;
      while (v > 9 && r0 < 8) {
        v = Math.trunc(v / 10);
        r0++;
      }
      if (r0 < 8) rows[r0][v]++;
      else over++;
    }
    expect(r.histogram.rows).toEqual(rows);
    expect(r.histogram.over100s).toBe(over);
    expect(r.histogram.total).toBe(plain.length);
  };

  it('guest → host: a guest write_msr to the next kvm_exit of its vCPU thread', async () => {
    const r = await run('guest:write_msr', 'host:kvm_exit');
    const plain = pairPlain(merged, (e) => !e.host && e.name === 'write_msr', (e) => e.host && e.tid === DOCA.vcpuThread && e.name === 'kvm_exit');
    checkAgainst(r, plain);
    expect(r.counts.superseded + r.counts.openAtEnd + r.counts.paired).toBe(r.counts.fromEvents);
    expect(r.values.UNPAIRED_FROM).toBeGreaterThan(0); // several MSR writes between two exits
    expectGolden('latency/docA-write_msr-kvm_exit.txt', latencyKeysText(r, LATENCY_KEYS) + '\n' + histogramText(r.histogram, 'guest:write_msr → host:kvm_exit latencies (µs)'));
  });

  it('host → guest: kvm_entry to the next guest event of that vCPU', async () => {
    const r = await run('host:kvm_entry', 'guest:*');
    const plain = pairPlain(merged, (e) => e.host && e.tid === DOCA.vcpuThread && e.name === 'kvm_entry', (e) => !e.host);
    checkAgainst(r, plain);
    expect(r.values.MIN_LATENCY!).toBeGreaterThanOrEqual(0);
    expectGolden('latency/docA-kvm_entry-guest.txt', latencyKeysText(r, LATENCY_KEYS));
  });

  it('host → host with a condition: HLT exit to the next entry (the halted time)', async () => {
    const r = await run('host:kvm_exit[reason=HLT]', 'host:kvm_entry');
    const hostOnly = merged.filter((e) => e.host && e.tid === DOCA.vcpuThread);
    const plain = pairPlain(hostOnly, (e) => e.name === 'kvm_exit' && e.body.startsWith('reason HLT '), (e) => e.name === 'kvm_entry');
    // Other threads pair on their own keys; compare the guest's thread by running with its vCPU only.
    expect(r.values.LATENCY_SAMPLES).toBeGreaterThanOrEqual(plain.length);
    const r0 = await run(`host:kvm_exit[reason=HLT,pid=${DOCA.vcpuThread}]`, `host:kvm_entry[pid=${DOCA.vcpuThread}]`);
    checkAgainst(r0, plain);
  });

  it('guest → guest on the guest CPU: sched_switch to the next irq_handler_entry', async () => {
    const r = await run('guest:sched_switch', 'guest:irq_handler_entry', 'cpu');
    const plain = pairPlain(merged.filter((e) => !e.host), (e) => e.name === 'sched_switch', (e) => e.name === 'irq_handler_entry');
    checkAgainst(r, plain);
  });

  it('the CLI: -k selectors, --histogram, unpaired counts reported, bad input named', () => {
    const r = kvmtrace(['latency', ...args, '--from', 'guest:write_msr', '--to', 'host:kvm_exit', '-k', 'MIN_LATENCY,P99_LATENCY,UNPAIRED_FROM', '--histogram']);
    expect(r.status).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^MIN_LATENCY=\d+\.\d{3}$/);
    expect(lines[1]).toMatch(/^P99_LATENCY=\d+\.\d{3}$/);
    expect(lines[2]).toMatch(/^UNPAIRED_FROM=\d+$/);
    expect(r.stdout).toMatch(/^UNIT_USEC     (: +\d+){10}$/m);
    expect(r.stdout).toMatch(/^>100_SECS: 0$/m);
    expect(r.stdout).toMatch(/^HIST_TOTAL: +\d+$/m);
    expect(r.stderr).toMatch(/--from events are unpaired/);
    const bad = kvmtrace(['latency', ...args, '--from', 'host:kvm_exit[reason', '--to', 'host:kvm_entry']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--from "host:kvm_exit\[reason": a "\[" without a closing "\]"/);
    const badK = kvmtrace(['latency', ...args, '--from', 'host:kvm_exit', '--to', 'host:kvm_entry', '-k', 'THROUGHPUT']);
    expect(badK.status).toBe(2);
    expect(badK.stderr).toMatch(/-k THROUGHPUT: unknown output selector/);
  });
});

describe.skipIf(externalMissing)('merge --flows on the real docA pair', () => {
  it('draws one arrow per latency pair, from the guest event to the host event, in timestamp order', () => {
    const host = reference('docA-host-trace.dat.report-rawts.txt');
    const guest = reference('docA-guest-trace-Salamander4.dat.report-rawts.txt');
    const args = ['--host', host, '--guest', guest, '--tsc-offset', String(DOCA.tscOffset), '--vcpu-thread', `0=${DOCA.vcpuThread}`, '--tsc-khz', String(DOCA.tscKhz)];
    const out = join(tempDir('kvmtrace-flows-'), 'flows.json');
    const m = kvmtrace(['merge', ...args, '-q', '-o', out, '--flows', 'guest:write_msr:host:kvm_exit']);
    expect(m.status).toBe(0);
    expect(m.stderr).toMatch(/flows: 589 arrow\(s\) drawn/);
    const { events } = checkChromeJson(out);
    const starts = new Map<number, { ts: number; pid: number; tid: number }>();
    const pairs: number[] = [];
    for (const e of events as unknown as { ph: string; id: number; ts: number; pid: number; tid: number; name: string }[]) {
      if (e.ph === 's') starts.set(e.id, e);
      if (e.ph !== 'f') continue;
      const s = starts.get(e.id)!;
      expect(s).toBeDefined();
      expect(s.pid).toBe(2); // the guest's process
      expect(e.pid).toBe(1); // the host's
      expect(e.tid).toBe(DOCA.vcpuThread);
      expect(e.name).toBe('guest:write_msr → host:kvm_exit');
      pairs.push(e.ts - s.ts);
    }
    // Each arrow binds to a zero-length slice of its own (checkChromeJson), which lies where it
    // belongs: the start inside the guest task running at the MSR write, the end in the exit
    // slice that kvm_exit just began.
    const at = sliceAt(events);
    let startsInSlice = 0;
    const endSlices = new Map<string, number>();
    for (const e of events) {
      if (e.ph === 's' && at(e.pid, e.tid, e.ts!)?.cat === 'task') startsInSlice++;
      else if (e.ph === 'f') {
        const x = at(e.pid, e.tid, e.ts!)!;
        expect(x.ts).toBe(e.ts);
        endSlices.set(x.name!, (endSlices.get(x.name!) ?? 0) + 1);
      }
    }
    expect(startsInSlice).toBe(starts.size);
    expect([...endSlices.keys()].every((n) => /^[A-Z_]+$/.test(n))).toBe(true); // VMX exit reasons
    // The same pairs as kvmtrace latency (µs; the JSON keeps 3 decimals, so within 1 ns each).
    const l = kvmtrace(['latency', ...args, '--from', 'guest:write_msr', '--to', 'host:kvm_exit', '--json']);
    const rep = JSON.parse(l.stdout) as LatencyReport;
    expect(pairs.length).toBe(rep.values.LATENCY_SAMPLES);
    expect(Math.min(...pairs)).toBeCloseTo(rep.values.MIN_LATENCY!, 2);
    expect(Math.max(...pairs)).toBeCloseTo(rep.values.MAX_LATENCY!, 2);
    expect(readText(out, 'utf8')).toContain('"cat":"flow"');
  });
});

describe('latency on the kvm-pvm capture (fixtures/pvm-1vcpu)', () => {
  const dir = new URL('../fixtures/pvm-1vcpu/', import.meta.url).pathname;
  it('host → guest: each pio sync exit (kvm_pio on port 0xe9) to the guest marker that reports it', async () => {
    const p = await prepareMerge(mergeRequest([dir + 'host', dir + 'guest'], { tscOffset: [], vcpuThread: [] }));
    const from = 'host:kvm_pio[port=0xe9]';
    const to = 'guest:marker~kind=pio';
    const r = await analyse(p, (vt) => new LatencyAnalyzer(new Pairer(parseMatch(from), parseMatch(to), parsePairKey('vcpu'), vt)));
    const rep = buildLatencyReport(r.analyzer, p.tscKhz!, 'vcpu');
    // Independent: the guest reads the host's TSC unchanged here (debugfs offset 0, see the fixture's
    // README), so raw timestamps of both files are on one clock; pair in time order by hand.
    const re = /^\s*.*?-(\d+)\s+\[\d+\]\s+\S+\s+(\d+): (\w+): (.*)$/;
    const evs: { t: bigint; host: boolean; from: boolean; to: boolean }[] = [];
    for (const [file, host] of [
      [dir + 'host/trace.txt', true],
      [dir + 'guest/trace.txt', false],
    ] as const)
      for (const line of readFileSync(file, 'utf8').split('\n')) {
        const m = re.exec(line);
        if (!m) continue;
        const isFrom = host && Number(m[1]) === 26619 && m[3] === 'kvm_pio' && m[4].includes(' at 0xe9 ');
        const isTo = !host && m[3] === 'tracing_mark_write' && m[4].includes('kind=pio');
        if (isFrom || isTo) evs.push({ t: BigInt(m[2]), host, from: isFrom, to: isTo });
      }
    evs.sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : Number(b.host) - Number(a.host)));
    const plain: number[] = [];
    let pending: bigint | undefined;
    for (const e of evs) {
      if (e.to && pending !== undefined) {
        plain.push((Number(e.t - pending) * 1e6) / p.tscKhz! / 1000);
        pending = undefined;
      }
      if (e.from) pending = e.t;
    }
    expect(plain).toHaveLength(40);
    expect(rep.values.LATENCY_SAMPLES).toBe(40);
    expect(rep.values.UNPAIRED_FROM).toBe(0);
    const st = plainStats(plain);
    for (const [k, v] of Object.entries(st)) expect(rep.values[k as keyof typeof rep.values]).toBeCloseTo(v, 6);
    expectGolden('latency/pvm-1vcpu-pio-marker.txt', latencyKeysText(rep, LATENCY_KEYS) + '\n' + histogramText(rep.histogram, `${from} → ${to} latencies (µs)`));
  });
});

describe.skipIf(externalMissing)('latency on the host-only recordings (lts, docC, salB)', () => {
  it('kvm_exit[reason=HLT] → kvm_entry on each vCPU thread: the halted time, checked by hand; goldens', async () => {
    for (const [name, khz] of [
      ['lts-trace', String(DOCA.tscKhz)], // raw TSC; frequency assumed as docA's host (not recorded)
      ['docC-host-only-trace', undefined], // trace-cmd -t seconds: an ns timeline
      ['salB-host-trace', undefined],
    ] as const) {
      const file = reference(`${name}.dat.report-t.txt`);
      const p = await prepareMerge(mergeRequest([], { host: [file], tscOffset: [], vcpuThread: [], tscKhz: khz }));
      const from = 'host:kvm_exit[reason=HLT]';
      const to = 'host:kvm_entry';
      const r = await analyse(p, (vt) => new LatencyAnalyzer(new Pairer(parseMatch(from), parseMatch(to), parsePairKey('vcpu'), vt)));
      const rep = buildLatencyReport(r.analyzer, p.tscKhz!, 'vcpu');
      // By hand: per thread, an HLT exit pending until the thread's next kvm_entry.
      const re = /^\s*.*?-(\d+)\s+\[\d+\]\s*(\d+(?:\.\d{9})?): (kvm_entry|kvm_exit):\s+(.*)$/;
      const pending = new Map<number, bigint>();
      const plain: number[] = [];
      for (const line of readFileSync(file, 'utf8').split('\n')) {
        const m = re.exec(line);
        if (!m) continue;
        const t = BigInt(m[2].replace('.', ''));
        const tid = Number(m[1]);
        if (m[3] === 'kvm_entry') {
          const f = pending.get(tid);
          if (f !== undefined) plain.push((Number(t - f) * 1e6) / p.tscKhz! / 1000);
          pending.delete(tid);
        } else if (m[4].startsWith('reason HLT ') || m[4].includes(' reason HLT ')) pending.set(tid, t);
        // Another exit is neither from nor to: an HLT exit stays pending until the next kvm_entry
        // (where an entry was lost, the pair spans both exits — `exits` counts that one apart).
      }
      expect(rep.values.LATENCY_SAMPLES).toBe(plain.length);
      const st = plainStats(plain);
      for (const [k, v] of Object.entries(st)) expect(rep.values[k as keyof typeof rep.values]).toBeCloseTo(v, 3);
      expectGolden(`latency/${name}-hlt.txt`, latencyKeysText(rep, LATENCY_KEYS) + '\n' + histogramText(rep.histogram, `${from} → ${to} latencies (µs)`));
    }
  });
});

describe('merge --flows on the kvm-pvm capture: host → guest arrows', () => {
  it('draws an arrow from each pio sync exit to the marker the guest wrote, ending in the guest task', () => {
    const dir = new URL('../fixtures/pvm-1vcpu/', import.meta.url).pathname;
    const out = join(tempDir('kvmtrace-flows-'), 'pvm.json');
    const m = kvmtrace(['merge', dir + 'host', dir + 'guest', '-q', '-o', out, '--flows', 'host:kvm_pio[port=0xe9]:guest:marker~kind=pio']);
    expect(m.stderr).toMatch(/flows: 40 arrow\(s\) drawn; 0 of 40 FROM events found no TO event/);
    const { events } = checkChromeJson(out);
    const at = sliceAt(events);
    const ends = new Map<string, number>();
    let starts = 0;
    // The `--flows` arrows (sync points draw their own, category `sync`).
    for (const e of events.filter((x) => x.cat === 'flow')) {
      if (e.ph === 's') {
        expect(e.pid).toBe(1);
        starts++;
      } else if (e.ph === 'f') {
        expect(e.pid).toBe(2);
        const name = at(e.pid, e.tid, e.ts!)?.name ?? '';
        ends.set(name, (ends.get(name) ?? 0) + 1);
      }
    }
    expect(starts).toBe(40);
    // Every arrow ends inside the guest task that wrote the marker: the sync helper.
    expect([...ends]).toEqual([['syncpt', 40]]);
  });
});

describe('latency building blocks', () => {
  it('splits --flows FROM:TO at the right colon', () => {
    const [a, b] = splitFlowSpec('guest:marker~kvmsync:host:kvm_pio[port=0xe9]');
    expect([a.text, b.text]).toEqual(['guest:marker~kvmsync', 'host:kvm_pio[port=0xe9]']);
    const [c, d] = splitFlowSpec('kvm_exit:kvm_entry');
    expect([c.text, d.text]).toEqual(['kvm_exit', 'kvm_entry']);
    const [e, f] = splitFlowSpec('host:kvm_exit[reason=HLT]:guest:sched_switch');
    expect([e.text, f.text]).toEqual(['host:kvm_exit[reason=HLT]', 'guest:sched_switch']);
    expect(() => splitFlowSpec('guest:write_msr')).toThrow(/expected FROM:TO/);
  });

  it("bins like netperf's HIST_add at the decade edges", () => {
    const h = decadeHistogram(Float64Array.from([0, 0.999, 1, 9.999, 10, 99.9, 100, 999_999, 1e6, 99_999_999, 1e8, 5e8]));
    expect(h.rows[0]).toEqual([2, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
    expect(h.rows[1]).toEqual([0, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
    expect(h.rows[2][1]).toBe(1);
    expect(h.rows[5][9]).toBe(1); // 999,999 µs → 999 ms → HUNDRED_MSEC bucket 9
    expect(h.rows[6][1]).toBe(1); // 1 s
    expect(h.rows[7][9]).toBe(1); // 99.999999 s
    expect(h.over100s).toBe(2);
    expect(h.total).toBe(12);
  });

  it('parses matchers and rejects bad ones with the syntax', () => {
    const m = parseMatch('guest=Salamander4:marker~kvmsync[seq!=3,text~cpu=0]');
    expect(m).toMatchObject({ side: 'guest', machine: 'Salamander4', marker: true, contains: 'kvmsync' });
    expect(m.conditions).toEqual([
      { field: 'seq', op: '!=', value: '3' },
      { field: 'text', op: '~', value: 'cpu=0' },
    ]);
    expect(parseMatch('kvm_*').name!.test('kvm_pio')).toBe(true);
    expect(() => parseMatch('host:')).toThrow(/no event name/);
    expect(() => parseMatch('host:kvm exit')).toThrow(/is not an event name/);
    expect(() => parsePairKey('seq')).toThrow(/field:NAME/);
  });
});
