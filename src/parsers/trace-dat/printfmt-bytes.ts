/**
 * Print-fmt rendering straight into an output byte buffer: the common pieces (literal text, plain
 * `%d %u %x %lx %llx` of fields and constant-index array elements, plain `%s` of strings in the
 * record, `__print_symbolic`) write bytes without building strings; every other piece is rendered
 * as text by the generic code and copied. The bytes are the same as the text's (latin1).
 */
import { parseDirective } from './cprintf.js';
import { Out } from './out.js';
import type { Piece, PrintFmt } from './printfmt-parse.js';
import { dynLoc, type Rec, type RenderEnv } from './printfmt-eval.js';
import { pieceRenderer, smallReader } from './printfmt-fast.js';
import { generateBytes, loc, plainDigit } from './printfmt-gen.js';

type ByteFn = (out: Out, r: Rec) => void;

const TWO32 = 2 ** 32;

const reader = smallReader;

function digit(env: RenderEnv, p: Extract<Piece, { t: 'digit' }>, slow: ByteFn): ByteFn | undefined {
  const l = plainDigit(p);
  if (!l) return undefined;
  const { hex, signed, bits } = l;
  if (l.size <= 4) {
    const rd = reader(env, l.off, l.size);
    if (!rd) return undefined;
    // A field of up to 4 bytes is read unsigned; printed as int it takes the sign of its bit 31.
    if (hex) return (out, r) => out.hex32(rd(r));
    if (signed && bits === 32) return (out, r) => out.dec(rd(r) | 0);
    return (out, r) => out.dec(rd(r));
  }
  if (l.size !== 8) return undefined;
  const off = l.off;
  const le = env.le;
  // 64-bit hex straight from the record's bytes.
  if (hex && bits === 64)
    return (out, r) => {
      if (off + 8 > r.len) return slow(out, r);
      out.hexBytes(r.buf, r.pos + off, 8, le);
    };
  return (out, r) => {
    if (off + 8 > r.len) return slow(out, r);
    const at = r.pos + off;
    const lo = le ? r.buf.readUInt32LE(at) : r.buf.readUInt32BE(at + 4);
    if (bits === 32) {
      if (hex) out.hex32(lo);
      else out.dec(signed ? lo | 0 : lo);
      return;
    }
    const hi = le ? r.buf.readUInt32LE(at + 4) : r.buf.readUInt32BE(at);
    if (hi < 0x200000) return out.dec(hi * TWO32 + lo);
    if (signed && hi >= 0xffe00000) return out.dec(-((0xffffffff - hi) * TWO32 + (TWO32 - lo)));
    slow(out, r);
  };
}

/** Copies a NUL-terminated string of the record (at most `max` bytes from `off`). */
function copyCString(out: Out, r: Rec, off: number, max: number): void {
  const start = r.pos + off;
  const limit = Math.min(r.pos + r.len, start + Math.max(0, max));
  if (start >= limit) return;
  let end = r.buf.indexOf(0, start);
  if (end < 0 || end > limit) end = limit;
  out.bytes(r.buf, start, end);
}

function string(env: RenderEnv, p: Extract<Piece, { t: 'string' }>): ByteFn | undefined {
  if (p.len) return undefined;
  const d = parseDirective(p.fmt);
  if (d.width !== -1 || d.prec !== -1) return undefined;
  const a = p.arg;
  if (a.k === 'getstr' && a.f) {
    const f = a.f;
    return (out, r) => {
      const { off, len } = dynLoc(env, r, f);
      if (len) copyCString(out, r, off, r.len - off);
    };
  }
  if (a.k === 'field' && a.f && a.f.isArray && !a.f.isDynamic) {
    const f = a.f;
    return (out, r) => copyCString(out, r, f.offset, f.size || r.len - f.offset);
  }
  if (a.k === 'symbolic') {
    const l = loc(a.x);
    const rd = l && reader(env, l.off, l.size);
    if (!rd) return undefined;
    const table = new Map<number, Buffer>();
    for (let i = a.list.length - 1; i >= 0; i--)
      if (a.list[i].v >= 0n && a.list[i].v < BigInt(TWO32)) table.set(Number(a.list[i].v), Buffer.from(a.list[i].s, 'latin1'));
    return (out, r) => {
      const v = rd(r);
      const s = table.get(v);
      if (s) out.bytes(s, 0, s.length);
      else {
        out.byte(48);
        out.byte(120);
        out.hex32(v);
      }
    };
  }
  return undefined;
}

/**
 * Compiles a whole print fmt to a byte writer (pieces without a byte path are rendered as text):
 * a closure per piece, called from one generated function (see `printfmt-gen.ts`).
 */
export function compileBytes(env: RenderEnv, pf: PrintFmt): ByteFn {
  const fns: ByteFn[] = pf.pieces.map((p) => {
    const text = pieceRenderer(env, p);
    const slow: ByteFn = (out, r) => out.str(text(r));
    if (p.t === 'text') {
      const b = Buffer.from(p.s, 'latin1');
      return (out) => out.put(b);
    }
    if (p.t === 'digit') return digit(env, p, slow) ?? slow;
    if (p.t === 'string') return string(env, p) ?? slow;
    return slow;
  });
  return generateBytes(env, pf, fns);
}
