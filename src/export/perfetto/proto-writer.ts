/**
 * A small protobuf wire-format writer (proto2/proto3 encoding: varints, length-delimited fields,
 * fixed64), writing into one growing Buffer that is reused message after message.
 *
 * Why hand-written rather than protobufjs or @bufbuild/protobuf: those encode from one object per
 * message, and the exporter writes one FtraceEvent per merged event, mostly straight from the
 * input's bytes (generic-events.ts). Measured by `node bench/perfetto-encode.mjs` (200 k
 * sched_switch events, this shared 2-core machine, 2026-12-02): 4.48 M events/s, against 1.15 M
 * with protobufjs's reflection (FtraceEvent.encode of an object per event, 3.9× slower) and 2.91 M
 * with its low-level Writer (fork/ldelim per nested message, 1.5× slower); same bytes. The bench
 * prints the current figures.
 *
 * Nested messages reserve one byte for their length and move their content when it turns out
 * longer than 127 bytes (one copy, only for large messages), so small messages cost no padding.
 * Numbers are safe integers; 64-bit values beyond 2^53 come as bigint.
 */

import { hexNumber } from '../../parsers/body-fields.js';

/** Wire types (protobuf encoding spec). */
export const VARINT = 0;
export const FIXED64 = 1;
export const LEN = 2;

const TWO_32 = 0x1_0000_0000;

/** Bytes of the varint encoding of a non-negative safe integer. */
export function varintSize(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** A reusable protobuf message buffer. */
export class ProtoBuf {
  buf: Buffer;
  /** A view of `buf`, for writers that copy whole words. */
  view: DataView<ArrayBufferLike>;
  len = 0;

  constructor(capacity = 4096) {
    this.buf = Buffer.allocUnsafe(capacity);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }

  /** Empties the buffer (keeps its memory). */
  reset(): void {
    this.len = 0;
  }

  /** The bytes written so far (a view, valid until the next write). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.len);
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const b = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(b, 0, 0, this.len);
    this.buf = b;
    this.view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  /** A varint of a non-negative safe integer. */
  varint(v: number): void {
    this.ensure(10);
    const b = this.buf;
    let o = this.len;
    if (v < 0x8000_0000) {
      while (v > 127) {
        b[o++] = (v & 127) | 128;
        v >>>= 7;
      }
      b[o++] = v;
    } else {
      // Two 32-bit halves, shifted together 7 bits at a time.
      let lo = v >>> 0;
      let hi = (v - lo) / TWO_32;
      while (hi > 0 || lo > 127) {
        b[o++] = (lo & 127) | 128;
        lo = ((lo >>> 7) | (hi << 25)) >>> 0;
        hi >>>= 7;
      }
      b[o++] = lo;
    }
    this.len = o;
  }

  /** A varint of an unsigned 64-bit value. */
  varintBig(v: bigint): void {
    if (v <= 0x1f_ffff_ffff_ffffn && v >= 0n) return this.varint(Number(v));
    this.ensure(10);
    v = BigInt.asUintN(64, v);
    while (v > 127n) {
      this.buf[this.len++] = Number(v & 127n) | 128;
      v >>= 7n;
    }
    this.buf[this.len++] = Number(v);
  }

  /** A field key. */
  tag(field: number, wire: number): void {
    const k = field * 8 + wire;
    if (k < 128 && this.len < this.buf.length) this.buf[this.len++] = k;
    else this.varint(k);
  }

  /** An unsigned varint field (uint32, uint64, enum, or a non-negative int). */
  uint(field: number, v: number): void {
    this.tag(field, VARINT);
    this.varint(v);
  }

  /** A signed varint field (int32, int64): negative values take ten bytes (two's complement). */
  int(field: number, v: number): void {
    this.tag(field, VARINT);
    if (v >= 0) return this.varint(v);
    // Two's complement of a safe negative integer, as 64 bits in two halves.
    this.ensure(10);
    const b = this.buf;
    let o = this.len;
    let lo = v >>> 0;
    let hi = Math.floor(v / TWO_32) >>> 0;
    for (let i = 0; i < 9; i++) {
      b[o++] = (lo & 127) | 128;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    b[o++] = lo & 1;
    this.len = o;
  }

  /** A 64-bit varint field given as bigint (uint64 beyond 2^53, or int64 two's complement). */
  big(field: number, v: bigint): void {
    this.tag(field, VARINT);
    this.varintBig(v);
  }

  /** A bool field. */
  bool(field: number, v: boolean): void {
    this.tag(field, VARINT);
    this.varint(v ? 1 : 0);
  }

  /** A fixed64 field holding a non-negative safe integer (little-endian). */
  fixed64(field: number, v: number): void {
    this.tag(field, FIXED64);
    this.u32(v >>> 0);
    this.u32(Math.floor(v / TWO_32) >>> 0);
  }

  /** Four bytes, little-endian. */
  private u32(v: number): void {
    this.ensure(4);
    const b = this.buf;
    const o = this.len;
    b[o] = v & 255;
    b[o + 1] = (v >>> 8) & 255;
    b[o + 2] = (v >>> 16) & 255;
    b[o + 3] = v >>> 24;
    this.len = o + 4;
  }

  /** A fixed64 field holding an unsigned 64-bit value (number or bigint). */
  fixed64Any(field: number, v: number | bigint): void {
    if (typeof v === 'number') return this.fixed64(field, v);
    this.tag(field, FIXED64);
    this.ensure(8);
    this.buf.writeBigUInt64LE(BigInt.asUintN(64, v), this.len);
    this.len += 8;
  }

  /** A fixed64 field from hex digits s[a, z) (at most 16; no bigint made). */
  fixed64Hex(field: number, s: Uint8Array, a: number, z: number): void {
    this.tag(field, FIXED64);
    const cut = Math.max(a, z - 8);
    this.u32(hexNumber(s, cut, z));
    this.u32(hexNumber(s, a, cut));
  }

  /** A string field (UTF-8). */
  string(field: number, s: string): void {
    this.stringRange(field, s, 0, s.length);
  }

  /** A string field holding s[a, z). */
  stringRange(field: number, s: string, a: number, z: number): void {
    this.tag(field, LEN);
    const n = z - a;
    // ASCII strings below 128 characters (nearly all of them): one length byte, copied as is.
    if (n < 128) {
      this.ensure(n + 1);
      const b = this.buf;
      let o = this.len + 1;
      let i = a;
      for (; i < z; i++) {
        const c = s.charCodeAt(i);
        if (c >= 128) break;
        b[o++] = c;
      }
      if (i === z) {
        b[this.len] = n;
        this.len = o;
        return;
      }
    }
    const t = a === 0 && z === s.length ? s : s.slice(a, z);
    const size = Buffer.byteLength(t, 'utf8');
    this.varint(size);
    this.ensure(size);
    this.len += this.buf.write(t, this.len, 'utf8');
  }

  /** A string or bytes field holding s[a, z) (UTF-8 bytes copied as they are). */
  bytesRange(field: number, s: Uint8Array, a: number, z: number): void {
    this.tag(field, LEN);
    const n = z - a;
    this.varint(n);
    this.ensure(n);
    const b = this.buf;
    let o = this.len;
    // By hand: a subarray per field (to copy with set) would cost more than the copy itself.
    for (let i = a; i < z; i++) b[o++] = s[i];
    this.len = o;
  }

  /** A bytes field (or an embedded message already encoded). */
  blob(field: number, u: Uint8Array): void {
    this.tag(field, LEN);
    this.varint(u.length);
    this.raw(u);
  }

  /** Appends encoded bytes as they are. */
  raw(u: Uint8Array): void {
    this.ensure(u.length);
    this.buf.set(u, this.len);
    this.len += u.length;
  }

  /** Opens an embedded message; returns the mark to give {@link end}. */
  begin(field: number): number {
    this.tag(field, LEN);
    this.ensure(1);
    this.len++;
    return this.len;
  }

  /** Closes the embedded message opened at `mark`: writes its length before it. */
  end(mark: number): void {
    const size = this.len - mark;
    if (size < 128) {
      this.buf[mark - 1] = size;
      return;
    }
    const extra = varintSize(size) - 1;
    this.ensure(extra);
    this.buf.copyWithin(mark + extra, mark, this.len);
    this.len = mark - 1;
    this.varint(size);
    this.len = mark + extra + size;
  }
}
