/**
 * The validation summary, as text for people and as the `--summary` JSON.
 */
import type { ValidationResult } from '../merge/validate.js';

/** The `--summary` JSON: `{"guests":[{"name","vcpus":[{"vcpu","hostTid","checked","inside","worstViolationCycles",…}]}]}`. */
export function validationJson(r: ValidationResult, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ ok: r.ok, ...extra, guests: r.guests, failures: r.failures }, null, 2) + '\n';
}

const pct = (a: number, b: number): string => (b === 0 ? '—' : `${((100 * a) / b).toFixed(b === a ? 0 : 3)} %`);

/** A text table: per guest and vCPU, events checked, % inside, worst violation, sync points. */
export function validationText(r: ValidationResult): string {
  const lines: string[] = [];
  for (const g of r.guests) {
    lines.push(`guest ${g.name} (${g.file})`);
    for (const n of g.notes) lines.push(`  note: ${n}`);
    for (const v of g.vcpus) {
      const win = v.windowKind === 'entry-exit' ? 'kvm_entry→kvm_exit windows' : v.windowKind === 'kvm-run' ? 'KVM_RUN spans minus sched-out gaps' : 'no guest-mode evidence on the host';
      lines.push(`  vCPU ${v.vcpu} on host thread ${v.hostTid ?? '?'} — mapping from ${v.mappingFrom}; checked against ${win}`);
      lines.push(
        `    events checked ${v.checked}, inside ${v.inside} (${pct(v.inside, v.checked)}), not checkable ${v.notCheckable}` +
          (v.checked > v.inside ? `, worst violation ${v.worstViolationCycles} cycles${v.worstViolationNs !== null ? ` (${v.worstViolationNs} ns)` : ''}` : ''),
      );
      const sp = v.sync;
      if (sp.points > 0) {
        const checkable = sp.points - sp.noHostEvidence;
        let line = `    sync points ${sp.points}: ${sp.matched} of ${checkable} matched a host event inside their bracket`;
        if (sp.noHostEvidence) line += `; ${sp.noHostEvidence} had no host event of their kind in the trace (not checkable)`;
        if (sp.offsetLow !== null) line += `; they bound the offset to [${sp.offsetLow}, ${sp.offsetHigh}]`;
        lines.push(line);
      }
    }
  }
  if (r.guests.length === 0) lines.push('no guest to validate');
  lines.push(r.ok ? 'validation: PASSED' : 'validation: FAILED');
  for (const f of r.failures) lines.push(`  ✗ ${f}`);
  return lines.join('\n') + '\n';
}
