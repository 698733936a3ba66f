/**
 * Typed fields (model/kvm-fields.ts) of a trace.dat record, read from its binary fields by name as
 * libtraceevent's consumers do (`tep_read_number_field`), never from the printed text: numbers by
 * their format's offset and size, comms up to their NUL, a kvm_exit reason named as trace-cmd's kvm
 * plugin names it, a kvm_userspace_exit reason by the print fmt's own `__print_symbolic` table.
 */
import { u64ToS64 } from '../../model/exact.js';
import { TYPED_EVENTS, type KvmFields } from '../../model/kvm-fields.js';
import { syncMarker } from '../event-fields.js';
import type { EventFormat } from './format.js';
import { kvmExitReasonOf } from './plugins.js';
import { readU, type Rec, type RenderEnv } from './printfmt-eval.js';
import type { Node, Piece } from './printfmt-parse.js';
import type { EventPrinter } from './printer.js';

/** Decodes the typed fields of the printer's current record, by event id. */
export class TypedFields {
  private readonly kinds = new Map<number, KvmFields['kind'] | null>();

  constructor(private readonly p: EventPrinter) {}

  /** The current record's typed fields (event id `id`), or null for events kvmtrace does not interpret. */
  of(id: number): KvmFields | null {
    let kind = this.kinds.get(id);
    if (kind === undefined) {
      const ev = this.p.event(id);
      kind = (ev && TYPED_EVENTS.get(ev.name)) ?? null;
      this.kinds.set(id, kind);
    }
    if (kind === null) return null;
    const ev = this.p.event(id)!;
    const r = this.p.record;
    const env = this.p.env;
    const num = (name: string): number => numberField(env, r, ev, name);
    switch (kind) {
      case 'kvm_entry':
        return { kind, vcpu: num('vcpu_id') };
      case 'kvm_exit':
        return { kind, reason: kvmExitReasonOf(this.p.pluginCtx(id)!) };
      case 'kvm_fpu': {
        const load = num('load');
        return { kind, fpu: load === 1 ? 1 : load === 0 ? -1 : 0 };
      }
      case 'kvm_pio': {
        const rw = num('rw');
        return { kind, dir: rw === 1 ? 'out' : rw === 0 ? 'in' : '?', port: num('port') };
      }
      case 'kvm_write_tsc_offset': {
        const [vcpu, prev, next] = [num('vcpu_id'), bigField(env, r, ev, 'previous_tsc_offset'), bigField(env, r, ev, 'next_tsc_offset')];
        return { kind, write: vcpu >= 0 && prev !== undefined && next !== undefined ? { vcpu, prev: u64ToS64(prev), next: u64ToS64(next) } : undefined };
      }
      case 'kvm_userspace_exit':
        return { kind, reason: this.symbolic(id, ev, 'reason') };
      case 'tsc_offset_zeroed':
        return { kind, vcpu: num('vcpu') };
      case 'sched_switch': {
        const [prevPid, nextPid] = [num('prev_pid'), num('next_pid')];
        if (prevPid < 0 || nextPid < 0) return { kind, sw: undefined };
        return { kind, sw: { prevComm: strField(env, r, ev, 'prev_comm'), prevPid, nextComm: strField(env, r, ev, 'next_comm'), nextPid } };
      }
      case 'sched_target':
        return { kind, pid: num('pid') };
      case 'marker': {
        const buf = ev.byName.get('buf');
        return { kind, sync: buf ? syncMarker(strField(env, r, ev, 'buf')) : undefined };
      }
    }
  }

  /** A field's name in the print fmt's `__print_symbolic` table, or its number when the table lacks it. */
  private symbolic(id: number, ev: EventFormat, name: string): string {
    const f = ev.byName.get(name);
    if (!f) return '?';
    const v = readU(this.p.env, this.p.record, f.offset, f.size);
    const table = this.tables.get(id) ?? this.tables.set(id, findSymbolic(this.p.printFmt(id)?.pieces ?? [], name)).get(id);
    return table?.find((x) => x.v === v)?.s ?? v.toString();
  }
  private readonly tables = new Map<number, { v: bigint; s: string }[] | undefined>();
}

/** A number field (up to 4 bytes, or the low 53 bits of 8; signed as declared), -1 when the event has no such field. */
function numberField(env: RenderEnv, r: Rec, ev: EventFormat, name: string): number {
  const f = ev.byName.get(name);
  if (!f || f.offset + f.size > r.len) return -1;
  const v = readU(env, r, f.offset, f.size);
  return Number(f.signed ? BigInt.asIntN(f.size * 8, v) : v);
}

/** A u64 field, undefined when absent. */
function bigField(env: RenderEnv, r: Rec, ev: EventFormat, name: string): bigint | undefined {
  const f = ev.byName.get(name);
  if (!f || f.offset + f.size > r.len) return undefined;
  return readU(env, r, f.offset, f.size);
}

/** A char array field up to its NUL (latin1, as the printers decode it); '' when absent. */
function strField(env: RenderEnv, r: Rec, ev: EventFormat, name: string): string {
  const f = ev.byName.get(name);
  if (!f) return '';
  let off = f.offset;
  let len = f.size;
  // A dynamic string (`__data_loc char[]`): offset and length in the field's 4 bytes.
  if (f.isDynamic) {
    const v = Number(readU(env, r, f.offset, f.size));
    off = (v & 0xffff) + (f.isRelative ? f.offset + f.size : 0);
    len = f.size === 2 ? r.len - off : (v >>> 16) & 0xffff;
  } else if (len === 0) len = r.len - off;
  const start = r.pos + off;
  const lim = Math.min(start + len, r.pos + r.len);
  let end = r.buf.indexOf(0, start);
  if (end < 0 || end > lim) end = lim;
  return r.buf.toString('latin1', start, end);
}

/** The `__print_symbolic` table applied to field `name` in a print fmt's pieces. */
function findSymbolic(pieces: Piece[], name: string): { v: bigint; s: string }[] | undefined {
  const visit = (n: Node | undefined): { v: bigint; s: string }[] | undefined => {
    if (!n) return undefined;
    if (n.k === 'symbolic') {
      let x = n.x;
      while (x.k === 'cast') x = x.x;
      if (x.k === 'field' && x.name === name) return n.list;
    }
    if (n.k === 'cast') return visit(n.x);
    if (n.k === 'op') return visit(n.l) ?? visit(n.r);
    if (n.k === 'cond') return visit(n.t) ?? visit(n.f);
    return undefined;
  };
  for (const p of pieces) {
    const t = p.t === 'text' ? undefined : visit(p.arg);
    if (t) return t;
  }
  return undefined;
}
