// Shared helpers of the benchmarks: timing a child process with its peak RSS and CPU time (GNU
// time) and the machine's idle CPU meanwhile, and printing rows.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

export const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

/** This machine's CPU time so far, all CPUs, in seconds: [busy (user, nice, system, irq, softirq), idle (idle, iowait), steal]. */
function machineCpu() {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
    const hz = 100; // USER_HZ: /proc/stat counts in 1/100 s on Linux
    return [(f[0] + f[1] + f[2] + f[5] + f[6]) / hz, (f[3] + f[4]) / hz, (f[7] ?? 0) / hz];
  } catch {
    return [NaN, NaN, NaN];
  }
}

/**
 * Runs a command (argv, or a shell string when `shell`), stdout to a file or /dev/null; returns
 * seconds, peak RSS in MB, the CPU seconds the command used (user + system, all its threads and
 * children: GNU time), and the machine's idle and stolen CPU seconds meanwhile (/proc/stat).
 */
function measure(cmd, args, { shell = false, env = undefined } = {}) {
  const c0 = machineCpu();
  const t0 = process.hrtime.bigint();
  const argv = shell ? ['bash', '-c', cmd] : [cmd, ...args];
  const opts = { encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'ignore', 'pipe'], env: env ? { ...process.env, ...env } : undefined };
  const r = TIME ? spawnSync(TIME, ['-f', '__RSS_KB__ %M %U %S', ...argv], opts) : spawnSync(argv[0], argv.slice(1), opts);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const c1 = machineCpu();
  const m = /__RSS_KB__ (\d+) ([\d.]+) ([\d.]+)/.exec(r.stderr ?? '');
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr}`);
  return {
    secs,
    rssMb: m ? Number(m[1]) / 1024 : NaN,
    cpuSecs: m ? Number(m[2]) + Number(m[3]) : NaN,
    idleSecs: c1[1] - c0[1],
    stealSecs: c1[2] - c0[2],
    stderr: (r.stderr ?? '').replace(/__RSS_KB__ .*\n?/, ''),
  };
}

/** Stats of a task's runs: best and median seconds, the highest peak RSS, and the CPU, idle and steal seconds of its best run. */
function stats(ms) {
  const bySecs = [...ms].sort((a, b) => a.secs - b.secs);
  const best = bySecs[0];
  return {
    best: best.secs,
    median: bySecs[bySecs.length >> 1].secs,
    rssMb: Math.max(...ms.map((m) => m.rssMb)),
    cpuSecs: best.cpuSecs,
    idleSecs: best.idleSecs,
    stealSecs: best.stealSecs,
    stderr: ms[0].stderr,
  };
}

/**
 * Runs `measure` `runs` times (calling `before` ahead of each run, e.g. to remove an output so
 * every run writes a new file); returns the best and the median seconds and the highest peak RSS.
 * This machine's timings vary by 10–20 % from run to run, so one run says little.
 */
export function measureRuns(runs, before, cmd, args, opts) {
  const all = [];
  for (let i = 0; i < runs; i++) {
    before?.();
    all.push(measure(cmd, args, opts));
  }
  return stats(all);
}

/**
 * Runs several tasks ({ before?, cmd, args, opts }) alternately, `runs` rounds (task 1, 2, …, then
 * again), so that the load of this shared machine falls on all of them alike; returns each task's
 * stats as measureRuns does.
 */
export function measureAlternating(runs, tasks) {
  const all = tasks.map(() => []);
  for (let i = 0; i < runs; i++)
    tasks.forEach((t, k) => {
      t.before?.();
      all[k].push(measure(t.cmd, t.args, t.opts));
    });
  return all.map(stats);
}

/** The node flags of a script's shebang (`#!/usr/bin/env -S node FLAGS…`): the CLI runs with them, so its benches do too. */
export function shebangFlags(script) {
  const first = readFileSync(script, 'utf8').split('\n', 1)[0];
  const m = /\bnode\b(.*)$/.exec(first);
  return m ? m[1].trim().split(/\s+/).filter(Boolean) : [];
}

export const fmt = (n) => Math.round(n).toLocaleString('en-US');

/** Prints a table of rows (arrays of cells), first row the header. */
export function table(rows) {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  for (const r of rows) console.log(r.map((c, i) => (i === 0 ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join('  '));
}
