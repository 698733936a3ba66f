/**
 * The validation summary, as text for people and as the `--summary` JSON.
 */
import { validationVerdict, type EventList, type HostEdge, type ListedEvent, type ValidationResult } from '../merge/validate.js';
import { verdictText, type ClockCheck, type PairingCheck, type VcpuCheck } from '../merge/estimate/verdict.js';

/**
 * The `--summary` JSON: `{"ok","validation":"passed|FAILED|not applicable",…,"guests":[{"name","vcpus":[{"vcpu","hostTid",
 * "checked","inside","worstViolationCycles","violations","notCheckableEvents","residual","hostSkew",…}]}]}`.
 */
export function validationJson(r: ValidationResult, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ ok: r.ok, validation: validationVerdict(r), ...extra, guests: r.guests, failures: r.failures }, null, 2) + '\n';
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
          (v.checked > v.inside ? `, worst violation ${v.worstIsLowerBound ? '≥ ' : ''}${v.worstViolationCycles} cycles${v.worstViolationNs !== null ? ` (${v.worstViolationNs} ns)` : ''}` : ''),
      );
      if (v.missedSwitchIns)
        lines.push(`    switch-ins the host trace lacks: ${v.missedSwitchIns} (the thread ran again with no sched_switch to it; from its latest wakeup to that proof, not checkable)`);
      if (v.clampedStamps) lines.push(`    ${v.clampedStamps} guest events share their global-clock stamp with another CPU's (maybe clamped: not checkable)`);
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
  const verdict = validationVerdict(r);
  if (verdict === 'not applicable') lines.push('validation: not applicable (nothing to check: it needs a host trace and a guest trace)');
  else lines.push(verdict === 'passed' ? 'validation: PASSED' : 'validation: FAILED');
  for (const f of r.failures) lines.push(`  ✗ ${f}`);
  return lines.join('\n') + '\n';
}

/**
 * The clock check (`kvmtrace check`, and the end of `merge`'s report) as text: per guest and vCPU,
 * source, offsets, bound, evidence, residuals, the host's skew bound, verdict; with `violations`,
 * the guest events outside their windows and those not checkable, as listed.
 */
export function clockCheckText(c: ClockCheck, o: { violations?: boolean } = {}): string {
  const lines: string[] = [];
  for (const g of c.guests) {
    lines.push(`clock check: guest ${g.name} (${g.file}) — ${verdictText(g.verdict, g.boundNs)}`);
    lines.push(`  guest CPUs → vCPUs: ${pairingText(g.cpuPairing)}`);
    for (const v of g.vcpus) {
      lines.push(`  vCPU ${v.vcpu} (host thread ${v.hostTid ?? '?'}): ${verdictText(v.verdict, v.boundNs, v.boundCycles)}`);
      lines.push(`    mapping from ${v.source}`);
      for (const p of v.pieces) {
        const from = p.fromHostTsc === '-1' ? '' : ` from host TSC ${p.fromHostTsc}`;
        const scal = p.ratio === null ? 'no scaling' : `scaling ${p.ratio}/2^${p.fracBits}`;
        lines.push(`    offset ${p.offset}${from} (${scal})`);
      }
      if (v.sources) lines.push(...sourcesTable(v.sources));
      if (!v.clockFit && (v.verdict === 'BOUNDED' || v.boundCycles !== '0'))
        lines.push(`    the evidence allows [${v.offsetLow}, ${v.offsetHigh}]: ± ${v.boundCycles} cycles${v.boundNs !== null ? ` (${v.boundNs} ns)` : ''}`);
      if (v.clockFit) {
        const x = v.clockFit.extrapolatedCycles;
        lines.push(`    ${v.clockFit.clock} clock → guest TSC through kvmsync markers: ± ${v.clockFit.uncertaintyCycles} cycles${x ? `, ± ${x} where extrapolated past the markers` : ''}`);
        lines.push(`    error bound: ± ${v.boundCycles} cycles${v.boundNs !== null ? ` (${v.boundNs} ns)` : ''}`);
      }
      if (v.evidence)
        lines.push(`    the traces alone allow [${v.evidence.offsetLow}, ${v.evidence.offsetHigh}] (${v.evidence.method}): ${v.evidence.agrees ? 'agrees' : 'DISAGREES'}`);
      lines.push(
        v.syncPoints === 0
          ? '    sync points: none'
          : `    sync points: ${v.syncPoints}, ${v.syncChecked} checkable, ${v.syncSatisfied} satisfied`,
      );
      let ev = `    guest events inside guest-mode windows: ${v.inside} of ${v.checked} (${pct(v.inside, v.checked)})`;
      if (v.checked > v.inside) ev += `, worst violation ${v.worstViolationCycles} cycles${v.worstViolationNs !== null ? ` (${v.worstViolationNs} ns)` : ''}`;
      if (v.notCheckable) ev += `; ${v.notCheckable} outside the host trace or before its first window (not checkable)`;
      lines.push(ev);
      lines.push(...residualLines(v), skewLine(v));
      if (o.violations) lines.push(...listLines('outside their windows', '✗', v.violations), ...listLines('not checkable', '?', v.notCheckableEvents));
    }
    if (g.vcpus.length === 0) lines.push('  no vCPU with events to check');
  }
  if (c.guests.length === 0) lines.push('clock check: no guest to check');
  const bounds = c.guests.flatMap((g) => (g.boundNs === null ? [] : [g.boundNs]));
  lines.push(`clock verdict: ${verdictText(c.verdict, bounds.length ? Math.max(...bounds) : null)}`);
  return lines.join('\n') + '\n';
}

const cyc = (cycles: number, ns: number | null): string => `${cycles} cycles${ns !== null ? ` (${ns} ns)` : ''}`;

/** The residuals of a vCPU: the tightest window and sync point, where they are. */
function residualLines(v: VcpuCheck): string[] {
  const w = v.residual.window;
  const y = v.residual.sync;
  const out: string[] = [];
  if (w)
    out.push(
      `    tightest window: ${w.cycles < 0 ? `missed by ${cyc(-w.cycles, w.ns === null ? null : -w.ns)}` : `slack ${cyc(w.cycles, w.ns)}`} — guest ${w.guest}` +
        (w.host ? `, window edge ${w.host.at} (host TSC ${w.host.hostTsc})` : ''),
    );
  else if (v.checked) out.push("    tightest window: no edge within the host trace (every event's window reaches its start or end)");
  if (y)
    out.push(
      `    tightest sync point: ${y.cycles < 0 ? `missed by ${cyc(-y.cycles, y.ns === null ? null : -y.ns)}` : `slack ${cyc(y.cycles, y.ns)}`} — kvmsync seq ${y.seq} at ${y.guest}, ` +
        `bracket [${y.bracket[0]}, ${y.bracket[1]}], host exit ${y.host?.at} (host TSC ${y.host?.hostTsc})`,
    );
  return out;
}

/** The host's skew bound over the CPUs a vCPU thread ran on, and the pair that sets it. */
function skewLine(v: VcpuCheck): string {
  const k = v.hostSkew;
  if (!k) return '    host TSC skew across CPUs: no host thread known for this vCPU';
  const on = `the CPUs thread ${v.hostTid} ran on: ${k.cpus.join(', ') || 'none'}`;
  if (k.cpus.length <= 1) return `    host TSC skew across CPUs: none to bound (${on})`;
  if (k.cpuPairsInTrace === 0)
    return `    host TSC skew across CPUs: not bounded — the host trace has no causal pair across CPUs (a sched_wakeup or sched_migrate_task, then a sched_switch to that thread on another CPU) (${on})`;
  const open = k.pairsUnbounded ? `; ${k.pairsUnbounded} pair(s) of them without a causal pair both ways, not bounded` : '';
  if (k.boundCycles === null || !k.pair) return `    host TSC skew across CPUs: not bounded — no pair of ${on} has a causal pair both ways${open}`;
  const p = k.pair;
  return (
    `    host TSC skew across CPUs ≤ ${cyc(k.boundCycles, k.boundNs)} (${on}${open}); set by ${p.cause.event} on CPU ${p.from} at ${p.cause.at} ` +
    `→ thread ${p.switchIn.tid} switched in on CPU ${p.to} at ${p.switchIn.at}, ${p.gapCycles} cycles later`
  );
}

/** A list of guest events (outside, or not checkable), one line each, and how many more. */
function listLines(what: string, mark: string, l: EventList): string[] {
  const n = l.events.length + l.more;
  if (n === 0) return [`    guest events ${what}: none`];
  const out = [`    guest events ${what}: ${n}${l.more ? ` (the first ${l.events.length} listed)` : ''}`];
  for (const e of l.events) out.push(`      ${mark} ${listedText(e)}`);
  if (l.more) out.push(`      … and ${l.more} more`);
  return out;
}

/** One listed guest event: place, CPU, mapped host TSC, rule, and the host events at the nearest windows' edges. */
function listedText(e: ListedEvent): string {
  const edge = (what: string, h: HostEdge | undefined): string => (h ? `; ${what} ${h.at} (host TSC ${h.hostTsc}, ${h.cycles} cycles away)` : '');
  const dist = e.distanceCycles !== undefined ? ` by ${cyc(e.distanceCycles, e.distanceNs ?? null)}` : '';
  return `${e.guest} CPU ${e.cpu} → host TSC ${e.hostTsc}: ${e.rule}${dist}${edge('window ended at', e.windowEnded)}${edge('next window starts at', e.windowStarts)}${edge('since', e.since)}`;
}

/** The sources of one vCPU side by side (source, sync points satisfied, events inside, offsets); `→` marks the one followed. */
function sourcesTable(rows: NonNullable<VcpuCheck['sources']>): string[] {
  const head = ['source', 'sync points', 'events inside', 'offset(s)'];
  const cells = rows.map((r) => [r.source, `${r.syncSatisfied} of ${r.syncChecked}`, `${r.inside} of ${r.checked}`, r.offsets]);
  const w = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const row = (c: string[]): string => c.map((x, i) => (i < c.length - 1 ? x.padEnd(w[i]) : x)).join('   ');
  return [
    '    the sources disagree; each checked against the evidence:',
    `        ${row(head)}`,
    ...cells.map((c, i) => `      ${rows[i].followed ? '→' : ' '} ${row(c)}`),
  ];
}

/** A guest's CPU ↔ vCPU pairing as the report prints it. */
export function pairingText(p: PairingCheck): string {
  const pairs = Object.entries(p.map).map(([c, v]) => `CPU ${c} → vCPU ${v}`);
  if (!pairs.length) return `CPU n = vCPU n is ASSUMED (${p.from})`;
  return `${pairs.join(', ')} (${p.from})${p.assumed ? '; any other CPU n = vCPU n is ASSUMED' : ''}`;
}

/** The clock check as JSON: `{"verdict","guests":[{"name","verdict","vcpus":[{"vcpu","source","offset","offsetLow","offsetHigh","checked","inside","worstViolationCycles",…}]}]}`. */
export function clockCheckJson(c: ClockCheck): string {
  return JSON.stringify(c, null, 2) + '\n';
}
