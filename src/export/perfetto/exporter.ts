/**
 * The merged timeline as a Perfetto trace (protobuf, `.pftrace`), written as a stream: open it at
 * ui.perfetto.dev, or query it with trace_processor.
 *
 * Layout: the host is Perfetto's default machine and each guest a machine of its own
 * (TracePacket.machine_id, named by SystemInfo.machine_name after the VM). Every machine's events
 * go into per-CPU ftrace bundles — sched, irq, idle and marker events as Perfetto's typed
 * messages (so it draws CPU tracks and thread states), the rest as self-described generic events
 * with typed fields — with thread names from ProcessTree packets. On the host, each vCPU thread
 * carries the vCPU's state slices (host-tracks.ts): the KVM-run tracker's states as the merge
 * replays them (`mb.kvm`, kvm/replay.ts), the very ones validation judged by — for every tracked
 * vCPU thread, also of VMs without a guest trace — and instants that carry the flows of the sync
 * points validation matched and of `--flows` matches. Time: one clock, absolute
 * host TSC in ns (ns-clock.ts), which Perfetto takes as every machine's boot clock. The
 * validation verdict and each vCPU's mapping go into the trace's attributes (metadata table).
 */
import { UserError } from '../../model/errors.js';
import type { HostIndex } from '../../host/index.js';
import type { MergeConsumer, MergeDone, SyncMatch } from '../../merge/consumer.js';
import type { KvmState } from '../../kvm/states.js';
import { EXIT, USERSPACE } from '../../kvm/states.js';
import { VERSION } from '../../model/version.js';
import type { MergedBatch, MergedEvent } from '../../merge/merged-event.js';
import type { Timeline } from '../../merge/merge.js';
import type { GuestPlan } from '../../merge/plan.js';
import { validationVerdict } from '../../merge/validate.js';
import { isMarkerEvent } from '../../parsers/event-fields.js';
import type { AtomicWriter } from '../atomic-writer.js';
import { ATTRIBUTE, ATTRIBUTES, PACKET, SYSTEM_INFO, UTSNAME } from './fields.js';
import { HostTracks, stateSliceName, type Annotation } from './host-tracks.js';
import { MachineFtrace } from './machine-ftrace.js';
import { NsClock } from './ns-clock.js';
import { PacketOut } from './packets.js';
import { layoutFor } from './task-state.js';
import { MachineThreads } from './threads.js';
import { markerText } from './typed-events.js';

/** One end of a `--flows` arrow at a merged event (the Chrome JSON's FlowMark, structurally). */
export interface PerfettoFlowMark {
  ph: 's' | 'f';
  id: number;
  name: string;
}

/** Optional extensions of the export. */
export interface PerfettoOptions {
  /** Makes, once the timeline is known, the hook called for every merged event; the marks it returns become flow ends at the event. */
  flows?: (tl: Timeline, plans: (GuestPlan | undefined)[], index: HostIndex | undefined) => ((m: MergedEvent) => PerfettoFlowMark[] | undefined) | undefined;
  /** The validation summary (the `--summary` JSON) to keep in the trace's attributes. */
  summaryJson?: (done: MergeDone) => string;
}

/** Flow ids of matched sync points start here (those of `--flows` are small counters). */
const SYNC_FLOW_BASE = 2 ** 40;
/** Sequences: the host's TrackEvents; each machine's ftrace and process data is 2 + machine id. */
const TRACK_SEQ = 1;

interface Machine {
  id: number;
  name: string;
  ftrace: MachineFtrace;
  threads: MachineThreads;
}

/** Streams a merged timeline as a Perfetto protobuf trace. */
export class PerfettoExporter implements MergeConsumer {
  private readonly out: PacketOut;
  private readonly tscKhz: number;
  private tl!: Timeline;
  private plans: (GuestPlan | undefined)[] = [];
  private clock!: NsClock;
  private readonly machines: Machine[] = [];
  /** Machine of each source. */
  private readonly bySource: Machine[] = [];
  private tracks!: HostTracks;
  /** vCPU thread → its guest source and vCPU (from the plans). */
  private readonly planned = new Map<number, { src: number; vcpu: number }>();
  private flows: ((m: MergedEvent) => PerfettoFlowMark[] | undefined) | undefined;
  /** The latest timeline time written (open slices end there). */
  private lastT = -Infinity;
  private syncFlows = 0;
  /** The slice each vCPU thread is in (a thread without one has none written yet: its first names the guest and vCPU). */
  private readonly current = new Map<number, string>();
  /** Flow ends written (starts and ends), for the report. */
  readonly flowEnds = { sync: 0, flows: 0 };

  constructor(
    private readonly w: AtomicWriter,
    tscKhz: number | undefined,
    private readonly index: HostIndex | undefined,
    private readonly opts: PerfettoOptions = {},
  ) {
    if (!tscKhz)
      throw new UserError('the Perfetto output needs the TSC frequency: give --tsc-khz (or capture with kvmtrace, which records it)');
    this.tscKhz = tscKhz;
    this.out = new PacketOut(w);
  }

  /** The machines and their first packets, once the timeline is known. */
  async begin(tl: Timeline, plans: (GuestPlan | undefined)[]): Promise<void> {
    this.tl = tl;
    this.plans = plans;
    this.clock = new NsClock(tl.base, this.tscKhz);
    const qemu = new Map<number, number>();
    const vcpuNames = new Map<number, string>();
    plans.forEach((p, src) => {
      if (p?.vm?.qemuPid !== undefined) for (const v of p.vcpus.values()) if (v.tid !== undefined) qemu.set(v.tid, p.vm.qemuPid);
      for (const v of p?.vm?.vcpus ?? []) if (v.tid !== undefined && v.threadName) vcpuNames.set(v.tid, v.threadName);
      for (const v of p?.vcpus.values() ?? []) if (v.tid !== undefined && !this.planned.has(v.tid)) this.planned.set(v.tid, { src, vcpu: v.vcpu });
    });
    tl.sources.forEach((s, i) => {
      const key = s.role === 'host' ? 0 : undefined;
      let m = key === 0 ? this.machines.find((x) => x.id === 0) : this.machines.find((x) => x.id !== 0 && x.name === s.machine);
      if (!m) {
        // Without a host, guests still get machine ids from 1 on: machine 0 is the host's.
        const id = s.role === 'host' ? 0 : this.machines.filter((x) => x.id !== 0).length + 1;
        const spec = s.open.spec;
        const release = spec.meta?.kernel ?? spec.dat?.options.uname?.split(' ')[2];
        m = {
          id,
          name: s.machine,
          ftrace: new MachineFtrace(this.out, id, 2 + id, layoutFor(release)),
          threads: new MachineThreads(this.out, id, 2 + id, id === 0 ? qemu : undefined),
        };
        this.machines.push(m);
      }
      this.bySource[i] = m;
    });
    const host = this.machines.find((m) => m.id === 0);
    this.tracks = new HostTracks(this.out, this.clock, host?.threads ?? new MachineThreads(this.out, 0, 2), TRACK_SEQ, vcpuNames);
    this.flows = this.opts.flows?.(tl, plans, this.index);
    this.systemInfo();
    await this.w.settle();
  }

  /** One batch: its events, then the vCPU states that start in it. */
  async batch(mb: MergedBatch): Promise<void> {
    this.writeTo(mb);
    const k = mb.kvm;
    if (k)
      for (let i = 0; i < k.n; i++) {
        const st = k.state[i];
        const arg = k.arg[i];
        this.transition(mb.t[k.row[i]], k.tid[i], st, (st === EXIT || st === USERSPACE) && arg >= 0 ? (this.index?.names[arg] ?? '') : '');
      }
    await this.w.settle();
  }

  /** Bytes written so far. */
  get bytes(): number {
    return this.out.bytes;
  }

  /** The first packets: each machine's SystemInfo (name, kernel, CPUs), the host's first. */
  private systemInfo(): void {
    for (const m of [...this.machines].sort((a, b) => a.id - b.id)) {
      const srcs = this.tl.sources.filter((_, i) => this.bySource[i] === m);
      const spec = srcs[0].open.spec;
      const uname = spec.dat?.options.uname?.split(' ');
      const release = spec.meta?.kernel ?? uname?.[2];
      const cpus = Math.max(0, ...srcs.map((s) => s.open.header.cpus ?? spec.meta?.cpus ?? 0));
      const pb = this.out.start(m.id, 2 + m.id);
      const si = pb.begin(PACKET.systemInfo);
      if (release) {
        const u = pb.begin(SYSTEM_INFO.utsname);
        pb.string(UTSNAME.sysname, uname?.[0] ?? 'Linux');
        pb.string(UTSNAME.release, release);
        if (uname?.[3]) pb.string(UTSNAME.machine, uname[3]);
        pb.end(u);
      }
      if (cpus > 0) pb.uint(SYSTEM_INFO.numCpus, cpus);
      pb.string(SYSTEM_INFO.machineName, m.name);
      pb.end(si);
      this.out.emit();
    }
  }

  /** Writes one batch's events. */
  private writeTo(mb: MergedBatch): void {
    const all = this.flows ? mb.events() : undefined;
    for (let k = 0; k < mb.n; k++) {
      const t = mb.t[k];
      const m = this.bySource[mb.src[k]];
      const blk = mb.blk[k];
      const r = mb.row[k];
      const ns = this.clock.ns(t) ?? this.clock.nsBig(t);
      const tid = blk.pid[r];
      m.threads.see(tid, blk.tgid[r], blk.commOf(r), ns);
      m.ftrace.add(ns, blk, r);
      if (all) this.flowMarks(all[k]);
      if (t > this.lastT) this.lastT = t;
    }
    for (const x of this.machines) x.threads.flush();
  }

  /**
   * A vCPU thread enters tracker state `state` at timeline time `t`: a slice on its host track. The
   * first slice says which vCPU it is — of a guest merged here, or (a VM without a guest trace)
   * the VM's process and the vCPU from kvm_entry; the others take no arguments (they would double
   * the bytes).
   */
  transition(t: number, tid: number, state: KvmState, reason: string): void {
    if (t > this.lastT) this.lastT = t;
    const name = stateSliceName(state, reason);
    // A state the thread is already in (the tracker starts a segment per event that proves it) goes on.
    if (this.current.get(tid) === name) return;
    const first = !this.current.has(tid);
    this.current.set(tid, name);
    this.tracks.state(t, tid, name, first ? this.label(tid) : []);
  }

  /** The arguments of a vCPU thread's first slice. */
  private label(tid: number): Annotation[] {
    const p = this.planned.get(tid);
    if (p) return [['guest', this.tl.sources[p.src].machine], ['vcpu', p.vcpu]];
    const th = this.index?.threads.get(tid);
    const vm: Annotation[] = th && th.tgid >= 0 ? [['vm_pid', th.tgid]] : [];
    return th && th.vcpu >= 0 ? [...vm, ['vcpu', th.vcpu]] : vm;
  }

  /** A sync point validation matched: a flow from the host's exit to the guest's marker. */
  syncPoint(m: SyncMatch): void {
    const id = SYNC_FLOW_BASE + this.syncFlows++;
    const host = this.tracks.threadTrack(m.tid);
    this.tracks.instant(host, m.hostT, m.kind === 'pio' ? 'sync exit (kvm_pio)' : 'sync exit (CPUID)', [['seq', m.seq]], [id], []);
    this.tracks.instant(this.guestTrack(m.src, m.vcpu), m.guestT, `kvmsync seq=${m.seq}`, [['kind', m.kind]], [], [id]);
    this.flowEnds.sync += 2;
  }

  /** The host track that holds the guest ends of flows for a vCPU: under its host thread when known. */
  private guestTrack(src: number, vcpu: number): number {
    const name = this.tl.sources[src].machine;
    let tid: number | undefined;
    try {
      tid = this.plans[src]?.vcpu(vcpu).tid;
    } catch {
      tid = undefined; // a vCPU without a mapping: the track stands alone
    }
    return this.tracks.childTrack(`${name}:${vcpu}`, `${name} vCPU ${vcpu} (guest events)`, tid, 1);
  }

  /** The `--flows` ends at one merged event. */
  private flowMarks(m: MergedEvent): void {
    const marks = this.flows!(m);
    if (!marks) return;
    const ev = m.ev;
    const track = m.vcpu < 0 ? this.tracks.threadTrack(ev.pid) : this.guestTrack(m.src, m.vcpu);
    const name = isMarkerEvent(ev.name) ? markerText(ev.name, ev.body).slice(0, 80) : ev.name;
    const args: Annotation[] = [['text', ev.body.slice(0, 200)], ['flow', marks[0].name]];
    this.tracks.instant(
      track,
      m.t,
      name,
      args,
      marks.filter((f) => f.ph === 's').map((f) => f.id),
      marks.filter((f) => f.ph === 'f').map((f) => f.id),
    );
    this.flowEnds.flows += marks.length;
  }

  /** Ends the trace: the remaining bundles, open slices closed at the last event, and the attributes. */
  async end(done: MergeDone): Promise<void> {
    const result = done.result;
    const extra = { producer: `kvmtrace ${VERSION}`, tscKhz: this.tscKhz, summaryJson: this.opts.summaryJson?.(done) ?? '' };
    for (const m of this.machines) {
      m.ftrace.flushAll();
      m.threads.flush();
    }
    if (this.lastT > -Infinity) this.tracks.end(this.lastT);
    const attrs: [string, string | number][] = [
      ['kvmtrace.producer', extra.producer],
      ['kvmtrace.validation', validationVerdict(result)],
      ['kvmtrace.tsc_khz', extra.tscKhz],
      ['kvmtrace.clock', `host TSC in ns: ns = tsc × 10^6 / ${extra.tscKhz} kHz; timeline base host TSC ${this.tl.base}`],
    ];
    for (const g of result.guests)
      for (const v of g.vcpus) {
        const key = `kvmtrace.guest.${g.name}.vcpu${v.vcpu}`;
        const plan = this.plans.find((p) => p?.spec.file === g.file);
        const pieces = plan?.vcpus.get(v.vcpu)?.mapping.pieces ?? [];
        attrs.push(
          [`${key}.host_tid`, v.hostTid ?? -1],
          [`${key}.mapping_from`, v.mappingFrom],
          [`${key}.tsc_offsets`, pieces.map((p) => `${p.offset}${p.fromHostTsc >= 0n ? ` from host TSC ${p.fromHostTsc}` : ''} (${p.source})`).join('; ')],
          [`${key}.checked`, v.checked],
          [`${key}.inside`, v.inside],
          [`${key}.not_checkable`, v.notCheckable],
          [`${key}.worst_violation_cycles`, v.worstViolationCycles],
          [`${key}.sync_points_matched`, v.sync.matched],
        );
      }
    attrs.push(['kvmtrace.validation_json', extra.summaryJson]);
    const pb = this.out.start(0, 2);
    const a = pb.begin(PACKET.traceAttributes);
    for (const [k, v] of attrs) {
      const e = pb.begin(ATTRIBUTES.attribute);
      pb.string(ATTRIBUTE.key, k);
      if (typeof v === 'number') pb.int(ATTRIBUTE.longValue, v);
      else pb.string(ATTRIBUTE.stringValue, v);
      pb.end(e);
    }
    pb.end(a);
    this.out.emit();
    await this.w.settle();
  }
}
