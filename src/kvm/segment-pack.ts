/**
 * The packed form of one thread's segments (segments.ts): chunks of {@link CHUNK} segments, each
 * segment as the difference from the one before it in its chunk, in variable-length integers
 * (7 bits a byte, low first). A chunk decodes on its own (its first segment is relative to t = 0,
 * event 0, where = -1), so a reader unpacks only the chunk it looks at.
 *
 * One segment: `info` (flags in the low 8 bits, arg + 1 above), then |Δevent|, then |Δt| — or t
 * itself as 8 raw bytes when Δt is not a safe integer (a time that is not whole, or not finite) —
 * then |Δwhere|. The flags hold the state (3 bits), the side of its place (ord & 1), whether t is
 * raw, and the signs of Δt, Δwhere and Δevent. On a real host a segment takes 5 to 7 bytes (it took
 * 20 unpacked); the peak of a merge no longer grows by 20 bytes per VM exit of the trace.
 *
 * Chunks go one after another into slabs (growing from 16 KiB to 256 KiB), never split between two:
 * a chunk that does not fit the rest of its slab moves to the next one.
 */
import type { KvmState } from './states.js';

/** Segments per chunk (a power of two). */
export const CHUNK_SHIFT = 8;
export const CHUNK = 1 << CHUNK_SHIFT;
/** Most bytes one packed segment takes: info, Δevent and Δwhere below 2^56, t raw (8). */
const MAX_SEGMENT_BYTES = 4 * 8;
const FIRST_SLAB = 16 << 10;
const LAST_SLAB = 256 << 10;

const RAW_T = 1 << 4;
const NEG_T = 1 << 5;
const NEG_WHERE = 1 << 6;
const NEG_EVENT = 1 << 7;
/** Largest arg + 1 kept (info stays a safe integer); others are kept as -1 (not known). */
const MAX_ARG = 2 ** 44;

/** One chunk unpacked, at rows [base, base + CHUNK) of the caller's columns. */
export interface SegmentColumns {
  t: Float64Array;
  event: Float64Array;
  /** State in the low 3 bits, the side of its place in bit 3. */
  state: Uint8Array;
  arg: Float64Array;
  where: Float64Array;
}

/** Appends segments in packed chunks; the packing's one writer. */
export class SegmentPacker {
  n = 0;
  /** Per chunk: its slab, its byte offset there, and its first segment's time (for searching). */
  chunkSlab = new Uint32Array(8);
  chunkAt = new Uint32Array(8);
  chunkT = new Float64Array(8);
  readonly slabs: Uint8Array[] = [];
  private slab = new Uint8Array(0);
  private used = 0;
  private prevT = 0;
  private prevEvent = 0;
  private prevWhere = -1;
  private readonly raw = new Float64Array(1);
  private readonly rawBytes = new Uint8Array(this.raw.buffer);

  /** Appends a segment starting at host event ordinal `event` (place 2·event + side). */
  push(t: number, event: number, side: number, state: KvmState, arg: number, where: number): void {
    const i = this.n;
    if ((i & (CHUNK - 1)) === 0) this.openChunk(i >>> CHUNK_SHIFT, t);
    else if (this.used + MAX_SEGMENT_BYTES > this.slab.length) this.moveChunk(i >>> CHUNK_SHIFT);
    const dt = t - this.prevT;
    const rawT = !Number.isSafeInteger(dt);
    const dw = where - this.prevWhere;
    const de = event - this.prevEvent;
    const a = Number.isSafeInteger(arg) && arg + 1 >= 0 && arg + 1 < MAX_ARG ? arg + 1 : 0;
    const flags = (state & 7) | ((side & 1) << 3) | (rawT ? RAW_T : dt < 0 ? NEG_T : 0) | (dw < 0 ? NEG_WHERE : 0) | (de < 0 ? NEG_EVENT : 0);
    this.put(flags + a * 256);
    this.put(Math.abs(de));
    if (rawT) {
      this.raw[0] = t;
      this.slab.set(this.rawBytes, this.used);
      this.used += 8;
    } else this.put(Math.abs(dt));
    this.put(Math.abs(dw));
    this.prevT = t;
    this.prevEvent = event;
    this.prevWhere = where;
    this.n = i + 1;
  }

  /** Drops the spare room of the last slab and of the chunk table. */
  trim(): void {
    const chunks = (this.n + CHUNK - 1) >>> CHUNK_SHIFT;
    this.chunkSlab = this.chunkSlab.slice(0, chunks);
    this.chunkAt = this.chunkAt.slice(0, chunks);
    this.chunkT = this.chunkT.slice(0, chunks);
    if (this.slabs.length) this.slabs[this.slabs.length - 1] = this.slab = this.slab.slice(0, this.used);
  }

  /** Bytes held. */
  bytes(): number {
    return this.slabs.reduce((a, s) => a + s.byteLength, 0) + this.chunkSlab.byteLength + this.chunkAt.byteLength + this.chunkT.byteLength;
  }

  /** Unpacks chunk c (of the `n` segments) into rows [base, …) of `out`. */
  unpack(c: number, out: SegmentColumns, base: number): void {
    const b = this.slabs[this.chunkSlab[c]];
    let p = this.chunkAt[c];
    const end = base + Math.min(CHUNK, this.n - c * CHUNK);
    let t = 0;
    let event = 0;
    let where = -1;
    for (let r = base; r < end; r++) {
      // Variable-length integers, read inline (this loop runs once per segment and reader).
      let x = b[p++];
      let info = x & 127;
      for (let m = 128; x >= 128; m *= 128) (x = b[p++]), (info += (x & 127) * m);
      x = b[p++];
      let de = x & 127;
      for (let m = 128; x >= 128; m *= 128) (x = b[p++]), (de += (x & 127) * m);
      const flags = info % 256;
      event += flags & NEG_EVENT ? -de : de;
      if (flags & RAW_T) {
        this.rawBytes.set(b.subarray(p, p + 8));
        t = this.raw[0];
        p += 8;
      } else {
        x = b[p++];
        let dt = x & 127;
        for (let m = 128; x >= 128; m *= 128) (x = b[p++]), (dt += (x & 127) * m);
        t += flags & NEG_T ? -dt : dt;
      }
      x = b[p++];
      let dw = x & 127;
      for (let m = 128; x >= 128; m *= 128) (x = b[p++]), (dw += (x & 127) * m);
      where += flags & NEG_WHERE ? -dw : dw;
      out.t[r] = t;
      out.event[r] = event;
      out.state[r] = flags & 15;
      out.arg[r] = (info - flags) / 256 - 1;
      out.where[r] = where;
    }
  }

  /** A non-negative safe integer, 7 bits a byte. */
  private put(v: number): void {
    const b = this.slab;
    let p = this.used;
    while (v >= 128) {
      b[p++] = (v % 128) | 128;
      v = Math.floor(v / 128);
    }
    b[p++] = v;
    this.used = p;
  }

  /** Starts chunk c with a segment at time t. */
  private openChunk(c: number, t: number): void {
    if (c === this.chunkSlab.length) this.growTable();
    if (this.used + MAX_SEGMENT_BYTES > this.slab.length) this.newSlab();
    this.chunkSlab[c] = this.slabs.length - 1;
    this.chunkAt[c] = this.used;
    this.chunkT[c] = t;
    this.prevT = 0;
    this.prevEvent = 0;
    this.prevWhere = -1;
  }

  /** Moves the open chunk c to a new slab (its slab is full: a chunk is never split; the old slab keeps its bytes, unused). */
  private moveChunk(c: number): void {
    const bytes = this.slab.subarray(this.chunkAt[c], this.used);
    this.newSlab();
    this.slab.set(bytes, 0);
    this.used = bytes.length;
    this.chunkSlab[c] = this.slabs.length - 1;
    this.chunkAt[c] = 0;
  }

  /** A slab twice the last one's size, from FIRST_SLAB up to LAST_SLAB (both hold a whole chunk). */
  private newSlab(): void {
    this.slab = new Uint8Array(Math.min(LAST_SLAB, Math.max(FIRST_SLAB, 2 * this.slab.length)));
    this.slabs.push(this.slab);
    this.used = 0;
  }

  private growTable(): void {
    const k = this.chunkSlab.length * 2;
    const grow = <A extends Uint32Array | Float64Array>(a: A, b: A): A => (b.set(a), b);
    this.chunkSlab = grow(this.chunkSlab, new Uint32Array(k));
    this.chunkAt = grow(this.chunkAt, new Uint32Array(k));
    this.chunkT = grow(this.chunkT, new Float64Array(k));
  }
}
