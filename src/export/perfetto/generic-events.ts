/**
 * Events with no typed Perfetto message, written as self-described ("generic") ftrace events:
 * Perfetto v50+ reads FtraceEvent field ids from 65536 on through a DescriptorProto sent in the
 * bundle (FtraceEventBundle.generic_event_descriptors), whose fields are typed (int64, uint64,
 * string). Its importer puts each field in `args` under its name. A descriptor, once sent, holds
 * for the whole trace of its machine, so an event whose fields differ from every shape sent so far
 * (a field more, or a number where text was) gets a new shape with a new id.
 */
import { bodyFields, typedValue, type TypedValue } from '../../parsers/body-fields.js';
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
interface Shape {
  id: number;
  fields: Map<string, ShapeField>;
  descriptor: Uint8Array;
}

const WIDE = 2n ** 56n;

/** The wire type for a new field first seen with value `v`. */
function typeFor(v: TypedValue): number {
  if (v.kind === 'str') return TYPE_STRING;
  if (v.kind === 'int') return TYPE_INT64;
  return typeof v.value === 'bigint' && v.value >= WIDE ? TYPE_FIXED64 : TYPE_UINT64;
}

/** At most this many shapes per event name; past it, the event's whole text is one string field. */
const MAX_SHAPES = 32;

/** The generic events of one machine: shapes by event name. */
export class GenericEvents {
  private readonly shapes = new Map<string, Shape[]>();
  private nextId = FIRST_GENERIC_ID;
  private readonly scratch = new ProtoBuf(256);

  /**
   * Writes event `name`'s fields (read from `body`) as its generic message into `pb`. Returns its
   * shape's FtraceEvent id and descriptor (which the bundle must carry unless already sent).
   */
  write(pb: ProtoBuf, name: string, body: string): { id: number; descriptor: Uint8Array } {
    let values = bodyFields(body).map((f) => ({ name: f.name, v: typedValue(f.text) }));
    let shape = this.find(name, values);
    if (!shape) {
      const list = this.shapes.get(name) ?? [];
      if (list.length >= MAX_SHAPES) {
        values = [{ name: 'text', v: { kind: 'str', value: body.trim() } }];
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
    return shape;
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
