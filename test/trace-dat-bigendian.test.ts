/**
 * Big-endian trace.dat files and 4-byte longs. None can be recorded on these (x86-64) machines, so
 * a real v6 recording is converted here: to big-endian field by field, using the file's own
 * descriptions (header, options, CPU tables, page headers, event headers, every event field by its
 * format); to 4-byte longs by rewriting header_page and the page headers. trace-cmd itself reads
 * the results and is the oracle: the tests run only where it is installed.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Diagnostics } from '../src/model/diagnostics.js';
import { openTraceDat, reportChunks, type EventFormat } from '../src/parsers/trace-dat/index.js';
import { ROOT } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

const noTraceCmd = spawnSync('trace-cmd', ['--help']).error ? 'trace-cmd is not installed (the oracle)' : undefined;
let dir: string;
beforeAll(() => {
  dir = tempDir('kvmtrace-be-');
});

/** Swaps `n` bytes at `at` in place. */
function swap(b: Buffer, at: number, n: number): void {
  if (n === 2) b.swap16.call(b.subarray(at, at + 2));
  else if (n === 4) b.subarray(at, at + 4).swap32();
  else if (n === 8) b.subarray(at, at + 8).swap64();
}

/** Converts a little-endian v6 file (8-byte longs, no compression) to big-endian. */
function toBigEndian(src: Buffer, events: Map<number, EventFormat>, pageSize: number): Buffer {
  const b = Buffer.from(src);
  let p = 10;
  p = b.indexOf(0, p) + 1; // version
  b[p] = 1; // endianness: big
  p += 2; // endianness, long size
  const u32 = () => {
    const v = b.readUInt32LE(p);
    swap(b, p, 4);
    p += 4;
    return v;
  };
  const u64 = () => {
    const v = Number(b.readBigUInt64LE(p));
    swap(b, p, 8);
    p += 8;
    return v;
  };
  const u16 = () => {
    const v = b.readUInt16LE(p);
    swap(b, p, 2);
    p += 2;
    return v;
  };
  const cstr = () => {
    const e = b.indexOf(0, p);
    const s = b.toString('latin1', p, e);
    p = e + 1;
    return s;
  };
  // (`p += u64()` would add to the old p: JS reads the left side first.)
  const skip64 = () => {
    const n = u64();
    p += n;
  };
  const skip32 = () => {
    const n = u32();
    p += n;
  };
  u32(); // page size
  cstr();
  skip64(); // header_page
  cstr();
  skip64(); // header_event
  for (let n = u32(); n > 0; n--) skip64(); // ftrace formats
  for (let s = u32(); s > 0; s--) {
    cstr();
    for (let n = u32(); n > 0; n--) skip64();
  }
  skip32(); // kallsyms
  skip32(); // printk
  skip64(); // cmdlines
  const cpus = u32();
  expect(b.toString('latin1', p, p + 7)).toBe('options');
  p += 10;
  const bufferTables: number[] = [];
  for (;;) {
    const id = u16();
    if (id === 0) break;
    const size = u32();
    const start = p;
    if (id === 3) bufferTables.push(Number(b.readBigUInt64LE(p)));
    if (id === 3 || id === 11) swap(b, p, 8); // BUFFER offset, TRACEID
    if (id === 8) swap(b, p, 4); // CPUCOUNT
    p = start + size;
  }
  const regions: { offset: number; size: number }[] = [];
  const table = (at: number) => {
    p = at;
    expect(b.toString('latin1', p, p + 9)).toBe('flyrecord');
    p += 10;
    for (let c = 0; c < cpus; c++) regions.push({ offset: u64(), size: u64() });
  };
  const topTable = p;
  table(topTable);
  skip64(); // the trace_clock text after the top table
  for (const at of bufferTables) table(at);
  for (const r of regions) for (let pg = r.offset; pg < r.offset + r.size; pg += pageSize) swapPage(b, pg, pageSize, events);
  return b;
}

/** Swaps one ring-buffer page: header, event headers, and each record's fields by its format. */
function swapPage(b: Buffer, pg: number, pageSize: number, events: Map<number, EventFormat>): void {
  const commit = Number(b.readBigUInt64LE(pg + 8));
  const size = commit & ((1 << 27) - 1);
  swap(b, pg, 8);
  swap(b, pg + 8, 8);
  if (commit & 0x40000000 && 16 + size + 8 <= pageSize) swap(b, pg + 16 + size, 8);
  let p = pg + 16;
  const end = pg + 16 + size;
  while (p < end) {
    const h = b.readUInt32LE(p);
    const type = h & 31;
    const delta = h >>> 5;
    b.writeUInt32BE(((type << 27) | delta) >>> 0, p);
    if (type >= 29) {
      const arg = b.readUInt32LE(p + 4);
      swap(b, p + 4, 4);
      p += type === 29 ? (arg === 0 ? end - p : 4 + arg) : 8;
      continue;
    }
    let data = p + 4;
    let len = type * 4;
    if (type === 0) {
      len = Math.floor((b.readUInt32LE(p + 4) - 4 + 3) / 4) * 4;
      swap(b, p + 4, 4);
      data = p + 8;
    }
    const ev = events.get(b.readUInt16LE(data));
    if (ev)
      for (const f of ev.fields) {
        if (f.isDynamic) swap(b, data + f.offset, f.size);
        else if (f.isArray) {
          if (f.elementSize > 1) for (let o = 0; o + f.elementSize <= f.size; o += f.elementSize) swap(b, data + f.offset + o, f.elementSize);
        } else swap(b, data + f.offset, f.size);
      }
    p = data + len;
  }
}

/**
 * Converts a v6 file (little-endian, 8-byte longs) to 4-byte longs, as a 32-bit kernel writes
 * them: long size 4 in the header, `header_page` with a 4-byte commit and data at 12, and every
 * page's data moved up by 4 bytes. (Event layouts are described by their formats and stay.)
 */
function toLong4(src: Buffer, regions: { offset: number; size: number }[], pageSize: number): Buffer {
  const b = Buffer.from(src);
  const v = b.indexOf(0, 10) + 1;
  b[v + 1] = 4;
  const hp = b.indexOf('header_page\0', 0, 'latin1') + 12;
  const size = Number(b.readBigUInt64LE(hp));
  const text = b.toString('latin1', hp + 8, hp + 8 + size);
  const fixed = text
    .replace(/(local_t commit;\s*offset:8;\s*size:)8;/, '$14;')
    .replace(/(char data;\s*offset:)16(;\s*size:)(\d+);/, (_m, a: string, c: string, n: string) => `${a}12${c}${Number(n) + 4};`);
  expect(fixed.length).toBe(text.length);
  expect(fixed).not.toBe(text);
  b.write(fixed, hp + 8, 'latin1');
  for (const r of regions)
    for (let pg = r.offset; pg < r.offset + r.size; pg += pageSize) {
      const commit = b.readUInt32LE(pg + 8);
      b.writeUInt32LE(commit, pg + 8);
      b.copy(b, pg + 12, pg + 16, pg + pageSize);
      b.fill(0, pg + pageSize - 4, pg + pageSize);
    }
  return b;
}

describe.skipIf(noTraceCmd)('lost events', () => {
  it('pages flagged with lost events (counted and not) print the CPU:N [… EVENTS DROPPED] lines trace-cmd prints', () => {
    const srcFile = join(ROOT, 'fixtures', 'tracedat', 'v7-none-x86tsc.dat');
    const t0 = openTraceDat(srcFile, new Diagnostics());
    t0.close();
    const b = Buffer.from(readFileSync(srcFile));
    const cpus = t0.buffers.flatMap((x) => x.cpus).filter((c) => c.size >= 2 * t0.pageSize);
    expect(cpus.length).toBeGreaterThan(0);
    // First page of one CPU: lost events, count stored after the data; second page: lost, no count.
    const a = cpus[0].offset;
    const commit = b.readUInt32LE(a + 8) & ((1 << 27) - 1);
    expect(16 + commit + 8).toBeLessThanOrEqual(t0.pageSize);
    b.writeUInt32LE((commit | 0xc0000000) >>> 0, a + 8);
    b.writeBigUInt64LE(1234n, a + 16 + commit);
    const second = a + t0.pageSize;
    b.writeUInt32LE((b.readUInt32LE(second + 8) | 0x80000000) >>> 0, second + 8);
    const file = join(dir, 'lost.dat');
    writeFileSync(file, b);
    const ref = spawnSync('trace-cmd', ['report', '-t', file], { encoding: 'latin1', maxBuffer: 1 << 28 });
    expect(ref.status, ref.stderr).toBe(0);
    expect(ref.stdout).toContain('[1234 EVENTS DROPPED]');
    expect(ref.stdout).toContain('[EVENTS DROPPED]');
    const diags = new Diagnostics();
    const t = openTraceDat(file, diags);
    const mine = [...reportChunks(t, { nsec: true, raw: false, rawTs: false }, diags)].join('');
    t.close();
    expect(mine).toBe(ref.stdout);
  });
});

describe.skipIf(noTraceCmd)('4-byte longs', () => {
  it('a file with 4-byte longs (32-bit page headers) prints as trace-cmd prints it', () => {
    const srcFile = join(ROOT, 'fixtures', 'tracedat', 'v6-x86tsc.dat');
    const le = openTraceDat(srcFile, new Diagnostics());
    le.close();
    const regions = le.buffers.flatMap((x) => x.cpus.map((c) => ({ offset: c.offset, size: c.size })));
    const file = join(dir, 'long4.dat');
    writeFileSync(file, toLong4(readFileSync(srcFile), regions, le.pageSize));
    for (const args of [['-t'], ['-t', '-R']]) {
      const ref = spawnSync('trace-cmd', ['report', ...args, file], { encoding: 'latin1', maxBuffer: 1 << 28 });
      expect(ref.status, ref.stderr).toBe(0);
      const diags = new Diagnostics();
      const t = openTraceDat(file, diags);
      expect(t.longSize).toBe(4);
      expect(t.commitSize).toBe(4);
      const mine = [...reportChunks(t, { nsec: true, raw: args.includes('-R'), rawTs: false }, diags)].join('');
      t.close();
      const a = mine.split('\n');
      const r = ref.stdout.split('\n');
      expect(r.length).toBeGreaterThan(1000);
      const bad = r.findIndex((line, i) => line !== a[i]);
      expect(bad, bad >= 0 ? `line ${bad + 1}:\n  kvmtrace:  ${a[bad]}\n  trace-cmd: ${r[bad]}` : '').toBe(-1);
      expect(a.length).toBe(r.length);
    }
  });
});

describe.skipIf(noTraceCmd)('big-endian trace.dat', () => {
  if (noTraceCmd) console.log(`skipped: ${noTraceCmd}`);
  it('a big-endian v6 file prints as trace-cmd prints it (-t and -t -R)', () => {
    const srcFile = join(ROOT, 'fixtures', 'tracedat', 'v6-x86tsc.dat');
    const le = openTraceDat(srcFile, new Diagnostics());
    le.close();
    const file = join(dir, 'be.dat');
    writeFileSync(file, toBigEndian(readFileSync(srcFile), le.events, le.pageSize));
    for (const args of [['-t'], ['-t', '-R']]) {
      const ref = spawnSync('trace-cmd', ['report', ...args, file], { encoding: 'latin1', maxBuffer: 1 << 28 });
      expect(ref.status, ref.stderr).toBe(0);
      const diags = new Diagnostics();
      const t = openTraceDat(file, diags);
      expect(t.littleEndian).toBe(false);
      const mine = [...reportChunks(t, { nsec: true, raw: args.includes('-R'), rawTs: false }, diags)].join('');
      t.close();
      // The conversion must have been understood by trace-cmd: same events as the original.
      const orig = readFileSync(join(ROOT, 'fixtures', 'tracedat', 'v6-x86tsc.report-t.txt'), 'latin1');
      // (With -R, arrays print their bytes as stored: those differ between the two files.)
      if (!args.includes('-R')) expect(ref.stdout).toBe(orig);
      const a = mine.split('\n');
      const r = ref.stdout.split('\n');
      const bad = r.findIndex((line, i) => line !== a[i]);
      expect(bad, bad >= 0 ? `line ${bad + 1}:\n  kvmtrace:  ${a[bad]}\n  trace-cmd: ${r[bad]}` : '').toBe(-1);
      expect(a.length).toBe(r.length);
      expect(diags.count).toBe(0);
    }
  });
});
