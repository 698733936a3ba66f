/**
 * `kvmtrace check HOST GUEST…`: how far a guest's clock mapping can be trusted. Plans the mapping
 * from every source the inputs carry (estimating it when none states it), merges the guests
 * without writing them (validation is a lookup in the host index, so the host is read once), and
 * prints per guest and vCPU the source, offsets, error bound, evidence and verdict
 * (EXACT, BOUNDED (± N ns), FAILED). Exit 0 for EXACT and BOUNDED, 1 for FAILED, 2 for inputs that
 * cannot be merged (not a pair, no evidence).
 */
import type { Command } from 'commander';
import { UserError } from '../../model/errors.js';
import { prepareMerge, runMerge } from '../../merge/session.js';
import { clockCheck } from '../../merge/estimate/verdict.js';
import { crossCheck } from '../../merge/estimate/for-plan.js';
import { clockCheckJson, clockCheckText } from '../../export/validation-report.js';
import { mergeInputOptions, mergeRequest, QUIET_FLAG, violationsFlag, violationsOption, type MergeFlags } from './merge.js';
import { progress } from '../progress.js';

/** Registers `kvmtrace check`. */
export function register(program: Command): void {
  mergeInputOptions(
    program
      .command('check')
      .summary("check a guest's clock mapping against the evidence (EXACT, BOUNDED, FAILED)")
      .description(
        'Check how far the mapping guest TSC → host TSC can be trusted. HOST and GUEST are trace files or capture ' +
          'bundle folders; the first is the host. The mapping comes from debugfs snapshots, kvm_write_tsc_offset events, ' +
          "trace-cmd's TIME_SHIFT, a zeroed offset (stap) or --tsc-offset; with none of them it is estimated from the " +
          'traces (kvmsync sync points, guest-mode windows). Prints per guest and vCPU the source, offset(s) and scaling, ' +
          'the error bound, the sync points checked and satisfied, the guest events inside guest-mode windows and a ' +
          'verdict. Exit status 0 for EXACT and BOUNDED, 1 for FAILED, 2 when the inputs cannot be merged at all (e.g. ' +
          'the guest file does not belong to the host). See docs/clock-sync.md.',
      )
      .argument('<host>', 'host trace file or bundle folder')
      // Optional here so that `--violations HOST GUEST` works: the flag's optional N takes HOST, given back below.
      .argument('[guests...]', 'guest trace files or bundle folders'),
  )
    .option('--json', 'print the check as JSON on stdout (offsets as exact decimal strings)')
    .option('--no-cross-check', 'do not set stated offsets against an estimate from the traces alone (saves a pass over each guest)')
    .option(...violationsOption('--json'))
    .option(...QUIET_FLAG)
    .action(async (hostArg: string, guestArgs: string[], o: MergeFlags & { json?: boolean; crossCheck?: boolean; violations?: string | true; quiet?: boolean }) => {
      if (o.host?.length || o.guest?.length) throw new UserError('check takes HOST and GUEST as arguments, not --host/--guest');
      const { list, listEvents, inputs: args } = violationsFlag(o.violations, [hostArg, ...guestArgs], process.argv);
      if (args.length < 2) throw new UserError('check needs a host and at least one guest: give HOST GUEST…');
      // Validation reads the host index alone: the host is read once, for the index.
      const prepared = await prepareMerge({ ...mergeRequest(args, o), hostStream: false, listEvents });
      if (!prepared.guests.some((g) => g.plan)) throw new UserError('check needs a host and at least one guest');
      const prog = progress('checking', o.quiet);
      const run = await runMerge(prepared, [{ batch: (b) => prog.tick(b.n) }]);
      prog.done();
      const c = clockCheck(prepared, run.result);
      // Every stated mapping against what the traces alone allow (a second pass over the guest).
      if (o.crossCheck !== false) await crossCheck(prepared, c);
      if (prepared.diags.count) process.stderr.write(prepared.diags.summary(10) + '\n');
      if (!o.quiet) for (const n of prepared.notes) process.stderr.write(`note: ${n}\n`);
      for (const g of c.guests) for (const x of g.warnings) process.stderr.write(`warning: ${g.name}: ${x}\n`);
      if (o.json) process.stdout.write(clockCheckJson(c));
      else {
        if (!o.quiet) for (const g of c.guests) for (const n of g.notes) process.stdout.write(`note: ${g.name}: ${n}\n`);
        process.stdout.write(clockCheckText(c, { violations: list }));
        for (const f of c.failures) process.stdout.write(`  ✗ ${f}\n`);
      }
      if (c.verdict === 'FAILED') process.exitCode = 1;
    });
}
