/**
 * What `check` gives a user to act on, on real data, each figure recomputed here from the files:
 *  - the docA pair (trace-cmd's raw-TSC text of each file): the tightest window's slack when the
 *    mapping is right; with the offset shifted by 2,000 cycles, every listed violation is outside
 *    the kvm_entry → kvm_exit windows of host thread 483882, by the distance given, between the
 *    kvm_exit and kvm_entry lines named, in timeline order, and the rest are counted; `merge
 *    --violations` lists them as `check` does, in its report;
 *  - fixtures/pvm-1vcpu: the tightest sync point's slack (and its miss with the wrong mapping), and
 *    the host skew bound from the tightest wakeup → switch-in pairs, both ways, found in the file;
 *  - fixtures/global-clock: the events not checkable, each with its rule (clamped stamps, no
 *    guest-mode evidence);
 *  - a host alone: validation "not applicable".
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportMerge, type MergeReport } from '../src/export/export-merge.js';
import { prepareMerge, type MergeRequest } from '../src/merge/session.js';
import { DEFAULT_LISTED, type ListedEvent, type VcpuValidation } from '../src/merge/validate.js';
import { kvmtrace, ROOT } from './helpers/cli.js';
import { DOCA, externalMissing, reference } from './helpers/external.js';
import { tempDir } from './helpers/tmp.js';

const PVM = join(ROOT, 'fixtures', 'pvm-1vcpu');
const GLOBAL = join(ROOT, 'fixtures', 'global-clock');

/** One event line of an ftrace text (tracefs, or trace-cmd report with raw TSC stamps). */
interface Line {
  line: number;
  pid: number;
  cpu: number;
  tsc: bigint;
  name: string;
  body: string;
}

/** The event lines of a text trace whose stamps are integers (TSC). */
function lines(file: string): Line[] {
  const out: Line[] = [];
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((l, i) => {
      const m = /^\s*.*?-(\d+)\s+\[(\d+)\]\s*(?:\S+\s+)?(\d+): (\w+):\s*(.*)$/.exec(l);
      if (m) out.push({ line: i + 1, pid: Number(m[1]), cpu: Number(m[2]), tsc: BigInt(m[3]), name: m[4], body: m[5] });
    });
  return out;
}

/** The line number a listed place (`file:line`) names in `file`. */
function lineOf(place: string, file: string): number {
  expect(place.startsWith(file + ':')).toBe(true);
  return Number(place.slice(file.length + 1));
}

/** A kvm_entry → kvm_exit window of one thread: a run from its first entry to the exit after it (null: the trace's start or end). */
interface Window {
  start: bigint | null;
  startLine: number;
  end: bigint | null;
  endLine: number;
}

/** The windows of thread `tid` in a host text, as VMX tracing gives them. */
function windows(host: Line[], tid: number): Window[] {
  const out: Window[] = [];
  let open: Window | undefined;
  let seen = false;
  for (const e of host) {
    if (e.pid !== tid || (e.name !== 'kvm_entry' && e.name !== 'kvm_exit')) continue;
    if (e.name === 'kvm_entry' && !open) out.push((open = { start: e.tsc, startLine: e.line, end: null, endLine: -1 }));
    else if (e.name === 'kvm_exit') {
      // An exit first: the thread was in guest mode since the trace began.
      if (!seen) out.push((open = { start: null, startLine: -1, end: null, endLine: -1 }));
      if (open) (open.end = e.tsc), (open.endLine = e.line), (open = undefined);
    }
    seen = true;
  }
  return out;
}

/** Where host time t falls among the windows: inside with its margin, or outside with its distance and the windows around it. */
function judge(ws: Window[], t: bigint): { inside: true; margin: bigint | null } | { inside: false; distance: bigint; before?: Window; after?: Window } {
  let lo = 0;
  let hi = ws.length;
  // The first window that ends at or after t.
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ws[mid].end !== null && ws[mid].end! < t) lo = mid + 1;
    else hi = mid;
  }
  const w = ws[lo];
  if (w && (w.start === null || w.start <= t)) {
    const a = w.start === null ? null : t - w.start;
    const b = w.end === null ? null : w.end - t;
    return { inside: true, margin: a === null ? b : b === null ? a : a < b ? a : b };
  }
  const before = lo > 0 ? ws[lo - 1] : undefined;
  const after = w;
  const d1 = before ? t - before.end! : null;
  const d2 = after ? after.start! - t : null;
  return { inside: false, distance: d1 === null ? d2! : d2 === null ? d1 : d1 < d2 ? d1 : d2, before, after };
}

describe.skipIf(externalMissing)('docA (raw-TSC texts): residual and violations, recomputed from the files', () => {
  if (externalMissing) console.log(`skipped: ${externalMissing}`);
  let hostFile: string;
  let guestFile: string;
  let host: Line[];
  let guest: Line[];
  let ws: Window[];
  const request = (offset: bigint, listEvents?: number): MergeRequest => ({
    bundles: [],
    hostFiles: [hostFile],
    guestFiles: [guestFile],
    hostClock: 'x86-tsc',
    guestClock: 'x86-tsc',
    overrides: { tscOffset: offset, vcpuThreads: new Map([[0, DOCA.vcpuThread]]) },
    tscKhz: DOCA.tscKhz,
    listEvents,
  });
  /** Each guest event's verdict under `offset` (guest TSC = host TSC + offset), in the host trace's span. */
  const verdicts = (offset: bigint) => {
    const first = host[0].tsc;
    const last = host[host.length - 1].tsc;
    return guest.map((g) => ({ g, t: g.tsc - offset })).filter((x) => x.t >= first && x.t <= last).map((x) => ({ ...x, v: judge(ws, x.t) }));
  };

  beforeAll(() => {
    hostFile = reference('docA-host-trace.dat.report-rawts.txt');
    guestFile = reference('docA-guest-trace-Salamander4.dat.report-rawts.txt');
    host = lines(hostFile);
    guest = lines(guestFile);
    ws = windows(host, DOCA.vcpuThread);
  });

  it('the right mapping passes, and its window residual is the smallest margin of any guest event to its window edge', async () => {
    const r = await exportMerge(await prepareMerge(request(DOCA.tscOffset)), {});
    expect(r.result.ok).toBe(true);
    const v = r.result.guests[0].vcpus[0];
    const all = verdicts(DOCA.tscOffset);
    expect(v.checked).toBe(all.length);
    expect(all.every((x) => x.v.inside)).toBe(true);
    const margins = all.map((x) => (x.v.inside ? x.v.margin : null)).filter((m): m is bigint => m !== null);
    const min = margins.reduce((a, b) => (b < a ? b : a));
    const w = v.residual.window!;
    expect(w.cycles).toBeGreaterThanOrEqual(0);
    expect(BigInt(w.cycles)).toBe(min);
    expect(w.ns).toBe(Math.round((w.cycles * 1e6) / DOCA.tscKhz));
    // The guest event named has that margin, to the host line named (a kvm_entry or kvm_exit of the thread).
    const g = guest.find((x) => x.line === lineOf(w.guest, guestFile))!;
    const h = host.find((x) => x.line === lineOf(w.host!.at, hostFile))!;
    expect(h.pid).toBe(DOCA.vcpuThread);
    expect(['kvm_entry', 'kvm_exit']).toContain(h.name);
    const t = g.tsc - DOCA.tscOffset;
    expect(t > h.tsc ? t - h.tsc : h.tsc - t).toBe(min);
    expect(w.host!.hostTsc).toBe(h.tsc.toString());
    // No sync points in docA; its host has no sched events, so no pair bounds the skew.
    expect(v.residual.sync).toBeNull();
    expect(v.hostSkew).toMatchObject({ boundCycles: null, pair: null, pairsBounded: 0, cpuPairsInTrace: 0 });
    expect(v.hostSkew!.cpus.length).toBeGreaterThan(1);
  });

  it('shifted by 2,000 cycles: each listed violation is outside, by its distance, between the kvm_exit and kvm_entry named', async () => {
    const offset = DOCA.tscOffset + 2000n;
    const N = 25;
    const r: MergeReport = await exportMerge(await prepareMerge(request(offset, N)), {});
    expect(r.result.ok).toBe(false);
    const v: VcpuValidation = r.result.guests[0].vcpus[0];
    const outside = verdicts(offset).filter((x) => !x.v.inside);
    expect(outside.length).toBeGreaterThan(N);
    expect(v.checked - v.inside).toBe(outside.length);
    expect(v.violations.events).toHaveLength(N);
    expect(v.violations.more).toBe(outside.length - N);
    // The first N in timeline order (the guest has one CPU: its file order).
    expect(v.violations.events.map((e) => lineOf(e.guest, guestFile))).toEqual(outside.slice(0, N).map((x) => x.g.line));
    for (const e of v.violations.events) {
      const x = outside.find((o) => o.g.line === lineOf(e.guest, guestFile))!;
      if (x.v.inside) throw new Error('unreachable');
      expect(e.cpu).toBe(x.g.cpu);
      expect(e.hostTsc).toBe(x.t.toString());
      expect(BigInt(e.distanceCycles!)).toBe(x.v.distance);
      // The window before ends at a kvm_exit line, whose reason is the rule's; the next starts at a kvm_entry line.
      const ended = host.find((h) => h.line === lineOf(e.windowEnded!.at, hostFile))!;
      const starts = host.find((h) => h.line === lineOf(e.windowStarts!.at, hostFile))!;
      expect([ended.name, ended.line, ended.tsc.toString()]).toEqual(['kvm_exit', x.v.before!.endLine, e.windowEnded!.hostTsc]);
      expect([starts.name, starts.line, starts.tsc.toString()]).toEqual(['kvm_entry', x.v.after!.startLine, e.windowStarts!.hostTsc]);
      const reason = /reason (\S+)/.exec(ended.body)![1];
      expect(e.rule).toBe(`outside any window: the vCPU thread was in the host after a kvm_exit (${reason})`);
    }
    // The window residual is the worst violation, negative.
    const worst = outside.reduce((a, x) => (!x.v.inside && x.v.distance > a ? x.v.distance : a), 0n);
    expect(BigInt(v.residual.window!.cycles)).toBe(-worst);
    expect(v.worstViolationCycles).toBe(Number(worst));
  });

  it('check --violations: the default count, N, the rest counted, and a bad N refused in one sentence', () => {
    const args = ['check', '--host-clock', 'x86-tsc', '--guest-clock', 'x86-tsc', '--vcpu-thread', `0=${DOCA.vcpuThread}`, '--tsc-khz', String(DOCA.tscKhz), '--tsc-offset', String(DOCA.tscOffset + 2000n), '--no-cross-check'];
    const outside = verdicts(DOCA.tscOffset + 2000n).filter((x) => !x.v.inside);
    const dflt = kvmtrace([...args, '--violations', hostFile, guestFile]);
    expect(dflt.status).toBe(1);
    expect(dflt.stdout).toContain(`guest events outside their windows: ${outside.length} (the first ${DEFAULT_LISTED} listed)`);
    const listed = dflt.stdout.split('\n').filter((l) => l.startsWith('      ✗ '));
    expect(listed).toHaveLength(DEFAULT_LISTED);
    expect(dflt.stdout).toContain(`      … and ${outside.length - DEFAULT_LISTED} more`);
    const first = outside[0];
    if (first.v.inside) throw new Error('unreachable');
    expect(listed[0]).toMatch(new RegExp(`^ {6}✗ ${guestFile}:${first.g.line} CPU 0 → host TSC ${first.t}: outside any window: .* by ${first.v.distance} cycles`));
    const three = kvmtrace([...args, '--violations', '3', hostFile, guestFile]);
    expect(three.stdout.split('\n').filter((l) => l.startsWith('      ✗ '))).toEqual(listed.slice(0, 3));
    expect(three.stdout).toContain(`      … and ${outside.length - 3} more`);
    // Without the flag the text lists none; the JSON always has them.
    const plain = kvmtrace([...args, hostFile, guestFile]);
    expect(plain.stdout).not.toContain('✗ ' + guestFile);
    const json = JSON.parse(kvmtrace([...args, '--json', hostFile, guestFile]).stdout);
    expect(json.guests[0].vcpus[0].violations.events.map((e: ListedEvent) => e.guest)).toEqual(outside.slice(0, DEFAULT_LISTED).map((x) => `${guestFile}:${x.g.line}`));
    const bad = kvmtrace([...args, '--violations', 'many', hostFile, guestFile]);
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim()).toBe('kvmtrace: --violations many: expected how many events to list per vCPU (an integer ≥ 0)');
  });

  it("merge --violations: check's listing, in the report on stderr, wherever the flag stands; the outputs are not changed by it", () => {
    const dir = tempDir('kvmtrace-violations-');
    const flags = ['--host-clock', 'x86-tsc', '--guest-clock', 'x86-tsc', '--vcpu-thread', `0=${DOCA.vcpuThread}`, '--tsc-khz', String(DOCA.tscKhz), '--tsc-offset', String(DOCA.tscOffset + 2000n)];
    const outside = verdicts(DOCA.tscOffset + 2000n).filter((x) => !x.v.inside);
    // The lists of the clock check: their head lines and their events, outside (✗) and not checkable (?).
    const listing = (s: string): string[] => s.split('\n').filter((l) => /^ {4}guest events (outside their windows|not checkable):|^ {6}[✗?…] /.test(l));
    const check = kvmtrace(['check', ...flags, '--no-cross-check', '--violations', '3', hostFile, guestFile]);
    expect(check.status).toBe(1);
    const three = kvmtrace(['merge', ...flags, '--violations', '3', hostFile, guestFile, '--text', join(dir, 'three.txt'), '--summary', join(dir, 'three.json')]);
    // Validation failed; without --check the merge still exits 0, and its text went to the file.
    expect(three.status, three.stderr).toBe(0);
    expect(three.stdout).toBe('');
    expect(listing(three.stderr)).toEqual(listing(check.stdout));
    const listed = three.stderr.split('\n').filter((l) => l.startsWith('      ✗ '));
    expect(listed.map((l) => lineOf(l.slice(8).split(' ')[0], guestFile))).toEqual(outside.slice(0, 3).map((x) => x.g.line));
    expect(three.stderr).toContain(`    guest events outside their windows: ${outside.length} (the first 3 listed)\n`);
    expect(three.stderr).toContain(`      … and ${outside.length - 3} more\n`);
    // The flag between the host and the guest takes the guest as its N: it is given back after the
    // host (first, it would be read as the host); -q still prints the report of a failed validation.
    const between = kvmtrace(['merge', '-q', ...flags, hostFile, '--violations', guestFile, '--text', join(dir, 'between.txt')]);
    expect(between.status, between.stderr).toBe(0);
    const dflt = between.stderr.split('\n').filter((l) => l.startsWith('      ✗ '));
    expect(dflt).toHaveLength(DEFAULT_LISTED);
    expect(dflt.slice(0, 3)).toEqual(listed);
    expect(kvmtrace(['check', ...flags, '--no-cross-check', hostFile, '--violations', guestFile]).stdout.split('\n').filter((l) => l.startsWith('      ✗ '))).toEqual(dflt);
    // Without the flag, no list; the text timeline is the same byte for byte, and the summary lists
    // the default count where --violations 3 made it list 3.
    const plain = kvmtrace(['merge', ...flags, hostFile, guestFile, '--text', join(dir, 'plain.txt'), '--summary', join(dir, 'plain.json')]);
    expect(plain.status).toBe(0);
    expect(listing(plain.stderr)).toEqual([]);
    const text = readFileSync(join(dir, 'plain.txt'));
    expect(readFileSync(join(dir, 'three.txt')).equals(text)).toBe(true);
    expect(readFileSync(join(dir, 'between.txt')).equals(text)).toBe(true);
    const events = (f: string): string[] => JSON.parse(readFileSync(join(dir, f), 'utf8')).guests[0].vcpus[0].violations.events.map((e: ListedEvent) => e.guest);
    expect(events('three.json')).toEqual(events('plain.json').slice(0, 3));
    expect(events('plain.json')).toHaveLength(DEFAULT_LISTED);
  });
});

describe('fixtures/pvm-1vcpu: the tightest sync point, and the host skew bound from real pairs', () => {
  const hostFile = join(PVM, 'host', 'trace.txt');
  const guestFile = join(PVM, 'guest', 'trace.txt');
  const TID = 26619;

  /** Per sync marker (pio) with a host exit before it: the largest margin of any of the latest 256 to its [t0, t1] (offset 0: debugfs). */
  function syncSlacks(offset: bigint): { line: number; slack: bigint }[] {
    const exits = lines(hostFile)
      .filter((e) => e.pid === TID && e.name === 'kvm_pio' && / at 0xe9 /.test(e.body))
      .map((e) => e.tsc);
    const out: { line: number; slack: bigint }[] = [];
    for (const m of lines(guestFile)) {
      const s = /kvmsync seq=\d+ cpu=\d+ kind=pio t0=(\d+) t1=(\d+)/.exec(m.body);
      if (!s) continue;
      const [h0, h1] = [BigInt(s[1]) - offset, BigInt(s[2]) - offset];
      const before = exits.filter((h) => h <= m.tsc - offset).slice(-256);
      if (!before.length) continue;
      const margins = before.map((h) => (h - h0 < h1 - h ? h - h0 : h1 - h));
      out.push({ line: m.line, slack: margins.reduce((a, b) => (b > a ? b : a)) });
    }
    return out;
  }

  it('passes with every residual ≥ 0; the sync residual is the smallest slack of a marker, computed from the files', async () => {
    const r = await exportMerge(await prepareMerge({ bundles: [join(PVM, 'host'), join(PVM, 'guest')], hostFiles: [], guestFiles: [], overrides: {} }), {});
    expect(r.result.ok).toBe(true);
    const v = r.result.guests[0].vcpus[0];
    const slacks = syncSlacks(0n);
    expect(slacks).toHaveLength(40);
    const min = slacks.reduce((a, b) => (b.slack < a.slack ? b : a));
    const y = v.residual.sync!;
    expect(y.cycles).toBeGreaterThanOrEqual(0);
    expect(BigInt(y.cycles)).toBe(min.slack);
    expect(lineOf(y.guest, guestFile)).toBe(min.line);
    // The host exit named is a kvm_pio on the sync port by the vCPU thread, at the TSC given.
    const h = lines(hostFile).find((e) => e.line === lineOf(y.host!.at, hostFile))!;
    expect([h.pid, h.name, h.tsc.toString()]).toEqual([TID, 'kvm_pio', y.host!.hostTsc]);
    expect(v.residual.window!.cycles).toBeGreaterThanOrEqual(0);
  });

  it('with the wrong mapping (kvm_write_tsc_offset, as bare files) the sync residual is negative: missed by the nearest exit', async () => {
    const r = await exportMerge(
      await prepareMerge({ bundles: [], hostFiles: [hostFile], guestFiles: [guestFile], hostClock: 'x86-tsc', guestClock: 'x86-tsc', overrides: {} }),
      {},
    );
    expect(r.result.ok).toBe(false);
    const v = r.result.guests[0].vcpus[0];
    expect(v.mappingFrom).toMatch(/kvm_write_tsc_offset/);
    expect(v.residual.sync!.cycles).toBeLessThan(0);
  });

  it('the skew bound is ≥ 0 and set by a real wakeup → switch-in pair, the tightest each way as found in the file', async () => {
    const r = await exportMerge(await prepareMerge({ bundles: [join(PVM, 'host'), join(PVM, 'guest')], hostFiles: [], guestFiles: [], overrides: {} }), {});
    const k = r.result.guests[0].vcpus[0].hostSkew!;
    // The pairs, found here: a thread's wakeup (or migration) on one CPU, then its switch-in on another,
    // with no switch-out of it between; the tightest per direction.
    const host = lines(hostFile);
    const waiting = new Map<number, Map<number, Line>>();
    const tight = new Map<string, { gap: bigint; cause: Line; sw: Line }>();
    for (const e of host) {
      const target = /^(?:sched_wakeup|sched_wakeup_new|sched_migrate_task)$/.test(e.name) ? Number(/pid=(\d+)/.exec(e.body)![1]) : undefined;
      if (target !== undefined) (waiting.get(target) ?? waiting.set(target, new Map()).get(target)!).set(e.cpu, e);
      if (e.name !== 'sched_switch') continue;
      const prev = Number(/prev_pid=(\d+)/.exec(e.body)![1]);
      const next = Number(/next_pid=(\d+)/.exec(e.body)![1]);
      waiting.delete(prev);
      for (const c of waiting.get(next)?.values() ?? []) {
        if (c.cpu === e.cpu) continue;
        const key = `${c.cpu}>${e.cpu}`;
        const gap = e.tsc - c.tsc;
        if (!tight.has(key) || gap < tight.get(key)!.gap) tight.set(key, { gap, cause: c, sw: e });
      }
      if (next > 0) waiting.delete(next);
    }
    expect(k.cpus).toEqual([0, 1]);
    const both = [tight.get('0>1')!, tight.get('1>0')!];
    const bound = both[0].gap > both[1].gap ? both[0] : both[1];
    expect(k.boundCycles).toBeGreaterThanOrEqual(0);
    expect(BigInt(k.boundCycles!)).toBe(bound.gap);
    // The pair named is that one: the cause's line and the switch-in's line, their CPUs and stamps.
    const p = k.pair!;
    expect([lineOf(p.cause.at, hostFile), p.from, p.cause.hostTsc, p.cause.event]).toEqual([bound.cause.line, bound.cause.cpu, bound.cause.tsc.toString(), bound.cause.name]);
    expect([lineOf(p.switchIn.at, hostFile), p.to, p.switchIn.hostTsc]).toEqual([bound.sw.line, bound.sw.cpu, bound.sw.tsc.toString()]);
    expect(bound.sw.body).toContain(`next_pid=${p.switchIn.tid} `);
    expect(BigInt(p.gapCycles)).toBe(bound.sw.tsc - bound.cause.tsc);
  });
});

describe('fixtures/global-clock: events not checkable, each with the rule that judged it', () => {
  it('clamped stamps and the host without guest-mode evidence, as the file shows them', async () => {
    const guestFile = join(GLOBAL, 'global.txt');
    const r = await exportMerge(
      await prepareMerge({ bundles: [], hostFiles: [join(GLOBAL, 'x86-tsc.txt')], guestFiles: [guestFile], guestClock: 'global', overrides: { tscOffset: 0n }, tscKhz: 2596136, listEvents: 1000 }),
      {},
    );
    // Runs of equal printed stamps that span CPUs, from the file itself (stamps in µs here).
    const rows = readFileSync(guestFile, 'utf8')
      .split('\n')
      .map((l, i) => ({ line: i + 1, m: /^\s*.+?-\d+\s+\[(\d+)\]\s+\S+\s+(\d+\.\d+): /.exec(l) }))
      .filter((x) => x.m)
      .map((x) => ({ line: x.line, cpu: Number(x.m![1]), ts: x.m![2] }));
    const clamped = new Set<number>();
    for (let i = 0; i < rows.length; ) {
      let j = i;
      while (j < rows.length && rows[j].ts === rows[i].ts) j++;
      if (new Set(rows.slice(i, j).map((x) => x.cpu)).size > 1) for (const x of rows.slice(i, j)) clamped.add(x.line);
      i = j;
    }
    let seen = 0;
    for (const v of r.result.guests[0].vcpus) {
      expect(v.checked).toBe(0);
      expect(v.violations.events).toEqual([]);
      const l = v.notCheckableEvents;
      expect(l.events.length + l.more).toBe(v.notCheckable);
      for (const e of l.events) {
        const line = lineOf(e.guest, guestFile);
        expect(rows.find((x) => x.line === line)!.cpu).toBe(e.cpu);
        expect(e.rule).toBe(
          clamped.has(line)
            ? 'not checkable: its global-clock stamp is shared with another CPU (it may have been clamped)'
            : 'not checkable: the host trace has no guest-mode evidence (no kvm_entry/kvm_exit, no kvm_fpu)',
        );
        if (clamped.has(line)) seen++;
      }
      // No host thread runs this guest's vCPUs: no skew to bound, no window to measure.
      expect(v.hostSkew).toBeNull();
      expect(v.residual.window).toBeNull();
    }
    expect(seen).toBeGreaterThan(10);
  });
});

describe('a host alone: validation is not applicable', () => {
  it('says so in the summary JSON and in the text', async () => {
    const dir = tempDir('kvmtrace-na-');
    const summary = join(dir, 's.json');
    const r = kvmtrace(['merge', join(PVM, 'host'), '--summary', summary, '--text', join(dir, 't.txt')]);
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('validation: not applicable (nothing to check: it needs a host trace and a guest trace)');
    expect(JSON.parse(readFileSync(summary, 'utf8'))).toMatchObject({ ok: true, validation: 'not applicable', guests: [] });
  });
});
