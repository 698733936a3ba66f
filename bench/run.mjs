// kvmtrace benchmarks (`npm run bench`): throughput and peak RSS on large inputs replayed from real
// captures, each beside a real peer run on the same input in the same run.
//  1. ftrace text: parse (lines/s); merge + Chrome JSON export, merge + Perfetto (.pftrace, timed
//     alternately with the JSON, with the bytes of both) and merge + text (events/s), against a
//     hand-made awk | sort -m pipeline doing the same merge to text; peak RSS at three input sizes.
//  2. trace.dat: bench/tracedat.mjs (kvmtrace report vs trace-cmd report), when present.
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmt, measureAlternating, measureRuns, table } from './lib.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
// The flags the kvmtrace command runs with (its shebang and the npm scripts): see src/cli/main.ts.
const NODE_FLAGS = ['--max-old-space-size=128'];
const REF = join(ROOT, '..', 'shared', 'external', 'masterarbeit', 'reference');
const work = mkdtempSync(join(tmpdir(), 'kvmtrace-bench-'));
const COPIES = Number(process.env.BENCH_COPIES ?? 20);

try {
  // The real docA pair (Intel VMX host + guest) as raw-TSC ftrace text.
  const hostSrc = join(work, 'docA-host.txt');
  const guestSrc = join(work, 'docA-guest.txt');
  if (!existsSync(join(REF, 'docA-host-trace.dat.report-rawts.txt.xz'))) {
    console.log(`skipped the ftrace-text bench: the real recordings are not at ${REF}`);
  } else {
    spawnSync('sh', ['-c', `xz -dc ${REF}/docA-host-trace.dat.report-rawts.txt.xz > ${hostSrc}; xz -dc ${REF}/docA-guest-trace-Salamander4.dat.report-rawts.txt.xz > ${guestSrc}`]);
    // Three sizes: the last (twice the main input) only merges to JSON and Perfetto, to show peak RSS stays flat.
    const sizes = [Math.max(1, Math.round(COPIES / 4)), COPIES, 2 * COPIES];
    const RUNS = Number(process.env.BENCH_RUNS ?? 3);
    const rows = [['input', 'tool', 'events', 'best s', 'median s', 'events/s (lines/s), best', 'peak RSS MB']];
    const byteLines = [];
    const row = (label, tool, n, m, unit = '') =>
      rows.push([label, tool, fmt(n), m.best.toFixed(2), m.median.toFixed(2), unit ? `(${fmt(n / m.best)} ${unit})` : fmt(n / m.best), m.rssMb.toFixed(0)]);
    for (const copies of sizes) {
      const dir = join(work, `x${copies}`);
      spawnSync('mkdir', ['-p', dir]);
      const gen = spawnSync(process.execPath, [join(ROOT, 'bench', 'gen-replay.mjs'), hostSrc, guestSrc, String(copies), dir, '63430235715905'], { encoding: 'utf8' });
      const { events, hostEvents } = JSON.parse(gen.stdout);
      const H = join(dir, 'host.txt');
      const G = join(dir, 'guest.txt');
      const label = `docA ×${copies}`;
      // Every run writes a new file: replacing an existing one adds the kernel's freeing of the old one.
      const fresh = (f) => () => rmSync(f, { force: true });
      const flags = ['--host', H, '--guest', G, '--host-clock', 'x86-tsc', '--guest-clock', 'x86-tsc', '--tsc-offset', '-63430235715905', '--vcpu-thread', '0=483882', '--tsc-khz', '2918400', '-q'];
      const full = copies !== 2 * COPIES;
      if (full) {
        const parse = measureRuns(RUNS, undefined, process.execPath, [join(ROOT, 'bench', 'parse-only.mjs'), H, G]);
        const lines = JSON.parse(parse.stderr.trim().split('\n').pop()).lines;
        row(label, 'kvmtrace parse (ftrace text)', lines, parse, 'lines/s');
      }
      const [json, pft] = measureAlternating(RUNS, [
        [fresh(join(dir, 'out.json')), process.execPath, [...NODE_FLAGS, CLI, 'merge', ...flags, '-o', join(dir, 'out.json')]],
        [fresh(join(dir, 'out.pftrace')), process.execPath, [...NODE_FLAGS, CLI, 'merge', ...flags, '-o', join(dir, 'out.pftrace')]],
      ]);
      row(label, 'kvmtrace merge → Chrome JSON', events, json);
      row(label, 'kvmtrace merge → Perfetto .pftrace', events, pft);
      const jsonBytes = statSync(join(dir, 'out.json')).size;
      const pftBytes = statSync(join(dir, 'out.pftrace')).size;
      byteLines.push(`${label}: .pftrace ${fmt(pftBytes)} bytes = ${(pftBytes / jsonBytes).toFixed(3)} of the JSON's ${fmt(jsonBytes)}; time ${(pft.best / json.best).toFixed(2)}× the JSON's at best, ${(pft.median / json.median).toFixed(2)}× at the median`);
      if (!full) {
        rmSync(dir, { recursive: true, force: true });
        continue;
      }
      const text = measureRuns(RUNS, fresh(join(dir, 'out.txt')), process.execPath, [...NODE_FLAGS, CLI, 'merge', ...flags, '--text', join(dir, 'out.txt')]);
      row(label, 'kvmtrace merge → text', events, text);
      if (copies === COPIES) {
        // The same merge on one thread: the guest file parsed in-thread, as on a one-core machine.
        const one = measureRuns(RUNS, fresh(join(dir, 'out.json')), process.execPath, [...NODE_FLAGS, CLI, 'merge', ...flags, '-o', join(dir, 'out.json')], {
          env: { KVMTRACE_PARSE_THREADS: 'never' },
        });
        row(label, 'kvmtrace merge → Chrome JSON, one thread', events, one);
      }
      // The peer: the merge as people do it by hand — awk maps guest TSC to host TSC (offset only,
      // in doubles), sort -m merges the two sorted streams by that key.
      const awk = `awk '{ if (match($0, /\\] ?[0-9]+:/)) { t = substr($0, RSTART, RLENGTH); gsub(/[^0-9]/, "", t); printf "%.0f\\t%s\\n", t + OFF, $0 } }'`;
      const peer = measureRuns(
        RUNS,
        fresh(join(dir, 'peer.txt')),
        `sort -m -s -n -k1,1 <(${awk.replace('OFF', '0')} ${H}) <(${awk.replace('OFF', '63430235715905')} ${G}) > ${join(dir, 'peer.txt')}`,
        [],
        { shell: true },
      );
      row(label, 'peer: awk | sort -m → text', events, peer);
      void hostEvents;
      rmSync(dir, { recursive: true, force: true });
    }
    console.log(`\n## ftrace text: parse, merge + export (docA replayed; ${availableParallelism()} cores; best and median of ${RUNS} runs)\n`);
    table(rows);
    console.log('');
    for (const l of byteLines) console.log(l);
  }
  const td = join(ROOT, 'bench', 'tracedat.mjs');
  if (existsSync(td)) {
    console.log('\n## trace.dat\n');
    spawnSync(process.execPath, [td], { stdio: 'inherit' });
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
