/**
 * What the built CLI says about its inputs and flags, on the real fixtures: values that a bundle's
 * meta.json and a flag can both give meet the same rules, conflicting repeated flags and inputs
 * that cannot be merged are refused with a sentence, and a trace whose events come out of time
 * order beyond the reorder window fails validation (it is not a parse error).
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './helpers/tmp.js';
import { kvmtrace, ROOT } from './helpers/cli.js';

const PVM = join(ROOT, 'fixtures', 'pvm-1vcpu');
const HOST = join(PVM, 'host');
const GUEST = join(PVM, 'guest');
const TEXT = join(ROOT, 'fixtures', 'ftrace-text', 'x86tsc-trace.txt');
let dir: string;
beforeAll(() => {
  dir = tempDir('kvmtrace-inputs-');
});

/** A copy of the bundled capture with `edit` applied to the text of one of its files. */
function editedCopy(name: string, file: string, edit: (text: string) => string): { host: string; guest: string } {
  const d = join(dir, name);
  cpSync(PVM, d, { recursive: true });
  const f = join(d, file);
  const text = readFileSync(f, 'utf8');
  const changed = edit(text);
  expect(changed).not.toBe(text);
  writeFileSync(f, changed);
  return { host: join(d, 'host'), guest: join(d, 'guest') };
}

/** The `…: expected …` part of a one-sentence error. */
const expectation = (stderr: string): string => /: (expected [^\n]*|the ratio[^\n]*)\n$/.exec(stderr)?.[1] ?? `(none in ${stderr})`;

describe("meta.json values meet the flags' rules", () => {
  const cases: [string, string, (t: string) => string, string[], RegExp][] = [
    ['tscKhz', 'host/meta.json', (t) => t.replace('"tscKhz": 2596136', '"tscKhz": -5'), ['--tsc-khz', '-5'], /field "tscKhz" is -5: /],
    ['a vCPU thread', 'host/meta.json', (t) => t.replace('"tid": 26619', '"tid": 0'), ['--vcpu-thread', '0=0'], /field "vms\[0\]\.vcpus\[0\]\.tid" is 0: /],
    [
      'a TSC scaling ratio',
      'host/meta.json',
      (t) => t.replace(/"tscOffset": "0"/, '"tscOffset": "0", "tscScalingRatio": "0", "tscScalingFracBits": 48'),
      ['--tsc-scaling', '0/48'],
      /field "vms\[0\]\.vcpus\[0\]\.snapshots\[0\]\.tscScalingRatio" is 0 with 48 fraction bits: /,
    ],
  ];
  it.each(cases)('%s: refused in meta.json as by its flag, with the same expectation', (name, file, edit, flag, field) => {
    const b = editedCopy(`meta-${name.replace(/\W+/g, '-')}`, file, edit);
    const fromMeta = kvmtrace(['merge', b.host, b.guest, '--text', join(dir, 'never.txt')]);
    expect(fromMeta.status).toBe(2);
    expect(fromMeta.stderr).toMatch(new RegExp(`^kvmtrace: ${join(dir, '[^:]*', file)}: `));
    expect(fromMeta.stderr).toMatch(field);
    const fromFlag = kvmtrace(['merge', '--host', TEXT, '--text', join(dir, 'never.txt'), ...flag]);
    expect(fromFlag.status).toBe(2);
    expect(fromFlag.stderr).toMatch(new RegExp(`^kvmtrace: ${flag.join(' ')}: `));
    expect(expectation(fromMeta.stderr)).toBe(expectation(fromFlag.stderr));
  });
});

describe('flags and inputs that cannot make one merge are refused with a sentence', () => {
  it('repeated --tsc-offset or --vcpu-thread that disagree (the same value twice is fine)', () => {
    const offsets = kvmtrace(['merge', '--host', TEXT, '--tsc-offset', '0=100', '--tsc-offset', '0=200']);
    expect(offsets.status).toBe(2);
    expect(offsets.stderr).toBe('kvmtrace: --tsc-offset is given twice for vCPU 0 (100 and 200): give one\n');
    const all = kvmtrace(['merge', '--host', TEXT, '--tsc-offset', '5', '--tsc-offset', '-5']);
    expect(all.stderr).toBe('kvmtrace: --tsc-offset is given twice for every vCPU (5 and -5): give one\n');
    const threads = kvmtrace(['merge', '--host', TEXT, '--vcpu-thread', '1=400', '--vcpu-thread', '1=401']);
    expect(threads.status).toBe(2);
    expect(threads.stderr).toBe('kvmtrace: --vcpu-thread is given twice for vCPU 1 (400 and 401): give one\n');
    const same = kvmtrace(['merge', HOST, GUEST, '--vcpu-thread', '0=26619', '--vcpu-thread', '0=26619', '--text', join(dir, 'same.txt')]);
    expect(same.status).toBe(0);
  });

  it('two guest bundles and no host: says the host is missing', () => {
    const g2 = join(dir, 'guest2');
    cpSync(GUEST, g2, { recursive: true });
    const r = kvmtrace(['merge', GUEST, g2, '-o', join(dir, 'two.json')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^kvmtrace: no host trace given for 2 guest inputs \(.*\): guests are put on one timeline through their host's trace — give the host bundle \(or --host FILE\)\n$/);
    expect(r.stderr).not.toMatch(/TSC frequency|tsc-khz/);
  });

  it('exits --vcpu N for a vCPU the VM does not have lists the ones it has', () => {
    const r = kvmtrace(['exits', HOST, GUEST, '--vcpu', '99']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('kvmtrace: --vcpu 99: no host thread runs vCPU 99 in these traces; there are: vCPU 0 on thread 26619 (VM kvmlab)\n');
    expect(kvmtrace(['exits', HOST, GUEST, '--vcpu', '0']).status).toBe(0);
  });

  it('view --size is bounded: a screen too large to build (or too small to draw) is refused at once', () => {
    for (const size of ['100000x100000', '2001x30', '120x1001', '39x30']) {
      const r = kvmtrace(['view', HOST, GUEST, '--print', '--size', size]);
      expect(r.status, size).toBe(2);
      expect(r.stderr).toBe(`kvmtrace: --size ${size}: the view draws from 40x8 to 2000x1000 (columns x rows)\n`);
    }
    const widest = kvmtrace(['view', HOST, GUEST, '--print', '--size', '2000x1000']);
    expect(widest.status).toBe(0);
    expect(Math.max(...widest.stdout.split('\n').map((l) => l.length))).toBeLessThanOrEqual(2000);
  });
});

describe('events out of time order beyond the reorder window', () => {
  // The real host trace with one event (line 3001) moved 3,000 events later, to line 6000: it
  // reaches the merge long after the 1,024-event window has let later events out.
  const moved = (t: string): string => {
    const lines = t.split('\n');
    const [ev] = lines.splice(3000, 1);
    lines.splice(5999, 0, ev);
    return lines.join('\n');
  };
  let b: { host: string; guest: string };
  let LATE: RegExp;
  beforeAll(() => {
    b = editedCopy('late', 'host/trace.txt', moved);
    const hostTrace = join(b.host, 'trace.txt');
    LATE = new RegExp(
      `${hostTrace}: 1 event\\(s\\) out of time order by more than the 1024-event reorder window \\(by up to (\\d+) cycles\\), so the merged timeline is not in time order there; the first is ${hostTrace}:6000`,
    );
  });

  it('fail validation (exit status 1, with or without --check) and are not called unparsable', () => {
    const out = join(dir, 'late.txt');
    const summary = join(dir, 'late.summary.json');
    const r = kvmtrace(['merge', b.host, b.guest, '--text', out, '--summary', summary, '--check']);
    expect(r.status).toBe(1);
    expect(r.stderr).not.toMatch(/unparsable/);
    expect(r.stderr).toMatch(/host: .*host\/trace\.txt — 14126 events, .*, 1 out of order\n/);
    expect(r.stderr).toMatch(/\nvalidation: FAILED\n/);
    expect(r.stderr).toMatch(new RegExp(`  ✗ ${LATE.source}\n`));
    expect(r.stderr).toMatch(/the merged timeline FAILED validation/);
    const s = JSON.parse(readFileSync(summary, 'utf8')) as { ok: boolean; failures: string[] };
    expect(s.ok).toBe(false);
    expect(s.failures.some((f) => LATE.test(f))).toBe(true);
    // What the failure says holds: the text is out of order exactly once, by the cycles it gives.
    const tsc = readFileSync(out, 'utf8').split('\n').filter((l) => l && !l.startsWith('#')).map((l) => BigInt(l.split(' ')[0]));
    const drops = tsc.flatMap((t, i) => (i > 0 && t < tsc[i - 1] ? [tsc[i - 1] - t] : []));
    expect(drops).toEqual([BigInt(LATE.exec(r.stderr)![1])]);
    // Without --check too the merge exits 1: unlike another failed validation, its own output is wrong
    // (not in time order there).
    expect(kvmtrace(['merge', b.host, b.guest, '--text', out]).status).toBe(1);
  });

  it('fail the clock check too (kvmtrace check exits 1)', () => {
    const r = kvmtrace(['check', b.host, b.guest]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/clock verdict: FAILED/);
    expect(r.stdout).toMatch(LATE);
  });
});
