/**
 * Finding structures in a real trace.dat v7 file's bytes (little-endian), so that tests can damage
 * one field of a real recording: the options (walked along their chain of sections) and the
 * compressed chunks of a CPU's data. Layout: trace-cmd's `trace-cmd.dat.v7.5.txt`.
 */

/** One option of a v7 file: its id and where its data lies in the file. */
export interface OptionAt {
  id: number;
  /** File offset of the option's data (after its u16 id and u32 size). */
  dataAt: number;
  size: number;
}

/** The file offset of the first options section (after magic, version, endianness, long and page size, compression strings). */
function firstOptionsOffset(b: Buffer): number {
  let p = b.indexOf(0, 10) + 1 + 2 + 4;
  p = b.indexOf(0, p) + 1;
  p = b.indexOf(0, p) + 1;
  return Number(b.readBigUInt64LE(p));
}

/** Every option of a v7 file whose options sections are uncompressed (as trace-cmd writes them). */
export function v7Options(b: Buffer): OptionAt[] {
  const out: OptionAt[] = [];
  let off = firstOptionsOffset(b);
  while (off !== 0) {
    if (b.readUInt16LE(off + 2) & 1) throw new Error('compressed options section: not handled by this helper');
    let p = off + 16;
    let next = 0;
    for (;;) {
      const id = b.readUInt16LE(p);
      const size = b.readUInt32LE(p + 2);
      if (id === 0) {
        next = size >= 8 ? Number(b.readBigUInt64LE(p + 6)) : 0;
        break;
      }
      out.push({ id, dataAt: p + 6, size });
      p += 6 + size;
    }
    off = next;
  }
  return out;
}

/** A BUFFER option (id 3): where its page size is, and its CPUs' data. */
export interface BufferAt {
  name: string;
  pageSizeAt: number;
  cpus: { cpu: number; offset: number; size: number }[];
}

/** The BUFFER options of a v7 file. */
export function v7Buffers(b: Buffer): BufferAt[] {
  return v7Options(b)
    .filter((o) => o.id === 3)
    .map((o) => {
      let p = o.dataAt + 8;
      const name = b.toString('latin1', p, b.indexOf(0, p));
      p = b.indexOf(0, p) + 1;
      p = b.indexOf(0, p) + 1; // the buffer's clock text
      const pageSizeAt = p;
      const n = b.readUInt32LE(p + 4);
      p += 8;
      const cpus = [];
      for (let i = 0; i < n; i++, p += 20)
        cpus.push({ cpu: b.readUInt32LE(p), offset: Number(b.readBigUInt64LE(p + 4)), size: Number(b.readBigUInt64LE(p + 12)) });
      return { name, pageSizeAt, cpus };
    });
}

/** A compressed chunk of a CPU's data: file offset of its header, sizes, and where its compressed bytes start. */
export interface ChunkAt {
  at: number;
  csize: number;
  usize: number;
  dataAt: number;
}

/** The chunks of one CPU's compressed data (u32 count, then u32 csize, u32 usize, bytes, each). */
export function v7Chunks(b: Buffer, cpu: { offset: number }): ChunkAt[] {
  const n = b.readUInt32LE(cpu.offset);
  const out: ChunkAt[] = [];
  let p = cpu.offset + 4;
  for (let i = 0; i < n; i++) {
    const csize = b.readUInt32LE(p);
    out.push({ at: p, csize, usize: b.readUInt32LE(p + 4), dataAt: p + 8 });
    p += 8 + csize;
  }
  return out;
}
