/**
 * The text report of `kvmtrace inspect`: one block for the clock, one line per virtio device with
 * its named feature bits, then what it means. Returns a string; the CLI prints it.
 */
import type { GuestInspection } from './index.js';

/** Formats an inspection for a terminal (plain text, lines under 120 columns where names allow). */
export function formatInspection(r: GuestInspection): string {
  const out: string[] = [];
  out.push(`guest root: ${r.root}`);
  out.push(`clocksource: ${r.clocksource ?? '(unknown)'}${r.availableClocksources ? ` (available: ${r.availableClocksources.join(' ')})` : ''}`);
  out.push(`TSC flags: ${r.tscFlags.join(' ') || '(none)'}${r.tscFlagsMissing.length ? ` (missing: ${r.tscFlagsMissing.join(' ')})` : ''}`);
  out.push(`kvm-clock: ${r.kvmClock ? 'available' : 'not available'}; hypervisor flag: ${r.hypervisor ? 'yes' : 'no'}`);
  if (r.virtio.length === 0) out.push('virtio devices: none');
  else out.push('virtio devices (negotiated feature bits):');
  for (const d of r.virtio) {
    const extra = d.block
      ? ` ${d.block.disk ?? '(no disk)'}, cache_type: ${d.block.cacheType ?? '(not offered)'}`
      : d.children?.length
        ? ` ${d.children.join(' ')}`
        : '';
    out.push(`  ${d.name}: ${d.type} (id ${d.deviceId})${d.driver ? `, driver ${d.driver}` : ''}${extra}`);
    const bits = d.features.map((f) => `${f.bit}${f.name ? ` ${f.name}` : ''}${d.block && f.bit === 9 ? ' (write cache)' : ''}`);
    out.push(`    ${bits.length ? bits.join(', ') : '(no bits set)'}`);
  }
  if (r.notes.length) {
    out.push('what this means:');
    for (const n of r.notes) out.push(`  - ${n}`);
  }
  if (r.problems.length) {
    out.push('could not read:');
    for (const p of r.problems) out.push(`  - ${p}`);
  }
  return out.join('\n') + '\n';
}
