/**
 * Decompression of trace.dat v7 blocks: zstd and zlib, as named in the file header's compression
 * algorithm string. zstd uses the reference zstd decoder compiled to WebAssembly
 * (@bokuweb/zstd-wasm, ~9× faster than a JS decoder on trace pages) once {@link loadFastZstd} has
 * loaded it, and the pure-JS fzstd before that or if it cannot be loaded. zlib uses node:zlib.
 */
import { inflateSync } from 'node:zlib';
import { decompress as fzstdDecompress } from 'fzstd';

/** A decompressor for one algorithm: compressed bytes and the expected output size → output. */
export type Inflate = (data: Buffer, size: number) => Buffer;

type WasmDecompress = (buf: Uint8Array, opts?: { defaultHeapSize?: number }) => Uint8Array;

/** The WebAssembly zstd decoder once {@link loadFastZstd} has loaded it. */
let wasmZstd: WasmDecompress | undefined;
let loading: Promise<void> | undefined;

/**
 * Loads the WebAssembly zstd decoder (once; ~20 MB of memory, so only readers that decompress
 * much call it). Until it is loaded, or if it cannot be, zstd data is decoded by fzstd.
 */
export function loadFastZstd(): Promise<void> {
  loading ??= (async () => {
    try {
      const m = (await import('@bokuweb/zstd-wasm')) as unknown as { init(): Promise<void>; decompress: WasmDecompress };
      await m.init();
      wasmZstd = m.decompress;
    } catch {
      wasmZstd = undefined;
    }
  })();
  return loading;
}

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
