/**
 * One pass over the host trace before the merge, for the facts the mapping and the validation
 * need up front: the host trace's span, TSC offset writes, which thread runs which vCPU, and which
 * kind of guest-mode evidence the host has (kvm_entry/kvm_exit, or only KVM_RUN via kvm_fpu).
 * Holds only small per-vCPU tables, never events.
 */
import type { Diagnostics } from '../model/diagnostics.js';
import { clockUnit } from '../model/clock.js';
import type { OpenSource, SourceSpec } from './source.js';
import { openSource } from './source.js';
import { kvmEntryVcpu, kvmWriteTscOffset } from '../parsers/event-fields.js';

/** A kvm_write_tsc_offset seen on the host, with the host TSC of the write. */
export interface HostTscWrite {
  vcpu: number;
  prev: bigint;
  next: bigint;
  hostTsc: bigint;
  pid: number;
  line: number;
}

/** What the host trace says before merging. Host TSC values are absolute (bigint). */
export interface HostScan {
  events: number;
  first: bigint | undefined;
  last: bigint | undefined;
  tscWrites: HostTscWrite[];
  /** vCPU index → host thread, from kvm_entry events (`vcpu N` on thread T). */
  vcpuThreadsSeen: Map<number, number>;
  /** Thread → comm, as last seen. */
  comms: Map<number, string>;
  counts: { kvmEntry: number; kvmExit: number; kvmFpu: number; kvmPio: number };
  /** Unit of the host's timestamps: TSC cycles, or ns for time clocks. */
  unit: 'cycles' | 'ns' | undefined;
}

/** Scans the host's sources (one per trace file) completely. */
export async function scanHost(specs: SourceSpec[], diags: Diagnostics): Promise<HostScan> {
  const scan: HostScan = {
    events: 0,
    first: undefined,
    last: undefined,
    tscWrites: [],
    vcpuThreadsSeen: new Map(),
    comms: new Map(),
    counts: { kvmEntry: 0, kvmExit: 0, kvmFpu: 0, kvmPio: 0 },
    unit: undefined,
  };
  for (const spec of specs) await scanOne(spec, diags, scan);
  scan.tscWrites.sort((a, b) => (a.hostTsc < b.hostTsc ? -1 : a.hostTsc > b.hostTsc ? 1 : 0));
  return scan;
}

async function scanOne(spec: SourceSpec, diags: Diagnostics, scan: HostScan): Promise<void> {
  // In this thread: the merge waits for the scan, so a parser thread would only add its start-up.
  const src: OpenSource = await openSource({ ...spec, parseThread: false }, diags);
  let minRel = Infinity;
  let maxRel = -Infinity;
  for await (const blk of src.blocks) {
    for (let r = 0; r < blk.n; r++) {
      scan.events++;
      const ts = blk.ts[r];
      if (ts < minRel) minRel = ts;
      if (ts > maxRel) maxRel = ts;
      const name = blk.nameOf(r);
      if (name.charCodeAt(0) !== 107 /* k */) continue;
      switch (name) {
        case 'kvm_entry': {
          scan.counts.kvmEntry++;
          const v = kvmEntryVcpu(blk.body(r));
          if (v >= 0 && !scan.vcpuThreadsSeen.has(v)) scan.vcpuThreadsSeen.set(v, blk.pid[r]);
          scan.comms.set(blk.pid[r], blk.commOf(r));
          break;
        }
        case 'kvm_exit':
          scan.counts.kvmExit++;
          break;
        case 'kvm_fpu':
          scan.counts.kvmFpu++;
          scan.comms.set(blk.pid[r], blk.commOf(r));
          break;
        case 'kvm_pio':
          scan.counts.kvmPio++;
          break;
        case 'kvm_write_tsc_offset': {
          const w = kvmWriteTscOffset(blk.body(r));
          if (w) scan.tscWrites.push({ ...w, hostTsc: src.header.base!.abs(ts), pid: blk.pid[r], line: blk.line[r] });
          else diags.add({ file: spec.file, line: blk.line[r], message: 'expected kvm_write_tsc_offset fields "vcpu=N prev=N next=N"' });
          break;
        }
      }
    }
  }
  const unit = src.header.unit ?? clockUnit(src.header.clock);
  if (unit !== 'unknown') scan.unit ??= unit;
  const base = src.header.base;
  if (base && minRel <= maxRel) {
    const first = base.abs(minRel);
    const last = base.abs(maxRel);
    if (scan.first === undefined || first < scan.first) scan.first = first;
    if (scan.last === undefined || last > scan.last) scan.last = last;
  }
}
