/**
 * Capture building blocks on this machine for real: tracefs instances (never the top-level
 * buffer), the trace_pipe poller, the static helpers, host facts, QEMU name parsing, and the
 * guest capture script run here (this machine is itself a KVM guest: tracefs, x86-tsc and
 * trace_marker work). Tests that need root or tracefs skip with the reason printed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateMeta } from '../src/model/bundle.js';
import { TraceInstance, findTracefs, sumStats } from '../src/capture/tracefs.js';
import { TracePipePoller } from '../src/capture/process.js';
import { parseCpuinfo, tscKhzFromLog } from '../src/capture/host-facts.js';
import { qemuName } from '../src/capture/vm.js';
import { signedU64 } from '../src/capture/debugfs.js';
import { GUEST_SCRIPT, NATIVE_DIR } from '../src/capture/native.js';
import { guestScriptArgs } from '../src/capture/guest-capture.js';
import { prepareBundleDir } from '../src/capture/output.js';
import { kvmtrace, ROOT } from './helpers/cli.js';

const TRACEFS = '/sys/kernel/tracing';
const root = process.getuid?.() === 0;
const hasTracefs = existsSync(join(TRACEFS, 'instances'));
const tracingOk = root && hasTracefs;
const debugfsMounted = readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => l.split(' ')[2] === 'debugfs');
if (tracingOk && !debugfsMounted) console.log('capture host --wait test skipped: debugfs is not mounted');
if (!tracingOk) console.log(`capture tests on tracefs skipped: ${root ? '' : 'not root; '}${hasTracefs ? '' : `no ${TRACEFS}/instances`}`);

const built = spawnSync('make', ['-C', NATIVE_DIR], { encoding: 'utf8' });
const helpersOk = built.status === 0;
if (!helpersOk) console.log(`native helpers not built (make -C native failed): ${built.stderr}`);
const syncpt = join(NATIVE_DIR, 'build', 'syncpt');
const rdtsc = join(NATIVE_DIR, 'build', 'rdtsc');

/** The top-level tracing state a capture must leave exactly as it was. */
function topLevelState(): Record<string, string> {
  const files = ['trace_clock', 'set_event', 'tracing_on', 'buffer_size_kb', 'set_event_pid', 'current_tracer'];
  const s: Record<string, string> = {};
  for (const f of files) s[f] = readFileSync(join(TRACEFS, f), 'utf8');
  // Instances of processes still alive belong to tests running in parallel (probench, capture
  // host): only those whose owner is gone can be leftovers.
  s.instances = readdirSync(join(TRACEFS, 'instances'))
    .filter((name) => {
      const pid = /-(\d+)$/.exec(name)?.[1];
      return !(pid && existsSync(`/proc/${pid}`));
    })
    .sort()
    .join(' ');
  return s;
}

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'kvmtrace-capture-test-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('parsing host facts', () => {
  it('takes the TSC kHz from the refined calibration before the detected one', () => {
    const log = '[    0.000057] tsc: Detected 2596.136 MHz processor\n[    1.2] tsc: Refined TSC clocksource calibration: 2596.102 MHz\n';
    expect(tscKhzFromLog(log)).toEqual({ khz: 2596102, line: 'tsc: Refined TSC clocksource calibration: 2596.102 MHz' });
    expect(tscKhzFromLog('[0.1] tsc: Detected 2596.136 MHz processor')?.khz).toBe(2596136);
    expect(tscKhzFromLog('nothing here')).toBeUndefined();
  });

  it('reads this machine\'s /proc/cpuinfo', () => {
    const text = readFileSync('/proc/cpuinfo', 'utf8');
    const info = parseCpuinfo(text);
    expect(info.cpus).toBe((text.match(/^processor/gm) ?? []).length);
    expect(info.cpus).toBeGreaterThan(0);
    expect(info.flags).toContain('tsc');
    expect(info.vendor).toMatch(/^(GenuineIntel|AuthenticAMD|\S+)$/);
  });

  it('sums per-CPU buffer stats', () => {
    const cpu = (e: number, o: number, d: number): string =>
      `entries: ${e}\noverrun: ${o}\ncommit overrun: 0\nbytes: 0\noldest event ts: 0.0\nnow ts: 1.0\ndropped events: ${d}\nread events: 3\n`;
    expect(sumStats([cpu(1, 2, 3), cpu(10, 20, 30)])).toEqual({ entries: 11, overrun: 22, dropped: 33 });
  });

  it('finds the VM name in QEMU command lines', () => {
    expect(qemuName(['qemu-system-x86_64', '-name', 'kvmlab,debug-threads=on', '-m', '256'])).toBe('kvmlab');
    expect(qemuName(['qemu', '-name', 'guest=web1,debug-threads=on'])).toBe('web1');
    expect(qemuName(['qemu', '-name', 'a,,b'])).toBe('a,b');
    expect(qemuName(['qemu', '-m', '256'])).toBeUndefined();
  });

  it('turns the kernel\'s u64 print of a negative offset into the signed value', () => {
    // Seen on this machine: kvm_write_tsc_offset next=18446741991681723101.
    expect(signedU64('18446741991681723101')).toBe(-2082027828515n);
    expect(signedU64('0\n')).toBe(0n);
    expect(signedU64('9223372036854775807')).toBe(9223372036854775807n);
  });
});

describe('bundle folder', () => {
  it('refuses a folder that holds a bundle unless forced', async () => {
    const d = join(tmp, 'existing');
    await prepareBundleDir(d, false);
    writeFileSync(join(d, 'meta.json'), '{}');
    await expect(prepareBundleDir(d, false)).rejects.toThrow(/already holds a bundle; not overwriting it \(give --force/);
    await prepareBundleDir(d, true);
    expect(existsSync(join(d, 'meta.json'))).toBe(false);
  });
});

describe('native helpers', () => {
  it.skipIf(!helpersOk)('rdtsc prints increasing TSC values and stamps file reads', () => {
    const a = BigInt(spawnSync(rdtsc, [], { encoding: 'utf8' }).stdout.trim());
    const r = spawnSync(rdtsc, ['/proc/sys/kernel/ostype', '/nonexistent'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    const [ok, bad] = r.stdout.trim().split('\n').map((l) => l.split('\t'));
    expect(ok[0]).toBe('/proc/sys/kernel/ostype');
    expect(ok[1]).toBe('Linux');
    expect(BigInt(ok[2])).toBeGreaterThan(a);
    expect(bad[1]).toMatch(/^!No such file/);
  });

  it.skipIf(!helpersOk)('dbgout refuses bad arguments before it touches any port', () => {
    // Only refusals are tested: on a real machine an OUT to 0x5e9 would reach whatever sits there.
    const p = spawnSync(join(NATIVE_DIR, 'build', 'dbgout'), ['-p', '0x10000'], { encoding: 'utf8' });
    expect(p.status).toBe(1);
    expect(p.stderr).toMatch(/-p wants a port up to 0xffff, not "0x10000"/);
    const f = spawnSync(join(NATIVE_DIR, 'build', 'dbgout'), ['/nonexistent/bundle.tar'], { encoding: 'utf8' });
    expect(f.status).toBe(2);
    expect(f.stderr).toBe('dbgout: cannot open /nonexistent/bundle.tar: No such file or directory\n');
  });

  it.skipIf(!helpersOk)('syncpt refuses bad arguments with a usage message', () => {
    const r = spawnSync(syncpt, ['-k', 'hlt'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/-k wants cpuid, pio or pio,cpuid/);
    const m = spawnSync(syncpt, ['-m', '/nonexistent/trace_marker'], { encoding: 'utf8' });
    expect(m.status).toBe(2);
    expect(m.stderr).toMatch(/cannot open trace marker \/nonexistent\/trace_marker/);
  });
});

describe.skipIf(!tracingOk)('tracefs instance (real, this machine)', () => {
  it('creates its own instance, records sync points with x86-tsc, and removes it; the top level is untouched', async () => {
    const before = topLevelState();
    const tracefs = await findTracefs();
    expect(tracefs).toBe(TRACEFS);
    const inst = await TraceInstance.create(TRACEFS, `kvmtrace-test-${process.pid}`);
    try {
      expect(await inst.availableClocks()).toContain('x86-tsc');
      await inst.setClock('x86-tsc');
      await expect(inst.setClock('no-such-clock')).rejects.toThrow(/trace clock no-such-clock is not offered by this kernel \(it has: .*x86-tsc/);
      await expect(inst.enableEvent('nosuchsys:foo')).rejects.toThrow(/event nosuchsys:foo does not exist on this kernel/);
      await inst.enableEvent('sched:sched_process_exec');
      expect((await inst.read('set_event')).trim()).toBe('sched:sched_process_exec');
      const file = join(tmp, 'poll.txt');
      const out = openSync(file, 'w');
      const poller = TracePipePoller.start(join(inst.dir, 'trace_pipe'), out, 20);
      await inst.write('tracing_on', '1');
      const r = spawnSync(syncpt, ['-n', '4', '-k', 'cpuid', '-m', join(inst.dir, 'trace_marker')], { encoding: 'utf8' });
      expect(r.status).toBe(0);
      await inst.write('tracing_on', '0');
      await poller.stop();
      closeSync(out);
      expect(poller.error).toBeUndefined();
      const lines = (await readFile(file, 'utf8')).split('\n').filter((l) => l.includes('kvmsync'));
      const cpus = parseCpuinfo(readFileSync('/proc/cpuinfo', 'utf8')).cpus;
      expect(lines.length).toBe(4 * cpus);
      for (const l of lines) {
        const m = /\[(\d+)\] \S+ (\d+): tracing_mark_write: kvmsync seq=\d+ cpu=(\d+) kind=cpuid t0=(\d+) t1=(\d+)$/.exec(l);
        expect(m, l).not.toBeNull();
        const [, bufCpu, ts, cpu, t0, t1] = m!;
        // The marker is stamped (x86-tsc) after t1, on the CPU the point names.
        expect(bufCpu).toBe(cpu.padStart(3, '0').slice(-bufCpu.length));
        expect(BigInt(t0) < BigInt(t1) && BigInt(t1) < BigInt(ts)).toBe(true);
      }
      expect((await inst.stats()).entries).toBe(0);
    } finally {
      await inst.remove();
    }
    expect(existsSync(inst.dir)).toBe(false);
    expect(topLevelState()).toEqual(before);
  });

  it('refuses an instance that exists (it would be someone else\'s)', async () => {
    const inst = await TraceInstance.create(TRACEFS, `kvmtrace-test-${process.pid}-b`);
    try {
      await expect(TraceInstance.create(TRACEFS, `kvmtrace-test-${process.pid}-b`)).rejects.toThrow(/exists already/);
    } finally {
      await inst.remove();
    }
  });
});

describe('guest capture script', () => {
  it('is POSIX sh: sh -n, dash -n and shellcheck pass', () => {
    expect(spawnSync('sh', ['-n', GUEST_SCRIPT]).status).toBe(0);
    const dash = spawnSync('dash', ['-n', GUEST_SCRIPT]);
    if (dash.error) console.log('dash not installed: dash -n skipped');
    else expect(dash.status).toBe(0);
    const sc = spawnSync('shellcheck', ['-s', 'sh', GUEST_SCRIPT], { encoding: 'utf8' });
    if (sc.error) console.log('shellcheck not installed: skipped (CI installs it)');
    else expect(sc.stdout + sc.stderr).toBe('');
  });

  it('maps capture guest options onto script flags', () => {
    expect(
      guestScriptArgs({ outDir: 'o', syncKinds: ['pio', 'cpuid'], syncPoints: 5, durationS: 2, events: ['irq:*'], name: 'g', force: true }, '/s'),
    ).toEqual(['-o', 'o', '-s', '/s', '-d', '2', '-e', 'irq:*', '-k', 'pio', '-k', 'cpuid', '-n', '5', '-N', 'g', '-f']);
    expect(guestScriptArgs({ outDir: 'o', command: ['ls', '-l'] }, '/s')).toEqual(['-o', 'o', '-s', '/s', '--', 'ls', '-l']);
  });

  const runScript = (args: string[]) => spawnSync('sh', [GUEST_SCRIPT, '-s', syncpt, ...args], { encoding: 'utf8', timeout: 60_000 });

  it.skipIf(!tracingOk || !helpersOk)('records a guest bundle here around a command, with sync points at start and end', () => {
    const before = topLevelState();
    const dir = join(tmp, 'guest1');
    const r = runScript(['-o', dir, '-k', 'cpuid', '-n', '3', '-N', 'here', '-V', 'kvmlab', '--', 'sh', '-c', 'ls / > /dev/null']);
    expect(r.stderr).toMatch(/bundle written to/);
    expect(r.status).toBe(0);
    const meta = validateMeta(JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')), 'meta.json');
    expect(meta.role).toBe('guest');
    expect(meta.name).toBe('here');
    expect(meta.traceClock).toBe('x86-tsc');
    expect(meta.guest?.vm).toBe('kvmlab');
    expect(meta.guest?.syncKind).toBe('cpuid');
    expect(meta.guest?.clocksource).toBe(readFileSync('/sys/devices/system/clocksource/clocksource0/current_clocksource', 'utf8').trim());
    const cpus = parseCpuinfo(readFileSync('/proc/cpuinfo', 'utf8')).cpus;
    expect(meta.cpus).toBe(cpus);
    // Each CPU paired with its vCPU by APIC id (KVM's vCPU id under QEMU), as /proc/cpuinfo lists them.
    const apic = [...readFileSync('/proc/cpuinfo', 'utf8').matchAll(/^processor\s*: (\d+)$[\s\S]*?^apicid\s*: (\d+)$/gm)].map((m) => [Number(m[1]), Number(m[2])]);
    expect(apic.length).toBe(cpus);
    expect([...meta.guest!.cpuToVcpu!]).toEqual(apic);
    expect(meta.lostEvents).toBe(0);
    const trace = readFileSync(join(dir, 'trace.txt'), 'utf8');
    const sync = trace.split('\n').filter((l) => l.includes('kvmsync'));
    expect(sync.length).toBe(2 * 3 * cpus);
    expect(trace).toMatch(/tracing_mark_write: kvmtrace capture start/);
    expect(trace).toMatch(/tracing_mark_write: kvmtrace capture end/);
    expect(trace).toMatch(/sched_switch: /);
    expect(readdirSync(dir).sort()).toEqual(['meta.json', 'trace.txt']);
    expect(topLevelState()).toEqual(before);
  });

  it.skipIf(!tracingOk || !helpersOk)('with -I records the files inspect reads, so inspect of the bundle equals inspect of this machine', () => {
    const dir = join(tmp, 'guest-inspect');
    const r = runScript(['-o', dir, '-k', 'cpuid', '-n', '1', '-I', '--', 'true']);
    expect(r.status, r.stderr).toBe(0);
    const json = (root: string): Record<string, unknown> => {
      const x = spawnSync(process.execPath, [...CLI, 'inspect', '--root', root, '--json'], { encoding: 'utf8' });
      expect(x.status, x.stderr).toBe(0);
      const o = JSON.parse(x.stdout) as Record<string, unknown>;
      delete o.root;
      return o;
    };
    const here = json('/');
    expect(json(join(dir, 'sysfs'))).toEqual(here);
    expect((here.virtio as unknown[]).length).toBeGreaterThan(0);
  });

  it.skipIf(!tracingOk || !helpersOk)('falls back to another clock when the one asked for is missing, and says so', () => {
    const dir = join(tmp, 'guest-clock');
    const r = runScript(['-o', dir, '-c', 'no-such-clock', '-k', 'cpuid', '-n', '1', '--', 'true']);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/WARNING: trace clock no-such-clock is not available here .*; using global\. Timestamps will not be TSC cycles/);
    expect(validateMeta(JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')), 'meta.json').traceClock).toBe('global');
  });

  it.skipIf(!tracingOk || !helpersOk)('writes a tar to stdout with -T', () => {
    // The command's own output must not end up in the tar.
    const r = spawnSync('sh', ['-c', `sh ${GUEST_SCRIPT} -s ${syncpt} -T -k cpuid -n 1 -- echo chatter | tar -t -f -`], { encoding: 'utf8' });
    expect(r.stderr).toMatch(/chatter/);
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n').sort()).toEqual(['meta.json', 'trace.txt']);
  });

  it.skipIf(!tracingOk || !helpersOk)('refuses to overwrite a bundle, and says why pio cannot work where ioperm is missing', () => {
    const dir = join(tmp, 'guest1');
    const r = runScript(['-o', dir, '-k', 'cpuid', '--', 'true']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/already holds files; not overwriting a bundle/);
    const pio = runScript(['-o', join(tmp, 'guest-pio'), '-k', 'pio', '-n', '1', '--', 'true']);
    if (pio.status === 0) {
      console.log('kind=pio works on this machine (ioperm available)');
    } else {
      expect(pio.stderr).toMatch(/syncpt: ioperm\(0xe9\) failed: .*CONFIG_X86_IOPL_IOPERM/);
      expect(pio.stderr).toMatch(/capture aborted; no bundle written/);
      expect(existsSync(join(tmp, 'guest-pio', 'meta.json'))).toBe(false);
    }
    for (const x of [r, pio]) expect(existsSync(join(TRACEFS, 'instances', `kvmtrace-${x.pid}`))).toBe(false);
  });

  const CLI = ['--import', 'tsx', join(import.meta.dirname, '..', 'src', 'cli', 'main.ts')];

  it('kvmtrace guest-script prints the script itself', () => {
    const r = spawnSync(process.execPath, [...CLI, 'guest-script'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(readFileSync(GUEST_SCRIPT, 'utf8'));
  });

  it.skipIf(!tracingOk || !helpersOk)('kvmtrace capture guest runs the script with the built syncpt and writes a bundle', () => {
    const dir = join(tmp, 'cli-guest');
    const r = spawnSync(process.execPath, [...CLI, 'capture', 'guest', '-o', dir, '--sync', 'cpuid', '--sync-points', '2', '--name', 'g1', '--', 'true'], {
      encoding: 'utf8',
    });
    expect(r.stderr).toMatch(/bundle written to/);
    expect(r.status).toBe(0);
    const meta = validateMeta(JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')), 'meta.json');
    expect(meta.name).toBe('g1');
    // With Node in the guest, the bundle carries what `kvmtrace inspect` finds here.
    const inspect = meta.guest?.inspect as { clocksource?: string; tscFlags?: string[] } | undefined;
    expect(inspect?.clocksource).toBe(readFileSync('/sys/devices/system/clocksource/clocksource0/current_clocksource', 'utf8').trim());
    const cpuFlags = new Set(/^flags\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))![1].split(/\s+/));
    expect(inspect?.tscFlags?.length).toBeGreaterThan(0);
    for (const f of inspect?.tscFlags ?? []) expect(cpuFlags.has(f)).toBe(true);
    expect(readFileSync(join(dir, 'trace.txt'), 'utf8').split('\n').filter((l) => l.includes('kvmsync')).length).toBe(2 * 2 * meta.cpus!);
    const bad = spawnSync(process.execPath, [...CLI, 'capture', 'guest', '-o', join(tmp, 'x'), '--sync', 'hlt'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toBe('kvmtrace: --sync hlt: expected pio or cpuid\n');
  });

  it.skipIf(!tracingOk || !helpersOk)('a failed capture guest leaves no folder it created (a folder the user made stays)', () => {
    const made = join(tmp, 'failed-guest');
    const r = kvmtrace(['capture', 'guest', '-o', made, '-e', 'nosuchsystem:nosuchevent', '-d', '1']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/cannot enable event nosuchsystem:nosuchevent.*\n.*capture aborted; no bundle written/);
    expect(existsSync(made)).toBe(false);
    const mine = join(tmp, 'users-folder');
    mkdirSync(mine);
    expect(kvmtrace(['capture', 'guest', '-o', mine, '-e', 'nosuchsystem:nosuchevent', '-d', '1']).status).toBe(2);
    expect(readdirSync(mine)).toEqual([]);
  });

  it.skipIf(!tracingOk || !helpersOk || !debugfsMounted)('capture host --wait -d N gives up after N s when QEMU never starts, and leaves no folder', () => {
    const out = join(tmp, 'never-host');
    const vm = `kvmtrace-never-${process.pid}`;
    // The timeout only guards against a hang (the capture used to wait for ever); -d 1 ends it.
    const r = spawnSync(process.execPath, [join(ROOT, 'dist', 'cli', 'main.js'), 'capture', 'host', '--vm', vm, '--wait', '-d', '1', '-o', out], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toMatch(new RegExp(`kvmtrace: QEMU "${vm}" did not start within the 1 s of --duration; no bundle written\n$`));
    expect(r.status).toBe(2);
    expect(existsSync(out)).toBe(false);
  });

  it.skipIf(!tracingOk || !helpersOk || !debugfsMounted)('capture host stopped by SIGTERM after its stderr reader went away still cleans up', async () => {
    const out = join(tmp, 'no-stderr-host');
    const child = spawn(process.execPath, [join(ROOT, 'dist', 'cli', 'main.js'), 'capture', 'host', '--vm', `kvmtrace-never-${process.pid}`, '--wait', '-o', out], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    while (!/waiting for QEMU/.test(err)) await new Promise((r) => setTimeout(r, 20));
    child.stderr.destroy(); // what a parent that stops reading does (spawnSync after its timeout)
    const code = new Promise<number | null>((r) => child.on('exit', r));
    child.kill('SIGTERM');
    expect(await code).toBe(2); // "stopped before the VM started", said to nobody
    expect(existsSync(out)).toBe(false);
    expect(existsSync(join(TRACEFS, 'instances', `kvmtrace-${child.pid}`))).toBe(false);
  });

  it.skipIf(!tracingOk || !helpersOk)('recovers the events when its trace reader dies mid-capture', async () => {
    const dir = join(tmp, 'guest-reader-dies');
    const child = spawn('sh', [GUEST_SCRIPT, '-s', syncpt, '-o', dir, '-k', 'cpuid', '-n', '2', '-d', '3'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    for (let i = 0; i < 100 && !/tracing started/.test(err); i++) await new Promise((r) => setTimeout(r, 50));
    // The reader is the script's `cat .../trace_pipe` child: crash it, as busybox did in a guest.
    const cat = spawnSync('pgrep', ['-P', String(child.pid), '-x', 'cat'], { encoding: 'utf8' }).stdout.trim();
    expect(cat).toMatch(/^\d+$/);
    process.kill(Number(cat), 'SIGSEGV');
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(code).toBe(0);
    expect(err).toMatch(/the trace reader died; starting a new one/);
    const trace = readFileSync(join(dir, 'trace.txt'), 'utf8');
    const cpus = parseCpuinfo(readFileSync('/proc/cpuinfo', 'utf8')).cpus;
    // The end points were recorded after the crash and still reach the bundle.
    expect(trace.split('\n').filter((l) => l.includes('kvmsync')).length).toBe(2 * 2 * cpus);
    expect(trace).toMatch(/kvmtrace capture end/);
  });

  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    it.skipIf(!tracingOk || !helpersOk)(`ends cleanly on ${sig} mid-capture: bundle written, instance removed`, async () => {
      const dir = join(tmp, `guest-${sig}`);
      const child = spawn('sh', [GUEST_SCRIPT, '-s', syncpt, '-o', dir, '-k', 'cpuid', '-n', '2', '-d', '60'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      // Wait until the capture is running (the instance exists and the start points are in).
      const inst = join(TRACEFS, 'instances', `kvmtrace-${child.pid}`);
      for (let i = 0; i < 100 && !(existsSync(inst) && existsSync(join(dir, 'trace.txt.part'))); i++) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 500));
      expect(existsSync(inst)).toBe(true);
      child.kill(sig);
      const code = await new Promise<number | null>((r) => child.on('close', r));
      expect(err).toMatch(/stopping/);
      expect(code).toBe(0);
      expect(existsSync(inst)).toBe(false);
      validateMeta(JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')), 'meta.json');
      expect(readFileSync(join(dir, 'trace.txt'), 'utf8')).toMatch(/kvmtrace capture end/);
    });
  }
});
