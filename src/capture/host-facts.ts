/**
 * Facts about the capturing machine for meta.json: kernel, CPU vendor and flags, CPU count and
 * the TSC frequency in kHz (from the kernel log, or measured against CLOCK_MONOTONIC).
 */
import { readFile } from 'node:fs/promises';
import { release } from 'node:os';
import { run } from './process.js';

/** Machine facts a bundle records. */
export interface MachineFacts {
  kernel: string;
  cpuVendor?: string;
  cpus: number;
  /** Flags of the first CPU in /proc/cpuinfo. */
  cpuFlags: string[];
  tscKhz?: number;
  tscKhzFrom?: string;
}

/** Parses the TSC frequency (kHz) out of kernel log text: the refined calibration wins. */
export function tscKhzFromLog(log: string): { khz: number; line: string } | undefined {
  const lines = log.split('\n');
  const pick = (re: RegExp): { khz: number; line: string } | undefined => {
    for (const l of lines) {
      const m = re.exec(l);
      if (m) return { khz: Number(m[1] + m[2]), line: l.replace(/^\[[^\]]*\]\s*/, '').replace(/^<\d+>/, '').trim() };
    }
    return undefined;
  };
  return pick(/tsc: Refined TSC clocksource calibration: (\d+)\.(\d{3}) MHz/) ?? pick(/tsc: Detected (\d+)\.(\d{3}) MHz/);
}

/** Parses /proc/cpuinfo text: vendor, flags of CPU 0, number of processors. */
export function parseCpuinfo(text: string): { vendor?: string; flags: string[]; cpus: number } {
  const vendor = /^vendor_id\s*:\s*(.+)$/m.exec(text)?.[1]?.trim();
  const flags = /^flags\s*:\s*(.*)$/m.exec(text)?.[1]?.trim().split(/\s+/) ?? [];
  const cpus = (text.match(/^processor\s*:/gm) ?? []).length;
  return { vendor, flags, cpus };
}

/** Measures the TSC frequency with the rdtsc helper over about `ms` milliseconds. */
export async function measureTscKhz(rdtsc: string, ms = 200): Promise<number> {
  const t0 = process.hrtime.bigint();
  const c0 = BigInt((await run(rdtsc, [])).stdout.trim());
  await new Promise((r) => setTimeout(r, ms));
  const c1 = BigInt((await run(rdtsc, [])).stdout.trim());
  const t1 = process.hrtime.bigint();
  return Number(((c1 - c0) * 1_000_000n) / (t1 - t0));
}

/** Gathers the facts; the TSC kHz from the kernel log, else measured (said in tscKhzFrom). */
export async function machineFacts(rdtsc: string): Promise<MachineFacts> {
  const info = parseCpuinfo(await readFile('/proc/cpuinfo', 'utf8'));
  const facts: MachineFacts = { kernel: release(), cpuVendor: info.vendor, cpus: info.cpus, cpuFlags: info.flags };
  const log = await run('dmesg', []).then(
    (r) => r.stdout,
    () => '',
  );
  const fromLog = tscKhzFromLog(log);
  if (fromLog) {
    facts.tscKhz = fromLog.khz;
    facts.tscKhzFrom = `kernel log: ${fromLog.line}`;
  } else {
    facts.tscKhz = await measureTscKhz(rdtsc);
    facts.tscKhzFrom = 'measured against CLOCK_MONOTONIC over 200 ms';
  }
  return facts;
}

/** True when the CPU offers hardware virtualisation (VMX/SVM), so KVM runs guests natively. */
export function hasHardwareVirt(flags: string[]): boolean {
  return flags.includes('vmx') || flags.includes('svm');
}
