/**
 * The host's TrackEvent tracks: the vCPU state slices on each vCPU's host thread (the KVM-run
 * tracker's states: guest, exit: REASON, preempted, userspace, not checkable, …), and the instants that carry flows between a
 * guest event and a host event.
 *
 * All of them are on the host machine: Perfetto's trace processor keeps flows per machine (its
 * FlowTracker is per trace and machine), so a flow whose two ends lie on two machines would be
 * dropped. The guest end of a flow is therefore an instant on a host track of its own, "GUEST
 * vCPU N" (a child of the vCPU's host thread track), at the guest event's mapped time; the guest
 * event itself is also in the guest machine's ftrace data.
 *
 * One packet sequence; names of slices and annotations are interned (sequence-scoped), slice and
 * instant packets carry absolute ns.
 */
import type { NsClock } from './ns-clock.js';
import {
  CHILD_ORDERING_EXPLICIT,
  DEBUG_ANNOTATION,
  INTERNED,
  INTERNED_STRING,
  PACKET,
  SEQ_INCREMENTAL_STATE_CLEARED,
  SEQ_NEEDS_INCREMENTAL_STATE,
  THREAD_DESCRIPTOR,
  TRACK_DESCRIPTOR,
  TRACK_EVENT,
  TYPE_INSTANT,
  TYPE_SLICE_BEGIN,
  TYPE_SLICE_END,
} from './fields.js';
import type { PacketOut } from './packets.js';
import type { ProtoBuf } from './proto-writer.js';
import type { MachineThreads } from './threads.js';
import { EXIT, GUEST, NOT_TRACED, OUT, PREEMPTED, UNKNOWN, USERSPACE, type KvmState } from '../../kvm/states.js';

/** Slice names of the tracker's states that carry no reason (kvm/states.ts). */
const STATE_SLICE: Record<number, string> = {
  [UNKNOWN]: 'not checkable',
  [GUEST]: 'guest',
  [OUT]: 'out of guest mode',
  [PREEMPTED]: 'preempted',
  [NOT_TRACED]: 'not checkable (switch-in not traced)',
};

/** Names of EXIT and USERSPACE slices by reason, made once each. */
const reasonNames = { exit: new Map<string, string>(), userspace: new Map<string, string>() };

/**
 * The name of a vCPU state slice: the KVM-run tracker's state (kvm/states.ts), with the exit's
 * reason for EXIT (`exit: HLT`) and the userspace exit's for USERSPACE (`userspace: IO`) when known.
 */
export function stateSliceName(state: KvmState, reason: string): string {
  if (state !== EXIT && state !== USERSPACE) return STATE_SLICE[state] ?? 'not checkable';
  if (state === USERSPACE && !reason) return 'userspace';
  const kind = state === EXIT ? 'exit' : 'userspace';
  let n = reasonNames[kind].get(reason);
  if (n === undefined) {
    n = `${kind}: ${reason || '?'}`;
    if (reasonNames[kind].size < INTERN_CAP) reasonNames[kind].set(reason, n);
  }
  return n;
}

/** Interned names kept per kind; past it names go out as text (a bound on memory). */
const INTERN_CAP = 4096;

const NONE: (number | undefined)[] = [];
const NO_ARGS: Annotation[] = [];
const NO_IDS: number[] = [];

/** A debug annotation: name and value. */
export type Annotation = [string, string | number];

/** The host's TrackEvent sequence. */
export class HostTracks {
  private started = false;
  private nextUuid = 1;
  private readonly eventNames = new Map<string, number>();
  private readonly annNames = new Map<string, number>();
  private newEventNames: [number, string][] = [];
  private newAnnNames: [number, string][] = [];
  private readonly threadTracks = new Map<number, number>();
  private readonly childTracks = new Map<string, number>();
  /** Tracks with an open state slice (ns of its begin). */
  private readonly open = new Map<number, number | bigint>();
  /** Slices and instants written. */
  slices = 0;
  instants = 0;

  constructor(
    private readonly out: PacketOut,
    private readonly clock: NsClock,
    private readonly threads: MachineThreads,
    private readonly seq: number,
    /** Names known before the thread's first event (vCPU threads, from the capture). */
    private readonly knownNames: Map<number, string> = new Map(),
  ) {}

  /** Absolute ns of timeline time t (bigint past 2^53). */
  ns(t: number): number | bigint {
    return this.clock.ns(t) ?? this.clock.nsBig(t);
  }

  /** Starts a packet of this sequence (the first one clears the incremental state). */
  private packet(): ProtoBuf {
    const pb = this.out.start(0, this.seq);
    if (!this.started) {
      this.started = true;
      pb.uint(PACKET.sequenceFlags, SEQ_INCREMENTAL_STATE_CLEARED);
      pb.bool(PACKET.firstPacketOnSequence, true);
    }
    return pb;
  }

  /** The track of host thread `tid` (described on first use). */
  threadTrack(tid: number): number {
    let uuid = this.threadTracks.get(tid);
    if (uuid !== undefined) return uuid;
    uuid = this.nextUuid++;
    this.threadTracks.set(tid, uuid);
    const pb = this.packet();
    const d = pb.begin(PACKET.trackDescriptor);
    pb.uint(TRACK_DESCRIPTOR.uuid, uuid);
    const th = pb.begin(TRACK_DESCRIPTOR.thread);
    pb.int(THREAD_DESCRIPTOR.pid, this.threads.tgidOf(tid));
    pb.int(THREAD_DESCRIPTOR.tid, tid);
    // The vCPU state can be known before the thread's first event is written (the validator runs first).
    const name = this.threads.nameOf(tid) ?? this.knownNames.get(tid);
    if (name) pb.string(THREAD_DESCRIPTOR.threadName, name);
    pb.end(th);
    pb.uint(TRACK_DESCRIPTOR.childOrdering, CHILD_ORDERING_EXPLICIT);
    pb.end(d);
    this.out.emit();
    return uuid;
  }

  /** A named child track of thread `tid`'s track (or a top-level track when tid is undefined). */
  childTrack(key: string, name: string, tid: number | undefined, rank: number): number {
    let uuid = this.childTracks.get(key);
    if (uuid !== undefined) return uuid;
    const parent = tid !== undefined ? this.threadTrack(tid) : undefined;
    uuid = this.nextUuid++;
    this.childTracks.set(key, uuid);
    const pb = this.packet();
    const d = pb.begin(PACKET.trackDescriptor);
    pb.uint(TRACK_DESCRIPTOR.uuid, uuid);
    pb.string(TRACK_DESCRIPTOR.name, name);
    if (parent !== undefined) pb.uint(TRACK_DESCRIPTOR.parentUuid, parent);
    pb.int(TRACK_DESCRIPTOR.siblingOrderRank, rank);
    pb.end(d);
    this.out.emit();
    return uuid;
  }

  /** The vCPU of thread `tid` enters `state` at timeline time t: ends the open state slice, begins the next. */
  state(t: number, tid: number, name: string, args: Annotation[]): void {
    const uuid = this.threadTrack(tid);
    const ns = this.ns(t);
    if (this.open.has(uuid)) this.event(uuid, ns, TYPE_SLICE_END, undefined, NO_ARGS, NO_IDS, NO_IDS);
    this.event(uuid, ns, TYPE_SLICE_BEGIN, name, args, NO_IDS, NO_IDS);
    this.open.set(uuid, ns);
    this.slices++;
  }

  /** An instant on track `uuid` at timeline time t, starting flows `flowIds` and ending `terminating`. */
  instant(uuid: number, t: number, name: string, args: Annotation[], flowIds: number[], terminating: number[]): void {
    this.event(uuid, this.ns(t), TYPE_INSTANT, name, args, flowIds, terminating);
    this.instants++;
  }

  /** Ends every open state slice at the last time written. */
  end(lastT: number): void {
    const ns = this.ns(lastT);
    for (const uuid of this.open.keys()) this.event(uuid, ns, TYPE_SLICE_END, undefined, NO_ARGS, NO_IDS, NO_IDS);
    this.open.clear();
  }

  private event(uuid: number, ns: number | bigint, type: number, name: string | undefined, args: Annotation[], flowIds: number[], terminating: number[]): void {
    const nameIid = name !== undefined ? this.intern(this.eventNames, this.newEventNames, name) : undefined;
    const annIids = args.length ? args.map(([k]) => this.intern(this.annNames, this.newAnnNames, k)) : NONE;
    const pb = this.packet();
    if (typeof ns === 'number') pb.uint(PACKET.timestamp, ns);
    else pb.big(PACKET.timestamp, ns);
    // Only packets that name something read the sequence's interned names.
    if (name !== undefined || args.length) pb.uint(PACKET.sequenceFlags, SEQ_NEEDS_INCREMENTAL_STATE);
    this.internedData(pb);
    const e = pb.begin(PACKET.trackEvent);
    pb.uint(TRACK_EVENT.type, type);
    pb.uint(TRACK_EVENT.trackUuid, uuid);
    if (name !== undefined) {
      if (nameIid !== undefined) pb.uint(TRACK_EVENT.nameIid, nameIid);
      else pb.string(TRACK_EVENT.name, name);
    }
    for (let i = 0; i < args.length; i++) {
      const [k, v] = args[i];
      const a = pb.begin(TRACK_EVENT.debugAnnotations);
      const iid = annIids[i];
      if (iid !== undefined) pb.uint(DEBUG_ANNOTATION.nameIid, iid);
      else pb.string(DEBUG_ANNOTATION.name, k);
      if (typeof v === 'number') pb.int(DEBUG_ANNOTATION.intValue, v);
      else pb.string(DEBUG_ANNOTATION.stringValue, v);
      pb.end(a);
    }
    for (const id of flowIds) pb.fixed64(TRACK_EVENT.flowIds, id);
    for (const id of terminating) pb.fixed64(TRACK_EVENT.terminatingFlowIds, id);
    pb.end(e);
    this.out.emit();
  }

  /** The iid of `s` in `table` (new ones queued for the next packet), or undefined past the cap. */
  private intern(table: Map<string, number>, fresh: [number, string][], s: string): number | undefined {
    let iid = table.get(s);
    if (iid === undefined) {
      if (table.size >= INTERN_CAP) return undefined;
      table.set(s, (iid = table.size + 1));
      fresh.push([iid, s]);
    }
    return iid;
  }

  /** Writes the names interned since the last packet. */
  private internedData(pb: ProtoBuf): void {
    if (!this.newEventNames.length && !this.newAnnNames.length) return;
    const m = pb.begin(PACKET.internedData);
    for (const [field, list] of [
      [INTERNED.eventNames, this.newEventNames],
      [INTERNED.debugAnnotationNames, this.newAnnNames],
    ] as const)
      for (const [iid, name] of list) {
        const e = pb.begin(field);
        pb.uint(INTERNED_STRING.iid, iid);
        pb.string(INTERNED_STRING.name, name);
        pb.end(e);
      }
    pb.end(m);
    this.newEventNames = [];
    this.newAnnNames = [];
  }
}
