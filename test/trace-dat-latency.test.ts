/**
 * Latency-format trace.dat files (the `latency` data type: the tracer's text, printed as it is).
 * No latency tracer exists on the machines this project runs on (only nop/function/blk), so the
 * file is built here from a real v6 recording: its metadata and options, then `latency` and a
 * text. trace-cmd itself is the oracle: the test runs only where it is installed.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Diagnostics } from '../src/model/diagnostics.js';
import { openTraceDat, reportChunks } from '../src/parsers/trace-dat/index.js';
import { ROOT } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

const noTraceCmd = spawnSync('trace-cmd', ['--help']).error ? 'trace-cmd is not installed (the oracle)' : undefined;
let dir: string;
beforeAll(() => {
  dir = tempDir('kvmtrace-lat-');
});

const TEXT = [
  '# tracer: irqsoff',
  '#',
  '# irqsoff latency trace v1.1.5 on 6.18.44',
  '# --------------------------------------------------------------------',
  '# latency: 259 us, #4/4, CPU#1 | (M:preempt VP:0, KP:0, SP:0 HP:0 #P:2)',
  '#    -----------------',
  '#    | task: swapper/1-0 (uid:0 nice:0 policy:0 rt_prio:0)',
  '#    -----------------',
  '#  => started at: __schedule',
  '#  => ended at:   _raw_spin_unlock_irq',
  '#',
  '#                  _------=> CPU#',
  '#  <idle>-0       1d..1    0us : __schedule <-schedule',
  '#  <idle>-0       1d..2  259us : _raw_spin_unlock_irq <-finish_task_switch',
  '',
].join('\n');

/**
 * A v6 latency file from a real v6 flyrecord file: same header and metadata, BUFFER options dropped,
 * and TRACECLOCK too (with it, trace-cmd 3.1.6 reads the text's first 8 bytes as the length of a
 * clock text that flyrecord files have there, and drops them; see the README).
 */
function buildLatencyFile(): string {
  const src = readFileSync(join(ROOT, 'fixtures', 'tracedat', 'v6-x86tsc.dat'));
  const tag = Buffer.from('options  \0', 'latin1');
  const at = src.indexOf(tag);
  expect(at).toBeGreaterThan(0);
  const parts: Buffer[] = [src.subarray(0, at + tag.length)];
  let p = at + tag.length;
  for (;;) {
    const id = src.readUInt16LE(p);
    if (id === 0) break;
    const size = src.readUInt32LE(p + 2);
    if (id !== 3 && id !== 4) parts.push(src.subarray(p, p + 6 + size));
    p += 6 + size;
  }
  parts.push(Buffer.from([0, 0]), Buffer.from('latency  \0', 'latin1'), Buffer.from(TEXT, 'latin1'));
  const out = join(dir, 'latency.dat');
  writeFileSync(out, Buffer.concat(parts));
  return out;
}

/**
 * A v7 latency file from a real v7 recording (uncompressed): a BUFFER_TEXT section with the text is
 * appended, then a new options section (the old options minus BUFFER, plus BUFFER_TEXT), and the
 * header is pointed at it.
 */
function buildV7LatencyFile(): string {
  const src = readFileSync(join(ROOT, 'fixtures', 'tracedat', 'v7-none-x86tsc.dat'));
  let p = 18; // magic (10), "7\0", endianness, long size, page size
  const cstr = () => {
    const e = src.indexOf(0, p);
    const v = src.toString('latin1', p, e);
    p = e + 1;
    return v;
  };
  expect(cstr()).toBe('none');
  cstr();
  const headerOptionsAt = p;
  let next = Number(src.readBigUInt64LE(p));
  const kept: Buffer[] = [];
  while (next !== 0) {
    let q = next + 16;
    next = 0;
    for (;;) {
      const id = src.readUInt16LE(q);
      const size = src.readUInt32LE(q + 2);
      if (id === 0) {
        next = Number(src.readBigUInt64LE(q + 6));
        break;
      }
      if (id !== 3) kept.push(src.subarray(q, q + 6 + size));
      q += 6 + size;
    }
  }
  const sectionHeader = (id: number, size: number) => {
    const h = Buffer.alloc(16);
    h.writeUInt16LE(id, 0);
    h.writeBigUInt64LE(BigInt(size), 8);
    return h;
  };
  const text = Buffer.from(TEXT, 'latin1');
  const textAt = src.length;
  const bufText = Buffer.concat([Buffer.alloc(8), Buffer.from('\0x86-tsc\0', 'latin1')]);
  bufText.writeBigUInt64LE(BigInt(textAt), 0);
  const optHead = Buffer.alloc(6);
  optHead.writeUInt16LE(22, 0);
  optHead.writeUInt32LE(bufText.length, 2);
  const done = Buffer.alloc(14);
  done.writeUInt32LE(8, 2);
  const options = Buffer.concat([...kept, optHead, bufText, done]);
  const out = Buffer.concat([src, sectionHeader(22, text.length), text, sectionHeader(0, options.length), options]);
  out.writeBigUInt64LE(BigInt(textAt + 16 + text.length), headerOptionsAt);
  const file = join(dir, 'latency-v7.dat');
  writeFileSync(file, out);
  return file;
}

describe.skipIf(noTraceCmd)('latency trace.dat', () => {
  it('v7: prints the BUFFER_TEXT section as trace-cmd report does', () => {
    const file = buildV7LatencyFile();
    const ref = spawnSync('trace-cmd', ['report', file], { encoding: 'latin1' });
    expect(ref.status, ref.stderr).toBe(0);
    const diags = new Diagnostics();
    const t = openTraceDat(file, diags);
    const mine = [...reportChunks(t, { nsec: false, raw: false, rawTs: false }, diags)].join('');
    t.close();
    expect(ref.stdout).toContain('# tracer: irqsoff');
    expect(mine).toBe(ref.stdout);
  });

  if (noTraceCmd) console.log(`skipped: ${noTraceCmd}`);
  it('prints the latency text as trace-cmd report does', () => {
    const file = buildLatencyFile();
    const ref = spawnSync('trace-cmd', ['report', file], { encoding: 'latin1' });
    expect(ref.status).toBe(0);
    const diags = new Diagnostics();
    const t = openTraceDat(file, diags);
    expect(t.buffers[0].latency).toBe(true);
    const mine = [...reportChunks(t, { nsec: false, raw: false, rawTs: false }, diags)].join('');
    t.close();
    expect(ref.stdout).toContain('# tracer: irqsoff');
    expect(mine).toBe(ref.stdout);
  });
});
