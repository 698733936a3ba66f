/**
 * The end-of-merge report on stderr: inputs, notes, unparsable lines, the validation table, and
 * where the outputs are.
 */
import type { MergeReport } from '../export/export-merge.js';
import type { PreparedMerge } from '../merge/session.js';
import { clockCheckText, validationText } from '../export/validation-report.js';
import { clockCheck } from '../merge/estimate/verdict.js';

/** Prints the report of a merge; with `violations`, its clock check lists the guest events validation did not accept. */
export function printMergeReport(p: PreparedMerge, r: MergeReport, o: { quiet?: boolean; violations?: boolean; outputs: (string | undefined)[] }): void {
  const w = (s: string): boolean => process.stderr.write(s);
  if (!o.quiet) {
    for (const s of r.perSource) {
      const bad = s.stats.badLines ?? 0;
      w(`${s.machine}: ${s.file} — ${s.events} events, clock ${s.clockFrom === 'unknown' ? `not recorded (${s.clock === 'counter' ? 'integer timestamps' : 'timestamps in seconds'})` : `${s.clock} (from ${s.clockFrom})`}${bad ? `, ${bad} unparsable line(s)` : ''}${s.outOfOrder ? `, ${s.outOfOrder} out of order` : ''}${s.lostEvents ? `, ${s.lostEvents} events LOST by the tracer (windows near the losses may be incomplete)` : ''}\n`);
    }
    w(`TSC frequency: ${p.tscKhz ? `${p.tscKhz} kHz (${p.tscKhzFrom})` : 'unknown (times printed in cycles)'}\n`);
    for (const n of p.notes) w(`note: ${n}\n`);
  }
  // The user's word against the files, a choice between sources, extrapolated clocks: said even when quiet.
  for (const g of p.guests) for (const x of g.plan?.warnings ?? []) w(`warning: ${g.specs[0].machine}: ${x}\n`);
  if (p.diags.count) w(p.diags.summary(o.quiet ? 3 : 10) + '\n');
  if (!o.quiet || !r.result.ok) w(validationText(r.result));
  if ((!o.quiet || !r.result.ok) && p.guests.some((g) => g.plan)) w(clockCheckText(clockCheck(p, r.result), { violations: o.violations }));
  if (!r.result.ok) w('kvmtrace: the merged timeline FAILED validation — do not trust its guest/host ordering (see above)\n');
  if (!o.quiet) for (const f of o.outputs) if (f) w(`wrote ${f}\n`);
}

/**
 * The exit status of a command that wrote a merged timeline: 1 when the timeline it wrote is not in
 * time order (events past the reorder window: the output itself is wrong, with or without --check),
 * or when validation failed and the user asked `--check`; else 0.
 */
export function mergeExitStatus(r: MergeReport, check: boolean | undefined): 0 | 1 {
  if (r.perSource.some((s) => s.outOfOrder > 0)) return 1;
  return !r.result.ok && check ? 1 : 0;
}
