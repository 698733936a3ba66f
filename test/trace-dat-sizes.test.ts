/**
 * Sizes and offsets a trace.dat header gives are checked before use: real recordings with one
 * field changed (a BUFFER option's page size, the header's page size, the first options offset)
 * give one sentence naming the file, the byte offset of the field and what was expected — no
 * spin, no internal error, no flood of "unparsable records".
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Diagnostics } from '../src/model/diagnostics.js';
import { openTraceDat } from '../src/parsers/trace-dat/index.js';
import { kvmtrace, ROOT } from './helpers/cli.js';
import { externalMissing, MASTERARBEIT } from './helpers/external.js';
import { tempDir } from './helpers/tmp.js';
import { v7Buffers } from './helpers/tracedat-edit.js';

const FIX = join(ROOT, 'fixtures', 'tracedat');
let dir: string;
beforeAll(() => {
  dir = tempDir('kvmtrace-sizes-');
});

/** Writes a copy of `src` with `edit` applied; returns its path. */
function damaged(src: string, name: string, edit: (b: Buffer) => void): string {
  const b = Buffer.from(readFileSync(src));
  edit(b);
  const f = join(dir, name);
  writeFileSync(f, b);
  return f;
}

/** Runs `kvmtrace report FILE` with a time limit: a spin fails the test instead of hanging it. */
function report(file: string): { status: number; stderr: string; stdout: string } {
  return kvmtrace(['report', file], { timeoutMs: 20_000 });
}

const SIZES = [0, 1, 3, 8, 64];

function pageSizeCases(label: string, src: string): void {
  it(`${label}: a BUFFER page size of ${SIZES.join(', ')} is one error at the field's byte offset`, { timeout: 120_000 }, () => {
    const orig = readFileSync(src);
    const buffers = v7Buffers(orig);
    const withData = buffers.find((b) => b.cpus.some((c) => c.size > 0))!;
    for (const size of SIZES) {
      const f = damaged(src, `${label}-ps${size}.dat`, (b) => b.writeUInt32LE(size, withData.pageSizeAt));
      const want = `${f} at byte ${withData.pageSizeAt}: buffer "${withData.name}": page size ${size} is not a power of two from 4096 to 16777216 bytes`;
      expect(() => openTraceDat(f, new Diagnostics())).toThrow(want);
      // The command too (0 spun forever on compressed files): two sizes are enough for it.
      if (size !== 0 && size !== 8) continue;
      const r = report(f);
      expect(r.status, `page size ${size}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toBe(`kvmtrace: ${want}\n`);
      expect(r.stdout).toBe('');
    }
  });
}

describe('page sizes are checked before any page is walked', () => {
  pageSizeCases('v7 uncompressed', join(FIX, 'v7-none-x86tsc.dat'));
  pageSizeCases('v7 zstd', join(FIX, 'v7-zstd-counter.dat'));
  if (externalMissing) console.log(`skipped (zlib page sizes): ${externalMissing}`);
  else pageSizeCases('v7 zlib', join(MASTERARBEIT, 'docA-guest-trace-Salamander4.dat'));

  it("the header's page size follows the same rule (64 bytes is no page either)", () => {
    // v6 and v7 headers: magic (10), version "6\0", endianness, long size, then the u32 page size.
    const f = damaged(join(FIX, 'v6-x86tsc.dat'), 'v6-ps64.dat', (b) => b.writeUInt32LE(64, 14));
    expect(() => openTraceDat(f, new Diagnostics())).toThrow(`${f} at byte 14: page size 64 is not a power of two from 4096 to 16777216 bytes`);
  });
});

describe('offsets are checked where they are read', () => {
  it('a first options offset beyond the file is named as such, at the byte that holds it', () => {
    const src = join(FIX, 'v7-zstd-local.dat');
    const orig = readFileSync(src);
    // After magic, "7\0", endianness, long size, page size and the two compression strings.
    let at = orig.indexOf(0, 10) + 1 + 2 + 4;
    at = orig.indexOf(0, orig.indexOf(0, at) + 1) + 1;
    const f = damaged(src, 'opts-far.dat', (b) => b.writeBigUInt64LE(266081819443200n, at));
    const r = report(f);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      `kvmtrace: ${f} at byte ${at}: first options offset 266081819443200 is beyond the end of the file (${orig.length} bytes): a corrupt offset\n`,
    );
  });

  it("a CPU's data said to lie past the end of the file is refused when the BUFFER option is read", () => {
    const src = join(FIX, 'v7-none-x86tsc.dat');
    const orig = readFileSync(src);
    const b0 = v7Buffers(orig).find((b) => b.cpus.some((c) => c.size > 0))!;
    const i = b0.cpus.findIndex((c) => c.size > 0);
    // CPU table entries follow the u32 page size and u32 CPU count: u32 cpu, u64 offset, u64 size.
    const entry = b0.pageSizeAt + 8 + i * 20;
    const f = damaged(src, 'cpu-far.dat', (b) => b.writeBigUInt64LE(BigInt(orig.length), entry + 12));
    expect(() => openTraceDat(f, new Diagnostics())).toThrow(
      `${f} at byte ${entry + 4}: CPU ${b0.cpus[i].cpu} data (${orig.length} bytes at byte ${b0.cpus[i].offset}) runs past the end of the file (${orig.length} bytes)`,
    );
  });
});
