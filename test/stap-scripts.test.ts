import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  assembleScript,
  findTscOffsetSymbols,
  generateTscOffsetScript,
  parseRelease,
  pickTscOffsetScript,
  readHostStapFacts,
  STAMP_SCRIPTS,
  stapDir,
  TSC_OFFSET_SCRIPTS,
} from '../src/capture/stap.js';
import { checkStap, haveStap, makeFakeBuildDir } from '../src/capture/stap-run.js';
import { UserError } from '../src/model/errors.js';
import { Command } from 'commander';
import { register as registerStap } from '../src/cli/commands/stap.js';
import { tempDir } from './helpers/tmp.js';

const STAP = haveStap();
if (!STAP) console.log('stap-scripts: systemtap is not installed (apt-get install systemtap; .ci/run does) — stap pass tests skipped');
let work: string;
let build: string;
beforeAll(() => {
  work = tempDir('kvmtrace-stap-test-');
  build = STAP ? makeFakeBuildDir(join(work, 'build')) : '';
});
const dir = stapDir();
const tapset = join(dir, 'tapset');

describe('script choice by kernel release and vendor', () => {
  it('covers every release from 2.6.37 to 6.18 with exactly the documented ranges', () => {
    const cases: [string, 'vmx' | 'svm', string][] = [
      ['2.6.37', 'vmx', 'tsc-offset/vmx-2.6.37-3.10.stp'],
      ['2.6.39.4', 'svm', 'tsc-offset/svm-2.6.37-3.10.stp'],
      ['3.10.0-1160.el7.x86_64', 'vmx', 'tsc-offset/vmx-2.6.37-3.10.stp'],
      ['3.11', 'svm', 'tsc-offset/svm-3.11-4.8.stp'],
      ['4.8.17', 'vmx', 'tsc-offset/vmx-3.11-4.8.stp'],
      ['4.9.0', 'vmx', 'tsc-offset/x86-4.9-5.13.stp'],
      ['5.13.19', 'svm', 'tsc-offset/x86-4.9-5.13.stp'],
      ['5.14.0-427.el9', 'vmx', 'tsc-offset/x86-5.14-6.18.stp'],
      ['6.18.44-fc-v669', 'svm', 'tsc-offset/x86-5.14-6.18.stp'],
    ];
    for (const [rel, v, file] of cases) expect(pickTscOffsetScript(rel, v).file, rel).toBe(file);
  });

  it('refuses releases outside the ranges and asks for the vendor where it matters', () => {
    expect(() => pickTscOffsetScript('2.6.36', 'vmx')).toThrow(/older than 2\.6\.37/);
    expect(() => pickTscOffsetScript('6.19', 'vmx')).toThrow(/newer than 6\.18.*KVM_VCPU_TSC_OFFSET/);
    expect(() => pickTscOffsetScript('3.2', undefined)).toThrow(/--vendor/);
    expect(pickTscOffsetScript('5.15', undefined).vendor).toBeUndefined();
    expect(() => parseRelease('linux')).toThrow(UserError);
  });

  it('finds the hooks in kallsyms, built in or in a module', () => {
    const text = [
      'ffffffff8129c8a0 t kvm_vcpu_write_tsc_offset.part.0',
      'ffffffff8128c3c0 T __traceiter_kvm_write_tsc_offset',
      'ffffffffc0a01230 t vmx_write_tsc_offset\t[kvm_intel]',
      'ffffffffc0a01300 t vmx_adjust_tsc_offset_guest\t[kvm_intel]',
    ].join('\n');
    expect(findTscOffsetSymbols(text)).toEqual([
      { name: 'kvm_vcpu_write_tsc_offset.part.0', module: '' },
      { name: 'vmx_write_tsc_offset', module: 'kvm_intel' },
      { name: 'vmx_adjust_tsc_offset_guest', module: 'kvm_intel' },
    ]);
  });

  it('cross-checks the running host (kallsyms and the kvm_write_tsc_offset tracepoint)', () => {
    const facts = readHostStapFacts('/');
    const g = generateTscOffsetScript(facts.release, facts.vendor, facts);
    expect(g.text.startsWith('#!/usr/bin/stap -g\n')).toBe(true);
    expect(g.text).toContain(`Kernel ${facts.release}`);
    const present = (facts.symbols ?? []).filter((h) => g.script.symbols.includes(h.name));
    if (present.length) expect(g.text).toContain(`/proc/kallsyms has ${present[0].name}`);
    else expect(g.warnings.join('\n')).toMatch(/kallsyms/);
    if (facts.tracepoint) expect(g.text).toContain('tracepoint kvm:kvm_write_tsc_offset present');
    else expect(g.warnings.join('\n')).toMatch(/kvm_write_tsc_offset/);
  });
});

describe.skipIf(!STAP)('every script passes stap -p1', () => {
  const scripts = ['tsc-offset', 'stamp'].flatMap((d) => readdirSync(join(dir, d)).filter((f) => f.endsWith('.stp')).map((f) => `${d}/${f}`));

  it('lists every script in the tables the CLI uses', () => {
    const known = [...TSC_OFFSET_SCRIPTS.map((s) => s.file), ...Object.keys(STAMP_SCRIPTS).map((n) => `stamp/${n}.stp`)];
    expect(scripts.sort()).toEqual(known.sort());
  });

  for (const s of ['tsc-offset', 'stamp'].flatMap((d) => readdirSync(join(stapDir(), d)).map((f) => `${d}/${f}`))) {
    it(s, () => {
      const r = checkStap(join(dir, s), { pass: 1, buildDir: build, includeDir: tapset, guru: s.startsWith('tsc-offset'), args: ['/bin/true', 'main'] });
      expect(r.stderr).toBe('');
      expect(r.ok).toBe(true);
      expect(r.stdout).toMatch(/^probe /m);
    });
  }

  it('and so do the self-contained generated scripts, for every range', () => {
    for (const t of TSC_OFFSET_SCRIPTS) {
      const g = generateTscOffsetScript(t.from, t.vendor);
      const f = join(work, t.file.replace('/', '_'));
      writeFileSync(f, g.text);
      const r = checkStap(f, { pass: 1, buildDir: build, guru: true });
      expect(r.ok, `${t.file}: ${r.stderr}`).toBe(true);
    }
    for (const name of Object.keys(STAMP_SCRIPTS)) {
      const f = join(work, `${name}.stp`);
      writeFileSync(f, assembleScript(`stamp/${name}.stp`, [], false));
      expect(checkStap(f, { pass: 1, buildDir: build, args: ['/bin/true', 'main'] }).ok).toBe(true);
    }
  });
});

describe.skipIf(!STAP)('process probes pass stap -p2 against a binary built with -g', () => {
  let src: string;
  let bin: string;
  beforeAll(() => {
    src = join(work, 'app.c');
    bin = join(work, 'app');
    writeFileSync(src, '__attribute__((noinline)) long work_step(long a, long b) { return a * b + 1; }\nint main(void) { long s = 0; for (int i = 0; i < 3; i++) s += work_step(i, i + 1); return (int)(s & 1); }\n');
    execFileSync('cc', ['-g', '-O0', '-o', bin, src]);
  });

  for (const s of ['stamp/host-qemu.stp', 'stamp/guest-app.stp']) {
    it(s, () => {
      const r = checkStap(join(dir, s), { pass: 2, buildDir: build, includeDir: tapset, args: [bin, 'work_*'] });
      expect(r.ok, r.stderr).toBe(true);
      // Both the call and the return probe resolved to the function, with its source line.
      expect(r.stdout).toContain(`process("${bin}").function("work_step@${src}:1").call`);
      expect(r.stdout).toContain(`process("${bin}").function("work_step@${src}:1").return`);
    });
  }

  it('and a pattern that matches nothing fails pass 2 (the check is real)', () => {
    const r = checkStap(join(dir, 'stamp/guest-app.stp'), { pass: 2, buildDir: build, includeDir: tapset, args: [bin, 'no_such_fn'] });
    expect(r.ok).toBe(false);
    expect(r.stderr).toMatch(/semantic error/);
  });
});

// Kernel probes (kvm functions, kvm tracepoints) need the kernel's DWARF debuginfo (a vmlinux with
// debug info) and the kvm modules' debuginfo to be elaborated (pass 2). Say whether this machine has them.
const release = readHostStapFacts('/').release;
const vmlinux = [`/usr/lib/debug/boot/vmlinux-${release}`, `/usr/lib/debug/lib/modules/${release}/vmlinux`, `/lib/modules/${release}/build/vmlinux`].find(
  (p) => existsSync(p),
);
const kernelReason = !STAP
  ? 'systemtap is not installed'
  : !vmlinux
    ? `no kernel debuginfo for ${release} (no vmlinux with DWARF under /usr/lib/debug or /lib/modules/${release}/build) and no kvm modules (kvm is built in here): kernel probes cannot be elaborated on this machine`
    : '';
if (kernelReason) console.log(`stap-scripts: skipping stap -p2 of the kernel-probe scripts — ${kernelReason}`);

describe.skipIf(kernelReason !== '')(`kernel-probe scripts pass stap -p2 (${kernelReason || 'debuginfo present'})`, () => {
  for (const t of TSC_OFFSET_SCRIPTS.filter((s) => s.to === '6.18')) {
    it(t.file, () => {
      const r = checkStap(join(dir, t.file), { pass: 2, buildDir: `/lib/modules/${release}/build`, includeDir: tapset, guru: true });
      expect(r.ok, r.stderr).toBe(true);
    });
  }
});

describe('kvmtrace stap run', () => {
  it('refuses without --guru and says why', async () => {
    const p = new Command('kvmtrace').exitOverride();
    registerStap(p);
    await expect(p.parseAsync(['node', 'kvmtrace', 'stap', 'run'])).rejects.toThrow(/--guru to consent/);
  });
});
