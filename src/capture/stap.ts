/**
 * The classic method's systemtap side: which `stap/tsc-offset/` script zeroes the guest TSC offset
 * on a given kernel release and CPU vendor, what the running host says about it (/proc/kallsyms,
 * the kvm_write_tsc_offset tracepoint), and a self-contained script (tapset inlined) to run.
 * Script facts are in stap/README.md.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../model/errors.js';

/** The CPU virtualisation family KVM's vendor module is written for. */
export type StapVendor = 'vmx' | 'svm';

/** One TSC-offset script and the kernel releases it covers (inclusive, major.minor[.patch]). */
export interface TscOffsetScript {
  /** Path inside `stap/`, e.g. `tsc-offset/x86-5.14-6.18.stp`. */
  file: string;
  from: string;
  to: string;
  /** Undefined when the script works for every vendor (the function is in x86.c). */
  vendor?: StapVendor;
  /** Kernel symbols the script probes, for the kallsyms cross-check. */
  symbols: string[];
}

/** Every TSC-offset script, oldest first. */
export const TSC_OFFSET_SCRIPTS: readonly TscOffsetScript[] = [
  { file: 'tsc-offset/vmx-2.6.37-3.10.stp', from: '2.6.37', to: '3.10', vendor: 'vmx', symbols: ['vmx_write_tsc_offset', 'vmx_adjust_tsc_offset'] },
  { file: 'tsc-offset/svm-2.6.37-3.10.stp', from: '2.6.37', to: '3.10', vendor: 'svm', symbols: ['svm_write_tsc_offset', 'svm_adjust_tsc_offset'] },
  { file: 'tsc-offset/vmx-3.11-4.8.stp', from: '3.11', to: '4.8', vendor: 'vmx', symbols: ['vmx_write_tsc_offset', 'vmx_adjust_tsc_offset', 'vmx_adjust_tsc_offset_guest'] },
  { file: 'tsc-offset/svm-3.11-4.8.stp', from: '3.11', to: '4.8', vendor: 'svm', symbols: ['svm_write_tsc_offset', 'svm_adjust_tsc_offset', 'svm_adjust_tsc_offset_guest'] },
  { file: 'tsc-offset/x86-4.9-5.13.stp', from: '4.9', to: '5.13', symbols: ['kvm_vcpu_write_tsc_offset'] },
  { file: 'tsc-offset/x86-5.14-6.18.stp', from: '5.14', to: '6.18', symbols: ['kvm_vcpu_write_tsc_offset', 'kvm_vcpu_write_tsc_offset.part.0'] },
];

/** The stamp scripts (`stap/stamp/NAME.stp`) and what they take as arguments. */
export const STAMP_SCRIPTS: Readonly<Record<string, { side: 'host' | 'guest'; args: string[] }>> = {
  'host-kvm': { side: 'host', args: [] },
  'host-qemu': { side: 'host', args: ['QEMU binary', 'function pattern'] },
  'guest-app': { side: 'guest', args: ['application binary', 'function pattern'] },
};

/** Parses a kernel release (`6.18.44-fc-v669`, `2.6.37.6`, `3.10.0-1160.el7.x86_64`) to [major, minor, patch]. */
export function parseRelease(release: string): [number, number, number] {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(release.trim());
  if (!m) throw new UserError(`kernel release "${release}": expected MAJOR.MINOR[.PATCH…], e.g. 6.18.44`);
  return [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
}

/** Orders releases: 2.6.x compares on three numbers, later kernels on major.minor. */
function key(r: [number, number, number]): number {
  return r[0] * 1e6 + r[1] * 1e3 + (r[0] === 2 ? r[2] : 0);
}

/** The script for a release and vendor; a UserError saying why when none covers it. */
export function pickTscOffsetScript(release: string, vendor: StapVendor | undefined): TscOffsetScript {
  const k = key(parseRelease(release));
  const inRange = TSC_OFFSET_SCRIPTS.filter((s) => key(parseRelease(s.from)) <= k && k <= key(parseRelease(s.to)));
  if (inRange.length === 0) {
    const first = TSC_OFFSET_SCRIPTS[0].from;
    const last = TSC_OFFSET_SCRIPTS[TSC_OFFSET_SCRIPTS.length - 1].to;
    throw new UserError(
      k < key(parseRelease(first))
        ? `kernel ${release} is older than ${first}: KVM had no write_tsc_offset hook to probe before 2.6.37`
        : `kernel ${release} is newer than ${last}, the newest release these scripts were checked against; check that x86.c still has kvm_vcpu_write_tsc_offset(vcpu, u64 l1_offset) and pass --kernel ${last}` +
          ` (or, with a VMM that supports it, set the offset with the KVM_VCPU_TSC_OFFSET vCPU attribute instead)`,
    );
  }
  const generic = inRange.find((s) => s.vendor === undefined);
  if (generic) return generic;
  if (!vendor) throw new UserError(`kernel ${release} needs a vendor-specific script: pass --vendor intel or --vendor amd`);
  return inRange.find((s) => s.vendor === vendor)!;
}

/** Maps `--vendor` words and /proc/cpuinfo vendor ids to the KVM family. */
export function vendorFrom(word: string): StapVendor | undefined {
  const w = word.trim().toLowerCase();
  if (w === 'intel' || w === 'vmx' || w === 'genuineintel') return 'vmx';
  if (w === 'amd' || w === 'svm' || w === 'authenticamd' || w === 'hygongenuine') return 'svm';
  return undefined;
}

/** A kernel symbol found in kallsyms, with its module ('' when built into the kernel). */
export interface KallsymsHit {
  name: string;
  module: string;
}

/** What the running host says about the TSC-offset hooks. */
export interface HostStapFacts {
  release: string;
  vendorId?: string;
  vendor?: StapVendor;
  /** Candidate symbols found in /proc/kallsyms; undefined when it could not be read. */
  symbols?: KallsymsHit[];
  /** True when tracefs has the kvm:kvm_write_tsc_offset event (the cross-check will fire). */
  tracepoint: boolean;
}

const CANDIDATES = /^(vmx|svm)_(write|adjust)_tsc_offset(_guest)?$|^kvm_vcpu_write_tsc_offset(\.part\.\d+)?$/;

/** Finds the TSC-offset hook symbols in kallsyms text (`ADDR TYPE NAME [MODULE]` lines). */
export function findTscOffsetSymbols(kallsyms: string): KallsymsHit[] {
  const out: KallsymsHit[] = [];
  for (const line of kallsyms.split('\n')) {
    if (!line.includes('tsc_offset')) continue;
    const f = line.trim().split(/\s+/);
    if (f.length >= 3 && CANDIDATES.test(f[2])) out.push({ name: f[2], module: f[3] ? f[3].replace(/^\[|\]$/g, '') : '' });
  }
  return out;
}

/** Reads the facts of the machine under `root` ('/' normally; a recorded tree in tests). */
export function readHostStapFacts(root = '/'): HostStapFacts {
  const rd = (p: string): string | undefined => {
    try {
      return readFileSync(join(root, p), 'utf8');
    } catch {
      return undefined;
    }
  };
  const release = rd('proc/sys/kernel/osrelease')?.trim();
  if (!release) throw new UserError(`cannot read ${join(root, 'proc/sys/kernel/osrelease')}: pass --kernel RELEASE`);
  const vendorId = /^vendor_id\s*:\s*(\S+)/m.exec(rd('proc/cpuinfo') ?? '')?.[1];
  const kallsyms = rd('proc/kallsyms');
  const tracepoint = ['sys/kernel/tracing', 'sys/kernel/debug/tracing'].some((t) =>
    existsSync(join(root, t, 'events/kvm/kvm_write_tsc_offset')),
  );
  return {
    release,
    vendorId,
    vendor: vendorId ? vendorFrom(vendorId) : undefined,
    symbols: kallsyms === undefined ? undefined : findTscOffsetSymbols(kallsyms),
    tracepoint,
  };
}

/** The package's `stap/` folder (found upward from this module, in src/ and in dist/ alike). */
export function stapDir(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(d, 'stap', 'tapset', 'kvmtrace.stp'))) return join(d, 'stap');
    d = dirname(d);
  }
  throw new UserError('cannot find the stap/ folder of this kvmtrace installation (stap/tapset/kvmtrace.stp)');
}

/** A self-contained script: a header saying what was chosen and why, the tapset, then the script. */
export function assembleScript(file: string, notes: string[], guru: boolean): string {
  const dir = stapDir();
  const body = readFileSync(join(dir, file), 'utf8').replace(/^#!.*\n/, '');
  const tapset = readFileSync(join(dir, 'tapset', 'kvmtrace.stp'), 'utf8');
  return [
    `#!/usr/bin/stap${guru ? ' -g' : ''}`,
    `// Generated by kvmtrace from stap/${file}.`,
    ...notes.map((n) => `// ${n}`),
    '',
    '// ---- stap/tapset/kvmtrace.stp',
    tapset.trimEnd(),
    '',
    `// ---- stap/${file}`,
    body.trimEnd(),
    '',
  ].join('\n');
}

/** A generated TSC-offset script and what the choice rests on. */
export interface GeneratedTscScript {
  script: TscOffsetScript;
  text: string;
  /** Things the user should read before running it (missing symbols, no tracepoint, …). */
  warnings: string[];
}

/**
 * Picks and assembles the TSC-offset script for a release (the running one when `facts` is given)
 * and cross-checks it against the host: the probed symbols in kallsyms and the tracepoint.
 */
export function generateTscOffsetScript(release: string, vendor: StapVendor | undefined, facts?: HostStapFacts): GeneratedTscScript {
  const script = pickTscOffsetScript(release, vendor);
  const notes = [`Kernel ${release}${vendor ? `, vendor ${vendor}` : ''}: script for ${script.from} – ${script.to}. Run with stap -g.`];
  const warnings: string[] = [];
  if (facts) {
    if (facts.symbols === undefined) {
      warnings.push('cannot read /proc/kallsyms: the probed functions could not be checked');
    } else {
      const hits = facts.symbols.filter((h) => script.symbols.includes(h.name));
      if (hits.length === 0) {
        warnings.push(
          `none of ${script.symbols.join(', ')} is in /proc/kallsyms: is kvm (and kvm_intel/kvm_amd) loaded? (an inlined function has no symbol; stap still finds it through debuginfo)`,
        );
      } else {
        notes.push(`Host: /proc/kallsyms has ${hits.map((h) => `${h.name} (${h.module ? `module ${h.module}` : 'built into the kernel'})`).join(', ')}.`);
      }
    }
    if (facts.tracepoint) notes.push('Host: tracepoint kvm:kvm_write_tsc_offset present; every "next" it reports must be 0 (cross-check).');
    else warnings.push('tracefs has no kvm:kvm_write_tsc_offset event (kvm not loaded, or tracefs not mounted): the cross-check will not fire');
  }
  return { script, text: assembleScript(script.file, notes, true), warnings };
}
