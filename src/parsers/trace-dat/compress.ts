/**
 * Decompression of trace.dat v7 blocks: zstd and zlib, as named in the file header's compression
 * algorithm string. zstd uses the reference zstd decoder compiled to WebAssembly
 * (@bokuweb/zstd-wasm, ~9× faster than a JS decoder on trace pages); if it cannot be loaded, the
 * pure-JS fzstd is used. zlib uses node:zlib.
 */
import { inflateSync } from 'node:zlib';
import { decompress as fzstdDecompress } from 'fzstd';

/** A decompressor for one algorithm: compressed bytes and the expected output size → output. */
export type Inflate = (data: Buffer, size: number) => Buffer;

type WasmDecompress = (buf: Uint8Array, opts?: { defaultHeapSize?: number }) => Uint8Array;

/** The WebAssembly zstd decoder, loaded once (top-level await); undefined when unavailable. */
const wasmZstd: WasmDecompress | undefined = await (async () => {
  try {
    const m = (await import('@bokuweb/zstd-wasm')) as unknown as { init(): Promise<void>; decompress: WasmDecompress };
    await m.init();
    return m.decompress;
  } catch {
    return undefined;
  }
})();

const toBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

/** Returns the decompressor for a trace.dat compression name, or undefined when unsupported. */
export function inflaterFor(name: string): Inflate | undefined {
  if (name === 'zstd')
    return (data, size) => {
      if (wasmZstd) {
        // The wasm decoder returns a copy out of its heap.
        return toBuffer(wasmZstd(data, { defaultHeapSize: Math.max(size, 1 << 16) }));
      }
      return toBuffer(fzstdDecompress(data, new Uint8Array(size)));
    };
  if (name === 'zlib') return (data, size) => inflateSync(data, { maxOutputLength: Math.max(size, 1) });
  return undefined;
}
