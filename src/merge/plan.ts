/**
 * The clock plan of a merge: for each guest and vCPU, the mapping guest TSC → host TSC and the
 * host thread that runs it, built from the evidence the inputs carry, in this order of trust:
 * debugfs snapshots (bundle metadata) and kvm_write_tsc_offset events (exact), trace-cmd's
 * TIME_SHIFT, an offset estimated from the traces (estimate/, bounded), then the user's
 * `--tsc-offset`. Where sources disagree, the plan says so in `notes` — it never silently picks.
 */
import type { VmMeta } from '../model/bundle.js';
import { UserError } from '../model/errors.js';
import { hostSync, type TimeShift, type TraceDatOptions } from '../parsers/trace-dat/index.js';
import type { HostIndex, HostTscWrite } from '../host/index.js';
import type { ClockToTsc } from './clock-sync.js';
import type { SourceSpec } from './source.js';
import { VcpuMapping, type TscPiece } from './tsc-mapping.js';
import { hostTsc, type GuestTsc, type HostTsc } from '../model/units.js';

/** The start of a piece in force since before the trace. */
const SINCE_BEFORE = hostTsc(-1n);

/** What the user said on the command line about a guest (bare files, or overrides). */
export interface GuestOverrides {
  /** Offset for every vCPU (`--tsc-offset N`) or per vCPU. */
  tscOffset?: bigint;
  tscOffsetByVcpu?: Map<number, bigint>;
  tscScalingRatio?: bigint;
  tscScalingFracBits?: number;
  /** vCPU → host thread (`--vcpu-thread 0=483882`). */
  vcpuThreads?: Map<number, number>;
  /** Ignore the clock mapping written in trace.dat files (TIME_SHIFT) and their pairing ids. */
  noFileOffsets?: boolean;
  /** Offsets estimated from the traces (estimate/), per vCPU: used when no exact source states one. */
  estimated?: Map<number, { offset: bigint; low: bigint; high: bigint; method: string; ratio?: bigint; fracBits?: number }>;
}

/** The plan for one vCPU. */
export interface VcpuPlan {
  vcpu: number;
  tid: number | undefined;
  tidFrom: string;
  mapping: VcpuMapping;
  mappingFrom: string;
  /** For estimated mappings: the interval of offsets the evidence allows (the error bound). */
  bound?: { low: bigint; high: bigint };
}

/** The plan for one guest source. */
export interface GuestPlan {
  spec: SourceSpec;
  vm: VmMeta | undefined;
  /** guest CPU → vCPU. */
  cpuToVcpu: (cpu: number) => number;
  /** Plan of a vCPU; throws a UserError when nothing tells its offset. */
  vcpu: (vcpu: number) => VcpuPlan;
  /** The vCPUs planned so far (all known from evidence, plus those met while merging). */
  vcpus: Map<number, VcpuPlan>;
  /** vCPUs known to exist but with no evidence of their offset → their host thread (if known). */
  unmapped: Map<number, number | undefined>;
  notes: string[];
  /** For guests traced with a time clock: per trace file, its clock → guest TSC map (kvmsync markers). */
  clockSync?: Map<string, ClockToTsc>;
}

const cmp = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);

/** Builds the plan for one guest. */
export function planGuest(host: SourceSpec, scan: Pick<HostIndex, 'tscWrites' | 'vcpuThreadsSeen'>, guest: SourceSpec, over: GuestOverrides): GuestPlan {
  const notes: string[] = [];
  const vms = host.meta?.vms ?? [];
  let vm: VmMeta | undefined;
  const wanted = guest.meta?.guest?.vm ?? guest.meta?.name;
  if (vms.length === 1) vm = vms[0];
  else if (vms.length > 1) {
    vm = vms.find((v) => v.name === wanted);
    if (!vm)
      throw new UserError(
        `the host bundle has ${vms.length} VMs (${vms.map((v) => v.name).join(', ')}) and guest ${guest.file} names none of them (meta.json guest.vm = ${JSON.stringify(wanted)})`,
      );
  }
  const datGuest = over.noFileOffsets ? undefined : guest.dat?.options;
  const datHost = over.noFileOffsets ? undefined : host.dat?.options;
  checkPair(host, guest, datHost, datGuest);
  const guestOpt = datHost?.guests.find((g) => datGuest?.traceId !== undefined && g.traceId === datGuest.traceId) ??
    (datHost?.guests.length === 1 && datGuest?.traceId === undefined ? datHost.guests[0] : undefined);
  const cpuMap = guest.meta?.guest?.cpuToVcpu;
  const cpuToVcpu = (cpu: number): number => cpuMap?.get(cpu) ?? cpu;

  // Offset writes that belong to this VM: on hosts with several VMs, keep those made by its threads.
  let writes = scan.tscWrites;
  if (vms.length > 1 && vm) {
    const own = new Set<number>(vm.vcpus.map((c) => c.tid));
    if (vm.qemuPid !== undefined) own.add(vm.qemuPid);
    writes = writes.filter((w) => own.has(w.pid));
  }

  const vcpus = new Map<number, VcpuPlan>();
  const unmapped = new Map<number, number | undefined>();
  const build = (v: number): VcpuPlan | undefined => {
    const meta = vm?.vcpus.find((c) => c.vcpu === v);
    // Host thread.
    let tid: number | undefined;
    let tidFrom = 'unknown';
    const flagTid = over.vcpuThreads?.get(v);
    const seenTid = scan.vcpuThreadsSeen.get(v);
    const optTid = guestOpt?.vcpuToPid.get(v);
    if (meta) [tid, tidFrom] = [meta.tid, 'debugfs (bundle)'];
    else if (optTid !== undefined) [tid, tidFrom] = [optTid, 'trace.dat GUEST option'];
    else if (flagTid !== undefined) [tid, tidFrom] = [flagTid, '--vcpu-thread'];
    else if (seenTid !== undefined) [tid, tidFrom] = [seenTid, 'kvm_entry events'];
    else {
      // QEMU creates each vCPU in its own thread, so the thread that wrote a vCPU's TSC offset runs it.
      const w = writes.filter((x) => x.vcpu === v).at(-1);
      if (w) [tid, tidFrom] = [w.pid, 'kvm_write_tsc_offset events'];
    }
    if (tid !== undefined && flagTid !== undefined && flagTid !== tid)
      notes.push(`vCPU ${v}: --vcpu-thread says thread ${flagTid}, ${tidFrom} says ${tid}; using ${tid}`);
    if (tid !== undefined && seenTid !== undefined && seenTid !== tid)
      notes.push(`vCPU ${v}: kvm_entry events show vCPU ${v} on thread ${seenTid}, but ${tidFrom} says ${tid}`);

    // Mapping.
    const vWrites = writes.filter((w) => w.vcpu === v);
    const flagOffset = over.tscOffsetByVcpu?.get(v) ?? over.tscOffset;
    const scaling =
      over.tscScalingRatio !== undefined ? { ratio: over.tscScalingRatio, fracBits: over.tscScalingFracBits ?? 48 } : {};
    let direct: ((g: GuestTsc) => HostTsc) | undefined;
    let pieces: TscPiece[] | undefined;
    let from = '';
    if (meta && meta.snapshots.length > 0) {
      pieces = fromSnapshots(v, meta.snapshots, vWrites, notes);
      from = 'debugfs snapshots';
    } else if (vWrites.length > 0) {
      pieces = fromWrites(vWrites, scaling);
      from = `kvm_write_tsc_offset events (${vWrites.length})`;
    } else if (datGuest?.timeShift && datGuest.timeShift.cpus[v]?.length) {
      const ts = fromTimeShift(datGuest.timeShift, v);
      pieces = ts.pieces;
      direct = ts.direct;
      from = `trace.dat TIME_SHIFT (${datGuest.timeShift.cpus[v].length} samples${ts.direct ? ', ' + ts.how : ''})`;
    } else if (over.estimated?.has(v)) {
      const e = over.estimated.get(v)!;
      // Estimates assume the scaling they were made with (none, or the drift fit's), never --tsc-scaling.
      const scal = e.ratio !== undefined ? { ratio: e.ratio, fracBits: e.fracBits ?? 48 } : {};
      pieces = [{ fromHostTsc: SINCE_BEFORE, offset: e.offset, ...scal, source: 'estimate' }];
      from = e.method;
    } else if (flagOffset !== undefined) {
      pieces = [{ fromHostTsc: SINCE_BEFORE, offset: flagOffset, ...scaling, source: '--tsc-offset' }];
      from = '--tsc-offset';
    }
    if (!pieces) {
      unmapped.set(v, tid);
      return undefined;
    }
    unmapped.delete(v);
    if (over.tscScalingRatio !== undefined && from !== '--tsc-offset')
      notes.push(`vCPU ${v}: --tsc-scaling is not used: the mapping comes from ${from}`);
    if (flagOffset !== undefined && from !== '--tsc-offset') {
      const differ = pieces.filter((p) => p.offset !== flagOffset);
      if (differ.length)
        notes.push(
          `vCPU ${v}: --tsc-offset ${flagOffset} differs from ${from} (${differ.map((p) => p.offset).join(', ')}); following ${from}`,
        );
    }
    const est = pieces[0].source === 'estimate' ? over.estimated?.get(v) : undefined;
    return { vcpu: v, tid, tidFrom, mapping: new VcpuMapping(pieces, direct), mappingFrom: from, ...(est ? { bound: { low: est.low, high: est.high } } : {}) };
  };

  const candidates = new Set<number>([
    ...(vm?.vcpus.map((c) => c.vcpu) ?? []),
    ...(guestOpt?.vcpuToPid.keys() ?? []),
    ...(datGuest?.timeShift?.cpus.map((c, i) => (c.length ? i : -1)).filter((i) => i >= 0) ?? []),
    ...(over.vcpuThreads?.keys() ?? []),
    ...(over.tscOffsetByVcpu?.keys() ?? []),
    ...scan.vcpuThreadsSeen.keys(),
    ...writes.map((w) => w.vcpu),
  ]);
  if (candidates.size === 0 && over.tscOffset !== undefined) candidates.add(0);
  for (const v of [...candidates].sort((a, b) => a - b)) {
    const p = build(v);
    if (p) vcpus.set(v, p);
  }
  const vcpu = (v: number): VcpuPlan => {
    let p = vcpus.get(v);
    if (p) return p;
    p = build(v);
    if (!p)
      throw new UserError(
        `no TSC offset is known for vCPU ${v} of guest ${guest.file}: capture with \`kvmtrace capture host\` (debugfs snapshots), record kvm_write_tsc_offset on the host, or give --tsc-offset`,
      );
    vcpus.set(v, p);
    return p;
  };
  return { spec: guest, vm, cpuToVcpu, vcpu, vcpus, unmapped, notes };
}

const hex = (v: bigint): string => '0x' + v.toString(16).toUpperCase();

/**
 * trace.dat files name their pair: a guest's TIME_SHIFT carries its peer's (the host's) TRACEID, and
 * a host's GUEST option the TRACEIDs of its guests. A guest whose ids do not match is not merged:
 * trace-cmd would put it wherever its offsets say, silently.
 */
function checkPair(host: SourceSpec, guest: SourceSpec, h: TraceDatOptions | undefined, g: TraceDatOptions | undefined): void {
  if (!h || !g) return;
  const why: string[] = [];
  if (g.timeShift && h.traceId !== undefined && g.timeShift.peerTraceId !== h.traceId)
    why.push(`its TIME_SHIFT names host trace id ${hex(g.timeShift.peerTraceId)}, but ${host.file} has TRACEID ${hex(h.traceId)}`);
  if (h.guests.length && g.traceId !== undefined && !h.guests.some((x) => x.traceId === g.traceId))
    why.push(`its TRACEID ${hex(g.traceId)} is not among the host's GUEST entries (${h.guests.map((x) => (x.name ? `${x.name} ` : '') + hex(x.traceId)).join(', ')})`);
  if (why.length)
    throw new UserError(
      `${guest.file} does not belong to ${host.file}: ${why.join('; ')}. Not merging it (to merge anyway, give --no-file-offsets and a --tsc-offset)`,
    );
}

/**
 * The mapping of a guest trace.dat's TIME_SHIFT samples for one vCPU (trace-cmd: host =
 * ((guest × scaling) >> frac) + offset). A constant, unscaled correction is KVM's offset negated,
 * one piece. Otherwise — scaling, or offsets that change — the map is trace-cmd's own formula,
 * interpolated between samples when the flags say so, applied to each guest timestamp
 * (hostSync), so events land exactly where `trace-cmd report` puts them; the pieces then only
 * describe it.
 */
function fromTimeShift(t: TimeShift, v: number): { pieces: TscPiece[]; direct?: (g: GuestTsc) => HostTsc; how?: string } {
  const samples = t.cpus[v];
  const pieces: TscPiece[] = [];
  for (const x of samples) {
    const offset = -x.offset;
    if (pieces.length && pieces[pieces.length - 1].offset === offset) continue;
    pieces.push({ fromHostTsc: pieces.length ? hostTsc(x.time + x.offset) : SINCE_BEFORE, offset, source: 'TIME_SHIFT' });
  }
  const scaled = samples.some((x) => x.scaling !== 1n && x.scaling !== 1n << BigInt(x.fracBits));
  if (!scaled && pieces.length === 1) return { pieces };
  const how = [scaled ? 'scaled' : '', pieces.length > 1 ? (t.flags & 1 ? 'interpolated' : 'stepped') : ''].filter(Boolean).join(', ');
  return { pieces, direct: (g) => hostTsc(hostSync(g, v, t)), how };
}

/** Pieces from kvm_write_tsc_offset events alone: the `prev` offset before the first write, then each `next`. */
function fromWrites(ws: HostTscWrite[], scaling: { ratio?: bigint; fracBits?: number }): TscPiece[] {
  const pieces: TscPiece[] = [{ fromHostTsc: SINCE_BEFORE, offset: ws[0].prev, ...scaling, source: 'kvm_write_tsc_offset prev' }];
  for (const w of ws) pieces.push({ fromHostTsc: w.hostTsc, offset: w.next, ...scaling, source: `kvm_write_tsc_offset (line ${w.line})` });
  return pieces;
}

/**
 * Pieces from debugfs snapshots. A snapshot is the truth at its host TSC; a kvm_write_tsc_offset
 * event between two snapshots places a change exactly when its `next` is the later snapshot's
 * value. Events that contradict the snapshots are reported and not followed (this machine's
 * kvm-pvm, for one, reports writes the guest never sees).
 */
function fromSnapshots(
  v: number,
  snaps: { when: string; hostTsc: HostTsc; tscOffset: bigint; tscScalingRatio?: bigint; tscScalingFracBits?: number }[],
  ws: HostTscWrite[],
  notes: string[],
): TscPiece[] {
  const s = [...snaps].sort((a, b) => cmp(a.hostTsc, b.hostTsc));
  const scal = (x: (typeof s)[number]) =>
    x.tscScalingRatio !== undefined && x.tscScalingRatio !== 1n << BigInt(x.tscScalingFracBits ?? 48)
      ? { ratio: x.tscScalingRatio, fracBits: x.tscScalingFracBits }
      : {};
  const pieces: TscPiece[] = [{ fromHostTsc: SINCE_BEFORE, offset: s[0].tscOffset, ...scal(s[0]), source: `debugfs (${s[0].when})` }];
  for (let i = 1; i < s.length; i++) {
    if (s[i].tscOffset === s[i - 1].tscOffset && s[i].tscScalingRatio === s[i - 1].tscScalingRatio) continue;
    const between = ws.filter((w) => w.hostTsc > s[i - 1].hostTsc && w.hostTsc <= s[i].hostTsc && w.next === s[i].tscOffset);
    const at = between.length ? between[between.length - 1].hostTsc : s[i].hostTsc;
    if (!between.length)
      notes.push(`vCPU ${v}: the TSC offset changed between debugfs readings "${s[i - 1].when}" and "${s[i].when}" with no kvm_write_tsc_offset event to say when; the change is placed at the later reading`);
    pieces.push({ fromHostTsc: at, offset: s[i].tscOffset, ...scal(s[i]), source: `debugfs (${s[i].when})` });
  }
  // Writes whose result no snapshot confirms.
  const contradicting = ws.filter((w) => {
    const after = s.find((x) => x.hostTsc >= w.hostTsc);
    const later = after ? ws.filter((o) => o.hostTsc > w.hostTsc && o.hostTsc <= after.hostTsc) : [];
    return after !== undefined && later.length === 0 && w.next !== after.tscOffset;
  });
  if (contradicting.length) {
    const w = contradicting[0];
    notes.push(
      `vCPU ${v}: ${contradicting.length} kvm_write_tsc_offset event(s) disagree with debugfs — e.g. line ${w.line} (host TSC ${w.hostTsc}) claims offset ${w.next}, debugfs read ${s.find((x) => x.hostTsc >= w.hostTsc)!.tscOffset} afterwards; following debugfs, checked against the evidence below`,
    );
  }
  const before = ws.filter((w) => w.hostTsc < s[0].hostTsc);
  if (before.length && !contradicting.includes(before[before.length - 1]) && before[before.length - 1].next !== s[0].tscOffset)
    notes.push(`vCPU ${v}: the last kvm_write_tsc_offset before the first debugfs reading claims ${before[before.length - 1].next}, debugfs read ${s[0].tscOffset}`);
  return pieces;
}
