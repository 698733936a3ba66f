/**
 * `kvmtrace report` against `trace-cmd report`, line for line: the corpus recorded on this machine
 * with Debian's trace-cmd 3.1.6 (fixtures/tracedat, outputs committed next to each file) and the
 * real v7 zlib recordings of ../shared/external/masterarbeit (reference outputs by upstream 3.1.6).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Diagnostics } from '../src/model/diagnostics.js';
import { openTraceDat, reportChunks, type ReportOptions } from '../src/parsers/trace-dat/index.js';
import { kvmtrace, ROOT } from './helpers/cli.js';
import { externalMissing, MASTERARBEIT, reference } from './helpers/external.js';

const FIX = join(ROOT, 'fixtures', 'tracedat');

function report(file: string, o: ReportOptions): { text: string; diags: Diagnostics } {
  const diags = new Diagnostics();
  const t = openTraceDat(file, diags);
  try {
    return { text: [...reportChunks(t, o, diags)].join(''), diags };
  } finally {
    t.close();
  }
}

/** Compares two texts line by line; returns the number of differing lines and the first one. */
function compareLines(mine: string, ref: string): { lines: number; differing: number; first?: string } {
  const a = mine.split('\n');
  const b = ref.split('\n');
  let differing = 0;
  let first: string | undefined;
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) {
      differing++;
      first ??= `line ${i + 1}:\n  kvmtrace:  ${a[i]}\n  trace-cmd: ${b[i]}`;
    }
  }
  return { lines: b.length, differing, first };
}

const MODES: { suffix: string; o: ReportOptions; args: string }[] = [
  { suffix: 'report-t', o: { nsec: true, raw: false, rawTs: false }, args: '-t' },
  { suffix: 'report-tR', o: { nsec: true, raw: true, rawTs: false }, args: '-t -R' },
  { suffix: 'report', o: { nsec: false, raw: false, rawTs: false }, args: '' },
];

const corpus = readdirSync(FIX)
  .filter((f) => f.endsWith('.dat'))
  .map((f) => f.slice(0, -4));

describe('trace-cmd 3.1.6 corpus recorded on this machine', () => {
  it('has the versions, compressions, clocks and buffer layouts the issue asks for', () => {
    const seen = corpus.map((n) => {
      const t = openTraceDat(join(FIX, n + '.dat'), new Diagnostics());
      t.close();
      return { v: t.version, c: t.compression?.name ?? 'none', clock: t.options.traceClock, n: t.buffers.length };
    });
    expect(new Set(seen.map((s) => s.v))).toEqual(new Set([6, 7]));
    expect(new Set(seen.map((s) => s.c))).toEqual(new Set(['none', 'zstd']));
    expect(new Set(seen.map((s) => s.clock))).toEqual(new Set(['local', 'x86-tsc', 'mono', 'counter']));
    expect(Math.max(...seen.map((s) => s.n))).toBeGreaterThanOrEqual(3);
  });

  for (const name of corpus)
    for (const m of MODES)
      it(`${name}: report ${m.args} is trace-cmd's, line for line`, () => {
        const ref = readFileSync(join(FIX, `${name}.${m.suffix}.txt`), 'latin1');
        const { text, diags } = report(join(FIX, name + '.dat'), m.o);
        const c = compareLines(text, ref);
        expect(c.lines).toBeGreaterThan(2);
        expect(c.differing, c.first).toBe(0);
        expect(diags.count).toBe(0);
      });

  it('trace_marker_raw records (raw_data): the CLI prints "# ID BYTES…" and -R\'s run-on buf= strings as trace-cmd does', () => {
    for (const m of MODES.slice(0, 2)) {
      // Read as bytes (latin1): the payloads are not UTF-8.
      const r = spawnSync(process.execPath, [join(ROOT, 'dist', 'cli', 'main.js'), 'report', ...m.args.split(' '), join(FIX, 'v7-raw-marker.dat')], { encoding: 'latin1' });
      expect(r.status).toBe(0);
      const ref = readFileSync(join(FIX, `v7-raw-marker.${m.suffix}.txt`), 'latin1');
      expect(ref.match(/raw_data: /g)).toHaveLength(128);
      const c = compareLines(r.stdout, ref);
      expect(c.differing, c.first).toBe(0);
    }
  });

  it('the CLI streams the same text and exits 0', () => {
    const r = kvmtrace(['report', '-t', '-R', join(FIX, 'v7-two-buffers.dat')]);
    expect(r.status).toBe(0);
    const c = compareLines(r.stdout, readFileSync(join(FIX, 'v7-two-buffers.report-tR.txt'), 'latin1'));
    expect(c.differing, c.first).toBe(0);
  });
});

const REAL = [
  'docA-host-trace',
  'docA-guest-trace-Salamander4',
  'salB-host-trace',
  'salB-guest-trace-Salamander4',
  'docC-host-only-trace',
  'lts-trace',
  'salD-host-trace',
  'sigE-taskset-guest',
  'sigF-test-guest',
  'sigG-vapic-guest',
];

describe.skipIf(externalMissing)('real v7 zlib recordings (masterarbeit), against upstream trace-cmd', () => {
  if (externalMissing) console.log(`skipped: ${externalMissing}`);
  for (const name of REAL)
    it(`${name}: report -t matches`, { timeout: 60_000 }, () => {
      const ref = readFileSync(reference(`${name}.dat.report-t.txt`), 'latin1');
      const { text } = report(join(MASTERARBEIT, name + '.dat'), { nsec: true, raw: false, rawTs: false });
      const c = compareLines(text, ref);
      expect(c.differing, c.first).toBe(0);
    });
  for (const name of ['docA-host-trace', 'docA-guest-trace-Salamander4'])
    it(`${name}: report --raw-ts matches`, { timeout: 60_000 }, () => {
      const ref = readFileSync(reference(`${name}.dat.report-rawts.txt`), 'latin1');
      const { text } = report(join(MASTERARBEIT, name + '.dat'), { nsec: false, raw: false, rawTs: true });
      const c = compareLines(text, ref);
      expect(c.differing, c.first).toBe(0);
    });
});
