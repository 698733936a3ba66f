/**
 * Decodes a Perfetto trace written by kvmtrace with protobufjs, against the message subset in
 * test/data/perfetto-subset.proto (names and numbers from Perfetto's own protos), and resolves
 * what Perfetto's importer resolves: machines, bundle clocks, generic events through their
 * descriptors, interned names per sequence.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import protobuf from 'protobufjs';

const root = protobuf.loadSync(join(import.meta.dirname, '..', 'data', 'perfetto-subset.proto'));
const T = (n: string): protobuf.Type => root.lookupType(`perfetto.protos.${n}`);
const Trace = T('Trace');
const FtraceEvent = T('FtraceEvent');
const Descriptor = T('DescriptorProto');

/** One decoded ftrace event. */
export interface PfEvent {
  machine: number;
  cpu: number;
  /** Absolute ns (the bundle's clock resolved). */
  ts: bigint;
  pid: number;
  /** The typed message's field name (`sched_switch`, …), or the generic event's name. */
  name: string;
  generic: boolean;
  fields: Record<string, unknown>;
}

/** One decoded TrackEvent. */
export interface PfTrackEvent {
  seq: number;
  ts: bigint;
  type: number;
  uuid: number;
  name: string | undefined;
  args: Record<string, unknown>;
  flowIds: bigint[];
  terminating: bigint[];
}

/** A decoded trace. */
export interface Pf {
  bytes: number;
  machines: Map<number, { name: string; release?: string; cpus?: number }>;
  events: PfEvent[];
  /** Per machine: tid → {name, tgid} from ProcessTree packets. */
  threads: Map<number, Map<number, { name: string; tgid: number }>>;
  bundles: { machine: number; cpu: number; events: number; relative: boolean }[];
  tracks: Map<number, { name?: string; parent?: number; tid?: number; pid?: number; threadName?: string }>;
  trackEvents: PfTrackEvent[];
  attributes: Map<string, string | number>;
  /** Problems found while decoding (unknown iids, generic ids without descriptor, …). */
  problems: string[];
}

const big = (v: unknown): bigint => (v === undefined || v === null ? 0n : BigInt(String(v)));

/** Decodes the file at `path`. */
export function readPftrace(path: string): Pf {
  const buf = readFileSync(path);
  const trace = Trace.toObject(Trace.decode(buf), { longs: String, bytes: Buffer }) as { packet: Record<string, any>[] };
  const pf: Pf = { bytes: buf.length, machines: new Map(), events: [], threads: new Map(), bundles: [], tracks: new Map(), trackEvents: [], attributes: new Map(), problems: [] };
  const descriptors = new Map<number, Map<number, { name: string; fields: Map<number, { name: string; type: number }> }>>();
  const interned = new Map<number, { names: Map<number, string>; ann: Map<number, string> }>();
  for (const p of trace.packet) {
    const machine = Number(p.machineId ?? 0);
    const seq = Number(p.trustedPacketSequenceId ?? 0);
    if (p.systemInfo) pf.machines.set(machine, { name: p.systemInfo.machineName, release: p.systemInfo.utsname?.release, cpus: p.systemInfo.numCpus });
    if (p.processTree) {
      const m = pf.threads.get(machine) ?? new Map();
      for (const t of p.processTree.threads ?? []) m.set(t.tid, { name: t.name, tgid: t.tgid });
      pf.threads.set(machine, m);
    }
    if (p.traceAttributes) for (const a of p.traceAttributes.attribute ?? []) pf.attributes.set(a.key, a.stringValue ?? Number(a.longValue));
    if (p.trackDescriptor) {
      const d = p.trackDescriptor;
      pf.tracks.set(Number(d.uuid), {
        name: d.name,
        parent: d.parentUuid !== undefined ? Number(d.parentUuid) : undefined,
        tid: d.thread ? Number(d.thread.tid) : undefined,
        pid: d.thread?.pid,
        threadName: d.thread?.threadName,
      });
    }
    if ((Number(p.sequenceFlags ?? 0) & 1) !== 0) interned.set(seq, { names: new Map(), ann: new Map() });
    if (p.internedData) {
      const st = interned.get(seq);
      if (!st) pf.problems.push(`interned data on sequence ${seq} before its state was cleared`);
      for (const e of p.internedData.eventNames ?? []) st?.names.set(Number(e.iid), e.name);
      for (const e of p.internedData.debugAnnotationNames ?? []) st?.ann.set(Number(e.iid), e.name);
    }
    if (p.trackEvent) {
      const e = p.trackEvent;
      const st = interned.get(seq);
      let name: string | undefined = e.name;
      if (e.nameIid !== undefined) {
        name = st?.names.get(Number(e.nameIid));
        if (name === undefined) pf.problems.push(`event name iid ${e.nameIid} not interned on sequence ${seq}`);
      }
      const args: Record<string, unknown> = {};
      for (const a of e.debugAnnotations ?? []) {
        const k = a.name ?? st?.ann.get(Number(a.nameIid));
        if (k === undefined) pf.problems.push(`annotation name iid ${a.nameIid} not interned`);
        args[k ?? '?'] = a.stringValue ?? (a.intValue !== undefined ? Number(a.intValue) : Number(a.uintValue));
      }
      pf.trackEvents.push({
        seq,
        ts: big(p.timestamp),
        type: e.type,
        uuid: Number(e.trackUuid),
        name,
        args,
        flowIds: (e.flowIds ?? []).map(big),
        terminating: (e.terminatingFlowIds ?? []).map(big),
      });
    }
    if (p.ftraceEvents) decodeBundle(pf, machine, p.ftraceEvents, descriptors);
  }
  return pf;
}

function decodeBundle(pf: Pf, machine: number, b: Record<string, any>, descriptors: Map<number, Map<number, { name: string; fields: Map<number, { name: string; type: number }> }>>): void {
  const byId = descriptors.get(machine) ?? new Map();
  descriptors.set(machine, byId);
  for (const d of b.genericEventDescriptors ?? []) {
    const desc = Descriptor.toObject(Descriptor.decode(d.eventDescriptor)) as { name: string; field?: { name: string; number: number; type: number }[] };
    const prev = byId.get(d.fieldId);
    const fields = new Map((desc.field ?? []).map((f) => [f.number, { name: f.name, type: f.type }]));
    if (prev && JSON.stringify([...prev.fields]) !== JSON.stringify([...fields])) pf.problems.push(`generic id ${d.fieldId} described twice, differently`);
    byId.set(d.fieldId, { name: desc.name, fields });
  }
  const relative = Number(b.ftraceClock ?? 0) === 2;
  const shift = relative ? big(b.bootTimestamp) - big(b.ftraceTimestamp) : 0n;
  const events: Buffer[] = b.event ?? [];
  pf.bundles.push({ machine, cpu: b.cpu, events: events.length, relative });
  for (const raw of events) {
    const r = protobuf.Reader.create(raw);
    let ts = 0n;
    let pid = 0;
    let id = 0;
    let body: Uint8Array | undefined;
    while (r.pos < r.len) {
      const tag = r.uint32();
      const f = tag >>> 3;
      if (f === 1) ts = big(r.uint64().toString());
      else if (f === 2) pid = r.uint32();
      else if ((tag & 7) === 2) {
        id = f;
        body = r.bytes();
      } else r.skipType(tag & 7);
    }
    const ev: PfEvent = { machine, cpu: b.cpu, ts: ts + shift, pid, name: '', generic: id >= 65536, fields: {} };
    if (id >= 65536) {
      const d = byId.get(id);
      if (!d) pf.problems.push(`generic event id ${id} on machine ${machine} has no descriptor (yet)`);
      ev.name = d?.name ?? `?${id}`;
      ev.fields = decodeGeneric(body!, d?.fields ?? new Map(), pf);
    } else {
      const o = FtraceEvent.toObject(FtraceEvent.decode(raw), { longs: String }) as Record<string, unknown>;
      const key = Object.keys(o).find((k) => k !== 'timestamp' && k !== 'pid');
      if (!key) pf.problems.push(`ftrace event with unknown id ${id}`);
      ev.name = key ? key.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase()) : `?${id}`;
      ev.fields = (key ? o[key] : {}) as Record<string, unknown>;
    }
    pf.events.push(ev);
  }
}

/** Decodes a generic event's fields by its descriptor (types: 3 int64, 4 uint64, 6 fixed64, 9 string). */
function decodeGeneric(body: Uint8Array, fields: Map<number, { name: string; type: number }>, pf: Pf): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const r = protobuf.Reader.create(body);
  while (r.pos < r.len) {
    const tag = r.uint32();
    const f = fields.get(tag >>> 3);
    if (!f) {
      pf.problems.push(`generic field ${tag >>> 3} not in its descriptor`);
      r.skipType(tag & 7);
      continue;
    }
    if (f.type === 9) out[f.name] = r.string();
    else if (f.type === 3) out[f.name] = big(r.int64().toString());
    else if (f.type === 4) out[f.name] = big(r.uint64().toString());
    else if (f.type === 6) out[f.name] = big(r.fixed64().toString()) & ((1n << 64n) - 1n);
    else pf.problems.push(`generic field type ${f.type}`);
  }
  return out;
}
