/**
 * Fast paths for print-fmt rendering: pieces whose arguments can be evaluated exactly with JS
 * numbers (fields of up to 4 bytes, 8-byte fields whose high word is small, constants, and the
 * bitwise and comparison operators on them) are compiled into closures; everything else falls back
 * to the exact u64 (bigint) evaluator. The output is the same; only the speed differs.
 */
import { formatInt, type Directive, parseDirective } from './cprintf.js';
import { atomValue, castValue, type Node, type Piece } from './printfmt-parse.js';
import { renderPiece, type Rec, type RenderEnv } from './printfmt-eval.js';

type NumFn = (r: Rec) => number;

const TWO32 = 2 ** 32;

/** A closure reading an unsigned field of 1, 2 or 4 bytes; 0 outside the record. */
export function smallReader(env: RenderEnv, off: number, size: number): NumFn | undefined {
  const le = env.le;
  if (size === 4)
    return le
      ? (r) => (off + 4 <= r.len ? r.buf.readUInt32LE(r.pos + off) : 0)
      : (r) => (off + 4 <= r.len ? r.buf.readUInt32BE(r.pos + off) : 0);
  if (size === 2)
    return le
      ? (r) => (off + 2 <= r.len ? r.buf.readUInt16LE(r.pos + off) : 0)
      : (r) => (off + 2 <= r.len ? r.buf.readUInt16BE(r.pos + off) : 0);
  if (size === 1) return (r) => (off + 1 <= r.len ? r.buf[r.pos + off] : 0);
  return undefined;
}

/** The (offset, size) a field or constant-index array element reads, when static. */
function staticLoc(n: Node): { off: number; size: number; cast?: string } | undefined {
  if (n.k === 'field' && n.f && !n.f.isArray) return { off: n.f.offset, size: n.f.size };
  if (n.k === 'index') {
    let a = n.a;
    let cast: string | undefined;
    while (a.k === 'cast') {
      cast ??= a.type;
      a = a.x;
    }
    if (a.k !== 'field' || !a.f || n.i.k !== 'atom') return undefined;
    const i = Number(atomValue(n.i.text));
    if (!Number.isSafeInteger(i) || i < 0 || i > 1 << 16) return undefined;
    return { off: a.f.offset + i * a.f.elementSize, size: a.f.elementSize, cast };
  }
  return undefined;
}

/**
 * Compiles a node to a closure giving its exact u64 value as a number in [0, 2^32), or undefined
 * when that cannot be guaranteed statically.
 */
function compileU32(env: RenderEnv, n: Node): NumFn | undefined {
  switch (n.k) {
    case 'atom': {
      if (!/^[0-9]/.test(n.text)) return undefined;
      const v = atomValue(n.text);
      if (v >= BigInt(TWO32)) return undefined;
      const x = Number(v);
      return () => x;
    }
    case 'field':
    case 'index': {
      const loc = staticLoc(n);
      if (!loc || loc.size > 4) return undefined;
      if (loc.cast) return undefined;
      return smallReader(env, loc.off, loc.size);
    }
    case 'cast': {
      const x = compileU32(env, n.x);
      if (!x) return undefined;
      const m = Number(castValue(0xffffffffn, n.type, false));
      return m === 0xffffffff ? x : (r) => (x(r) & m) >>> 0;
    }
    case 'op': {
      const l = n.l.k === 'null' ? () => 0 : compileU32(env, n.l);
      const rr = compileU32(env, n.r);
      if (!l || !rr) return undefined;
      switch (n.op) {
        case '&':
          return (r) => (l(r) & rr(r)) >>> 0;
        case '|':
          return (r) => (l(r) | rr(r)) >>> 0;
        case '^':
          return (r) => (l(r) ^ rr(r)) >>> 0;
        case '>>':
          return (r) => {
            const s = rr(r);
            return s >= 32 ? 0 : l(r) >>> s;
          };
        case '==':
          return (r) => (l(r) === rr(r) ? 1 : 0);
        case '!=':
          return (r) => (l(r) !== rr(r) ? 1 : 0);
        case '<':
          return (r) => (l(r) < rr(r) ? 1 : 0);
        case '>':
          return (r) => (l(r) > rr(r) ? 1 : 0);
        case '<=':
          return (r) => (l(r) <= rr(r) ? 1 : 0);
        case '>=':
          return (r) => (l(r) >= rr(r) ? 1 : 0);
        case '&&':
          return (r) => (l(r) !== 0 && rr(r) !== 0 ? 1 : 0);
        case '||':
          return (r) => (l(r) !== 0 || rr(r) !== 0 ? 1 : 0);
        case '!':
          return (r) => (rr(r) === 0 ? 1 : 0);
      }
      return undefined;
    }
    case 'cond': {
      const c = compileU32(env, n.c);
      const t = compileU32(env, n.t);
      const f = compileU32(env, n.f);
      if (!c || !t || !f) return undefined;
      return (r) => (c(r) !== 0 ? t(r) : f(r));
    }
  }
  return undefined;
}

/** A plain conversion (no flags, width or precision) prints like toString. */
function plainConv(d: Directive): 'dec' | 'hex' | 'HEX' | undefined {
  if (d.left || d.plus || d.space || d.alt || d.zero || d.width !== -1 || d.prec !== -1) return undefined;
  if (d.conv === 'd' || d.conv === 'i' || d.conv === 'u') return 'dec';
  if (d.conv === 'x') return 'hex';
  if (d.conv === 'X') return 'HEX';
  return undefined;
}

/** Lower-case hex of a non-negative safe integer, without V8's slow double-radix conversion. */
export function hexOf(v: number): string {
  if (v < 0x80000000) return v.toString(16);
  if (v < TWO32) return (v >>> 16).toString(16) + ((v & 0xffff) | 0x10000).toString(16).slice(1);
  const hi = Math.floor(v / TWO32);
  const lo = v - hi * TWO32;
  return hexOf(hi) + ((lo >>> 16) | 0x10000).toString(16).slice(1) + ((lo & 0xffff) | 0x10000).toString(16).slice(1);
}

function numberFormatter(d: Directive): (v: number) => string {
  const plain = plainConv(d);
  if (plain === 'dec') return (v) => String(v);
  if (plain === 'hex') return hexOf;
  if (plain === 'HEX') return (v) => v.toString(16).toUpperCase();
  return (v) => formatInt(d, v);
}

/** Compiles a digit piece; undefined when only the generic evaluator can print it exactly. */
function compileDigit(env: RenderEnv, p: Extract<Piece, { t: 'digit' }>): ((r: Rec) => string) | undefined {
  if (p.len) return undefined;
  const d = parseDirective(p.fmt);
  const signed = d.conv === 'd' || d.conv === 'i';
  const fmt = numberFormatter(d);
  const bits = p.ls >= 1 ? 64 : p.ls === 0 ? 32 : p.ls === -1 ? 16 : 8;
  const u32 = compileU32(env, p.arg);
  if (u32) {
    if (bits === 64) return (r) => fmt(u32(r));
    if (bits === 32) return signed ? (r) => fmt(u32(r) | 0) : (r) => fmt(u32(r));
    const m = bits === 16 ? 0xffff : 0xff;
    const half = bits === 16 ? 0x8000 : 0x80;
    return (r) => {
      const v = u32(r) & m;
      return fmt(signed && v >= half ? v - m - 1 : v);
    };
  }
  // An 8-byte field (or array element) read as two words: exact as a number unless huge.
  const loc = staticLoc(p.arg);
  if (!loc || loc.size !== 8 || loc.cast) return undefined;
  const off = loc.off;
  const le = env.le;
  const loAt = le ? 0 : 4;
  const hiAt = le ? 4 : 0;
  const slow = (r: Rec) => renderPiece(env, r, p);
  // A one-entry memo: consecutive events often repeat an argument (the same fd, buffer, count).
  let lastLo = -1;
  let lastHi = -1;
  let lastText = '';
  return (r) => {
    if (off + 8 > r.len) return slow(r);
    const at = r.pos + off;
    const lo = le ? r.buf.readUInt32LE(at + loAt) : r.buf.readUInt32BE(at + loAt);
    if (bits === 32) return fmt(signed ? lo | 0 : lo);
    if (bits < 32) return slow(r);
    const hi = le ? r.buf.readUInt32LE(at + hiAt) : r.buf.readUInt32BE(at + hiAt);
    if (lo === lastLo && hi === lastHi) return lastText;
    let text: string;
    if (hi < 0x200000) text = fmt(hi * TWO32 + lo);
    else if (signed && hi >= 0xffe00000) text = fmt(-((0xffffffff - hi) * TWO32 + (TWO32 - lo)));
    else return slow(r);
    lastLo = lo;
    lastHi = hi;
    lastText = text;
    return text;
  };
}

/** Returns a compiled renderer for a piece (cached on the piece). */
export function pieceRenderer(env: RenderEnv, p: Piece): (r: Rec) => string {
  const cached = (p as Piece & { fn?: (r: Rec) => string }).fn;
  if (cached) return cached;
  let fn: ((r: Rec) => string) | undefined;
  if (p.t === 'text') {
    const s = p.s;
    fn = () => s;
  } else if (p.t === 'digit') fn = compileDigit(env, p);
  else if (p.t === 'string' && p.arg.k === 'symbolic' && !p.len) {
    const d = parseDirective(p.fmt);
    const x = compileU32(env, p.arg.x);
    const list = p.arg.list;
    if (x && plainStr(d)) {
      const table = new Map<number, string>();
      for (let i = list.length - 1; i >= 0; i--) if (list[i].v < BigInt(TWO32)) table.set(Number(list[i].v), list[i].s);
      fn = (r) => {
        const v = x(r);
        const s = table.get(v);
        return s ?? '0x' + v.toString(16);
      };
    }
  }
  fn ??= (r) => renderPiece(env, r, p);
  (p as Piece & { fn?: (r: Rec) => string }).fn = fn;
  return fn;
}

function plainStr(d: Directive): boolean {
  return d.width === -1 && d.prec === -1;
}

