/**
 * `kvmtrace capture host | guest`: record a bundle on each side (docs/bundle.md) that
 * `kvmtrace merge HOSTDIR GUESTDIR` takes with no other flag.
 */
import type { Command } from 'commander';
import { UserError } from '../../model/errors.js';
import { captureHost } from '../../capture/host-capture.js';
import { captureGuest } from '../../capture/guest-capture.js';

const collect = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v];

function seconds(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UserError(`${flag} ${v}: expected a number of seconds > 0`);
  return n;
}

function count(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new UserError(`${flag} ${v}: expected a positive integer`);
  return n;
}

/** An AbortController aborted by the first SIGINT/SIGTERM (the capture then ends normally). */
function stopOnSignals(): { signal: AbortSignal; dispose: () => void } {
  const ac = new AbortController();
  const onSig = (sig: NodeJS.Signals): void => {
    if (!ac.signal.aborted) process.stderr.write(`\nkvmtrace: ${sig}: stopping the capture and writing the bundle\n`);
    ac.abort();
  };
  process.on('SIGINT', onSig);
  process.on('SIGTERM', onSig);
  return {
    signal: ac.signal,
    dispose: () => {
      process.off('SIGINT', onSig);
      process.off('SIGTERM', onSig);
    },
  };
}

interface HostFlags {
  vm: string;
  output: string;
  duration?: string;
  event?: string[];
  exclude?: string[];
  bufferKb?: string;
  name?: string;
  force?: boolean;
  wait?: boolean;
  hold?: boolean;
  quiet?: boolean;
}

interface GuestFlags {
  output: string;
  duration?: string;
  event?: string[];
  defaultEvents: boolean;
  sync?: string[];
  syncPoints?: string;
  name?: string;
  vm?: string;
  bufferKb?: string;
  clock?: string;
  force?: boolean;
}

/** Adds `capture host` and `capture guest` to the program. */
export function register(program: Command): void {
  const capture = program
    .command('capture')
    .summary('record a host or guest bundle for `kvmtrace merge`')
    .description('Record the host side or the guest side of a VM as a bundle folder (docs/bundle.md) that `kvmtrace merge HOST GUEST` takes with no other flag.');

  capture
    .command('host')
    .summary('record the host side of a VM (root)')
    .description(
      'Record the host side of a VM (as root): kvm and sched events of its QEMU in an ftrace instance of its own, and ' +
        "each vCPU's TSC offset from debugfs at the start and at the end. Ctrl-C or SIGTERM ends the capture and writes the bundle.",
    )
    .requiredOption('--vm <pid|name>', "QEMU's pid or its -name")
    .requiredOption('-o, --output <dir>', 'bundle folder to write')
    .option('-d, --duration <s>', 'stop after this many seconds (default: Ctrl-C, or when the VM exits); with --wait, also the longest wait for QEMU to start')
    .option('-e, --event <event>', 'also record this event (tracefs syntax, e.g. irq:*); repeatable', collect)
    .option('-x, --exclude <event>', 'leave this event out (e.g. kvm:kvm_emulate_insn); repeatable', collect)
    .option('--buffer-kb <kb>', 'per-CPU ring buffer size in KiB (default: 8192)')
    .option('--name <name>', "the host's name on the timeline (default: host)")
    .option('--wait', 'wait for the QEMU process to start and follow it from birth (records the TSC offsets KVM sets at vCPU creation)')
    .option('--hold', 'with --wait: record only kvm_write_tsc_offset until kvmtrace gets SIGUSR1, then everything')
    .option('--force', 'write into a folder that already holds files')
    .option('-q, --quiet', 'print only warnings and failures on stderr (no progress, no notes)')
    .action(async (o: HostFlags) => {
      if (o.hold && !o.wait) throw new UserError('--hold goes with --wait');
      const stop = stopOnSignals();
      const begin = new AbortController();
      const onUsr1 = (): void => begin.abort();
      process.on('SIGUSR1', onUsr1);
      try {
        const r = await captureHost({
          vm: o.vm,
          outDir: o.output,
          durationS: seconds(o.duration, '--duration'),
          events: o.event ?? [],
          exclude: o.exclude ?? [],
          bufferKb: count(o.bufferKb, '--buffer-kb'),
          name: o.name,
          force: o.force,
          wait: o.wait,
          hold: o.hold,
          begin: begin.signal,
          stop: stop.signal,
          progress: o.quiet ? () => undefined : (l) => void process.stderr.write(`kvmtrace: ${l}\n`),
        });
        const lost = r.meta.lostEvents ?? 0;
        if (!o.quiet) {
          for (const n of r.notes) process.stderr.write(`kvmtrace: note: ${n}\n`);
          process.stderr.write(`kvmtrace: host bundle written to ${r.dir} (${r.traceBytes} bytes of trace, ${lost} events lost; ended by ${r.endedBy})\n`);
        } else if (lost) process.stderr.write(`kvmtrace: warning: ${lost} events lost (see ${r.dir}/meta.json)\n`);
      } finally {
        stop.dispose();
        process.off('SIGUSR1', onUsr1);
      }
    });

  capture
    .command('guest')
    .summary('record the guest side (root, in the guest)')
    .description(
      'Record the guest side (as root, in the guest) by running the script `kvmtrace guest-script` prints, with the ' +
        'syncpt helper of this installation: an ftrace instance of its own, sync points on every CPU at the start and ' +
        "at the end, and the guest's facts in meta.json.",
    )
    .requiredOption('-o, --output <dir>', 'bundle folder to write')
    .option('-d, --duration <s>', 'capture for this long (default: around COMMAND, or until Ctrl-C)')
    .option('-e, --event <event>', 'also record this event (tracefs syntax); repeatable', collect)
    .option('--no-default-events', 'do not record sched_switch, sched_wakeup, irq_handler_entry/exit')
    .option('--sync <kind>', 'sync exit: pio (OUT to port 0xe9) or cpuid; repeat for both (default: pio)', collect)
    .option('--sync-points <n>', 'sync points per CPU at start and at end (default: 20)')
    .option('--name <name>', "this guest's name on the timeline (default: hostname)")
    .option('--vm <name>', "the host's name for this VM (default: --name)")
    .option('--buffer-kb <kb>', 'per-CPU ring buffer size in KiB (default: 1024)')
    .option('--clock <clock>', 'trace clock instead of x86-tsc')
    .option('--force', 'write into a folder that already holds files')
    .argument('[command...]', 'command to capture around (after --)')
    .action(async (command: string[], o: GuestFlags) => {
      for (const k of o.sync ?? []) if (k !== 'pio' && k !== 'cpuid') throw new UserError(`--sync ${k}: expected pio or cpuid`);
      // The script handles SIGINT itself; kvmtrace just waits for it.
      const ignore = (): void => undefined;
      process.on('SIGINT', ignore);
      process.on('SIGTERM', ignore);
      try {
        const code = await captureGuest({
          outDir: o.output,
          durationS: seconds(o.duration, '--duration'),
          events: o.event ?? [],
          noDefaultEvents: !o.defaultEvents,
          syncKinds: (o.sync ?? []) as ('pio' | 'cpuid')[],
          syncPoints: count(o.syncPoints, '--sync-points'),
          name: o.name,
          vm: o.vm,
          bufferKb: count(o.bufferKb, '--buffer-kb'),
          clock: o.clock,
          force: o.force,
          command,
        });
        if (code !== 0) process.exitCode = code;
      } finally {
        process.off('SIGINT', ignore);
        process.off('SIGTERM', ignore);
      }
    });
}
