/**
 * The tracing-overhead benchmark (`kvmtrace bench overhead`): builds native/probench, runs its
 * plain modes, then its trace_marker mode in a tracefs instance of its own, then its uprobe modes
 * with uprobes it appends to uprobe_events (`>>`, never `>`, which would wipe everyone's) and
 * removes again — only its own. Counts from the instance's ring buffer prove each probe fired.
 */
import { execFile } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { UserError } from '../model/errors.js';
import { elfSymbolOffsets } from './probench-elf.js';

const run = promisify(execFile);

/** probench's modes, in table order. */
export type ProbenchMode = 'empty' | 'rdtsc' | 'getpid' | 'marker' | 'uprobe' | 'uprobe-xol' | 'uprobe-args';

/** One `probench mode=…` line: ns per call, best and median of the rounds. */
export interface ProbenchResult {
  mode: ProbenchMode;
  iterations: number;
  rounds: number;
  bestNs: number;
  medianNs: number;
}

/** The functions probench calls in its uprobe modes. */
export const UPROBE_TARGETS = {
  uprobe: 'probench_uprobe_target',
  'uprobe-xol': 'probench_uprobe_xol_target',
  'uprobe-args': 'probench_uprobe_args_target',
} as const;

const EVENT_NAMES: Record<keyof typeof UPROBE_TARGETS, string> = { uprobe: 'hit', 'uprobe-xol': 'hit_xol', 'uprobe-args': 'hit_args' };

/** Parses probench's stdout; a UserError for any other line (it prints nothing else). */
export function parseProbenchOutput(text: string): ProbenchResult[] {
  const out: ProbenchResult[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (!line) continue;
    const m = /^probench mode=(\S+) iterations=(\d+) rounds=(\d+) best_ns=([\d.]+) median_ns=([\d.]+)$/.exec(line);
    if (!m) throw new UserError(`probench output line ${i + 1}: expected "probench mode=… iterations=… rounds=… best_ns=… median_ns=…", found "${line}"`);
    out.push({ mode: m[1] as ProbenchMode, iterations: Number(m[2]), rounds: Number(m[3]), bestNs: Number(m[4]), medianNs: Number(m[5]) });
  }
  return out;
}

/** The package's native/ folder (found upward from this module, in src/ and dist/ alike). */
export function nativeDir(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(d, 'native', 'probench.c'))) return join(d, 'native');
    d = dirname(d);
  }
  throw new UserError('cannot find the native/ folder of this kvmtrace installation (native/probench.c)');
}

/** Builds probench with the native Makefile (its pattern rule) and returns the binary's path. */
export async function buildProbench(): Promise<string> {
  const dir = nativeDir();
  try {
    await run('make', ['-s', '-C', dir, 'build/probench']);
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new UserError(`cannot build probench (make -C ${dir} build/probench): ${(err.stderr || err.message).trim().split('\n').slice(-3).join(' ')}`);
  }
  return join(dir, 'build', 'probench');
}

/** The tracefs mount point (tracefs, or debugfs's tracing folder). */
export function tracefsRoot(): string {
  for (const d of ['/sys/kernel/tracing', '/sys/kernel/debug/tracing']) if (existsSync(join(d, 'uprobe_events'))) return d;
  throw new UserError('no tracefs with uprobe_events at /sys/kernel/tracing or /sys/kernel/debug/tracing (mount tracefs; needs CONFIG_UPROBE_EVENTS)');
}

/** Events written into an instance's ring buffer so far (entries + overrun over all CPUs). */
export function instanceEventCount(instanceDir: string): number {
  let n = 0;
  for (const cpu of readdirSync(join(instanceDir, 'per_cpu'))) {
    const stats = readFileSync(join(instanceDir, 'per_cpu', cpu, 'stats'), 'utf8');
    n += Number(/^entries: (\d+)/m.exec(stats)?.[1] ?? 0) + Number(/^overrun: (\d+)/m.exec(stats)?.[1] ?? 0);
  }
  return n;
}

/** What one bench run measured and set up. */
export interface OverheadReport {
  binary: string;
  results: ProbenchResult[];
  /** The uprobe definitions it appended (and removed afterwards). */
  uprobes: string[];
  /** Events its instance recorded per traced mode: calls made must equal events recorded. */
  recorded: { mode: ProbenchMode; calls: number; events: number }[];
  instance: string;
}

/** Options of a bench run. */
export interface OverheadOptions {
  iterations?: number;
  rounds?: number;
  /** Called before each step, for progress output. */
  step?: (what: string) => void;
}

/**
 * Runs the whole benchmark. Needs root and tracefs. Everything it creates (instance, uprobes) is
 * removed in `finally`, also after an error or Ctrl-C.
 */
export async function runOverheadBench(o: OverheadOptions = {}): Promise<OverheadReport> {
  const n = o.iterations ?? 100_000;
  const rounds = o.rounds ?? 7;
  const step = o.step ?? (() => undefined);
  const tracefs = tracefsRoot();
  step('building native/probench');
  const binary = await buildProbench();
  const syms = elfSymbolOffsets(binary, Object.values(UPROBE_TARGETS));
  const probench = async (modes: ProbenchMode[], extra: string[] = []): Promise<ProbenchResult[]> => {
    try {
      const r = await run(binary, ['-n', String(n), '-r', String(rounds), ...extra, ...modes]);
      return parseProbenchOutput(r.stdout);
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      if (err instanceof UserError) throw err;
      throw new UserError(`probench ${modes.join(' ')} failed: ${(err.stderr || err.message).trim()}`);
    }
  };

  step('empty call, rdtsc, getpid');
  const results = await probench(['empty', 'rdtsc', 'getpid']);

  const tag = `kvmtrace_probench_${process.pid}`;
  const instance = join(tracefs, 'instances', `kvmtrace-probench-${process.pid}`);
  const events = Object.entries(UPROBE_TARGETS).map(([mode, fn]) => {
    const event = EVENT_NAMES[mode as keyof typeof UPROBE_TARGETS];
    const off = `0x${syms.get(fn)!.fileOffset.toString(16)}`;
    const fetch = mode === 'uprobe-args' ? ' a=%di:s64 b=%si:s64 s=+0(%dx):string' : '';
    return { mode: mode as ProbenchMode, event, def: `p:${tag}/${event} ${binary}:${off}${fetch}` };
  });
  const added: string[] = [];
  let made = false;
  const cleanup = (): void => {
    for (const e of events) {
      const en = join(instance, 'events', tag, e.event, 'enable');
      if (existsSync(en)) writeFileSync(en, '0');
    }
    // Remove only our own definitions, one `-:` line each, appended.
    for (const e of events.filter((x) => added.includes(x.def))) appendFileSync(join(tracefs, 'uprobe_events'), `-:${tag}/${e.event}\n`);
    added.length = 0;
    if (made && existsSync(instance)) rmdirSync(instance);
    made = false;
  };
  // Clean up, then let the signal take its default course (the handler was `once`): the shell
  // sees the process ended by SIGINT/SIGTERM, and no exit code is decided here.
  const onSignal = (sig: NodeJS.Signals): void => {
    cleanup();
    process.kill(process.pid, sig);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const recorded: OverheadReport['recorded'] = [];
  try {
    try {
      mkdirSync(instance);
    } catch (err) {
      throw new UserError(`cannot create the tracefs instance ${instance}: ${(err as Error).message} (bench overhead needs root)`);
    }
    made = true;
    step(`trace_marker write (instance ${instance})`);
    let before = instanceEventCount(instance);
    results.push(...(await probench(['marker'], ['-m', join(instance, 'trace_marker')])));
    // probench makes n/10+1 warm-up calls, then rounds × n measured ones.
    const calls = Math.floor(n / 10) + 1 + rounds * n;
    recorded.push({ mode: 'marker', calls, events: instanceEventCount(instance) - before });

    step('uprobes');
    for (const e of events) {
      try {
        appendFileSync(join(tracefs, 'uprobe_events'), e.def + '\n');
      } catch (err) {
        throw new UserError(`cannot add the uprobe "${e.def}" to ${join(tracefs, 'uprobe_events')}: ${(err as Error).message}`);
      }
      added.push(e.def);
    }
    for (const e of events) {
      writeFileSync(join(instance, 'events', tag, e.event, 'enable'), '1');
      before = instanceEventCount(instance);
      results.push(...(await probench([e.mode])));
      recorded.push({ mode: e.mode, calls, events: instanceEventCount(instance) - before });
    }
    return { binary, results, uprobes: events.map((e) => e.def), recorded, instance };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    cleanup();
  }
}
