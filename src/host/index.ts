/**
 * The host index: everything kvmtrace needs to know about the host trace, from one pass over it
 * before the merge. Planning (TSC offset writes, which thread runs which vCPU), estimation and
 * validation (each vCPU thread's states), `check`, the analyses and the pictures (the same states,
 * replayed in the merge, see kvm/replay.ts) all read it; nobody scans the host again.
 *
 * The pass reads the host sources through the k-way merge (merge.ts) with the merge's reorder
 * window, so its events come in exactly the order the merge gives them later: the n-th host event
 * of the index is the n-th host event of every merge of the same inputs. A segment's place `ord`
 * is 2 × that ordinal (+ 1 for the thread a sched_switch switches to, which comes second).
 *
 * Memory: small tables, plus per tracked thread its segments (packed, 5 to 7 bytes each on real
 * hosts, kvm/segment-pack.ts: two per VM exit on entry-exit hosts) and sync exits (8 bytes each).
 */
import { statSync } from 'node:fs';
import { Diagnostics } from '../model/diagnostics.js';
import { clockUnit } from '../model/clock.js';
import { hostTsc, type HostTsc } from '../model/units.js';
import { mergeTimeline, reorderFailures, type Timeline, type TimelineSource } from '../merge/merge.js';
import { openSource, type OpenSource, type SourceSpec } from '../merge/source.js';
import type { ThreadSegments } from '../kvm/segments.js';
import { HostIndexBuilder } from './builder.js';
import { HOST_KEEP_BYTES, RetainedHost } from './retain.js';
import type { HostFile } from './where.js';
import type { HostSkew } from './skew.js';
import { groupVms, type HostVm, type KnownVm } from './vms.js';

/** Which kind of guest-mode evidence the host trace has. */
export type WindowKind = 'entry-exit' | 'kvm-run' | 'none';

/** A kvm_write_tsc_offset seen on the host, with the host TSC of the write. */
export interface HostTscWrite {
  vcpu: number;
  prev: bigint;
  next: bigint;
  hostTsc: HostTsc;
  pid: number;
  line: number;
}

/** What the index knows of one tracked host thread. Times are timeline cycles. */
export interface HostThread {
  tid: number;
  /** vCPU index from its first kvm_entry (`vcpu N`), -1 when none. */
  vcpu: number;
  /** Its process — the VM's QEMU — when the trace has a TGID column, else -1. */
  tgid: number;
  /** The tracker's segments for the host's kind of evidence. */
  segments: ThreadSegments;
  /** Switch-ins the trace lacks (kvm-run), see kvm/tracker.ts. */
  missedSwitchIns: number;
  /** The host CPUs it was seen on (its own events, its switch-ins), ascending. */
  cpus: number[];
}

/** The host index. Absolute host TSC values are bigint; times relative to `base` are numbers (timeline cycles). */
export interface HostIndex {
  /** Absolute host TSC (or the host clock's value) of timeline time 0: the first host file's first timestamp. */
  base: HostTsc;
  /** The host's files, in source order: what a segment's `where` refers to (host/where.ts). */
  files: HostFile[];
  events: number;
  /** First and last host event, absolute; undefined when the host has no events. */
  first: HostTsc | undefined;
  last: HostTsc | undefined;
  /** The same, as timeline times (±Infinity when the host has no events). */
  firstT: number;
  lastT: number;
  tscWrites: HostTscWrite[];
  /** vCPU index → host thread, from kvm_entry events (`vcpu N` on thread T; the first thread seen). */
  vcpuThreadsSeen: Map<number, number>;
  /** Thread → comm, as last seen on its kvm_entry / kvm_fpu. */
  comms: Map<number, string>;
  counts: { kvmEntry: number; kvmExit: number; kvmFpu: number; kvmPio: number };
  /** Unit of the host's timestamps: TSC cycles, or ns for time clocks. */
  unit: 'cycles' | 'ns' | undefined;
  /** The kind of guest-mode evidence: kvm_entry/kvm_exit, KVM_RUN (kvm_fpu) only, or none. */
  kind: WindowKind;
  /** vCPU → number of `tsc_offset_zeroed` events (the stap method: KVM was made to write offset 0). */
  zeroed: Map<number, number>;
  /** The tracked threads (vCPU threads and every thread with run evidence): tid → vCPU, VM (tgid), states. */
  threads: Map<number, HostThread>;
  /** Host times of each thread's sync exits (kvm_pio on the sync port; CPUID kvm_exit), sorted. */
  sync: Map<number, { pio: Float64Array; cpuid: Float64Array }>;
  /** Where each of those sync exits is (host/where.ts), in the same order. */
  syncWhere: Map<number, { pio: Float64Array; cpuid: Float64Array }>;
  /**
   * The VMs on the host and their vCPU threads (vms.ts): from the inputs' metadata and the TGID
   * column. `guests` are filled in by the merge's plans (merge/session.ts).
   */
  vms: HostVm[];
  /** Per thread, kvm_pio counts by `in|out 0xPORT`. */
  pioPorts: Map<number, Map<string, number>>;
  /** Exit and userspace-exit reasons, by the id segments carry as their arg. */
  names: string[];
  /** Causal pairs across host CPUs (wakeup or migration, then switch-in), the evidence of the skew bound (skew.ts). */
  skew: HostSkew;
  /**
   * The host's events out of time order beyond the reorder window, as the index pass met them
   * (merge.ts reorderFailures): the verdict's, when the merge does not read the host again.
   */
  lateFailures: string[];
}

/** The kind of guest-mode evidence of a host with these event counts. */
export function windowKindOf(counts: HostIndex['counts']): WindowKind {
  return counts.kvmEntry > 0 ? 'entry-exit' : counts.kvmFpu > 0 ? 'kvm-run' : 'none';
}

/** How the index is built. */
export interface HostIndexOptions {
  /** Where the host's unparsable lines go. */
  diags: Diagnostics;
  /** Threads known to run vCPUs before the pass (metadata, GUEST option, --vcpu-thread). */
  vcpuTids?: Iterable<number>;
  /** The VMs the inputs name before the pass (their threads are tracked too). */
  vms?: KnownVm[];
  /** The merge's reorder window (events per source), so the order is the merge's. */
  window?: number;
}

/** The index, and the host's sources replayed from the blocks the pass kept (undefined when they did not fit: read the host again). */
export interface IndexedHost {
  index: HostIndex;
  replay: OpenSource[] | undefined;
}

/** Reads the host's sources (one per trace file) once and builds the index. */
export async function buildHostIndex(specs: SourceSpec[], o: HostIndexOptions): Promise<HostIndex> {
  return (await indexHost(specs, o)).index;
}

/**
 * Reads the host's sources once, builds the index, and keeps their blocks for the merge while they
 * fit `keep` bytes (default HOST_KEEP_BYTES, host/retain.ts; 0 keeps none).
 */
export async function indexHost(specs: SourceSpec[], o: HostIndexOptions & { keep?: number }): Promise<IndexedHost> {
  const sources: TimelineSource[] = [];
  const textBytes = specs.reduce((a, s) => a + (s.format === 'ftrace-text' ? fileSize(s.file) : 0), 0);
  const budget = o.keep ?? HOST_KEEP_BYTES;
  const kept = new RetainedHost(specs.length, textBytes > budget / 2 ? 0 : budget);
  let b: HostIndexBuilder | undefined;
  let timeline: Timeline | undefined;
  try {
    // In this thread: the merge waits for the index, so a parser thread would only add its start-up.
    for (const [i, spec] of specs.entries()) {
      const open = await openSource({ ...spec, parseThread: false }, o.diags);
      sources.push({ role: 'host', machine: spec.machine, open: { ...open, blocks: kept.wrap(i, open.blocks) } });
    }
    // The merge reports events out of order; the index only follows its order.
    const quiet = new Diagnostics(false, 0);
    for await (const mb of mergeTimeline(sources, { diags: quiet, window: o.window, onTimeline: (tl) => void (timeline = tl) })) {
      const wanted = [...(o.vcpuTids ?? []), ...(o.vms ?? []).flatMap((v) => [...v.vcpus.values()])];
      b ??= new HostIndexBuilder(hostTsc(sources[0].open.header.base!.value), wanted, o.diags, specs.map((s) => s.file));
      b.feed(mb);
    }
  } finally {
    for (const s of sources) await s.open.close();
  }
  let unit: HostIndex['unit'];
  for (const s of sources) {
    const u = s.open.header.unit ?? clockUnit(s.open.header.clock);
    if (u !== 'unknown') unit ??= u;
  }
  const replay = kept.complete ? sources.map((s, i) => kept.replay(i, s.open)) : undefined;
  const files = sources.map((s) => ({ file: s.open.spec.file, format: s.open.format }));
  return { index: finishIndex(b, unit, timeline ? reorderFailures(timeline) : [], files, o.vms ?? []), replay };
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0; // the reader reports the unreadable file
  }
}

/** The index once every event is in: the trackers end, and the host's kind picks their segments. */
function finishIndex(b: HostIndexBuilder | undefined, unit: HostIndex['unit'], lateFailures: string[], files: HostFile[], known: KnownVm[]): HostIndex {
  const counts = b?.counts ?? { kvmEntry: 0, kvmExit: 0, kvmFpu: 0, kvmPio: 0 };
  const kind = windowKindOf(counts);
  const threads = new Map<number, HostThread>();
  const sync = new Map<number, { pio: Float64Array; cpuid: Float64Array }>();
  const syncWhere = new Map<number, { pio: Float64Array; cpuid: Float64Array }>();
  if (b) {
    for (const th of b.threads.values()) {
      const tracker = kind === 'entry-exit' ? th.entryExit : th.kvmRun;
      const segments = kind === 'entry-exit' ? th.entryExitSegs : th.kvmRunSegs;
      tracker.finish();
      segments.trim();
      threads.set(th.tid, { tid: th.tid, vcpu: th.vcpu, tgid: th.tgid, segments, missedSwitchIns: tracker.missedSwitchIns, cpus: [...th.cpus].sort((x, y) => x - y) });
    }
    for (const [tid, s] of b.sync) {
      const pio = s.pio.done();
      const cpuid = s.cpuid.done();
      sync.set(tid, { pio: pio.t, cpuid: cpuid.t });
      syncWhere.set(tid, { pio: pio.where, cpuid: cpuid.where });
    }
  }
  const has = b !== undefined && b.events > 0;
  const cmp = (x: { hostTsc: bigint }, y: { hostTsc: bigint }): number => (x.hostTsc < y.hostTsc ? -1 : x.hostTsc > y.hostTsc ? 1 : 0);
  return {
    base: b?.base ?? hostTsc(0n),
    files,
    events: b?.events ?? 0,
    first: has ? hostTsc(b!.base + BigInt(b!.firstT)) : undefined,
    last: has ? hostTsc(b!.base + BigInt(b!.lastT)) : undefined,
    firstT: b?.firstT ?? Infinity,
    lastT: b?.lastT ?? -Infinity,
    tscWrites: (b?.tscWrites ?? []).sort(cmp),
    vcpuThreadsSeen: b?.vcpuThreadsSeen ?? new Map(),
    comms: b?.comms ?? new Map(),
    counts,
    unit,
    kind,
    zeroed: b?.zeroed ?? new Map(),
    threads,
    sync,
    syncWhere,
    vms: groupVms(known, threads.values()),
    pioPorts: b?.pioPorts ?? new Map(),
    names: b?.names ?? [],
    skew: b?.skew.done() ?? { edges: [] },
    lateFailures,
  };
}
