/**
 * Whose word decides the mapping, on real data: the user's stated `--tsc-offset` is followed and
 * a file that says otherwise is named (even with -q); sources in the files that disagree are each
 * checked against the evidence and the supported one followed, with a table. And which vCPU runs
 * each guest CPU: from facts where the inputs have them, an assumption said as such otherwise.
 * Data: the kvm-pvm capture (fixtures/pvm-1vcpu: its kvm_write_tsc_offset events claim an offset the
 * guest never saw) and the docA trace-cmd pair (TIME_SHIFT).
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { kvmtrace, ROOT } from './helpers/cli.js';
import { DOCA, externalMissing, MASTERARBEIT } from './helpers/external.js';
import { tempDir } from './helpers/tmp.js';

const PVM = join(ROOT, 'fixtures', 'pvm-1vcpu');
const WRITES = '0 → -6245492027656 from host TSC 6245492035560';
const bare = ['--host', join(PVM, 'host', 'trace.txt'), '--guest', join(PVM, 'guest', 'trace.txt'), '--host-clock', 'x86-tsc', '--guest-clock', 'x86-tsc'];
const warnings = (stderr: string): string[] => stderr.split('\n').filter((l) => l.startsWith('warning: '));

describe('the kvm-pvm capture (fixtures/pvm-1vcpu)', () => {
  let out: string;
  beforeAll(() => {
    out = tempDir('kvmtrace-sources-');
  });

  it('bare files with --tsc-offset 0: the stated offset is followed over kvm_write_tsc_offset, and -q still says they differ', () => {
    const r = kvmtrace(['merge', '-q', ...bare, '--tsc-offset', '0', '--text', join(out, 'bare.txt'), '--summary', join(out, 'bare.json'), '--check']);
    expect(r.status, r.stderr).toBe(0);
    expect(warnings(r.stderr)).toEqual([`warning: guest: vCPU 0: --tsc-offset 0 differs from kvm_write_tsc_offset events (2) (${WRITES}); following --tsc-offset as stated`]);
    const s = JSON.parse(readFileSync(join(out, 'bare.json'), 'utf8'));
    const v = s.guests[0].vcpus[0];
    // The stated offset, checked like any other: every checkable sync point and event agrees with it.
    expect(v).toMatchObject({ mappingFrom: '--tsc-offset', sync: { points: 80, matched: 40, noHostEvidence: 40 } });
    expect(v.inside).toBe(v.checked);
    // Every one of the guest's 608 events is judged: inside, or not checkable (the tracker's rules).
    expect(v.checked + v.notCheckable).toBe(608);
    const c = s.clock.guests[0].vcpus[0];
    expect(c.verdict).toBe('EXACT');
    expect(c.sources).toEqual([
      { source: '--tsc-offset', offsets: '0', followed: true, syncChecked: 40, syncSatisfied: 40, checked: 608, inside: 608 },
      { source: 'kvm_write_tsc_offset events (2)', offsets: WRITES, followed: false, syncChecked: 40, syncSatisfied: 0, checked: 0, inside: 0 },
    ]);
  });

  it('bare files with no flag: the one source in the files is followed (and refuted by the sync points, as before)', () => {
    const r = kvmtrace(['merge', '-q', ...bare, '--text', join(out, 'bare0.txt')]);
    expect(warnings(r.stderr)).toEqual([]);
    expect(r.stderr).toMatch(/40 of 40 sync points have no host event inside their \[t0, t1\] bracket/);
  });

  it('bundles: debugfs and kvm_write_tsc_offset disagree; the table shows the evidence, debugfs is followed, and -q says so in one line', () => {
    const q = kvmtrace(['merge', '-q', join(PVM, 'host'), join(PVM, 'guest'), '--text', join(out, 'b.txt')]);
    expect(warnings(q.stderr)).toEqual([
      `warning: kvmlab: vCPU 0: the sources disagree (debugfs snapshots: 0; kvm_write_tsc_offset events (2): ${WRITES}); the evidence supports debugfs snapshots (40 of 40 sync points, 608 of 608 guest events inside): following it`,
    ]);
    const r = kvmtrace(['check', join(PVM, 'host'), join(PVM, 'guest')]);
    expect(r.status).toBe(0);
    const lines = r.stdout.split('\n');
    const at = lines.indexOf('    the sources disagree; each checked against the evidence:');
    expect(lines[at + 1].trim().split(/ {3,}/)).toEqual(['source', 'sync points', 'events inside', 'offset(s)']);
    expect(lines.slice(at + 2, at + 4).map((l) => l.trim().split(/ {3,}/))).toEqual([
      ['→ debugfs snapshots', '40 of 40', '608 of 608', '0'],
      ['kvm_write_tsc_offset events (2)', '0 of 40', '0 of 0', WRITES],
    ]);
  });

  it('guest CPU ↔ vCPU: a fact in each case — 1 CPU in a 1-vCPU VM, the sync points on bare files, the bundle’s map', () => {
    const b = JSON.parse(kvmtrace(['check', '--json', '--no-cross-check', join(PVM, 'host'), join(PVM, 'guest')]).stdout);
    expect(b.guests[0].cpuPairing).toEqual({ map: { 0: 0 }, from: 'the guest has 1 CPU and the VM 1 vCPU', assumed: false });
    // Bare files say nothing of CPUs; the 40 pio sync points of CPU 0 land on thread 26619, vCPU 0's.
    const s = JSON.parse(readFileSync(join(out, 'bare.json'), 'utf8'));
    expect(s.clock.guests[0].cpuPairing).toEqual({ map: { 0: 0 }, from: "sync points: CPU 0's land on thread 26619, 40 of 40 checkable", assumed: false });
    // A guest bundle written by today's guest script carries the pairing (processor → apicid).
    const g = join(out, 'guest-map');
    cpSync(join(PVM, 'guest'), g, { recursive: true });
    const meta = JSON.parse(readFileSync(join(g, 'meta.json'), 'utf8'));
    meta.guest.cpuToVcpu = { 0: 0 };
    writeFileSync(join(g, 'meta.json'), JSON.stringify(meta));
    const m = kvmtrace(['check', join(PVM, 'host'), g]);
    expect(m.stdout).toMatch(/guest CPUs → vCPUs: CPU 0 → vCPU 0 \(the guest bundle's guest\.cpuToVcpu\)/);
  });

  it('guest CPU ↔ vCPU: an assumption is said as such when nothing pairs them (bare files, no sync point lands)', () => {
    const r = kvmtrace(['check', '--json', '--no-cross-check', ...bare.filter((x) => x !== '--host' && x !== '--guest')]);
    const j = JSON.parse(r.stdout);
    // Followed kvm_write_tsc_offset puts every marker's bracket far from the host's exits: no fact.
    expect(j.guests[0].cpuPairing).toEqual({ map: {}, from: 'nothing in the inputs pairs them', assumed: true });
    const t = kvmtrace(['check', '--no-cross-check', ...bare.filter((x) => x !== '--host' && x !== '--guest')]);
    expect(t.stdout).toMatch(/guest CPUs → vCPUs: CPU n = vCPU n is ASSUMED \(nothing in the inputs pairs them\)/);
  });
});

describe.skipIf(externalMissing)('the docA pair: TIME_SHIFT against a stated offset', () => {
  if (externalMissing) console.log(`skipped: ${externalMissing}`);
  const host = join(MASTERARBEIT, 'docA-host-trace.dat');
  const guest = join(MASTERARBEIT, 'docA-guest-trace-Salamander4.dat');
  let out: string;
  beforeAll(() => {
    out = tempDir('kvmtrace-sources-docA-');
  });

  it('an offset 1 ms off is followed, not TIME_SHIFT: -q warns in one line, and the windows refute it', () => {
    const wrong = DOCA.tscOffset + 2_918_400n;
    const r = kvmtrace(['merge', '-q', '--host', host, '--guest', guest, '--tsc-offset', String(wrong), '--text', join(out, 'w.txt'), '--summary', join(out, 'w.json'), '--check']);
    expect(r.status).toBe(1);
    expect(warnings(r.stderr)).toEqual([`warning: Salamander4: vCPU 0: --tsc-offset ${wrong} differs from trace.dat TIME_SHIFT (2 samples) (${DOCA.tscOffset}); following --tsc-offset as stated`]);
    const s = JSON.parse(readFileSync(join(out, 'w.json'), 'utf8'));
    expect(s.guests[0].vcpus[0].mappingFrom).toBe('--tsc-offset');
    const [stated, ts] = s.clock.guests[0].vcpus[0].sources;
    expect(stated).toMatchObject({ source: '--tsc-offset', offsets: String(wrong), followed: true });
    expect(ts).toMatchObject({ source: 'trace.dat TIME_SHIFT (2 samples)', offsets: String(DOCA.tscOffset), followed: false, checked: 89827, inside: 89827 });
    expect(stated.inside).toBeLessThan(stated.checked);
    expect(s.clock.guests[0].vcpus[0].verdict).toBe('FAILED');
  });

  it('an offset 100 cycles off is followed too, and the evidence cannot tell it from TIME_SHIFT (both inside every window)', () => {
    const near = DOCA.tscOffset + 100n;
    const r = kvmtrace(['check', '--json', '--no-cross-check', '--tsc-offset', String(near), host, guest]);
    expect(r.status).toBe(0);
    expect(warnings(r.stderr)).toHaveLength(1);
    const v = JSON.parse(r.stdout).guests[0].vcpus[0];
    expect(v).toMatchObject({ source: '--tsc-offset', offset: String(near), verdict: 'EXACT', checked: 89827, inside: 89827 });
    expect(v.sources.map((x: { inside: number }) => x.inside)).toEqual([89827, 89827]);
  });

  it('--tsc-scaling without --tsc-offset cannot be followed with TIME_SHIFT (not a KVM offset): refused, saying what to give', () => {
    const r = kvmtrace(['check', '--tsc-scaling', '281474976710656/48', host, guest]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/vCPU 0: --tsc-scaling applies to a KVM offset, but the mapping comes from trace\.dat TIME_SHIFT \(2 samples\) — give --tsc-offset with it, or leave --tsc-scaling out/);
  });

  it('the offset TIME_SHIFT says, stated again: no warning, no table', () => {
    const r = kvmtrace(['check', '--json', '--no-cross-check', '--tsc-offset', String(DOCA.tscOffset), host, guest]);
    expect(r.status).toBe(0);
    expect(warnings(r.stderr)).toEqual([]);
    expect(JSON.parse(r.stdout).guests[0].vcpus[0].sources).toBeUndefined();
  });
});
