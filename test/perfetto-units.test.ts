/**
 * The pieces of the Perfetto output on their own: the protobuf writer against protobufjs's reader,
 * the ns clock against bigint arithmetic over the whole u64 TSC range, the body field scanner on
 * the print formats of real captures, and prev_state letters against Perfetto's bit layouts.
 */
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { NsClock } from '../src/export/perfetto/ns-clock.js';
import { ProtoBuf } from '../src/export/perfetto/proto-writer.js';
import { layoutFor, prevStateBits } from '../src/export/perfetto/task-state.js';
import { bodyFields, typedValue } from '../src/parsers/body-fields.js';
import { tempDir } from './helpers/tmp.js';

describe('ProtoBuf', () => {
  it('writes varints, negative int64s, fixed64s and strings that protobufjs reads back', () => {
    const uints = [0, 1, 127, 128, 2 ** 28, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 35 + 5, 2 ** 52 + 3, Number.MAX_SAFE_INTEGER];
    const ints = [-1, -2, -128, -(2 ** 31), -(2 ** 31) - 1, -(2 ** 40) - 7, -Number.MAX_SAFE_INTEGER];
    const pb = new ProtoBuf(4);
    for (const v of uints) pb.uint(1, v);
    for (const v of ints) pb.int(2, v);
    pb.big(3, (1n << 64n) - 1n);
    pb.fixed64(4, 2 ** 52 + 9);
    pb.fixed64Any(4, 0xffff9e84443294c0n);
    pb.fixed64Hex(4, Buffer.from('ffffffffa13f2e30'), 0, 16);
    pb.string(5, 'CPU 0/KVM');
    pb.string(5, 'naïve ✓');
    const r = protobuf.Reader.create(pb.bytes());
    const got: Record<number, string[]> = {};
    while (r.pos < r.len) {
      const t = r.uint32();
      const f = t >>> 3;
      const v = f === 1 || f === 3 ? r.uint64().toString() : f === 2 ? r.int64().toString() : f === 4 ? BigInt.asUintN(64, BigInt(r.fixed64().toString())).toString() : r.string();
      (got[f] ??= []).push(v);
    }
    expect(got[1]).toEqual(uints.map(String));
    expect(got[2]).toEqual(ints.map(String));
    expect(got[3]).toEqual(['18446744073709551615']);
    expect(got[4]).toEqual([String(2 ** 52 + 9), String(0xffff9e84443294c0n), String(0xffffffffa13f2e30n)]);
    expect(got[5]).toEqual(['CPU 0/KVM', 'naïve ✓']);
  });

  it('writes nested messages of any length (the length is moved in front when it takes more than a byte)', () => {
    const pb = new ProtoBuf(8);
    for (const n of [0, 1, 126, 127, 128, 300, 20000]) {
      const outer = pb.begin(1);
      const inner = pb.begin(2);
      pb.string(3, 'x'.repeat(n));
      pb.end(inner);
      pb.uint(4, n);
      pb.end(outer);
    }
    const r = protobuf.Reader.create(pb.bytes());
    const lens: number[] = [];
    while (r.pos < r.len) {
      r.uint32();
      const outer = protobuf.Reader.create(r.bytes());
      outer.uint32();
      const inner = protobuf.Reader.create(outer.bytes());
      inner.uint32();
      const s = inner.string();
      outer.uint32();
      expect(outer.uint32()).toBe(s.length);
      lens.push(s.length);
    }
    expect(lens).toEqual([0, 1, 126, 127, 128, 300, 20000]);
  });
});

describe('NsClock', () => {
  it('gives ⌊(base + t) × 10^6 / kHz⌋ exactly, for bases past 2^53 and deltas of either sign', () => {
    const cases: [bigint, number][] = [
      [64642412873143n, 2918400],
      [(1n << 53n) + 12345n, 2918400],
      [(1n << 64n) - 10n ** 12n, 2596136],
      [10n ** 9n, 1_000_000],
    ];
    for (const [base, khz] of cases) {
      const c = new NsClock(base, khz);
      for (const t of [0, 1, 2, 2917, 2918, 2919, 123456789, -1, -2918400, 2 ** 40 + 3, -(2 ** 33), Number.MAX_SAFE_INTEGER - 7]) {
        const want = ((base + BigInt(t)) * 1_000_000n) / BigInt(khz);
        expect(c.nsBig(t)).toBe(want);
        const n = c.ns(t);
        if (n !== undefined) expect(BigInt(n)).toBe(want);
      }
    }
  });
});

describe('bodyFields', () => {
  const f = (body: string): Record<string, unknown> => Object.fromEntries(bodyFields(body).map((x) => [x.name, typedValue(x.text).value]));

  it('reads key=value bodies, values with spaces up to the next key, [key=value] and [unit]', () => {
    expect(f('comm=trace-cmd pid=510 runtime=90989 [ns] vruntime=3914010803 [ns]')).toEqual({ comm: 'trace-cmd', pid: 510, runtime: 90989, vruntime: 3914010803 });
    expect(f('irq=524546 name=Out-of-band LAPIC timer interrupt')).toEqual({ irq: 524546, name: 'Out-of-band LAPIC timer interrupt' });
    expect(f('vec=9 [action=RCU]')).toEqual({ vec: 9, action: 'RCU' });
    expect(f('pid=421, prio=99')).toEqual({ pid: 421, prio: 99 });
    expect(f('prev_comm=CPU 0/KVM prev_pid=26619 prev_prio=120 prev_state=R ==> next_comm=node next_pid=32470 next_prio=120')).toEqual({
      prev_comm: 'CPU 0/KVM',
      prev_pid: 26619,
      prev_prio: 120,
      prev_state: 'R',
      next_comm: 'node',
      next_pid: 32470,
      next_prio: 120,
    });
    expect(f('(sock_alloc_inode+0x18) call_site=sock_alloc_inode+0x18 ptr=0xffff9e84444bea80')).toEqual({ text: '(sock_alloc_inode+0x18)', call_site: 'sock_alloc_inode+0x18', ptr: 0xffff9e84444bea80n });
  });

  it('reads `key: value` lists, `key value` pairs (kvm events) and free text', () => {
    expect(f('fd: 0x00000004, buf: 0x7ffe1aaae0e0, count: 0x0000000c')).toEqual({ fd: 4, buf: 0x7ffe1aaae0e0, count: 12 });
    expect(f('x86/fpu: 0xffff9e84443294c0 load: 0 xfeatures: 52d7c')).toEqual({ 'x86/fpu': 0xffff9e84443294c0n, load: 0, xfeatures: '52d7c' });
    expect(f('reason EPT_MISCONFIG rip 0xffffffffa0632f49 info 0 0')).toEqual({ reason: 'EPT_MISCONFIG', rip: 0xffffffffa0632f49n, info: '0 0' });
    expect(f('pio_write at 0xe9 size 1 count 1 val 0x0')).toEqual({ text: 'pio_write', at: 0xe9, size: 1, count: 1, val: 0 });
    expect(f('Start context switch')).toEqual({ text: 'Start context switch' });
    expect(f('load')).toEqual({ text: 'load' });
  });

  it('types decimals as signed (u64 beyond int64 as unsigned), 0x… as unsigned, the rest as text', () => {
    expect(typedValue('-1')).toEqual({ kind: 'int', value: -1 });
    expect(typedValue('9223372036854775807')).toEqual({ kind: 'int', value: 9223372036854775807n });
    expect(typedValue('18446737828217523960')).toEqual({ kind: 'uint', value: 18446737828217523960n });
    expect(typedValue('99999999999999999999999')).toEqual({ kind: 'str', value: '99999999999999999999999' });
    expect(typedValue('0x1f')).toEqual({ kind: 'uint', value: 31 });
    expect(typedValue('0x')).toEqual({ kind: 'str', value: '0x' });
    expect(typedValue('D|P|I')).toEqual({ kind: 'str', value: 'D|P|I' });
  });
});

describe('prev_state', () => {
  it('gives the bits of the layout Perfetto applies to the kernel the trace states', () => {
    expect(layoutFor('6.5.0-21-generic')).toBe('report');
    expect(layoutFor('4.9.1')).toBe('v48');
    expect(layoutFor(undefined)).toBe('v44');
    expect(['R', 'R+', 'S', 'D', 'I', 'P', 'Z', 'S|D'].map((s) => prevStateBits(s, 'report'))).toEqual([0, 0x100, 1, 2, 0x80, 0x40, 0x20, 3]);
    expect(['R+', 'I', 'P'].map((s) => prevStateBits(s, 'v44'))).toEqual([0x800, 0x402, 0x200]);
    expect(prevStateBits('R+', 'v48')).toBe(0x1000);
  });
});

describe('vCPU tracks from the KVM-run tracker\'s states', () => {
  it('draws crafted state changes as balanced slices on the vCPU thread, and a matched sync point as a flow', async () => {
    const { PerfettoExporter } = await import('../src/export/perfetto/exporter.js');
    const { EXIT, GUEST, UNKNOWN, USERSPACE } = await import('../src/kvm/states.js');
    const { AtomicWriter } = await import('../src/export/atomic-writer.js');
    const { readPftrace } = await import('./helpers/pftrace.js');
    const { join } = await import('node:path');
    const src = (role: 'host' | 'guest', machine: string) => ({ role, machine, open: { spec: { role, machine, file: `${machine}.txt` }, header: { cpus: 1 } } });
    const tl = { base: 1_000_000_000n, sources: [src('host', 'host'), src('guest', 'vm')], counts: [] } as never;
    const plan = { spec: { file: 'vm.txt' }, vm: { name: 'vm', qemuPid: 100, vcpus: [{ vcpu: 0, tid: 101, threadName: 'CPU 0/KVM' }] }, vcpus: new Map([[0, { vcpu: 0, tid: 101 }]]), vcpu: () => ({ tid: 101 }) };
    const path = join(tempDir('kvmtrace-pft-unit-'), 't.pftrace');
    const w = new AtomicWriter(path);
    await w.open();
    const x = new PerfettoExporter(w, 1_000_000, undefined);
    await x.begin(tl, [undefined, plan as never]);
    // 1 GHz "TSC": cycles are ns. unknown → guest → exit HLT → exit IO (a second exit, no entry) → guest → userspace.
    const steps: [number, number, string][] = [
      [0, UNKNOWN, ''],
      [10, GUEST, ''],
      [20, EXIT, 'HLT'],
      [25, EXIT, 'IO_INSTRUCTION'],
      [30, GUEST, ''],
      [40, USERSPACE, ''],
    ];
    for (const [t, st, reason] of steps) x.transition(t, 101, st, reason);
    x.syncPoint({ hostT: 26, guestT: 28, src: 1, vcpu: 0, tid: 101, kind: 'pio', seq: 7 });
    await x.end({ result: { guests: [], ok: true, failures: [] }, timeline: tl, events: 0 });
    await w.finish();
    await w.commit();
    const pf = readPftrace(path);
    expect(pf.problems).toEqual([]);
    const vcpu = [...pf.tracks].find(([, t]) => t.tid === 101)!;
    expect(vcpu[1]).toMatchObject({ pid: 100, threadName: 'CPU 0/KVM' });
    const onVcpu = pf.trackEvents.filter((e) => e.uuid === vcpu[0] && e.type !== 3);
    expect(onVcpu.map((e) => [Number(e.ts - 1_000_000_000n), e.type, e.name ?? ''])).toEqual([
      [0, 1, 'not checkable'],
      [10, 2, ''],
      [10, 1, 'guest'],
      [20, 2, ''],
      [20, 1, 'exit: HLT'],
      [25, 2, ''],
      [25, 1, 'exit: IO_INSTRUCTION'],
      [30, 2, ''],
      [30, 1, 'guest'],
      [40, 2, ''],
      [40, 1, 'userspace'],
      // The last slice ends at the latest time written.
      [40, 2, ''],
    ]);
    const flowStart = pf.trackEvents.find((e) => e.flowIds.length)!;
    const flowEnd = pf.trackEvents.find((e) => e.terminating.length)!;
    expect(flowStart).toMatchObject({ uuid: vcpu[0], name: 'sync exit (kvm_pio)', args: { seq: 7 } });
    expect(flowEnd).toMatchObject({ name: 'kvmsync seq=7', terminating: flowStart.flowIds });
    expect(pf.tracks.get(flowEnd.uuid)).toMatchObject({ name: 'vm vCPU 0 (guest events)', parent: vcpu[0] });
  });
});
