/**
 * A print fmt compiled to one JavaScript function per event format (made with `new Function`):
 * literal text becomes byte stores, plain `%d %u %x %ld %lx` of fields become inline reads and
 * digit writes into the output buffer, and every other piece calls the closure
 * `printfmt-bytes.ts` made for it. Only the speed differs from calling the pieces' closures in
 * turn: the generated source holds no text of the file (bytes are numbers, everything else is
 * passed in as arguments), so nothing the trace contains is ever evaluated as code. (binary-parser,
 * which reads the file's structures, compiles its parsers the same way.)
 */
import { parseDirective } from './cprintf.js';
import type { Out } from './out.js';
import { atomValue, type Node, type Piece, type PrintFmt } from './printfmt-parse.js';
import type { Rec, RenderEnv } from './printfmt-eval.js';

type ByteFn = (out: Out, r: Rec) => void;

const HEX = Buffer.from('0123456789abcdef', 'latin1');
/** 10^i for i = 0 … 16. */
const POW10 = Array.from({ length: 17 }, (_, i) => 10 ** i);

/** Writes a safe integer in decimal at `b[p]` (room reserved by the caller); returns the new end. */
export function decTo(b: Buffer, p: number, v: number): number {
  if (v < 0) {
    b[p++] = 45;
    v = -v;
  }
  if (v < 10) {
    b[p] = 48 + v;
    return p + 1;
  }
  let n = 2;
  while (n < 17 && v >= POW10[n]) n++;
  const end = p + n;
  let e = end;
  while (v >= 0x80000000) {
    const q = Math.floor(v / 10);
    b[--e] = 48 + (v - q * 10);
    v = q;
  }
  while (v >= 10) {
    const q = (v / 10) | 0;
    b[--e] = 48 + (v - q * 10);
    v = q;
  }
  b[--e] = 48 + v;
  return end;
}

/** Writes a value below 2^32 in lower-case hex at `b[p]`; returns the new end. */
export function hex32To(b: Buffer, p: number, v: number): number {
  v >>>= 0;
  const n = v === 0 ? 1 : (35 - Math.clz32(v)) >> 2;
  const end = p + n;
  for (let e = end - 1; e >= p; e--, v >>>= 4) b[e] = HEX[v & 15];
  return end;
}

/** Writes the u64 `hi·2^32 + lo` in lower-case hex at `b[p]`; returns the new end. */
export function hex64To(b: Buffer, p: number, hi: number, lo: number): number {
  if (hi === 0) return hex32To(b, p, lo);
  p = hex32To(b, p, hi);
  lo >>>= 0;
  for (let e = p + 7; e >= p; e--, lo >>>= 4) b[e] = HEX[lo & 15];
  return p + 8;
}

/** Offset and size of a field or of a constant-index element of a fixed array (no casts). */
export function loc(n: Node): { off: number; size: number } | undefined {
  if (n.k === 'field' && n.f && !n.f.isArray) return { off: n.f.offset, size: n.f.size };
  if (n.k === 'index' && n.a.k === 'field' && n.a.f && n.i.k === 'atom' && /^[0-9]/.test(n.i.text)) {
    const i = Number(atomValue(n.i.text));
    if (!Number.isSafeInteger(i) || i > 1 << 16) return undefined;
    return { off: n.a.f.offset + i * n.a.f.elementSize, size: n.a.f.elementSize };
  }
  return undefined;
}

/** A plain number conversion (`%d %i %u %x` with `l`/`ll`, no flags, width or precision) of a field. */
export interface PlainDigit {
  hex: boolean;
  signed: boolean;
  /** 32 for `%d`-class, 64 for `%ld`/`%lld` (the long size of the file is 8 here). */
  bits: 32 | 64;
  /** Where the field lies in the record, and its size in bytes. */
  off: number;
  size: number;
}

/**
 * The conversion of a digit piece when it has a fast byte form (read the field, print the number);
 * undefined for everything else. Shared by the generated writers here and the closures of printfmt-bytes.ts.
 */
export function plainDigit(p: Extract<Piece, { t: 'digit' }>): PlainDigit | undefined {
  if (p.len) return undefined;
  const d = parseDirective(p.fmt);
  if (d.left || d.plus || d.space || d.alt || d.zero || d.width !== -1 || d.prec !== -1) return undefined;
  const hex = d.conv === 'x';
  if (!hex && d.conv !== 'd' && d.conv !== 'i' && d.conv !== 'u') return undefined;
  const bits = p.ls >= 1 ? 64 : p.ls === 0 ? 32 : 0;
  if (bits === 0) return undefined;
  const l = loc(p.arg);
  if (!l) return undefined;
  return { hex, signed: d.conv === 'd' || d.conv === 'i', bits, off: l.off, size: l.size };
}

/** One piece as code: `code` writes at most `max` bytes at `p` (room reserved before it). */
interface Frag {
  code: string;
  max: number;
  /** True when the code may call out (then the room for the rest is reserved again after it). */
  calls: boolean;
}

/** Code that calls the piece's closure `fn` (argument `name`) with `out.pos` in sync. */
function callCode(name: string): string {
  return `out.pos = p; ${name}(out, r); b = out.buf; p = out.pos;`;
}

/**
 * An unsigned 4- or 2-byte value at `at + off` of the record, from its bytes (the record lies
 * inside `buf`). Spelled out rather than calling Buffer's readUInt32LE: a generated writer reads
 * many fields, and past V8's inlining budget each such call would go through argument checks.
 */
function u32Code(le: boolean, off: number): string {
  const [a, b, c, d] = le ? [off + 3, off + 2, off + 1, off] : [off, off + 1, off + 2, off + 3];
  return `((buf[at + ${a}] * 16777216) + ((buf[at + ${b}] << 16) | (buf[at + ${c}] << 8) | buf[at + ${d}]))`;
}

function u16Code(le: boolean, off: number): string {
  const [a, b] = le ? [off + 1, off] : [off, off + 1];
  return `((buf[at + ${a}] << 8) | buf[at + ${b}])`;
}

/** The read of an unsigned field of 1, 2 or 4 bytes (0 outside the record), or undefined. */
function readCode(le: boolean, off: number, size: number): string | undefined {
  if (size === 4) return `(${off + 4} <= len ? ${u32Code(le, off)} : 0)`;
  if (size === 2) return `(${off + 2} <= len ? ${u16Code(le, off)} : 0)`;
  if (size === 1) return `(${off + 1} <= len ? buf[at + ${off}] : 0)`;
  return undefined;
}

/**
 * The code of a plain number conversion of a field, the same cases (and results) as
 * `printfmt-bytes.ts` `digit`; undefined when the piece has no such fast form. `slow` names the
 * piece's closure, called where the number cannot be printed exactly here.
 */
function digitFrag(env: RenderEnv, p: Extract<Piece, { t: 'digit' }>, slow: string): Frag | undefined {
  const l = plainDigit(p);
  if (!l) return undefined;
  const { hex, signed, bits } = l;
  const le = env.le;
  if (l.size <= 4) {
    const rd = readCode(le, l.off, l.size);
    if (!rd) return undefined;
    // A field of up to 4 bytes is read unsigned; printed as int it takes the sign of its bit 31.
    if (hex) return { code: `p = hex32To(b, p, ${rd});`, max: 8, calls: false };
    if (signed && bits === 32) return { code: `p = decTo(b, p, ${rd} | 0);`, max: 11, calls: false };
    return { code: `p = decTo(b, p, ${rd});`, max: 10, calls: false };
  }
  if (l.size !== 8) return undefined;
  const off = l.off;
  const loRead = u32Code(le, le ? off : off + 4);
  const hiRead = u32Code(le, le ? off + 4 : off);
  const head = `if (${off + 8} > len) { ${callCode(slow)} } else { lo = ${loRead};`;
  if (bits === 32) {
    const body = hex ? 'p = hex32To(b, p, lo);' : `p = decTo(b, p, ${signed ? 'lo | 0' : 'lo'});`;
    return { code: `${head} ${body} }`, max: 11, calls: true };
  }
  if (hex) return { code: `${head} hi = ${hiRead}; p = hex64To(b, p, hi, lo); }`, max: 16, calls: true };
  const neg = signed ? ` else if (hi >= 0xffe00000) p = decTo(b, p, -((0xffffffff - hi) * 4294967296 + (4294967296 - lo)));` : '';
  return {
    code: `${head} hi = ${hiRead}; if (hi < 0x200000) p = decTo(b, p, hi * 4294967296 + lo);${neg} else { ${callCode(slow)} } }`,
    max: 21,
    calls: true,
  };
}

/**
 * Compiles a print fmt to one byte writer; `fns[i]` is the closure for piece `i` (used for the
 * pieces without inline code and for the rare values inline code does not print).
 */
export function generateBytes(env: RenderEnv, pf: PrintFmt, fns: ByteFn[]): ByteFn {
  const frags: Frag[] = pf.pieces.map((p, i) => {
    if (p.t === 'text') {
      const bytes = Buffer.from(p.s, 'latin1');
      if (bytes.length > 32) return { code: `b.set(t${i}, p); p += ${bytes.length};`, max: bytes.length, calls: false };
      return { code: Array.from(bytes, (c) => `b[p++] = ${c};`).join(' '), max: bytes.length, calls: false };
    }
    if (p.t === 'digit') {
      const f = digitFrag(env, p, `f${i}`);
      if (f) return f;
    }
    return { code: callCode(`f${i}`), max: 0, calls: true };
  });
  // Room: before each piece that follows a call (and at the start), reserve what the inline
  // pieces up to the next plain call can write; a call that may happen inside a piece reserves
  // the rest again after it.
  const lines: string[] = [];
  for (let i = 0; i < frags.length; i++) {
    const f = frags[i];
    const plainCall = f.calls && f.max === 0;
    if (!plainCall && (i === 0 || frags[i - 1].calls)) {
      let need = 0;
      for (let j = i; j < frags.length && !(frags[j].calls && frags[j].max === 0); j++) need += frags[j].max;
      lines.push(`if (p + ${need} > b.length) { out.pos = p; out.room(${need}); b = out.buf; p = out.pos; }`);
    }
    lines.push(f.code);
  }
  const texts = pf.pieces.map((p) => (p.t === 'text' ? Buffer.from(p.s, 'latin1') : undefined));
  const names = [...fns.map((_, i) => `f${i}`), ...texts.map((_, i) => `t${i}`), 'decTo', 'hex32To', 'hex64To'];
  const src = [
    'return function write(out, r) {',
    '  const buf = r.buf, at = r.pos, len = r.len;',
    '  let b = out.buf, p = out.pos, lo = 0, hi = 0;',
    ...lines.map((l) => '  ' + l),
    '  out.pos = p;',
    '};',
  ].join('\n');
  return new Function(...names, src)(...fns, ...texts, decTo, hex32To, hex64To) as ByteFn;
}
