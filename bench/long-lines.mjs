// One very long line (`npm run bench`, also runnable alone): a real event line of the x86-tsc
// fixture with its body grown to 16, 32 and 64 MB. No trace event line is longer than a page, so
// kvmtrace reports such a line (file, line, length) and skips it without assembling it; reading
// past it (the reader and parser the merge uses) and `merge --text` must take time in proportion
// to the line's length, and memory that does not grow with it: the ratio of each time to the size
// before's is ~2 when the work is linear (it was ~4 when every chunk recopied the line: 8, 16,
// 32 MB took 2.3, 8.8, 35 s), and peak RSS stays flat. The parse is timed inside its process
// (start-up excluded); the merge is the whole command, start-up included, as a user meets it.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { measureRuns, shebangFlags, table } from './lib.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SIZES_MB = [16, 32, 64];
const work = mkdtempSync(join(tmpdir(), 'kvmtrace-bench-long-'));

/** Writes the fixture with its first tracing_mark_write body grown by `mb` MB; returns the file's size in bytes. */
function writeLong(file, mb) {
  const lines = readFileSync(join(ROOT, 'fixtures', 'ftrace-text', 'x86tsc-trace.txt'), 'latin1').split('\n');
  const i = lines.findIndex((l) => l.includes('tracing_mark_write: '));
  const fd = openSync(file, 'w');
  let size = writeSync(fd, lines.slice(0, i + 1).join('\n') + ' ');
  const x = Buffer.alloc(1 << 20, 'x');
  for (let k = 0; k < mb; k++) size += writeSync(fd, x);
  size += writeSync(fd, '\n' + lines.slice(i + 1).join('\n'));
  closeSync(fd);
  return size;
}

/** Best and median of the parse seconds parse-only.mjs reports (start-up excluded), and the peak RSS. */
function parseRuns(file) {
  const secs = [];
  let rssMb = 0;
  for (let i = 0; i < RUNS; i++) {
    const m = measureRuns(1, undefined, process.execPath, [join(ROOT, 'bench', 'parse-only.mjs'), file]);
    secs.push(JSON.parse(m.stderr.trim().split('\n').pop()).parseSecs);
    rssMb = Math.max(rssMb, m.rssMb);
  }
  secs.sort((a, b) => a - b);
  return { best: secs[0], median: secs[secs.length >> 1], rssMb };
}

try {
  const rows = [['line', 'what is timed', 'best s', 'median s', 'MB/s, best', 'time ÷ previous size', 'peak RSS MB']];
  const prev = {};
  for (const mb of SIZES_MB) {
    const f = join(work, `long-${mb}.txt`);
    const bytes = writeLong(f, mb);
    const out = join(work, 'out.txt');
    const runs = {
      'parse (reader + parser, in process)': parseRuns(f),
      'kvmtrace merge → text (whole command)': measureRuns(RUNS, () => rmSync(out, { force: true }), process.execPath, [
        ...shebangFlags(CLI), CLI, 'merge', '--host', f, '--host-clock', 'x86-tsc', '-q', '--text', out,
      ]),
    };
    for (const [tool, m] of Object.entries(runs)) {
      const ratio = prev[tool] ? (m.best / prev[tool]).toFixed(2) : '';
      prev[tool] = m.best;
      rows.push([`${mb} MB`, tool, m.best.toFixed(3), m.median.toFixed(3), (bytes / 2 ** 20 / m.best).toFixed(0), ratio, m.rssMb.toFixed(0)]);
    }
    rmSync(f, { force: true });
    rmSync(out, { force: true });
  }
  console.log(`\n## one very long line (ftrace text; best and median of ${RUNS} runs; the file is the line plus ~100 kB of other events)\n`);
  table(rows);
} finally {
  rmSync(work, { recursive: true, force: true });
}
