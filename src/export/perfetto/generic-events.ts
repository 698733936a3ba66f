/**
 * Events with no typed Perfetto message, written as self-described ("generic") ftrace events:
 * Perfetto v50+ reads FtraceEvent field ids from 65536 on through a DescriptorProto sent in the
 * bundle (FtraceEventBundle.generic_event_descriptors), whose fields are typed (int64, uint64,
 * string). Its importer puts each field in `args` under its name. A descriptor, once sent, holds
 * for the whole trace of its machine, so an event whose fields differ from every shape sent so far
 * (a field more, or a number where text was) gets a new shape with a new id.
 */
import { FieldSpans, fieldsOf, readSpan, scanFields, SpanRead, spanValue, typedValue, type TypedValue } from '../../parsers/body-fields.js';
import { DESCRIPTOR, FIELD_DESCRIPTOR, FIRST_GENERIC_ID, LABEL_OPTIONAL, TYPE_FIXED64, TYPE_INT64, TYPE_STRING, TYPE_UINT64 } from './fields.js';
import { ProtoBuf } from './proto-writer.js';

/** A shape's field: its number, kind, and wire type. */
interface ShapeField {
  num: number;
  kind: TypedValue['kind'];
  /** Unsigned fields first seen with a value ≥ 2^56 (kernel addresses) are fixed64: 8 bytes, not a 10-byte varint. */
  type: number;
}

/** One field layout of an event: its FtraceEvent id, field numbers by name, and its descriptor. */
export interface Shape {
  id: number;
  fields: Map<string, ShapeField>;
  descriptor: Uint8Array;
}

const WIDE = 2n ** 56n;

/** True when s[a, z) holds the bytes of `k`. */
function sameBytes(k: Uint8Array, s: Uint8Array, a: number, z: number): boolean {
  if (z - a !== k.length) return false;
  for (let i = 0; i < k.length; i++) if (s[a + i] !== k[i]) return false;
  return true;
}

/** The wire type for a new field first seen with value `v`. */
function typeFor(v: TypedValue): number {
  if (v.kind === 'str') return TYPE_STRING;
  if (v.kind === 'int') return TYPE_INT64;
  return typeof v.value === 'bigint' && v.value >= WIDE ? TYPE_FIXED64 : TYPE_UINT64;
}

/** Layouts kept per event name for the fast path. */
const MAX_LAYOUTS = 4;

/** At most this many shapes per event name; past it, the event's whole text is one string field. */
const MAX_SHAPES = 32;

/** The field order of the last event of a name, to write the next one with no string made. */
interface Layout {
  shape: Shape;
  /** The event had text outside its keys (written as field `text`, first). */
  lead: boolean;
  /** The keys in order (after the lead) as bytes, and their shape fields. */
  keys: Uint8Array[];
  fields: ShapeField[];
}

/** The generic events of one machine: shapes by event name. */
export class GenericEvents {
  private readonly shapes = new Map<string, Shape[]>();
  /** The latest layouts of each name, most recent first (events of one name often alternate between a few). */
  private readonly layouts = new Map<string, Layout[]>();
  private nextId = FIRST_GENERIC_ID;
  private readonly scratch = new ProtoBuf(256);
  private readonly sp = new FieldSpans();

  /**
   * Writes event `name`'s fields (read from its printed body, bytes s[start, end)) as its generic
   * message into `pb`: by a layout of its name when one fits, else the slow way. Returns its
   * shape (whose descriptor the bundle must carry unless already sent).
   */
  write(pb: ProtoBuf, nameId: number, name: string, s: Uint8Array, start: number, end: number): Shape {
    const sp = this.sp;
    scanFields(s, start, end, sp);
    const ls = this.layoutsOf(nameId, name);
    for (let i = 0; i < ls.length; i++) if (this.writeLike(pb, ls[i], s)) return ls[i].shape;
    return this.writeNew(pb, name, s, start, end);
  }

  /** The layouts of event `name`, found by `nameId` (its id in its source's table) when the name there is the same. */
  private layoutsOf(nameId: number, name: string): Layout[] {
    const e = this.byId[nameId];
    if (e !== undefined && e.name === name) return e.layouts;
    let ls = this.layouts.get(name);
    if (!ls) this.layouts.set(name, (ls = []));
    this.byId[nameId] = { name, layouts: ls };
    return ls;
  }
  /** By name id: the name and its layouts (ids of two sources' tables may name different events: the name decides). */
  private readonly byId: ({ name: string; layouts: Layout[] } | undefined)[] = [];

  /**
   * The fast path: when the body has the keys of the last event of its name, in order, with values
   * of the same kinds, writes it straight from the text. False (and `pb` as it was) otherwise.
   */
  private writeLike(pb: ProtoBuf, l: Layout, s: Uint8Array): boolean {
    const sp = this.sp;
    const lead = sp.leadEnd > sp.leadStart;
    if (sp.overflow || lead !== l.lead || sp.n !== l.keys.length) return false;
    const start = pb.len;
    const mark = pb.begin(l.shape.id);
    let j = 0;
    if (lead && !this.value(pb, l.fields[j++], s, sp.leadStart, sp.leadEnd)) return (pb.len = start), false;
    for (let i = 0; i < sp.n; i++, j++) {
      if (!sameBytes(l.keys[i], s, sp.ks[i], sp.ke[i]) || !this.value(pb, l.fields[j], s, sp.vs[i], sp.ve[i])) return (pb.len = start), false;
    }
    pb.end(mark);
    return true;
  }

  /** Writes s[a, z) as field `f` when its kind is the field's; false otherwise. */
  private value(pb: ProtoBuf, f: ShapeField, s: Uint8Array, a: number, z: number): boolean {
    const { kind, num } = readSpan(s, a, z, this.span);
    if (kind !== f.kind) return false;
    if (kind === 'str') pb.bytesRange(f.num, s, a, z);
    else if (!Number.isNaN(num)) {
      // A safe integer, read in the same pass.
      if (kind === 'int') pb.int(f.num, num);
      else if (f.type === TYPE_FIXED64) pb.fixed64(f.num, num);
      else pb.uint(f.num, num);
    } else if (kind === 'uint' && s[a + 1] === 120 && f.type === TYPE_FIXED64) pb.fixed64Hex(f.num, s, a + 2, z);
    else {
      const v = spanValue(s, a, z).value as number | bigint;
      if (f.type === TYPE_FIXED64) pb.fixed64Any(f.num, v);
      else if (typeof v === 'bigint') pb.big(f.num, v);
      else if (kind === 'int') pb.int(f.num, v);
      else pb.uint(f.num, v);
    }
    return true;
  }
  private readonly span = new SpanRead();

  /** The slow path: fields as strings, the shape found or made, and the layout kept for the next event. */
  private writeNew(pb: ProtoBuf, name: string, s: Uint8Array, start: number, end: number): Shape {
    const sp = this.sp;
    let values = fieldsOf(s, sp).map((f) => ({ name: f.name, v: typedValue(f.text) }));
    let shape = this.find(name, values);
    if (!shape) {
      const list = this.shapes.get(name) ?? [];
      if (list.length >= MAX_SHAPES) {
        values = [{ name: 'text', v: { kind: 'str', value: Buffer.from(s.buffer, s.byteOffset + start, end - start).toString('utf8').trim() } }];
        shape = this.find(name, values) ?? this.add(name, values, undefined);
      } else shape = this.add(name, values, list[list.length - 1]);
    }
    const mark = pb.begin(shape.id);
    for (const { name: n, v } of values) {
      const sf = shape.fields.get(n)!;
      const f = sf.num;
      if (v.kind === 'str') pb.string(f, v.value);
      else if (sf.type === TYPE_FIXED64) pb.fixed64Any(f, v.value);
      else if (typeof v.value === 'bigint') pb.big(f, v.value);
      else if (v.kind === 'int') pb.int(f, v.value);
      else pb.uint(f, v.value);
    }
    pb.end(mark);
    this.keepLayout(name, s, shape, values);
    return shape;
  }

  /** Keeps the field order of this event for the fast path, when its names are its keys as printed. */
  private keepLayout(name: string, s: Uint8Array, shape: Shape, values: { name: string }[]): void {
    const sp = this.sp;
    const lead = sp.leadEnd > sp.leadStart;
    const keys: Uint8Array[] = [];
    for (let i = 0; i < sp.n; i++) keys.push(Uint8Array.from(s.subarray(sp.ks[i], sp.ke[i])));
    const names = lead ? ['text', ...keys.map((k) => Buffer.from(k).toString('utf8'))] : keys.map((k) => Buffer.from(k).toString('utf8'));
    if (sp.overflow || names.length !== values.length || names.some((n, i) => n !== values[i].name)) return;
    let ls = this.layouts.get(name);
    if (!ls) this.layouts.set(name, (ls = []));
    ls.unshift({ shape, lead, keys, fields: names.map((n) => shape.fields.get(n)!) });
    if (ls.length > MAX_LAYOUTS) ls.pop();
  }

  /** The latest shape of `name` that holds every field with its kind. */
  private find(name: string, values: { name: string; v: TypedValue }[]): Shape | undefined {
    const list = this.shapes.get(name);
    if (!list) return undefined;
    for (let i = list.length - 1; i >= 0; i--) {
      const s = list[i];
      if (values.every(({ name: n, v }) => s.fields.get(n)?.kind === v.kind)) return s;
    }
    return undefined;
  }

  /** A new shape: the previous one's fields (when they agree) plus this event's. */
  private add(name: string, values: { name: string; v: TypedValue }[], prev: Shape | undefined): Shape {
    const fields = new Map<string, ShapeField>();
    const own = new Map(values.map(({ name: n, v }) => [n, v]));
    const agrees = prev && [...prev.fields].every(([n, f]) => own.get(n) === undefined || own.get(n)!.kind === f.kind);
    if (prev && agrees && new Set([...prev.fields.keys(), ...own.keys()]).size <= 31)
      for (const [n, f] of prev.fields) fields.set(n, f);
    for (const [n, v] of own) if (!fields.has(n)) fields.set(n, { num: fields.size + 1, kind: v.kind, type: typeFor(v) });
    const shape: Shape = { id: this.nextId++, fields, descriptor: this.descriptor(name, fields) };
    const list = this.shapes.get(name) ?? [];
    list.push(shape);
    this.shapes.set(name, list);
    return shape;
  }

  /** The serialised DescriptorProto of a shape. */
  private descriptor(name: string, fields: Shape['fields']): Uint8Array {
    const d = this.scratch;
    d.reset();
    d.string(DESCRIPTOR.name, name);
    for (const [n, f] of fields) {
      const m = d.begin(DESCRIPTOR.field);
      d.string(FIELD_DESCRIPTOR.name, n);
      d.uint(FIELD_DESCRIPTOR.number, f.num);
      d.uint(FIELD_DESCRIPTOR.label, LABEL_OPTIONAL);
      d.uint(FIELD_DESCRIPTOR.type, f.type);
      d.end(m);
    }
    return Uint8Array.from(d.bytes());
  }
}
