/**
 * The file offset a uprobe needs for a function: uprobe_events takes `PATH:OFFSET` where OFFSET is
 * the function's place in the file, not its virtual address. For an ELF64 little-endian binary:
 * offset = symbol value − p_vaddr + p_offset of the PT_LOAD segment holding the symbol.
 * Reference: the ELF specification (System V ABI), program and section headers, .symtab/.dynsym.
 */
import { readFileSync } from 'node:fs';
import { UserError } from '../model/errors.js';

const PT_LOAD = 1;
const SHT_SYMTAB = 2;
const SHT_DYNSYM = 11;

/** A function symbol with its virtual address and the file offset computed from its segment. */
export interface ElfSymbolOffset {
  name: string;
  /** st_value: the virtual address the linker gave the symbol. */
  vaddr: bigint;
  /** The offset in the file, for `uprobe_events`. */
  fileOffset: bigint;
  /** The PT_LOAD segment used (p_vaddr, p_offset). */
  segment: { vaddr: bigint; offset: bigint };
}

/** Finds symbols in an ELF64 LE file and computes their uprobe file offsets; a UserError naming the file when it cannot. */
export function elfSymbolOffsets(path: string, names: string[]): Map<string, ElfSymbolOffset> {
  let b: Buffer;
  try {
    b = readFileSync(path);
  } catch (e) {
    throw new UserError(`cannot read ${path}: ${(e as Error).message}`);
  }
  const bad = (what: string): never => {
    throw new UserError(`${path}: ${what}`);
  };
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46) bad('not an ELF file');
  if (b[4] !== 2 || b[5] !== 1) bad('expected a 64-bit little-endian ELF file');
  const phoff = Number(b.readBigUInt64LE(32));
  const shoff = Number(b.readBigUInt64LE(40));
  const phentsize = b.readUInt16LE(54);
  const phnum = b.readUInt16LE(56);
  const shentsize = b.readUInt16LE(58);
  const shnum = b.readUInt16LE(60);
  if (phoff + phnum * phentsize > b.length || shoff + shnum * shentsize > b.length) bad('header tables run past the end of the file');

  const loads: { vaddr: bigint; memsz: bigint; offset: bigint }[] = [];
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    if (b.readUInt32LE(p) !== PT_LOAD) continue;
    loads.push({ offset: b.readBigUInt64LE(p + 8), vaddr: b.readBigUInt64LE(p + 16), memsz: b.readBigUInt64LE(p + 40) });
  }
  const sections = Array.from({ length: shnum }, (_, i) => {
    const s = shoff + i * shentsize;
    return { type: b.readUInt32LE(s + 4), offset: Number(b.readBigUInt64LE(s + 24)), size: Number(b.readBigUInt64LE(s + 32)), link: b.readUInt32LE(s + 40), entsize: Number(b.readBigUInt64LE(s + 56)) };
  });
  const want = new Set(names);
  const out = new Map<string, ElfSymbolOffset>();
  for (const sec of sections.filter((s) => s.type === SHT_SYMTAB || s.type === SHT_DYNSYM)) {
    const str = sections[sec.link];
    if (!str || sec.entsize < 24) continue;
    for (let off = sec.offset; off + 24 <= sec.offset + sec.size; off += sec.entsize) {
      const nameAt = str.offset + b.readUInt32LE(off);
      const end = b.indexOf(0, nameAt);
      const name = b.toString('latin1', nameAt, end);
      if (!want.has(name) || out.has(name)) continue;
      const vaddr = b.readBigUInt64LE(off + 8);
      const seg = loads.find((l) => l.vaddr <= vaddr && vaddr < l.vaddr + l.memsz);
      if (!seg) bad(`symbol ${name} at 0x${vaddr.toString(16)} lies in no PT_LOAD segment`);
      out.set(name, { name, vaddr, fileOffset: vaddr - seg!.vaddr + seg!.offset, segment: { vaddr: seg!.vaddr, offset: seg!.offset } });
    }
  }
  const missing = names.filter((n) => !out.has(n));
  if (missing.length) bad(`no symbol ${missing.join(', ')} (stripped binary?)`);
  return out;
}
