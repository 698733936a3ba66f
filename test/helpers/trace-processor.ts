/**
 * Perfetto's trace processor, where one is at hand: KVMTRACE_TRACE_PROCESSOR names a
 * trace_processor_shell (v58). None can be installed here, so tests that use it skip with
 * {@link tpMissing} as their reason.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const TP = process.env.KVMTRACE_TRACE_PROCESSOR;

/** Why the trace processor checks must skip, or undefined when they can run. */
export const tpMissing: string | undefined = !TP
  ? 'KVMTRACE_TRACE_PROCESSOR is not set (no trace processor can be installed here)'
  : !existsSync(TP)
    ? `KVMTRACE_TRACE_PROCESSOR=${TP} does not exist`
    : undefined;

/** Runs one query on a trace file; rows as string arrays (CSV, header dropped). */
export function tpQuery(file: string, sql: string): string[][] {
  const r = spawnSync(TP!, ['query', file, sql], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`trace processor failed (${r.status}): ${r.stderr}`);
  const lines = r.stdout.trim().split('\n').filter((l) => l.length);
  return lines.slice(1).map((l) => l.split(',').map((c) => c.replace(/^"|"$/g, '')));
}
