/**
 * What the analyses (`exits`, `latency`, `view`) share beyond the merge's inputs: `--vm` to look at
 * one VM of a host that runs several, `-q`, and the warnings printed after the report.
 */
import type { Command } from 'commander';
import type { PreparedMerge } from '../merge/session.js';
import type { ValidationResult } from '../merge/validate.js';
import { selectVm, severalVms, vmsText, type VmSelection } from '../analysis/vm-select.js';
import { QUIET_FLAG, type MergeFlags } from './commands/merge.js';

/** The flags of an analysis command. */
export interface AnalysisFlags extends MergeFlags {
  vm?: string;
  quiet?: boolean;
}

/** Adds `--vm` and `-q` to an analysis command. */
export function analysisOptions(c: Command): Command {
  return c
    .option('--vm <name|pid>', "only this VM: its name (host bundle, trace.dat GUEST option, or its guest's), QEMU's pid, or the id shown for it")
    .option(...QUIET_FLAG);
}

/** The VM `--vm` names (a UserError naming the VMs there are when it names none), or undefined for all. */
export function vmChoice(p: PreparedMerge, o: AnalysisFlags): VmSelection | undefined {
  return o.vm === undefined ? undefined : selectVm(p.index, o.vm);
}

/** Prints diagnostics and validation failures of the merge behind an analysis, and (unless quiet) that it mixes VMs. */
export function printAnalysisWarnings(p: PreparedMerge, v: ValidationResult, o: AnalysisFlags): void {
  if (p.diags.count) process.stderr.write(p.diags.summary(3) + '\n');
  if (!v.ok)
    process.stderr.write(
      `kvmtrace: warning: the merged timeline FAILED validation (${v.failures.length} failure(s), e.g. ${v.failures[0] ?? '?'}) — run kvmtrace merge for details; guest/host pairs may be wrong\n`,
    );
  if (!o.quiet && o.vm === undefined && severalVms(p.index))
    process.stderr.write(`note: the host trace has vCPU threads of more than one VM: ${vmsText(p.index)}; each row and lane names its VM, and --vm NAME|PID picks one\n`);
}
