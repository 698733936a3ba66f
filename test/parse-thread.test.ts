/**
 * Large ftrace text files are parsed on a worker thread (src/parsers/ftrace-text-thread.ts). The
 * merge must not see the difference: the built CLI runs each case twice, with the parse forced
 * onto a worker and kept in-thread (KVMTRACE_PARSE_THREADS), and every output byte, the report
 * and the exit status must be the same.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kvmtrace } from './helpers/cli.js';
import { DOCA, externalMissing, reference } from './helpers/external.js';
import { tempDir } from './helpers/tmp.js';

/** Runs a merge in both modes into separate folders; returns both runs and their output files. */
function bothWays(args: (dir: string) => string[]) {
  const root = tempDir('kvmtrace-thread-');
  return (['always', 'never'] as const).map((mode) => {
    const dir = join(root, mode);
    mkdirSync(dir);
    const r = kvmtrace(args(dir), { env: { KVMTRACE_PARSE_THREADS: mode } });
    const files = Object.fromEntries(['m.json', 'm.txt', 's.json'].filter((f) => existsSync(join(dir, f))).map((f) => [f, readFileSync(join(dir, f))]));
    return { ...r, stderr: r.stderr.replaceAll(dir, '<dir>'), files };
  });
}

describe.skipIf(externalMissing)('docA merged with the parse on a worker and in-thread', () => {
  if (externalMissing) console.log(`skipped: ${externalMissing}`);
  const host = () => reference('docA-host-trace.dat.report-rawts.txt');
  const guest = () => reference('docA-guest-trace-Salamander4.dat.report-rawts.txt');
  const flags = ['--host-clock', 'x86-tsc', '--guest-clock', 'x86-tsc', '--tsc-offset', String(DOCA.tscOffset), '--vcpu-thread', `0=${DOCA.vcpuThread}`, '--tsc-khz', String(DOCA.tscKhz)];

  it('writes the same JSON, text and summary, and reports the same bad lines', () => {
    const [worker, inThread] = bothWays((dir) => ['merge', '--host', host(), '--guest', guest(), ...flags, '-o', join(dir, 'm.json'), '--text', join(dir, 'm.txt'), '--summary', join(dir, 's.json')]);
    expect(inThread.status).toBe(0);
    expect(worker.status).toBe(0);
    // The guest file has unparsable lines: both runs name the same ones.
    expect(inThread.stderr).toMatch(/unparsable record/);
    expect(worker.stderr).toBe(inThread.stderr);
    expect(worker.stdout).toBe(inThread.stdout);
    expect(Object.keys(inThread.files).sort()).toEqual(['m.json', 'm.txt', 's.json']);
    for (const f of Object.keys(inThread.files)) expect(worker.files[f].equals(inThread.files[f]), f).toBe(true);
  });

  it('stops at the same first bad line under --strict, writing nothing', () => {
    const [worker, inThread] = bothWays((dir) => ['merge', '--strict', '--host', host(), '--guest', guest(), ...flags, '-o', join(dir, 'm.json')]);
    expect(inThread.status).toBe(2);
    expect(worker.status).toBe(2);
    expect(inThread.stderr).toMatch(/^kvmtrace: .*docA-guest.*:\d+: expected/);
    expect(worker.stderr).toBe(inThread.stderr);
    expect(worker.files).toEqual({});
  });
});

const TRACEFS = '/sys/kernel/tracing';
const noTracefs =
  process.getuid?.() !== 0 ? 'needs root (records marker text in a tracefs instance)' : !existsSync(join(TRACEFS, 'instances')) ? `no tracefs at ${TRACEFS}` : undefined;

describe.skipIf(noTracefs)('marker text that JSON must escape, recorded here', () => {
  if (noTracefs) console.log(`skipped: ${noTracefs}`);

  it('is written the same by both parse paths (quotes, backslashes, tabs, UTF-8, bytes that are not UTF-8)', () => {
    const dir = tempDir('kvmtrace-thread-rec-');
    const inst = join(TRACEFS, 'instances', `kvmtrace-test-thread-${process.pid}`);
    const texts = [Buffer.from('plain marker text'), Buffer.from('say "hi" \\ back\tslash'), Buffer.from('grüße, 時間 — µs'), Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe, 0x20, 0x01, 0x7f])];
    mkdirSync(inst);
    try {
      writeFileSync(join(inst, 'trace_clock'), 'x86-tsc');
      writeFileSync(join(inst, 'tracing_on'), '1');
      for (let i = 0; i < 40; i++) writeFileSync(join(inst, 'trace_marker'), texts[i % texts.length]);
      writeFileSync(join(inst, 'tracing_on'), '0');
      writeFileSync(join(dir, 'host.txt'), readFileSync(join(inst, 'trace')));
    } finally {
      rmdirSync(inst);
    }
    expect(execFileSync('grep', ['-c', 'tracing_mark_write', join(dir, 'host.txt')], { encoding: 'utf8' }).trim()).toBe('40');
    const [worker, inThread] = bothWays((out) => ['merge', '--host', join(dir, 'host.txt'), '--host-clock', 'x86-tsc', '--tsc-khz', '2596136', '-o', join(out, 'm.json'), '--text', join(out, 'm.txt')]);
    expect(inThread.status).toBe(0);
    expect(worker.status).toBe(0);
    expect(worker.stderr).toBe(inThread.stderr);
    for (const f of ['m.json', 'm.txt']) expect(worker.files[f].equals(inThread.files[f]), f).toBe(true);
    // The JSON parses, and holds the marker texts as the kernel printed them (decoded as UTF-8).
    const doc = JSON.parse(inThread.files['m.json'].toString('utf8'));
    const markers = doc.traceEvents.filter((e: { cat?: string }) => e.cat === 'marker').map((e: { args: { text: string } }) => e.args.text);
    expect(markers).toHaveLength(40);
    expect(markers.slice(0, 3)).toEqual(texts.slice(0, 3).map((b) => b.toString('utf8')));
  });
});
