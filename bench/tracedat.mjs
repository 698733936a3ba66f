#!/usr/bin/env node
/**
 * trace.dat benchmark: `kvmtrace report` against `trace-cmd report` on the same file, in the same
 * run, output to /dev/null. The file is recorded here (never committed): sched + irq + raw_syscalls
 * of a syscall-heavy load, in an ftrace instance of its own (removed afterwards), until it holds at
 * least 2 M events. Each tool runs `ROUNDS` times alternately; the best wall time counts (this
 * machine is shared). Peak RSS comes from /usr/bin/time. kvmtrace runs with the node flags of
 * its shebang, as the installed command does.
 *
 * Runnable alone (`node bench/tracedat.mjs [--compression none|zstd] [--events N]`, after
 * `npm run build`) or from bench/run.mjs through {@link benchTraceDat}.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, rmdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { shebangFlags } from './lib.mjs';

const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const TRACEFS = '/sys/kernel/tracing';

/** Why the benchmark cannot run here, or undefined. */
export function traceDatBenchMissing() {
  if (process.getuid?.() !== 0) return 'needs root (records with trace-cmd into a tracefs instance)';
  if (spawnSync('trace-cmd', ['--help']).error) return 'trace-cmd is not installed (apt-get install -y trace-cmd)';
  if (!existsSync(join(TRACEFS, 'instances'))) return `no tracefs at ${TRACEFS}`;
  if (!existsSync('/usr/bin/time')) return '/usr/bin/time is missing (apt-get install -y time)';
  if (!existsSync(CLI)) return `${CLI} is missing (npm run build)`;
  return undefined;
}

/** Records a trace.dat of at least `minEvents` events; returns its path and event count. */
function record(dir, compression, minEvents) {
  const inst = `kvmtd_bench_${process.pid}`;
  const file = join(dir, `bench-${compression}.dat`);
  let count = 500_000;
  try {
    for (let attempt = 0; attempt < 4; attempt++) {
      const args = ['record', '-k', '-d', '-q', '-b', '20000', '-o', file, '--compression', compression];
      args.push('-B', inst, '-e', 'sched', '-e', 'irq', '-e', 'raw_syscalls');
      // dd with 1-byte blocks: two syscalls per byte, plus the scheduler and interrupts around it.
      args.push('dd', 'if=/dev/zero', 'of=/dev/null', 'bs=1', `count=${count}`);
      execFileSync('trace-cmd', args, { stdio: 'ignore' });
      const events = countEvents(file);
      if (events >= minEvents) return { file, events };
      count = Math.ceil((count * minEvents * 1.1) / Math.max(events, 1));
    }
    throw new Error(`could not record ${minEvents} events`);
  } finally {
    try {
      rmdirSync(join(TRACEFS, 'instances', inst));
    } catch {
      /* already gone */
    }
  }
}

/** Events in a file: lines of `kvmtrace report` minus the `cpus=` line. */
function countEvents(file) {
  const r = spawnSync(process.execPath, [CLI, 'report', file], { maxBuffer: 1 << 30, encoding: 'latin1' });
  if (r.status !== 0) throw new Error(`kvmtrace report failed: ${r.stderr}`);
  let n = 0;
  for (let i = r.stdout.indexOf('\n'); i >= 0; i = r.stdout.indexOf('\n', i + 1)) n++;
  return n - 1;
}

/** Runs a command with stdout to /dev/null under /usr/bin/time: wall seconds, CPU seconds, peak RSS (KiB). */
function timed(cmd, args) {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %U %S %M', cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const last = r.stderr.trim().split('\n').pop() ?? '';
  const [wall, user, sys, rss] = last.split(' ').map(Number);
  if (r.status !== 0 || !Number.isFinite(wall)) throw new Error(`${cmd} failed: ${r.stderr}`);
  return { wall, cpu: user + sys, rssKiB: rss };
}

/** Byte-compares both tools' outputs once (the benchmark is only meaningful if they agree). */
function sameOutput(file, dir) {
  const a = join(dir, 'kvmtrace.txt');
  const b = join(dir, 'trace-cmd.txt');
  execFileSync('sh', ['-c', `"${process.execPath}" "${CLI}" report "${file}" > "${a}" && trace-cmd report "${file}" > "${b}" 2>/dev/null`]);
  const same = spawnSync('cmp', ['-s', a, b]).status === 0;
  rmSync(a);
  rmSync(b);
  return same;
}

/**
 * Records the file(s) and times both tools. Returns one result per compression.
 * @param {{ compressions?: string[], minEvents?: number, rounds?: number, log?: (s: string) => void }} o
 */
export async function benchTraceDat(o = {}) {
  const missing = traceDatBenchMissing();
  if (missing) return { skipped: missing };
  const log = o.log ?? ((s) => process.stderr.write(s + '\n'));
  const rounds = o.rounds ?? 3;
  const dir = mkdtempSync(join(tmpdir(), 'kvmtrace-bench-'));
  const results = [];
  try {
    for (const compression of o.compressions ?? ['zstd', 'none']) {
      log(`trace.dat bench: recording (${compression})…`);
      const { file, events } = record(dir, compression, o.minEvents ?? 2_000_000);
      const identical = sameOutput(file, dir);
      const best = { kvmtrace: undefined, tracecmd: undefined };
      const flags = shebangFlags(CLI);
      for (let i = 0; i < rounds; i++) {
        const k = timed(process.execPath, [...flags, CLI, 'report', file]);
        const t = timed('trace-cmd', ['report', file]);
        if (!best.kvmtrace || k.wall < best.kvmtrace.wall) best.kvmtrace = k;
        if (!best.tracecmd || t.wall < best.tracecmd.wall) best.tracecmd = t;
      }
      const r = {
        compression,
        fileBytes: statSync(file).size,
        events,
        identical,
        kvmtrace: { ...best.kvmtrace, eventsPerSec: Math.round(events / best.kvmtrace.wall) },
        tracecmd: { ...best.tracecmd, eventsPerSec: Math.round(events / best.tracecmd.wall) },
      };
      r.ratio = +(r.kvmtrace.eventsPerSec / r.tracecmd.eventsPerSec).toFixed(2);
      results.push(r);
      rmSync(file);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { results };
}

/** The results as a small table. */
export function formatTraceDatBench(res) {
  if (res.skipped) return `trace.dat report: skipped (${res.skipped})\n`;
  const lines = ['trace.dat report (best of runs, output to /dev/null)'];
  for (const r of res.results) {
    lines.push(
      `  ${r.compression.padEnd(5)} ${(r.events / 1e6).toFixed(2)} M events, ${(r.fileBytes / 1e6).toFixed(1)} MB, outputs ${r.identical ? 'identical' : 'DIFFER'}`,
      `    kvmtrace report : ${r.kvmtrace.wall.toFixed(2)} s wall, ${r.kvmtrace.cpu.toFixed(2)} s CPU, ${(r.kvmtrace.eventsPerSec / 1e6).toFixed(2)} M events/s, peak RSS ${(r.kvmtrace.rssKiB / 1024).toFixed(0)} MiB`,
      `    trace-cmd report: ${r.tracecmd.wall.toFixed(2)} s wall, ${r.tracecmd.cpu.toFixed(2)} s CPU, ${(r.tracecmd.eventsPerSec / 1e6).toFixed(2)} M events/s, peak RSS ${(r.tracecmd.rssKiB / 1024).toFixed(0)} MiB`,
      `    ratio (events/s): ${r.ratio}×`,
    );
  }
  return lines.join('\n') + '\n';
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const argv = process.argv.slice(2);
  const opt = (name) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const compressions = opt('--compression') ? [opt('--compression')] : undefined;
  const minEvents = opt('--events') ? Number(opt('--events')) : undefined;
  const res = await benchTraceDat({ compressions, minEvents });
  process.stdout.write(formatTraceDatBench(res));
  if (!res.skipped && res.results.some((r) => !r.identical)) process.exitCode = 1;
}
