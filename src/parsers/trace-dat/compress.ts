/**
 * Decompression of trace.dat v7 blocks: zstd and zlib, as named in the file header's compression
 * algorithm string. zstd uses the reference zstd decoder compiled to WebAssembly
 * (@bokuweb/zstd-wasm, ~9× faster than a JS decoder on trace pages) once {@link loadFastZstd} has
 * loaded it, and the pure-JS fzstd before that or if it cannot be loaded. zlib uses node:zlib.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { decompress as fzstdDecompress } from 'fzstd';

/**
 * A decompressor for one algorithm: compressed bytes and the expected output size → output. With
 * `into` (at least `size` bytes), the output is written there and a view of it returned, so a
 * reader can reuse one buffer for all its blocks. Damaged data is an {@link InflateError}.
 */
export type Inflate = (data: Buffer, size: number, into?: Buffer) => Buffer;

/** Compressed data that cannot be decompressed; the message says why in words (`zstd: corrupt data`). */
export class InflateError extends Error {
  override readonly name = 'InflateError';
}

/**
 * zstd's error codes (the negated `ZSTD_ErrorCode` values of the reference library's
 * zstd_errors.h that a decoder can return) in words.
 */
const ZSTD_ERRORS: Record<number, string> = {
  1: 'error',
  10: 'not zstd data (unknown frame header)',
  12: 'unsupported zstd format version',
  14: 'unsupported frame parameter',
  16: 'frame needs too large a window',
  20: 'corrupt data',
  22: 'checksum mismatch',
  24: 'corrupt data (literals header)',
  30: 'corrupt dictionary',
  32: 'needs a dictionary it was not given',
  64: 'out of memory',
  70: 'decompresses to more bytes than its header gives',
  72: 'data cut short or followed by extra bytes',
};

/** A zstd error code (as the wasm decoder returns it: a u32 holding the negated code) in words. */
export function zstdErrorText(code: number): string {
  const n = 2 ** 32 - (code >>> 0);
  return `zstd: ${ZSTD_ERRORS[n] ?? `error ${n}`}`;
}

/** The parts of the emscripten module of @bokuweb/zstd-wasm that {@link WasmZstd} calls. */
interface ZstdModule {
  HEAPU8: Uint8Array;
  _malloc(n: number): number;
  _free(p: number): void;
  _ZSTD_createDCtx(): number;
  _ZSTD_decompress_usingDict(dctx: number, dst: number, cap: number, src: number, n: number, dict: number, dictSize: number): number;
  _ZSTD_isError(code: number): number;
}

/**
 * zstd frames decoded in the wasm heap with one decompression context and input/output areas
 * that are reused (the package's own `decompress` allocates all three and copies the output into
 * a fresh array for every chunk).
 */
class WasmZstd {
  private dctx: number;
  private src = 0;
  private srcCap = 0;
  private dst = 0;
  private dstCap = 0;

  constructor(private readonly m: ZstdModule) {
    this.dctx = m._ZSTD_createDCtx();
    if (!this.dctx) throw new Error('zstd: cannot create a decompression context');
  }

  /** Decodes `data` (expected to give `size` bytes) into `into` when given, else into a new Buffer. */
  decode(data: Buffer, size: number, into?: Buffer): Buffer {
    const m = this.m;
    if (data.length > this.srcCap) {
      if (this.src) m._free(this.src);
      this.srcCap = Math.max(data.length, 1 << 16);
      this.src = m._malloc(this.srcCap);
    }
    // One byte more than expected, so that output longer than announced is seen as such.
    if (size + 1 > this.dstCap) {
      if (this.dst) m._free(this.dst);
      this.dstCap = Math.max(size + 1, 1 << 16);
      this.dst = m._malloc(this.dstCap);
    }
    if (!this.src || !this.dst) throw new Error('zstd: out of wasm memory');
    // HEAPU8 is read after the mallocs: growing the wasm memory replaces it.
    m.HEAPU8.set(data, this.src);
    const n = m._ZSTD_decompress_usingDict(this.dctx, this.dst, this.dstCap, this.src, data.length, 0, 0);
    if (m._ZSTD_isError(n)) throw new InflateError(zstdErrorText(n));
    const out = into && into.length >= n ? into : Buffer.allocUnsafe(n);
    out.set(m.HEAPU8.subarray(this.dst, this.dst + n));
    return n === out.length ? out : out.subarray(0, n);
  }
}

/** The WebAssembly zstd decoder once {@link loadFastZstd} has loaded it. */
let wasmZstd: WasmZstd | undefined;
let loading: Promise<void> | undefined;

/**
 * Loads the WebAssembly zstd decoder (once; ~20 MB of memory, so only readers that decompress
 * much call it). Until it is loaded, or if it cannot be, zstd data is decoded by fzstd. Resolves
 * to whether the WebAssembly decoder is in use (a test holds the package to it).
 */
export async function loadFastZstd(): Promise<boolean> {
  loading ??= (async () => {
    try {
      const m = (await import('@bokuweb/zstd-wasm')) as unknown as { init(): Promise<void> };
      await m.init();
      // The package exports only whole-buffer helpers; its emscripten module (the same instance,
      // required by file path from the package's own folder) gives the context-reusing calls.
      const require = createRequire(import.meta.url);
      const dir = dirname(require.resolve('@bokuweb/zstd-wasm'));
      const mod = (require(join(dir, 'zstd.js')) as { Module: ZstdModule }).Module;
      wasmZstd = new WasmZstd(mod);
    } catch {
      wasmZstd = undefined;
    }
  })();
  await loading;
  return wasmZstd !== undefined;
}

/** Returns the decompressor for a trace.dat compression name, or undefined when unsupported. */
export function inflaterFor(name: string): Inflate | undefined {
  if (name === 'zstd')
    return (data, size, into) => {
      if (wasmZstd) return wasmZstd.decode(data, size, into);
      let out: Uint8Array;
      try {
        // Without an output buffer: given one, fzstd returns all of it, however little it wrote,
        // and a header that claims more than the chunk holds would pass unseen.
        out = fzstdDecompress(data);
      } catch (e) {
        throw new InflateError(`zstd: ${(e as Error).message}`);
      }
      if (into && into.length >= out.length) {
        into.set(out);
        return into.subarray(0, out.length);
      }
      return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
    };
  if (name === 'zlib')
    return (data, size, into) => {
      let out: Buffer;
      try {
        out = inflateSync(data, { maxOutputLength: Math.max(size, 1) });
      } catch (e) {
        throw new InflateError(zlibErrorText(e as NodeJS.ErrnoException, size));
      }
      if (!into || into.length < out.length) return out;
      into.set(out);
      return into.subarray(0, out.length);
    };
  return undefined;
}

/** A node:zlib error in words: zlib's own message, or the output bound that was hit. */
function zlibErrorText(e: NodeJS.ErrnoException, size: number): string {
  // Output past maxOutputLength is a RangeError "Cannot create a Buffer larger than N bytes".
  if (e.code === 'ERR_BUFFER_TOO_LARGE') return `zlib: decompresses to more than the ${size} bytes its header gives`;
  return `zlib: ${e.message}`;
}
