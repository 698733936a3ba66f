/**
 * A merge from inputs to a validated, ordered stream: gathers the sources (bundles or bare files),
 * scans the host once, plans each guest's clock mapping, then runs the streaming merge with the
 * validator watching every event. Exporters subscribe through `run`'s callbacks.
 */
import { statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Diagnostics } from '../model/diagnostics.js';
import { UserError } from '../model/errors.js';
import { clockUnit, type TraceClock } from '../model/clock.js';
import { clockSyncFor } from './clock-sync.js';
import { scanHost, type HostScan } from './host-scan.js';
import { loadBundle } from './inputs.js';
import { mergeTimeline, type Timeline, type TimelineSource } from './merge.js';
import type { MergedBatch } from './merged-event.js';
import { planGuest, type GuestOverrides, type GuestPlan } from './plan.js';
import { openSource, type OpenSource, type SourceSpec } from './source.js';
import { detectFormat } from '../parsers/detect.js';
import { openTraceDat } from '../parsers/trace-dat/index.js';
import { parseThreadsMode } from '../parsers/ftrace-text-thread.js';
import { Validator, type ValidationResult, type WindowKind } from './validate.js';
import { estimateUnmapped, RECORD_NEXT_TIME } from './estimate/for-plan.js';
import type { VcpuTransitionListener } from '../model/vcpu-transition.js';

/** Everything a merge is asked to do. */
export interface MergeRequest {
  /** Bundle folders: one host bundle and any number of guest bundles, in any order. */
  bundles: string[];
  hostFiles: string[];
  guestFiles: string[];
  hostClock?: TraceClock;
  guestClock?: TraceClock;
  /** Machine name for bare guest files. */
  guestName?: string;
  overrides: GuestOverrides;
  tscKhz?: number;
  strict?: boolean;
  /** Events held per source to restore order. */
  window?: number;
}

/** A guest of the merge: its sources and its clock plan. */
export interface MergeGuest {
  specs: SourceSpec[];
  /** Undefined when there is no host to map to. */
  plan: GuestPlan | undefined;
}

/** A merge ready to run. */
export interface PreparedMerge {
  host: SourceSpec[];
  guests: MergeGuest[];
  scan: HostScan | undefined;
  tscKhz: number | undefined;
  tscKhzFrom: string;
  windowKind: WindowKind;
  diags: Diagnostics;
  /** Notes about the inputs (clock assumptions, disagreements between sources). */
  notes: string[];
  /** Readers opened ahead of the merge, by spec (taken over by runMerge). */
  opened: Map<SourceSpec, OpenSource>;
}

/** Gathers inputs, scans the host and plans the mapping; throws UserErrors for impossible merges. */
export async function prepareMerge(req: MergeRequest): Promise<PreparedMerge> {
  const diags = new Diagnostics(req.strict ?? false);
  const notes: string[] = [];
  const host: SourceSpec[] = [];
  const guestGroups: SourceSpec[][] = [];
  for (const dir of req.bundles) {
    const b = await loadBundle(dir);
    if (b.meta.role === 'host') {
      if (host.length) throw new UserError(`two host inputs given (${host[0].file} and ${dir}): a merge has one host`);
      host.push(...b.specs);
    } else guestGroups.push(b.specs);
  }
  for (const f of req.hostFiles) {
    if (host.length && !req.hostFiles.includes(host[0].file))
      throw new UserError(`two host inputs given (${host[0].file} and ${f}): a merge has one host`);
    host.push({ role: 'host', machine: 'host', file: f, clock: req.hostClock, clockFrom: req.hostClock ? 'flag' : undefined });
  }
  req.guestFiles.forEach((f, i) =>
    guestGroups.push([
      {
        role: 'guest',
        machine: req.guestName ?? (req.guestFiles.length > 1 ? `guest${i}` : 'guest'),
        file: f,
        clock: req.guestClock,
        clockFrom: req.guestClock ? 'flag' : undefined,
      },
    ]),
  );
  if (!host.length && !guestGroups.length) throw new UserError('nothing to merge: give bundle folders, or --host/--guest files');
  if (!host.length && guestGroups.length)
    notes.push('no host trace given: guest events are shown on their own clock, unvalidated');
  // Formats, and trace.dat metadata: its options may carry the mapping (TIME_SHIFT, GUEST, TRACEID).
  for (const spec of [...host, ...guestGroups.flat()]) {
    spec.format ??= await detectFormat(spec.file);
    if (spec.format === 'trace-dat') {
      const t = openTraceDat(spec.file, diags);
      t.close();
      spec.dat = t;
    }
  }
  // Bare trace.dat guests take the name the host's GUEST option gives them.
  for (const g of guestGroups)
    for (const s of g) {
      const named = host[0]?.dat?.options.guests.find((x) => x.traceId === s.dat?.options.traceId && x.name);
      if (named && !s.meta && !req.guestName) s.machine = named.name;
    }
  for (const g of guestGroups)
    for (const s of g)
      if (!s.clock && s.format === 'ftrace-text') notes.push(`${s.file}: trace clock not recorded; integer timestamps are read as the guest's TSC (say --guest-clock to be explicit)`);
  for (const s of host)
    if (!s.clock && s.format === 'ftrace-text') notes.push(`${s.file}: trace clock not recorded; integer timestamps are read as the host's TSC, seconds as a time clock (say --host-clock to be explicit)`);

  assignParseThreads([...host, ...guestGroups.flat()]);
  // The guests' readers open now: a large file's parser thread reads ahead while the host is
  // scanned, and the merge takes the readers over (see runMerge).
  const opened = new Map<SourceSpec, OpenSource>();
  try {
    if (host.length) for (const s of guestGroups.flat()) if (s.format === 'ftrace-text') opened.set(s, await openSource(s, diags));
    return await planMerge(req, host, guestGroups, opened, diags, notes);
  } catch (e) {
    for (const o of opened.values()) await o.close();
    throw e;
  }
}

/** The rest of {@link prepareMerge}: the host scan, each guest's plan, the TSC frequency. */
async function planMerge(
  req: MergeRequest,
  host: SourceSpec[],
  guestGroups: SourceSpec[][],
  opened: Map<SourceSpec, OpenSource>,
  diags: Diagnostics,
  notes: string[],
): Promise<PreparedMerge> {
  // The scan reads the host once more than the merge: its bad lines are reported by the merge pass.
  const scan = host.length ? await scanHost(host, new Diagnostics(req.strict ?? false, 0)) : undefined;
  if (scan && scan.events === 0) notes.push(`the host trace ${host[0].file} has no events: nothing can be checked`);
  const guests: MergeGuest[] = [];
  for (const g of guestGroups) {
    if (!host.length) continue;
    let plan = planGuest(host[0], scan!, g[0], req.overrides);
    // A guest traced with a time clock goes to its TSC through its kvmsync markers first.
    const timeClock = g.some((s) => s.clock !== undefined && clockUnit(s.clock) === 'ns');
    // No source states some vCPU's offset: estimate it from the traces (a pass over both), or say why not.
    const why: string[] = [];
    if (plan.unmapped.size && req.overrides.tscOffset === undefined && !timeClock) {
      const est = await estimateUnmapped(host, scan!, g[0], plan, diags);
      why.push(...est.failures);
      if (est.estimated.size) plan = planGuest(host[0], scan!, g[0], { ...req.overrides, estimated: est.estimated });
    }
    if (plan.vcpus.size === 0)
      throw new UserError(
        `no TSC mapping for guest ${g[0].file}: no debugfs snapshot, no kvm_write_tsc_offset event, no TIME_SHIFT and no --tsc-offset, and the traces do not pin it down${why.length ? ` (${why.join('; ')})` : ''} — ${RECORD_NEXT_TIME}`,
      );
    for (const w of why) plan.notes.push(`no estimate for ${w}`);
    if (timeClock) {
      plan.clockSync = new Map();
      for (const spec of g) {
        const cs = await clockSyncFor(spec, new Diagnostics(req.strict ?? false, 0));
        plan.clockSync.set(spec.file, cs);
        plan.notes.push(
          `${spec.file}: the ${spec.clock} clock is mapped to the guest TSC through ${cs.markers} kvmsync markers (${cs.ns.length} anchors, ${cs.tscKhz} kHz between them); times are early by the marker write latency (~1 µs) and quantized to the µs tracefs prints`,
        );
      }
    }
    guests.push({ specs: g, plan });
  }
  const guestOnly = !host.length ? guestGroups : [];
  const metaKhz = host[0]?.meta?.tscKhz ?? guestGroups.flat().find((s) => s.meta?.tscKhz)?.meta?.tscKhz;
  // trace-cmd's TSC2NSEC: ns = (tsc × mult) >> shift, so the TSC runs at 10^6 · 2^shift / mult kHz.
  const t2n = [...host, ...guestGroups.flat()].find((s) => s.dat?.options.tsc2nsec)?.dat?.options.tsc2nsec;
  const datKhz = t2n ? Math.round((1e6 * 2 ** t2n.shift) / t2n.mult) : undefined;
  let tscKhz = req.tscKhz ?? metaKhz ?? datKhz;
  let tscKhzFrom = req.tscKhz
    ? '--tsc-khz'
    : metaKhz
      ? (host[0]?.meta?.tscKhzFrom ?? 'bundle metadata')
      : datKhz
        ? `trace.dat TSC2NSEC (mult ${t2n!.mult}, shift ${t2n!.shift})`
        : 'unknown';
  if (scan?.unit === 'ns') {
    // A host traced with a time clock: the timeline is in ns, i.e. "cycles" of a 1 GHz clock.
    if (guestGroups.length) throw new UserError(`the host trace ${host[0].file} uses a time clock (ns): mapping guests needs the host traced with x86-tsc`);
    tscKhz = 1_000_000;
    tscKhzFrom = 'timestamps in ns (time clock)';
  }
  if (req.tscKhz && metaKhz && req.tscKhz !== metaKhz) notes.push(`--tsc-khz ${req.tscKhz} differs from the bundle's ${metaKhz}; using ${req.tscKhz}`);
  const windowKind: WindowKind = !scan ? 'none' : scan.counts.kvmEntry > 0 ? 'entry-exit' : scan.counts.kvmFpu > 0 ? 'kvm-run' : 'none';
  for (const g of guestOnly) guests.push({ specs: g, plan: undefined });
  return { host, guests, scan, tscKhz, tscKhzFrom, windowKind, diags, notes, opened };
}

/** ftrace text files at least this large may be parsed on a worker thread. */
const THREAD_MIN_BYTES = 64 << 20;

/**
 * Gives parser threads to the largest ftrace text inputs (64 MiB and more): one per core beyond
 * the one that merges, since more would compete with it (KVMTRACE_PARSE_THREADS: see
 * parseThreadsMode). The outputs are the same either way.
 */
function assignParseThreads(specs: SourceSpec[]): void {
  const mode = parseThreadsMode();
  const text = specs.filter((s) => s.format === 'ftrace-text');
  if (mode === 'always') for (const s of text) s.parseThread = true;
  if (mode !== 'auto') return;
  const sizeOf = (f: string): number => {
    try {
      return statSync(f).size;
    } catch {
      return 0; // the reader reports the unreadable file
    }
  };
  const large = text.map((s) => ({ s, size: sizeOf(s.file) })).filter((x) => x.size >= THREAD_MIN_BYTES);
  large.sort((a, b) => b.size - a.size);
  for (const x of large.slice(0, Math.max(0, availableParallelism() - 1))) x.s.parseThread = true;
}

/** Closes the readers a prepared merge opened ahead (for a merge that will not run after all). */
export async function releaseMerge(p: PreparedMerge): Promise<void> {
  for (const o of p.opened.values()) await o.close();
  p.opened.clear();
}

/** Callbacks of a running merge. */
export interface MergeSinks {
  onTimeline?: (tl: Timeline, plans: (GuestPlan | undefined)[]) => Promise<void> | void;
  onBatch: (batch: MergedBatch) => Promise<void> | void;
  /** Told each vCPU state change and matched sync point, in timeline order, before the batch that holds it. */
  vcpuStates?: VcpuTransitionListener;
}

/** Runs a prepared merge: streams every event to the sinks and returns the validation. */
export async function runMerge(p: PreparedMerge, sinks: MergeSinks, window?: number): Promise<{ result: ValidationResult; timeline: Timeline | undefined; events: number }> {
  const sources: TimelineSource[] = [];
  const plans: (GuestPlan | undefined)[] = [];
  let validator: Validator | undefined;
  let timeline: Timeline | undefined;
  let started = false;
  let events = 0;
  try {
    for (const spec of p.host) {
      sources.push({ role: 'host', machine: spec.machine, open: await openSource(spec, p.diags) });
      plans.push(undefined);
    }
    for (const g of p.guests)
      for (const spec of g.specs) {
        const open = p.opened.get(spec) ?? (await openSource(spec, p.diags));
        p.opened.delete(spec);
        sources.push({ role: 'guest', machine: spec.machine, open, plan: g.plan });
        plans.push(g.plan);
      }
    for await (const batch of mergeTimeline(sources, {
      diags: p.diags,
      window,
      onTimeline: (tl) => {
        timeline = tl;
        validator = new Validator(tl, p.scan, plans, p.tscKhz, sinks.vcpuStates);
      },
    })) {
      // The timeline is known before the first batch; sinks start here so their errors propagate.
      if (!started) {
        started = true;
        await sinks.onTimeline?.(timeline!, plans);
      }
      events += batch.n;
      validator!.handle(batch);
      await sinks.onBatch(batch);
    }
  } finally {
    // Every reader ends, also one the merge never pulled from (its parser thread stops), and one
    // opened ahead that an error kept from being taken over.
    for (const s of sources) await s.open.close();
    await releaseMerge(p);
  }
  if (!started) throw new UserError(`the inputs hold no events (${sources.map((s) => s.open.spec.file).join(', ')}): nothing to merge`);
  const result = validator ? validator.finalize() : { guests: [], ok: true, failures: [] };
  return { result, timeline, events };
}
