/**
 * The fixed-layout structures of trace.dat metadata, declared with binary-parser (one parser per
 * byte order). Variable parts (strings, lists) and the hot ring-buffer paths are read by hand.
 */
import { Parser } from 'binary-parser';

/** A v7 section header: id, flags (bit 0 = compressed), description string id, size in bytes. */
export interface SectionHeader {
  id: number;
  flags: number;
  stringId: number;
  /** Size of the section's data (compressed size when compressed). */
  size: bigint;
}

/** The header of a compressed block: compressed and uncompressed sizes in bytes. */
export interface CompressHeader {
  csize: number;
  usize: number;
}

/** TSC2NSEC option data. */
export interface Tsc2NsecRaw {
  mult: number;
  shift: number;
  offset: bigint;
}

const section = (e: 'little' | 'big') =>
  new Parser().endianness(e).uint16('id').uint16('flags').uint32('stringId').uint64('size');
const compress = (e: 'little' | 'big') => new Parser().endianness(e).uint32('csize').uint32('usize');
const tsc2nsec = (e: 'little' | 'big') => new Parser().endianness(e).uint32('mult').uint32('shift').uint64('offset');

const PARSERS = {
  le: { section: section('little'), compress: compress('little'), tsc2nsec: tsc2nsec('little') },
  be: { section: section('big'), compress: compress('big'), tsc2nsec: tsc2nsec('big') },
};

/** Bytes of a section header. */
export const SECTION_HEADER_SIZE = 16;
/** Bytes of a compression header. */
export const COMPRESS_HEADER_SIZE = 8;

/** Decodes a section header from (at least) 16 bytes. */
export function parseSectionHeader(b: Buffer, le: boolean): SectionHeader {
  return (le ? PARSERS.le : PARSERS.be).section.parse(b) as SectionHeader;
}

/** Decodes a compression header from (at least) 8 bytes. */
export function parseCompressHeader(b: Buffer, le: boolean): CompressHeader {
  return (le ? PARSERS.le : PARSERS.be).compress.parse(b) as CompressHeader;
}

/** Decodes TSC2NSEC option data (16 bytes). */
export function parseTsc2Nsec(b: Buffer, le: boolean): Tsc2NsecRaw {
  return (le ? PARSERS.le : PARSERS.be).tsc2nsec.parse(b) as Tsc2NsecRaw;
}
