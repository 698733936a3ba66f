/**
 * The per-event work of the host index's one pass (index.ts): each host event, in the merge's host
 * order, is classified once by its name's id, decoded only when it is one of the few events the
 * index keeps facts of, and fed as inputs to the KVM-run trackers of the threads it concerns.
 *
 * Which threads are tracked: the vCPU threads named before the pass (bundle metadata, a trace.dat's
 * GUEST option, --vcpu-thread), and every thread that traces run evidence (kvm_entry, kvm_exit,
 * kvm_fpu) from its first such event on. A thread tracked late starts where the trackers start all
 * the same (what came before its first evidence is known once it comes), replaying the last sched
 * facts seen of it; facts older than those are not kept (memory: one small record per thread the
 * trace schedules).
 *
 * The trackers start at the host's first event that is not a kvm_write_tsc_offset: `kvmtrace
 * capture host --hold` records those alone until it is released (the offsets KVM writes when it
 * creates the vCPUs), so before that event nothing else was recorded and nothing can be inferred.
 */
import type { Diagnostics } from '../model/diagnostics.js';
import type { MergedBatch } from '../merge/merged-event.js';
import { fieldsOf, isCpuidExit } from '../parsers/event-fields.js';
import type { KvmFields } from '../model/kvm-fields.js';
import { BOUND, ENTER, KvmRunTracker, LEAVE, OWN, RUN_OFF, RUN_ON, SCHED_IN, SCHED_OUT, USER_EXIT } from '../kvm/tracker.js';
import { ThreadSegments } from '../kvm/segments.js';
import type { HostTscWrite } from './index.js';
import { hostTsc, type HostTsc } from '../model/units.js';
import { packWhere } from './where.js';
import { SkewPairs } from './skew.js';

/** The sync port kvmtrace's `syncpt` writes to. */
export const SYNC_PORT = 0xe9;

/** What is being built for one tracked thread: a tracker per kind of host (the kind is known at the end). */
export interface ThreadBuild {
  tid: number;
  /** vCPU index from the thread's first kvm_entry, -1 when none. */
  vcpu: number;
  /** Its process (QEMU's pid: the VM) when the trace has a TGID column, else -1. */
  tgid: number;
  entryExit: KvmRunTracker;
  entryExitSegs: ThreadSegments;
  kvmRun: KvmRunTracker;
  kvmRunSegs: ThreadSegments;
  /** The host CPUs it was seen on (its own events, its switch-ins). */
  cpus: Set<number>;
  /** The last of them (so that the set is touched only on a change). */
  lastCpu: number;
}

/** The last sched facts of an untracked thread (places in the host order, -1 when none; where as where.ts packs it). */
interface Seed {
  outT: number;
  outOrd: number;
  outWhere: number;
  inT: number;
  inOrd: number;
  inWhere: number;
  boundT: number;
  boundOrd: number;
  boundWhere: number;
}

/** A growable list of host times, each with where its event is (where.ts). */
class TimeList {
  readonly a: number[] = [];
  readonly where: number[] = [];
  push(t: number, where: number): void {
    this.a.push(t);
    this.where.push(where);
  }
  /** The times ascending, and the places in the same order. */
  done(): { t: Float64Array; where: Float64Array } {
    const order = this.a.map((_, i) => i).sort((x, y) => this.a[x] - this.a[y] || x - y);
    return { t: Float64Array.from(order, (i) => this.a[i]), where: Float64Array.from(order, (i) => this.where[i]) };
  }
}

/** Accumulates the index over merged host batches. */
export class HostIndexBuilder {
  events = 0;
  firstT = Infinity;
  lastT = -Infinity;
  readonly counts = { kvmEntry: 0, kvmExit: 0, kvmFpu: 0, kvmPio: 0 };
  readonly tscWrites: HostTscWrite[] = [];
  readonly vcpuThreadsSeen = new Map<number, number>();
  readonly comms = new Map<number, string>();
  readonly zeroed = new Map<number, number>();
  readonly threads = new Map<number, ThreadBuild>();
  readonly sync = new Map<number, { pio: TimeList; cpuid: TimeList }>();
  readonly pioPorts = new Map<number, Map<string, number>>();
  /** Causal pairs across CPUs (wakeup or migration, then switch-in): the skew bound's evidence. */
  readonly skew = new SkewPairs();
  /** Exit and userspace-exit reasons by id (segment args). */
  readonly names: string[] = [];
  private readonly nameIds = new Map<string, number>();
  private readonly seeds = new Map<number, Seed>();
  private readonly wanted: Set<number>;
  private k = 0;
  /** Where the trackers start (see above): NaN until then. */
  private startT = NaN;
  private startOrd = 0;
  private startWhere = -1;

  constructor(
    /** Absolute host TSC of timeline time 0. */
    readonly base: HostTsc,
    wanted: Iterable<number>,
    private readonly diags: Diagnostics,
    /** The host file of each source index (for diagnostics). */
    private readonly files: string[],
  ) {
    this.wanted = new Set(wanted);
  }

  /** The id of a reason or label. */
  nameId(s: string): number {
    let i = this.nameIds.get(s);
    if (i === undefined) this.nameIds.set(s, (i = this.names.push(s) - 1));
    return i;
  }

  /** The thread's trackers, made on first need (from the host trace's first event, with its last sched facts replayed). */
  private track(tid: number): ThreadBuild {
    let th = this.threads.get(tid);
    if (th) return th;
    const entryExitSegs = new ThreadSegments();
    const kvmRunSegs = new ThreadSegments();
    th = {
      tid,
      vcpu: -1,
      tgid: -1,
      entryExitSegs,
      kvmRunSegs,
      entryExit: new KvmRunTracker('entry-exit', this.startT, this.startOrd, entryExitSegs, this.startWhere),
      kvmRun: new KvmRunTracker('kvm-run', this.startT, this.startOrd, kvmRunSegs, this.startWhere),
      cpus: new Set(),
      lastCpu: -1,
    };
    this.threads.set(tid, th);
    const s = this.seeds.get(tid);
    if (s) {
      this.seeds.delete(tid);
      const steps: [number, number, number, number][] = [];
      if (s.outOrd >= 0) steps.push([s.outOrd, s.outT, SCHED_OUT, s.outWhere]);
      if (s.inOrd >= 0) steps.push([s.inOrd, s.inT, SCHED_IN, s.inWhere]);
      if (s.boundOrd >= 0) steps.push([s.boundOrd, s.boundT, BOUND, s.boundWhere]);
      steps.sort((a, b) => a[0] - b[0]);
      for (const [ord, t, code, where] of steps) th.kvmRun.step(code, t, ord, -1, where);
    }
    return th;
  }

  private seed(tid: number): Seed {
    let s = this.seeds.get(tid);
    if (!s) this.seeds.set(tid, (s = { outT: 0, outOrd: -1, outWhere: -1, inT: 0, inOrd: -1, inWhere: -1, boundT: 0, boundOrd: -1, boundWhere: -1 }));
    return s;
  }

  /** Notes that tracked thread `th` ran on `cpu`. */
  private ranOn(th: ThreadBuild, cpu: number): void {
    if (cpu === th.lastCpu || cpu < 0) return;
    th.lastCpu = cpu;
    th.cpus.add(cpu);
  }

  /** Feeds one merged batch of host events. */
  feed(mb: MergedBatch): void {
    for (let j = 0; j < mb.n; j++) {
      const t = mb.t[j];
      this.events++;
      if (t < this.firstT) this.firstT = t;
      if (t > this.lastT) this.lastT = t;
      const blk = mb.blk[j];
      const r = mb.row[j];
      const ord = 2 * this.k++;
      const kind = blk.table.typedKind(blk.name[r]);
      const where = packWhere(blk.line[r], mb.src[j], this.files.length);
      const cpu = blk.cpu[r];
      // kvm_write_tsc_offset alone does not start the trackers (see above).
      if (kind !== 'kvm_write_tsc_offset' && this.startT !== this.startT) {
        this.startT = t;
        this.startOrd = ord;
        this.startWhere = where;
        for (const tid of this.wanted) this.track(tid);
      }
      const pid = blk.pid[r];
      let th = this.threads.get(pid);
      if (th) {
        // Every event a thread traces proves it on a CPU, except its own switch-out.
        if (kind !== 'sched_switch') {
          th.kvmRun.step(OWN, t, ord, -1, where);
          this.ranOn(th, cpu);
        }
        if (th.tgid < 0) th.tgid = blk.tgid[r];
      }
      if (kind === undefined) continue;
      // The event's typed fields, decoded once (at import for trace.dat, from the text here otherwise).
      const f = fieldsOf(blk, r)!;
      switch (f.kind) {
        case 'kvm_entry': {
          this.counts.kvmEntry++;
          const v = f.vcpu;
          if (v >= 0 && !this.vcpuThreadsSeen.has(v)) this.vcpuThreadsSeen.set(v, pid);
          this.comms.set(pid, blk.commOf(r));
          th ??= this.trackNew(pid, t, ord, where, cpu);
          if (th.vcpu < 0) th.vcpu = v;
          th.entryExit.step(ENTER, t, ord, v, where);
          break;
        }
        case 'kvm_exit': {
          this.counts.kvmExit++;
          if (isCpuidExit(f.reason)) this.syncOf(pid).cpuid.push(t, where);
          th ??= this.trackNew(pid, t, ord, where, cpu);
          th.entryExit.step(LEAVE, t, ord, this.nameId(f.reason), where);
          break;
        }
        case 'kvm_fpu': {
          this.counts.kvmFpu++;
          this.comms.set(pid, blk.commOf(r));
          th ??= this.trackNew(pid, t, ord, where, cpu);
          if (f.fpu !== 0) th.kvmRun.step(f.fpu === 1 ? RUN_ON : RUN_OFF, t, ord, -1, where);
          break;
        }
        case 'kvm_pio':
          this.pio(pid, t, where, f);
          break;
        case 'kvm_userspace_exit':
          if (th) th.kvmRun.step(USER_EXIT, t, ord, this.nameId(f.reason), where);
          break;
        case 'kvm_write_tsc_offset':
          if (f.write) this.tscWrites.push({ ...f.write, hostTsc: hostTsc(this.base + BigInt(t)), pid, line: blk.line[r] });
          else this.diags.add({ file: this.files[mb.src[j]], line: blk.line[r], message: 'expected kvm_write_tsc_offset fields "vcpu=N prev=N next=N"' });
          break;
        case 'tsc_offset_zeroed':
          if (Number.isSafeInteger(f.vcpu)) this.zeroed.set(f.vcpu, (this.zeroed.get(f.vcpu) ?? 0) + 1);
          break;
        case 'sched_switch':
          if (f.sw) this.schedSwitch(t, ord, where, cpu, f.sw.prevPid, f.sw.nextPid);
          break;
        case 'sched_target':
          this.target(t, ord, where, f.pid);
          if (f.pid >= 0) this.skew.cause(f.pid, t, cpu, where, blk.table.list[blk.name[r]]);
          break;
      }
    }
  }

  private pio(pid: number, t: number, where: number, f: Extract<KvmFields, { kind: 'kvm_pio' }>): void {
    this.counts.kvmPio++;
    if (f.port === SYNC_PORT) this.syncOf(pid).pio.push(t, where);
    let ports = this.pioPorts.get(pid);
    if (!ports) this.pioPorts.set(pid, (ports = new Map()));
    const key = `${f.dir} 0x${f.port.toString(16)}`;
    ports.set(key, (ports.get(key) ?? 0) + 1);
  }

  /** A thread seen with run evidence for the first time (its own event at (t, ord) on `cpu` proves it on a CPU). */
  private trackNew(tid: number, t: number, ord: number, where: number, cpu: number): ThreadBuild {
    const th = this.track(tid);
    th.kvmRun.step(OWN, t, ord, -1, where);
    this.ranOn(th, cpu);
    return th;
  }

  private syncOf(tid: number): { pio: TimeList; cpuid: TimeList } {
    let s = this.sync.get(tid);
    if (!s) this.sync.set(tid, (s = { pio: new TimeList(), cpuid: new TimeList() }));
    return s;
  }

  private schedSwitch(t: number, ord: number, where: number, cpu: number, prevPid: number, nextPid: number): void {
    const out = this.threads.get(prevPid);
    if (out) out.kvmRun.step(SCHED_OUT, t, ord, -1, where);
    else {
      const s = this.seed(prevPid);
      s.outT = t;
      s.outOrd = ord;
      s.outWhere = where;
    }
    // The thread switched to comes second at this place (ord + 1).
    const inn = this.threads.get(nextPid);
    if (inn) {
      inn.kvmRun.step(SCHED_IN, t, ord + 1, -1, where);
      this.ranOn(inn, cpu);
    } else {
      const s = this.seed(nextPid);
      s.inT = t;
      s.inOrd = ord + 1;
      s.inWhere = where;
    }
    // Pid 0 is each CPU's idle task, not one thread.
    if (prevPid > 0) this.skew.switchOut(prevPid);
    if (nextPid > 0) this.skew.switchIn(nextPid, t, cpu, where);
  }

  private target(t: number, ord: number, where: number, tid: number): void {
    if (tid < 0) return;
    const th = this.threads.get(tid);
    if (th) th.kvmRun.step(BOUND, t, ord, -1, where);
    else {
      const s = this.seed(tid);
      s.boundT = t;
      s.boundOrd = ord;
      s.boundWhere = where;
    }
  }
}
