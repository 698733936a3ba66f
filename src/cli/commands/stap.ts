/**
 * `kvmtrace stap generate | run`: the classic method — zero the guest's TSC offset with a guru-mode
 * systemtap script picked for the kernel and vendor, and the get_cycles() stamp scripts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../../model/errors.js';
import {
  assembleScript,
  generateTscOffsetScript,
  readHostStapFacts,
  STAMP_SCRIPTS,
  vendorFrom,
  type GeneratedTscScript,
  type StapVendor,
} from '../../capture/stap.js';
import { runStap } from '../../capture/stap-run.js';
import { AtomicWriter } from '../../export/atomic-writer.js';

interface PickFlags {
  kernel?: string;
  vendor?: string;
}

/** The script for the named kernel/vendor, or the running host's (with its cross-checks). */
function pick(o: PickFlags): GeneratedTscScript {
  let vendor: StapVendor | undefined;
  if (o.vendor !== undefined) {
    vendor = vendorFrom(o.vendor);
    if (!vendor) throw new UserError(`--vendor ${o.vendor}: expected intel or amd`);
  }
  if (o.kernel !== undefined) return generateTscOffsetScript(o.kernel, vendor);
  const facts = readHostStapFacts('/');
  return generateTscOffsetScript(facts.release, vendor ?? facts.vendor, facts);
}

async function writeOut(path: string, text: string): Promise<void> {
  const w = new AtomicWriter(path);
  try {
    await w.write(text);
    await w.commit();
  } catch (e) {
    await w.abort();
    throw e;
  }
}

/** Registers `kvmtrace stap`. */
export function register(program: Command): void {
  const stap = program
    .command('stap')
    .summary('the classic method: zero the guest TSC offset with systemtap, stamp events with get_cycles()')
    .description(
      'The classic method: make KVM write TSC offset 0 for guests started meanwhile (a guru-mode systemtap script), and ' +
        'stamp events with get_cycles() on both sides.',
    );

  stap
    .command('generate')
    .summary('print the TSC-offset script for this kernel, or a stamp script')
    .description('Print the TSC-offset script for the running (or named) kernel and vendor, or a stamp script, with the tapset inlined.')
    .option('--kernel <release>', 'kernel release to pick for (default: the running one, cross-checked with /proc/kallsyms and tracefs)')
    .option('--vendor <intel|amd>', 'CPU vendor, for kernels before 4.9 (default: /proc/cpuinfo)')
    .option('--stamp <name>', `a get_cycles() stamp script instead: ${Object.keys(STAMP_SCRIPTS).join(', ')}`)
    .option('-o, --output <file>', 'write the script here instead of stdout')
    .action(async (o: PickFlags & { stamp?: string; output?: string }) => {
      let text: string;
      if (o.stamp !== undefined) {
        const s = STAMP_SCRIPTS[o.stamp];
        if (!s) throw new UserError(`--stamp ${o.stamp}: expected one of ${Object.keys(STAMP_SCRIPTS).join(', ')}`);
        const usage = s.args.length ? ` Arguments: ${s.args.map((a, i) => `@${i + 1} ${a}`).join(', ')}.` : '';
        text = assembleScript(`stamp/${o.stamp}.stp`, [`Stamp script for the ${s.side}.${usage} Output: the kvmtrace-stap line format.`], false);
      } else {
        const g = pick(o);
        for (const w of g.warnings) process.stderr.write(`warning: ${w}\n`);
        process.stderr.write(`kvmtrace: stap/${g.script.file} (Linux ${g.script.from} – ${g.script.to}); run it with stap -g, then start the guest\n`);
        text = g.text;
      }
      await writeOut(o.output ?? '-', text);
    });

  stap
    .command('run')
    .summary('run the TSC-offset script (systemtap guru mode) until Ctrl-C')
    .description('Run the TSC-offset script (systemtap guru mode) until Ctrl-C; start the guest after it is armed.')
    .option('--guru', 'consent: let systemtap change the argument of a KVM function in the running kernel')
    .option('--kernel <release>', 'pick the script for this release instead of the running one')
    .option('--vendor <intel|amd>', 'CPU vendor, for kernels before 4.9')
    .option('--script <file>', 'run this script instead of the generated one (e.g. one you edited)')
    .option('-o, --output <file>', 'where its lines go (kvmtrace-stap format, a merge source)', 'tsc-offset.stap')
    .action(async (o: PickFlags & { guru?: boolean; script?: string; output: string }) => {
      if (!o.guru) {
        throw new UserError(
          'stap run changes what KVM writes as the guest TSC offset, inside the running kernel (systemtap guru mode). ' +
            'Read the script first (kvmtrace stap generate), then re-run with --guru to consent. ' +
            'On Linux 5.16+ with a VMM that supports it, the KVM_VCPU_TSC_OFFSET vCPU attribute does the same without systemtap.',
        );
      }
      const err = (s: string): boolean => process.stderr.write(s);
      let script = o.script;
      let tmp: string | undefined;
      if (!script) {
        const g = pick(o);
        for (const w of g.warnings) err(`warning: ${w}\n`);
        tmp = mkdtempSync(join(tmpdir(), 'kvmtrace-stap-'));
        script = join(tmp, 'tsc-offset.stp');
        writeFileSync(script, g.text);
        err(`kvmtrace: running stap/${g.script.file} (Linux ${g.script.from} – ${g.script.to}) in guru mode\n`);
      }
      err('kvmtrace: when the output shows "# zeroing armed", START THE GUEST; guests already running keep their offset until KVM rewrites it.\n');
      err('kvmtrace: Ctrl-C stops stap. Nothing is restored: guests started meanwhile keep TSC offset 0 until KVM writes a new one (vCPU reset, guest TSC write).\n');
      try {
        const code = await runStap(script, { guru: true, out: o.output });
        err(`kvmtrace: stap exited with code ${code}; its lines are in ${o.output}. Nothing was restored.\n`);
        if (code !== 0) process.exitCode = 1;
      } finally {
        if (tmp) rmSync(tmp, { recursive: true, force: true });
      }
    });
}
