/**
 * The merge on real data from real hardware: the docA host/guest pair recorded with trace-cmd on an
 * Intel VMX host (../shared/external/masterarbeit), as ftrace text with raw TSC timestamps.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './helpers/tmp.js';
import { exportMerge, type MergeReport } from '../src/export/export-merge.js';
import { prepareMerge, type MergeRequest } from '../src/merge/session.js';
import { checkChromeJson } from './helpers/chrome-check.js';
import { kvmtrace } from './helpers/cli.js';
import { DOCA, externalMissing, reference } from './helpers/external.js';
import { expectGolden } from './helpers/golden.js';

const request = (host: string, guest: string, offset = DOCA.tscOffset): MergeRequest => ({
  bundles: [],
  hostFiles: [host],
  guestFiles: [guest],
  hostClock: 'x86-tsc',
  guestClock: 'x86-tsc',
  overrides: { tscOffset: offset, vcpuThreads: new Map([[0, DOCA.vcpuThread]]) },
  tscKhz: DOCA.tscKhz,
});

describe.skipIf(externalMissing)('docA: real VMX host + guest', () => {
  if (externalMissing) console.log(`skipped: ${externalMissing}`);
  let dir: string;
  let host: string;
  let guest: string;
  let report: MergeReport;

  beforeAll(async () => {
    dir = tempDir('kvmtrace-doca-');
    host = reference('docA-host-trace.dat.report-rawts.txt');
    guest = reference('docA-guest-trace-Salamander4.dat.report-rawts.txt');
    const p = await prepareMerge(request(host, guest));
    report = await exportMerge(p, { json: join(dir, 'm.json'), text: join(dir, 'm.txt'), summary: join(dir, 's.json') });
  });

  it('puts 100 % of the guest events within the host span inside vCPU 0 guest-mode windows (89,827, as trace-cmd)', () => {
    const g = report.result.guests[0];
    expect(g.vcpus.map((v) => v.vcpu)).toEqual([0]);
    const v = g.vcpus[0];
    expect(v).toMatchObject({ hostTid: 483882, windowKind: 'entry-exit', checked: 89827, inside: 89827, worstViolationCycles: 0 });
    // The rest of the guest's events lie outside the host trace's span.
    expect(v.checked + v.notCheckable).toBe(report.perSource[1].events);
    expect(report.result.ok).toBe(true);
    const summary = JSON.parse(readFileSync(join(dir, 's.json'), 'utf8'));
    expect(summary.guests[0].vcpus[0]).toMatchObject({ vcpu: 0, hostTid: 483882, checked: 89827, inside: 89827, worstViolationCycles: 0 });
    expectGolden('merge/docA.summary.json', JSON.stringify(report.result, null, 1).replaceAll(dirname(guest), '<reference>') + '\n');
  });

  it("places every event at the time trace-cmd's own merge gives it (TSC2NSEC of the host TSC)", () => {
    // trace-cmd report -i host -i guest prints ns = (host TSC × mult) >> shift for both machines.
    const ref = readFileSync(reference('docA-merged.report-t.txt'), 'utf8').split('\n');
    const refNs = { host: [] as bigint[], guest: [] as bigint[] };
    for (const l of ref) {
      const m = /^\s*(\S+): .*\[\d{3}\] (\d+)\.(\d{9}): /.exec(l);
      if (m) refNs[m[1].startsWith('docA-host') ? 'host' : 'guest'].push(BigInt(m[2] + m[3]));
    }
    const mine = { host: [] as bigint[], guest: [] as bigint[] };
    let prev = -1n;
    for (const l of readFileSync(join(dir, 'm.txt'), 'utf8').split('\n')) {
      const m = /^(\d+) \S+ (host|guest) /.exec(l);
      if (!m) continue;
      const tsc = BigInt(m[1]);
      expect(tsc >= prev).toBe(true);
      prev = tsc;
      mine[m[2] as 'host' | 'guest'].push((tsc * DOCA.tsc2nsecMult) >> DOCA.tsc2nsecShift);
    }
    expect(mine.host.length).toBe(refNs.host.length);
    expect(mine.guest.length).toBe(refNs.guest.length);
    expect(mine.host).toEqual(refNs.host);
    expect(mine.guest).toEqual(refNs.guest);
  });

  it('writes Chrome JSON that is sorted, named and nested, with guest-mode slices named by exit reason', () => {
    const { slices, threads, processes } = checkChromeJson(join(dir, 'm.json'));
    expect([...processes.values()]).toEqual(['host (host)', 'guest (guest)']);
    expect(threads.get('1:483882')).toBe('qemu-system-x86 (vCPU 0)');
    expect(slices.get('guest mode')).toBeGreaterThan(5000);
    expect(slices.get('EPT_MISCONFIG')).toBeGreaterThan(0);
    expect(slices.get('HLT')).toBeGreaterThan(0);
  });

  it('keeps the text timeline golden (first 40 lines)', () => {
    const lines = readFileSync(join(dir, 'm.txt'), 'utf8').split('\n').slice(0, 40).join('\n');
    expectGolden('merge/docA.head40.txt', lines + '\n');
  });

  it('stays exact when every TSC is moved past 2^60 (hosts up for years)', async () => {
    const K = 1n << 60n;
    const shift = (src: string, dst: string): void => {
      const t = readFileSync(src, 'utf8').replace(/\](\d+):/g, (_m, ts: string) => `]${BigInt(ts) + K}:`);
      writeFileSync(dst, t);
    };
    shift(host, join(dir, 'h60.txt'));
    shift(guest, join(dir, 'g60.txt'));
    const p = await prepareMerge(request(join(dir, 'h60.txt'), join(dir, 'g60.txt')));
    const r = await exportMerge(p, { text: join(dir, 'm60.txt') });
    expect(r.result.guests[0].vcpus[0]).toMatchObject({ checked: 89827, inside: 89827 });
    const a = readFileSync(join(dir, 'm.txt'), 'utf8').split('\n');
    const b = readFileSync(join(dir, 'm60.txt'), 'utf8').split('\n');
    expect(b.length).toBe(a.length);
    for (let i = 1; i < a.length; i += 997) {
      if (!a[i] || a[i].startsWith('#')) continue;
      const [ta, ...ra] = a[i].split(' ');
      const [tb, ...rb] = b[i].split(' ');
      expect(BigInt(tb) - BigInt(ta)).toBe(K);
      expect(rb).toEqual(ra);
    }
  });

  it('fails validation loudly, and exits 1 with --check, when the offset is wrong by 1 ms', () => {
    const r = kvmtrace([
      'merge', '--host', host, '--guest', guest, '--tsc-offset', String(DOCA.tscOffset + 2_918_400n),
      '--vcpu-thread', '0=483882', '--tsc-khz', '2918400', '--check', '-o', join(dir, 'bad.json'),
    ]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/validation: FAILED/);
    expect(r.stderr).toMatch(/vCPU 0: \d+ of \d+ guest events fall outside/);
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/); // no stack trace
  });
});

describe.skipIf(externalMissing)('docA and salB as trace.dat files: the mapping comes from the files', () => {
  const dat = (f: string): string => join(import.meta.dirname, '..', '..', 'shared', 'external', 'masterarbeit', f);

  it('merges the docA pair with no flags: TIME_SHIFT offset, GUEST thread map, TSC2NSEC frequency — 100 % inside', async () => {
    const p = await prepareMerge({ bundles: [], hostFiles: [dat('docA-host-trace.dat')], guestFiles: [dat('docA-guest-trace-Salamander4.dat')], overrides: {} });
    expect(p.tscKhz).toBe(DOCA.tscKhz);
    const plan = p.guests[0].plan!;
    expect(plan.vcpu(0).tid).toBe(DOCA.vcpuThread);
    expect(plan.vcpu(0).tidFrom).toBe('trace.dat GUEST option');
    expect(plan.vcpu(0).mapping.pieces.map((x) => x.offset)).toEqual([DOCA.tscOffset]);
    const dir = tempDir('kvmtrace-dat-');
    const r = await exportMerge(p, { text: join(dir, 'm.txt') });
    expect(r.result.guests[0].vcpus[0]).toMatchObject({ vcpu: 0, hostTid: 483882, checked: 89827, inside: 89827, notCheckable: 202 });
  });

  it('refuses the salB files, which are not a pair, saying why', () => {
    const r = kvmtrace(['merge', '--host', dat('salB-host-trace.dat'), '--guest', dat('salB-guest-trace-Salamander4.dat')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/salB-guest-trace-Salamander4\.dat does not belong to .*salB-host-trace\.dat: its TIME_SHIFT names host trace id 0x[0-9A-F]+, but .* has TRACEID 0x[0-9A-F]+/);
  });
});

describe.skipIf(externalMissing)('k-way merge of many sources: the docA host split into one file per CPU', () => {
  it('gives the same timeline from per-CPU host files (a bundle of one file per CPU) as from the one file', async () => {
    const dir = tempDir('kvmtrace-percpu-');
    const host = reference('docA-host-trace.dat.report-rawts.txt');
    const guest = reference('docA-guest-trace-Salamander4.dat.report-rawts.txt');
    const byCpu = new Map<string, string[]>();
    for (const l of readFileSync(host, 'utf8').split('\n')) {
      const m = /\[(\d{3})\]/.exec(l);
      if (m) (byCpu.get(m[1]) ?? byCpu.set(m[1], []).get(m[1])!).push(l);
    }
    const hb = join(dir, 'host');
    const gb = join(dir, 'guest');
    mkdirSync(hb);
    mkdirSync(gb);
    const traces = [...byCpu.keys()].sort().map((c) => ({ file: `cpu${c}.txt`, format: 'ftrace-text' }));
    for (const [c, lines] of byCpu) writeFileSync(join(hb, `cpu${c}.txt`), lines.join('\n') + '\n');
    const snap = { when: 'start', hostTsc: '0', tscOffset: String(DOCA.tscOffset) };
    const meta = { format: 'kvmtrace-bundle', version: 1, traceClock: 'x86-tsc', tscKhz: DOCA.tscKhz };
    writeFileSync(join(hb, 'meta.json'), JSON.stringify({ ...meta, role: 'host', name: 'host', traces, vms: [{ name: 'Salamander4', vcpus: [{ vcpu: 0, tid: DOCA.vcpuThread, snapshots: [snap] }] }] }));
    writeFileSync(join(gb, 'trace.txt'), readFileSync(guest));
    writeFileSync(join(gb, 'meta.json'), JSON.stringify({ ...meta, role: 'guest', name: 'guest', traces: [{ file: 'trace.txt', format: 'ftrace-text' }] }));
    expect(traces.length).toBeGreaterThan(5);

    const p = await prepareMerge({ bundles: [hb, gb], hostFiles: [], guestFiles: [], overrides: {} });
    const r = await exportMerge(p, { text: join(dir, 'split.txt') });
    expect(r.perSource.length).toBe(traces.length + 1);
    expect(r.result.guests[0].vcpus[0]).toMatchObject({ checked: 89827, inside: 89827, notCheckable: 202 });
    const one = await exportMerge(await prepareMerge(request(host, guest)), { text: join(dir, 'one.txt') });
    expect(one.events).toBe(r.events);
    // Same events at the same host TSC; only the ordering of equal timestamps may differ.
    const key = (l: string): string => l.split(' ').filter((_, i) => i !== 1).join(' ');
    const a = readFileSync(join(dir, 'split.txt'), 'utf8').split('\n').slice(1);
    const b = readFileSync(join(dir, 'one.txt'), 'utf8').split('\n').slice(1);
    expect(a.map((l) => l.split(' ')[0])).toEqual(b.map((l) => l.split(' ')[0]));
    expect(a.map(key).sort()).toEqual(b.map(key).sort());
  });
});

describe.skipIf(externalMissing)('events before the first run evidence of a vCPU', () => {
  it('are inside when that evidence is an exit (the vCPU was in guest mode since before the trace)', async () => {
    const dir = tempDir('kvmtrace-early-');
    const host = reference('docA-host-trace.dat.report-rawts.txt');
    const guest = reference('docA-guest-trace-Salamander4.dat.report-rawts.txt');
    const lines = readFileSync(host, 'utf8').split('\n');
    // Cut the host trace just after a kvm_entry of vCPU 0's thread (its next event there is a kvm_exit),
    // choosing one whose guest-mode window holds guest events, counted independently from the raw text.
    const guestTs = readFileSync(guest, 'utf8').split('\n').map((l) => /\](\d+):/.exec(l)).filter((m) => m !== null).map((m) => BigInt(m![1]) - DOCA.tscOffset);
    const tsOf = (l: string): bigint => BigInt(/\](\d+):/.exec(l)![1]);
    const sortedGuest = [...guestTs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const lowerBound = (a: bigint[], x: bigint): number => {
      let [lo, hi] = [0, a.length];
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (a[mid] < x) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    };
    const isVcpu = (l: string): boolean => l.includes('-483882 ') && /kvm_(exit|entry):/.test(l);
    let cut = -1;
    let first = 0n;
    let early = 0;
    // nextVcpu[i]: the first kvm_entry/kvm_exit line of the vCPU thread after line i.
    const nextVcpu = new Array<string | undefined>(lines.length);
    for (let i = lines.length - 2, n: string | undefined; i >= 0; i--) {
      if (isVcpu(lines[i + 1])) n = lines[i + 1];
      nextVcpu[i] = n;
    }
    for (let i = 1; i < lines.length && cut < 0; i++) {
      if (!(lines[i].includes('-483882 ') && lines[i].includes('kvm_entry:'))) continue;
      const next = nextVcpu[i];
      if (!next?.includes('kvm_exit:') || !/\]\d+:/.test(lines[i + 1])) continue;
      const f = tsOf(lines[i + 1]);
      const n = lowerBound(sortedGuest, tsOf(next)) - lowerBound(sortedGuest, f);
      if (n >= 5) [cut, first, early] = [i + 1, f, n];
    }
    expect(early).toBeGreaterThanOrEqual(5);
    writeFileSync(join(dir, 'host.txt'), [lines[0], ...lines.slice(cut)].join('\n'));
    const p = await prepareMerge(request(join(dir, 'host.txt'), guest));
    const r = await exportMerge(p, { text: join(dir, 'm.txt') });
    const v = r.result.guests[0].vcpus[0];
    expect(v.inside).toBe(v.checked);
    // Every guest event inside the cut host span is checked, the early ones included.
    const last = tsOf(lines.filter((l) => /\]\d+:/.test(l)).pop()!);
    const inSpan = guestTs.filter((h) => h >= first && h <= last).length;
    expect(v.checked).toBe(inSpan);
  });
});
