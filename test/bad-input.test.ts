/**
 * Bad input, as users feed it, to every command that reads input (report, merge, check, exits,
 * latency, view --print, inspect), through the built CLI (`dist/cli/main.js`). The inputs are
 * damaged copies of the real fixtures — trace.dat files (cut at many offsets, bytes flipped in
 * the header, section headers, options, compressed chunks and pages, BUFFER page sizes 0/1/3/8),
 * ftrace text and the pvm-1vcpu bundles (cut, NUL bytes, CRLF, a 64 MiB line, damaged
 * meta.json), systemtap output, a recorded sysfs tree, and ../shared/external/masterarbeit when
 * present — plus folders and FIFOs given as files, /proc files, a full stdout, an output that is
 * an input, and SIGINT/SIGTERM mid-merge. Seeded (SEED: the same inputs every run) and bounded in
 * time (RUN_TIMEOUT_MS per run; two runs at a time).
 *
 * The rule, for every run:
 * 1. It ends by itself within its time bound (else: a hang), not by a signal.
 * 2. stderr holds no stack frame ("    at …"), no "internal error", nothing Node prints for an
 *    uncaught error, and no control byte but tab and newline (no raw NUL echoed from the input).
 * 3. Exit status:
 *    - 2: the input cannot be used. stderr is exactly one line, `kvmtrace: …`, naming the file (or
 *      folder, or standard output) and what is wrong with it.
 *    - 0 or 1: the command completed, and stderr names the damaged file and says what it left out
 *      ("unparsable", "skipped", "cut off", …): report exits 1 after skipping damaged pages; merge,
 *      exits, latency, view list unparsable records and exit 0; check exits 1 for a FAILED verdict.
 *      Two kinds of case relax this: 'maybe-valid' damage (a flipped byte inside a value, which no
 *      reader can tell from a real one) may also give 0 without a word; a 'valid' input (CRLF line
 *      ends, a cut at a line end) must give 0 with nothing skipped.
 *    - anything else (70 internal error, 134 abort, …) fails. A case marked 'error' accepts 2 only.
 * 4. Nothing is left behind or changed: each run writes into a folder of its own that already holds
 *    an earlier output at the path it is asked to write, and another file. Afterwards the folder
 *    holds exactly what it held, byte for byte, except the outputs asked for when the run exited 0
 *    or 1: no hidden temporary file, no empty folder. Inputs are hashed before and after.
 * A merge interrupted by SIGINT or SIGTERM ends by that signal, or with status 128+N (the shell's
 * convention), 1 or 2; with at most one line on stderr; and rule 4 holds.
 *
 * Known defects of issue 12 fixed on other branches are marked in the case names (`#N`, or the
 * name of one of its smaller defects: CUT_OFF, NUL_ECHO, OFFSET_WORDING); those cases fail until the fixes are
 * merged.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants, copyFileSync, existsSync, cpSync, linkSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, closeSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/cli.js';
import { externalMissing, MASTERARBEIT } from './helpers/external.js';
import { rng } from './helpers/rng.js';
import { traceDatLayout, type Range } from './helpers/trace-dat-layout.js';
import { atLineStart, between, flipAt, flipIn, midLine, nulsAt, pick, toCrlf } from './helpers/damage.js';
import {
  crashProblems,
  leftoverProblems,
  offsetProblems,
  mkfifo,
  outcomeProblems,
  runBounded,
  snapshot,
  type Accept,
  type Run,
  type RunResult,
  type Snapshot,
} from './helpers/bad-input.js';

const SEED = 20261212;
/** A run that takes longer is a hang: normal runs here take 0.3–2 s; this leaves room for a loaded machine. */
const RUN_TIMEOUT_MS = 30_000;
const FIX = join(ROOT, 'fixtures');
const DAT = (name: string): Buffer => readFileSync(join(FIX, 'tracedat', name + '.dat'));
const PVM = join(FIX, 'pvm-1vcpu');
/** Three of issue 12's smaller defects (fixed on the parsers' branch), as the case names mark them. */
const CUT_OFF = 'cut-off final line';
const NUL_ECHO = 'NUL echoed';
const OFFSET_WORDING = 'options-offset wording';
/** A TSC frequency for bare files (the commands that print ns need one). */
const KHZ = '2596136';

/** Builds one run for an output folder of its own. */
type Maker = (out: string) => Run & { stdout?: number; before?: () => void; after?: () => void };

/** The earlier output each run's folder holds at the path the run is asked to write. */
const EARLIER = 'an earlier output, to be kept unless a run completes\n';

/** Runs the makers two at a time; returns every broken rule as "command: problem". */
async function exercise(dir: string, inDir: string, makers: Maker[], timeoutMs: number): Promise<string[]> {
  const inputsBefore = snapshot(inDir);
  const problems: string[] = [];
  const one = async (make: Maker, i: number): Promise<void> => {
    const out = join(dir, `out-${i}`);
    mkdirSync(out);
    writeFileSync(join(out, 'merged.txt'), EARLIER);
    writeFileSync(join(out, 'notes.txt'), 'not an output\n');
    const run = make(out);
    const before = snapshot(out);
    run.before?.();
    const r = await runBounded(run.args, { timeoutMs, stdout: run.stdout });
    run.after?.();
    const name = `${run.defect ? `[${run.defect}] ` : ''}kvmtrace ${run.args.map((a) => a.replace(dir + '/', '')).join(' ')}`;
    for (const p of [...outcomeProblems(run, r), ...leftoverProblems(out, before, snapshot(out), run, r)]) problems.push(`${name}: ${p}`);
  };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < makers.length) {
      const i = next++;
      await one(makers[i], i);
    }
  };
  await Promise.all([worker(), worker()]);
  const inputsAfter = snapshot(inDir);
  for (const [k, v] of inputsBefore) if (inputsAfter.get(k) !== v) problems.push(`input ${k} was changed or removed`);
  for (const k of inputsAfter.keys()) if (!inputsBefore.has(k)) problems.push(`${k} appeared among the inputs`);
  return problems;
}

/**
 * A test: `build` writes the damaged inputs into a fresh folder and returns the runs; all must
 * keep the rules. `outputs` may then check what the runs wrote (`out(i)`: run i's folder). The
 * folder is removed afterwards.
 */
function badInput(name: string, build: (inDir: string) => Maker[], timeoutMs = RUN_TIMEOUT_MS, outputs?: (out: (run: number) => string) => void): void {
  it(name, { timeout: 20 * 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvmtrace-bad-'));
    try {
      const inDir = join(dir, 'in');
      mkdirSync(inDir);
      const problems = await exercise(dir, inDir, build(inDir), timeoutMs);
      expect(problems).toEqual([]);
      outputs?.((run) => join(dir, `out-${run}`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

/** {@link badInput}, skipped when `run` is false (say why before calling). */
function badInputIf(run: boolean, ...a: Parameters<typeof badInput>): void {
  if (run) badInput(...a);
}

/** The outputs a merge run is asked for: text over the earlier output, a summary and JSON. */
function mergeOutputs(out: string): { args: string[]; outputs: string[] } {
  const outputs = [join(out, 'merged.txt'), join(out, 'summary.json'), join(out, 'merged.json')];
  return { args: ['--text', outputs[0], '--summary', outputs[1], '-o', outputs[2]], outputs };
}

type Cmd = 'report' | 'merge' | 'exits' | 'latency' | 'view' | 'check';

/** Runs of a command on a bare host file (trace.dat, ftrace text or stap output). */
function onHostFile(cmd: Exclude<Cmd, 'check'>, file: string, accept: Accept, defect?: string, reportFlags: string[] = []): Maker {
  const bare = ['--host', file, '--tsc-khz', KHZ];
  return (out) => {
    const base = { culprit: file, accept, defect };
    if (cmd === 'report') return { ...base, args: ['report', ...reportFlags, file] };
    if (cmd === 'merge') {
      const o = mergeOutputs(out);
      return { ...base, args: ['merge', ...bare, ...o.args], outputs: o.outputs };
    }
    if (cmd === 'exits') return { ...base, args: ['exits', ...bare] };
    if (cmd === 'latency') return { ...base, args: ['latency', ...bare, '--from', 'host:*', '--to', 'host:*', '--key', 'none'] };
    return { ...base, args: ['view', '--print', '--size', '100x20', ...bare] };
  };
}

/** Runs of a command on a host and a guest (bundle folders or bare files with their flags). */
function onPair(cmd: Exclude<Cmd, 'report'>, inputs: string[], culprit: string, accept: Accept, defect?: string): Maker {
  return (out) => {
    const base = { culprit, accept, defect };
    if (cmd === 'merge') {
      const o = mergeOutputs(out);
      return { ...base, args: ['merge', ...inputs, ...o.args], outputs: o.outputs };
    }
    if (cmd === 'check') return { ...base, args: ['check', ...inputs] };
    if (cmd === 'exits') return { ...base, args: ['exits', ...inputs] };
    if (cmd === 'latency') return { ...base, args: ['latency', ...inputs, '--from', 'host:kvm_pio', '--to', 'guest:marker'] };
    return { ...base, args: ['view', '--print', '--size', '100x20', ...inputs] };
  };
}

const HOST_CMDS = ['merge', 'exits', 'latency', 'view'] as const;
const PAIR_CMDS = ['merge', 'check', 'exits', 'latency', 'view'] as const;
/** The commands run next to a merge on each damaged bundle, in turn. */
const NEXT_TO_MERGE = ['check', 'exits', 'latency', 'view'] as const;

/** A copy of the pvm-1vcpu bundles in `inDir` (host/ and guest/). */
function copyPvm(inDir: string): { host: string; guest: string } {
  cpSync(PVM, inDir, { recursive: true });
  return { host: join(inDir, 'host'), guest: join(inDir, 'guest') };
}

describe('trace.dat cut at many offsets: report and one other command on each', () => {
  const r = rng(SEED);
  let k = 0;
  for (const name of ['v7-zstd-counter', 'v7-none-x86tsc', 'v6-x86tsc', 'v7-two-buffers']) {
    const orig = DAT(name);
    const l = traceDatLayout(orig);
    const data = l.pages.length ? l.pages : l.chunks.map((c) => c.data);
    const opt = pick(r, l.options);
    const cuts: [string, number][] = [
      ['in the magic', 7],
      ['in the header', l.header.end - 3],
      [l.version === 6 ? 'in the metadata' : 'in a section header', l.version === 6 ? between(r, l.metadata.start, l.metadata.end) : pick(r, l.sectionHeaders).start + 9],
      ['in an option', between(r, opt.start, opt.end)],
      ['in the first page or chunk', data[0].start + 100],
      ['at a page or chunk boundary', pick(r, data.slice(1)).start],
      ['in the last page or chunk', data[data.length - 1].end - 1],
      ['at random', between(r, 0, orig.length)],
    ];
    for (const [where, at] of cuts) {
      const cmd = name === 'v7-two-buffers' ? 'merge' : HOST_CMDS[k++ % HOST_CMDS.length];
      badInput(`${name} cut ${where} (byte ${at}): report, ${cmd}`, (inDir) => {
        const f = join(inDir, `${name}.dat`);
        writeFileSync(f, orig.subarray(0, at));
        return [onHostFile('report', f, 'damaged'), onHostFile(cmd, f, 'damaged')];
      });
    }
  }
  badInput('an empty file: report, merge', (inDir) => {
    const f = join(inDir, 'empty.dat');
    writeFileSync(f, '');
    return [onHostFile('report', f, 'error'), onHostFile('merge', f, 'error')];
  });
});

// #11: a damaged compressed chunk aborts the run (exit 2) instead of being skipped and listed.
describe('trace.dat with bytes flipped: report and one other command on each', () => {
  const r = rng(SEED + 1);
  type Layout = ReturnType<typeof traceDatLayout>;
  const sixteen = (x: Range): Range => ({ start: x.start, end: x.start + 16 });
  // Where a flipped byte must be noticed ('damaged', 'partial') and where it may pass as a value.
  const where: [string, string, (l: Layout) => Range[], Accept, string?][] = [
    // Every header byte is checked except the compression library's version text.
    ['v7-zstd-counter', 'the file header', (l) => [{ start: 0, end: l.compressionVersion!.start }, { start: l.compressionVersion!.end, end: l.header.end }], 'damaged'],
    ['v7-none-x86tsc', 'the file header', (l) => [l.header], 'damaged'],
    ['v6-x86tsc', 'the file header', (l) => [l.header], 'damaged'],
    // A section's id and flags (its description's string id is not used by any reader).
    ['v7-zstd-counter', 'the id or flags of a section header', (l) => l.sectionHeaders.map((x) => ({ start: x.start, end: x.start + 4 })), 'damaged'],
    ['v7-two-buffers', 'the id or flags of a section header', (l) => l.sectionHeaders.map((x) => ({ start: x.start, end: x.start + 4 })), 'damaged'],
    ['v6-x86tsc', 'the metadata', (l) => [l.metadata], 'maybe-valid'],
    ['v7-zstd-counter', 'an option', (l) => l.options, 'maybe-valid'],
    ['v7-two-buffers', 'an option', (l) => l.options, 'maybe-valid'],
    ['v7-none-x86tsc', 'an option', (l) => l.options, 'maybe-valid'],
    ['v6-x86tsc', 'an option', (l) => l.options, 'maybe-valid'],
    // Damaged data: the file's structure is whole, so every command completes and lists what it skipped.
    ['v7-zstd-counter', 'a chunk header', (l) => l.chunks.map((c) => c.header), 'partial', '#11'],
    ['v7-two-buffers', 'a chunk header', (l) => l.chunks.map((c) => c.header), 'partial', '#11'],
    ['v7-zstd-counter', 'compressed data', (l) => l.chunks.map((c) => c.data), 'maybe-partial', '#11'],
    ['v7-two-buffers', 'compressed data', (l) => l.chunks.map((c) => c.data), 'maybe-partial', '#11'],
    ['v7-kvm', 'compressed data', (l) => l.chunks.map((c) => c.data), 'maybe-partial', '#11'],
    ['v7-none-x86tsc', 'a page header', (l) => l.pages.map(sixteen), 'maybe-partial'],
    ['v6-x86tsc', 'a page header', (l) => l.pages.map(sixteen), 'maybe-partial'],
    ['v7-none-x86tsc', 'page data', (l) => l.pages, 'maybe-partial'],
    ['v6-x86tsc', 'page data', (l) => l.pages, 'maybe-partial'],
  ];
  let k = 0;
  let n = 0;
  for (const [name, what, ranges, accept, bugOf] of where)
    // Two samples where the damage must be noticed, one where it may pass.
    for (let sample = accept.startsWith('maybe') ? 1 : 0; sample < 2; sample++) {
      const orig = DAT(name);
      const l = traceDatLayout(orig);
      const choices = ranges(l);
      const at = Array.from({ length: 1 + Math.floor(r() * 3) }, () => {
        const range = pick(r, choices);
        return between(r, range.start, range.end);
      });
      const bytes = flipAt(orig, at);
      // A damaged next-options offset (in a DONE option) is shown as a place past the end
      // "(truncated file?)" until issue 12's smaller defect on that wording is fixed.
      const offsetField = (x: number): boolean => l.version === 7 && l.options.some((o) => o.id === 0 && x >= o.start && x < o.end);
      const defect = at.some(offsetField) ? OFFSET_WORDING : bugOf;
      // A file with two buffers: merge (which reads one, and says which) rather than an analysis.
      const cmd = name === 'v7-two-buffers' ? 'merge' : HOST_CMDS[k++ % HOST_CMDS.length];
      // Every other report prints raw fields (-R), through the other printers.
      const flags = n++ % 2 ? ['-t', '-R'] : [];
      badInput(`${name}: byte(s) ${at.join(', ')} flipped in ${what}: report${flags.map((x) => ' ' + x).join('')}, ${cmd}${defect ? ` (${defect})` : ''}`, (inDir) => {
        const f = join(inDir, `${name}.dat`);
        writeFileSync(f, bytes);
        // The file's length is whole: every place a message names lies inside it.
        const inside = (m: Maker): Maker => (out) => ({ ...m(out), also: (res) => offsetProblems(f, res.stderr) });
        return [inside(onHostFile('report', f, accept, defect, flags)), inside(onHostFile(cmd, f, accept, defect))];
      });
    }
});

// #1: page size 0 spins forever on compressed files and dies with an internal error on uncompressed
// ones; the sizes must be checked before use.
describe('trace.dat BUFFER page sizes 0, 1, 3, 8 (#1)', () => {
  for (const name of ['v7-none-x86tsc', 'v7-zstd-counter'])
    for (const size of [0, 1, 3, 8]) {
      badInput(`${name} with page size ${size}: report, merge, exits (#1)`, (inDir) => {
        const orig = DAT(name);
        const b = Buffer.from(orig);
        for (const at of traceDatLayout(orig).bufferPageSizeAt) b.writeUInt32LE(size, at);
        const f = join(inDir, `${name}.dat`);
        writeFileSync(f, b);
        return [onHostFile('report', f, 'damaged', '#1'), onHostFile('merge', f, 'damaged', '#1'), onHostFile('exits', f, 'damaged', '#1')];
      });
    }
});

describe('ftrace text in the pvm-1vcpu bundles: cut, NUL bytes, CRLF', () => {
  const r = rng(SEED + 2);
  const host = readFileSync(join(PVM, 'host', 'trace.txt'));
  const guest = readFileSync(join(PVM, 'guest', 'trace.txt'));
  let k = 0;
  const cuts: ['host' | 'guest', number, Accept][] = [
    ['host', midLine(host, r), 'damaged'],
    ['host', midLine(host, r, host.length - 2000), 'damaged'],
    ['host', atLineStart(host, r), 'valid'],
    ['guest', midLine(guest, r), 'damaged'],
    ['guest', midLine(guest, r, guest.length - 300), 'damaged'],
    ['guest', atLineStart(guest, r), 'valid'],
  ];
  for (const [side, at, accept] of cuts) {
    const cmd = NEXT_TO_MERGE[k++ % NEXT_TO_MERGE.length];
    // A cut-off last line is an event with a truncated field until issue 12's "cut-off final text line" is fixed.
    const defect = accept === 'valid' ? undefined : CUT_OFF;
    badInput(`${side}/trace.txt cut ${accept === 'valid' ? 'at a line end' : 'mid-line'} (byte ${at}): merge, ${cmd}${defect ? ` (${defect})` : ''}`, (inDir) => {
      const b = copyPvm(inDir);
      const f = join(b[side], 'trace.txt');
      writeFileSync(f, (side === 'host' ? host : guest).subarray(0, at));
      return [onPair('merge', [b.host, b.guest], f, accept, defect), onPair(cmd, [b.host, b.guest], f, accept, defect)];
    });
  }
  const nuls: ['host' | 'guest', string, (t: Buffer) => Buffer][] = [
    ['host', 'a NUL in a timestamp', (t) => nulsAt(t, t.indexOf(': ', midLine(t, r)) - 3, 1)],
    ['guest', 'a 4 KiB block of NULs', (t) => nulsAt(t, midLine(t, r), 4096)],
    ['host', '64 KiB of NULs at the end (a crashed machine)', (t) => Buffer.concat([t, Buffer.alloc(65536)])],
  ];
  for (const [side, what, damage] of nuls) {
    const cmd = NEXT_TO_MERGE[k++ % NEXT_TO_MERGE.length];
    badInput(`${side}/trace.txt with ${what}: merge, ${cmd}`, (inDir) => {
      const b = copyPvm(inDir);
      const f = join(b[side], 'trace.txt');
      writeFileSync(f, damage(side === 'host' ? host : guest));
      return [onPair('merge', [b.host, b.guest], f, 'damaged'), onPair(cmd, [b.host, b.guest], f, 'damaged')];
    });
  }
  badInput(
    'both bundles with CRLF line ends: every command, and the merge as with LF',
    (inDir) => {
      const b = copyPvm(inDir);
      writeFileSync(join(b.host, 'trace.txt'), toCrlf(host));
      writeFileSync(join(b.guest, 'trace.txt'), toCrlf(guest));
      const lf = onPair('merge', [join(PVM, 'host'), join(PVM, 'guest')], PVM, 'valid');
      return [lf, ...PAIR_CMDS.map((c) => onPair(c, [b.host, b.guest], b.host, 'valid'))];
    },
    RUN_TIMEOUT_MS,
    (out) => expect(readFileSync(join(out(1), 'merged.txt'), 'utf8')).toBe(readFileSync(join(out(0), 'merged.txt'), 'utf8')),
  );
});

// #12: events more than 1,024 out of order are listed as "unparsable" and the merge exits 0.
describe('events out of time order (#12)', () => {
  badInput('host/trace.txt with 3,000 lines moved 4,000 lines later: merge (#12)', (inDir) => {
    const b = copyPvm(inDir);
    const f = join(b.host, 'trace.txt');
    const lines = readFileSync(f, 'latin1').split(/(?<=\n)/);
    writeFileSync(f, [...lines.slice(0, 2000), ...lines.slice(5000, 9000), ...lines.slice(2000, 5000), ...lines.slice(9000)].join(''), 'latin1');
    // Said as what it is, and visible in the exit status (the merged text is not in time order).
    const also = (r: RunResult): string[] =>
      r.status === 1 && /out of (time )?order/.test(r.stderr) && !/unparsable/.test(r.stderr) ? [] : [`expected exit 1 and "out of order" (not "unparsable"): exit ${r.status}`];
    return [(out) => ({ ...onPair('merge', [b.host, b.guest], f, 'damaged', '#12')(out), also })];
  });
});

describe('ftrace text fixtures as bare files', () => {
  const r = rng(SEED + 3);
  let k = 0;
  for (const name of ['x86tsc-trace.txt', 'global-tgid-pipe.txt', 'mono-stack.txt', 'counter-trace.txt']) {
    const orig = readFileSync(join(FIX, 'ftrace-text', name));
    const at = midLine(orig, r);
    const cmd = HOST_CMDS[1 + (k++ % 3)];
    badInput(`${name} cut mid-line (byte ${at}): merge, ${cmd} (${CUT_OFF})`, (inDir) => {
      const f = join(inDir, name);
      writeFileSync(f, orig.subarray(0, at));
      return [onHostFile('merge', f, 'damaged', CUT_OFF), onHostFile(cmd, f, 'damaged', CUT_OFF)];
    });
  }
  badInput('x86tsc-trace.txt with CRLF line ends: merge, view', (inDir) => {
    const f = join(inDir, 'x86tsc-trace.txt');
    writeFileSync(f, toCrlf(readFileSync(join(FIX, 'ftrace-text', 'x86tsc-trace.txt'))));
    return [onHostFile('merge', f, 'valid'), onHostFile('view', f, 'valid')];
  });
  badInput('x86tsc-trace.txt with a NUL in its # header: merge', (inDir) => {
    const orig = readFileSync(join(FIX, 'ftrace-text', 'x86tsc-trace.txt'));
    const f = join(inDir, 'x86tsc-trace.txt');
    writeFileSync(f, nulsAt(orig, orig.indexOf('#') + 3, 1));
    return [onHostFile('merge', f, 'maybe-valid')];
  });
});

// #2: the text reader recopies and rescans the unfinished line on every chunk (quadratic).
describe('a 64 MiB line (#2)', () => {
  badInput(
    'host/trace.txt with a 64 MiB marker line in the middle: merge (#2)',
    (inDir) => {
      const b = copyPvm(inDir);
      const f = join(b.host, 'trace.txt');
      const host = readFileSync(f);
      const at = host.indexOf('\n', host.length >> 1) + 1;
      const line = Buffer.alloc(64 << 20, 'x');
      line.write('       CPU 0/KVM-26619   [000] ..... 6707086320063: tracing_mark_write: ');
      line[line.length - 1] = 10;
      writeFileSync(f, Buffer.concat([host.subarray(0, at), line, host.subarray(at)]));
      return [onPair('merge', [b.host, b.guest], f, 'maybe-valid', '#2')];
    },
    // Reading 64 MiB takes about a second when the reader is linear; a quadratic one takes minutes.
    45_000,
  );
});

describe('systemtap output', () => {
  const r = rng(SEED + 4);
  const orig = readFileSync(join(FIX, 'stap', 'guest-app.stap'));
  const cases: [string, () => Buffer, Accept, string?][] = [
    ['cut mid-line', () => orig.subarray(0, midLine(orig, r)), 'damaged'],
    ['cut mid-line', () => orig.subarray(0, midLine(orig, r)), 'damaged'],
    ['cut in its first line', () => orig.subarray(0, 20), 'damaged'],
    ['with a NUL in a TSC', () => nulsAt(orig, orig.indexOf('\t', midLine(orig, r)) - 2, 1), 'damaged', NUL_ECHO],
    ['with a 4 KiB block of NULs', () => nulsAt(orig, midLine(orig, r), 4096), 'damaged'],
    ['with CRLF line ends', () => toCrlf(orig), 'valid'],
    ['with bytes flipped', () => flipIn(orig, r, { start: 0, end: orig.length }, 3), 'maybe-valid'],
  ];
  let k = 0;
  for (const [what, damage, accept, defect] of cases) {
    const bytes = damage();
    const cmd = HOST_CMDS[1 + (k++ % 3)];
    badInput(`guest-app.stap ${what}: merge, ${cmd}${defect ? ` (${defect})` : ''}`, (inDir) => {
      const f = join(inDir, 'guest-app.stap');
      writeFileSync(f, bytes);
      return [onHostFile('merge', f, accept, defect), onHostFile(cmd, f, accept, defect)];
    });
  }
});

// #9: a meta.json value the flags would refuse (tscKhz -5) is accepted.
describe('bundle meta.json', () => {
  const r = rng(SEED + 5);
  const meta = readFileSync(join(PVM, 'host', 'meta.json'));
  const edit = (f: (m: Record<string, unknown>) => void): Buffer => {
    const m = JSON.parse(meta.toString()) as Record<string, unknown>;
    f(m);
    return Buffer.from(JSON.stringify(m, null, 2));
  };
  const cases: [string, Buffer, string, Cmd[]][] = [
    ['cut', meta.subarray(0, between(r, 1, meta.length - 2)), '', ['merge', 'check']],
    ['cut', meta.subarray(0, between(r, 1, meta.length - 2)), '', ['exits', 'view']],
    ['with a NUL byte', nulsAt(meta, between(r, 0, meta.length), 1), '', ['merge']],
    ['empty', Buffer.alloc(0), '', ['merge']],
    ['with "tscKhz": -5', edit((m) => (m.tscKhz = -5)), '#9', ['merge', 'exits']],
    ['with "role": "hots"', edit((m) => (m.role = 'hots')), '', ['merge']],
    ['naming a trace file that is missing', edit((m) => (m.traces = [{ file: 'nothere.txt', format: 'ftrace-text' }])), '', ['merge', 'check']],
    ['with traces: "trace.txt"', edit((m) => (m.traces = 'trace.txt')), '', ['merge']],
  ];
  for (const [what, bytes, defect, cmds] of cases)
    badInput(`host/meta.json ${what}: ${cmds.join(', ')}${defect ? ` (${defect})` : ''}`, (inDir) => {
      const b = copyPvm(inDir);
      const f = join(b.host, 'meta.json');
      writeFileSync(f, bytes);
      const culprit = what.startsWith('naming') ? join(b.host, 'nothere.txt') : f;
      return cmds.map((c) => onPair(c as Exclude<Cmd, 'report'>, [b.host, b.guest], culprit, 'error', defect || undefined));
    });
  badInput('a bundle whose trace.txt is a folder: merge, exits', (inDir) => {
    const b = copyPvm(inDir);
    rmSync(join(b.guest, 'trace.txt'));
    mkdirSync(join(b.guest, 'trace.txt'));
    return [onPair('merge', [b.host, b.guest], join(b.guest, 'trace.txt'), 'error'), onPair('exits', [b.host, b.guest], join(b.guest, 'trace.txt'), 'error')];
  });
  badInput('a bundle whose meta.json is a folder: merge', (inDir) => {
    const b = copyPvm(inDir);
    rmSync(join(b.host, 'meta.json'));
    mkdirSync(join(b.host, 'meta.json'));
    return [onPair('merge', [b.host, b.guest], join(b.host, 'meta.json'), 'error')];
  });
});

// #5: report on a folder (EISDIR with a stack), on a FIFO without a writer (blocks in open; so do
// merge, exits and check), on a FIFO with a writer or a /proc file that fails with EIO ("not a
// trace.dat file"): say what really happened.
describe('folders, FIFOs and /proc files given as trace files', () => {
  const guestTxt = join(PVM, 'guest', 'trace.txt');
  /** A run whose one sentence must say `what` (the real cause), not that the data has no magic. */
  const saying = (m: Maker, what: RegExp): Maker => (out) => ({
    ...m(out),
    also: (r) => (r.status !== 2 || (what.test(r.stderr) && !/not a trace\.dat/.test(r.stderr)) ? [] : [`the sentence must say ${what}: ${r.stderr.trim()}`]),
  });
  badInput('a folder: report (#5), merge --host, merge --guest, merge BUNDLE, check, exits, view', (inDir) => {
    const d = join(inDir, 'folder');
    mkdirSync(d);
    writeFileSync(join(d, 'trace.txt'), readFileSync(guestTxt));
    return [
      onHostFile('report', d, 'error', '#5'),
      onHostFile('merge', d, 'error'),
      onHostFile('exits', d, 'error'),
      onHostFile('view', d, 'error'),
      onPair('merge', ['--host', guestTxt, '--guest', d, '--tsc-offset', '0'], d, 'error'),
      onPair('merge', [d], d, 'error'),
      onPair('check', [d, guestTxt], d, 'error'),
    ];
  });
  badInput('trace files as arguments: merge BUNDLE FILE takes FILE as a guest; merge GUEST-FILE GUEST-BUNDLE takes the file as the host, which maps no guest', (inDir) => {
    const f = join(inDir, 'trace.txt');
    copyFileSync(guestTxt, f);
    return [onPair('merge', [join(PVM, 'host'), f], f, 'valid'), onPair('merge', [f, join(PVM, 'guest')], join(PVM, 'guest'), 'error')];
  });
  badInput('a FIFO without a writer: report, merge, exits, check (#5)', (inDir) => {
    const f = join(inDir, 'trace.fifo');
    mkfifo(f);
    return [onHostFile('report', f, 'error', '#5'), onHostFile('merge', f, 'error', '#5'), onHostFile('exits', f, 'error', '#5'), onPair('check', [join(PVM, 'host'), f], f, 'error', '#5')];
  });
  badInput('a FIFO with a writer: report (#5), merge, view', (inDir) => {
    const fifos = ['a', 'b', 'c'].map((n) => join(inDir, `${n}.fifo`));
    const src = [join(FIX, 'tracedat', 'v7-kvm.dat'), join(PVM, 'host', 'trace.txt'), join(PVM, 'host', 'trace.txt')];
    fifos.forEach((f) => mkfifo(f));
    // Each run gets a writer of its own, ended afterwards if it is still waiting for a reader.
    const withWriter = (m: Maker, k: number): Maker => (out) => {
      let w: ChildProcess | undefined;
      return { ...m(out), before: () => void (w = spawn('sh', ['-c', `exec cat "$1" > "$2"`, 'sh', src[k], fifos[k]], { stdio: 'ignore' })), after: () => void w?.kill('SIGKILL') };
    };
    const pipe = /pipe|FIFO/i;
    return [
      withWriter(saying(onHostFile('report', fifos[0], 'error', '#5'), pipe), 0),
      withWriter(saying(onHostFile('merge', fifos[1], 'error'), pipe), 1),
      withWriter(saying(onHostFile('view', fifos[2], 'error'), pipe), 2),
    ];
  });
  badInput('/proc/self/mem (EIO): report (#5), merge', () => {
    const eio = /EIO|input\/output/i;
    return [saying(onHostFile('report', '/proc/self/mem', 'error', '#5'), eio), saying(onHostFile('merge', '/proc/self/mem', 'error'), eio)];
  });
  badInput('/dev/zero (endless zeros): report, merge', () => [onHostFile('report', '/dev/zero', 'error'), onHostFile('merge', '/dev/zero', 'error')]);
});

// #4: a full stdout gives a stack (report) or an uncaught ENOSPC; #7: an output that is an input
// replaces it; #8: JSON and text both on stdout.
describe('outputs: a full stdout, an output that is an input, two outputs on stdout', () => {
  const STDOUT = 'standard output';
  const full = existsSync('/dev/full');
  if (!full) console.log('skipped: the full-stdout and full-device cases need /dev/full');
  badInputIf(full, 'stdout is /dev/full: report, merge --text -, check, exits, latency, view --print (#4)', (inDir) => {
    const b = copyPvm(inDir);
    const toFull = (m: Maker): Maker => (out) => {
      const run = m(out);
      const stdout = openSync('/dev/full', 'w');
      return { ...run, culprit: STDOUT, accept: 'error', defect: '#4', stdout, after: () => closeSync(stdout) };
    };
    const dat = join(inDir, 'v7-kvm.dat');
    copyFileSync(join(FIX, 'tracedat', 'v7-kvm.dat'), dat);
    return [
      toFull(onHostFile('report', dat, 'error')),
      toFull(() => ({ args: ['merge', b.host, b.guest, '--text', '-'], culprit: STDOUT, accept: 'error' })),
      ...(['check', 'exits', 'latency', 'view'] as const).map((c) => toFull(onPair(c, [b.host, b.guest], STDOUT, 'error'))),
    ];
  });
  badInputIf(full, 'an output on a full device: merge -o /dev/full', (inDir) => {
    const b = copyPvm(inDir);
    return [() => ({ args: ['merge', b.host, b.guest, '-o', '/dev/full'], culprit: '/dev/full', accept: 'error' })];
  });
  badInput('an output that is an input (#7): the same path, a symlink, a hard link, a bundle file', (inDir) => {
    // Each run its own inputs: a run that overwrites its input must not spoil the others'.
    const own = (k: number): { host: string; guest: string; h: string } => {
      const d = join(inDir, `run${k}`);
      mkdirSync(d);
      const b = copyPvm(d);
      const h = join(d, 'h.txt');
      copyFileSync(join(b.host, 'trace.txt'), h);
      return { ...b, h };
    };
    const run = (args: string[], culprit: string): Maker => () => ({ args, culprit, accept: 'error', defect: '#7' });
    const [a, b, c, d, e] = [0, 1, 2, 3, 4].map(own);
    symlinkSync(b.h, join(inDir, 'sym.txt'));
    linkSync(c.h, join(inDir, 'hard.txt'));
    return [
      run(['merge', '--host', a.h, '--text', a.h], a.h),
      run(['merge', '--host', b.h, '--text', join(inDir, 'sym.txt')], join(inDir, 'sym.txt')),
      run(['merge', '--host', c.h, '--text', join(inDir, 'hard.txt')], join(inDir, 'hard.txt')),
      run(['merge', d.host, d.guest, '-o', join(d.guest, 'trace.txt')], join(d.guest, 'trace.txt')),
      run(['merge', e.host, e.guest, '--summary', join(e.host, 'meta.json')], join(e.host, 'meta.json')),
    ];
  });
  badInput('two outputs on stdout (#8), one file named twice (EEXIST wording)', (inDir) => {
    const b = copyPvm(inDir);
    return [
      () => ({ args: ['merge', b.host, b.guest, '-o', '-', '--text', '-'], culprit: '-', accept: 'error', defect: '#8' }),
      // Issue 12's smaller defect: EEXIST and the hidden temporary file's name in the sentence.
      (out) => ({ args: ['merge', b.host, b.guest, '-o', join(out, 'x'), '--text', join(out, 'x')], culprit: join(out, 'x'), accept: 'error', defect: 'EEXIST wording' }),
    ];
  });
});

/** Waits `ms`. */
const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

/**
 * Sends `sig` to a merge that is writing its outputs, and returns how it ended and what its output
 * folder held before and after. The text goes into a FIFO the test holds open but reads only after
 * the signal: the merge is then stopped mid-write, its other outputs still temporary, whatever the
 * machine's speed (no timing involved).
 */
async function interruptMerge(dir: string, sig: NodeJS.Signals): Promise<{ r: RunResult; before: Snapshot; after: Snapshot; out: string }> {
  const out = join(dir, 'out');
  mkdirSync(out);
  writeFileSync(join(out, 'merged.json'), EARLIER);
  const fifo = join(dir, 'text.fifo');
  mkfifo(fifo);
  const rd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const before = snapshot(out);
    let child: ChildProcess | undefined;
    let ended = false;
    const args = ['merge', join(PVM, 'host'), join(PVM, 'guest'), '-o', join(out, 'merged.json'), '--summary', join(out, 'summary.json'), '--text', fifo];
    const done = runBounded(args, { timeoutMs: RUN_TIMEOUT_MS, started: (c) => void (child = c) }).then((r) => ((ended = true), r));
    const buf = Buffer.alloc(65536);
    // Bytes read (0 at end or before a writer), or -1 when none are there yet.
    const read = (): number => {
      try {
        return readSync(rd, buf);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return -1;
        throw e;
      }
    };
    while (!ended && read() <= 0) await sleep(20);
    if (ended) throw new Error('the merge ended before it wrote into the FIFO');
    child!.kill(sig);
    while (!ended) if (read() <= 0) await sleep(20);
    const r = await done;
    return { r, before, after: snapshot(out), out };
  } finally {
    closeSync(rd);
  }
}

// #6: an interrupted merge leaves its hidden temporary files (.NAME.PID.tmp) behind.
describe('a signal mid-merge (#6)', () => {
  for (const [sig, signo] of [['SIGINT', 2], ['SIGTERM', 15]] as const)
    it(`${sig} while the merge writes its outputs leaves no temporary file (#6)`, { timeout: 5 * 60_000 }, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'kvmtrace-bad-'));
      try {
        const { r, before, after, out } = await interruptMerge(dir, sig);
        expect(r.hung).toBe(false);
        // Ended by the signal (or 128+N, the shell's way of saying it), or 1/2 with one sentence.
        expect(r.signal === sig || [128 + signo, 1, 2].includes(r.status ?? -1), `ended by ${r.signal ?? r.status}`).toBe(true);
        expect(r.stderr.split('\n').filter(Boolean).length).toBeLessThanOrEqual(1);
        expect(crashProblems(r.stderr)).toEqual([]);
        expect(leftoverProblems(out, before, after, { args: [], culprit: '', accept: 'error' }, r)).toEqual([]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
});

describe('inspect on a damaged recorded sysfs tree', () => {
  const tree = join(FIX, 'sysfs', 'this-vm');
  const r = rng(SEED + 6);
  badInput('--root a file, --root missing, --record into an existing folder or under a file', (inDir) => {
    const f = join(inDir, 'cpuinfo');
    copyFileSync(join(tree, 'proc', 'cpuinfo'), f);
    return [
      () => ({ args: ['inspect', '--root', f], culprit: f, accept: 'error' }),
      () => ({ args: ['inspect', '--root', join(inDir, 'nothere')], culprit: join(inDir, 'nothere'), accept: 'error' }),
      (out) => ({ args: ['inspect', '--root', tree, '--record', out], culprit: out, accept: 'error' }),
      (out) => ({ args: ['inspect', '--root', tree, '--record', join(out, 'notes.txt', 'rec')], culprit: join(out, 'notes.txt', 'rec'), accept: 'error' }),
    ];
  });
  badInput('cpuinfo cut, a features file that is a folder, a NUL in a features file: inspect, inspect --record', (inDir) => {
    const root = join(inDir, 'root');
    cpSync(tree, root, { recursive: true, verbatimSymlinks: true });
    const cpu = join(root, 'proc', 'cpuinfo');
    const text = readFileSync(cpu);
    writeFileSync(cpu, text.subarray(0, midLine(text, r)));
    const feat = join(root, 'sys', 'bus', 'virtio', 'devices', 'virtio1', 'features');
    rmSync(feat);
    mkdirSync(feat);
    const f0 = join(root, 'sys', 'bus', 'virtio', 'devices', 'virtio0', 'features');
    writeFileSync(f0, nulsAt(readFileSync(f0), 3, 1));
    return [
      () => ({ args: ['inspect', '--root', root], culprit: root, accept: 'maybe-valid' }),
      (out) => ({ args: ['inspect', '--root', root, '--record', join(out, 'rec')], culprit: feat, accept: 'maybe-valid', outputs: [join(out, 'rec')] }),
    ];
  });
});

describe.skipIf(externalMissing)('the real recordings of ../shared/external/masterarbeit (zlib, TIME_SHIFT)', () => {
  if (externalMissing) console.log(`skipped: ${externalMissing}`);
  const r = rng(SEED + 7);
  const HOST = join(MASTERARBEIT, 'docA-host-trace.dat');
  const GUEST = join(MASTERARBEIT, 'docA-guest-trace-Salamander4.dat');
  const orig = externalMissing ? Buffer.alloc(0) : readFileSync(GUEST);
  const l = externalMissing ? undefined : traceDatLayout(orig);
  const pair = (f: string, accept: Accept, defect?: string): Maker[] => [
    onPair('merge', ['--host', HOST, '--guest', f], f, accept, defect),
    onPair('check', [HOST, f], f, accept, defect),
  ];
  if (l) {
    const cuts = [between(r, 0, l.header.end), between(r, l.chunks[0].data.start, l.chunks[0].data.end), pick(r, l.chunks).header.start + 4];
    for (const at of cuts)
      badInput(`docA guest cut at byte ${at}: merge, check`, (inDir) => {
        const f = join(inDir, 'guest.dat');
        writeFileSync(f, orig.subarray(0, at));
        return pair(f, 'damaged');
      });
    for (let s = 0; s < 3; s++) {
      const c = pick(r, l.chunks);
      const bytes = s === 0 ? flipAt(orig, [c.header.start + 1]) : flipIn(orig, r, c.data, 2);
      badInput(`docA guest with a damaged zlib chunk at ${c.header.start}: report, merge, check (#11)`, (inDir) => {
        const f = join(inDir, 'guest.dat');
        writeFileSync(f, bytes);
        return [onHostFile('report', f, 'damaged', '#11'), ...pair(f, 'damaged', '#11')];
      });
    }
    for (const size of [0, 1, 3, 8])
      badInput(`docA guest (zlib) with page size ${size}: report (#1)`, (inDir) => {
        const b = Buffer.from(orig);
        for (const at of l.bufferPageSizeAt) b.writeUInt32LE(size, at);
        const f = join(inDir, 'guest.dat');
        writeFileSync(f, b);
        return [onHostFile('report', f, 'damaged', '#1')];
      });
  }
});
