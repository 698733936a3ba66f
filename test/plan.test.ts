/**
 * The clock plan: which evidence wins, how offset changes are placed in time, and that
 * disagreements are reported rather than silently resolved.
 */
import { guestTsc, hostTsc, type HostTsc } from '../src/model/units.js';
import { describe, expect, it } from 'vitest';
import type { BundleMeta } from '../src/model/bundle.js';
import type { HostIndex } from '../src/host/index.js';

/** The facts of the host index a plan reads. */
type HostScan = Pick<HostIndex, 'tscWrites' | 'vcpuThreadsSeen'>;
import { planGuest } from '../src/merge/plan.js';
import type { SourceSpec } from '../src/merge/source.js';
import { kvmWriteTscOffset } from '../src/parsers/event-fields.js';

const scan = (writes: { vcpu: number; prev: bigint; next: bigint; hostTsc: HostTsc }[], seen: [number, number][] = []): HostScan => ({
  tscWrites: writes.map((w, i) => ({ ...w, pid: 42, line: i + 1 })),
  vcpuThreadsSeen: new Map(seen),
});
const hostSpec = (meta?: Partial<BundleMeta>): SourceSpec => ({ role: 'host', machine: 'host', file: 'h', meta: meta as BundleMeta });
const guestSpec: SourceSpec = { role: 'guest', machine: 'g', file: 'g' };

describe('kvm_write_tsc_offset decoding', () => {
  it('reads the u64 the kernel prints as the signed offset it encodes', () => {
    // 2^64 − 63430235715905: the two's complement of the docA offset, as %llu prints it.
    const w = kvmWriteTscOffset('vcpu=1 prev=0 next=18446680643473835711');
    expect(w).toEqual({ vcpu: 1, prev: 0n, next: -63430235715905n });
  });
});

describe('planning a guest', () => {
  it('follows offset writes piece by piece in host time', () => {
    const p = planGuest(hostSpec(), scan([
      { vcpu: 0, prev: 0n, next: -1000n, hostTsc: hostTsc(100n) },
      { vcpu: 0, prev: -1000n, next: -5000n, hostTsc: hostTsc(1_000_000n) },
    ]), guestSpec, {});
    const m = p.vcpu(0).mapping;
    expect(p.vcpu(0).mappingFrom).toMatch(/kvm_write_tsc_offset events \(2\)/);
    expect(m.toHost(guestTsc(500_000n - 1000n))).toBe(500_000n); // before the second write: offset −1000
    expect(m.toHost(guestTsc(2_000_000n - 5000n))).toBe(2_000_000n); // after it: offset −5000
  });

  it('trusts debugfs over writes that contradict it, and says so', () => {
    const meta = {
      vms: [{ name: 'vm', vcpus: [{ vcpu: 0, tid: 7, snapshots: [
        { when: 'start', hostTsc: hostTsc(200n), tscOffset: 0n },
        { when: 'end', hostTsc: hostTsc(9_000_000n), tscOffset: 0n },
      ] }] }],
    };
    const p = planGuest(hostSpec(meta), scan([{ vcpu: 0, prev: 0n, next: -14_000_000_000_000n, hostTsc: hostTsc(5_000n) }]), guestSpec, {});
    expect(p.vcpu(0).mappingFrom).toBe('debugfs snapshots');
    expect(p.vcpu(0).mapping.toHost(guestTsc(123_456n))).toBe(123_456n);
    expect(p.vcpu(0).tid).toBe(7);
    expect(p.notes.join('\n')).toMatch(/vCPU 0: 1 kvm_write_tsc_offset event\(s\) disagree with debugfs .* claims offset -14000000000000, debugfs read 0/);
  });

  it('places an offset change between two readings at the write that explains it', () => {
    const meta = {
      vms: [{ name: 'vm', vcpus: [{ vcpu: 0, tid: 7, snapshots: [
        { when: 'start', hostTsc: hostTsc(100n), tscOffset: -10n },
        { when: 'end', hostTsc: hostTsc(10_000n), tscOffset: -20n },
      ] }] }],
    };
    const p = planGuest(hostSpec(meta), scan([{ vcpu: 0, prev: -10n, next: -20n, hostTsc: hostTsc(4_000n) }]), guestSpec, {});
    const m = p.vcpu(0).mapping;
    expect(m.pieces.map((x) => [x.fromHostTsc, x.offset])).toEqual([[-1n, -10n], [4_000n, -20n]]);
    expect(p.notes).toEqual([]);
  });

  it('follows a stated offset over the files and warns that they differ; reports a thread map that disagrees with kvm_entry', () => {
    const p = planGuest(hostSpec(), scan([{ vcpu: 0, prev: 0n, next: -50n, hostTsc: hostTsc(1n) }], [[0, 99]]), guestSpec, {
      tscOffset: -49n,
      vcpuThreads: new Map([[0, 98]]),
    });
    expect(p.vcpu(0).tid).toBe(98);
    expect(p.vcpu(0).mappingFrom).toBe('--tsc-offset');
    expect(p.vcpu(0).mapping.toHost(guestTsc(1_000n))).toBe(1_049n);
    // Both mappings stay side by side for the evidence to weigh (estimate/evidence.ts).
    expect(p.vcpu(0).offers.map((o) => o.kind)).toEqual(['flag', 'writes']);
    expect(p.warnings.join('\n')).toMatch(/vCPU 0: --tsc-offset -49 differs from kvm_write_tsc_offset events \(1\) \(0 → -50 from host TSC 1\); following --tsc-offset as stated/);
    expect(p.notes.join('\n')).toMatch(/kvm_entry events show vCPU 0 on thread 99, but --vcpu-thread says 98/);
  });

  it('sets no offers side by side when the sources agree', () => {
    const meta = { vms: [{ name: 'vm', vcpus: [{ vcpu: 0, tid: 7, snapshots: [{ when: 'start', hostTsc: hostTsc(200n), tscOffset: -50n }] }] }] };
    const p = planGuest(hostSpec(meta), scan([{ vcpu: 0, prev: -50n, next: -50n, hostTsc: hostTsc(5_000n) }]), guestSpec, { tscOffset: -50n });
    expect(p.vcpu(0).offers).toEqual([]);
    expect(p.warnings).toEqual([]);
  });

  it('refuses a vCPU nothing tells the offset of, saying what to record', () => {
    const p = planGuest(hostSpec(), scan([{ vcpu: 0, prev: 0n, next: -50n, hostTsc: hostTsc(1n) }]), guestSpec, {});
    expect(() => p.vcpu(3)).toThrow(/no TSC offset is known for vCPU 3 .*kvmtrace capture host.*--tsc-offset/);
  });

  it('uses each vCPU scaling from debugfs (ratio and fraction bits)', () => {
    const ratio = 3n << 47n; // 1.5 with 48 fraction bits
    const meta = { vms: [{ name: 'vm', vcpus: [{ vcpu: 0, tid: 7, snapshots: [{ when: 'start', hostTsc: hostTsc(1n), tscOffset: 5n, tscScalingRatio: ratio, tscScalingFracBits: 48 }] }] }] };
    const p = planGuest(hostSpec(meta), scan([]), guestSpec, {});
    const host = 1_000_000_007n;
    const guest = ((host * ratio) >> 48n) + 5n;
    expect(p.vcpu(0).mapping.toHost(guestTsc(guest))).toBe(host);
  });
});
