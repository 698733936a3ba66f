/**
 * Typed fields of trace.dat events are read from the records' binary fields by name; they must say
 * exactly what the printed text says (the text reader is what ftrace text inputs go through). Every
 * typed event of every recording here is decoded both ways and compared.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Diagnostics } from '../src/model/diagnostics.js';
import { fieldsOfEvent } from '../src/parsers/event-fields.js';
import { openTraceDat, readTraceDatEvents } from '../src/parsers/trace-dat/index.js';
import { ROOT } from './helpers/cli.js';
import { externalMissing, MASTERARBEIT } from './helpers/external.js';

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
