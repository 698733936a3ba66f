/**
 * `kvmtrace inspect`: what decides whether this guest's timestamps can be trusted (clocksource, TSC
 * flags, kvm-clock) and how its virtio disks behave (feature bits, write cache).
 */
import type { Command } from 'commander';
import { checkInspectRoot, inspectGuest } from '../../capture/inspect/index.js';
import { formatInspection } from '../../capture/inspect/report.js';
import { recordInspectTree } from '../../capture/inspect/record.js';

/** Registers `kvmtrace inspect`. */
export function register(program: Command): void {
  program
    .command('inspect')
    .summary("report a guest's clocksource, TSC flags, kvm-clock and virtio devices")
    .description(
      "Report what decides whether a guest's timestamps can be trusted (its clocksource, TSC flags and kvm-clock) and how " +
        'its virtio devices behave (feature bits, virtio-blk write cache). Run it in the guest.',
    )
    .option('--root <dir>', 'read /proc and /sys under this folder (a recorded tree) instead of /', '/')
    .option('--json', 'print JSON instead of text')
    .option('--record <dir>', 'also copy the files read into DIR (a new folder), for a bundle or a test fixture')
    .action((o: { root: string; json?: boolean; record?: string }) => {
      const r = inspectGuest(o.root);
      checkInspectRoot(r);
      if (o.record) process.stderr.write(`kvmtrace: recorded ${recordInspectTree(o.root, o.record).length} files into ${o.record}\n`);
      process.stdout.write(o.json ? JSON.stringify(r, null, 2) + '\n' : formatInspection(r));
    });
}
