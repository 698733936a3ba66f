// kvmtrace benchmarks (`npm run bench`): throughput and peak RSS on large inputs replayed from real
// captures, each beside a real peer run on the same input in the same run.
//  1. ftrace text: parse (lines/s); merge + Chrome JSON export, merge + Perfetto (.pftrace, timed
//     alternately with the JSON, with the bytes of both) and merge + text (events/s), against a
//     hand-made awk | sort -m pipeline doing the same merge to text; peak RSS at growing sizes.
//  2. one very long line (16, 32, 64 MB): bench/long-lines.mjs (time, MB/s, ratio per doubling).
//  3. trace.dat: bench/tracedat.mjs (kvmtrace report vs trace-cmd report), when present.
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmt, measureAlternating, shebangFlags, table } from './lib.mjs';
import { uncompress } from './dat-uncompress.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
// The flags the kvmtrace command runs with (its shebang, and the npm scripts): see src/cli/main.ts.
const NODE_FLAGS = shebangFlags(CLI);
const REF = join(ROOT, '..', 'shared', 'external', 'masterarbeit', 'reference');
const work = mkdtempSync(join(tmpdir(), 'kvmtrace-bench-'));
const COPIES = Number(process.env.BENCH_COPIES ?? 20);

/**
 * docA as trace.dat → merged Chrome JSON, beside `trace-cmd report` of the same pair (its merged
 * text), alternately. Debian's trace-cmd reads no zlib, so both read the pair rewritten
 * uncompressed (bench/dat-uncompress.mjs; trace-cmd then prints exactly upstream's reference).
 */
function benchTraceDatMerge() {
  const M = join(REF, '..');
  if (!existsSync(join(M, 'docA-host-trace.dat'))) return console.log(`skipped the trace.dat merge bench: the real recordings are not at ${M}`);
  if (spawnSync('trace-cmd', ['--help']).error) return console.log('skipped the trace.dat merge bench: trace-cmd is not installed');
  const H = join(work, 'docA-host.dat');
  const G = join(work, 'docA-guest.dat');
  uncompress(join(M, 'docA-host-trace.dat'), H);
  uncompress(join(M, 'docA-guest-trace-Salamander4.dat'), G);
  const out = join(work, 'dat.json');
  const RUNS = Number(process.env.BENCH_RUNS ?? 3);
  const [k, tc] = measureAlternating(RUNS, [
    { before: () => rmSync(out, { force: true }), cmd: process.execPath, args: [...NODE_FLAGS, CLI, 'merge', '--host', H, '--guest', G, '-q', '-o', out] },
    { cmd: `trace-cmd report -i ${H} -i ${G} > ${join(work, 'tc.txt')}`, args: [], opts: { shell: true } },
  ]);
  const events = 101_750; // 11,721 host + 90,029 guest records (trace-cmd's merged report: these and its 10 header lines)
  console.log(`\n## trace.dat: docA pair (host + guest, ${fmt(events)} events) merged (best and median of ${RUNS} alternating runs)\n`);
  table([
    ['tool', 'best s', 'median s', 'events/s, best', 'peak RSS MB'],
    ['kvmtrace merge → Chrome JSON (mapping from the files, validated)', k.best.toFixed(2), k.median.toFixed(2), fmt(events / k.best), k.rssMb.toFixed(0)],
    ['trace-cmd report -i host -i guest → text', tc.best.toFixed(2), tc.median.toFixed(2), fmt(events / tc.best), tc.rssMb.toFixed(0)],
  ]);
}

try {
  // The real docA pair (Intel VMX host + guest) as raw-TSC ftrace text.
  const hostSrc = join(work, 'docA-host.txt');
  const guestSrc = join(work, 'docA-guest.txt');
  if (!existsSync(join(REF, 'docA-host-trace.dat.report-rawts.txt.xz'))) {
    console.log(`skipped the ftrace-text bench: the real recordings are not at ${REF}`);
  } else {
    spawnSync('sh', ['-c', `xz -dc ${REF}/docA-host-trace.dat.report-rawts.txt.xz > ${hostSrc}; xz -dc ${REF}/docA-guest-trace-Salamander4.dat.report-rawts.txt.xz > ${guestSrc}`]);
    // Sizes: the main input, a quarter of it, and larger ones (up to BENCH_MAX copies, default 4× the
    // main input) that only merge to JSON and Perfetto, to show peak RSS stays flat.
    const max = Number(process.env.BENCH_MAX ?? 4 * COPIES);
    const sizes = [Math.max(1, Math.round(COPIES / 4)), COPIES];
    for (let c = 2 * COPIES; c <= max; c *= 2) sizes.push(c);
    const ratios = [];
    const byteLines = [];
    const RUNS = Number(process.env.BENCH_RUNS ?? 3);
    const rows = [['input', 'tool', 'events', 'best s', 'median s', 'events/s (lines/s), best', 'CPU s, best', 'peak RSS MB']];
    const row = (label, tool, n, m, unit = '') =>
      rows.push([label, tool, fmt(n), m.best.toFixed(2), m.median.toFixed(2), unit ? `(${fmt(n / m.best)} ${unit})` : fmt(n / m.best), m.cpuSecs.toFixed(2), m.rssMb.toFixed(0)]);
    for (const copies of sizes) {
      const dir = join(work, `x${copies}`);
      spawnSync('mkdir', ['-p', dir]);
      const gen = spawnSync(process.execPath, [join(ROOT, 'bench', 'gen-replay.mjs'), hostSrc, guestSrc, String(copies), dir, '63430235715905'], { encoding: 'utf8' });
      const { events } = JSON.parse(gen.stdout);
      const H = join(dir, 'host.txt');
      const G = join(dir, 'guest.txt');
      const label = `docA ×${copies}`;
      // Every run writes a new file: replacing an existing one adds the kernel's freeing of the old one.
      const fresh = (f) => () => rmSync(f, { force: true });
      const flags = ['--host', H, '--guest', G, '--host-clock', 'x86-tsc', '--guest-clock', 'x86-tsc', '--tsc-offset', '-63430235715905', '--vcpu-thread', '0=483882', '--tsc-khz', '2918400', '-q'];
      const json = { name: 'kvmtrace merge → Chrome JSON', before: fresh(join(dir, 'out.json')), cmd: process.execPath, args: [...NODE_FLAGS, CLI, 'merge', ...flags, '-o', join(dir, 'out.json')] };
      const pft = { name: 'kvmtrace merge → Perfetto .pftrace', before: fresh(join(dir, 'out.pftrace')), cmd: process.execPath, args: [...NODE_FLAGS, CLI, 'merge', ...flags, '-o', join(dir, 'out.pftrace')] };
      const main = copies === COPIES;
      const tasks = [json, pft];
      if (main) {
        tasks.unshift({ name: 'kvmtrace parse (ftrace text)', cmd: process.execPath, args: [join(ROOT, 'bench', 'parse-only.mjs'), H, G], unit: 'lines/s' });
        tasks.push({ name: 'kvmtrace merge → text', before: fresh(join(dir, 'out.txt')), cmd: process.execPath, args: [...NODE_FLAGS, CLI, 'merge', ...flags, '--text', join(dir, 'out.txt')] });
        // The same merge on one thread: the guest file parsed in-thread, as on a one-core machine.
        tasks.push({ ...json, name: 'kvmtrace merge → Chrome JSON, one thread', opts: { env: { KVMTRACE_PARSE_THREADS: 'never' } } });
        // The peer: the merge as people do it by hand — awk maps guest TSC to host TSC (offset only,
        // in doubles), sort -m merges the two sorted streams by that key.
        const awk = `awk '{ if (match($0, /\\] ?[0-9]+:/)) { t = substr($0, RSTART, RLENGTH); gsub(/[^0-9]/, "", t); printf "%.0f\\t%s\\n", t + OFF, $0 } }'`;
        tasks.push({
          name: 'peer: awk | sort -m → text',
          before: fresh(join(dir, 'peer.txt')),
          cmd: `sort -m -s -n -k1,1 <(${awk.replace('OFF', '0')} ${H}) <(${awk.replace('OFF', '63430235715905')} ${G}) > ${join(dir, 'peer.txt')}`,
          args: [],
          opts: { shell: true },
        });
      }
      const ms = measureAlternating(RUNS, tasks);
      tasks.forEach((t, k) => {
        const n = t.unit ? JSON.parse(ms[k].stderr.trim().split('\n').pop()).lines : events;
        row(label, t.name, n, ms[k], t.unit);
      });
      const at = (name) => ms[tasks.findIndex((t) => t.name === name)];
      const [j, p] = [at(json.name), at(pft.name)];
      if (main) {
        const peer = ms[tasks.length - 1];
        ratios.push(`${label}: Chrome JSON ${fmt(events / j.best)} events/s at best = ${(peer.best / j.best).toFixed(2)}× the awk | sort peer (${fmt(events / peer.best)} events/s)`);
        // What bounds the time on this machine: a command that needs C CPU-seconds cannot finish in
        // less than C / cores seconds, however its work is spread; idle CPU means it could be spread better.
        const cores = availableParallelism();
        const cpu = (name, m) => `${name} used ${m.cpuSecs.toFixed(2)} CPU-s in ${m.best.toFixed(2)} s (at least ${(m.cpuSecs / cores).toFixed(2)} s on ${cores} cores); the machine was idle ${m.idleSecs.toFixed(2)} CPU-s, stolen ${m.stealSecs.toFixed(2)}`;
        ratios.push(`${label}, best runs: ${cpu('Chrome JSON', j)}; ${cpu('the peer', peer)}`);
      }
      const jsonBytes = statSync(join(dir, 'out.json')).size;
      const pftBytes = statSync(join(dir, 'out.pftrace')).size;
      byteLines.push(`${label}: .pftrace ${fmt(pftBytes)} bytes = ${(pftBytes / jsonBytes).toFixed(3)} of the JSON's ${fmt(jsonBytes)}; time ${(p.best / j.best).toFixed(2)}× the JSON's at best, ${(p.median / j.median).toFixed(2)}× at the median`);
      rmSync(dir, { recursive: true, force: true });
    }
    console.log(`\n## ftrace text: parse, merge + export (docA replayed; ${availableParallelism()} cores; best and median of ${RUNS} runs)\n`);
    table(rows);
    console.log('');
    for (const r of ratios) console.log(r);
    for (const l of byteLines) console.log(l);
  }
  spawnSync(process.execPath, [join(ROOT, 'bench', 'long-lines.mjs')], { stdio: 'inherit' });
  benchTraceDatMerge();
  const td = join(ROOT, 'bench', 'tracedat.mjs');
  if (existsSync(td)) {
    console.log('\n## trace.dat\n');
    spawnSync(process.execPath, [td], { stdio: 'inherit' });
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
