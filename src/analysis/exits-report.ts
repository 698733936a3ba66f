/**
 * The `kvmtrace exits` report: tables built from an {@link ExitsAnalyzer} (or, on hosts without
 * kvm_exit, a {@link KvmRunAnalyzer}), as JSON and as text. Durations are ns, rounded to the
 * nearest ns; cycle totals are exact.
 */
import type { ExitsAnalyzer } from './exits.js';
import { vendorLabel, type ExitVendor } from './exit-reasons.js';
import type { KvmRunAnalyzer } from './kvm-run.js';
import { SampleBuffer, sampleStats, cyclesToNsF } from './samples.js';
import type { VcpuThreads } from './vcpu-threads.js';
import type { VmSelection } from './vm-select.js';
import { vmLabel } from '../host/vms.js';

/** One exit reason's row. */
export interface ReasonRow {
  reason: string;
  count: number;
  totalNs: number;
  minNs: number;
  meanNs: number;
  p50Ns: number;
  p99Ns: number;
  maxNs: number;
  /** Exact sum of the exit durations, in TSC cycles. */
  totalCycles: number;
  /** Share of the exits (count), in %. */
  pctExits: number;
  /** Share of the time spent on exits, in %. */
  pctTime: number;
}

/** One vCPU thread's row: guest mode vs. host, and its own reasons. */
export interface VcpuRow {
  tid: number;
  comm: string;
  /** vCPU index (-1 when no kvm_entry named it). */
  vcpu: number;
  /** Its VM as tables name it (host/vms.ts vmLabel: name, `QEMU <pid>`, or `?` when no input places the thread). */
  vm: string;
  /** The guest of this merge it runs, when the guest has events on its vCPU. */
  guest: string | null;
  exits: number;
  /** Time in guest mode (the thread's GUEST states within the host trace: what validation accepts), ns. */
  guestNs: number;
  /** Time in the host handling exits (closed kvm_exit → kvm_entry), ns. */
  hostNs: number;
  guestPct: number;
  guestCycles: number;
  hostCycles: number;
  startedInGuest: boolean;
  openAtEnd: 'host' | 'guest' | null;
  exitWithoutEntry: number;
  entryWithoutExit: number;
  reasons: ReasonRow[];
}

/** A userspace exit reason on a host without kvm_exit. */
export interface UserspaceExitRow {
  reason: string;
  count: number;
  totalNs: number;
  /** Exact sum, in TSC cycles. */
  totalCycles: number;
  minNs: number;
  meanNs: number;
  p50Ns: number;
  p99Ns: number;
  maxNs: number;
}

/** One thread's KVM_RUN summary on a host without kvm_exit. */
export interface KvmRunRow {
  tid: number;
  comm: string;
  vcpu: number;
  /** Its VM, as in {@link VcpuRow.vm}. */
  vm: string;
  guest: string | null;
  runs: number;
  /** Time inside KVM_RUN, ns (on CPU: runNs − offCpuNs). */
  runNs: number;
  /** Exact time inside KVM_RUN, in TSC cycles. */
  runCycles: number;
  offCpuNs: number;
  /** Time running guest code (the GUEST states validation accepts), ns, and exact in cycles. */
  guestNs: number;
  guestCycles: number;
  /** Time between KVM_RUN spans (in the VMM), ns. */
  outsideNs: number;
  userspaceExits: UserspaceExitRow[];
  pio: { port: string; count: number }[];
}

/** The whole report (`--json` prints it). */
export interface ExitsReport {
  /** `exits` when the host recorded kvm_exit/kvm_entry; `kvm-run` when only KVM_RUN spans; `none`. */
  mode: 'exits' | 'kvm-run' | 'none';
  vendor: ExitVendor;
  tscKhz: number;
  /** Where the frequency came from (`--tsc-khz`, the bundle, or `timestamps in ns (time clock)`). */
  tscKhzFrom: string;
  /** The VM `--vm` selected (its label), or null for every VM on the host. */
  vm: string | null;
  reasons: ReasonRow[];
  vcpus: VcpuRow[];
  total: { count: number; totalNs: number; totalCycles: number };
  kvmRun: KvmRunRow[];
}

/** Sort keys of the reason rows. */
export const SORT_KEYS = ['count', 'time', 'mean', 'max', 'p99', 'reason'] as const;
/** A sort key. */
export type SortKey = (typeof SORT_KEYS)[number];

/** Which threads to report. */
export interface ExitsFilter {
  vm?: VmSelection;
  vcpu?: number;
  tid?: number;
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

/** Rows grouped by VM (named VMs first, threads no input places last), by thread within one. */
function byVm(a: { vm: string; tid: number }, b: { vm: string; tid: number }): number {
  const rank = (v: string): number => (v === vmLabel(undefined) ? 1 : 0);
  return rank(a.vm) - rank(b.vm) || (a.vm < b.vm ? -1 : a.vm > b.vm ? 1 : 0) || a.tid - b.tid;
}

function reasonRows(by: Map<string, SampleBuffer[]>, tscKhz: number, sort: SortKey): ReasonRow[] {
  const ns = (c: number): number => Math.round(cyclesToNsF(c, tscKhz));
  const rows: ReasonRow[] = [];
  let count = 0;
  let total = 0;
  for (const [reason, bufs] of by) {
    const all = new SampleBuffer(Math.max(1, bufs.reduce((a, b) => a + b.length, 0)));
    for (const b of bufs) for (const v of b.view()) all.push(v);
    const s = sampleStats(all);
    if (!s) continue;
    count += s.count;
    total += s.sum;
    rows.push({ reason, count: s.count, totalNs: ns(s.sum), minNs: ns(s.min), meanNs: ns(s.mean), p50Ns: ns(s.p50), p99Ns: ns(s.p99), maxNs: ns(s.max), totalCycles: s.sum, pctExits: 0, pctTime: 0 });
  }
  for (const r of rows) {
    r.pctExits = round2((100 * r.count) / count);
    r.pctTime = total ? round2((100 * r.totalCycles) / total) : 0;
  }
  const key: Record<SortKey, (r: ReasonRow) => number> = {
    count: (r) => r.count,
    time: (r) => r.totalCycles,
    mean: (r) => r.meanNs,
    max: (r) => r.maxNs,
    p99: (r) => r.p99Ns,
    reason: () => 0,
  };
  return rows.sort((a, b) => key[sort](b) - key[sort](a) || (a.reason < b.reason ? -1 : a.reason > b.reason ? 1 : 0));
}

/** Builds the report from finished analyzers. */
export function buildExitsReport(
  ex: ExitsAnalyzer,
  runs: KvmRunAnalyzer,
  vt: VcpuThreads,
  tscKhz: number,
  o: { filter?: ExitsFilter; sort?: SortKey; tscKhzFrom?: string } = {},
): ExitsReport {
  const sort = o.sort ?? 'count';
  const ns = (c: number): number => Math.round(cyclesToNsF(c, tscKhz));
  const keep = (tid: number): boolean => {
    const t = vt.byTid.get(tid);
    if (o.filter?.vm && !o.filter.vm.hostThread(tid)) return false;
    if (o.filter?.tid !== undefined && tid !== o.filter.tid) return false;
    if (o.filter?.vcpu !== undefined && t?.vcpu !== o.filter.vcpu) return false;
    return true;
  };
  const all = new Map<string, SampleBuffer[]>();
  const vcpus: VcpuRow[] = [];
  let exitsSeen = 0;
  for (const th of [...ex.threads.values()].sort((a, b) => a.tid - b.tid)) {
    exitsSeen += th.exits + th.guestWindows;
    if (!keep(th.tid)) continue;
    const own = new Map<string, SampleBuffer[]>();
    for (const [r, b] of th.byReason) {
      own.set(r, [b]);
      let l = all.get(r);
      if (!l) all.set(r, (l = []));
      l.push(b);
    }
    const t = vt.byTid.get(th.tid);
    const span = th.guestCycles + th.hostCycles;
    vcpus.push({
      tid: th.tid,
      comm: t?.comm ?? '',
      vcpu: t?.vcpu ?? -1,
      vm: vt.vmLabel(th.tid),
      guest: vt.guestOf(th.tid) ?? null,
      exits: th.exits,
      guestNs: ns(th.guestCycles),
      hostNs: ns(th.hostCycles),
      guestPct: span ? round2((100 * th.guestCycles) / span) : 0,
      guestCycles: th.guestCycles,
      hostCycles: th.hostCycles,
      startedInGuest: th.startedInGuest,
      openAtEnd: th.openAtEnd ?? null,
      exitWithoutEntry: th.exitWithoutEntry,
      entryWithoutExit: th.entryWithoutExit,
      reasons: reasonRows(own, tscKhz, sort),
    });
  }
  const reasons = reasonRows(all, tscKhz, sort);
  const totalCycles = reasons.reduce((a, r) => a + r.totalCycles, 0);
  const kvmRun: KvmRunRow[] = [];
  for (const th of [...runs.threads.values()].sort((a, b) => a.tid - b.tid)) {
    if (!keep(th.tid) || th.runs === 0) continue;
    const t = vt.byTid.get(th.tid);
    const ue: UserspaceExitRow[] = [];
    for (const [reason, b] of th.userspaceExits) {
      const s = sampleStats(b)!;
      ue.push({ reason, count: s.count, totalNs: ns(s.sum), totalCycles: s.sum, minNs: ns(s.min), meanNs: ns(s.mean), p50Ns: ns(s.p50), p99Ns: ns(s.p99), maxNs: ns(s.max) });
    }
    ue.sort((a, b) => b.count - a.count || (a.reason < b.reason ? -1 : 1));
    kvmRun.push({
      tid: th.tid,
      comm: t?.comm ?? '',
      vcpu: t?.vcpu ?? -1,
      vm: vt.vmLabel(th.tid),
      guest: vt.guestOf(th.tid) ?? null,
      runs: th.runs,
      runNs: ns(th.runCycles),
      runCycles: th.runCycles,
      offCpuNs: ns(th.offCpuCycles),
      guestNs: ns(th.guestCycles),
      guestCycles: th.guestCycles,
      outsideNs: ns(th.outsideCycles),
      userspaceExits: ue,
      pio: [...th.pio].map(([port, count]) => ({ port, count })).sort((a, b) => b.count - a.count || (a.port < b.port ? -1 : 1)),
    });
  }
  const mode = exitsSeen > 0 ? 'exits' : kvmRun.length > 0 ? 'kvm-run' : 'none';
  vcpus.sort(byVm);
  kvmRun.sort(byVm);
  return {
    mode,
    vendor: ex.vendor(),
    tscKhz,
    tscKhzFrom: o.tscKhzFrom ?? 'given',
    vm: o.filter?.vm ? vmLabel(o.filter.vm.vm) : null,
    reasons,
    vcpus,
    total: { count: reasons.reduce((a, r) => a + r.count, 0), totalNs: ns(totalCycles), totalCycles },
    kvmRun,
  };
}

const num = (n: number): string => n.toLocaleString('en-US');

function table(head: string[], rows: string[][], leftCols = 1): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]): string => r.map((c, i) => (i < leftCols ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n') + '\n';
}

function reasonTable(rows: ReasonRow[], total: { count: number; totalNs: number }): string {
  const body = rows.map((r) => [r.reason, num(r.count), r.pctExits.toFixed(2), num(r.totalNs), r.pctTime.toFixed(2), num(r.minNs), num(r.meanNs), num(r.p50Ns), num(r.p99Ns), num(r.maxNs)]);
  body.push(['TOTAL', num(total.count), rows.length ? '100.00' : '0.00', num(total.totalNs), rows.length ? '100.00' : '0.00', '', '', '', '', '']);
  return table(['REASON', 'COUNT', '%EXITS', 'TOTAL_NS', '%TIME', 'MIN_NS', 'MEAN_NS', 'P50_NS', 'P99_NS', 'MAX_NS'], body);
}

/** A thread's label in tables: `comm-tid vCPU n`. */
function threadLabel(v: { tid: number; comm: string; vcpu: number }): string {
  return `${v.comm || '?'}-${v.tid}` + (v.vcpu >= 0 ? ` vCPU ${v.vcpu}` : '');
}

/** A thread's label in headings and notes: `comm-tid vCPU n (VM x[, guest g])`. */
function vcpuLabel(v: { tid: number; comm: string; vcpu: number; vm: string; guest: string | null }): string {
  return `${threadLabel(v)} (VM ${v.vm}${v.guest && v.guest !== v.vm ? `, guest ${v.guest}` : ''})`;
}

/** The report as text: the reason table, then guest mode vs. host per vCPU thread (`by: 'vcpu'` adds a reason table per thread). */
export function exitsText(r: ExitsReport, o: { by?: 'reason' | 'vcpu' } = {}): string {
  if (r.mode !== 'exits') return kvmRunText(r);
  let s = `VM exits: ${num(r.total.count)} on ${r.vcpus.length} vCPU thread(s)${r.vm !== null ? ` of VM ${r.vm}` : ''}, ${num(r.total.totalNs)} ns in the host; reasons as printed by ${vendorLabel(r.vendor)}; ${clockText(r)}\n\n`;
  if (o.by === 'vcpu')
    for (const v of r.vcpus) s += `${vcpuLabel(v)}\n` + reasonTable(v.reasons, { count: v.exits, totalNs: v.hostNs }) + '\n';
  else s += reasonTable(r.reasons, r.total) + '\n';
  s += table(
    ['VM', 'VCPU THREAD', 'EXITS', 'GUEST_NS', 'HOST_NS', '%GUEST'],
    r.vcpus.map((v) => [v.vm, threadLabel(v), num(v.exits), num(v.guestNs), num(v.hostNs), v.guestPct.toFixed(2)]),
    2,
  );
  const notes: string[] = [];
  for (const v of r.vcpus) {
    const l = vcpuLabel(v);
    if (v.startedInGuest) notes.push(`${l}: in guest mode when the trace began (counted from the host trace's first event, as validation does)`);
    if (v.openAtEnd === 'host') notes.push(`${l}: the trace ends in the host after a kvm_exit with no kvm_entry (not counted)`);
    if (v.exitWithoutEntry) notes.push(`${l}: ${v.exitWithoutEntry} kvm_exit(s) followed by another kvm_exit (kvm_entry missing — lost events?); the earlier exit is not counted`);
    if (v.entryWithoutExit) notes.push(`${l}: ${v.entryWithoutExit} kvm_entry followed by another kvm_entry (kvm_exit missing)`);
  }
  if (notes.length) s += '\n' + notes.map((n) => `note: ${n}\n`).join('');
  return s;
}

function clockText(r: ExitsReport): string {
  return r.tscKhzFrom.startsWith('timestamps in ns') ? 'timestamps in ns (the trace clock counts time, not TSC cycles)' : `TSC ${num(r.tscKhz)} kHz`;
}

function kvmRunText(r: ExitsReport): string {
  if (r.mode === 'none') return 'The host recorded no VM exits: no kvm_exit/kvm_entry events, and no KVM_RUN spans (kvm_fpu) either.\n';
  let s =
    'The host recorded no VM exits: this trace has no kvm_exit/kvm_entry events (a kvm-pvm host, or those events\n' +
    'were not enabled). What it does show, per vCPU thread: complete KVM_RUN spans (kvm_fpu load → unload), the\n' +
    'time switched out inside them, the time running guest code (GUEST_NS, what validation accepts), and why each\n' +
    'returned to user space (kvm_userspace_exit; time = until the next KVM_RUN starts). Exits handled inside the\n' +
    `kernel are not visible here. ${clockText(r)}.\n\n`;
  s += table(
    ['VM', 'VCPU THREAD', 'KVM_RUNS', 'IN_RUN_NS', 'OFF_CPU_NS', 'OUTSIDE_NS', 'GUEST_NS'],
    r.kvmRun.map((v) => [v.vm, threadLabel(v), num(v.runs), num(v.runNs), num(v.offCpuNs), num(v.outsideNs), num(v.guestNs)]),
    2,
  );
  for (const v of r.kvmRun) {
    if (!v.userspaceExits.length && !v.pio.length) continue;
    s += `\n${vcpuLabel(v)}\n`;
    if (v.userspaceExits.length)
      s += table(
        ['USERSPACE EXIT', 'COUNT', 'TOTAL_NS', 'MIN_NS', 'MEAN_NS', 'P50_NS', 'P99_NS', 'MAX_NS'],
        v.userspaceExits.map((u) => [u.reason, num(u.count), num(u.totalNs), num(u.minNs), num(u.meanNs), num(u.p50Ns), num(u.p99Ns), num(u.maxNs)]),
      );
    if (v.pio.length) s += table(['KVM_PIO', 'COUNT'], v.pio.map((p) => [p.port, num(p.count)]));
  }
  return s;
}

/** The report as JSON text (`{"reasons":[…],"vcpus":[…], …}`). */
export function exitsJson(r: ExitsReport): string {
  return JSON.stringify(r, null, 2) + '\n';
}
