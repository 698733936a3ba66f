/**
 * `kvmtrace merge -o FILE.pftrace` / `--format perfetto` and `kvmtrace demo` as a user runs them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kvmtrace, ROOT } from './helpers/cli.js';
import { readPftrace } from './helpers/pftrace.js';
import { tempDir } from './helpers/tmp.js';

const FX = join(ROOT, 'fixtures', 'pvm-1vcpu');

describe('kvmtrace merge → Perfetto', () => {
  it('writes a Perfetto trace for -o FILE.pftrace, and for --format perfetto whatever the name', () => {
    const dir = tempDir('kvmtrace-pft-cli-');
    const a = kvmtrace(['merge', join(FX, 'host'), join(FX, 'guest'), '-o', join(dir, 'm.pftrace'), '-q']);
    // -q leaves only warnings (here: debugfs and kvm_write_tsc_offset disagree on this capture).
    expect(a.stderr.split('\n').filter((l) => l && !l.startsWith('warning: '))).toEqual([]);
    expect(a.status).toBe(0);
    expect([...readPftrace(join(dir, 'm.pftrace')).machines.values()].map((m) => m.name)).toEqual(['host', 'kvmlab']);
    const b = kvmtrace(['merge', join(FX, 'host'), join(FX, 'guest'), '-o', join(dir, 'm.trace'), '--format', 'perfetto', '-q']);
    expect(b.status).toBe(0);
    expect(readFileSync(join(dir, 'm.trace')).equals(readFileSync(join(dir, 'm.pftrace')))).toBe(true);
    const c = kvmtrace(['merge', join(FX, 'host'), join(FX, 'guest'), '-o', join(dir, 'j.pftrace'), '--format', 'json', '-q']);
    expect(c.status).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, 'j.pftrace'), 'utf8')).traceEvents.length).toBeGreaterThan(1000);
  });

  it('says in one sentence that the TSC frequency is needed, and writes nothing', () => {
    const dir = tempDir('kvmtrace-pft-cli-');
    const r = kvmtrace(['merge', '--host', join(FX, 'host', 'trace.txt'), '--host-clock', 'x86-tsc', '-o', join(dir, 'x.pftrace')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^kvmtrace: the Perfetto output needs the TSC frequency: give --tsc-khz/m);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(() => readFileSync(join(dir, 'x.pftrace'))).toThrow();
  });

  it('demo writes demo.pftrace beside the JSON and says to open it at ui.perfetto.dev', () => {
    const dir = tempDir('kvmtrace-pft-demo-');
    const r = kvmtrace(['demo', '-o', dir]);
    expect(r.status).toBe(0);
    expect(r.stderr).toContain(`open ${join(dir, 'demo.pftrace')} at ui.perfetto.dev`);
    const pf = readPftrace(join(dir, 'demo.pftrace'));
    expect(pf.attributes.get('kvmtrace.validation')).toBe('passed');
  });
});
