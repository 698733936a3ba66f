import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kvmtrace, ROOT } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'kvmtrace-cli-'));
const fx = (f: string): string => join(ROOT, 'fixtures', 'ftrace-text', f);
const noStack = (s: string): void => expect(s).not.toMatch(/\n\s+at .+:\d+:\d+/);

describe('the CLI on bad input: one sentence, non-zero exit, no stack trace', () => {
  it('unreadable file', () => {
    const r = kvmtrace(['merge', '--host', join(dir, 'missing.txt'), '--guest', fx('x86tsc-trace.txt'), '--tsc-offset', '0']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^kvmtrace: cannot read .*missing\.txt: no such file\n$/);
  });

  it('unknown format', () => {
    writeFileSync(join(dir, 'junk.bin'), Buffer.from('\x7fELF\x02\x01\x01\0\0\0 definitely not a trace\n'));
    const r = kvmtrace(['merge', '--host', join(dir, 'junk.bin')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/junk\.bin: unknown format — expected ftrace text/);
    noStack(r.stderr);
  });

  it('a guest with no mapping evidence: says what to record', () => {
    const r = kvmtrace(['merge', '--host', fx('x86tsc-trace.txt'), '--guest', fx('x86tsc-pipe.txt')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/no TSC mapping for guest .*x86tsc-pipe\.txt.*give --tsc-offset/);
  });

  it('bad flag values', () => {
    expect(kvmtrace(['merge', '--host', fx('x86tsc-trace.txt'), '--tsc-offset', '12abc']).stderr).toMatch(/--tsc-offset 12abc: expected a signed integer/);
    expect(kvmtrace(['merge', '--host', fx('x86tsc-trace.txt'), '--vcpu-thread', '0:1']).stderr).toMatch(/--vcpu-thread 0:1: expected VCPU=TID/);
    expect(kvmtrace(['merge', '--host', fx('x86tsc-trace.txt'), '--host-clock', 'tsc']).stderr).toMatch(/--host-clock tsc: not a trace clock/);
  });

  it('--strict stops at the first bad line and names it; without it the line is counted and reported', () => {
    const bad = join(dir, 'bad.txt');
    writeFileSync(bad, 'cpus=1\n  a-1 [000] 100: e: x=1\ngarbage here\n  a-1 [000] 200: e: x=2\n');
    const strict = kvmtrace(['merge', '--host', bad, '--strict', '--text', join(dir, 'o.txt')]);
    expect(strict.status).toBe(2);
    expect(strict.stderr).toMatch(/bad\.txt:3: expected an ftrace event line/);
    const lax = kvmtrace(['merge', '--host', bad, '--text', join(dir, 'o.txt')]);
    expect(lax.status).toBe(0);
    expect(lax.stderr).toMatch(/1 unparsable record\(s\):\n  .*bad\.txt:3: expected an ftrace event line/);
    expect(lax.stderr).toMatch(/2 events/);
  });

  it('writes outputs whole or not at all: a failing merge leaves no output file behind', () => {
    const out = join(dir, 'never.json');
    const r = kvmtrace(['merge', '--host', fx('x86tsc-trace.txt'), '-o', out]); // no --tsc-khz: JSON impossible
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/needs the TSC frequency: give --tsc-khz/);
    expect(readdirSync(dir).filter((f) => f.includes('never'))).toEqual([]);
  });
});
