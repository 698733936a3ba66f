import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './helpers/tmp.js';
import { kvmtrace, ROOT } from './helpers/cli.js';

let dir: string;
beforeAll(() => {
  dir = tempDir('kvmtrace-cli-');
});
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

describe('outputs are whole or not at all, and the CLI behaves as a filter', () => {
  const PVM = join(ROOT, 'fixtures', 'pvm-1vcpu');
  it('a run with one output it cannot write leaves none of its outputs', () => {
    const ok = join(dir, 'partial.json');
    const r = kvmtrace(['merge', join(PVM, 'host'), join(PVM, 'guest'), '-o', ok, '--summary', join(dir, 'partial.summary.json'), '--text', join(dir, 'no-such-folder', 't.txt')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^kvmtrace: cannot write .*no-such-folder\/t\.txt: no such file or directory$/m);
    expect(readdirSync(dir).filter((f) => f.includes('partial'))).toEqual([]);
  });

  it('stops quietly when the reader of its output goes away (| head)', () => {
    const r = spawnSync('sh', ['-c', `node ${join(ROOT, 'dist', 'cli', 'main.js')} merge ${join(PVM, 'host')} ${join(PVM, 'guest')} --text - 2>&1 | head -2`], { encoding: 'utf8' });
    expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(2);
    expect(r.stdout).not.toMatch(/EPIPE|Error/);
  });

  it('writes into a pipe or device it is given (-o /dev/null, a FIFO) instead of replacing it', () => {
    const fifo = join(dir, 'out.fifo');
    const copy = join(dir, 'fifo-copy.txt');
    spawnSync('mkfifo', [fifo]);
    // A reader drains the FIFO while the merge writes into it.
    const r = spawnSync('sh', ['-c', `cat ${fifo} > ${copy} & node ${join(ROOT, 'dist', 'cli', 'main.js')} merge ${join(PVM, 'host')} ${join(PVM, 'guest')} --text ${fifo}; s=$?; wait; exit $s`], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(statSync(fifo).isFIFO()).toBe(true);
    const plain = join(dir, 'fifo-plain.txt');
    expect(kvmtrace(['merge', join(PVM, 'host'), join(PVM, 'guest'), '--text', plain]).status).toBe(0);
    expect(readFileSync(copy, 'utf8')).toBe(readFileSync(plain, 'utf8'));
    expect(readdirSync(dir).filter((f) => f.startsWith('.out.fifo'))).toEqual([]);
  });

  it('refuses an input that is a pipe, saying to write it to a file (inputs are read more than once)', () => {
    const r = spawnSync('bash', ['-c', `node ${join(ROOT, 'dist', 'cli', 'main.js')} merge --host <(cat ${join(ROOT, 'fixtures', 'ftrace-text', 'x86tsc-pipe.txt')}) --text ${join(dir, 'pipe.txt')}`], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^kvmtrace: \/dev\/fd\/\d+ is a pipe: kvmtrace reads each input more than once .*write it to a file first$/m);
    expect(r.stderr).not.toMatch(/ESPIPE|\n\s+at /);
  });

  it('reports events the tracer lost', () => {
    const f = join(dir, 'lost.txt');
    writeFileSync(f, '  a-1 [000] 100: e: x=1\nCPU:0 [LOST 17 EVENTS]\n  a-1 [000] 200: e: x=2\n');
    const r = kvmtrace(['merge', '--host', f, '--text', join(dir, 'lost.out')]);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/2 events, .*17 events LOST by the tracer/);
  });

  it('refuses a TSC scaling ratio of zero', () => {
    const r = kvmtrace(['merge', '--host', fx('x86tsc-trace.txt'), '--tsc-scaling', '0/48']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--tsc-scaling 0\/48: the ratio must be positive/);
  });
});
