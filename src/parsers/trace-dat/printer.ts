/**
 * Turns trace.dat event records into the text `trace-cmd report` prints for them: the event
 * name, the comm of the pid, and the body (plugin, print fmt, or raw `name=value` fields), with
 * the comm registrations the sched plugin makes along the way.
 */
import type { EventFormat } from './format.js';
import type { TraceDat } from './open.js';
import { PLUGINS, type Plugin, type PluginCtx } from './plugins.js';
import type { Out } from './out.js';
import { compileBytes } from './printfmt-bytes.js';
import { parsePrintFmt, type PrintFmt } from './printfmt-parse.js';
import { readU, type Rec, type RenderEnv } from './printfmt-eval.js';
import { prettyRenderer, renderPretty, renderRaw } from './printfmt-render.js';

/** What the printer knows about one event id. */
interface Compiled {
  ev: EventFormat;
  pf: PrintFmt;
  plugin?: Plugin;
  /** The print fmt compiled (trailing newline dropped). */
  pretty: (r: Rec) => string;
  /** The print fmt compiled to a byte writer (made on first use). */
  bytes?: (out: Out, r: Rec) => void;
}

/** Raw field values of one record, decoded generically from the event's format. */
export type FieldValues = Record<string, bigint | string | number[]>;

/** Prints records of one trace.dat file. */
export class EventPrinter {
  readonly env: RenderEnv;
  private compiled = new Map<number, Compiled>();
  /** pid → comm: the file's saved cmdlines plus what plugins registered. */
  readonly comms: Map<number, string>;
  private typeOff = 0;
  private typeSize = 2;
  private pidOff = 4;
  private pidSize = 4;
  private rec: Rec = { buf: Buffer.alloc(0), pos: 0, len: 0, pageEnd: 0 };
  /** Called when a plugin registers a comm for a pid that had none. */
  onRegister?: (pid: number) => void;
  private ctx: PluginCtx;

  constructor(readonly t: TraceDat) {
    this.env = { le: t.littleEndian, longSize: t.longSize, kallsyms: t.kallsyms, printk: t.printk, notString: new Set() };
    this.comms = new Map(t.cmdlines);
    const any = t.events.values().next().value as EventFormat | undefined;
    const ct = any?.byName.get('common_type');
    const cp = any?.byName.get('common_pid');
    if (ct) {
      this.typeOff = ct.offset;
      this.typeSize = ct.size;
    }
    if (cp) {
      this.pidOff = cp.offset;
      this.pidSize = cp.size;
    }
    this.ctx = {
      env: this.env,
      ev: any as EventFormat,
      r: this.rec,
      registerComm: (pid, comm) => {
        if (pid !== 0 && !this.comms.has(pid)) {
          this.comms.set(pid, comm);
          this.onRegister?.(pid);
        }
      },
    };
  }

  /** The record the printer is at. */
  get record(): Rec {
    return this.rec;
  }

  /** A plugin context at the current record for event id `id` (to read fields as plugins do). */
  pluginCtx(id: number): PluginCtx | undefined {
    const c = this.compile(id);
    if (!c) return undefined;
    this.ctx.ev = c.ev;
    return this.ctx;
  }

  /** The parsed print fmt of an event id. */
  printFmt(id: number): PrintFmt | undefined {
    return this.compile(id)?.pf;
  }

  /** Points the printer at a record (the bytes stay owned by the caller) in a page ending at `pageEnd`. */
  at(buf: Buffer, pos: number, len: number, pageEnd = pos + len): void {
    this.rec.buf = buf;
    this.rec.pos = pos;
    this.rec.len = len;
    this.rec.pageEnd = pageEnd;
  }

  /** Event id of the current record. */
  type(): number {
    const r = this.rec;
    if (this.typeSize === 2 && this.typeOff + 2 <= r.len) {
      // From the bytes (the record lies inside its buffer): cheaper than readUInt16LE's checks.
      const b = r.buf;
      const at = r.pos + this.typeOff;
      return this.env.le ? b[at] | (b[at + 1] << 8) : (b[at] << 8) | b[at + 1];
    }
    return Number(readU(this.env, r, this.typeOff, this.typeSize));
  }

  /** common_pid of the current record. */
  pid(): number {
    const r = this.rec;
    if (this.pidSize === 4 && this.pidOff + 4 <= r.len) {
      const b = r.buf;
      const at = r.pos + this.pidOff;
      return this.env.le
        ? b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)
        : (b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3];
    }
    return Number(BigInt.asIntN(this.pidSize * 8, readU(this.env, r, this.pidOff, this.pidSize)));
  }

  /** The comm trace-cmd prints for a pid (`<idle>` for 0, `<...>` when unknown). */
  comm(pid: number): string {
    if (pid === 0) return '<idle>';
    return this.comms.get(pid) ?? '<...>';
  }

  /** The compiled description of an event id, undefined for ids the file has no format for. */
  event(id: number): EventFormat | undefined {
    return this.compile(id)?.ev;
  }

  private compile(id: number): Compiled | undefined {
    let c = this.compiled.get(id);
    if (c) return c;
    const ev = this.t.events.get(id);
    if (!ev) return undefined;
    const pf = parsePrintFmt(ev, this.t.longSize);
    c = { ev, pf, plugin: PLUGINS.get(`${ev.system}:${ev.name}`), pretty: prettyRenderer(this.env, pf) };
    this.compiled.set(id, c);
    return c;
  }

  /**
   * The body of the current record as `trace-cmd report` prints it after the name column
   * (`raw` = `-R`); one trailing newline is removed like trace-cmd does.
   */
  body(id: number, raw: boolean): string {
    const c = this.compile(id);
    if (!c) return '[UNKNOWN EVENT]';
    if (!raw && !c.plugin && !c.pf.failed) return c.pretty(this.rec);
    let s: string;
    if (raw) s = renderRaw(this.env, this.rec, c.ev.eventFields, c.pf);
    else if (c.pf.failed && !c.plugin) s = '[FAILED TO PARSE]' + renderRaw(this.env, this.rec, c.ev.eventFields, undefined);
    else {
      s = '';
      let pretty = true;
      if (c.plugin) {
        this.ctx.ev = c.ev;
        const out = c.plugin(this.ctx);
        s = out.text;
        pretty = out.pretty;
      }
      if (pretty)
        s += c.pf.failed
          ? '[FAILED TO PARSE]' + renderRaw(this.env, this.rec, c.ev.eventFields, undefined)
          : renderPretty(this.env, this.rec, c.pf);
    }
    if (s.endsWith('\n')) s = s.slice(0, -1);
    return s;
  }

  /** Per event id: its byte writer, or null when the body goes through the text path. */
  private readonly writers: (((out: Out, r: Rec) => void) | null | undefined)[] = [];

  /**
   * Writes the body of the current record (as {@link body} gives it) into `out` as bytes: through
   * the id's byte writer (looked up once per id), dropping one trailing newline as trace-cmd does.
   */
  bodyTo(out: Out, id: number, raw: boolean): void {
    const w = raw ? null : (this.writers[id] ??= this.byteWriter(id) ?? null);
    if (w) {
      const start = out.pos;
      w(out, this.rec);
      if (out.pos > start && out.buf[out.pos - 1] === 10) out.pos--;
      return;
    }
    out.str(this.body(id, raw));
  }

  /**
   * The byte writer of an event id's pretty body when it has one (a parsed print fmt and no
   * plugin), else undefined. It writes what {@link body} gives, except that it keeps a trailing
   * newline; call it with {@link rec} after {@link at}.
   */
  byteWriter(id: number): ((out: Out, r: Rec) => void) | undefined {
    const c = this.compile(id);
    if (!c || c.plugin || c.pf.failed) return undefined;
    return (c.bytes ??= compileBytes(this.env, c.pf));
  }

  /** The current record's field values, decoded generically from the event format. */
  fields(id: number): FieldValues | undefined {
    const c = this.compile(id);
    if (!c) return undefined;
    const out: FieldValues = {};
    const r = this.rec;
    for (const f of c.ev.fields) {
      if (f.isArray) {
        let off = f.offset;
        // A fixed array of size 0 (`char buf[]`) is the rest of the record.
        let len = f.size || Math.max(0, r.len - f.offset);
        if (f.isDynamic) {
          const v = Number(readU(this.env, r, f.offset, f.size));
          off = (v & 0xffff) + (f.isRelative ? f.offset + f.size : 0);
          len = f.size === 2 ? r.len - off : (v >>> 16) & 0xffff;
          if (off + len > r.len) len = Math.max(0, r.len - off);
        }
        if (f.isString) {
          const start = r.pos + off;
          let end = r.buf.indexOf(0, start);
          if (end < 0 || end > start + len) end = start + len;
          out[f.name] = r.buf.toString('latin1', start, end);
        } else {
          const el = f.elementSize || 1;
          const vals: number[] = [];
          for (let i = 0; i + el <= len; i += el) vals.push(Number(readU(this.env, r, off + i, Math.min(el, 8))));
          out[f.name] = vals;
        }
      } else {
        const v = readU(this.env, r, f.offset, f.size);
        out[f.name] = f.signed ? BigInt.asIntN(Math.max(8, f.size * 8), v) : v;
      }
    }
    return out;
  }
}
