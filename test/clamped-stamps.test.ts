/**
 * The `global` trace clock never goes backwards across CPUs: a stamp is raised to the last one
 * taken on any CPU, so guest events that share their stamp with another CPU's may have been
 * clamped and are not checkable. fixtures/global-clock/global.txt (a real `global`-clock trace of
 * two CPUs passing a byte back and forth, µs stamps, kvmsync markers) as the guest: the validator
 * must count exactly the events of each run of equal stamps that spans CPUs, counted here from the
 * file itself.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { prepareMerge } from '../src/merge/session.js';
import { exportMerge } from '../src/export/export-merge.js';
import { ROOT } from './helpers/cli.js';

const DIR = join(ROOT, 'fixtures', 'global-clock');

/** Events (of CPUs mapped to each vCPU) in runs of equal stamps, in file order, that span two CPUs or more. */
function clampedInFile(file: string): number[] {
  const rows: { cpu: number; ts: string }[] = [];
  for (const l of readFileSync(file, 'utf8').split('\n')) {
    const m = /^\s*.+?-\d+\s+\[(\d+)\]\s+\S+\s+(\d+\.\d+): /.exec(l);
    if (m) rows.push({ cpu: Number(m[1]), ts: m[2] });
  }
  const perCpu: number[] = [];
  for (let i = 0; i < rows.length; ) {
    let j = i;
    while (j < rows.length && rows[j].ts === rows[i].ts) j++;
    const run = rows.slice(i, j);
    if (new Set(run.map((r) => r.cpu)).size > 1) for (const r of run) perCpu[r.cpu] = (perCpu[r.cpu] ?? 0) + 1;
    i = j;
  }
  return perCpu;
}

describe('clamped stamps of a global-clock guest', () => {
  it('are not checkable, and counted per vCPU exactly as the file shows them', async () => {
    const guest = join(DIR, 'global.txt');
    const merge = async (guestClock: 'global' | 'mono') =>
      exportMerge(await prepareMerge({ bundles: [], hostFiles: [join(DIR, 'x86-tsc.txt')], guestFiles: [guest], guestClock, overrides: { tscOffset: 0n }, tscKhz: 2596136 }), {});
    const r = await merge('global');
    const want = clampedInFile(guest);
    expect(want.reduce((a, b) => a + (b ?? 0), 0)).toBeGreaterThan(10);
    const got = r.result.guests[0].vcpus.map((v) => [v.vcpu, v.clampedStamps]);
    expect(got).toEqual(r.result.guests[0].vcpus.map((v) => [v.vcpu, want[v.vcpu] ?? 0]));
    // The same guest read as `mono` (not monotonic across CPUs by construction) has no such rule.
    const mono = await merge('mono');
    expect(mono.result.guests[0].vcpus.every((v) => v.clampedStamps === undefined)).toBe(true);
  });
});
