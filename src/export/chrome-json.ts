/**
 * The merged timeline as Chrome trace event JSON (the Trace Event Format; opens in Perfetto UI and
 * chrome://tracing), written as a stream.
 *
 * Layout: one process per machine (host first). On the host, one thread per task, named after it;
 * each vCPU thread carries its guest-mode slices, drawn from the KVM-run tracker's segments (the
 * ones validation judged by, replayed in the merge: kvm/replay.ts) — `guest mode` for each GUEST
 * segment (kvm_entry to kvm_exit), then a slice named by the exit reason (the time the host spends
 * on that exit) until the next kvm_entry; on hosts without kvm_entry/kvm_exit, `KVM_RUN` (kvm_fpu
 * load → unload) with `guest` slices inside it where the thread runs guest code. Slices of the
 * tracked threads end where the host trace ends. In each guest, one track per guest CPU with a
 * slice for the running task (from sched_switch) and instant events for markers and every other
 * event. Every event carries its fields as args (chrome-args.ts), a host event also its CPU.
 * Flows (`--flows` matches, and each sync point validation matched) bind each end to a
 * zero-length slice of its own (chrome-flows.ts).
 *
 * Slices are complete `X` records, each written when it ends: a slice's end is not known when it
 * starts, and holding its record until then would hold everything written after it. B/E pairs
 * would keep the file in timestamp order, but Chrome DevTools' trace engine pairs every B with
 * the latest open one of any thread (one stack for the whole trace), so the slices of two
 * threads that overlap in time — a vCPU thread and the guest's CPU track, always — come apart.
 * Every consumer sorts a trace by time (the format does not ask for order), so the file is in
 * stream order instead: each record at the point the merge reached its end (an X's ts + dur,
 * another record's ts). Slices nest per thread by construction. `ts` and `dur` are in µs
 * relative to the first event, with at most 3 decimals (ns).
 */
import { cyclesToNs } from '../model/units.js';
import type { EventBlock } from '../model/event-block.js';
import { UserError } from '../model/errors.js';
import { fieldsOf, isMarkerEvent } from '../parsers/event-fields.js';
import type { MergedBatch, MergedEvent } from '../merge/merged-event.js';
import type { MergeConsumer, MergeDone, SyncMatch } from '../merge/consumer.js';
import { VERSION } from '../model/version.js';
import type { Timeline } from '../merge/merge.js';
import type { GuestPlan } from '../merge/plan.js';
import { validationVerdict } from '../merge/validate.js';
import type { HostIndex, WindowKind } from '../host/index.js';
import { EXIT, GUEST, isInRun, UNKNOWN } from '../kvm/states.js';
import { cyclesToMicros } from './format-time.js';
import type { AtomicWriter } from './atomic-writer.js';
import { FragmentTable, IdFragments } from './fragments.js';
import { EventArgs } from './chrome-args.js';
import { ChromeFlows, type FlowMark } from './chrome-flows.js';
import { jsonString } from './json-string.js';

/** Thread keys: pid·2^32 + tid stays a safe integer for any pid and tid. */
const TID_SPAN = 0x1_0000_0000;

/** Optional extensions of the export. */
export interface ChromeJsonOptions {
  /**
   * Made once the timeline is known; then called for every merged event before it is formatted,
   * and the marks it returns are written at the event's track and time.
   */
  flows?: (tl: Timeline, plans: (GuestPlan | undefined)[], index: HostIndex | undefined) => ((m: MergedEvent) => FlowMark[] | undefined) | undefined;
}

/**
 * The heads of instant records of one category, per event name. Phase `I`, the older spelling of
 * `i`: Perfetto and chrome://tracing read both, Chrome DevTools' trace engine only `I`.
 */
const instantHeads = (cat: 'host' | 'guest'): IdFragments => new IdFragments((name) => `,\n{"ph":"I","s":"t","name":${jsonString(name)},"cat":"${cat}","ts":`);

/** Entries kept by each fragment cache of the exporter. */
const CACHE_CAP = 65_536;

/** Guest CPU tracks get synthetic thread ids far above any kernel pid (pid_max ≤ 4,194,304). */
const GUEST_TID_BASE = 10_000_000;

/** A slice not yet ended: written as one X record when it ends. */
interface OpenSlice {
  /** `{"ph":"X","name":NAME,"cat":"CAT","ts":` as bytes. */
  head: Uint8Array;
  /** Timeline time of its start. */
  t: number;
  /** Its args' members as JSON text (no braces), '' for none. */
  args: string | Uint8Array;
  /** An event whose CPU and body end the args (`,"cpu":N,"text":BODY`): a kvm_exit drawn as its exit's slice. */
  blk?: EventBlock;
  r?: number;
}

interface ThreadSlices {
  /** The open slices, innermost last. */
  open: OpenSlice[];
  /** The tracker's state of a tracked host thread (kvm/states.ts); -1 for other tracks. */
  kvm: number;
}

/** Streams a merged timeline as Chrome trace JSON text into its writer: a merge consumer (merge/consumer.ts). */
export class ChromeJsonExporter implements MergeConsumer {
  private zero: number | undefined;
  private lastT = 0;
  /** Threads already named, keyed pid·2^32 + tid (numbers: no string per event). */
  private readonly named = new Set<number>();
  /** The key of the thread named last looked up: consecutive events mostly share their track. */
  private lastNamed = -1;
  private readonly slices = new Map<number, ThreadSlices>();
  private readonly vcpuTids = new Map<number, number>();
  private first = true;
  /** The writer of the batch being written (set by writeTo and end). */
  private w!: AtomicWriter;
  private readonly windowKind: WindowKind;
  /** Timeline time of the host trace's last event: tracked threads' slices end there. */
  private readonly hostLastT: number;
  private hostEnded = false;
  /** The next segment start of the batch being written (its `kvm` list). */
  private ti = 0;

  private tl!: Timeline;
  private flows: ((m: MergedEvent) => FlowMark[] | undefined) | undefined;

  constructor(
    /** Where the JSON goes. */
    private readonly out: AtomicWriter,
    private readonly tscKhz: number | undefined,
    private readonly index: HostIndex | undefined,
    private readonly opts: ChromeJsonOptions = {},
  ) {
    this.windowKind = index?.kind ?? 'none';
    this.hostLastT = index ? index.lastT : Infinity;
    if (!tscKhz)
      throw new UserError('the Chrome JSON output needs the TSC frequency: give --tsc-khz (or capture with kvmtrace, which records it)');
  }

  /** The timeline is known: writes the opening records. */
  async begin(tl: Timeline, plans: (GuestPlan | undefined)[]): Promise<void> {
    this.tl = tl;
    // ts 0 is the timeline's time 0 (merge.ts Timeline.zero), as in the text and the view; otherData.zeroHostTsc states it.
    this.zero = tl.zero;
    for (const p of plans) if (p) for (const v of p.vcpus.values()) if (v.tid !== undefined) this.vcpuTids.set(v.tid, v.vcpu);
    this.flows = this.opts.flows?.(tl, plans, this.index);
    await this.out.write(this.head());
  }

  /** Writes one batch, then waits for the writer (back-pressure). */
  async batch(mb: MergedBatch): Promise<void> {
    this.writeTo(mb, this.out);
    await this.out.settle();
  }

  /** Closes the slices and the document; `otherData` says who wrote it, ts 0's host TSC and the validation. */
  async end(done: MergeDone): Promise<void> {
    this.close(this.out, {
      producer: `kvmtrace ${VERSION}`,
      // The host TSC at ts 0 (the first event of the timeline).
      zeroHostTsc: this.zero !== undefined ? (done.timeline.base + BigInt(this.zero)).toString() : undefined,
      tscKhz: this.tscKhz,
      validation: validationVerdict(done.result),
    });
    await this.out.settle();
  }

  private rec(s: string): string {
    const r = (this.first ? '\n' : ',\n') + s;
    this.first = false;
    return r;
  }

  private ts(t: number): string {
    return cyclesToMicros(t - (this.zero ?? t), this.tscKhz!);
  }

  /** The opening text: the array and one process (with sort order) per machine. */
  private head(): string {
    let s = '{"displayTimeUnit":"ns","traceEvents":[';
    this.tl.sources.forEach((src, i) => {
      const pid = i + 1;
      const label = `${src.machine} (${src.role})`;
      s += this.rec(`{"ph":"M","name":"process_name","pid":${pid},"tid":0,"args":{"name":${JSON.stringify(label)}}}`);
      s += this.rec(`{"ph":"M","name":"process_sort_index","pid":${pid},"tid":0,"args":{"sort_index":${i}}}`);
    });
    return s;
  }

  /** Names a thread (its metadata records), once. */
  private thread(pid: number, tid: number, name: string, sort: number): void {
    const key = pid * TID_SPAN + tid;
    if (this.named.has(key)) return;
    this.named.add(key);
    this.w.put(
      this.rec(`{"ph":"M","name":"thread_name","pid":${pid},"tid":${tid},"args":{"name":${JSON.stringify(name)}}}`) +
        this.rec(`{"ph":"M","name":"thread_sort_index","pid":${pid},"tid":${tid},"args":{"sort_index":${sort}}}`),
    );
  }

  private state(pid: number, tid: number): ThreadSlices {
    const key = pid * TID_SPAN + tid;
    let st = this.slices.get(key);
    if (!st) this.slices.set(key, (st = { open: [], kvm: -1 }));
    return st;
  }

  /** The record separator: none before the first record. */
  private sep(): void {
    if (this.first) this.first = false;
    else this.w.byte(44);
    this.w.byte(10);
  }

  /** Timeline time `t` in ns from ts 0, rounded (as `ts` prints it). */
  private nsOf(t: number): number {
    return Math.round(cyclesToNs(t - (this.zero ?? t), this.tscKhz!));
  }

  /** Writes `ts` in µs from timeline time `t`. */
  private tsOf(t: number): void {
    // ts in µs with up to 3 decimals, from ns (as cyclesToMicros).
    const ns = this.nsOf(t);
    if (ns < 0) this.w.text(cyclesToMicros(t - (this.zero ?? t), this.tscKhz!));
    else this.w.micros(ns);
  }

  /** `,"pid":P,"tid":T` as bytes, per thread. */
  private pidTid(pid: number, tid: number): Uint8Array {
    const key = pid * TID_SPAN + tid;
    let b = this.pidTids.get(key);
    if (b === undefined) {
      b = Buffer.from(`,"pid":${pid},"tid":${tid}`);
      // Bounded: a trace of many short-lived threads keeps only the first ones cached.
      if (this.pidTids.size < CACHE_CAP) this.pidTids.set(key, b);
    }
    return b;
  }
  private readonly pidTids = new Map<number, Uint8Array>();

  /** `{"ph":"X","name":NAME,"cat":"CAT","ts":` as bytes, per category and name. */
  private sliceHead(name: string, cat: string): Uint8Array {
    let byName = this.sliceHeads.get(cat);
    if (byName === undefined) this.sliceHeads.set(cat, (byName = new Map()));
    let b = byName.get(name);
    if (b === undefined) {
      b = Buffer.from(`{"ph":"X","name":${jsonString(name)},"cat":"${cat}","ts":`);
      // Guest task slices are named after tasks: keep the cache bounded however many there are.
      if (byName.size < CACHE_CAP) byName.set(name, b);
    }
    return b;
  }
  private readonly sliceHeads = new Map<string, Map<string, Uint8Array>>();

  /** Opens a slice at timeline time `t` with `args` members (JSON text without braces, or ''); nothing is written until it ends. */
  private open(pid: number, tid: number, t: number, name: string, cat: string, args: string | Uint8Array = '', blk?: EventBlock, r?: number): void {
    this.state(pid, tid).open.push({ head: this.sliceHead(name, cat), t, args, blk, r });
  }

  /**
   * Ends the thread's innermost slice at timeline time `t`, adding the `more` members to its args,
   * and writes it as an X record; false when none is open. `dur` is the difference of the two
   * rounded times, so `ts + dur` is exactly the end's `ts` and nested slices stay nested.
   */
  private end1(pid: number, tid: number, t: number, more: string | Uint8Array = ''): boolean {
    const s = this.state(pid, tid).open.pop();
    if (s === undefined) return false;
    const w = this.w;
    this.sep();
    w.bytes(s.head);
    this.tsOf(s.t);
    w.text(',"dur":');
    w.micros(Math.max(0, this.nsOf(t) - this.nsOf(s.t)));
    w.bytes(this.pidTid(pid, tid));
    if (s.args.length || more.length) {
      w.text(',"args":{');
      this.members(s.args);
      if (s.blk) {
        const b = s.blk;
        const r = s.r!;
        w.text(',"cpu":');
        w.uint(b.cpu[r]);
        w.text(',"text":');
        const text = b.bodyText?.[r];
        if (text === undefined) w.jsonRange(b.bytes, b.bodyStart[r], b.bodyEnd[r]);
        else w.json(text);
      }
      if (s.args.length && more.length) w.byte(44);
      this.members(more);
      w.byte(125);
    }
    w.byte(125);
    return true;
  }

  /** Writes members given as text or as bytes. */
  private members(m: string | Uint8Array): void {
    if (typeof m === 'string') this.w.text(m);
    else this.w.bytes(m);
  }

  /** `"KEY":"REASON"` as bytes, per key and exit-reason id of the index (few of each). */
  private reasonMember(key: 'reason' | 'exit_reason', arg: number): Uint8Array {
    const cache = key === 'reason' ? this.reasons : this.exitReasons;
    return (cache[arg] ??= Buffer.from(`"${key}":${jsonString(this.index!.names[arg] || 'exit')}`));
  }
  private readonly reasons: Uint8Array[] = [];
  private readonly exitReasons: Uint8Array[] = [];
  /** `"vcpu":N` as bytes, by N + 1. */
  private readonly vcpuMembers: Uint8Array[] = [];

  /** Holds the event's instant: `writeTo` writes it after the event's other records. */
  private instant(tid: number, cat: 'host' | 'guest'): void {
    this.heldTid = tid;
    this.heldCat = cat;
  }

  /** The track and category of the instant of the event being written by `writeTo`, held until its other records are out. */
  private heldTid = 0;
  private heldCat: 'host' | 'guest' | undefined;

  /**
   * Writes one batch into `w`, event by event: the slices that end there and its metadata
   * records, then its instant written byte by byte into the writer's buffer (most events are
   * instants), then its flow ends (flowMarks) and those of sync points (syncPoint).
   */
  writeTo(mb: MergedBatch, w: AtomicWriter): void {
    this.w = w;
    const all = this.flows ? mb.events() : undefined;
    this.ti = 0;
    if (this.zero === undefined && mb.n > 0) this.zero = mb.t[0];
    if (this.flowRecs.pending) this.syncStarts(this.lastT);
    for (let k = 0; k < mb.n; k++) {
      const t = mb.t[k];
      this.lastT = t;
      if (t > this.hostLastT && !this.hostEnded) this.endTracked(this.hostLastT);
      const pid = mb.src[k] + 1;
      const blk = mb.blk[k];
      const r = mb.row[k];
      if (mb.vcpu[k] < 0) this.host(pid, t, blk, r, mb, k);
      else this.guest(pid, t, mb.vcpu[k], blk, r);
      const cat = this.heldCat;
      if (cat !== undefined) {
        this.heldCat = undefined;
        this.writeInstant(w, pid, this.heldTid, t, blk, r, cat);
      }
      if (all) {
        const f = this.flowMarks(pid, all[k]);
        if (f) w.put(f);
      }
      if (this.flowRecs.pending) this.syncStarts(t);
      if (mb.vcpu[k] >= 0) {
        const end = this.flowRecs.endAt(pid - 1, pid, GUEST_TID_BASE * pid + blk.cpu[r], t, blk, r);
        if (end) w.put(end.map((x) => this.rec(x)).join(''));
      }
    }
  }

  private writeInstant(w: AtomicWriter, pid: number, tid: number, t: number, blk: EventBlock, r: number, cat: 'host' | 'guest'): void {
    const name = blk.nameOf(r);
    if (isMarkerEvent(name)) {
      w.text(this.first ? '\n{"ph":"I","s":"t","name":' : ',\n{"ph":"I","s":"t","name":');
      w.text(jsonString(blk.body(r).slice(0, 80)));
      w.text(',"cat":"marker","ts":');
    } else {
      const head = (cat === 'host' ? this.hostHeads : this.guestHeads).get(blk.table, blk.name[r]);
      // The head starts with the record separator ",\n"; the first record has no comma.
      w.bytes(this.first ? head.subarray(1) : head);
    }
    this.first = false;
    this.tsOf(t);
    w.bytes(this.task(pid, tid, blk.pid[r], blk.commOf(r), cat === 'host' ? blk.cpu[r] : -1));
    this.args.write(w, blk, r);
    w.byte(125);
    w.byte(125);
  }

  /** Writes the fields of events as `args` members. */
  private readonly args = new EventArgs();

  /** `,\n{"ph":"I","s":"t","name":NAME,"cat":CAT,"ts":` as bytes, made once per event name and category. */
  private readonly hostHeads = instantHeads('host');
  private readonly guestHeads = instantHeads('guest');

  /**
   * `,"pid":P,"tid":T,"args":{"task":"COMM-PID"` and, for a host event (`cpu` ≥ 0), `,"cpu":N`
   * as bytes, per track, task and CPU. Host tracks are per task, so the CPU an event ran on is
   * said in its args; a guest track is one CPU already.
   */
  private task(pid: number, tid: number, taskPid: number, comm: string, cpu: number): Uint8Array {
    // Machines are few (pid is the source's index + 1) and CPUs fewer than 2^16: one number keys both.
    const a = pid * 65_536 + cpu + 1;
    return (
      this.tasks.find(a, tid, taskPid, comm) ??
      this.tasks.put(a, tid, taskPid, comm, `,"pid":${pid},"tid":${tid},"args":{"task":${jsonString(comm + '-' + taskPid)}${cpu >= 0 ? `,"cpu":${cpu}` : ''}`)
    );
  }
  private readonly tasks = new FragmentTable();

  /** A host event at timeline time `t` (row `r` of `blk`, row `k` of the batch): writes the slices that start there and its metadata records. */
  private host(pid: number, t: number, blk: EventBlock, r: number, mb: MergedBatch, k: number): void {
    const tid = blk.pid[r];
    const name = blk.nameOf(r);
    const key = pid * TID_SPAN + tid;
    if (key !== this.lastNamed) {
      if (!this.named.has(key)) this.hostThread(pid, tid, blk.commOf(r));
      this.lastNamed = key;
    }
    const tr = mb.kvm;
    if (tr) for (; this.ti < tr.n && tr.row[this.ti] === k; this.ti++) this.segment(pid, t, tr.tid[this.ti], tr.state[this.ti], tr.arg[this.ti], blk, r);
    // Run evidence is drawn as slices, not also as instants.
    if (this.windowKind === 'entry-exit' ? name === 'kvm_entry' || name === 'kvm_exit' : this.windowKind === 'kvm-run' && name === 'kvm_fpu') return;
    this.instant(tid, 'host');
  }

  /** A tracker segment of thread `tid` starting at this event (row `r` of `blk`): closes and opens its slices. */
  private segment(pid: number, t: number, tid: number, state: number, arg: number, blk: EventBlock, r: number): void {
    const key = pid * TID_SPAN + tid;
    // A thread gets its track with its first slice (not with the stretch before its first evidence).
    const drawn = this.windowKind === 'entry-exit' ? state === GUEST || state === EXIT : isInRun(state);
    if (!drawn && !this.slices.has(key)) return;
    if (!this.named.has(key)) this.hostThread(pid, tid, this.index?.comms.get(tid) ?? '?');
    const st = this.state(pid, tid);
    const prev = st.kvm;
    st.kvm = state;
    if (this.windowKind === 'entry-exit') {
      if (state === GUEST) {
        this.end1(pid, tid, t);
        // From the kvm_entry itself; a thread in guest mode when the trace began takes its vCPU from the index.
        const atEntry = blk.pid[r] === tid && blk.nameOf(r) === 'kvm_entry';
        const vcpu = atEntry ? arg : (this.index?.threads.get(tid)?.vcpu ?? -1);
        this.open(pid, tid, t, 'guest mode', 'guest_mode', atEntry || vcpu >= 0 ? (this.vcpuMembers[vcpu + 1] ??= Buffer.from(`"vcpu":${vcpu}`)) : '');
      } else if (state === EXIT) {
        this.end1(pid, tid, t, this.reasonMember('exit_reason', arg));
        // The exit's own event, drawn as this slice rather than as an instant: its fields and CPU.
        const atExit = blk.pid[r] === tid && blk.nameOf(r) === 'kvm_exit';
        this.open(pid, tid, t, this.index!.names[arg] || 'exit', 'kvm_exit', this.reasonMember('reason', arg), atExit ? blk : undefined, atExit ? r : undefined);
      }
      return;
    }
    // kvm-run: KVM_RUN while in a run, `guest` inside it while running guest code.
    if (!isInRun(state)) {
      while (st.open.length) this.end1(pid, tid, t);
      return;
    }
    if (!isInRun(prev)) this.open(pid, tid, t, 'KVM_RUN', 'kvm_run');
    if (state === GUEST && prev !== GUEST) this.open(pid, tid, t, 'guest', 'guest_mode');
    else if (state !== GUEST && prev === GUEST) this.end1(pid, tid, t);
  }

  /** Ends the tracked threads' slices where the host trace ends (guest events may go on after it). */
  private endTracked(t: number): void {
    this.hostEnded = true;
    for (const [key, st] of this.slices) {
      if (st.kvm < 0) continue;
      while (st.open.length) this.end1(Math.floor(key / TID_SPAN), key % TID_SPAN, t);
      st.kvm = UNKNOWN;
    }
  }

  private hostThread(pid: number, tid: number, comm: string): void {
    const vcpu = this.vcpuTids.get(tid);
    this.thread(pid, tid, vcpu !== undefined ? `${comm} (vCPU ${vcpu})` : `${comm}`, vcpu !== undefined ? vcpu : 1000 + tid);
  }

  /** A guest event run by `vcpu` at timeline time `t` (row `r` of `blk`): writes its slice and metadata records. */
  private guest(pid: number, t: number, vcpu: number, blk: EventBlock, r: number): void {
    const cpu = blk.cpu[r];
    const tid = GUEST_TID_BASE * pid + cpu;
    const key = pid * TID_SPAN + tid;
    if (key !== this.lastNamed) {
      if (!this.named.has(key)) this.thread(pid, tid, `CPU ${cpu} (vCPU ${vcpu})`, cpu);
      this.lastNamed = key;
    }
    const f = fieldsOf(blk, r);
    if (f?.kind === 'sched_switch') {
      const sw = f.sw;
      if (sw) {
        this.end1(pid, tid, t);
        if (sw.nextPid !== 0) this.open(pid, tid, t, sw.nextComm || `pid ${sw.nextPid}`, 'task', `"pid":${sw.nextPid}`);
        return;
      }
    }
    this.instant(tid, 'guest');
  }

  /** A sync point validation matched: its flow (chrome-flows.ts). */
  syncPoint(m: SyncMatch): void {
    this.flowRecs.syncPoint(m);
  }

  /** Writes the sync flow starts due at timeline time `upTo`, naming their host threads first. */
  private syncStarts(upTo: number): void {
    const pid = this.tl.sources.findIndex((s) => s.role === 'host') + 1;
    for (const d of this.flowRecs.due(pid, upTo)) {
      if (!this.named.has(pid * TID_SPAN + d.tid)) this.hostThread(pid, d.tid, this.index?.comms.get(d.tid) ?? '?');
      this.w.put(d.records.map((x) => this.rec(x)).join(''));
    }
  }

  /** The `--flows` ends at one merged event, as record text. */
  private flowMarks(pid: number, m: MergedEvent): string {
    const marks = this.flows!(m);
    if (!marks) return '';
    const tid = m.vcpu < 0 ? m.ev.pid : GUEST_TID_BASE * pid + m.ev.cpu;
    return this.flowRecs.marks(pid, tid, m.t, m.ev.name, marks).map((x) => this.rec(x)).join('');
  }

  /** The flow records of this export. */
  private readonly flowRecs = new ChromeFlows((t) => this.ts(t));

  /** Closes every open slice at the last timestamp and ends the document, into `w`. */
  private close(w: AtomicWriter, meta: Record<string, unknown>): void {
    this.w = w;
    for (const [key, st] of this.slices) {
      const pid = Math.floor(key / TID_SPAN);
      const tid = key % TID_SPAN;
      while (st.open.length) this.end1(pid, tid, this.lastT);
    }
    w.put('\n],\n"otherData":' + JSON.stringify(meta) + '}\n');
  }
}
