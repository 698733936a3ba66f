/**
 * Rendering a parsed print fmt's pieces for one event record by interpretation, the way
 * libtraceevent's `pretty_print` does (values are u64 as in its `eval_num_arg`; casts only mask;
 * `%p` is glibc's), and a field's raw text (`tep_print_fields`). Whole print fmts are rendered by
 * printfmt-render.ts from compiled pieces that fall back to these.
 */
import { formatInt, formatStr, parseDirective, type Directive } from './cprintf.js';
import type { FieldFormat } from './format.js';
import type { Kallsyms } from './kallsyms.js';
import { atomValue, castValue, type Node, type Piece } from './printfmt-parse.js';

/** One event record: `buf[pos .. pos+len)`. */
export interface Rec {
  buf: Buffer;
  pos: number;
  len: number;
  /**
   * Index in `buf` where the record's ring-buffer page ends (default: the record's end). A `%s`
   * of a string field runs to its NUL, past the record when it has none, as libtraceevent's does
   * in the page trace-cmd holds; it never runs past the page.
   */
  pageEnd?: number;
}

/** What rendering needs from the file. */
export interface RenderEnv {
  le: boolean;
  longSize: number;
  kallsyms: Kallsyms;
  printk: Map<bigint, string>;
  /**
   * Fields libtraceevent no longer treats as strings: once it prints a char array as `ARRAY[…]`
   * it clears the field's string flag for the rest of the run (print_field_raw).
   */
  notString?: Set<FieldFormat>;
}

const U64 = (1n << 64n) - 1n;

/** Reads an unsigned field value (0 when it lies outside the record, like libtraceevent). */
export function readU(env: RenderEnv, r: Rec, off: number, size: number): bigint {
  if (off + size > r.len || size <= 0) return 0n;
  const p = r.pos + off;
  const b = r.buf;
  switch (size) {
    case 1:
      return BigInt(b[p]);
    case 2:
      return BigInt(env.le ? b.readUInt16LE(p) : b.readUInt16BE(p));
    case 4:
      return BigInt(env.le ? b.readUInt32LE(p) : b.readUInt32BE(p));
    case 8:
      return env.le ? b.readBigUInt64LE(p) : b.readBigUInt64BE(p);
  }
  return 0n;
}

/** Reads an unsigned field of at most 4 bytes as a number (fast path). */
export function readSmall(env: RenderEnv, r: Rec, off: number, size: number): number {
  if (off + size > r.len) return 0;
  const p = r.pos + off;
  const b = r.buf;
  if (size === 4) return env.le ? b.readUInt32LE(p) : b.readUInt32BE(p);
  if (size === 2) return env.le ? b.readUInt16LE(p) : b.readUInt16BE(p);
  if (size === 1) return b[p];
  return 0;
}

/** Offset and length of a dynamic (`__data_loc`) field's data in the record. */
export function dynLoc(env: RenderEnv, r: Rec, f: FieldFormat): { off: number; len: number } {
  if (f.offset + f.size > r.len) return { off: 0, len: 0 };
  const v = f.size <= 4 ? readSmall(env, r, f.offset, f.size) : Number(readU(env, r, f.offset, f.size) & 0xffffffffn);
  const o = v & 0xffff;
  const l = f.size === 2 ? r.len - o : (v >>> 16) & 0xffff;
  let off = o > r.len ? 0 : o;
  const len = o + l > r.len ? 0 : l;
  if (f.isRelative) off += f.offset + f.size;
  return { off, len };
}

/** A NUL-terminated string starting at `off` of the record, bounded by `max` bytes. */
export function cString(r: Rec, off: number, max: number): string {
  const start = r.pos + off;
  const limit = Math.min(Math.max(r.pageEnd ?? 0, r.pos + r.len), start + Math.max(0, max));
  if (start >= limit) return '';
  let end = r.buf.indexOf(0, start);
  if (end < 0 || end > limit) end = limit;
  return r.buf.toString('latin1', start, end);
}

/** Evaluates an argument as a number (u64). */
export function evalNum(env: RenderEnv, r: Rec, n: Node): bigint {
  switch (n.k) {
    case 'num':
      return BigInt.asUintN(64, n.v);
    case 'atom': {
      const c = n as { v?: bigint };
      if (c.v !== undefined) return c.v;
      let v = atomValue(n.text);
      if (v === 0n && !/^[0-9]/.test(n.text)) v = env.kallsyms.addressOf(n.text) ?? 0n;
      c.v = v;
      return v;
    }
    case 'field':
      return n.f ? readU(env, r, n.f.offset, n.f.size) : 0n;
    case 'cast':
      return castValue(evalNum(env, r, n.x), n.type, false);
    case 'index': {
      let a = n.a;
      let cast: string | undefined;
      while (a.k === 'cast') {
        cast ??= a.type;
        a = a.x;
      }
      const i = Number(BigInt.asIntN(32, evalNum(env, r, n.i)));
      let off: number;
      let size = env.longSize;
      if (a.k === 'dynarray' && a.f) {
        off = dynLoc(env, r, a.f).off + i;
        if (a.f.elementSize) size = a.f.elementSize;
      } else if (a.k === 'field' && a.f) {
        size = a.f.elementSize;
        off = a.f.offset + i * a.f.elementSize;
      } else return evalOp(env, r, '[', n.a, n.i);
      let v = readU(env, r, off, size);
      if (cast) v = castValue(v, cast, true);
      return v;
    }
    case 'cond':
      return evalNum(env, r, n.c) !== 0n ? evalNum(env, r, n.t) : evalNum(env, r, n.f);
    case 'op':
      return evalOp(env, r, n.op, n.l, n.r);
    case 'dynlen':
      return n.f ? BigInt(dynLoc(env, r, n.f).len) : 0n;
    case 'func':
      if (n.name === 'is_writable_pte') return evalNum(env, r, n.args[0]) & 2n;
      return 0n;
    default:
      return 0n;
  }
}

function evalOp(env: RenderEnv, r: Rec, op: string, ln: Node, rn: Node): bigint {
  const l = evalNum(env, r, ln);
  const v = evalNum(env, r, rn);
  let out: bigint;
  switch (op) {
    case '!':
      out = v === 0n ? 1n : 0n;
      break;
    case '~':
      out = ~v;
      break;
    case '|':
      out = l | v;
      break;
    case '||':
      out = l !== 0n || v !== 0n ? 1n : 0n;
      break;
    case '&':
      out = l & v;
      break;
    case '&&':
      out = l !== 0n && v !== 0n ? 1n : 0n;
      break;
    case '^':
      out = l ^ v;
      break;
    case '<':
      out = l < v ? 1n : 0n;
      break;
    case '<=':
      out = l <= v ? 1n : 0n;
      break;
    case '>':
      out = l > v ? 1n : 0n;
      break;
    case '>=':
      out = l >= v ? 1n : 0n;
      break;
    case '<<':
      out = v >= 64n ? 0n : l << v;
      break;
    case '>>':
      out = v >= 64n ? 0n : l >> v;
      break;
    case '==':
      out = l === v ? 1n : 0n;
      break;
    case '!=':
      out = l !== v ? 1n : 0n;
      break;
    case '-':
      out = l - v;
      break;
    case '+':
      out = l + v;
      break;
    case '*':
      out = l * v;
      break;
    case '/':
      out = v === 0n ? 0n : l / v;
      break;
    case '%':
      out = v === 0n ? 0n : l % v;
      break;
    default:
      out = 0n;
  }
  return out & U64;
}

/** Casts a u64 to the C type a conversion with `ls` length modifiers prints. */
function castForPrint(v: bigint, ls: number, signed: boolean): bigint {
  const bits = ls >= 1 ? 64 : ls === 0 ? 32 : ls === -1 ? 16 : 8;
  return signed ? BigInt.asIntN(bits, v) : BigInt.asUintN(bits, v);
}

const dirCache = new Map<string, Directive>();
function directive(fmt: string): Directive {
  let d = dirCache.get(fmt);
  if (!d) dirCache.set(fmt, (d = parseDirective(fmt)));
  return d;
}

/** `%p` as glibc prints it: `(nil)` for 0, else 0x-prefixed hex. */
function glibcPointer(v: bigint): string {
  return v === 0n ? '(nil)' : '0x' + v.toString(16);
}

function renderPointer(env: RenderEnv, r: Rec, p: Extract<Piece, { t: 'pointer' }>): string {
  if (p.arg.k === 'str') return p.arg.s;
  const ext = p.fmt[p.fmt.indexOf('p') + 1];
  if (ext === 'F' || ext === 'f' || ext === 'S' || ext === 's') {
    const v = evalNum(env, r, p.arg);
    const fn = env.kallsyms.find(v);
    if (fn) return ext === 'F' || ext === 'S' ? `${fn.name}+0x${(v - fn.start).toString(16)}` : fn.name;
    return '0x' + (env.longSize === 4 ? BigInt.asUintN(32, v) : v).toString(16);
  }
  if (ext === 'M' || ext === 'm') {
    const bytes = arrayBytes(env, r, p.arg, 6);
    if (!bytes) return '';
    const sep = ext === 'M' ? ':' : '';
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(sep);
  }
  if (ext === 'I' || ext === 'i') return ipArg(r, p.arg, p.fmt.slice(p.fmt.indexOf('p') + 1));
  if (ext === 'h') {
    const delim = { C: ':', D: '-', N: '' }[p.fmt[p.fmt.indexOf('p') + 2] ?? ''] ?? ' ';
    if (p.arg.k !== 'dynarray' || !p.arg.f) return `ARG TYPE NOT FIELD BUT ${ARG_TYPE[p.arg.k]}`;
    // libtraceevent passes the `*` length, or 1, as the byte count.
    const plenArg = p.len ? Number(BigInt.asIntN(32, evalNum(env, r, p.len))) : 1;
    const { off, len } = dynLoc(env, r, p.arg.f);
    const n = Math.min(len, plenArg);
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(hex2(r.buf[r.pos + off + i] ?? 0));
    return out.join(delim);
  }
  return glibcPointer(evalNum(env, r, p.arg));
}

/** `%pI4`, `%pi4`, `%pI6`, `%pi6`, `%pI6c` of a byte-array field (libtraceevent's print_ip*_arg). */
function ipArg(r: Rec, n: Node, spec: string): string {
  if (n.k !== 'field' || !n.f) return `ARG TYPE NOT FIELD BUT ${ARG_TYPE[n.k]}`;
  const f = n.f;
  const b = r.buf.subarray(r.pos + f.offset, r.pos + f.offset + f.size);
  if (spec[1] === '4') {
    if (f.size !== 4) return 'INVALIDIPv4';
    return ip4(b, spec[0] === 'i');
  }
  if (spec[1] === '6') {
    if (f.size !== 16) return 'INVALIDIPv6';
    if (spec[0] === 'I' && spec[2] === 'c') return ip6c(b);
    const words: string[] = [];
    for (let i = 0; i < 16; i += 2) words.push(hex2(b[i]) + hex2(b[i + 1]));
    return words.join(spec[0] === 'I' ? ':' : '');
  }
  return '';
}

/** libtraceevent's `enum tep_print_arg_type` numbers, for its error texts. */
const ARG_TYPE: Record<Node['k'], number> = {
  null: 0, atom: 1, num: 1, str: 1, field: 2, flags: 3, symbolic: 4, hex: 5, intarray: 6, cast: 7, getstr: 8,
  dynarray: 10, op: 11, cond: 11, index: 11, func: 12, bitmask: 13, dynlen: 14,
};

const hex2 = (x: number): string => x.toString(16).padStart(2, '0');

function ip4(b: Uint8Array, zeroPad: boolean): string {
  return Array.from(b.subarray(0, 4), (x) => (zeroPad ? String(x).padStart(3, '0') : String(x))).join('.');
}

/** Compressed IPv6 text: the longest run (>1) of zero words becomes `::`; v4-mapped ends in a.b.c.d. */
function ip6c(b: Buffer): string {
  const word = (i: number) => (b[2 * i] << 8) | b[2 * i + 1];
  const w2 = b.readUInt32BE(8);
  const v4mapped = b.readUInt32BE(0) === 0 && b.readUInt32BE(4) === 0 && w2 === 0xffff;
  const isatap = ((w2 | 0x02000000) >>> 0) === 0x02005efe;
  const useV4 = v4mapped || isatap;
  const range = useV4 ? 6 : 8;
  let longest = 1;
  let colonpos = -1;
  for (let i = 0; i < range; i++) {
    let z = 0;
    for (let j = i; j < range && word(j) === 0; j++) z++;
    if (z > longest) {
      longest = z;
      colonpos = i;
    }
  }
  let s = '';
  let needColon = false;
  for (let i = 0; i < range; i++) {
    if (i === colonpos) {
      if (needColon || i === 0) s += ':';
      s += ':';
      needColon = false;
      i += longest - 1;
      continue;
    }
    if (needColon) s += ':';
    const w = word(i);
    const hi = w >> 8;
    s += hi ? hi.toString(16) + hex2(w & 0xff) : (w & 0xff).toString(16);
    needColon = true;
  }
  if (useV4) {
    if (needColon) s += ':';
    s += ip4(b.subarray(12, 16), false);
  }
  return s;
}

/** The bytes an array-valued argument points at (a field or a dynamic array). */
function arrayBytes(env: RenderEnv, r: Rec, n: Node, len: number): Buffer | undefined {
  while (n.k === 'cast') n = n.x;
  let off: number;
  if (n.k === 'dynarray' && n.f) off = dynLoc(env, r, n.f).off;
  else if (n.k === 'field' && n.f) off = n.f.offset;
  else return undefined;
  const s = r.pos + off;
  return r.buf.subarray(s, Math.min(s + Math.max(0, len), r.pos + r.len));
}

/** libtraceevent's `print_str_arg`: the text of an argument for `%s` (and helpers). */
function strArg(env: RenderEnv, r: Rec, n: Node, d: Directive, star: number): string {
  switch (n.k) {
    case 'atom':
      return formatStr(d, n.text, star);
    case 'num':
      return formatStr(d, n.v.toString(), star);
    case 'str':
      return formatStr(d, n.s, star);
    case 'field': {
      const f = n.f;
      if (!f) return '';
      if (!f.isArray && f.size === env.longSize) {
        const addr = readU(env, r, f.offset, f.size);
        return env.printk.get(addr) ?? addr.toString(16);
      }
      const len = f.size || r.len - f.offset;
      return formatStr(d, cString(r, f.offset, len), star);
    }
    case 'flags': {
      let v = evalNum(env, r, n.x);
      let out = '';
      let printed = false;
      for (const fl of n.list) {
        if (v === 0n && fl.v < 0n) {
          out += formatStr(d, fl.s, star);
          break;
        }
        if (fl.v > 0n && (v & fl.v) === fl.v) {
          if (printed && n.delim) out += n.delim;
          out += formatStr(d, fl.s, star);
          printed = true;
          v &= ~fl.v;
        }
      }
      if (v !== 0n) {
        if (printed && n.delim) out += n.delim;
        out += '0x' + v.toString(16);
      }
      return out;
    }
    case 'symbolic': {
      const v = evalNum(env, r, n.x);
      for (const s of n.list) if (s.v === v) return formatStr(d, s.s, star);
      return '0x' + v.toString(16);
    }
    case 'hex': {
      const len = Number(BigInt.asIntN(32, evalNum(env, r, n.len)));
      const bytes = arrayBytes(env, r, n.a, len) ?? Buffer.alloc(0);
      const parts = Array.from(bytes, (b) => b.toString(16).padStart(2, '0'));
      return parts.join(n.str ? '' : ' ');
    }
    case 'intarray': {
      const count = Number(BigInt.asIntN(32, evalNum(env, r, n.count)));
      const el = Number(evalNum(env, r, n.el));
      let a = n.a;
      while (a.k === 'cast') a = a.x;
      let off: number;
      if (a.k === 'dynarray' && a.f) off = dynLoc(env, r, a.f).off;
      else if (a.k === 'field' && a.f) off = a.f.offset;
      else return '';
      const out: string[] = [];
      for (let i = 0; i < count; i++) {
        if ([1, 2, 4, 8].includes(el)) out.push(readU(env, r, off + i * el, el).toString());
        else {
          out.push(`BAD SIZE:${el} 0x${readU(env, r, off + i, 1).toString(16)}`);
        }
      }
      return out.join(' ');
    }
    case 'getstr': {
      if (!n.f) return '';
      const { off, len } = dynLoc(env, r, n.f);
      if (!len) return '';
      return formatStr(d, cString(r, off, r.len - off), star);
    }
    case 'bitmask': {
      if (!n.f) return '';
      const { off, len } = dynLoc(env, r, n.f);
      return formatStr(d, n.cpu ? cpumask(r, off, len) : bitmask(r, off, len), star);
    }
    case 'cond':
      return evalNum(env, r, n.c) !== 0n ? strArg(env, r, n.t, d, star) : strArg(env, r, n.f, d, star);
    default:
      return '';
  }
}

/** `__get_bitmask`: hex, most significant byte first, comma every 32 bits (libtraceevent). */
function bitmask(r: Rec, off: number, size: number): string {
  let s = '';
  for (let i = size - 1; i >= 0; i--) {
    const b = r.buf[r.pos + off + i] ?? 0;
    s += b.toString(16).padStart(2, '0');
    if (i > 0 && i % 4 === 0) s += ',';
  }
  // Leading zeros are dropped except for the last digit (libtraceevent trims "0," runs).
  const t = s.replace(/^[0,]+(?=.)/, '');
  return t === '' ? '0' : t;
}

/** `__get_cpumask`: CPU ranges (`0-3,5`). */
function cpumask(r: Rec, off: number, size: number): string {
  const cpus: number[] = [];
  for (let i = 0; i < size; i++) {
    const b = r.buf[r.pos + off + i] ?? 0;
    for (let bit = 0; bit < 8; bit++) if (b & (1 << bit)) cpus.push(i * 8 + bit);
  }
  const parts: string[] = [];
  for (let i = 0; i < cpus.length; ) {
    let j = i;
    while (j + 1 < cpus.length && cpus[j + 1] === cpus[j] + 1) j++;
    parts.push(j > i ? `${cpus[i]}-${cpus[j]}` : `${cpus[i]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** Renders one piece. */
export function renderPiece(env: RenderEnv, r: Rec, p: Piece): string {
  switch (p.t) {
    case 'text':
      return p.s;
    case 'digit': {
      const d = directive(p.fmt);
      const star = p.len ? Number(BigInt.asIntN(32, evalNum(env, r, p.len))) : -1;
      const a = p.arg;
      const signed = d.conv === 'd' || d.conv === 'i';
      if (a.k === 'field' && a.f && a.f.size <= 4 && p.ls <= 0) {
        // Fast path: a small unsigned field printed as int, short or char.
        let v = readSmall(env, r, a.f.offset, a.f.size);
        const bits = p.ls === 0 ? 32 : p.ls === -1 ? 16 : 8;
        if (bits < 32) v &= (1 << bits) - 1;
        if (signed && v >= 2 ** (bits - 1)) v -= 2 ** bits;
        return formatInt(d, v, star);
      }
      return formatInt(d, castForPrint(evalNum(env, r, a), p.ls, signed), star);
    }
    case 'pointer':
      return renderPointer(env, r, p);
    case 'string': {
      const d = directive(p.fmt);
      const star = p.len ? Number(BigInt.asIntN(32, evalNum(env, r, p.len))) : -1;
      return strArg(env, r, p.arg, d, star);
    }
  }
}

function isPrintable(r: Rec, off: number, len: number): boolean {
  for (let i = 0; i < len; i++) {
    const c = r.buf[r.pos + off + i];
    if (c === 0 || c === undefined) return true;
    const printable = c >= 0x20 && c < 0x7f;
    const space = c === 0x20 || (c >= 0x09 && c <= 0x0d);
    if (!printable && !space) return false;
  }
  return true;
}

/** A field's raw text as libtraceevent's `print_field_raw` prints it. */
export function rawFieldText(env: RenderEnv, r: Rec, f: FieldFormat): string {
  if (f.isArray) {
    let off: number;
    let len: number;
    if (f.isDynamic) ({ off, len } = dynLoc(env, r, f));
    else {
      off = f.offset;
      len = f.size;
    }
    // "%s" from the field's start: to its NUL, which may lie past the record (a `char buf[]`
    // without one runs into the next event's header, as trace-cmd prints it).
    if (f.isString && !env.notString?.has(f) && isPrintable(r, off, len)) return cString(r, off, Number.MAX_SAFE_INTEGER);
    const bytes: string[] = [];
    for (let i = 0; i < len; i++) bytes.push((r.buf[r.pos + off + i] ?? 0).toString(16).padStart(2, '0'));
    (env.notString ??= new Set()).add(f);
    return `ARRAY[${bytes.join(', ')}]`;
  }
  const v = readU(env, r, f.offset, f.size);
  if (f.isPointer) return '0x' + v.toString(16);
  if (f.signed) {
    switch (f.size) {
      case 4:
        return f.isLong ? '0x' + BigInt.asUintN(32, v).toString(16) : BigInt.asIntN(32, v).toString();
      case 2:
        return formatInt(directive('%2d'), Number(BigInt.asIntN(16, v)));
      case 1:
        return BigInt.asIntN(8, v).toString();
      default:
        return BigInt.asIntN(64, v).toString();
    }
  }
  return f.isLong ? '0x' + v.toString(16) : v.toString();
}
