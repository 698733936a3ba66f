/**
 * Events as columns: a block of trace events held in typed arrays, with names and tasks as ids into
 * a table the source's blocks share, and bodies as byte ranges of the chunk they were read from.
 *
 * The merge and the exporters read blocks column by column, so a gigabyte of text becomes numbers
 * and byte copies rather than an object and a string per event. {@link EventBlock.event} builds the
 * {@link TraceEvent} of one row for code that wants objects (analyses, the scan of the host).
 */
import type { TraceEvent } from './event.js';
import { TYPED_EVENTS, type KvmFields } from './kvm-fields.js';

/**
 * The strings a source's blocks refer to by id (task names, event names, irq-info flags). It
 * grows with the distinct strings of a trace, not with its events.
 */
export class StringTable {
  /** The strings, by id. */
  readonly list: string[] = [];
  private readonly ids = new Map<string, number>();
  /** By id: the typed-fields kind of an event of that name (model/kvm-fields.ts), null for none; filled on first ask. */
  private readonly kinds: (KvmFields['kind'] | null)[] = [];

  /** The kind of typed fields events named by string `id` carry, undefined when they carry none (cached: one array read). */
  typedKind(id: number): KvmFields['kind'] | undefined {
    let k = this.kinds[id];
    if (k === undefined) k = this.kinds[id] = TYPED_EVENTS.get(this.list[id]) ?? null;
    return k ?? undefined;
  }

  /** The id of `s`, added when new. */
  id(s: string): number {
    let i = this.ids.get(s);
    if (i === undefined) {
      i = this.list.length;
      this.list.push(s);
      this.ids.set(s, i);
    }
    return i;
  }
}

const FIRST_CAPACITY = 1024;

/**
 * Up to `capacity` events in columns. Rows 0..n-1 are filled; {@link row} grows the columns.
 * A row's body is `bytes[bodyStart, bodyEnd)` (ASCII), or `bodyText[row]` when that is set (text
 * that is not ASCII, bodies assembled from several lines, events that came as objects, or a body
 * already read as text by {@link body}).
 */
export class EventBlock {
  n = 0;
  /** Timestamp relative to the source's base, in the source clock's unit (see TraceEvent.ts). */
  ts!: Float64Array;
  cpu!: Int32Array;
  pid!: Int32Array;
  /** Thread-group id, -1 when the trace has none. */
  tgid!: Int32Array;
  /** Ids in `table`: task name, event name, irq-info flags ('' when none). */
  comm!: Int32Array;
  name!: Int32Array;
  flags!: Int32Array;
  /** 1-based line for text, byte offset for binary. */
  line!: Float64Array;
  bodyStart!: Int32Array;
  bodyEnd!: Int32Array;
  /** Bodies held as text, by row (sparse); undefined until one is. */
  bodyText: (string | undefined)[] | undefined;
  /** Typed fields by row (sparse; null: none), when decoded at import (trace.dat); see parsers/event-fields.ts fieldsOf. */
  typed: (KvmFields | null | undefined)[] | undefined;
  /** The objects a block was made from ({@link fromEvents}), returned as they are by {@link event}. */
  private objects: TraceEvent[] | undefined;

  constructor(
    /** The table the id columns refer to (one per source). */
    readonly table: StringTable,
    /** The bytes the body ranges refer to (a chunk of the file, never written after). */
    readonly bytes: Buffer,
    capacity = FIRST_CAPACITY,
  ) {
    const cols = this as Columns;
    for (const k of COLUMN_NAMES) cols[k] = new COLUMNS[k](capacity) as never;
  }

  /** A block holding `events` (bodies as text), keeping the objects for {@link event}. */
  static fromEvents(events: TraceEvent[], table: StringTable): EventBlock {
    const b = new EventBlock(table, EMPTY, Math.max(1, events.length));
    b.bodyText = new Array<string | undefined>(events.length);
    for (const ev of events) {
      const r = b.row(ev.ts, ev.cpu, ev.pid, ev.tgid, table.id(ev.comm), table.id(ev.name), table.id(ev.flags), ev.line);
      b.bodyText[r] = ev.body;
      if (ev.typed !== undefined) (b.typed ??= [])[r] = ev.typed;
    }
    b.objects = events;
    return b;
  }

  /** The block's rows as parts another thread can rebuild it from; the column buffers go with {@link transfer}. */
  parts(): BlockParts {
    const cols = Object.fromEntries(COLUMN_NAMES.map((k) => [k, this[k]])) as Columns;
    return { ...cols, n: this.n, bytes: this.bytes, bodyText: this.bodyText };
  }

  /** The buffers of {@link parts}, to transfer (each column and the bytes own theirs). */
  static transfer(p: BlockParts): ArrayBuffer[] {
    const bufs = [...COLUMN_NAMES.map((k) => p[k].buffer), p.bytes.buffer] as ArrayBuffer[];
    return [...new Set(bufs)].filter((b) => b.byteLength > 0);
  }

  /** A block rebuilt from {@link parts} (its ids refer to `table`). */
  static fromParts(p: BlockParts, table: StringTable): EventBlock {
    const b = new EventBlock(table, Buffer.from(p.bytes.buffer, p.bytes.byteOffset, p.bytes.byteLength), 0);
    for (const k of COLUMN_NAMES) (b as Columns)[k] = p[k] as never;
    b.n = p.n;
    b.bodyText = p.bodyText;
    return b;
  }

  /** Appends a row without its body (set `bodyStart`/`bodyEnd` or {@link setBodyText}); returns its index. */
  row(ts: number, cpu: number, pid: number, tgid: number, comm: number, name: number, flags: number, line: number): number {
    const r = this.n;
    if (r === this.ts.length) this.grow();
    this.ts[r] = ts;
    this.cpu[r] = cpu;
    this.pid[r] = pid;
    this.tgid[r] = tgid;
    this.comm[r] = comm;
    this.name[r] = name;
    this.flags[r] = flags;
    this.line[r] = line;
    this.n = r + 1;
    return r;
  }

  /** Gives row `r` a body held as text. */
  setBodyText(r: number, text: string): void {
    (this.bodyText ??= [])[r] = text;
  }

  /**
   * Row `r`'s body as text. A body read as text is kept: the events whose fields are read (kvm_*,
   * sched_switch) are read by the validator and again by the exporter.
   */
  body(r: number): string {
    let t = this.bodyText?.[r];
    if (t === undefined) this.setBodyText(r, (t = this.bytes.toString('latin1', this.bodyStart[r], this.bodyEnd[r])));
    return t;
  }

  /** Row `r`'s event name. */
  nameOf(r: number): string {
    return this.table.list[this.name[r]];
  }

  /** Row `r`'s task name. */
  commOf(r: number): string {
    return this.table.list[this.comm[r]];
  }

  /** Row `r` as an event object. */
  event(r: number): TraceEvent {
    if (this.objects) return this.objects[r];
    const l = this.table.list;
    return {
      ts: this.ts[r],
      cpu: this.cpu[r],
      comm: l[this.comm[r]],
      pid: this.pid[r],
      tgid: this.tgid[r],
      flags: l[this.flags[r]],
      name: l[this.name[r]],
      // Not kept as text: objects are made once, and would hold the block's text twice.
      body: this.bodyText?.[r] ?? this.bytes.toString('latin1', this.bodyStart[r], this.bodyEnd[r]),
      line: this.line[r],
      ...(this.typed?.[r] !== undefined ? { typed: this.typed[r] } : {}),
    };
  }

  /** Every row as event objects. */
  events(): TraceEvent[] {
    if (this.objects) return this.objects;
    const out = new Array<TraceEvent>(this.n);
    for (let r = 0; r < this.n; r++) out[r] = this.event(r);
    return out;
  }

  private grow(): void {
    const cols = this as Columns;
    for (const k of COLUMN_NAMES) {
      const a = new COLUMNS[k](Math.max(16, cols[k].length * 2));
      a.set(cols[k]);
      cols[k] = a as never;
    }
  }
}

const EMPTY = Buffer.alloc(0);

/** The typed-array columns of a block, by name, with the array type of each. */
const COLUMNS = {
  ts: Float64Array,
  cpu: Int32Array,
  pid: Int32Array,
  tgid: Int32Array,
  comm: Int32Array,
  name: Int32Array,
  flags: Int32Array,
  line: Float64Array,
  bodyStart: Int32Array,
  bodyEnd: Int32Array,
} as const;
const COLUMN_NAMES = Object.keys(COLUMNS) as (keyof typeof COLUMNS)[];
type Columns = Pick<EventBlock, keyof typeof COLUMNS>;

/** A block's columns as plain data (see {@link EventBlock.parts}). */
export type BlockParts = Columns & Pick<EventBlock, 'n' | 'bodyText'> & { bytes: Uint8Array };
