#!/usr/bin/env node
/**
 * Rewrites a compressed trace.dat v7 file (zlib or zstd sections and CPU data) as an uncompressed
 * one ("none"), so that a trace-cmd built without zlib — Debian's 3.1.6 — can read the
 * masterarbeit recordings in the benchmark. Everything else stays as it was: each section is
 * decompressed in place of its compressed form, the CPU data of each buffer is written as its
 * pages (page-aligned), and the offsets the options hold (sections, buffers, CPU data, the next
 * options section) are moved to the new layout. Layout facts from trace-cmd's
 * Documentation/trace-cmd/trace-cmd.dat.v7.5.txt, as src/parsers/trace-dat/ reads them.
 *
 * Usage: node bench/dat-uncompress.mjs IN.dat OUT.dat
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { inflateSync } from 'node:zlib';

const OPT = { DONE: 0, BUFFER: 3, HEADER_INFO: 16, CMDLINES: 21 };

/** Decompresses one block ([csize u32][usize u32][data]) at `at`; returns the bytes and the end. */
function block(f, at, inflate) {
  const csize = f.readUInt32LE(at);
  const usize = f.readUInt32LE(at + 4);
  const out = inflate(f.subarray(at + 8, at + 8 + csize), usize);
  if (out.length !== usize) throw new Error(`block at ${at}: ${out.length} bytes, expected ${usize}`);
  return { out, end: at + 8 + csize };
}

/** The options of an options section's content: [{ id, at (of its data), size }]. */
function options(c) {
  const list = [];
  for (let p = 0; p < c.length; ) {
    const id = c.readUInt16LE(p);
    const size = c.readUInt32LE(p + 2);
    list.push({ id, at: p + 6, size });
    p += 6 + size;
    if (id === OPT.DONE) break;
  }
  return list;
}

/** A NUL-terminated string's end (index after its NUL). */
const cstrEnd = (b, p) => b.indexOf(0, p) + 1;

export function uncompress(inPath, outPath) {
  const f = readFileSync(inPath);
  if (f.readUInt8(10) !== 0x37 || f.readUInt8(12) !== 0) throw new Error(`${inPath}: not a little-endian v7 trace.dat`);
  const pageSize = f.readUInt32LE(14);
  const nameEnd = cstrEnd(f, 18);
  const compression = f.toString('latin1', 18, nameEnd - 1);
  const verEnd = cstrEnd(f, nameEnd);
  const firstOptions = Number(f.readBigUInt64LE(verEnd));
  if (compression !== 'zlib') throw new Error(`${inPath}: compression "${compression}" (this tool reads zlib)`);
  const inflate = (data, usize) => inflateSync(data, { finishFlush: 2, maxOutputLength: usize + 1 });

  // Every section reachable from the options, with its content uncompressed.
  const sections = new Map(); // old offset → { id, flags, stringId, content, kind }
  const read = (off, kind) => {
    if (sections.has(off)) return sections.get(off);
    const id = f.readUInt16LE(off);
    const flags = f.readUInt16LE(off + 2);
    const stringId = f.readUInt32LE(off + 4);
    const size = Number(f.readBigUInt64LE(off + 8));
    const content = kind === 'buffer' ? null : flags & 1 ? block(f, off + 16, inflate).out : f.subarray(off + 16, off + 16 + size);
    const s = { off, id, flags, stringId, content: content && Buffer.from(content), kind, cpus: [] };
    sections.set(off, s);
    return s;
  };
  for (let off = firstOptions; off !== 0; ) {
    const s = read(off, 'options');
    let next = 0;
    for (const o of options(s.content)) {
      if (o.id === OPT.DONE) next = o.size >= 8 ? Number(s.content.readBigUInt64LE(o.at)) : 0;
      else if (o.id >= OPT.HEADER_INFO && o.id <= OPT.CMDLINES) read(Number(s.content.readBigUInt64LE(o.at)), 'meta');
      else if (o.id === OPT.BUFFER) {
        const b = read(Number(s.content.readBigUInt64LE(o.at)), 'buffer');
        let p = cstrEnd(s.content, cstrEnd(s.content, o.at + 8));
        p += 4; // page size
        const n = s.content.readUInt32LE(p);
        p += 4;
        for (let i = 0; i < n; i++, p += 20) {
          const cpuOff = Number(s.content.readBigUInt64LE(p + 4));
          const cpuSize = Number(s.content.readBigUInt64LE(p + 12));
          // Compressed CPU data: a u32 chunk count, then the chunks (the size counts the chunks only).
          const pages = [];
          if (b.flags & 1 && cpuSize > 0)
            for (let k = 0, count = f.readUInt32LE(cpuOff), at = cpuOff + 4; k < count; k++) {
              const c = block(f, at, inflate);
              pages.push(c.out);
              at = c.end;
            }
          else pages.push(f.subarray(cpuOff, cpuOff + cpuSize));
          b.cpus.push({ entry: { s, at: p }, data: Buffer.concat(pages) });
        }
      }
    }
    off = next;
  }

  // The new layout: the header, then every section in its old order; CPU data page-aligned.
  const head = Buffer.concat([f.subarray(0, 18), Buffer.from('none\0\0', 'latin1'), Buffer.alloc(8)]);
  const order = [...sections.values()].sort((a, b) => a.off - b.off);
  let pos = head.length;
  const at = new Map();
  for (const s of order) {
    at.set(s.off, pos);
    pos += 16;
    if (s.kind !== 'buffer') pos += s.content.length;
    else
      for (const c of s.cpus) {
        pos = Math.ceil(pos / pageSize) * pageSize;
        c.newOff = pos;
        pos += c.data.length;
      }
  }
  head.writeBigUInt64LE(BigInt(at.get(firstOptions)), head.length - 8);
  // Offsets in the options, to the new layout.
  for (const s of order) {
    if (s.kind !== 'options') continue;
    for (const o of options(s.content)) {
      if (o.id === OPT.DONE && o.size >= 8) {
        const n = Number(s.content.readBigUInt64LE(o.at));
        if (n) s.content.writeBigUInt64LE(BigInt(at.get(n)), o.at);
      } else if ((o.id >= OPT.HEADER_INFO && o.id <= OPT.CMDLINES) || o.id === OPT.BUFFER)
        s.content.writeBigUInt64LE(BigInt(at.get(Number(s.content.readBigUInt64LE(o.at)))), o.at);
    }
    for (const b of order.filter((x) => x.kind === 'buffer'))
      for (const c of b.cpus)
        if (c.entry.s === s) {
          s.content.writeBigUInt64LE(BigInt(c.newOff), c.entry.at + 4);
          s.content.writeBigUInt64LE(BigInt(c.data.length), c.entry.at + 12);
        }
  }
  const parts = [head];
  let w = head.length;
  for (const s of order) {
    const h = Buffer.alloc(16);
    h.writeUInt16LE(s.id, 0);
    h.writeUInt16LE(s.flags & ~1, 2);
    h.writeUInt32LE(s.stringId, 4);
    const size = s.kind === 'buffer' ? s.cpus.reduce((a, c) => Math.max(a, c.newOff + c.data.length), at.get(s.off) + 16) - at.get(s.off) - 16 : s.content.length;
    h.writeBigUInt64LE(BigInt(size), 8);
    parts.push(h);
    w += 16;
    if (s.kind !== 'buffer') {
      parts.push(s.content);
      w += s.content.length;
    } else
      for (const c of s.cpus) {
        parts.push(Buffer.alloc(c.newOff - w));
        parts.push(c.data);
        w = c.newOff + c.data.length;
      }
  }
  writeFileSync(outPath, Buffer.concat(parts));
}

if (import.meta.url === `file://${process.argv[1]}`) uncompress(process.argv[2], process.argv[3]);
