/**
 * A merge from inputs to a validated, ordered stream: gathers the sources (bundles or bare files),
 * indexes the host in one pass (host/index.ts), plans each guest's clock mapping from it, then runs
 * the streaming merge with the validator judging every guest event against the index, and the
 * index's KVM-run segments replayed beside the host events for the exporters and analyses.
 * Exporters subscribe through `run`'s callbacks.
 */
import { statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename } from 'node:path';
import { Diagnostics } from '../model/diagnostics.js';
import { UserError } from '../model/errors.js';
import { clockUnit, type TraceClock } from '../model/clock.js';
import { clockSyncFor, describeClockSync } from './clock-sync.js';
import { indexHost, type HostIndex, type WindowKind } from '../host/index.js';
import { attachGuest, type KnownVm } from '../host/vms.js';
import { KvmReplay } from '../kvm/replay.js';
import { loadBundle } from './inputs.js';
import { mergeTimeline, reorderFailures, type Timeline, type TimelineSource } from './merge.js';
import type { MergeConsumer, MergeDone } from './consumer.js';
import { planGuest, type GuestOverrides, type GuestPlan } from './plan.js';
import { cpuCount, openSource, type OpenSource, type SourceSpec } from './source.js';
import { detectFormat, readHead } from '../parsers/detect.js';
import { textHeadCpus } from '../parsers/ftrace-text.js';
import { buffersWithEvents, openTraceDat, pickBuffer } from '../parsers/trace-dat/index.js';
import { parseThreadsMode } from '../parsers/ftrace-text-thread.js';
import { Validator } from './validate.js';
import { estimateUnmapped, RECORD_NEXT_TIME, settleByEvidence } from './estimate/for-plan.js';

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
  /**
   * False when the run will not stream the host's events (`check`: validation reads the index
   * alone); the index pass then reports the host's unparsable lines, which the merge otherwise does.
   */
  hostStream?: boolean;
  /** Bytes of host blocks the index pass may keep so the merge need not read the host again (default host/retain.ts HOST_KEEP_BYTES). */
  hostKeepBytes?: number;
  /** Guest events validation lists per vCPU, of those outside and of those not checkable (default DEFAULT_LISTED). */
  listEvents?: number;
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
  /** The host index (undefined without a host). */
  index: HostIndex | undefined;
  tscKhz: number | undefined;
  tscKhzFrom: string;
  windowKind: WindowKind;
  diags: Diagnostics;
  /** Notes about the inputs (clock assumptions, disagreements between sources). */
  notes: string[];
  /** Readers opened ahead of the merge, by spec (taken over by runMerge). */
  opened: Map<SourceSpec, OpenSource>;
  /** Every file the merge reads: trace files and the bundles' meta.json (no output may be one of them). */
  inputs: string[];
  /** The host's sources replayed from the blocks the index pass kept (taken over by runMerge), when they fit its budget. */
  hostReplay: OpenSource[] | undefined;
  /** Events held per source to restore order (the index followed the same order). */
  window: number | undefined;
  /** Whether runMerge streams the host's events (see MergeRequest.hostStream). */
  hostStream: boolean;
  /** See MergeRequest.listEvents. */
  listEvents: number | undefined;
}

/** Gathers inputs, indexes the host and plans the mapping; throws UserErrors for impossible merges. */
export async function prepareMerge(req: MergeRequest): Promise<PreparedMerge> {
  const diags = new Diagnostics(req.strict ?? false);
  const notes: string[] = [];
  const host: SourceSpec[] = [];
  const guestGroups: SourceSpec[][] = [];
  const metaFiles: string[] = [];
  for (const dir of req.bundles) {
    const b = await loadBundle(dir);
    metaFiles.push(b.metaFile);
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
  // Each guest has a clock of its own: only the host's trace puts two of them on one timeline.
  if (!host.length && guestGroups.length > 1)
    throw new UserError(
      `no host trace given for ${guestGroups.length} guest inputs (${guestGroups.map((g) => g[0].file).join(', ')}): guests are put on one timeline through their host's trace — give the host bundle (or --host FILE)`,
    );
  if (!host.length && guestGroups.length)
    notes.push('no host trace given: guest events are shown on their own clock, unvalidated');
  // Formats, and trace.dat metadata: its options may carry the mapping (TIME_SHIFT, GUEST, TRACEID).
  for (const spec of [...host, ...guestGroups.flat()]) {
    spec.format ??= await detectFormat(spec.file);
    if (spec.format === 'ftrace-text') spec.textCpus = textHeadCpus((await readHead(spec.file)).toString('utf8'));
    if (spec.format === 'trace-dat') {
      const t = openTraceDat(spec.file, diags);
      t.close();
      spec.dat = t;
      const read = pickBuffer(t, spec.buffer);
      const left = buffersWithEvents(t).filter((b) => b !== read);
      if (left.length) notes.push(`${spec.file}: merged its buffer ${bufferName(read.name)} only; skipped ${left.length} other buffer(s) with events: ${left.map((b) => bufferName(b.name)).join(', ')}`);
    }
  }
  // Bare trace.dat guests take the name the host's GUEST option gives them; where it gives none,
  // the name trace-cmd wrote the guest's file under (`trace-NAME.dat`, as `record -A NAME` does).
  for (const g of guestGroups)
    for (const s of g) {
      if (s.meta || req.guestName || !s.dat) continue;
      const paired = host[0]?.dat?.options.guests.find((x) => x.traceId === s.dat?.options.traceId);
      const fromFile = /trace-([^/]+)\.dat$/.exec(basename(s.file))?.[1];
      if (paired?.name) s.machine = paired.name;
      else if (fromFile) {
        s.machine = fromFile;
        notes.push(`${s.file}: guest named ${fromFile} after its file name (trace-cmd's trace-NAME.dat)${paired ? "; the host's GUEST option names none" : ''}`);
      }
    }
  for (const g of guestGroups)
    for (const s of g)
      if (!s.clock && s.format === 'ftrace-text') notes.push(`${s.file}: trace clock not recorded; integer timestamps are read as the guest's TSC (say --guest-clock to be explicit)`);
  for (const s of host)
    if (!s.clock && s.format === 'ftrace-text') notes.push(`${s.file}: trace clock not recorded; integer timestamps are read as the host's TSC, seconds as a time clock (say --host-clock to be explicit)`);

  assignParseThreads([...host, ...guestGroups.flat()]);
  // The guests' readers open now: a large file's parser thread reads ahead while the host is
  // indexed, and the merge takes the readers over (see runMerge).
  const opened = new Map<SourceSpec, OpenSource>();
  try {
    if (host.length) for (const s of guestGroups.flat()) if (s.format === 'ftrace-text') opened.set(s, await openSource(s, diags));
    const inputs = [...metaFiles, ...[...host, ...guestGroups.flat()].map((s) => s.file)];
    return { ...(await planMerge(req, host, guestGroups, opened, diags, notes)), inputs };
  } catch (e) {
    for (const o of opened.values()) await o.close();
    throw e;
  }
}

/** A trace.dat buffer's name as the report gives it (the top-level buffer has none). */
const bufferName = (name: string): string => (name === '' ? 'top' : `"${name}"`);

/** The VMs the inputs name before the host is read: bundle metadata, a trace.dat's GUEST option, --vcpu-thread. */
function knownVms(host: SourceSpec[], over: GuestOverrides): KnownVm[] {
  const vms: KnownVm[] = [];
  for (const s of host) {
    for (const vm of s.meta?.vms ?? []) vms.push({ name: vm.name, qemuPid: vm.qemuPid, vcpus: new Map(vm.vcpus.map((c) => [c.vcpu, c.tid])), from: 'host bundle' });
    for (const g of s.dat?.options.guests ?? [])
      vms.push({ name: g.name || undefined, id: '0x' + g.traceId.toString(16).toUpperCase(), vcpus: g.vcpuToPid, from: 'trace.dat GUEST option' });
  }
  if (over.vcpuThreads?.size) vms.push({ vcpus: over.vcpuThreads, from: '--vcpu-thread' });
  return vms;
}

/**
 * The host threads of the vCPUs a guest has, by its plan: those a fact names (debugfs, a GUEST
 * option, --vcpu-thread), and those of its CPUs when its CPU count is known. (A thread the plan
 * took from kvm_entry alone may be another VM's, seen running a vCPU of the same index.)
 */
function guestThreads(g: SourceSpec, plan: GuestPlan): number[] {
  const cpus = cpuCount(g);
  const own = new Set(cpus ? Array.from({ length: cpus }, (_, c) => plan.cpuToVcpu(c)) : []);
  const stated = new Set(['debugfs (bundle)', 'trace.dat GUEST option', '--vcpu-thread']);
  return [...plan.vcpus.values()].filter((v) => v.tid !== undefined && (own.has(v.vcpu) || stated.has(v.tidFrom))).map((v) => v.tid!);
}

/** The rest of {@link prepareMerge}: the host index, each guest's plan, the TSC frequency. */
async function planMerge(
  req: MergeRequest,
  host: SourceSpec[],
  guestGroups: SourceSpec[][],
  opened: Map<SourceSpec, OpenSource>,
  diags: Diagnostics,
  notes: string[],
): Promise<Omit<PreparedMerge, 'inputs'>> {
  // The host is read once for the index, which keeps its blocks for the merge when they fit a budget
  // (host/retain.ts); the host's bad lines are reported once: by the index pass when the merge will
  // not read the host again, else by the merge pass.
  const hostStream = req.hostStream !== false;
  const indexDiags = new Diagnostics(req.strict ?? false);
  const indexed = host.length
    ? await indexHost(host, { diags: indexDiags, vms: knownVms(host, req.overrides), window: req.window, keep: hostStream ? req.hostKeepBytes : 0 })
    : undefined;
  const index = indexed?.index;
  if (indexed && (!hostStream || indexed.replay)) diags.absorb(indexDiags);
  if (index && index.events === 0) notes.push(`the host trace ${host[0].file} has no events: nothing can be checked`);
  const guests: MergeGuest[] = [];
  for (const g of guestGroups) if (host.length) guests.push({ specs: g, plan: await planOne(req, host, index!, g, diags) });
  for (const g of guests) if (g.plan) attachGuest(index!.vms, g.specs[0].machine, guestThreads(g.specs[0], g.plan));
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
  if (index?.unit === 'ns') {
    // A host traced with a time clock: the timeline is in ns, i.e. "cycles" of a 1 GHz clock.
    if (guestGroups.length) throw new UserError(`the host trace ${host[0].file} uses a time clock (ns): mapping guests needs the host traced with x86-tsc`);
    tscKhz = 1_000_000;
    tscKhzFrom = 'timestamps in ns (time clock)';
  }
  if (req.tscKhz && metaKhz && req.tscKhz !== metaKhz) notes.push(`--tsc-khz ${req.tscKhz} differs from the bundle's ${metaKhz}; using ${req.tscKhz}`);
  const windowKind: WindowKind = index?.kind ?? 'none';
  for (const g of guestOnly) guests.push({ specs: g, plan: undefined });
  return { host, guests, index, tscKhz, tscKhzFrom, windowKind, diags, notes, opened, hostReplay: indexed?.replay, window: req.window, hostStream, listEvents: req.listEvents };
}

/**
 * One guest's plan: the sources' mappings; an estimate for the vCPUs none states; for a time-clock
 * guest, its clock → TSC fit through its markers; then the evidence settles what the sources
 * disagree on and pairs guest CPUs with vCPUs where nothing else does.
 */
async function planOne(req: MergeRequest, host: SourceSpec[], index: HostIndex, g: SourceSpec[], diags: Diagnostics): Promise<GuestPlan> {
  let over = req.overrides;
  let plan = planGuest(host[0], index, g[0], over);
  // A guest traced with a time clock goes to its TSC through its kvmsync markers first.
  const timeClock = g.some((s) => s.clock !== undefined && clockUnit(s.clock) === 'ns');
  // No source states some vCPU's offset: estimate it from the traces (a pass over both), or say why not.
  const why: string[] = [];
  if (plan.unmapped.size && over.tscOffset === undefined && !timeClock) {
    const est = await estimateUnmapped(index, g[0], plan, diags);
    why.push(...est.failures);
    if (est.estimated.size) plan = planGuest(host[0], index, g[0], (over = { ...over, estimated: est.estimated }));
  }
  if (plan.vcpus.size === 0)
    throw new UserError(
      `no TSC mapping for guest ${g[0].file}: no debugfs snapshot, no kvm_write_tsc_offset event, no TIME_SHIFT and no --tsc-offset, and the traces do not pin it down${why.length ? ` (${why.join('; ')})` : ''} — ${RECORD_NEXT_TIME}`,
    );
  const quiet = (): Diagnostics => new Diagnostics(req.strict ?? false, 0);
  if (timeClock) {
    plan.clockSync = new Map();
    for (const spec of g) plan.clockSync.set(spec.file, await clockSyncFor(spec, quiet()));
  }
  // The passes below read inputs the merge reads again: their bad lines are reported by the merge.
  plan = await settleByEvidence(host, index, g, plan, over, quiet());
  for (const w of why) plan.notes.push(`no estimate for ${w}`);
  for (const spec of g) {
    const cs = plan.clockSync?.get(spec.file);
    if (!cs) continue;
    const d = describeClockSync(spec, cs, plan.cpuToVcpu);
    plan.notes.push(...d.notes);
    plan.warnings.push(...d.warnings);
  }
  return plan;
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
  p.hostReplay = undefined;
}

/**
 * Runs a prepared merge: streams every batch to the consumers (merge/consumer.ts), after the
 * validator, and returns the validation. Each batch carries the KVM-run segments that start at its
 * host events (`batch.kvm`). Without the host stream (`p.hostStream` false) only the guests are
 * merged, on the host's timeline.
 */
export async function runMerge(p: PreparedMerge, consumers: MergeConsumer[], window?: number): Promise<MergeDone> {
  const sources: TimelineSource[] = [];
  const plans: (GuestPlan | undefined)[] = [];
  const validator = new Validator(
    p.index,
    p.tscKhz,
    (m) => {
      for (const c of consumers) c.syncPoint?.(m);
    },
    p.listEvents,
  );
  let timeline: Timeline | undefined;
  let started = false;
  let events = 0;
  const withHost = p.hostStream || !p.index;
  try {
    const replayed = p.hostReplay;
    p.hostReplay = undefined;
    if (withHost)
      for (const [i, spec] of p.host.entries()) {
        sources.push({ role: 'host', machine: spec.machine, open: replayed?.[i] ?? (await openSource(spec, p.diags)) });
        plans.push(undefined);
      }
    const replay = withHost && p.index ? new KvmReplay(p.index, sources.length) : undefined;
    for (const g of p.guests)
      for (const spec of g.specs) {
        const open = p.opened.get(spec) ?? (await openSource(spec, p.diags));
        p.opened.delete(spec);
        sources.push({ role: 'guest', machine: spec.machine, open, plan: g.plan });
        plans.push(g.plan);
      }
    for await (const batch of mergeTimeline(sources, {
      diags: p.diags,
      window: window ?? p.window,
      base: withHost ? undefined : p.index!.base,
      onTimeline: (tl) => void (timeline = tl),
    })) {
      if (replay) batch.kvm = replay.mark(batch.src, batch.n);
      // The timeline is known before the first batch; consumers start here so their errors propagate.
      if (!started) {
        started = true;
        validator.begin(timeline!, plans);
        for (const c of consumers) await c.begin?.(timeline!, plans);
      }
      events += batch.n;
      validator.batch(batch);
      for (const c of consumers) await c.batch(batch);
    }
  } finally {
    // Every reader ends, also one the merge never pulled from (its parser thread stops), and one
    // opened ahead that an error kept from being taken over.
    for (const s of sources) await s.open.close();
    await releaseMerge(p);
  }
  if (!started) {
    const skipped = p.diags.brief();
    throw new UserError(`the inputs hold no events (${sources.map((s) => s.open.spec.file).join(', ')})${skipped ? ` — ${skipped} —` : ':'} nothing to merge`);
  }
  const result = validator.end();
  // Events beyond the reorder window leave the output out of time order: the verdict says so (for
  // a host this merge did not read, as the index pass found them).
  const late = [...(withHost ? [] : (p.index?.lateFailures ?? [])), ...(timeline ? reorderFailures(timeline) : [])];
  if (late.length) {
    result.failures.push(...late);
    result.ok = false;
  }
  const done: MergeDone = { result, timeline: timeline!, events };
  for (const c of consumers) await c.end?.(done);
  return done;
}
