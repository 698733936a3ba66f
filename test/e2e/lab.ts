/**
 * The lab guest for end-to-end tests: prerequisites, initramfs, QEMU command line, console
 * watching. Facts from /work/shared/kvm-lab.md: the small kvmlab kernel reaches init in ~2-3
 * minutes under kvm-pvm's emulator; data leaves through isa-debugcon at port 0x5e9.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The repository root. */
export const ROOT = join(import.meta.dirname, '..', '..');

/** The compressed lab kernel (override with KVMLAB_KERNEL). */
export const KERNEL_XZ = process.env.KVMLAB_KERNEL ?? '/work/shared/kvm-guest/vmlinux-6.1-kvmlab.xz';

/** Kernel command line that boots under the emulator (features it cannot run are switched off). */
export const CMDLINE =
  'console=ttyS0 quiet panic=-1 reboot=k init_on_alloc=0 mitigations=off nopku nofsgsbase noinvpcid nopcid ' +
  'clearcpuid=xsave,smap,cx16,rdrand,rdseed,popcnt,rdpid,clflushopt,clwb,bmi1,bmi2,adx,sha_ni,aes,pclmulqdq,avx,avx2,fma,f16c,vaes,vpclmulqdq,wbnoinvd';

/** Why the e2e cannot run here, or undefined when it can. */
export function missingPrerequisite(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  if (!existsSync('/dev/kvm')) return 'no /dev/kvm';
  if (spawnSync('qemu-system-x86_64', ['--version']).status !== 0) return 'qemu-system-x86_64 not installed';
  if (!existsSync('/bin/busybox')) return 'no /bin/busybox (busybox-static)';
  const file = spawnSync('file', ['/bin/busybox'], { encoding: 'utf8' });
  const ldd = spawnSync('ldd', ['/bin/busybox'], { encoding: 'utf8' });
  const isStatic = /statically linked/.test(file.stdout ?? '') || /not a dynamic executable/.test(`${ldd.stdout}${ldd.stderr}`);
  if (!isStatic) return '/bin/busybox is not static (busybox-static)';
  if (!existsSync(KERNEL_XZ)) return `no lab kernel at ${KERNEL_XZ} (set KVMLAB_KERNEL)`;
  if (spawnSync('xz', ['--version']).status !== 0) return 'xz not installed';
  if (!existsSync('/sys/kernel/tracing/instances') && !existsSync('/sys/kernel/debug')) return 'no tracefs';
  return undefined;
}

/** QEMU arguments for the lab guest. */
export function qemuArgs(o: { name: string; vcpus: number; vmlinux: string; initramfs: string; serial: string; debugcon: string }): string[] {
  let cpu = 'host,-arch-capabilities';
  if (o.vcpus > 1) cpu += ',-kvm-pv-ipi,-kvm-pv-sched-yield,-kvm-pv-unhalt';
  return [
    '-name', `${o.name},debug-threads=on`, '-M', 'microvm', '-enable-kvm', '-cpu', cpu,
    '-smp', String(o.vcpus), '-m', '256', '-nodefaults', '-no-user-config', '-display', 'none', '-nic', 'none', '-no-reboot',
    '-serial', `file:${o.serial}`,
    '-chardev', `file,id=out,path=${o.debugcon}`, '-device', 'isa-debugcon,iobase=0x5e9,chardev=out',
    '-kernel', o.vmlinux, '-initrd', o.initramfs, '-append', CMDLINE,
  ];
}

/** Waits until the console file has a line matching `re`; fails if a watched process exits first. */
export async function waitForConsole(file: string, re: RegExp, timeoutMs: number, watch: ChildProcess[]): Promise<string> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    const m = re.exec(text);
    if (m) return m[0];
    for (const p of watch)
      if (p.exitCode !== null || p.signalCode !== null) {
        // It may have written the line just before exiting: look once more.
        const last = readFileSync(file, 'utf8');
        const again = re.exec(last);
        if (again) return again[0];
        throw new Error(`${p.spawnfile} exited (${p.exitCode ?? p.signalCode}) before ${re}; console:\n${last}`);
      }
    if (Date.now() > until) throw new Error(`timed out waiting for ${re}; console:\n${text}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Resolves when the process has exited (immediately if it has). */
export function exited(p: ChildProcess): Promise<number | null> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(p.exitCode);
  return new Promise((r) => p.on('close', (c) => r(c)));
}
