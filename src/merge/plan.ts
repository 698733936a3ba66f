/**
 * The clock plan of a merge: for each guest and vCPU, the mapping guest TSC → host TSC and the
 * host thread that runs it, and which vCPU runs each guest CPU.
 *
 * The user's word is followed: an explicit `--tsc-offset` (with `--tsc-scaling`) is the mapping,
 * and where a source in the files says otherwise the plan says so (a warning, printed even with
 * -q) and the evidence checks it like any other. Without it, the sources in the files — debugfs
 * snapshots, kvm_write_tsc_offset events, trace-cmd's TIME_SHIFT (plan-sources.ts) — are followed
 * when they agree; where they disagree, each is checked against the evidence (sync points, guest
 * events inside guest-mode windows: estimate/evidence.ts) and the one the evidence supports is
 * followed (`over.chosen`), never silently; until then, or when the evidence cannot tell, the
 * order of trust above decides. With no source at all, an offset estimated from the traces
 * (estimate/) is used.
 */
import type { VmMeta } from '../model/bundle.js';
import { UserError } from '../model/errors.js';
import type { TraceDatOptions } from '../parsers/trace-dat/index.js';
import type { HostIndex } from '../host/index.js';
import type { ClockToTsc } from './clock-sync.js';
import { cpuPairing, vcpuOf, type CpuPairing } from './cpu-pairing.js';
import { fromSnapshots, fromTimeShift, fromWrites, offsetsText, sameMapping, SINCE_BEFORE, type Offer, type OfferKind, type Scaling } from './plan-sources.js';
import { cpuCount, type SourceSpec } from './source.js';
import { VcpuMapping, type TscPiece } from './tsc-mapping.js';
import type { OfferScore } from './estimate/evidence.js';
import type { GuestTsc, HostTsc } from '../model/units.js';

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
  /** Offsets estimated from the traces (estimate/), per vCPU: used when no source states one. */
  estimated?: Map<number, { offset: bigint; low: bigint; high: bigint; method: string; ratio?: bigint; fracBits?: number }>;
  /** Per vCPU whose sources disagree: the one the evidence supports, and every source's score (estimate/evidence.ts). */
  chosen?: Map<number, { kind: OfferKind; scores: OfferScore[]; why: string }>;
  /** guest CPU → vCPU learnt from sync points (estimate/evidence.ts), when nothing else states it. */
  syncPairing?: { map: Map<number, number>; from: string; complete: boolean };
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
  /** When the sources differ: every source's mapping (the user's first, then in order of trust); empty when they agree. */
  offers: Offer[];
  /** Which of `offers` is followed, and each one's score against the evidence once weighed. */
  followed?: OfferKind;
  scores?: OfferScore[];
}

/** The plan for one guest source. */
export interface GuestPlan {
  spec: SourceSpec;
  vm: VmMeta | undefined;
  /** guest CPU → vCPU. */
  cpuToVcpu: (cpu: number) => number;
  /** Which vCPU runs each guest CPU, and on what that rests. */
  pairing: CpuPairing;
  /** Plan of a vCPU; throws a UserError when nothing tells its offset. */
  vcpu: (vcpu: number) => VcpuPlan;
  /** The vCPUs planned so far (all known from evidence, plus those met while merging). */
  vcpus: Map<number, VcpuPlan>;
  /** vCPUs known to exist but with no evidence of their offset → their host thread (if known). */
  unmapped: Map<number, number | undefined>;
  notes: string[];
  /** One-line warnings the report prints even when quiet (a stated mapping the files contradict, a choice between sources). */
  warnings: string[];
  /** For guests traced with a time clock: per trace file, its clock → guest TSC map (kvmsync markers). */
  clockSync?: Map<string, ClockToTsc>;
}

/** Builds the plan for one guest. */
export function planGuest(host: SourceSpec, scan: Pick<HostIndex, 'tscWrites' | 'vcpuThreadsSeen'>, guest: SourceSpec, over: GuestOverrides): GuestPlan {
  const notes: string[] = [];
  const warnings: string[] = [];
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
  const vmVcpus = vm ? vm.vcpus.map((c) => c.vcpu) : guestOpt ? [...guestOpt.vcpuToPid.keys()] : undefined;
  const vmName = vm?.name ?? (guestOpt?.name || undefined);
  checkGuestFitsVm(guest, host, vmName, vmVcpus, notes);
  const pairing = cpuPairing({
    bundle: guest.meta?.guest?.cpuToVcpu,
    sync: over.syncPairing,
    guestCpus: cpuCount(guest),
    vmVcpus,
  });
  const cpuToVcpu = (cpu: number): number => vcpuOf(pairing, cpu);

  // Offset writes that belong to this VM: on hosts with several VMs, keep those made by its threads.
  let writes = scan.tscWrites;
  if (vms.length > 1 && vm) {
    const own = new Set<number>(vm.vcpus.map((c) => c.tid));
    if (vm.qemuPid !== undefined) own.add(vm.qemuPid);
    writes = writes.filter((w) => own.has(w.pid));
  }
  const scaling: Scaling = over.tscScalingRatio !== undefined ? { ratio: over.tscScalingRatio, fracBits: over.tscScalingFracBits ?? 48 } : {};

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

    // Mapping: every source's offer, then the one to follow.
    const files = fileOffers(v, meta?.snapshots, writes.filter((w) => w.vcpu === v), datGuest, scaling, notes);
    const flagOffset = over.tscOffsetByVcpu?.get(v) ?? over.tscOffset;
    const stated: Offer | undefined =
      flagOffset !== undefined ? { kind: 'flag', from: '--tsc-offset', pieces: [{ fromHostTsc: SINCE_BEFORE, offset: flagOffset, ...scaling, source: '--tsc-offset' }] } : undefined;
    const all = stated ? [stated, ...files] : files;
    const offers = all.some((o) => !sameMapping(o, all[0])) ? all : [];
    const choice = over.chosen?.get(v);
    const follow = stated ?? files.find((o) => o.kind === choice?.kind) ?? files[0];
    if (stated)
      for (const o of files)
        if (!sameMapping(o, stated)) warnings.push(`vCPU ${v}: --tsc-offset ${flagOffset} differs from ${o.from} (${offsetsText(o)}); following --tsc-offset as stated`);
    if (!stated && offers.length && choice)
      warnings.push(`vCPU ${v}: the sources disagree (${offers.map((o) => `${o.from}: ${offsetsText(o)}`).join('; ')}); ${choice.why}`);
    const ratioSnap = meta?.snapshots.find((x) => x.tscScalingRatio !== undefined);
    if (scaling.ratio !== undefined && ratioSnap && (ratioSnap.tscScalingRatio !== scaling.ratio || (ratioSnap.tscScalingFracBits ?? 48) !== scaling.fracBits))
      warnings.push(`vCPU ${v}: --tsc-scaling ${scaling.ratio}/${scaling.fracBits} differs from debugfs's ${ratioSnap.tscScalingRatio}/${ratioSnap.tscScalingFracBits ?? 48}; following --tsc-scaling as stated`);
    let pieces: TscPiece[];
    let direct: ((g: GuestTsc) => HostTsc) | undefined;
    let from: string;
    const est = follow ? undefined : over.estimated?.get(v);
    if (follow) [pieces, direct, from] = [follow.pieces, follow.direct, follow.from];
    else if (est) {
      // Estimates assume the scaling they were made with (none, or the drift fit's).
      const scal = est.ratio !== undefined ? { ratio: est.ratio, fracBits: est.fracBits ?? 48 } : {};
      [pieces, from] = [[{ fromHostTsc: SINCE_BEFORE, offset: est.offset, ...scal, source: 'estimate' }], est.method];
    } else {
      unmapped.set(v, tid);
      return undefined;
    }
    unmapped.delete(v);
    if (scaling.ratio !== undefined && !stated && (est || direct || follow?.kind === 'timeshift'))
      throw new UserError(
        `vCPU ${v}: --tsc-scaling applies to a KVM offset, but the mapping comes from ${from} — give --tsc-offset with it, or leave --tsc-scaling out`,
      );
    return {
      vcpu: v,
      tid,
      tidFrom,
      mapping: new VcpuMapping(pieces, direct),
      mappingFrom: from,
      offers,
      ...(follow ? { followed: follow.kind } : {}),
      ...(choice && offers.length ? { scores: choice.scores } : {}),
      ...(est ? { bound: { low: est.low, high: est.high } } : {}),
    };
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
    if (!p && vmVcpus && !vmVcpus.includes(v))
      throw new UserError(
        `guest ${guest.file} has events on a CPU that would run on vCPU ${v}, but VM ${vmName ?? '(unnamed)'} of ${host.file} has ${count(vmVcpus.length, 'vCPU')} (${vmVcpus.join(', ')}): ` +
          'the guest trace does not look like this VM\'s — give the host and guest captured together',
      );
    if (!p)
      throw new UserError(
        `no TSC offset is known for vCPU ${v} of guest ${guest.file}: capture with \`kvmtrace capture host\` (debugfs snapshots), record kvm_write_tsc_offset on the host, or give --tsc-offset`,
      );
    vcpus.set(v, p);
    return p;
  };
  return { spec: guest, vm, cpuToVcpu, pairing, vcpu, vcpus, unmapped, notes, warnings };
}

/** The mappings the files offer for vCPU v, in order of trust: debugfs snapshots, kvm_write_tsc_offset events, TIME_SHIFT. */
function fileOffers(
  v: number,
  snaps: Parameters<typeof fromSnapshots>[1] | undefined,
  vWrites: Parameters<typeof fromWrites>[0],
  datGuest: TraceDatOptions | undefined,
  scaling: Scaling,
  notes: string[],
): Offer[] {
  const out: Offer[] = [];
  if (snaps && snaps.length > 0) out.push(fromSnapshots(v, snaps, vWrites, notes, scaling));
  if (vWrites.length > 0) out.push(fromWrites(vWrites, scaling));
  if (datGuest?.timeShift && datGuest.timeShift.cpus[v]?.length) out.push(fromTimeShift(datGuest.timeShift, v));
  return out;
}

const hex = (v: bigint): string => '0x' + v.toString(16).toUpperCase();

/** `1 vCPU`, `2 CPUs`. */
const count = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;

/**
 * A guest with more CPUs than its VM has vCPUs is not that VM's guest (an unrelated bundle given
 * by mistake): refused with what differs — the CPU counts, and the names when both are known. Names
 * alone may differ (a guest's hostname need not be QEMU's -name): a note.
 */
function checkGuestFitsVm(guest: SourceSpec, host: SourceSpec, vmName: string | undefined, vmVcpus: number[] | undefined, notes: string[]): void {
  const guestName = guest.meta?.guest?.vm ?? guest.meta?.name;
  const namesDiffer = guestName !== undefined && vmName !== undefined && guestName !== vmName;
  const names = namesDiffer ? `the names differ (the guest calls its VM "${guestName}", the host's VM is "${vmName}")` : '';
  const cpus = cpuCount(guest);
  if (vmVcpus?.length && cpus && cpus > vmVcpus.length)
    throw new UserError(
      `${guest.file} does not look like the guest of VM ${vmName ?? '(unnamed)'} in ${host.file}: ${names ? names + ', and ' : ''}` +
        `the guest has ${count(cpus, 'CPU')} where the VM has ${count(vmVcpus.length, 'vCPU')} — give the host and guest captured together`,
    );
  if (names) notes.push(`${names}; merging it as that VM's guest, which the validation below checks`);
}

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
