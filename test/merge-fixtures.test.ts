/**
 * `kvmtrace merge` on every fixture of this project: text and Chrome JSON written, JSON structure
 * checked, validation figures printed.
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkChromeJson } from './helpers/chrome-check.js';
import { kvmtrace, ROOT } from './helpers/cli.js';

const out = mkdtempSync(join(tmpdir(), 'kvmtrace-fixtures-'));
const FT = join(ROOT, 'fixtures', 'ftrace-text');
// This machine's TSC, as its kernel log says (`tsc: Detected 2596.136 MHz processor`).
const LAB_TSC_KHZ = '2596136';

describe('single-machine ftrace fixtures merge on their own', () => {
  for (const f of readdirSync(FT).filter((x) => x.endsWith('.txt'))) {
    it(f, () => {
      const int = /x86tsc|counter/.test(f);
      const r = kvmtrace(['merge', '--host', join(FT, f), ...(int ? ['--tsc-khz', LAB_TSC_KHZ] : []), '-o', join(out, f + '.json'), '--text', join(out, f + '.out')]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/validation: PASSED/);
      const { processes, threads } = checkChromeJson(join(out, f + '.json'));
      expect([...processes.values()]).toEqual(['host (host)']);
      expect(threads.size).toBeGreaterThan(1);
      const lines = readFileSync(join(out, f + '.out'), 'utf8').trim().split('\n');
      const events = Number(/(\d+) events/.exec(r.stderr)![1]);
      expect(lines.length - 1).toBe(events); // header + one line per event
    });
  }
});

describe('systemtap output is a merge source like any other', () => {
  it('fixtures/stap/guest-app.stap: detected from content, merged into text, every event kept exactly', () => {
    const f = join(ROOT, 'fixtures', 'stap', 'guest-app.stap');
    const r = kvmtrace(['merge', '--host', f, '--text', join(out, 'stap.txt')]);
    expect(r.status, r.stderr).toBe(0);
    const lines = readFileSync(join(out, 'stap.txt'), 'utf8').trim().split('\n').slice(1);
    const src = readFileSync(f, 'utf8').split('\n').filter((l) => /^\d+\t/.test(l));
    expect(lines.length).toBe(src.length);
    // The TSC column of the merged text is the get_cycles() value the script printed, in order.
    expect(lines.map((l) => l.split(' ')[0])).toEqual(src.map((l) => l.split('\t')[0]).sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0)));
  });
});
