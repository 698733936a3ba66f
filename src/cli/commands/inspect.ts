/**
 * `kvmtrace inspect`: what decides whether this guest's timestamps can be trusted (clocksource, TSC
 * flags, kvm-clock) and how its virtio disks behave (feature bits, write cache).
 */
import type { Command } from 'commander';
import { checkInspectRoot, inspectGuest } from '../../capture/inspect/index.js';
import { formatInspection } from '../../capture/inspect/report.js';

/** Registers `kvmtrace inspect`. */
export function register(program: Command): void {
  program
    .command('inspect')
    .description("Report a guest's clocksource, TSC flags, kvm-clock and virtio devices (feature bits, virtio-blk write cache)")
    .option('--root <dir>', 'read /proc and /sys under this folder (a recorded tree) instead of /', '/')
    .option('--json', 'print JSON instead of text')
    .action((o: { root: string; json?: boolean }) => {
      const r = inspectGuest(o.root);
      checkInspectRoot(r);
      process.stdout.write(o.json ? JSON.stringify(r, null, 2) + '\n' : formatInspection(r));
    });
}
