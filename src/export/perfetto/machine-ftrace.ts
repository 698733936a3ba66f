/**
 * The ftrace events of one machine (the host, or a guest) as Perfetto's per-CPU event bundles:
 * each event is encoded into its CPU's bundle as it comes, and a bundle goes out as one packet
 * once it holds BUNDLE_BYTES (so memory stays at CPUs × BUNDLE_BYTES, whatever the input size).
 * Perfetto's importer sorts all events by time, so bundles of different CPUs may interleave.
 *
 * Timestamps: an event's time is written relative to an origin (ORIGIN_MARGIN before the
 * machine's first event), which takes 5 bytes where absolute ns take 7. Each bundle says so the
 * way Perfetto's own recorder does for a non-boot ftrace clock: `ftrace_clock` GLOBAL with the
 * pair (ftrace_timestamp 1, boot_timestamp origin + 1), from which the importer adds the origin
 * back exactly. A bundle whose events would fall before the origin is written with absolute ns.
 */
import { BUNDLE, FIRST_GENERIC_ID, FTRACE_CLOCK_GLOBAL, FTRACE_EVENT, GENERIC_DESCRIPTOR, PACKET } from './fields.js';
import { GenericEvents, type Shape } from './generic-events.js';
import type { PacketOut } from './packets.js';
import { LEN, ProtoBuf } from './proto-writer.js';
import { FOUND_ROOM, RecentBodies } from '../recent-bodies.js';
import type { TaskStateLayout } from './task-state.js';
import { hasTyped, writeTyped } from './typed-events.js';
import type { EventBlock } from '../../model/event-block.js';

/** A bundle is written out once its events take this many bytes. */
const BUNDLE_BYTES = 48 * 1024;
/** The origin of relative timestamps lies this long (ns) before the machine's first event. */
const ORIGIN_MARGIN = 10_000_000_000;

interface CpuBundle {
  /** Timestamps relative to the origin (else absolute ns). */
  rel: boolean;
  events: ProtoBuf;
  /** Descriptors of generic shapes first used in this bundle (GenericEventDescriptor entries). */
  descriptors: ProtoBuf;
  /** By generic shape id − FIRST_GENERIC_ID: whether this CPU's bundles have carried its descriptor. */
  sent: boolean[];
  count: number;
}

/** Per-machine ftrace writer. */
export class MachineFtrace {
  /** Bundles by CPU (an array: looked up for every event). */
  private readonly cpus: (CpuBundle | undefined)[] = [];
  private readonly generic = new GenericEvents();
  /** Origin of relative timestamps (absolute ns), set at the first event; undefined: absolute only. */
  private origin: number | undefined;
  private originSet = false;

  constructor(
    private readonly out: PacketOut,
    readonly machineId: number,
    private readonly seq: number,
    private readonly layout: TaskStateLayout,
  ) {}

  /**
   * Adds event `r` of `blk` at absolute `ns` (a bigint past 2^53). Its body is read as bytes (a
   * block's bodies are ASCII bytes of the input unless held as text, then encoded as UTF-8).
   */
  add(ns: number | bigint, blk: EventBlock, r: number): void {
    const text = blk.bodyText?.[r];
    if (text === undefined) return this.addEvent(ns, blk.cpu[r], blk.pid[r], blk.name[r], blk.nameOf(r), text, blk.bytes, blk.bodyStart[r], blk.bodyEnd[r]);
    // A body held as text (one read as text before, or not ASCII) as UTF-8, in a reused buffer.
    if (text.length * 3 > this.textBytes.length) this.textBytes = Buffer.allocUnsafe(text.length * 3);
    const n = this.textBytes.write(text, 0, 'utf8');
    this.addEvent(ns, blk.cpu[r], blk.pid[r], blk.name[r], blk.nameOf(r), text, this.textBytes, 0, n);
  }
  private textBytes = Buffer.allocUnsafe(1024);

  /**
   * Adds one event named `name` (`nameId`: its id in its source's table) with body s[start, end)
   * (`text`: the same body as a string, when held so): its encoding copied from a recent event
   * of the same name and body, else made and kept.
   */
  private addEvent(ns: number | bigint, cpu: number, pid: number, nameId: number, name: string, text: string | undefined, s: Buffer, start: number, end: number): void {
    if (!this.originSet) {
      this.originSet = true;
      if (typeof ns === 'number' && ns > ORIGIN_MARGIN) this.origin = ns - ORIGIN_MARGIN;
    }
    let b = this.cpus[cpu];
    if (!b) this.cpus[cpu] = b = { rel: true, events: new ProtoBuf(BUNDLE_BYTES + 4096), descriptors: new ProtoBuf(1024), sent: [], count: 0 };
    const rel = this.origin !== undefined && typeof ns === 'number' && ns >= this.origin;
    if (b.count === 0) b.rel = rel;
    else if (b.rel && !rel) {
      this.flush(cpu, b);
      b.rel = false;
    }
    const pb = b.events;
    const mark = pb.begin(BUNDLE.event);
    if (b.rel) pb.uint(FTRACE_EVENT.timestamp, (ns as number) - this.origin!);
    else if (typeof ns === 'number') pb.uint(FTRACE_EVENT.timestamp, ns);
    else pb.big(FTRACE_EVENT.timestamp, ns);
    pb.uint(FTRACE_EVENT.pid, pid < 0 ? 0 : pid);
    const recent = this.recent;
    let shape: Shape | null | undefined;
    if (recent.worth(nameId)) {
      const pair = recent.pair(nameId, s, start, end);
      pb.ensure(FOUND_ROOM);
      const at = pb.len;
      shape = recent.find(pair, name, s, start, end, pb.view, at);
      recent.found(nameId, shape !== undefined);
      if (shape !== undefined) pb.len = at + recent.length;
      else {
        shape = this.encode(pb, nameId, name, text, s, start, end);
        recent.keep(pair, name, s, start, end, pb.buf, at, pb.len, shape);
      }
    } else shape = this.encode(pb, nameId, name, text, s, start, end);
    // Each CPU's stream carries the descriptors it uses (the importer keeps the first per id).
    if (shape !== null && !b.sent[shape.id - FIRST_GENERIC_ID]) {
      b.sent[shape.id - FIRST_GENERIC_ID] = true;
      const m = b.descriptors.begin(BUNDLE.genericEventDescriptors);
      b.descriptors.uint(GENERIC_DESCRIPTOR.fieldId, shape.id);
      b.descriptors.blob(GENERIC_DESCRIPTOR.eventDescriptor, shape.descriptor);
      b.descriptors.end(m);
    }
    pb.end(mark);
    b.count++;
    if (pb.len >= BUNDLE_BYTES) this.flush(cpu, b);
  }
  /** Encodings of recent bodies, and the generic shape each used (null: a typed message). */
  private readonly recent = new RecentBodies<Shape | null>();

  /** Writes the event's message (`nameId`: its name's id in its source's table): typed when its name has one and the body its fields, else generic. Returns the generic shape, or null. */
  private encode(pb: ProtoBuf, nameId: number, name: string, text: string | undefined, s: Buffer, start: number, end: number): Shape | null {
    if (this.typedName[nameId] !== name) {
      this.typedName[nameId] = name;
      this.typed[nameId] = hasTyped(name);
    }
    const typed = this.typed[nameId];
    // Typed writers read text: bodies held as bytes are ASCII (latin1 reads them as they are).
    if (typed && writeTyped(pb, name, text ?? s.toString('latin1', start, end), this.layout)) return null;
    return this.generic.write(pb, nameId, name, s, start, end);
  }
  /** By name id: whether the name (the one beside it) has a typed message. */
  private readonly typed: boolean[] = [];
  private readonly typedName: (string | undefined)[] = [];

  /** Writes out every bundle that holds events. */
  flushAll(): void {
    this.cpus.forEach((b, cpu) => b && b.count && this.flush(cpu, b));
  }

  private flush(cpu: number, b: CpuBundle): void {
    const pb = this.out.start(this.machineId, this.seq);
    const head = new ProtoBuf(32);
    head.uint(BUNDLE.cpu, cpu);
    if (b.rel) {
      head.uint(BUNDLE.ftraceClock, FTRACE_CLOCK_GLOBAL);
      head.uint(BUNDLE.ftraceTimestamp, 1);
      head.uint(BUNDLE.bootTimestamp, this.origin! + 1);
    }
    pb.tag(PACKET.ftraceEvents, LEN);
    pb.varint(head.len + b.events.len + b.descriptors.len);
    pb.raw(head.bytes());
    this.out.emitWith(b.events.bytes(), b.descriptors.bytes());
    b.events.reset();
    b.descriptors.reset();
    b.count = 0;
  }
}
