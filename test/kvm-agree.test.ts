/**
 * The proof and the pictures agree: on every real capture, one merge feeds validation, the Chrome
 * JSON exporter, the exits analyses and the view's index at once, and each vCPU thread's moments
 * running guest code are the same in all of them, to the cycle:
 *  - validation: the GUEST segments of the host index (the tracker's), and the guest events the
 *    validator counts inside are exactly those that fall in them (counted here by binary search);
 *  - Chrome JSON: one `guest mode` (entry-exit) or `guest` (kvm-run) slice per segment, each end
 *    at the segment's cycle as the exporter converts it (ns, the format's resolution);
 *  - exits: a thread's guest time is the segments' total, its host time the exit segments' that
 *    end in an entry, in cycles;
 *  - view: the lane's intervals are the segments (the zero-length ones drawn as nothing), kind for kind.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { prepareMerge, runMerge, type MergeRequest } from '../src/merge/session.js';
import type { MergeConsumer } from '../src/merge/consumer.js';
import type { GuestPlan } from '../src/merge/plan.js';
import { AtomicWriter } from '../src/export/atomic-writer.js';
import { ChromeJsonExporter } from '../src/export/chrome-json.js';
import { ExitsAnalyzer } from '../src/analysis/exits.js';
import { KvmRunAnalyzer } from '../src/analysis/kvm-run.js';
import { GUEST_MODE, IndexBuilder, NOT_TRACED_CODE, OFF_CPU } from '../src/view/timeline-index.js';
import { EXIT, GUEST, NOT_TRACED, PREEMPTED, USERSPACE } from '../src/kvm/states.js';
import type { HostIndex } from '../src/host/index.js';
import { ROOT } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';
import { DOCA, externalMissing, MASTERARBEIT, reference } from './helpers/external.js';

/** A thread's segments of one state as [start, end] in timeline cycles (the last ends where the host trace ends). */
function spans(ix: HostIndex, tid: number, state: number): [number, number][] {
  const s = ix.threads.get(tid)!.segments;
  const out: [number, number][] = [];
  for (let i = 0; i < s.n; i++) if (s.state(i) === state) out.push([s.time(i), i + 1 < s.n ? s.time(i + 1) : ix.lastT]);
  return out;
}

/** Runs one merge with every listener on it and checks that they agree; returns the figures for the test's own claims. */
async function agree(req: MergeRequest): Promise<{ ix: HostIndex; windows: number; guestInside: number[]; threads: number[] }> {
  const p = await prepareMerge(req);
  const ix = p.index!;
  const khz = p.tscKhz ?? 1_000_000;
  const path = join(tempDir('kvmtrace-agree-'), 'm.json');
  const w = new AtomicWriter(path);
  await w.open();
  // Every listener on one merge.
  const json = new ChromeJsonExporter(w, khz, ix);
  const view = new IndexBuilder(khz, ix);
  const ex = new ExitsAnalyzer(ix);
  const kr = new KvmRunAnalyzer(ix);
  const guestEvents: { src: number; vcpu: number; t: number }[] = [];
  let plans: (GuestPlan | undefined)[] = [];
  const collect: MergeConsumer = {
    begin: (_tl, pl) => void (plans = pl),
    batch: (mb) => {
      for (let k = 0; k < mb.n; k++) if (mb.vcpu[k] >= 0) guestEvents.push({ src: mb.src[k], vcpu: mb.vcpu[k], t: mb.t[k] });
    },
  };
  const run = await runMerge(p, [json, view, ex, kr, collect]);
  await w.finish();
  await w.commit();
  const lanes = view.index;
  // Chrome JSON: per host thread, the guest slices as [start, end] in ns from ts 0, whose host TSC the file gives.
  const doc = JSON.parse(readFileSync(path, 'utf8')) as { traceEvents: { ph: string; name?: string; ts: number; dur?: number; pid: number; tid: number }[]; otherData: { zeroHostTsc: string } };
  const zero = Number(BigInt(doc.otherData.zeroHostTsc) - run.timeline.base);
  const ns = (t: number): number => Math.round(((t - zero) * 1e6) / khz);
  const sliceName = ix.kind === 'entry-exit' ? 'guest mode' : 'guest';
  const slices = new Map<number, [number, number][]>();
  for (const e of doc.traceEvents) {
    if (e.pid !== 1 || e.ph !== 'X' || e.name !== sliceName) continue;
    const a = Math.round(e.ts * 1000);
    (slices.get(e.tid) ?? slices.set(e.tid, []).get(e.tid)!).push([a, a + Math.round(e.dur! * 1000)]);
  }
  // X slices are written as they end: in start order, as the tracker's spans are.
  for (const l of slices.values()) l.sort((p, q) => p[0] - q[0]);

  let windows = 0;
  const threads = [...ix.threads.keys()].filter((tid) => spans(ix, tid, GUEST).length > 0).sort((a, b) => a - b);
  for (const tid of threads) {
    const g = spans(ix, tid, GUEST);
    windows += g.length;
    // Chrome JSON.
    expect(slices.get(tid), `JSON guest slices of thread ${tid}`).toEqual(g.map(([a, b]) => [ns(a), ns(b)]));
    // exits: guest time, and host time of the exits that end in an entry.
    const total = g.reduce((a, [x, y]) => a + (y - x), 0);
    if (ix.kind === 'entry-exit') {
      expect(ex.threads.get(tid)!.guestCycles, `exits guest cycles of thread ${tid}`).toBe(total);
      const s = ix.threads.get(tid)!.segments;
      let host = 0;
      for (let i = 0; i + 1 < s.n; i++) if (s.state(i) === EXIT && s.state(i + 1) === GUEST) host += s.time(i + 1) - s.time(i);
      expect(ex.threads.get(tid)!.hostCycles, `exits host cycles of thread ${tid}`).toBe(host);
    } else expect(kr.threads.get(tid)!.guestCycles, `KVM_RUN guest cycles of thread ${tid}`).toBe(total);
    // View: every drawn segment (of non-zero length) is one interval of the lane, kind for kind.
    const lane = lanes.lanes.find((l) => l.type === 'vcpu' && (l.label.startsWith(`${tid} `) || l.label.includes(` ${tid} `)))!;
    const drawn: [number, number, string][] = [];
    const s = ix.threads.get(tid)!.segments;
    for (let i = 0; i < s.n; i++) {
      const st = s.state(i);
      const a = s.time(i);
      const b = i + 1 < s.n ? s.time(i + 1) : ix.lastT;
      const name =
        st === GUEST ? lanes.names[GUEST_MODE]
        : st === EXIT ? ix.names[s.arg(i)] || 'exit'
        : st === PREEMPTED ? lanes.names[OFF_CPU]
        : st === NOT_TRACED ? lanes.names[NOT_TRACED_CODE]
        : st === USERSPACE ? (s.arg(i) >= 0 ? ix.names[s.arg(i)] : 'user space')
        : undefined;
      if (name === undefined) continue;
      // A kvm_userspace_exit names the user-space stretch that began at the unload: one interval.
      const prev = drawn[drawn.length - 1];
      if (st === USERSPACE && i > 0 && s.state(i - 1) === USERSPACE && s.arg(i) >= 0) (prev[1] = b), (prev[2] = name);
      else drawn.push([a, b, name]);
    }
    const got: [number, number, string][] = [];
    for (let i = 0; i < lane.n; i++) got.push([lane.start[i], lane.end[i], lanes.names[lane.code[i]]]);
    expect(got, `view lane of thread ${tid}`).toEqual(drawn.filter(([a, b]) => b > a));
  }

  // Validation: the guest events inside are those that fall in their vCPU thread's windows.
  const guestInside: number[] = [];
  for (const g of run.result.guests) {
    const src = run.timeline!.sources.findIndex((s) => s.open.spec.file === g.file);
    for (const v of g.vcpus) {
      const tid = plans[src]!.vcpu(v.vcpu).tid!;
      const w = ix.threads.has(tid) ? spans(ix, tid, GUEST) : [];
      let inside = 0;
      for (const e of guestEvents) {
        if (e.src !== src || e.vcpu !== v.vcpu) continue;
        let lo = 0;
        let hi = w.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (w[mid][1] < e.t) lo = mid + 1;
          else hi = mid;
        }
        if (lo < w.length && w[lo][0] <= e.t) inside++;
      }
      expect(v.inside, `validation of vCPU ${v.vcpu}`).toBe(inside);
      guestInside.push(inside);
    }
  }
  return { ix, windows, guestInside, threads };
}

const bare = (host: string, guest?: string, extra: Partial<MergeRequest> = {}): MergeRequest => ({
  bundles: [],
  hostFiles: [host],
  guestFiles: guest ? [guest] : [],
  overrides: {},
  ...extra,
});

describe('the demo capture (fixtures/pvm-1vcpu, kvm-pvm: KVM_RUN only)', () => {
  it('validation, Chrome JSON, the KVM_RUN summary and the view agree on every guest window', async () => {
    const pvm = join(ROOT, 'fixtures', 'pvm-1vcpu');
    const r = await agree({ bundles: [join(pvm, 'host'), join(pvm, 'guest')], hostFiles: [], guestFiles: [], overrides: {} });
    expect(r.ix.kind).toBe('kvm-run');
    expect(r.threads).toEqual([26619]);
    expect(r.guestInside).toEqual([592]);
    console.log(`pvm-1vcpu: ${r.windows} guest windows of thread 26619 agree; 592 guest events inside`);
  });
});

describe('fixtures/tracedat/v7-kvm.dat (kvm:* of a QEMU/KVM guest on this lab host, as trace.dat)', () => {
  it('the KVM_RUN states agree everywhere', async () => {
    const r = await agree(bare(join(ROOT, 'fixtures', 'tracedat', 'v7-kvm.dat'), undefined, { tscKhz: 2596136 }));
    expect(r.ix.kind).toBe('kvm-run');
    expect(r.windows).toBeGreaterThan(100);
    console.log(`v7-kvm.dat: ${r.windows} guest windows on ${r.threads.length} thread(s) agree`);
  });
});

describe.skipIf(externalMissing)('docA (Intel VMX host + guest) and the host-only recordings', () => {
  if (externalMissing) console.log(`skipped: ${externalMissing}`);

  it('docA as ftrace text: 5,356 windows of the guest’s vCPU thread, 89,827 guest events inside, and the other VM’s threads', async () => {
    const r = await agree(
      bare(reference('docA-host-trace.dat.report-rawts.txt'), reference('docA-guest-trace-Salamander4.dat.report-rawts.txt'), {
        hostClock: 'x86-tsc',
        guestClock: 'x86-tsc',
        overrides: { tscOffset: DOCA.tscOffset, vcpuThreads: new Map([[0, DOCA.vcpuThread]]) },
        tscKhz: DOCA.tscKhz,
      }),
    );
    expect(r.threads).toEqual([453724, 453725, 483882]);
    expect(r.guestInside).toEqual([89827]);
    expect(spans(r.ix, DOCA.vcpuThread, GUEST).length).toBe(5357); // 5,356 closed windows and the one open at the end
    console.log(`docA text: ${r.windows} guest windows on 3 threads agree; 89827 guest events inside`);
  });

  it('docA as trace.dat (mapping from the files)', async () => {
    const r = await agree(bare(join(MASTERARBEIT, 'docA-host-trace.dat'), join(MASTERARBEIT, 'docA-guest-trace-Salamander4.dat')));
    expect(r.guestInside).toEqual([89827]);
    console.log(`docA trace.dat: ${r.windows} guest windows agree`);
  });

  for (const f of ['docC-host-only-trace.dat', 'salB-host-trace.dat', 'lts-trace.dat'])
    it(`${f} (host only)`, async () => {
      const r = await agree(bare(join(MASTERARBEIT, f), undefined, { tscKhz: DOCA.tscKhz }));
      expect(r.ix.kind).toBe('entry-exit');
      expect(r.windows).toBeGreaterThan(1000);
      console.log(`${f}: ${r.windows} guest windows on ${r.threads.length} threads agree`);
    });
});
