import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { elfSymbolOffsets } from '../src/capture/probench-elf.js';
import {
  buildProbench,
  parseProbenchOutput,
  runOverheadBench,
  tracefsRoot,
  UPROBE_TARGETS,
  type OverheadReport,
} from '../src/capture/probench.js';
import { overheadTable } from '../src/cli/commands/bench-overhead.js';
import { UserError } from '../src/model/errors.js';

let binary = '';
beforeAll(async () => {
  binary = await buildProbench();
}, 120_000);

describe('probench builds and runs', () => {
  it('measures the plain modes, a system call costing more than an empty call', () => {
    const out = execFileSync(binary, ['-n', '20000', '-r', '3', 'empty', 'rdtsc', 'getpid'], { encoding: 'utf8' });
    const r = parseProbenchOutput(out);
    expect(r.map((x) => x.mode)).toEqual(['empty', 'rdtsc', 'getpid']);
    for (const x of r) {
      expect(x).toMatchObject({ iterations: 20000, rounds: 3 });
      expect(x.bestNs).toBeGreaterThan(0);
      expect(x.bestNs).toBeLessThanOrEqual(x.medianNs);
    }
    expect(r[2].bestNs).toBeGreaterThan(r[0].bestNs);
  });

  it('refuses bad usage with exit status 1 and a message', () => {
    const unknown = spawnSync(binary, ['bogus'], { encoding: 'utf8' });
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toMatch(/unknown mode "bogus"/);
    const noMarker = spawnSync(binary, ['marker'], { encoding: 'utf8' });
    expect(noMarker.status).toBe(1);
    expect(noMarker.stderr).toMatch(/needs -m/);
    const badMarker = spawnSync(binary, ['-m', '/nonexistent/trace_marker', 'marker'], { encoding: 'utf8' });
    expect(badMarker.status).toBe(2);
  });

  it('rejects output it does not know', () => {
    expect(() => parseProbenchOutput('probench mode=empty iterations=x\n')).toThrow(UserError);
  });
});

describe('uprobe file offsets from the ELF file', () => {
  it('agree with nm and readelf: symbol − segment vaddr + segment file offset', () => {
    const names = Object.values(UPROBE_TARGETS);
    const got = elfSymbolOffsets(binary, names);
    const nm = execFileSync('nm', [binary], { encoding: 'utf8' });
    const loads = execFileSync('readelf', ['-lW', binary], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => /^\s*LOAD\s/.test(l))
      .map((l) => l.trim().split(/\s+/))
      .map((f) => ({ offset: BigInt(f[1]), vaddr: BigInt(f[2]), memsz: BigInt(f[5]) }));
    for (const name of names) {
      const v = BigInt('0x' + new RegExp(`^([0-9a-f]+) T ${name}$`, 'm').exec(nm)![1]);
      const seg = loads.find((s) => s.vaddr <= v && v < s.vaddr + s.memsz)!;
      expect(got.get(name)).toEqual({ name, vaddr: v, fileOffset: v - seg.vaddr + seg.offset, segment: { vaddr: seg.vaddr, offset: seg.offset } });
    }
  });

  it('says which symbol is missing, and refuses files that are not ELF64', () => {
    expect(() => elfSymbolOffsets(binary, ['no_such_symbol'])).toThrow(/no symbol no_such_symbol/);
    expect(() => elfSymbolOffsets('package.json', ['x'])).toThrow(/not an ELF file/);
  });
});

// The bench itself needs root, tracefs with uprobe_events, and a kernel with uprobes.
let tracefs = '';
try {
  tracefs = tracefsRoot();
} catch {
  tracefs = '';
}
const root = process.getuid?.() === 0;
const benchReason = !root ? 'not root' : !tracefs ? 'no tracefs with uprobe_events' : '';
if (benchReason) console.log(`probench: skipping the tracefs bench — ${benchReason}`);

describe.skipIf(benchReason !== '')('kvmtrace bench overhead on this machine', () => {
  let report: OverheadReport;
  let before = '';
  const foreign = `p:kvmtrace_test_foreign_${process.pid}/keep`;
  let after = '';

  beforeAll(async () => {
    // Someone else's uprobe: the bench must leave it alone (appends and removes only its own).
    const offs = elfSymbolOffsets(binary, ['probench_empty']);
    appendFileSync(join(tracefs, 'uprobe_events'), `${foreign} ${binary}:0x${offs.get('probench_empty')!.fileOffset.toString(16)}\n`);
    try {
      before = readFileSync(join(tracefs, 'uprobe_events'), 'utf8');
      report = await runOverheadBench({ iterations: 3000, rounds: 3 });
      after = readFileSync(join(tracefs, 'uprobe_events'), 'utf8');
    } finally {
      appendFileSync(join(tracefs, 'uprobe_events'), `-:kvmtrace_test_foreign_${process.pid}/keep\n`);
    }
  }, 180_000);

  it('measures every mode', () => {
    expect(report.results.map((r) => r.mode)).toEqual(['empty', 'rdtsc', 'getpid', 'marker', 'uprobe', 'uprobe-xol', 'uprobe-args']);
  });

  it('every marker write and every uprobe hit became an event in its own instance', () => {
    expect(report.recorded.map((r) => r.mode)).toEqual(['marker', 'uprobe', 'uprobe-xol', 'uprobe-args']);
    for (const r of report.recorded) expect(r.events, r.mode).toBe(r.calls);
    expect(report.instance).toMatch(/\/instances\/kvmtrace-probench-\d+$/);
  });

  it('removed its instance and only its own uprobes', () => {
    expect(existsSync(report.instance)).toBe(false);
    expect(before).toContain(`kvmtrace_test_foreign_${process.pid}/keep`);
    expect(after).toBe(before);
    expect(after).not.toMatch(/kvmtrace_probench_/);
  });

  it('prints the table beside the 2013 figures', () => {
    const t = overheadTable(report);
    console.log(t);
    const rows = t.trim().split('\n');
    expect(rows.length).toBe(8);
    expect(rows.find((r) => r.startsWith('trace_marker write'))).toMatch(/\s1\.7$/);
    expect(rows.find((r) => r.startsWith('uprobe hit (push'))).toMatch(/\s4\.3$/);
    for (const r of rows.slice(1)) expect(r).toMatch(/\d+\.\d{3}\s+\d+\.\d{3}\s+(—|\d\.\d)$/);
  });
});

describe.skipIf(benchReason !== '')('syncpt --marker stamps an application marker with the TSC', () => {
  it('writes "kvmmark tsc=T cpu=C text=…" with T read before the kernel stamped the event (x86-tsc)', () => {
    const syncpt = join(binary, '..', 'syncpt');
    const rdtsc = join(binary, '..', 'rdtsc');
    execFileSync('make', ['-s', '-C', join(binary, '..', '..'), 'build/syncpt', 'build/rdtsc']);
    const tscNow = (): bigint => BigInt(execFileSync(rdtsc, { encoding: 'utf8' }).trim());
    const inst = join(tracefs, 'instances', `kvmtrace-syncpt-test-${process.pid}`);
    execFileSync('mkdir', [inst]);
    try {
      execFileSync('sh', ['-c', `echo x86-tsc > ${inst}/trace_clock`]);
      const before = tscNow();
      execFileSync(syncpt, ['--marker', 'checkpoint A: loop start', '-m', join(inst, 'trace_marker')]);
      const after = tscNow();
      const bad = spawnSync(syncpt, ['--marker', 'two\nlines', '-m', join(inst, 'trace_marker')], { encoding: 'utf8' });
      expect(bad.status).toBe(1);
      const lines = readFileSync(join(inst, 'trace'), 'utf8').split('\n').filter((l) => l.includes('kvmmark'));
      expect(lines.length).toBe(1);
      const m = /\[(\d+)\].*\s(\d+): tracing_mark_write: kvmmark tsc=(\d+) cpu=(\d+) text=checkpoint A: loop start$/.exec(lines[0]);
      expect(m, lines[0]).not.toBeNull();
      const [cpuCol, stamp, tsc, cpu] = [Number(m![1]), BigInt(m![2]), BigInt(m![3]), Number(m![4])];
      // What holds whatever the scheduler does: T and the stamp both fall between two TSC reads
      // made before and after syncpt ran, T first. The CPU syncpt read and the CPU the kernel
      // stamped may differ (the process can migrate between the two), so each is only checked to
      // be a CPU of this machine.
      expect(before).toBeLessThanOrEqual(tsc);
      expect(tsc).toBeLessThanOrEqual(stamp);
      expect(stamp).toBeLessThanOrEqual(after);
      // The highest CPU number the kernel can have ("0-1", "0-3,8-11").
      const maxCpu = Number(readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim().split(/[-,]/).pop());
      for (const c of [cpu, cpuCol]) {
        expect(c).toBeGreaterThanOrEqual(0);
        expect(c).toBeLessThanOrEqual(maxCpu);
      }
    } finally {
      execFileSync('rmdir', [inst]);
    }
  });
});
