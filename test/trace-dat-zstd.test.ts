/**
 * zstd sections of trace.dat files are decoded by @bokuweb/zstd-wasm, reached through its
 * emscripten module by a file path inside the package (src/parsers/trace-dat/compress.ts). If a
 * release moved that file, decoding would fall back to fzstd: still right, several times slower.
 * This test makes that fallback fail loudly, and checks both decoders give the same bytes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compress, init } from '@bokuweb/zstd-wasm';
import { decompress as fzstd } from 'fzstd';
import { describe, expect, it } from 'vitest';
import { inflaterFor, loadFastZstd } from '../src/parsers/trace-dat/compress.js';

const TEXT = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'ftrace-text', 'x86tsc-trace.txt'));

describe('the zstd decoder of trace.dat sections', () => {
  it('is the WebAssembly one (the package still has its emscripten module where it is looked for)', async () => {
    expect(await loadFastZstd(), 'loadFastZstd fell back to fzstd: see compress.ts').toBe(true);
  });

  it('decodes a real trace text compressed by zstd to the same bytes as fzstd, into a reused buffer too', async () => {
    await init();
    await loadFastZstd();
    const packed = Buffer.from(compress(TEXT, 3));
    expect(packed.length).toBeLessThan(TEXT.length / 2);
    const inflate = inflaterFor('zstd')!;
    const fresh = inflate(packed, TEXT.length);
    expect(Buffer.compare(Buffer.from(fresh), TEXT)).toBe(0);
    const into = Buffer.alloc(TEXT.length + 100, 0xaa);
    const reused = inflate(packed, TEXT.length, into);
    expect(reused.length).toBe(TEXT.length);
    expect(Buffer.compare(Buffer.from(reused), TEXT)).toBe(0);
    expect(Buffer.compare(Buffer.from(fzstd(packed)), TEXT)).toBe(0);
  });
});
