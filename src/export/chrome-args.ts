/**
 * An event's fields as members of its Chrome JSON `args`:
 *  - a body printed as `key=value …` (most tracepoints) or `key: value, …` (syscalls) is split
 *    into one member per field (parsers/body-fields.ts): a decimal that fits a double exactly
 *    becomes a JSON number, anything else (hex, comms, flags) stays a string as printed;
 *  - otherwise the fields kvmtrace decodes anyway (model/kvm-fields.ts: kvm_exit's `reason`,
 *    kvm_entry's `vcpu`, kvm_pio's `dir` and `port`, sched_switch from trace-cmd's plugin form, …);
 *  - and `text`, the body as printed, unless the split covered all of it. Kept there because
 *    nothing else holds what the fields miss (kvm_exit's rip and info, a lead such as
 *    `(caller+0x18)`, markers); dropped after a full split because it would repeat every byte.
 * Keys that repeat, or that the record already uses (`task`, `cpu`, `text`), get a suffix (`_2`).
 * Traces repeat themselves (most events have the name and body of one of the last few thousand),
 * so the members are made into bytes once per recent (name, body) and copied after that.
 */
import { FieldSpans, scanFields } from '../parsers/body-fields.js';
import { fieldsOf, schedSwitchText } from '../parsers/event-fields.js';
import type { KvmFields } from '../model/kvm-fields.js';
import type { EventBlock } from '../model/event-block.js';
import type { AtomicWriter } from './atomic-writer.js';
import { jsonString } from './json-string.js';
// The table of recent bodies the Perfetto output uses too (a cache of bytes by name and body).
import { FOUND_ROOM, RecentBodies } from './recent-bodies.js';

/** What the members are made in: the bytes of one event's members (kept, for a body that may repeat). */
class Members {
  buf = Buffer.allocUnsafeSlow(512);
  len = 0;

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const b = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(b, 0, 0, this.len);
    this.buf = b;
  }

  /** Appends text as UTF-8 (ASCII char by char: the members are short). */
  text(s: string): void {
    this.room(s.length * 3);
    const b = this.buf;
    let o = this.len;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 128) {
        this.len = o + b.write(s.slice(i), o, 'utf8');
        return;
      }
      b[o++] = c;
    }
    this.len = o;
  }

  /** Appends src[a, z). */
  range(src: Uint8Array, a: number, z: number): void {
    this.room(z - a);
    const b = this.buf;
    let o = this.len;
    for (let i = a; i < z; i++) b[o++] = src[i];
    this.len = o;
  }

  /** Appends one ASCII byte. */
  byte(c: number): void {
    this.room(1);
    this.buf[this.len++] = c;
  }

  /** Appends a safe integer in decimal. */
  uint(v: number): void {
    this.text(String(v));
  }

  /** Appends a string as a JSON string literal. */
  json(s: string): void {
    this.text(jsonString(s));
  }

  /** Appends ASCII bytes src[a, z) as a JSON string literal. */
  jsonRange(src: Buffer, a: number, z: number): void {
    for (let i = a; i < z; i++) if (AS_IS[src[i]] === 0) return this.json(src.toString('latin1', a, z));
    this.byte(34);
    this.range(src, a, z);
    this.byte(34);
  }
}

/** Members the exporter writes itself before the fields. */
const RESERVED = ['task', 'cpu', 'text'].map((k) => Buffer.from(k));

/** 1 for bytes a JSON string holds as they are (printable ASCII but `"` and `\`). */
const AS_IS = new Uint8Array(256).map((_, c) => (c >= 0x20 && c <= 0x7e && c !== 0x22 && c !== 0x5c ? 1 : 0));

const isDigit = (c: number): boolean => c >= 48 && c <= 57;

/** True when s[a, z) is a decimal JSON takes as a number and a double holds exactly: -?(0|[1-9]\d{0,14}). */
function isExactDecimal(s: Uint8Array, a: number, z: number): boolean {
  const d = s[a] === 45 ? a + 1 : a;
  const n = z - d;
  if (n < 1 || n > 15 || (n > 1 && s[d] === 48)) return false;
  for (let i = d; i < z; i++) if (!isDigit(s[i])) return false;
  return true;
}

/** True when a[as, ae) and b[bs, be) hold the same bytes. */
function sameBytes(a: Uint8Array, as: number, ae: number, b: Uint8Array, bs: number, be: number): boolean {
  if (ae - as !== be - bs) return false;
  for (let i = 0; i < ae - as; i++) if (a[as + i] !== b[bs + i]) return false;
  return true;
}

/** Writes bytes s[a, z) (UTF-8) as a JSON string literal. */
function jsonBytes(w: Members, s: Buffer, a: number, z: number): void {
  for (let i = a; i < z; i++) if (AS_IS[s[i]] === 0) return w.json(s.toString('utf8', a, z));
  w.byte(34);
  w.range(s, a, z);
  w.byte(34);
}

/** Writes `,"key":` for a key made of plain ASCII. */
function key(w: Members, k: string): void {
  w.text(',"');
  w.text(k);
  w.text('":');
}

/** The writer of event fields as `args` members; one per exporter (it keeps scratch space). */
export class EventArgs {
  private readonly sp = new FieldSpans();
  private scratch = Buffer.allocUnsafe(1024);
  private readonly m = new Members();
  private readonly recent = new RecentBodies<true>();

  /**
   * Writes row r's fields as `,"name":value` members (each with its leading comma), then
   * `,"text":BODY` unless the fields cover the whole body (see the module header).
   */
  write(w: AtomicWriter, blk: EventBlock, r: number): void {
    const text = blk.bodyText?.[r];
    let s: Buffer;
    let a: number;
    let z: number;
    if (text === undefined) {
      s = blk.bytes;
      a = blk.bodyStart[r];
      z = blk.bodyEnd[r];
    } else {
      if (text.length * 3 > this.scratch.length) this.scratch = Buffer.allocUnsafe(text.length * 3);
      s = this.scratch;
      a = 0;
      z = s.write(text, 0, 'utf8');
    }
    const m = this.m;
    const name = blk.nameOf(r);
    const nameId = blk.name[r];
    const recent = this.recent;
    m.len = 0;
    if (!recent.worth(nameId)) {
      this.encode(m, blk, r, s, a, z, text);
      w.range(m.buf, 0, m.len);
      return;
    }
    const pair = recent.pair(nameId, s, a, z);
    // A recent body's members are copied straight into the writer's buffer.
    const at = w.reserve(FOUND_ROOM);
    const hit = recent.find(pair, name, s, a, z, w.view, at) !== undefined;
    recent.found(nameId, hit);
    if (hit) {
      w.advance(recent.length);
      return;
    }
    this.encode(m, blk, r, s, a, z, text);
    recent.keep(pair, name, s, a, z, m.buf, 0, m.len, true);
    w.range(m.buf, 0, m.len);
  }

  /** Makes the members of row r, whose body is s[a, z) (`text` when held as text). */
  private encode(w: Members, blk: EventBlock, r: number, s: Buffer, a: number, z: number, text: string | undefined): void {
    const sp = this.sp;
    scanFields(s, a, z, sp);
    // The split is used where the body names its fields: the first key is followed by `=` or `:`
    // (a `key value` body is read by guessing, so only its decoded fields are given).
    const named = sp.n > 0 && (s[sp.ke[0]] === 61 || s[sp.ke[0]] === 58);
    if (named && blk.table.typedKind(blk.name[r]) !== 'marker') {
      this.members(w, s);
      if (sp.leadEnd === sp.leadStart && !sp.overflow) return;
    } else typedMembers(w, blk, r);
    w.text(',"text":');
    if (text === undefined) w.jsonRange(s, a, z);
    else w.json(text);
  }

  /** The scanned fields as members: numbers where exact, strings otherwise; repeated and reserved keys suffixed. */
  private members(w: Members, s: Buffer): void {
    const sp = this.sp;
    for (let i = 0; i < sp.n; i++) {
      const ks = sp.ks[i];
      const ke = sp.ke[i];
      let seen = 1;
      for (const k of RESERVED) if (sameBytes(k, 0, k.length, s, ks, ke)) seen++;
      for (let j = 0; j < i; j++) if (sameBytes(s, sp.ks[j], sp.ke[j], s, ks, ke)) seen++;
      w.text(',"');
      w.range(s, ks, ke);
      if (seen > 1) {
        w.byte(95);
        w.uint(seen);
      }
      w.text('":');
      const vs = sp.vs[i];
      const ve = sp.ve[i];
      if (isExactDecimal(s, vs, ve)) w.range(s, vs, ve);
      else jsonBytes(w, s, vs, ve);
    }
  }
}

/** The decoded fields of row r, whose body does not name them (kvm_exit `reason HLT rip …`). */
function typedMembers(w: Members, blk: EventBlock, r: number): void {
  // sched_switch's come from its text, which also gives the state and the priorities: its typed
  // fields would decode that text once more (for trace-cmd's plugin form, one more regex match).
  if (blk.table.typedKind(blk.name[r]) === 'sched_switch') return schedSwitchMembers(w, blk.body(r));
  const f = fieldsOf(blk, r);
  if (f) fieldMembers(w, f);
}

/** The members of decoded fields (all kinds but sched_switch, which {@link schedSwitchMembers} writes). */
function fieldMembers(w: Members, f: KvmFields): void {
  switch (f.kind) {
    case 'kvm_entry':
    case 'tsc_offset_zeroed':
      if (f.vcpu >= 0) (key(w, 'vcpu'), w.uint(f.vcpu));
      return;
    case 'kvm_exit':
    case 'kvm_userspace_exit':
      key(w, 'reason');
      w.json(f.reason);
      return;
    case 'kvm_pio':
      key(w, 'dir');
      w.json(f.dir);
      if (f.port >= 0) (key(w, 'port'), w.uint(f.port));
      return;
    case 'kvm_write_tsc_offset':
      if (!f.write) return;
      key(w, 'vcpu');
      w.uint(f.write.vcpu);
      // Offsets are signed 64-bit: strings, as a double would round them.
      key(w, 'prev');
      w.json(String(f.write.prev));
      key(w, 'next');
      w.json(String(f.write.next));
      return;
    case 'sched_target':
      if (f.pid >= 0) (key(w, 'pid'), w.uint(f.pid));
      return;
    case 'sched_switch':
    case 'kvm_fpu':
    case 'marker':
      return;
  }
}

/** sched_switch's members from its text: the tasks, the previous one's state and both priorities. */
function schedSwitchMembers(w: Members, body: string): void {
  const sw = schedSwitchText(body);
  if (!sw) return;
  key(w, 'prev_comm');
  w.json(sw.prevComm);
  key(w, 'prev_pid');
  w.uint(sw.prevPid);
  if (!Number.isNaN(sw.prevPrio)) (key(w, 'prev_prio'), w.text(String(sw.prevPrio)));
  key(w, 'prev_state');
  w.json(sw.prevState);
  key(w, 'next_comm');
  w.json(sw.nextComm);
  key(w, 'next_pid');
  w.uint(sw.nextPid);
  if (!Number.isNaN(sw.nextPrio)) (key(w, 'next_prio'), w.text(String(sw.nextPrio)));
}
