import { UserError } from './errors.js';
import { hostTsc, type HostTsc } from './units.js';
import { parseClock, type TraceClock } from './clock.js';
import { checkCount, checkTid, checkTscKhz, checkTscOffset, checkTscScaling, checkVcpu, type ValueCheck } from './mapping-values.js';

/** Trace file formats a bundle may hold. */
export type TraceFormat = 'ftrace-text' | 'trace-dat' | 'stap';

/** One debugfs reading of a vCPU's TSC offset and scaling (docs/bundle.md). */
export interface TscSnapshot {
  when: string;
  /** Host TSC right after the reading. */
  hostTsc: HostTsc;
  /** Signed TSC offset. */
  tscOffset: bigint;
  tscScalingRatio?: bigint;
  tscScalingFracBits?: number;
}

/** A vCPU of a VM on the host. */
export interface VcpuMeta {
  vcpu: number;
  tid: number;
  threadName?: string;
  snapshots: TscSnapshot[];
}

/** A VM traced on the host. */
export interface VmMeta {
  name: string;
  qemuPid?: number;
  debugfsDir?: string;
  vcpus: VcpuMeta[];
}

/** Guest-side facts. */
export interface GuestMeta {
  vm?: string;
  cpuToVcpu?: Map<number, number>;
  clocksource?: string;
  tscFlags?: string[];
  syncKind?: 'cpuid' | 'pio';
  /** What `kvmtrace inspect` found in the guest (clocksource, TSC flags, virtio devices), as it wrote it. */
  inspect?: Record<string, unknown>;
}

/** A parsed, validated `meta.json` (docs/bundle.md, version 1). */
export interface BundleMeta {
  version: 1;
  role: 'host' | 'guest';
  name: string;
  traces: { file: string; format: TraceFormat }[];
  traceClock: TraceClock;
  tscKhz?: number;
  tscKhzFrom?: string;
  kernel?: string;
  cpuVendor?: string;
  cpus?: number;
  availableClocks?: string[];
  capturedAt?: { start?: string; end?: string };
  tool?: string;
  lostEvents?: number;
  vms?: VmMeta[];
  guest?: GuestMeta;
}

/** The current bundle format version. */
export const BUNDLE_VERSION = 1;

type Json = Record<string, unknown>;

/**
 * Validates parsed JSON as a bundle's meta.json; every bad field is a UserError naming it. Values
 * that a flag can also give (tscKhz, offsets, scaling, vCPUs, threads) meet the flag's rules
 * (mapping-values.ts).
 */
export function validateMeta(raw: unknown, file: string): BundleMeta {
  const bad = (path: string, expected: string): never => {
    throw new UserError(`${file}: field "${path}" ${expected}`);
  };
  const obj = (v: unknown, path: string): Json =>
    typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : bad(path, 'must be an object');
  const str = (v: unknown, path: string): string => (typeof v === 'string' ? v : bad(path, 'must be a string'));
  const int = (v: unknown, path: string): number =>
    typeof v === 'number' && Number.isSafeInteger(v) ? v : bad(path, 'must be an integer');
  const dec = (v: unknown, path: string, signed: boolean): bigint => {
    const re = signed ? /^-?\d+$/ : /^\d+$/;
    return typeof v === 'string' && re.test(v)
      ? BigInt(v)
      : bad(path, `must be a ${signed ? 'signed ' : ''}decimal string (64-bit values are strings in JSON)`);
  };
  /** `v` when `check` passes, else a UserError naming the field, its value and what was expected. */
  const ruled = <T extends number | bigint>(v: T, path: string, check: ValueCheck<T>): T => {
    const problem = check(v);
    return problem === undefined ? v : bad(path, `is ${String(v)}: ${problem}`);
  };
  const opt = <T>(v: unknown, f: (v: unknown) => T): T | undefined => (v === undefined ? undefined : f(v));
  const arr = (v: unknown, path: string): unknown[] => (Array.isArray(v) ? v : bad(path, 'must be an array'));

  const m = obj(raw, '(top level)');
  if (m.format !== 'kvmtrace-bundle') bad('format', 'must be "kvmtrace-bundle"');
  if (m.version !== BUNDLE_VERSION)
    bad('version', `is ${JSON.stringify(m.version)}; this kvmtrace reads version ${BUNDLE_VERSION}`);
  const role = m.role === 'host' || m.role === 'guest' ? m.role : bad('role', 'must be "host" or "guest"');
  const clockName = str(m.traceClock, 'traceClock');
  const traceClock = parseClock(clockName) ?? bad('traceClock', `"${clockName}" is not a trace clock kvmtrace knows`);
  const traces = arr(m.traces, 'traces').map((t, i) => {
    const o = obj(t, `traces[${i}]`);
    const format = str(o.format, `traces[${i}].format`);
    if (format !== 'ftrace-text' && format !== 'trace-dat' && format !== 'stap')
      bad(`traces[${i}].format`, 'must be "ftrace-text", "trace-dat" or "stap"');
    const f = str(o.file, `traces[${i}].file`);
    if (f.startsWith('/') || f.split('/').includes('..')) bad(`traces[${i}].file`, 'must be a path inside the bundle');
    return { file: f, format: format as TraceFormat };
  });
  if (traces.length === 0) bad('traces', 'must name at least one trace file');

  const snapshot = (s: unknown, p: string): TscSnapshot => {
    const o = obj(s, p);
    const snap: TscSnapshot = {
      when: str(o.when, `${p}.when`),
      hostTsc: hostTsc(dec(o.hostTsc, `${p}.hostTsc`, false)),
      tscOffset: ruled(dec(o.tscOffset, `${p}.tscOffset`, true), `${p}.tscOffset`, checkTscOffset),
    };
    if (o.tscScalingRatio !== undefined) {
      const ratio = dec(o.tscScalingRatio, `${p}.tscScalingRatio`, false);
      const fracBits = int(o.tscScalingFracBits, `${p}.tscScalingFracBits`);
      const problem = checkTscScaling({ ratio, fracBits });
      if (problem) bad(`${p}.tscScalingRatio`, `is ${ratio} with ${fracBits} fraction bits: ${problem}`);
      snap.tscScalingRatio = ratio;
      snap.tscScalingFracBits = fracBits;
    }
    return snap;
  };
  const vms = opt(m.vms, (v) =>
    arr(v, 'vms').map((vm, i) => {
      const o = obj(vm, `vms[${i}]`);
      return {
        name: str(o.name, `vms[${i}].name`),
        qemuPid: opt(o.qemuPid, (x) => ruled(int(x, `vms[${i}].qemuPid`), `vms[${i}].qemuPid`, checkTid)),
        debugfsDir: opt(o.debugfsDir, (x) => str(x, `vms[${i}].debugfsDir`)),
        vcpus: arr(o.vcpus, `vms[${i}].vcpus`).map((c, j) => {
          const p = `vms[${i}].vcpus[${j}]`;
          const co = obj(c, p);
          return {
            vcpu: ruled(int(co.vcpu, `${p}.vcpu`), `${p}.vcpu`, checkVcpu),
            tid: ruled(int(co.tid, `${p}.tid`), `${p}.tid`, checkTid),
            threadName: opt(co.threadName, (x) => str(x, `${p}.threadName`)),
            snapshots: arr(co.snapshots ?? [], `${p}.snapshots`).map((s, k) => snapshot(s, `${p}.snapshots[${k}]`)),
          };
        }),
      };
    }),
  );
  const guest = opt(m.guest, (g) => {
    const o = obj(g, 'guest');
    const map = opt(o.cpuToVcpu, (x) => {
      const mo = obj(x, 'guest.cpuToVcpu');
      const out = new Map<number, number>();
      for (const [k, v] of Object.entries(mo)) {
        if (!/^\d+$/.test(k)) bad(`guest.cpuToVcpu.${k}`, 'keys must be CPU numbers');
        out.set(Number(k), ruled(int(v, `guest.cpuToVcpu.${k}`), `guest.cpuToVcpu.${k}`, checkVcpu));
      }
      return out;
    });
    const sk = o.syncKind;
    if (sk !== undefined && sk !== 'cpuid' && sk !== 'pio') bad('guest.syncKind', 'must be "cpuid" or "pio"');
    return {
      vm: opt(o.vm, (x) => str(x, 'guest.vm')),
      cpuToVcpu: map,
      clocksource: opt(o.clocksource, (x) => str(x, 'guest.clocksource')),
      tscFlags: opt(o.tscFlags, (x) => arr(x, 'guest.tscFlags').map((f, i) => str(f, `guest.tscFlags[${i}]`))),
      syncKind: sk as 'cpuid' | 'pio' | undefined,
      inspect: opt(o.inspect, (x) => obj(x, 'guest.inspect')),
    };
  });
  if (role === 'host' && guest) bad('guest', 'belongs in guest bundles only');
  if (role === 'guest' && vms) bad('vms', 'belongs in host bundles only');
  const capturedAt = opt(m.capturedAt, (x) => {
    const o = obj(x, 'capturedAt');
    return { start: opt(o.start, (v) => str(v, 'capturedAt.start')), end: opt(o.end, (v) => str(v, 'capturedAt.end')) };
  });
  return {
    version: 1,
    role,
    name: str(m.name, 'name'),
    traces,
    traceClock,
    tscKhz: opt(m.tscKhz, (x) => ruled(int(x, 'tscKhz'), 'tscKhz', checkTscKhz)),
    tscKhzFrom: opt(m.tscKhzFrom, (x) => str(x, 'tscKhzFrom')),
    kernel: opt(m.kernel, (x) => str(x, 'kernel')),
    cpuVendor: opt(m.cpuVendor, (x) => str(x, 'cpuVendor')),
    cpus: opt(m.cpus, (x) => ruled(int(x, 'cpus'), 'cpus', checkCount)),
    availableClocks: opt(m.availableClocks, (x) => arr(x, 'availableClocks').map((c, i) => str(c, `availableClocks[${i}]`))),
    capturedAt,
    tool: opt(m.tool, (x) => str(x, 'tool')),
    lostEvents: opt(m.lostEvents, (x) => ruled(int(x, 'lostEvents'), 'lostEvents', checkCount)),
    vms,
    guest,
  };
}

/** Serialises bundle metadata to the JSON text of meta.json (bigints as decimal strings). */
export function metaToJson(meta: BundleMeta): string {
  const plain = JSON.parse(
    JSON.stringify(meta, (_k, v: unknown) =>
      typeof v === 'bigint' ? v.toString() : v instanceof Map ? Object.fromEntries(v) : v,
    ),
  ) as Json;
  return JSON.stringify({ format: 'kvmtrace-bundle', ...plain }, null, 2) + '\n';
}
