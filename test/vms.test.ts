/**
 * Hosts with several VMs, and the habits people bring, through the built CLI on real data: the
 * docA trace.dat pair (its host ran two VMs: the guest's, named by the host's GUEST option, on
 * thread 483882, and another on threads 453724 and 453725 that no input names), the pvm-1vcpu
 * bundles, and an unrelated guest made from fixtures/clock-pair. Also: one time zero for the text,
 * the JSON and the view; positional trace files for merge; the demo's next steps.
 */
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { kvmtrace, ROOT } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';
import { externalMissing, MASTERARBEIT, reference } from './helpers/external.js';

const PVM = join(ROOT, 'fixtures', 'pvm-1vcpu');
let dir: string;
beforeAll(() => {
  dir = tempDir('kvmtrace-vms-');
});

describe.skipIf(externalMissing)('docA: a host with two VMs', () => {
  if (externalMissing) console.log(`skipped: ${externalMissing}`);
  const host = join(MASTERARBEIT, 'docA-host-trace.dat');
  const guest = join(MASTERARBEIT, 'docA-guest-trace-Salamander4.dat');
  /** Threads that ran kvm_entry in the host trace, and how many each ran (from trace-cmd's own text of the file). */
  const entries = (): Map<number, number> => {
    const n = new Map<number, number>();
    for (const l of readFileSync(reference('docA-host-trace.dat.report-rawts.txt'), 'utf8').split('\n')) {
      const m = /-(\d+) +\[\d+\] *\d+: kvm_entry:/.exec(l);
      if (m) n.set(Number(m[1]), (n.get(Number(m[1])) ?? 0) + 1);
    }
    return n;
  };

  it('exits labels every row with its VM, says the host has several, and --vm keeps one', () => {
    const all = kvmtrace(['exits', host, guest, '--json']);
    expect(all.status).toBe(0);
    const rows = (JSON.parse(all.stdout) as { vcpus: { tid: number; vm: string; exits: number }[] }).vcpus;
    expect(new Set(rows.map((r) => r.tid))).toEqual(new Set(entries().keys()));
    expect(rows.find((r) => r.tid === 483882)?.vm).toBe('Salamander4');
    for (const r of rows.filter((x) => x.tid !== 483882)) expect(r.vm).toBe('?');
    expect(all.stderr).toMatch(/note: the host trace has vCPU threads of more than one VM: VM Salamander4 \(vCPU thread 483882\); vCPU threads 453724, 453725 of no VM the inputs name; .*--vm NAME\|PID picks one/);
    // The text table has a VM column; -q drops the note.
    const text = kvmtrace(['exits', host, guest, '-q']);
    expect(text.stdout).toMatch(/^VM +VCPU THREAD +EXITS/m);
    expect(text.stdout).toMatch(/^Salamander4 +qemu-system-x86-483882 vCPU 0 /m);
    expect(text.stdout).toMatch(/^\? +CPU 0\/KVM-453724 vCPU 0 /m);
    expect(text.stderr).toBe('');

    const one = kvmtrace(['exits', host, guest, '--vm', 'Salamander4', '--json']);
    expect(one.status).toBe(0);
    const r1 = JSON.parse(one.stdout) as { vm: string; vcpus: { tid: number; exits: number }[]; total: { count: number } };
    expect(r1.vm).toBe('Salamander4');
    expect(r1.vcpus.map((r) => r.tid)).toEqual([483882]);
    // What --vm leaves is that VM's row as the full report has it, and the totals are its own.
    expect(r1.total.count).toBe(rows.find((r) => r.tid === 483882)!.exits);
    expect(one.stderr).not.toMatch(/more than one VM/);
  });

  it('a selection that matches nothing is refused (status 2), naming what there is', () => {
    const vm = kvmtrace(['exits', host, guest, '--vm', 'Salamander9']);
    expect(vm.status).toBe(2);
    expect(vm.stdout).toBe('');
    expect(vm.stderr).toBe(
      'kvmtrace: --vm Salamander9: no VM of that name, QEMU pid or id in these inputs, which have: VM Salamander4 (vCPU thread 483882); vCPU threads 453724, 453725 of no VM the inputs name\n',
    );
    const v7 = kvmtrace(['exits', host, guest, '--vcpu', '7']);
    expect(v7.status).toBe(2);
    expect(v7.stdout).toBe('');
    expect(v7.stderr).toMatch(/^kvmtrace: --vcpu 7: no host thread runs vCPU 7 in these traces; there are: vCPU 0 on thread 453724 \(VM \?\), vCPU 0 on thread 483882 \(VM Salamander4\), vCPU 1 on thread 453725 \(VM \?\)\n/);
    // vCPU 1 exists on this host, but not in the VM chosen.
    const both = kvmtrace(['exits', host, guest, '--vm', 'Salamander4', '--vcpu', '1']);
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/--vcpu 1: no host thread of VM Salamander4 runs vCPU 1 in these traces; there are: vCPU 0 on thread 483882 \(VM Salamander4\)/);
    for (const cmd of [['view', '--print'], ['latency', '--from', 'host:kvm_entry', '--to', 'guest:*']]) {
      const r = kvmtrace([cmd[0], host, guest, ...cmd.slice(1), '--vm', '4242']);
      expect(r.status, cmd[0]).toBe(2);
      expect(r.stderr, cmd[0]).toMatch(/^kvmtrace: --vm 4242: no VM of that name, QEMU pid or id/);
    }
  });

  it('latency --vm counts only that VM: its guest and its own host threads', () => {
    const n = entries();
    const run = (extra: string[]): { vm: string | null; values: Record<string, number> } =>
      JSON.parse(kvmtrace(['latency', host, guest, '--from', 'host:kvm_entry', '--to', 'guest:*', '--json', ...extra]).stdout);
    const all = run([]);
    const one = run(['--vm', 'Salamander4']);
    expect(all.vm).toBeNull();
    expect(one.vm).toBe('Salamander4');
    expect(all.values.FROM_EVENTS).toBe([...n.values()].reduce((a, b) => a + b, 0));
    expect(one.values.FROM_EVENTS).toBe(n.get(483882));
    // Other VMs' entries never pair with this guest's events: the pairs are the same either way.
    expect(one.values.LATENCY_SAMPLES).toBe(all.values.LATENCY_SAMPLES);
  });

  it('view names each host lane after its VM, and --vm shows only that VM', () => {
    const all = kvmtrace(['view', host, guest, '--print', '--size', '120x12']).stdout.split('\n');
    expect(all[3]).toMatch(/^>Salamander4 vCPU 0 483882 qemu-/);
    expect(all[4]).toMatch(/^ \? vCPU 0 453724 CPU 0\/KVM +\|/);
    expect(all[5]).toMatch(/^ \? vCPU 1 453725 CPU 1\/KVM +\|/);
    expect(all[6]).toMatch(/^ Salamander4 CPU 0 +\|/);
    const one = kvmtrace(['view', host, guest, '--print', '--size', '120x12', '--vm', 'Salamander4']).stdout.split('\n');
    expect(one[0]).toMatch(/^kvmtrace view — 2 lane\(s\) of VM Salamander4, /);
    expect(one[3]).toMatch(/^>Salamander4 vCPU 0 483882 /);
    expect(one[4]).toMatch(/^ Salamander4 CPU 0 +\|/);
    expect(one[5]).toBe('');
  });

  it('text, JSON and view count time from one zero, the first event of the merge, and each says where it is', () => {
    const json = join(dir, 'docA.json');
    const txt = join(dir, 'docA.txt');
    const m = kvmtrace(['merge', host, guest, '-q', '-o', json, '--text', txt]);
    expect(m.status).toBe(0);
    const lines = readFileSync(txt, 'utf8').split('\n');
    const zero = /^# time 0 \(\+SECONDS 0\) is the first event of the merge, at HOST_TSC (\d+)$/.exec(lines[0])?.[1];
    expect(zero).toBeDefined();
    const first = lines.find((l) => !l.startsWith('#'))!;
    expect(first.split(' ').slice(0, 2)).toEqual([zero, '+0.000000000']);
    // The first event of the merge is the guest's (it started tracing before the host).
    expect(first.split(' ')[2]).toBe('Salamander4');
    const doc = JSON.parse(readFileSync(json, 'utf8')) as { traceEvents: { ph: string; ts?: number }[]; otherData: { zeroHostTsc: string } };
    expect(doc.otherData.zeroHostTsc).toBe(zero);
    expect(Math.min(...doc.traceEvents.filter((e) => e.ph !== 'M').map((e) => e.ts!))).toBe(0);
    // The view states the same zero, and panning left stops at it.
    const v = kvmtrace(['view', host, guest, '--print', '--size', '160x10', '--at', '0', '--span', '1ms', '--keys', '[[[[hhhh']).stdout.split('\n');
    expect(v[0]).toMatch(new RegExp(`^kvmtrace view — .* — window 0\\.0+ ms \\+ 1\\.000 ms — 0 = first event, host TSC ${zero}$`));
    expect(v[1]).toMatch(/^since first event +0(\.0+)? ms /);
    expect(v[9]).toMatch(/^@ 0\.0+ ms \|/);
  });

  it('merge takes trace files as arguments, as check does: the first is the host', () => {
    const a = kvmtrace(['merge', host, guest, '-q', '--text', '-']);
    const b = kvmtrace(['merge', '--host', host, '--guest', guest, '-q', '--text', '-']);
    expect(a.status).toBe(0);
    expect(a.stdout.split('\n').length).toBeGreaterThan(90000);
    expect(a.stdout).toBe(b.stdout);
    // With --host given, every argument is a guest.
    const c = kvmtrace(['merge', '--host', host, guest, '-q', '--text', '-']);
    expect(c.stdout).toBe(a.stdout);
  });
});

describe("a guest bundle that is not the VM's", () => {
  it('says that the names differ and the guest has 2 CPUs where the VM has 1', () => {
    // A real 2-CPU trace (this machine, fixtures/clock-pair) given as the guest of the pvm capture's 1-vCPU VM "kvmlab".
    const g = join(dir, 'lab-guest');
    mkdirSync(g);
    symlinkSync(join(ROOT, 'fixtures', 'clock-pair', 'x86-tsc.txt'), join(g, 'trace.txt'));
    writeFileSync(
      join(g, 'meta.json'),
      JSON.stringify({ format: 'kvmtrace-bundle', version: 1, role: 'guest', name: 'lab', traces: [{ file: 'trace.txt', format: 'ftrace-text' }], traceClock: 'x86-tsc', cpus: 2 }),
    );
    const r = kvmtrace(['merge', join(PVM, 'host'), g, '-o', join(dir, 'x.json')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      `kvmtrace: ${g}/trace.txt does not look like the guest of VM kvmlab in ${PVM}/host/trace.txt: the names differ (the guest calls its VM "lab", the host's VM is "kvmlab"), ` +
        'and the guest has 2 CPUs where the VM has 1 vCPU — give the host and guest captured together\n',
    );
    // The same trace as a bare file: its header (`#P:2`) says 2 CPUs, so it is refused the same way before it is read.
    const bare = kvmtrace(['merge', join(PVM, 'host'), join(g, 'trace.txt'), '-o', join(dir, 'y.json')]);
    expect(bare.status).toBe(2);
    expect(bare.stderr).toBe(
      `kvmtrace: ${g}/trace.txt does not look like the guest of VM kvmlab in ${PVM}/host/trace.txt: the guest has 2 CPUs where the VM has 1 vCPU — give the host and guest captured together\n`,
    );
    // Without a header (as trace_pipe writes it), nothing counts its CPUs before it is read: its second CPU gives it away.
    const pipe = join(dir, 'pipe.txt');
    writeFileSync(pipe, readFileSync(join(g, 'trace.txt'), 'utf8').split('\n').filter((l) => !l.startsWith('#')).join('\n'));
    const headless = kvmtrace(['merge', join(PVM, 'host'), pipe, '-o', join(dir, 'z.json')]);
    expect(headless.status).toBe(2);
    expect(headless.stderr).toMatch(/has events on a CPU that would run on vCPU 1, but VM kvmlab of .* has 1 vCPU \(0\): the guest trace does not look like this VM's/);
  });
});

describe('the demo', () => {
  it('ends with ready-to-run command lines for view, exits and check, and each one runs', () => {
    const out = join(dir, 'demo');
    const r = kvmtrace(['demo', '-o', out]);
    expect(r.status).toBe(0);
    const tail = r.stderr.slice(r.stderr.indexOf('next, on the same capture:\n'));
    const cmds = [...tail.matchAll(/^ {2}(node \S+|kvmtrace) (view|exits|check) (.+?) +# /gm)];
    expect(cmds.map((m) => m[2])).toEqual(['view', 'exits', 'check']);
    for (const m of cmds) {
      const args = m[3].split(' ');
      const run = kvmtrace([m[2], ...args]);
      expect(run.status, m[0]).toBe(0);
      expect(run.stdout.length, m[0]).toBeGreaterThan(100);
    }
    expect(kvmtrace(['demo', '-q', '-o', out]).stderr).not.toMatch(/next, on the same capture/);
  });
});
