/**
 * The host index of bare host files, for tests of what reads it (estimation, validation).
 */
import { Diagnostics } from '../../src/model/diagnostics.js';
import { buildHostIndex, type HostIndex } from '../../src/host/index.js';
import type { SourceSpec } from '../../src/merge/source.js';

/** Indexes host trace files (each `{ file, clock? }`), with vCPU threads known up front when given. */
export function hostIndex(files: Omit<SourceSpec, 'role' | 'machine'>[], vcpuTids: number[] = []): Promise<HostIndex> {
  return buildHostIndex(
    files.map((f) => ({ role: 'host' as const, machine: 'host', ...f })),
    { diags: new Diagnostics(false), vcpuTids },
  );
}
