/**
 * The clock plan of a merge: for each guest and vCPU, the mapping guest TSC → host TSC and the
 * host thread that runs it, built from the evidence the inputs carry, in this order of trust:
 * debugfs snapshots (bundle metadata) and kvm_write_tsc_offset events (exact), then the user's
 * `--tsc-offset`. Where sources disagree, the plan says so in `notes` — it never silently picks.
 */
import type { VmMeta } from '../model/bundle.js';
import { UserError } from '../model/errors.js';
import type { HostScan, HostTscWrite } from './host-scan.js';
import type { SourceSpec } from './source.js';
import { VcpuMapping, type TscPiece } from './tsc-mapping.js';

/** What the user said on the command line about a guest (bare files, or overrides). */
export interface GuestOverrides {
  /** Offset for every vCPU (`--tsc-offset N`) or per vCPU. */
  tscOffset?: bigint;
  tscOffsetByVcpu?: Map<number, bigint>;
  tscScalingRatio?: bigint;
  tscScalingFracBits?: number;
  /** vCPU → host thread (`--vcpu-thread 0=483882`). */
  vcpuThreads?: Map<number, number>;
}

/** The plan for one vCPU. */
export interface VcpuPlan {
  vcpu: number;
  tid: number | undefined;
  tidFrom: string;
  mapping: VcpuMapping;
  mappingFrom: string;
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
  notes: string[];
}

const cmp = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);

/** Builds the plan for one guest. */
export function planGuest(host: SourceSpec, scan: HostScan, guest: SourceSpec, over: GuestOverrides): GuestPlan {
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
  const build = (v: number): VcpuPlan | undefined => {
    const meta = vm?.vcpus.find((c) => c.vcpu === v);
    // Host thread.
    let tid: number | undefined;
    let tidFrom = 'unknown';
    const flagTid = over.vcpuThreads?.get(v);
    const seenTid = scan.vcpuThreadsSeen.get(v);
    if (meta) [tid, tidFrom] = [meta.tid, 'debugfs (bundle)'];
    else if (flagTid !== undefined) [tid, tidFrom] = [flagTid, '--vcpu-thread'];
    else if (seenTid !== undefined) [tid, tidFrom] = [seenTid, 'kvm_entry events'];
    if (tid !== undefined && flagTid !== undefined && flagTid !== tid)
      notes.push(`vCPU ${v}: --vcpu-thread says thread ${flagTid}, ${tidFrom} says ${tid}; using ${tid}`);
    if (tid !== undefined && seenTid !== undefined && seenTid !== tid)
      notes.push(`vCPU ${v}: kvm_entry events show vCPU ${v} on thread ${seenTid}, but ${tidFrom} says ${tid}`);

    // Mapping.
    const vWrites = writes.filter((w) => w.vcpu === v);
    const flagOffset = over.tscOffsetByVcpu?.get(v) ?? over.tscOffset;
    const scaling =
      over.tscScalingRatio !== undefined ? { ratio: over.tscScalingRatio, fracBits: over.tscScalingFracBits ?? 48 } : {};
    let pieces: TscPiece[] | undefined;
    let from = '';
    if (meta && meta.snapshots.length > 0) {
      pieces = fromSnapshots(v, meta.snapshots, vWrites, notes);
      from = 'debugfs snapshots';
    } else if (vWrites.length > 0) {
      pieces = fromWrites(vWrites, scaling);
      from = `kvm_write_tsc_offset events (${vWrites.length})`;
    } else if (flagOffset !== undefined) {
      pieces = [{ fromHostTsc: -1n, offset: flagOffset, ...scaling, source: '--tsc-offset' }];
      from = '--tsc-offset';
    }
    if (!pieces) return undefined;
    if (flagOffset !== undefined && from !== '--tsc-offset') {
      const differ = pieces.filter((p) => p.offset !== flagOffset);
      if (differ.length)
        notes.push(
          `vCPU ${v}: --tsc-offset ${flagOffset} differs from ${from} (${differ.map((p) => p.offset).join(', ')}); following ${from}`,
        );
    }
    return { vcpu: v, tid, tidFrom, mapping: new VcpuMapping(pieces), mappingFrom: from };
  };

  const candidates = new Set<number>([
    ...(vm?.vcpus.map((c) => c.vcpu) ?? []),
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
  return { spec: guest, vm, cpuToVcpu, vcpu, vcpus, notes };
}

/** Pieces from kvm_write_tsc_offset events alone: the `prev` offset before the first write, then each `next`. */
function fromWrites(ws: HostTscWrite[], scaling: { ratio?: bigint; fracBits?: number }): TscPiece[] {
  const pieces: TscPiece[] = [{ fromHostTsc: -1n, offset: ws[0].prev, ...scaling, source: 'kvm_write_tsc_offset prev' }];
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
  snaps: { when: string; hostTsc: bigint; tscOffset: bigint; tscScalingRatio?: bigint; tscScalingFracBits?: number }[],
  ws: HostTscWrite[],
  notes: string[],
): TscPiece[] {
  const s = [...snaps].sort((a, b) => cmp(a.hostTsc, b.hostTsc));
  const scal = (x: (typeof s)[number]) =>
    x.tscScalingRatio !== undefined && x.tscScalingRatio !== 1n << BigInt(x.tscScalingFracBits ?? 48)
      ? { ratio: x.tscScalingRatio, fracBits: x.tscScalingFracBits }
      : {};
  const pieces: TscPiece[] = [{ fromHostTsc: -1n, offset: s[0].tscOffset, ...scal(s[0]), source: `debugfs (${s[0].when})` }];
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
