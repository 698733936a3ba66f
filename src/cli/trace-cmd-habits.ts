/**
 * Options people type from habit with trace-cmd (3.x `trace-cmd report`), and what kvmtrace has
 * instead. Some look alike but mean something else: said plainly, so that a misspelt flag is not
 * "corrected" into one with another meaning.
 */

/** trace-cmd option → what to say when a kvmtrace command is given it. */
const HABITS: Record<string, string> = {
  '--ts-offset':
    "trace-cmd report's --ts-offset N adds N to the timestamps of the next -i file; kvmtrace has no such shift. " +
    "kvmtrace's --tsc-offset N is the guest's TSC offset as KVM applies it (guest TSC = host TSC + N; VCPU=N for one vCPU), " +
    'by which the merge maps each guest event to host TSC.',
  '--ts2secs':
    "trace-cmd report's --ts2secs HZ converts timestamps at HZ per second; kvmtrace's --tsc-khz KHZ is the TSC frequency in kHz " +
    '(the merge keeps TSC cycles and converts them only for display).',
  '-i':
    'trace-cmd report -i FILE names an input; kvmtrace takes its inputs as arguments, HOST GUEST… (trace files or bundle folders), ' +
    'or as --host FILE and --guest FILE.',
};

/** The hint for an unknown option `flag` (`--x` or `--x=v`), if it is a trace-cmd habit. */
export function traceCmdHint(flag: string): string | undefined {
  return HABITS[flag.replace(/=.*$/, '')];
}
