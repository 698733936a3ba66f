/**
 * Latency-format trace.dat files (the `latency` data type: the tracer's text, printed as it is).
 * No latency tracer exists on the machines this project runs on (only nop/function/blk), so the
 * file is built here from a real v6 recording: its metadata and options, then `latency` and a
 * text. trace-cmd itself is the oracle: the test runs only where it is installed.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Diagnostics } from '../src/model/diagnostics.js';
import { openTraceDat, reportChunks } from '../src/parsers/trace-dat/index.js';
import { ROOT } from './helpers/cli.js';

const noTraceCmd = spawnSync('trace-cmd', ['--help']).error ? 'trace-cmd is not installed (the oracle)' : undefined;
const dir = mkdtempSync(join(tmpdir(), 'kvmtrace-lat-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

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

describe.skipIf(noTraceCmd)('latency trace.dat', () => {
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
