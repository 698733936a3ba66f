/**
 * `kvmtrace capture host`: records a host bundle (docs/bundle.md) for one VM.
 *
 * An ftrace instance of its own with the x86-tsc clock, kvm:* plus sched_switch/sched_wakeup,
 * restricted to QEMU's threads (set_event_pid with event-fork, so threads QEMU starts later are
 * followed too); trace_pipe is streamed into the bundle while recording, so a long capture loses
 * nothing to overwrite. debugfs vCPU readings (thread, TSC offset, scaling) are taken at start and
 * end, each stamped with the host TSC. The instance is removed on every way out.
 */
import { closeSync, openSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { metaToJson, validateMeta, type BundleMeta, type VcpuMeta } from '../model/bundle.js';
import { UserError } from '../model/errors.js';
import { VERSION } from '../model/version.js';
import { findDebugfs, readVcpus, type VcpuReading } from './debugfs.js';
import { hasHardwareVirt, machineFacts } from './host-facts.js';
import { helperPath } from './native.js';
import { commitPart, dropCreatedDir, dropPart, partName, prepareBundleDir, writeWhole } from './output.js';
import { TracePipePoller, run } from './process.js';
import { TraceInstance, findTracefs } from './tracefs.js';
import { alive, findVm, threadName, threadsOf, waitForProcess, waitForVm, type FoundVm } from './vm.js';

/** The events a host capture enables unless told otherwise. */
export const DEFAULT_HOST_EVENTS = ['kvm:*', 'sched:sched_switch', 'sched:sched_wakeup'];

/** trace_marker text written when the host trace starts to hold every event asked for. */
export const ALL_MARKER = 'kvmtrace capture host: recording all events';
/** trace_marker text written when `--hold` starts: only kvm_write_tsc_offset until ALL_MARKER. */
export const HOLD_MARKER = 'kvmtrace capture host: holding, only kvm_write_tsc_offset';
/** trace_marker text written just before recording stops. */
export const END_MARKER = 'kvmtrace capture host: end';

/** What `capture host` is asked to do. */
export interface HostCaptureOptions {
  /** QEMU pid or VM name. */
  vm: string;
  /** Bundle folder to write. */
  outDir: string;
  /** Stop after this many seconds (else at `stop`, or when the VM exits). */
  durationS?: number;
  /** More events (set_event syntax). */
  events?: string[];
  /** Events to leave out (set_event syntax, without the `!`). */
  exclude?: string[];
  /** Per-CPU ring buffer size, KiB. */
  bufferKb?: number;
  /** Write into a non-empty folder. */
  force?: boolean;
  /** The host's name on the timeline. */
  name?: string;
  /**
   * Wait for the QEMU process to appear and follow it from its start (catches the TSC offset
   * writes KVM makes when it creates the vCPUs); `vm` must then be a name or a future pid.
   */
  wait?: boolean;
  /**
   * With `wait`: record only kvm_write_tsc_offset until `begin` aborts, then everything (keeps
   * a capture small when the part of interest starts long after the VM, e.g. after its boot).
   */
  hold?: boolean;
  /** Ends the `hold` (SIGUSR1 in the CLI). */
  begin?: AbortSignal;
  /** Aborting it ends the capture normally (Ctrl-C): the bundle is still written. */
  stop?: AbortSignal;
  /** Progress lines for the user. */
  progress?: (line: string) => void;
}

/** What a finished capture reports. */
export interface HostCaptureResult {
  dir: string;
  meta: BundleMeta;
  traceBytes: number;
  /** Why the capture ended. */
  endedBy: 'duration' | 'stop' | 'vm-exit';
  notes: string[];
}

async function ensureMounted(kind: 'tracefs' | 'debugfs', find: () => Promise<string | undefined>, at: string): Promise<string> {
  const have = await find();
  if (have) return have;
  await run('mount', ['-t', kind, 'nodev', at]).catch((e: Error) => {
    throw new UserError(`${kind} is not mounted and mounting it at ${at} failed (${e.message}); kvmtrace needs ${kind}`);
  });
  const now = await find();
  if (!now) throw new UserError(`${kind} is not available on this kernel; kvmtrace needs it`);
  return now;
}

/** Checks the preconditions a host capture has; a UserError per missing one. */
export async function hostPreflight(): Promise<{ tracefs: string; debugfs: string }> {
  if (process.getuid?.() !== 0) throw new UserError('capture host must run as root (it writes tracefs and reads debugfs kvm/)');
  const tracefs = await ensureMounted('tracefs', () => findTracefs(), '/sys/kernel/tracing');
  const debugfs = await ensureMounted('debugfs', () => findDebugfs(), '/sys/kernel/debug');
  return { tracefs, debugfs };
}

/** `events` with `sys:*` entries expanded to the single events of `sys`, minus `exclude`. */
async function expandEvents(inst: TraceInstance, events: string[], exclude: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const e of events) {
    const m = /^([^:]+):\*$/.exec(e);
    if (m) {
      for (const name of await inst.eventsOf(m[1])) if (!exclude.includes(`${m[1]}:${name}`)) out.push(`${m[1]}:${name}`);
    } else if (!exclude.includes(e)) out.push(e);
  }
  return out;
}

function vcpuMeta(start: VcpuReading[], end: VcpuReading[] | undefined, names: Map<number, string | undefined>, notes: string[]): VcpuMeta[] {
  return start.map((s) => {
    const e = end?.find((x) => x.vcpu === s.vcpu);
    if (e && e.tid !== s.tid) notes.push(`vCPU ${s.vcpu} moved from thread ${s.tid} to ${e.tid} during the capture`);
    return { vcpu: s.vcpu, tid: s.tid, threadName: names.get(s.tid), snapshots: e ? [s.snapshot, e.snapshot] : [s.snapshot] };
  });
}

/**
 * The start reading of debugfs. A vCPU's `pid` is 0 until its thread first enters KVM_RUN (right
 * after creation, when following QEMU from its start): read again until every vCPU has a thread.
 */
async function startReading(rdtsc: string, vm: FoundVm, stop: AbortSignal | undefined): Promise<VcpuReading[]> {
  const until = Date.now() + 60_000;
  for (;;) {
    const r = await readVcpus(rdtsc, vm.debugfsDir, 'start');
    if (r.every((v) => v.tid > 0)) return r;
    if (Date.now() > until || stop?.aborted || !alive(vm.qemuPid))
      throw new UserError(`vCPU ${r.find((v) => v.tid <= 0)!.vcpu} of ${vm.debugfsDir} has no thread yet (pid 0): did the VM ever run?`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

/** A signal aborted when either given one is. */
function anySignal(a: AbortSignal | undefined, b: AbortSignal | undefined): AbortSignal | undefined {
  const list = [a, b].filter((s): s is AbortSignal => s !== undefined);
  return list.length === 0 ? undefined : AbortSignal.any(list);
}

/** Waits until the duration passes, `stop` aborts, or the VM exits. */
async function waitForEnd(vm: FoundVm, durationS: number | undefined, stop: AbortSignal | undefined, reader: TracePipePoller): Promise<HostCaptureResult['endedBy']> {
  const deadline = durationS === undefined ? Infinity : Date.now() + durationS * 1000;
  for (;;) {
    if (stop?.aborted) return 'stop';
    if (!alive(vm.qemuPid)) return 'vm-exit';
    if (reader.error) throw new UserError(reader.error);
    const left = deadline - Date.now();
    if (left <= 0) return 'duration';
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, Math.min(250, left));
      function done(): void {
        clearTimeout(t);
        stop?.removeEventListener('abort', done);
        resolve();
      }
      stop?.addEventListener('abort', done, { once: true });
    });
  }
}

/** Runs a host capture to its end and writes the bundle; a failed one leaves no folder it created. */
export async function captureHost(opts: HostCaptureOptions): Promise<HostCaptureResult> {
  const rdtsc = helperPath('rdtsc');
  const { tracefs, debugfs } = await hostPreflight();
  // Without --wait the VM must exist now: find it before touching anything.
  const found = opts.wait ? undefined : await findVm(debugfs, opts.vm);
  const created = await prepareBundleDir(opts.outDir, opts.force ?? false);
  try {
    return await record(opts, found, tracefs, debugfs, rdtsc);
  } catch (e) {
    await dropCreatedDir(opts.outDir, created);
    throw e;
  }
}

/** The capture itself, into a prepared bundle folder: tracefs instance, debugfs readings, meta.json. */
async function record(opts: HostCaptureOptions, found: FoundVm | undefined, tracefs: string, debugfs: string, rdtsc: string): Promise<HostCaptureResult> {
  const say = opts.progress ?? (() => undefined);
  const facts = await machineFacts(rdtsc);
  const notes: string[] = [];

  const exclude = [...(opts.exclude ?? [])];
  if (!hasHardwareVirt(facts.cpuFlags) && !exclude.includes('kvm:kvm_emulate_insn')) {
    exclude.push('kvm:kvm_emulate_insn');
    notes.push('no VMX/SVM on this CPU: KVM emulates guest instructions, so kvm_emulate_insn (one event per instruction) is left out');
  }
  const events = [...DEFAULT_HOST_EVENTS, ...(opts.events ?? [])];

  const inst = await TraceInstance.create(tracefs);
  let reader: TracePipePoller | undefined;
  let out: number | undefined;
  let ok = false;
  try {
    const availableClocks = await inst.availableClocks();
    await inst.setClock('x86-tsc');
    await inst.write('buffer_size_kb', String(opts.bufferKb ?? 8192));
    // Single events, never "sys:*" then "!sys:x": that would record x for a moment (kvm_emulate_insn
    // runs at ~1 M events/s under an emulating KVM).
    const enable = await expandEvents(inst, events, exclude);
    const enabled = new Set<string>();
    const turnOn = async (list: string[]): Promise<void> => {
      for (const e of list) if (!enabled.has(e)) (await inst.enableEvent(e), enabled.add(e));
    };

    out = openSync(join(opts.outDir, partName('trace.txt')), 'w');
    reader = TracePipePoller.start(join(inst.dir, 'trace_pipe'), out);
    let qemuPid = found?.qemuPid;
    const start = new Date();
    if (qemuPid === undefined) {
      // Until QEMU is found, only kvm events are on, for every VM: they come from vCPU threads
      // only, and this way the TSC offset writes KVM makes while creating the vCPUs (within
      // milliseconds of QEMU's start) are recorded. Other VMs' events of that moment stay in the
      // trace, under their own threads.
      await turnOn(enable.filter((e) => (opts.hold ? e === 'kvm:kvm_write_tsc_offset' : e.startsWith('kvm:'))));
      await inst.write('tracing_on', '1');
      say(`waiting for QEMU "${opts.vm}" to start`);
      // --duration bounds the wait too: a VM that never starts must not keep the capture waiting.
      const limit = opts.durationS === undefined ? undefined : AbortSignal.timeout(opts.durationS * 1000);
      qemuPid = await waitForProcess(opts.vm, anySignal(opts.stop, limit));
      if (qemuPid === undefined)
        throw new UserError(
          opts.stop?.aborted ? 'stopped before the VM started; no bundle written' : `QEMU "${opts.vm}" did not start within the ${opts.durationS} s of --duration; no bundle written`,
        );
    }
    const tids = await threadsOf(qemuPid);
    if (tids.length === 0) throw new UserError(`QEMU ${qemuPid} exited before the capture began`);
    await inst.setEventPids(tids, true);
    if (!opts.hold) await turnOn(enable);
    await inst.write('tracing_on', '1');
    // In-band markers say from where on the trace is complete (before: only the hold events).
    await inst.mark(opts.hold ? HOLD_MARKER : ALL_MARKER);
    const vm = found ?? (await waitForVm(debugfs, qemuPid, 60_000));
    const startReadings = await startReading(rdtsc, vm, opts.stop);
    const names = new Map<number, string | undefined>();
    for (const r of startReadings) names.set(r.tid, await threadName(vm.qemuPid, r.tid));
    say(
      `capturing VM ${vm.name} (QEMU ${vm.qemuPid}, ${startReadings.length} vCPU${startReadings.length === 1 ? '' : 's'}: ` +
        `${startReadings.map((r) => `${r.vcpu}→thread ${r.tid}`).join(', ')}) into ${opts.outDir}` +
        (opts.durationS === undefined ? '; Ctrl-C to stop' : ` for ${opts.durationS} s`),
    );

    if (opts.hold) {
      say('holding: recording only kvm_write_tsc_offset until SIGUSR1');
      const held = await waitForEnd(vm, undefined, anySignal(opts.stop, opts.begin), reader);
      await turnOn(enable);
      await inst.mark(ALL_MARKER);
      if (held === 'stop' && opts.begin?.aborted) say('recording everything');
    }
    const endedBy = await waitForEnd(vm, opts.durationS, opts.stop, reader);
    let endReadings: VcpuReading[] | undefined;
    if (endedBy !== 'vm-exit') {
      endReadings = await readVcpus(rdtsc, vm.debugfsDir, 'end').catch((e: Error) => {
        notes.push(`no end reading of debugfs: ${e.message}`);
        return undefined;
      });
    } else notes.push('the VM exited during the capture: debugfs has only the start reading');
    await inst.mark(END_MARKER);
    await inst.write('tracing_on', '0');
    const end = new Date();
    const stats = await inst.stats();
    await reader.stop();
    if (reader.error) throw new UserError(reader.error);
    closeSync(out);
    out = undefined;
    const lost = stats.overrun + stats.dropped;
    if (lost > 0) notes.push(`the tracer lost ${lost} events (overwritten ${stats.overrun}, dropped ${stats.dropped}): give a larger --buffer-kb`);

    const meta: BundleMeta = {
      version: 1,
      role: 'host',
      name: opts.name ?? 'host',
      traces: [{ file: 'trace.txt', format: 'ftrace-text' }],
      traceClock: 'x86-tsc',
      tscKhz: facts.tscKhz,
      tscKhzFrom: facts.tscKhzFrom,
      kernel: facts.kernel,
      cpuVendor: facts.cpuVendor,
      cpus: facts.cpus,
      availableClocks,
      capturedAt: { start: start.toISOString(), end: end.toISOString() },
      tool: `kvmtrace ${VERSION} capture host`,
      lostEvents: lost,
      vms: [{ name: vm.name, qemuPid: vm.qemuPid, debugfsDir: vm.debugfsDir, vcpus: vcpuMeta(startReadings, endReadings, names, notes) }],
    };
    const json = metaToJson(meta);
    validateMeta(JSON.parse(json), join(opts.outDir, 'meta.json'));
    await commitPart(opts.outDir, 'trace.txt');
    await writeWhole(opts.outDir, 'meta.json', json);
    ok = true;
    const { size } = await stat(join(opts.outDir, 'trace.txt'));
    return { dir: opts.outDir, meta, traceBytes: size, endedBy, notes };
  } finally {
    if (reader) await reader.stop();
    if (out !== undefined) closeSync(out);
    await inst.remove();
    if (!ok) await dropPart(opts.outDir, 'trace.txt');
  }
}
