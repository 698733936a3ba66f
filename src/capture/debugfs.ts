/**
 * KVM's debugfs view of a VM: `kvm/<qemu pid>-<vm fd>/vcpuN/{pid, tsc-offset, tsc-scaling-ratio,
 * tsc-scaling-ratio-frac-bits}`. Readings are stamped with the host TSC by the static
 * `native/build/rdtsc` helper right after each file is read (docs/bundle.md, Snapshot).
 */
import { hostTsc } from '../model/units.js';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { TscSnapshot } from '../model/bundle.js';
import { UserError } from '../model/errors.js';
import { run } from './process.js';
import { findMount } from './tracefs.js';

/** Where debugfs is mounted (undefined when it is not). */
export function findDebugfs(mountsFile?: string): Promise<string | undefined> {
  return findMount('debugfs', '/sys/kernel/debug', mountsFile);
}

/** The VM folders (`<pid>-<fd>`) of a QEMU process under debugfs `kvm/`. */
export async function findVmDirs(debugfs: string, qemuPid: number): Promise<string[]> {
  const names = await readdir(join(debugfs, 'kvm')).catch(() => [] as string[]);
  return names.filter((n) => n.startsWith(`${qemuPid}-`) && /^\d+-\d+$/.test(n)).map((n) => join(debugfs, 'kvm', n));
}

/** Every QEMU pid that has a VM in debugfs `kvm/`. */
export async function vmPids(debugfs: string): Promise<number[]> {
  const names = await readdir(join(debugfs, 'kvm')).catch(() => [] as string[]);
  return [...new Set(names.filter((n) => /^\d+-\d+$/.test(n)).map((n) => Number(n.split('-')[0])))];
}

/** The vCPU indexes present in a VM folder, ascending. */
export async function listVcpus(vmDir: string): Promise<number[]> {
  const names = await readdir(vmDir);
  return names
    .map((n) => /^vcpu(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/** Converts the kernel's u64 print of a signed offset (two's complement) to its signed value. */
export function signedU64(text: string): bigint {
  const v = BigInt(text.trim());
  return v >= 1n << 63n ? v - (1n << 64n) : v;
}

/** One vCPU's debugfs reading. */
export interface VcpuReading {
  vcpu: number;
  tid: number;
  snapshot: TscSnapshot;
}

/** A line of `rdtsc FILE...` output: file, value (or `!error`), host TSC. */
interface HelperLine {
  file: string;
  value: string;
  tsc: bigint;
}

function parseHelper(out: string): Map<string, HelperLine> {
  const m = new Map<string, HelperLine>();
  for (const line of out.split('\n')) {
    const f = line.split('\t');
    if (f.length !== 3) continue;
    m.set(f[0], { file: f[0], value: f[1], tsc: BigInt(f[2]) });
  }
  return m;
}

/**
 * Reads every vCPU's pid, tsc-offset and scaling files with the rdtsc helper. `hostTsc` is the
 * TSC right after the tsc-offset read. Scaling files are optional (absent on hosts without TSC
 * scaling); pid and tsc-offset are required.
 */
export async function readVcpus(rdtsc: string, vmDir: string, when: string): Promise<VcpuReading[]> {
  const vcpus = await listVcpus(vmDir);
  if (vcpus.length === 0) throw new UserError(`${vmDir} has no vcpuN folders yet (is the VM still starting?)`);
  const files: string[] = [];
  for (const v of vcpus) {
    const d = join(vmDir, `vcpu${v}`);
    files.push(join(d, 'pid'), join(d, 'tsc-offset'), join(d, 'tsc-scaling-ratio'), join(d, 'tsc-scaling-ratio-frac-bits'));
  }
  // Exit status 2 only says an optional file was missing; each line says which.
  const res = await run(rdtsc, files, { okCodes: [0, 2] });
  const lines = parseHelper(res.stdout);
  return vcpus.map((v) => {
    const d = join(vmDir, `vcpu${v}`);
    const get = (name: string): HelperLine | undefined => {
      const l = lines.get(join(d, name));
      return l && !l.value.startsWith('!') ? l : undefined;
    };
    const pid = get('pid');
    const off = get('tsc-offset');
    if (!pid || !off) throw new UserError(`cannot read ${d}/pid and tsc-offset (${lines.get(join(d, 'tsc-offset'))?.value ?? 'no output'})`);
    const snapshot: TscSnapshot = { when, hostTsc: hostTsc(off.tsc), tscOffset: signedU64(off.value) };
    const ratio = get('tsc-scaling-ratio');
    const bits = get('tsc-scaling-ratio-frac-bits');
    if (ratio && bits && /^\d+$/.test(ratio.value) && /^\d+$/.test(bits.value)) {
      snapshot.tscScalingRatio = BigInt(ratio.value);
      snapshot.tscScalingFracBits = Number(bits.value);
    }
    return { vcpu: v, tid: Number(pid.value), snapshot };
  });
}
