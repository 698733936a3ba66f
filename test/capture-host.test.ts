/**
 * `kvmtrace capture host` for real against a small real VM: QEMU/KVM with only its firmware
 * (no kernel), which starts in a second and idles. Checks the bundle, the debugfs thread map, the
 * refusals, and that SIGINT, SIGTERM, --duration and the VM's exit all end the capture with the
 * bundle written and the ftrace instance removed. Skips (saying why) without root, /dev/kvm or QEMU.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateMeta, type BundleMeta } from '../src/model/bundle.js';
import { hostPreflight } from '../src/capture/host-capture.js';

const ROOT = join(import.meta.dirname, '..');
const CLI = ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts')];
/** Where tracefs and debugfs are mounted: found, or mounted, in beforeAll as the capture does it (hostPreflight). */
let TRACEFS = '/sys/kernel/tracing';
let DEBUGFS = '/sys/kernel/debug';

function why(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  if (!existsSync('/dev/kvm')) return 'no /dev/kvm';
  if (spawnSync('qemu-system-x86_64', ['--version']).status !== 0) return 'qemu-system-x86_64 not installed';
  if (spawnSync('make', ['-C', join(ROOT, 'native')]).status !== 0) return 'make -C native failed';
  return undefined;
}
const missing = why();
if (missing) console.log(`capture host tests skipped: ${missing}`);

let tmp: string;
const vms: ChildProcess[] = [];

/** Starts a firmware-only VM named `name`; resolves once its vCPU thread exists. */
async function startVm(name: string): Promise<ChildProcess> {
  const q = spawn(
    'qemu-system-x86_64',
    ['-name', `${name},debug-threads=on`, '-M', 'microvm', '-enable-kvm', '-cpu', 'host,-arch-capabilities', '-m', '64',
      '-nodefaults', '-no-user-config', '-display', 'none', '-nic', 'none', '-serial', 'none'],
    { stdio: 'ignore' },
  );
  vms.push(q);
  for (let i = 0; i < 200; i++) {
    const dirs = readdirSync(join(DEBUGFS, 'kvm')).filter((d) => d.startsWith(`${q.pid}-`));
    const pid = dirs.length ? join(DEBUGFS, 'kvm', dirs[0], 'vcpu0', 'pid') : undefined;
    if (pid && existsSync(pid) && readFileSync(pid, 'utf8').trim() !== '0') return q;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the test VM did not start');
}

interface Capture {
  child: ChildProcess;
  log: () => string;
  done: Promise<number | null>;
}

function capture(args: string[]): Capture {
  const child = spawn(process.execPath, [...CLI, 'capture', 'host', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (log += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (log += d));
  const done = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  return { child, log: () => log, done };
}

async function until(c: Capture, re: RegExp): Promise<void> {
  for (let i = 0; i < 600 && !re.test(c.log()); i++) {
    if (c.child.exitCode !== null) throw new Error(`capture host exited: ${c.log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!re.test(c.log())) throw new Error(`no ${re} in: ${c.log()}`);
}

const meta = (dir: string): BundleMeta => validateMeta(JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')), join(dir, 'meta.json'));
const instanceOf = (c: Capture): string => join(TRACEFS, 'instances', `kvmtrace-${c.child.pid}`);

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'kvmtrace-caphost-'));
  // A fresh machine may have neither mounted: the tests read both before any capture would mount them.
  if (missing === undefined) ({ tracefs: TRACEFS, debugfs: DEBUGFS } = await hostPreflight());
});
afterAll(() => {
  for (const q of vms) if (q.exitCode === null) q.kill();
  rmSync(tmp, { recursive: true, force: true });
});

describe.skipIf(missing !== undefined)('capture host on a real (firmware-only) VM', () => {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    it(`ends on ${sig}: bundle written, instance removed, thread map from debugfs, top level untouched`, async () => {
      const name = `kvmtrace-test-${process.pid}-${sig}`;
      const q = await startVm(name);
      const topBefore = ['trace_clock', 'set_event', 'tracing_on', 'set_event_pid'].map((f) => readFileSync(join(TRACEFS, f), 'utf8'));
      const out = join(tmp, sig);
      const c = capture(['--vm', name, '-o', out]);
      await until(c, /capturing VM/);
      expect(existsSync(instanceOf(c))).toBe(true);
      await new Promise((r) => setTimeout(r, 500));
      c.child.kill(sig);
      expect(await c.done).toBe(0);
      expect(c.log()).toMatch(new RegExp(`${sig}: stopping the capture`));
      expect(c.log()).toMatch(/host bundle written to .* ended by stop/);
      expect(existsSync(instanceOf(c))).toBe(false);
      expect(['trace_clock', 'set_event', 'tracing_on', 'set_event_pid'].map((f) => readFileSync(join(TRACEFS, f), 'utf8'))).toEqual(topBefore);
      const m = meta(out);
      expect(m.role).toBe('host');
      expect(m.traceClock).toBe('x86-tsc');
      const vm = m.vms![0];
      expect(vm.name).toBe(name);
      expect(vm.qemuPid).toBe(q.pid);
      expect(vm.vcpus.length).toBe(1);
      const tid = vm.vcpus[0].tid;
      expect(readFileSync(`/proc/${q.pid}/task/${tid}/comm`, 'utf8').trim()).toBe('CPU 0/KVM');
      expect(vm.vcpus[0].snapshots.map((s) => s.when)).toEqual(['start', 'end']);
      const [s0, s1] = vm.vcpus[0].snapshots;
      expect(s1.hostTsc > s0.hostTsc).toBe(true);
      expect(readdirSync(out).sort()).toEqual(['meta.json', 'trace.txt']);
      // In-band markers bound the complete part of the trace.
      const text = readFileSync(join(out, 'trace.txt'), 'utf8');
      expect(text).toMatch(/tracing_mark_write: kvmtrace capture host: recording all events\n/);
      expect(text).toMatch(/tracing_mark_write: kvmtrace capture host: end\n/);
      // Every event is from QEMU's threads, or a switch to/from one of them.
      const tids = new Set(readdirSync(`/proc/${q.pid}/task`).map(Number));
      for (const line of readFileSync(join(out, 'trace.txt'), 'utf8').split('\n').filter((l) => /^\s*\S.*-\d+\s+\[\d+\]/.test(l))) {
        const pid = Number(/-(\d+)\s+\[/.exec(line)![1]);
        const sw = /prev_pid=(\d+) .* next_pid=(\d+)/.exec(line);
        const wake = /sched_wakeup: .* pid=(\d+)/.exec(line);
        const related =
          tids.has(pid) || (sw && (tids.has(Number(sw[1])) || tids.has(Number(sw[2])))) || (wake && tids.has(Number(wake[1]))) || /tracing_mark_write: kvmtrace capture host/.test(line);
        expect(related, line).toBeTruthy();
      }
      q.kill();
    });
  }

  it('ends after --duration, and when the VM exits (with only the start reading)', async () => {
    const name = `kvmtrace-test-${process.pid}-dur`;
    const q = await startVm(name);
    const c = capture(['--vm', String(q.pid), '-o', join(tmp, 'dur'), '--duration', '1']);
    expect(await c.done).toBe(0);
    expect(c.log()).toMatch(/ended by duration/);
    expect(meta(join(tmp, 'dur')).vms![0].vcpus[0].snapshots.length).toBe(2);

    const c2 = capture(['--vm', name, '-o', join(tmp, 'exit')]);
    await until(c2, /capturing VM/);
    q.kill();
    expect(await c2.done).toBe(0);
    expect(c2.log()).toMatch(/ended by vm-exit/);
    expect(c2.log()).toMatch(/note: the VM exited during the capture: debugfs has only the start reading/);
    expect(meta(join(tmp, 'exit')).vms![0].vcpus[0].snapshots.map((s) => s.when)).toEqual(['start']);
    expect(existsSync(instanceOf(c2))).toBe(false);
  });

  it('refuses to run without root', () => {
    const setpriv = spawnSync('setpriv', ['--version']);
    if (setpriv.error) {
      console.log('setpriv not installed: the non-root refusal is not tested');
      return;
    }
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, ...CLI, 'capture', 'host', '--vm', 'x', '-o', join(tmp, 'nobody')], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('kvmtrace: capture host must run as root (it writes tracefs and reads debugfs kvm/)\n');
    expect(existsSync(join(tmp, 'nobody'))).toBe(false);
  });

  it('refuses clearly: unknown VM, existing bundle, --hold without --wait', async () => {
    const none = capture(['--vm', 'no-such-vm-kvmtrace', '-o', join(tmp, 'none')]);
    expect(await none.done).toBe(2);
    expect(none.log()).toMatch(/kvmtrace: no VM named "no-such-vm-kvmtrace" on this host/);
    expect(existsSync(join(tmp, 'none'))).toBe(false);

    const name = `kvmtrace-test-${process.pid}-exists`;
    const q = await startVm(name);
    const dir = join(tmp, 'exists');
    spawnSync('mkdir', ['-p', dir]);
    writeFileSync(join(dir, 'meta.json'), '{"keep": true}');
    const c = capture(['--vm', name, '-o', dir, '--duration', '1']);
    expect(await c.done).toBe(2);
    expect(c.log()).toMatch(/already holds a bundle; not overwriting it \(give --force/);
    expect(readFileSync(join(dir, 'meta.json'), 'utf8')).toBe('{"keep": true}');
    expect(existsSync(instanceOf(c))).toBe(false);

    const h = capture(['--vm', name, '-o', join(tmp, 'hold'), '--hold']);
    expect(await h.done).toBe(2);
    expect(h.log()).toMatch(/--hold goes with --wait/);
    q.kill();
  });

  it('--wait follows QEMU from its start and records the TSC offset writes of vCPU creation', async () => {
    const name = `kvmtrace-test-${process.pid}-wait`;
    const out = join(tmp, 'wait');
    const c = capture(['--vm', name, '--wait', '-o', out]);
    await until(c, /waiting for QEMU/);
    const q = await startVm(name);
    await until(c, /capturing VM/);
    await new Promise((r) => setTimeout(r, 300));
    c.child.kill('SIGINT');
    expect(await c.done).toBe(0);
    const m = meta(out);
    const tid = m.vms![0].vcpus[0].tid;
    const writes = readFileSync(join(out, 'trace.txt'), 'utf8').split('\n').filter((l) => l.includes('kvm_write_tsc_offset:'));
    expect(writes.length).toBeGreaterThan(0);
    for (const w of writes) expect(w).toMatch(new RegExp(`-${tid}\\s+\\[\\d+\\].*kvm_write_tsc_offset: vcpu=0 prev=\\d+ next=\\d+`));
    q.kill();
  });

  it('--hold records only kvm_write_tsc_offset until SIGUSR1, and marks where everything starts', async () => {
    const name = `kvmtrace-test-${process.pid}-hold`;
    const out = join(tmp, 'hold-ok');
    const c = capture(['--vm', name, '--wait', '--hold', '-o', out]);
    await until(c, /waiting for QEMU/);
    const q = await startVm(name);
    await until(c, /holding: recording only kvm_write_tsc_offset until SIGUSR1/);
    await new Promise((r) => setTimeout(r, 500));
    const usr1Tsc = BigInt(spawnSync(join(ROOT, 'native', 'build', 'rdtsc'), [], { encoding: 'utf8' }).stdout.trim());
    c.child.kill('SIGUSR1');
    await until(c, /recording everything/);
    await new Promise((r) => setTimeout(r, 500));
    c.child.kill('SIGINT');
    expect(await c.done).toBe(0);
    const lines = readFileSync(join(out, 'trace.txt'), 'utf8').split('\n').filter((l) => /\[\d+\]/.test(l));
    const hold = lines.findIndex((l) => l.includes('tracing_mark_write: kvmtrace capture host: holding, only kvm_write_tsc_offset'));
    const all = lines.findIndex((l) => l.includes('tracing_mark_write: kvmtrace capture host: recording all events'));
    expect(hold).toBeGreaterThanOrEqual(0);
    expect(all).toBeGreaterThan(hold);
    // Before SIGUSR1 only the hold event (and markers); the other events are switched on one by
    // one after it, and the marker follows the last of them.
    for (const l of lines.slice(0, all)) {
      const ts = BigInt(/\s(\d+):\s/.exec(l)![1]);
      if (ts < usr1Tsc) expect(l, l).toMatch(/kvm_write_tsc_offset:|tracing_mark_write: kvmtrace capture host/);
    }
    expect(lines.slice(all).some((l) => /sched_switch:|kvm_fpu:|kvm_msr:|kvm_pio:/.test(l))).toBe(true);
    q.kill();
  });
});
