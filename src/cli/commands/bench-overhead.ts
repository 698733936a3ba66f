/**
 * `kvmtrace bench overhead`: what tracing costs per event on this machine — an empty call, rdtsc,
 * getpid, a trace_marker write, a uprobe hit, a uprobe with fetched arguments — beside the figures
 * of the 2013 recipe this method comes from.
 */
import type { Command } from 'commander';
import { UserError } from '../../model/errors.js';
import { runOverheadBench, type OverheadReport, type ProbenchMode } from '../../capture/probench.js';

const ROWS: { mode: ProbenchMode; what: string; recipe2013Us?: number }[] = [
  { mode: 'empty', what: 'empty function call' },
  { mode: 'rdtsc', what: 'rdtsc' },
  { mode: 'getpid', what: 'getpid system call' },
  { mode: 'marker', what: 'trace_marker write (16 B)', recipe2013Us: 1.7 },
  { mode: 'uprobe', what: 'uprobe hit (push %rbp, emulated)', recipe2013Us: 4.3 },
  { mode: 'uprobe-xol', what: 'uprobe hit (lea, single-stepped)' },
  { mode: 'uprobe-args', what: 'uprobe hit + 3 args fetched' },
];

/** The table `bench overhead` prints: µs per call, median and best round, beside the 2013 figures. */
export function overheadTable(r: OverheadReport): string {
  const us = (ns: number): string => (ns / 1000).toFixed(3);
  const lines = [['measured', 'median µs', 'best µs', '2013 recipe µs']];
  for (const row of ROWS) {
    const m = r.results.find((x) => x.mode === row.mode);
    if (!m) continue;
    lines.push([row.what, us(m.medianNs), us(m.bestNs), row.recipe2013Us === undefined ? '—' : row.recipe2013Us.toFixed(1)]);
  }
  const w = lines[0].map((_, c) => Math.max(...lines.map((l) => l[c].length)));
  return lines.map((l) => l.map((cell, c) => (c === 0 ? cell.padEnd(w[c]) : cell.padStart(w[c]))).join('  ')).join('\n') + '\n';
}

/** Registers `kvmtrace bench overhead`. */
export function register(program: Command): void {
  const bench = program.command('bench').summary('benchmarks of this machine').description('Benchmarks of this machine.');
  bench
    .command('overhead')
    .summary('cost per event of a trace_marker write and of uprobes (root)')
    .description('Measure the cost per event of a trace_marker write and of uprobes (native/probench), in a tracefs instance of its own (as root).')
    .option('-n, --iterations <n>', 'calls per round', '100000')
    .option('-r, --rounds <n>', 'rounds per measurement (median and best are shown)', '7')
    .option('-q, --quiet', 'print only the table and warnings (no steps)')
    .action(async (o: { iterations: string; rounds: string; quiet?: boolean }) => {
      const iterations = Number(o.iterations);
      const rounds = Number(o.rounds);
      if (!Number.isSafeInteger(iterations) || iterations < 1) throw new UserError(`--iterations ${o.iterations}: expected a positive integer`);
      if (!Number.isSafeInteger(rounds) || rounds < 1 || rounds > 101) throw new UserError(`--rounds ${o.rounds}: expected 1 to 101`);
      const r = await runOverheadBench({ iterations, rounds, step: o.quiet ? () => undefined : (s) => void process.stderr.write(`kvmtrace: ${s}…\n`) });
      process.stdout.write(overheadTable(r));
      for (const x of r.recorded) {
        if (x.events !== x.calls) process.stderr.write(`warning: ${x.mode}: ${x.calls} calls but ${x.events} events recorded in the instance\n`);
      }
      if (!o.quiet) process.stderr.write(`kvmtrace: uprobes used and removed again: ${r.uprobes.join(' | ')}\n`);
    });
}
