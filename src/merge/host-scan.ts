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
  const src: OpenSource = await openSource(spec, diags);
  let minRel = Infinity;
  let maxRel = -Infinity;
  for await (const batch of src.batches) {
    for (const ev of batch) {
      scan.events++;
      if (ev.ts < minRel) minRel = ev.ts;
      if (ev.ts > maxRel) maxRel = ev.ts;
      if (ev.name.charCodeAt(0) !== 107 /* k */) continue;
      switch (ev.name) {
        case 'kvm_entry': {
          scan.counts.kvmEntry++;
          const v = kvmEntryVcpu(ev.body);
          if (v >= 0 && !scan.vcpuThreadsSeen.has(v)) scan.vcpuThreadsSeen.set(v, ev.pid);
          scan.comms.set(ev.pid, ev.comm);
          break;
        }
        case 'kvm_exit':
          scan.counts.kvmExit++;
          break;
        case 'kvm_fpu':
          scan.counts.kvmFpu++;
          scan.comms.set(ev.pid, ev.comm);
          break;
        case 'kvm_pio':
          scan.counts.kvmPio++;
          break;
        case 'kvm_write_tsc_offset': {
          const w = kvmWriteTscOffset(ev.body);
          if (w) scan.tscWrites.push({ ...w, hostTsc: src.header.base!.abs(ev.ts), pid: ev.pid, line: ev.line });
          else diags.add({ file: spec.file, line: ev.line, message: 'expected kvm_write_tsc_offset fields "vcpu=N prev=N next=N"' });
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
