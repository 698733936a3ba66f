/**
 * Typed fields of trace.dat events are read from the records' binary fields by name, and the most
 * frequent ones of ftrace text rows straight from the body's bytes; both must say exactly what the
 * printed text says. Every typed event of every recording here is decoded both ways and compared.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Diagnostics } from '../src/model/diagnostics.js';
import { fieldsOf, fieldsOfEvent } from '../src/parsers/event-fields.js';
import { openSource } from '../src/merge/source.js';
import { openTraceDat, readTraceDatEvents } from '../src/parsers/trace-dat/index.js';
import { ROOT } from './helpers/cli.js';
import { externalMissing, MASTERARBEIT, reference } from './helpers/external.js';

/** Decodes every typed event of a file from its binary fields and from its text; returns the counts per kind. */
async function compare(file: string): Promise<Record<string, number>> {
  const t = openTraceDat(file, new Diagnostics());
  const counts: Record<string, number> = {};
  const diffs: string[] = [];
  try {
    for (const b of t.buffers.filter((x) => !x.latency)) {
      const s = readTraceDatEvents(t, { diags: new Diagnostics(), buffer: b.name });
      for await (const batch of s.batches)
        for (const ev of batch) {
          if (!ev.typed) continue;
          counts[ev.typed.kind] = (counts[ev.typed.kind] ?? 0) + 1;
          const fromText = fieldsOfEvent({ ...ev, typed: undefined });
          if (diffs.length < 5 && JSON.stringify(fromText, big) !== JSON.stringify(ev.typed, big)) diffs.push(`${ev.name} @${ev.line}: ${ev.body}`);
        }
    }
  } finally {
    t.close();
  }
  expect(diffs).toEqual([]);
  return counts;
}
const big = (_k: string, v: unknown): unknown => (typeof v === 'bigint' ? v.toString() : v);

describe('typed fields of trace.dat events: binary by name = printed text', () => {
  for (const f of readdirSync(join(ROOT, 'fixtures', 'tracedat')).filter((x) => x.endsWith('.dat')))
    it(f, async () => {
      const c = await compare(join(ROOT, 'fixtures', 'tracedat', f));
      if (f === 'v7-kvm.dat') expect(c.kvm_fpu).toBeGreaterThan(100);
    });
});

describe.skipIf(externalMissing)('typed fields of the real VMX recordings', () => {
  if (externalMissing) console.log(`skipped: ${externalMissing}`);
  for (const f of ['docA-host-trace.dat', 'docA-guest-trace-Salamander4.dat', 'docC-host-only-trace.dat', 'lts-trace.dat'])
    it(f, async () => {
      const c = await compare(join(MASTERARBEIT, f));
      if (f.startsWith('docA-host')) expect(c.kvm_exit).toBeGreaterThan(5000);
      console.log(f, JSON.stringify(c));
    });
});

/** Decodes every typed row of an ftrace text file from its bytes (fieldsOf) and from its text; returns the counts per kind. */
async function compareText(file: string): Promise<Record<string, number>> {
  const src = await openSource({ role: 'host', machine: 'h', file, parseThread: false }, new Diagnostics());
  const counts: Record<string, number> = {};
  const diffs: string[] = [];
  for await (const blk of src.blocks)
    for (let r = 0; r < blk.n; r++) {
      const f = fieldsOf(blk, r);
      if (!f) continue;
      counts[f.kind] = (counts[f.kind] ?? 0) + 1;
      const ev = blk.event(r);
      const fromText = fieldsOfEvent({ ...ev, typed: undefined });
      if (diffs.length < 5 && JSON.stringify(fromText, big) !== JSON.stringify(f, big)) diffs.push(`${ev.name} line ${ev.line}: ${ev.body}`);
    }
  await src.close();
  expect(diffs).toEqual([]);
  return counts;
}

describe('typed fields of ftrace text rows: read from the bytes = read from the text', () => {
  it('the demo capture and every ftrace-text fixture', async () => {
    const c = await compareText(join(ROOT, 'fixtures', 'pvm-1vcpu', 'host', 'trace.txt'));
    expect(c.sched_switch).toBeGreaterThan(3000);
    for (const f of readdirSync(join(ROOT, 'fixtures', 'ftrace-text')).filter((x) => x.endsWith('.txt'))) await compareText(join(ROOT, 'fixtures', 'ftrace-text', f));
  });

  it.skipIf(externalMissing)('docA as trace-cmd report text (kvm_entry/kvm_exit; sched_switch in the plugin form)', async () => {
    const host = await compareText(reference('docA-host-trace.dat.report-rawts.txt'));
    expect(host.kvm_exit).toBeGreaterThan(5000);
    const guest = await compareText(reference('docA-guest-trace-Salamander4.dat.report-rawts.txt'));
    expect(guest.sched_switch).toBeGreaterThan(3000);
  });
});
