/**
 * A damaged compressed chunk (zstd, zlib) in a real recording: its pages are skipped and listed
 * (file, byte offset, CPU, what was wrong), the other chunks are read, the exit status is 1 —
 * as for a damaged uncompressed page; `--strict` stops at it. Checked against trace-cmd's own
 * report of the undamaged file: every line but those of the damaged chunk, in the same order.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { Diagnostics } from '../src/model/diagnostics.js';
import { loadFastZstd, openTraceDat, readTraceDatEvents } from '../src/parsers/trace-dat/index.js';
import { inflaterFor, InflateError } from '../src/parsers/trace-dat/compress.js';
import { kvmtrace, ROOT } from './helpers/cli.js';
import { externalMissing, MASTERARBEIT, reference } from './helpers/external.js';
import { tempDir } from './helpers/tmp.js';
import { v7Buffers, v7Chunks, type ChunkAt } from './helpers/tracedat-edit.js';

const FIX = join(ROOT, 'fixtures', 'tracedat');
let dir: string;
beforeAll(() => {
  dir = tempDir('kvmtrace-chunks-');
});

/** The CPU with the most chunks in a file, and its chunks. */
function busiestCpu(b: Buffer): { buffer: string; cpu: number; chunks: ChunkAt[] } {
  const all = v7Buffers(b).flatMap((x) => x.cpus.filter((c) => c.size > 0).map((c) => ({ buffer: x.name, cpu: c.cpu, chunks: v7Chunks(b, c) })));
  return all.sort((p, q) => q.chunks.length - p.chunks.length)[0];
}

/** How many events of `cpu` the undamaged file has in the chunk whose header is at `at` (events name their chunk). */
async function eventsInChunk(file: string, buffer: string, cpu: number, at: number): Promise<number> {
  const diags = new Diagnostics();
  const t = openTraceDat(file, diags);
  let n = 0;
  for await (const batch of readTraceDatEvents(t, { diags, buffer }).batches) for (const e of batch) if (e.cpu === cpu && e.line === at) n++;
  t.close();
  expect(diags.count).toBe(0);
  return n;
}

/** The lines of `ref` missing from `got`, when `got` is `ref` with lines left out (else undefined). */
function leftOut(got: string[], ref: string[]): string[] | undefined {
  const missing: string[] = [];
  let k = 0;
  for (const line of ref) {
    if (k < got.length && got[k] === line) k++;
    else missing.push(line);
  }
  return k === got.length ? missing : undefined;
}

async function damagedChunkCase(label: string, src: string, refText: () => string, args: string[], algo: string): Promise<void> {
  const orig = readFileSync(src);
  const { buffer, cpu, chunks } = busiestCpu(orig);
  expect(chunks.length).toBeGreaterThan(1);
  // A chunk that is neither the first nor the last when there are three or more.
  const k = chunks.length > 2 ? 1 : 0;
  const c = chunks[k];
  const b = Buffer.from(orig);
  for (let i = 0; i < 16; i++) b[c.dataAt + (c.csize >> 1) + i] ^= 0x5a;
  const f = join(dir, `${label}.dat`);
  writeFileSync(f, b);

  const r = kvmtrace(['report', ...args, f], { timeoutMs: 60_000 });
  expect(r.status, r.stderr).toBe(1);
  expect(r.stderr).toMatch(
    new RegExp(`^kvmtrace: ${f}: 1 unparsable record\\(s\\):\\n  ${f} at byte ${c.at}: CPU ${cpu}: compressed chunk ${k + 1} of ${chunks.length} \\(${c.csize} bytes\\) cannot be decompressed \\(${algo}: [^)]+\\); its \\d+ page\\(s\\), ${c.usize} bytes, skipped\\n$`),
  );
  const ref = refText().split('\n');
  const missing = leftOut(r.stdout.split('\n'), ref);
  expect(missing, 'the output is trace-cmd report of the undamaged file with lines left out').toBeDefined();
  expect(missing!.length).toBe(await eventsInChunk(src, buffer, cpu, c.at));
  expect(missing!.length).toBeGreaterThan(0);
  const col = `[${String(cpu).padStart(3, '0')}]`;
  for (const line of missing!) expect(line).toContain(col);
  // The chunks after the damaged one were read: the CPU's last line is there.
  const lastOfCpu = ref.filter((l) => l.includes(col)).at(-1)!;
  expect(r.stdout).toContain(lastOfCpu + '\n');

  const s = kvmtrace(['report', '--strict', ...args, f], { timeoutMs: 60_000 });
  expect(s.status).toBe(2);
  expect(s.stderr).toMatch(new RegExp(`^kvmtrace: ${f} at byte ${c.at}: CPU ${cpu}: compressed chunk ${k + 1} of ${chunks.length} .*cannot be decompressed`));
  expect(s.stderr.split('\n').filter(Boolean)).toHaveLength(1);
}

describe('a damaged compressed chunk is skipped and listed, not fatal', () => {
  it('zstd (v7-two-buffers: a CPU with two chunks, the first damaged)', { timeout: 120_000 }, async () => {
    await damagedChunkCase('zstd', join(FIX, 'v7-two-buffers.dat'), () => readFileSync(join(FIX, 'v7-two-buffers.report.txt'), 'latin1'), [], 'zstd');
  });

  it.skipIf(externalMissing)('zlib (the real docA guest recording: 79 chunks, the second damaged)', { timeout: 120_000 }, async () => {
    const name = 'docA-guest-trace-Salamander4';
    await damagedChunkCase('zlib', join(MASTERARBEIT, `${name}.dat`), () => readFileSync(reference(`${name}.dat.report-t.txt`), 'latin1'), ['-t'], 'zlib');
  });
  if (externalMissing) console.log(`skipped (zlib chunk): ${externalMissing}`);
});

describe("the decompressors' errors are in words", () => {
  it('zstd: a damaged real chunk is "zstd: corrupt data", not an error code', async () => {
    expect(await loadFastZstd()).toBe(true);
    const orig = readFileSync(join(FIX, 'v7-two-buffers.dat'));
    const c = busiestCpu(orig).chunks[0];
    const data = Buffer.from(orig.subarray(c.dataAt, c.dataAt + c.csize));
    expect(inflaterFor('zstd')!(data, c.usize).length).toBe(c.usize);
    for (let i = 0; i < 16; i++) data[(c.csize >> 1) + i] ^= 0x5a;
    expect(() => inflaterFor('zstd')!(data, c.usize)).toThrow(new InflateError('zstd: corrupt data'));
    data[0] ^= 0xff;
    expect(() => inflaterFor('zstd')!(data, c.usize)).toThrow(new InflateError('zstd: not zstd data (unknown frame header)'));
  });

  it('zlib: more output than the header gives is said so, not "Cannot create a Buffer larger than 1 bytes"', () => {
    const page = readFileSync(join(FIX, 'v7-none-x86tsc.dat')).subarray(0, 4096);
    const packed = deflateSync(page);
    expect(inflaterFor('zlib')!(packed, 4096).equals(page)).toBe(true);
    expect(() => inflaterFor('zlib')!(packed, 1)).toThrow(new InflateError('zlib: decompresses to more than the 1 bytes its header gives'));
    packed[packed.length - 1] ^= 1;
    expect(() => inflaterFor('zlib')!(packed, 4096)).toThrow(new InflateError('zlib: incorrect data check'));
  });
});
