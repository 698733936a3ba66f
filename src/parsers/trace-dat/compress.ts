/**
 * Decompression of trace.dat v7 blocks: zstd (fzstd) and zlib (node:zlib), as named in the file
 * header's compression algorithm string.
 */
import { inflateSync } from 'node:zlib';
import { decompress as zstdDecompress } from 'fzstd';

/** A decompressor for one algorithm: compressed bytes and the expected output size → output. */
export type Inflate = (data: Buffer, size: number) => Buffer;

/** Returns the decompressor for a trace.dat compression name, or undefined when unsupported. */
export function inflaterFor(name: string): Inflate | undefined {
  if (name === 'zstd')
    return (data, size) => {
      const out = zstdDecompress(data, new Uint8Array(size));
      return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
    };
  if (name === 'zlib') return (data, size) => inflateSync(data, { maxOutputLength: Math.max(size, 1) });
  return undefined;
}
