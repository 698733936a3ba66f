/**
 * Finding a VM on the host: a QEMU pid or a VM name (QEMU's `-name`), checked against debugfs
 * `kvm/<pid>-<fd>/` (the kernel's list of VMs, which names cannot fool).
 */
import { readFile, readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { UserError } from '../model/errors.js';
import { findVmDirs, vmPids } from './debugfs.js';

/** A VM found on the host. */
export interface FoundVm {
  qemuPid: number;
  /** QEMU's `-name` (first part), or `vm<pid>` when it has none. */
  name: string;
  /** debugfs `kvm/<pid>-<fd>`. */
  debugfsDir: string;
}

/** The VM name in a QEMU command line (`-name NAME[,debug-threads=on]` or `-name guest=NAME,…`). */
export function qemuName(argv: string[]): string | undefined {
  const i = argv.findIndex((a) => a === '-name' || a === '--name');
  let v: string | undefined = i >= 0 ? argv[i + 1] : undefined;
  if (v === undefined) {
    const eq = argv.find((a) => a.startsWith('-name=') || a.startsWith('--name='));
    v = eq?.slice(eq.indexOf('=') + 1);
  }
  if (v === undefined) return undefined;
  // QEMU option syntax: commas separate key=value pairs, ",," is a literal comma.
  const parts = v.replace(/,,/g, '\0').split(',').map((p) => p.replace(/\0/g, ','));
  const guest = parts.find((p) => p.startsWith('guest='));
  if (guest) return guest.slice('guest='.length);
  return parts[0].includes('=') ? undefined : parts[0];
}

async function cmdline(pid: number): Promise<string[]> {
  const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return raw.split('\0').filter((s, i, a) => s !== '' || i < a.length - 1);
}

/** Resolves `--vm` (a pid or a name) to a VM that debugfs knows. */
export async function findVm(debugfs: string, spec: string): Promise<FoundVm> {
  const pids = await vmPids(debugfs);
  let pid: number | undefined;
  if (/^\d+$/.test(spec)) {
    pid = Number(spec);
    if (!pids.includes(pid)) {
      const alive = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => undefined);
      throw new UserError(
        alive === undefined
          ? `no process ${pid}: give the pid of a running QEMU, or its -name`
          : `process ${pid} (${alive.trim()}) has no VM in ${join(debugfs, 'kvm')} (is it a KVM-accelerated QEMU?)`,
      );
    }
  } else {
    const named: number[] = [];
    for (const p of pids) if (qemuName(await cmdline(p)) === spec) named.push(p);
    if (named.length === 0) {
      const known = await Promise.all(pids.map(async (p) => `${p} (${qemuName(await cmdline(p)) ?? 'no -name'})`));
      throw new UserError(`no VM named "${spec}" on this host${known.length ? `; VMs: ${known.join(', ')}` : ' (no VMs are running)'}`);
    }
    if (named.length > 1) throw new UserError(`several VMs are named "${spec}" (pids ${named.join(', ')}): give --vm PID`);
    pid = named[0];
  }
  const dirs = await findVmDirs(debugfs, pid);
  if (dirs.length === 0) throw new UserError(`process ${pid} has no VM in ${join(debugfs, 'kvm')}`);
  if (dirs.length > 1) throw new UserError(`process ${pid} has several VMs in debugfs (${dirs.join(', ')}); kvmtrace traces one`);
  return { qemuPid: pid, name: qemuName(await cmdline(pid)) ?? `vm${pid}`, debugfsDir: dirs[0] };
}

/** Pids of running QEMU processes whose command line has `-name NAME` (VM created or not yet). */
export async function processesNamed(name: string): Promise<number[]> {
  const pids = (await readdir('/proc')).filter((n) => /^\d+$/.test(n)).map(Number);
  const found: number[] = [];
  for (const p of pids) {
    if (p === process.pid) continue;
    const argv = await cmdline(p);
    // Only QEMU itself, not a shell or wrapper whose arguments repeat QEMU's command line.
    if (/qemu/.test(basename(argv[0] ?? '')) && qemuName(argv) === name) found.push(p);
  }
  return found;
}

/**
 * Waits for a QEMU process (`--vm` pid or name) to exist, before it has created its VM, so that a
 * capture can follow it from its first thread. Resolves with the pid; polls every `periodMs`.
 */
export async function waitForProcess(spec: string, stop: AbortSignal | undefined, periodMs = 10): Promise<number | undefined> {
  for (;;) {
    if (stop?.aborted) return undefined;
    if (/^\d+$/.test(spec)) {
      if (alive(Number(spec))) return Number(spec);
    } else {
      const found = await processesNamed(spec);
      if (found.length > 1) throw new UserError(`several processes are named "${spec}" (pids ${found.join(', ')}): give --vm PID`);
      if (found.length === 1) return found[0];
    }
    await new Promise((r) => setTimeout(r, periodMs));
  }
}

/** Waits until debugfs has the VM of `pid` with at least one vCPU; a UserError after `timeoutMs`. */
export async function waitForVm(debugfs: string, pid: number, timeoutMs: number): Promise<FoundVm> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const dirs = await findVmDirs(debugfs, pid);
    if (dirs.length === 1) {
      const vcpus = (await readdir(dirs[0]).catch(() => [] as string[])).filter((n) => /^vcpu\d+$/.test(n));
      if (vcpus.length > 0) return { qemuPid: pid, name: qemuName(await cmdline(pid)) ?? `vm${pid}`, debugfsDir: dirs[0] };
    }
    if (dirs.length > 1) throw new UserError(`process ${pid} has several VMs in debugfs (${dirs.join(', ')}); kvmtrace traces one`);
    if (!alive(pid)) throw new UserError(`process ${pid} exited before it created a VM`);
    if (Date.now() > until) throw new UserError(`process ${pid} has no VM in ${join(debugfs, 'kvm')} after ${timeoutMs / 1000} s (is it a KVM-accelerated QEMU?)`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The threads of a process (`/proc/<pid>/task`). */
export async function threadsOf(pid: number): Promise<number[]> {
  const names = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  return names.map(Number).filter((n) => Number.isSafeInteger(n));
}

/** A thread's name (`/proc/<pid>/task/<tid>/comm`), for display only. */
export async function threadName(pid: number, tid: number): Promise<string | undefined> {
  const n = await readFile(`/proc/${pid}/task/${tid}/comm`, 'utf8').catch(() => undefined);
  return n?.trim();
}

/** True while the process exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
