// Shared helpers of the benchmarks: timing a child process with its peak RSS (GNU time), and
// printing rows.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

/** Runs a command (argv, or a shell string when `shell`), stdout to a file or /dev/null; returns seconds and peak RSS in MB. */
function measure(cmd, args, { shell = false, env = undefined } = {}) {
  const t0 = process.hrtime.bigint();
  const argv = shell ? ['bash', '-c', cmd] : [cmd, ...args];
  const opts = { encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'ignore', 'pipe'], env: env ? { ...process.env, ...env } : undefined };
  const r = TIME ? spawnSync(TIME, ['-f', '__RSS_KB__ %M', ...argv], opts) : spawnSync(argv[0], argv.slice(1), opts);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const m = /__RSS_KB__ (\d+)/.exec(r.stderr ?? '');
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr}`);
  return { secs, rssMb: m ? Number(m[1]) / 1024 : NaN, stderr: (r.stderr ?? '').replace(/__RSS_KB__ \d+\n?/, '') };
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
  const secs = all.map((m) => m.secs).sort((a, b) => a - b);
  return { best: secs[0], median: secs[secs.length >> 1], rssMb: Math.max(...all.map((m) => m.rssMb)), stderr: all[0].stderr };
}

/**
 * `measureRuns` for several commands at once, their runs alternating (a, b, a, b, …), so that a
 * change in the machine's load during the bench weighs on each alike. `jobs`: [before, cmd, args, opts].
 */
export function measureAlternating(runs, jobs) {
  const all = jobs.map(() => []);
  for (let i = 0; i < runs; i++)
    jobs.forEach(([before, cmd, args, opts], j) => {
      before?.();
      all[j].push(measure(cmd, args, opts));
    });
  return all.map((ms) => {
    const secs = ms.map((m) => m.secs).sort((a, b) => a - b);
    return { best: secs[0], median: secs[secs.length >> 1], rssMb: Math.max(...ms.map((m) => m.rssMb)), stderr: ms[0].stderr };
  });
}

export const fmt = (n) => Math.round(n).toLocaleString('en-US');

/** Prints a table of rows (arrays of cells), first row the header. */
export function table(rows) {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  for (const r of rows) console.log(r.map((c, i) => (i === 0 ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join('  '));
}
