/**
 * `kvmtrace check` as a user runs it: verdicts and exit codes on the real docA pair (mapping from
 * TIME_SHIFT; estimated with the file's offsets ignored; refuted when wrong), the salB files (not
 * a pair), and the kvm-pvm capture (debugfs vs kvm_write_tsc_offset, checked by sync points).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kvmtrace, ROOT } from './helpers/cli.js';
import { DOCA, externalMissing, MASTERARBEIT } from './helpers/external.js';
import { expectGolden } from './helpers/golden.js';
import { tempDir } from './helpers/tmp.js';

const PVM = join(ROOT, 'fixtures', 'pvm-1vcpu');
const dat = (f: string): string => join(MASTERARBEIT, f);
const clean = (s: string): string => s.replaceAll(MASTERARBEIT, '<masterarbeit>').replaceAll(ROOT, '<repo>');

describe.skipIf(externalMissing)('check on the docA and salB recordings', () => {
  if (externalMissing) console.log(`skipped: ${externalMissing}`);
  const host = dat('docA-host-trace.dat');
  const guest = dat('docA-guest-trace-Salamander4.dat');

  it('docA: EXACT from TIME_SHIFT, 89,827 of 89,827 guest events inside, exit 0', () => {
    const r = kvmtrace(['check', host, guest]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/vCPU 0 \(host thread 483882\): EXACT\n {4}mapping from trace\.dat TIME_SHIFT \(2 samples\)\n {4}offset -63430235715905 \(no scaling\)/);
    expect(r.stdout).toMatch(/guest events inside guest-mode windows: 89827 of 89827 \(100 %\)/);
    // Cross-checked against the windows alone: the stated offset lies in what they allow.
    const m = /the traces alone allow \[(-\d+), (-\d+)\] \(estimate from .*\): agrees/.exec(r.stdout);
    expect(m).not.toBeNull();
    expect(BigInt(m![1]) <= DOCA.tscOffset && DOCA.tscOffset <= BigInt(m![2])).toBe(true);
    expectGolden('check/docA.txt', clean(r.stdout));
  });

  it('docA with --no-file-offsets: BOUNDED, the interval holds the true offset, JSON offsets exact', () => {
    const r = kvmtrace(['check', '--no-file-offsets', '--json', host, guest]);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.verdict).toBe('BOUNDED');
    expect(j.guests).toHaveLength(1);
    expect(j.guests[0].verdict).toBe('BOUNDED');
    const v = j.guests[0].vcpus[0];
    for (const k of ['vcpu', 'source', 'offset', 'offsetLow', 'offsetHigh', 'checked', 'inside', 'worstViolationCycles']) expect(v).toHaveProperty(k);
    expect(typeof v.offset).toBe('string');
    expect(BigInt(v.offsetLow) <= DOCA.tscOffset && DOCA.tscOffset <= BigInt(v.offsetHigh)).toBe(true);
    expect(BigInt(v.offsetLow) <= BigInt(v.offset) && BigInt(v.offset) <= BigInt(v.offsetHigh)).toBe(true);
    expect(v).toMatchObject({ vcpu: 0, hostTid: DOCA.vcpuThread, checked: 89827, inside: 89827, worstViolationCycles: 0, verdict: 'BOUNDED' });
    expect(v.source).toMatch(/^estimate from the host's longest out-of-guest gap/);
    // The bound in ns follows from the interval and TSC2NSEC's 2,918,400 kHz.
    const half = (BigInt(v.offsetHigh) - BigInt(v.offsetLow) + 1n) / 2n;
    expect(v.boundCycles).toBe(half.toString());
    expect(v.boundNs).toBe(Math.ceil((Number(half) * 1e6) / DOCA.tscKhz));
  });

  it('docA with a stated offset 1 ms off: FAILED, exit 1, and the evidence named', () => {
    const wrong = DOCA.tscOffset + 2_918_400n;
    const r = kvmtrace(['check', '--no-file-offsets', '--tsc-offset', String(wrong), host, guest]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/vCPU 0 \(host thread 483882\): FAILED/);
    expect(r.stdout).toMatch(/clock verdict: FAILED/);
    const m = /--tsc-offset gives offset -?\d+, but the traces allow only \[(-?\d+), (-?\d+)\]/.exec(r.stdout);
    expect(m).not.toBeNull();
    expect(BigInt(m![1]) <= DOCA.tscOffset && DOCA.tscOffset <= BigInt(m![2])).toBe(true);
  });

  it('salB: reported as not a pair, exit 2', () => {
    const r = kvmtrace(['check', dat('salB-host-trace.dat'), dat('salB-guest-trace-Salamander4.dat')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/salB-guest-trace-Salamander4\.dat does not belong to .*salB-host-trace\.dat/);
    expect(r.stdout).toBe('');
  });

  it('salB with the file ids ignored: nothing states or bounds an offset, so it refuses and says what to record', () => {
    const r = kvmtrace(['check', '--no-file-offsets', dat('salB-host-trace.dat'), dat('salB-guest-trace-Salamander4.dat')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/no TSC mapping for guest .*salB-guest-trace-Salamander4\.dat: .*the traces do not pin it down \(vCPU 0: no offset that aligns one of the host's 3 longest out-of-guest gaps with a hole of the guest's event stream puts every guest event inside a guest-mode window of host thread \d+: the guest trace does not belong to this host trace/);
    expect(r.stderr).toMatch(/next time, capture with `kvmtrace capture host`/);
  });

  it('merge prints the same check', () => {
    const r = kvmtrace(['merge', '--host', host, '--guest', guest, '--text', join(tempDir('kvmtrace-check-'), 'm.txt')]);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/clock check: guest .* — EXACT\n {2}guest CPUs → vCPUs: CPU 0 → vCPU 0 \(the guest has 1 CPU and the VM 1 vCPU\)\n {2}vCPU 0 \(host thread 483882\): EXACT/);
    expect(r.stderr).toMatch(/clock verdict: EXACT/);
  });
});

describe('check on the kvm-pvm capture (fixtures/pvm-1vcpu)', () => {
  it('as bundles: EXACT from debugfs, 40 of 40 checkable sync points satisfied, exit 0', () => {
    const r = kvmtrace(['check', join(PVM, 'host'), join(PVM, 'guest')]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/sync points: 80, 40 checkable, 40 satisfied/);
    expect(r.stdout).toMatch(/the traces alone allow \[-6214, \d+\] \(estimate from sync points \(40 of 80 .*\): agrees/);
    expectGolden('check/pvm-1vcpu.txt', clean(r.stdout));
  });

  it('as bare files: kvm_write_tsc_offset is refuted by the sync points (FAILED, exit 1) and the evidence brackets 0', () => {
    const r = kvmtrace(['check', '--host-clock', 'x86-tsc', '--guest-clock', 'x86-tsc', join(PVM, 'host', 'trace.txt'), join(PVM, 'guest', 'trace.txt')]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/mapping from kvm_write_tsc_offset events \(2\)/);
    expect(r.stdout).toMatch(/sync points: 80, 40 checkable, 0 satisfied/);
    const m = /gives offsets .*, but the traces allow only \[(-?\d+), (-?\d+)\] \(estimate from sync points \(40 of 80/.exec(r.stdout);
    expect(m).not.toBeNull();
    expect(BigInt(m![1]) <= 0n && 0n <= BigInt(m![2])).toBe(true);
  });
});
