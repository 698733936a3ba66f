/**
 * The SQL the README gives for the Perfetto output, run with Perfetto's own trace processor where
 * one is at hand (KVMTRACE_TRACE_PROCESSOR names a trace_processor_shell, v58): the answers must
 * agree with what the trace holds, as decoded by the structural tests' decoder. None can be
 * installed here; without one these checks skip with their reason, and only the README's queries
 * are checked to be there.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { kvmtrace, ROOT } from './helpers/cli.js';
import { readPftrace, type Pf } from './helpers/pftrace.js';
import { tempDir } from './helpers/tmp.js';

/** The README's queries, by their `-- kvmtrace: TITLE` line. */
function readmeQueries(): Map<string, string> {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const block = /## Perfetto trace[\s\S]*?```sql\n([\s\S]*?)```/.exec(readme)![1];
  const out = new Map<string, string>();
  for (const part of block.split(/\n(?=-- kvmtrace: )/)) {
    const m = /^-- kvmtrace: (.*)\n([\s\S]*)$/.exec(part.trim());
    if (m) out.set(m[1], m[2].trim());
  }
  return out;
}

const TP = process.env.KVMTRACE_TRACE_PROCESSOR;
const tpMissing = !TP ? 'KVMTRACE_TRACE_PROCESSOR is not set (no trace processor can be installed here)' : !existsSync(TP) ? `KVMTRACE_TRACE_PROCESSOR=${TP} does not exist` : undefined;

/** Runs one query; rows as string arrays (CSV, header dropped). */
function query(file: string, sql: string): string[][] {
  const r = spawnSync(TP!, ['query', file, sql], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`trace processor failed (${r.status}): ${r.stderr}`);
  const lines = r.stdout.trim().split('\n').filter((l) => l.length);
  return lines.slice(1).map((l) => l.split(',').map((c) => c.replace(/^"|"$/g, '')));
}

describe('the README’s SQL for the Perfetto output', () => {
  const q = readmeQueries();

  it('gives the seven queries the tests run', () => {
    expect([...q.keys()]).toEqual(['machines', 'import problems (none expected)', 'scheduling slices per machine', 'vCPU states per host thread', 'flows', 'fields of generic events', 'verdict and mapping']);
  });

  describe.skipIf(tpMissing)('answered by trace_processor on the demo capture', () => {
    if (tpMissing) console.log(`skipped: ${tpMissing}`);
    let file: string;
    let pf: Pf;
    beforeAll(() => {
      const dir = tempDir('kvmtrace-pft-sql-');
      file = join(dir, 'm.pftrace');
      const fx = join(ROOT, 'fixtures', 'pvm-1vcpu');
      expect(kvmtrace(['merge', join(fx, 'host'), join(fx, 'guest'), '-o', file, '-q']).status).toBe(0);
      pf = readPftrace(file);
    });

    it('loads with no error or data loss, and has both machines', () => {
      expect(query(file, q.get('import problems (none expected)')!)).toEqual([]);
      expect(query(file, q.get('machines')!)).toEqual([
        ['0', 'host'],
        ['1', 'kvmlab'],
      ]);
    });

    it('has as many scheduling slices per machine as the trace has sched_switch events', () => {
      const want = [0, 1].map((m) => [String(m), String(pf.events.filter((e) => e.machine === m && e.name === 'sched_switch').length)]);
      expect(query(file, q.get('scheduling slices per machine')!)).toEqual(want);
    });

    it('has the vCPU state slices as written, every flow, the generic fields, and the verdict', () => {
      const states = query(file, q.get('vCPU states per host thread')!).filter((r) => r[0] === '26619');
      const vcpuTrack = [...pf.tracks].find(([, t]) => t.tid === 26619)![0];
      for (const [, name, n] of states) expect(Number(n)).toBe(pf.trackEvents.filter((e) => e.uuid === vcpuTrack && e.type === 1 && e.name === name).length);
      expect(states.length).toBeGreaterThan(2);
      expect(query(file, q.get('flows')!)).toEqual([['40']]);
      const fields = query(file, q.get('fields of generic events')!);
      expect(fields).toContainEqual(['kvm_fpu', 'text', String(pf.events.filter((e) => e.name === 'kvm_fpu').length)]);
      const meta = new Map(query(file, q.get('verdict and mapping')!).map((r) => [r[0], r[1] || r[2]]));
      expect(meta.get('trace_attribute.kvmtrace.validation')).toBe('passed');
      expect(meta.get('trace_attribute.kvmtrace.guest.kvmlab.vcpu0.mapping_from')).toBe('debugfs snapshots');
    });
  });
});
