/**
 * The trace.dat API the rest of kvmtrace uses: the decoded options (clock mapping for merge),
 * and one buffer's events as TraceEvent batches in timestamp order with exact timestamps.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Diagnostics } from '../src/model/diagnostics.js';
import { openTraceDat, readTraceDatEvents, reportChunks, type TraceDatEvent } from '../src/parsers/trace-dat/index.js';
import { ROOT } from './helpers/cli.js';
import { DOCA, externalMissing, MASTERARBEIT } from './helpers/external.js';

const FIX = join(ROOT, 'fixtures', 'tracedat');

async function allEvents(file: string, buffer?: string): Promise<{ events: TraceDatEvent[]; base: bigint; clock: string }> {
  const diags = new Diagnostics();
  const t = openTraceDat(file, diags);
  const s = readTraceDatEvents(t, { diags, buffer, fields: true, batchSize: 100 });
  const events: TraceDatEvent[] = [];
  for await (const b of s.batches) {
    expect(b.length).toBeLessThanOrEqual(100);
    events.push(...b);
  }
  t.close();
  expect(diags.count).toBe(0);
  return { events, base: s.header.base!.value, clock: s.header.clock };
}

describe('trace.dat events API', () => {
  it('yields a buffer in timestamp order with the bodies trace-cmd prints', async () => {
    const file = join(FIX, 'v7-none-x86tsc.dat');
    const { events, base, clock } = await allEvents(file);
    expect(clock).toBe('x86-tsc');
    for (let i = 1; i < events.length; i++) expect(events[i].ts).toBeGreaterThanOrEqual(events[i - 1].ts);
    // Same events, same bodies as `trace-cmd report -t` (raw x86-tsc timestamps = base + ts).
    const diags = new Diagnostics();
    const t = openTraceDat(file, diags);
    const lines = [...reportChunks(t, { nsec: true, raw: false, rawTs: false }, diags)].join('').split('\n').slice(1, -1);
    t.close();
    expect(lines.length).toBe(events.length);
    const m = /^kvmtd_b:\s*(.*)-(\d+)\s+\[(\d{3})\]\s*(\d+): (\S+):\s+(.*)$/;
    lines.forEach((line, i) => {
      const g = m.exec(line);
      expect(g, line).not.toBeNull();
      const e = events[i];
      expect(base + BigInt(e.ts)).toBe(BigInt(g![4]));
      expect([e.comm.trim(), e.pid, e.cpu, e.name]).toEqual([g![1].trim(), Number(g![2]), Number(g![3]), g![5]]);
      expect(line.endsWith(e.body)).toBe(true);
    });
  });

  it('decodes fields generically from the format (strings, arrays, signed values)', async () => {
    const { events } = await allEvents(join(FIX, 'v7-zstd-local.dat'));
    const sw = events.find((e) => e.name === 'sched_switch')!;
    expect(typeof sw.fields!.prev_comm).toBe('string');
    expect(sw.body).toContain(`${sw.fields!.prev_comm}:${sw.fields!.prev_pid}`);
    const enter = events.find((e) => e.name === 'sys_enter')!;
    expect(Array.isArray(enter.fields!.args)).toBe(true);
    expect((enter.fields!.args as number[]).length).toBe(6);
    expect(enter.body).toMatch(new RegExp(`^NR ${enter.fields!.id} \\(`));
    const exit = events.find((e) => e.name === 'sys_exit' && (e.fields!.ret as bigint) < 0n);
    if (exit) expect(exit.body).toMatch(/= -\d+$/);
    const print = events.find((e) => e.name === 'print')!;
    expect(print.body).toBe('tracing_mark_write: kvmtrace marker kvmtd_a');
    expect(print.fields!.buf).toBe('kvmtrace marker kvmtd_a\n');
  });

  it('reads each buffer of a multi-buffer file with its own base; TRACECLOCK is trusted for the clock', async () => {
    const t = openTraceDat(join(FIX, 'v7-two-buffers.dat'), new Diagnostics());
    t.close();
    expect(t.buffers.map((b) => b.name)).toEqual(['', 'kvmtd_h', 'kvmtd_g']);
    expect(t.options.traceClock).toBe('mono');
    expect(t.buffers.every((b) => b.clock === 'mono')).toBe(true);
    const g = await allEvents(join(FIX, 'v7-two-buffers.dat'), 'kvmtd_g');
    const h = await allEvents(join(FIX, 'v7-two-buffers.dat'), 'kvmtd_h');
    expect(new Set(g.events.map((e) => e.name))).toEqual(new Set(['sched_switch', 'print']));
    expect(h.events.some((e) => e.name === 'sys_enter')).toBe(true);
    expect(g.base).not.toBe(h.base);
  });

  it('DATE: hex microseconds from the trace clock to the time of day, applied in ns', () => {
    const t = openTraceDat(join(FIX, 'v7-date.dat'), new Diagnostics());
    const text = [...reportChunks(t, { nsec: true, raw: false, rawTs: false }, new Diagnostics())].join('');
    t.close();
    const d = t.options.date!;
    expect(d.text).toMatch(/^0x[0-9a-f]+$/);
    expect(d.offsetNs).toBe(BigInt(d.text) * 1000n);
    // The printed times are then seconds since the epoch (this fixture: 2026).
    const secs = Number(/\] (\d+)\.\d{9}:/.exec(text.split('\n')[1])![1]);
    expect(new Date(secs * 1000).getUTCFullYear()).toBeGreaterThanOrEqual(2025);
  });

  it('v6 files: options, cmdlines, kallsyms and the flyrecord clock are read', () => {
    const t = openTraceDat(join(FIX, 'v6-x86tsc.dat'), new Diagnostics());
    t.close();
    expect(t.version).toBe(6);
    expect(t.options.traceClock).toBe('x86-tsc');
    expect(t.options.version).toMatch(/^3\.1\.6/);
    expect(t.cmdlines.size).toBeGreaterThan(10);
    expect(t.kallsyms.size).toBeGreaterThan(10000);
    expect(t.events.size).toBeGreaterThan(10);
    expect(t.longSize).toBe(8);
    expect(t.littleEndian).toBe(true);
  });
});

describe.skipIf(externalMissing)('clock mapping options of a real trace-cmd host/guest recording', () => {
  if (externalMissing) console.log(`skipped: ${externalMissing}`);
  it('docA: GUEST on the host, TIME_SHIFT on the guest, matching trace ids, TSC2NSEC', () => {
    const host = openTraceDat(join(MASTERARBEIT, 'docA-host-trace.dat'), new Diagnostics());
    const guest = openTraceDat(join(MASTERARBEIT, 'docA-guest-trace-Salamander4.dat'), new Diagnostics());
    host.close();
    guest.close();
    expect(host.compression?.name).toBe('zlib');
    expect(host.options.guests).toHaveLength(1);
    const gi = host.options.guests[0];
    // This recording's GUEST option carries an empty guest name (the bytes start with NUL).
    expect(gi.name).toBe('');
    expect(gi.traceId).toBe(0x5d2b93f358166218n);
    expect(gi.vcpuToPid.get(0)).toBe(DOCA.vcpuThread);
    expect(guest.options.traceId).toBe(gi.traceId);
    const ts = guest.options.timeShift!;
    expect(ts.peerTraceId).toBe(host.options.traceId);
    expect(ts.cpus).toHaveLength(1);
    expect(ts.cpus[0].map((s) => s.offset)).toEqual([-DOCA.tscOffset, -DOCA.tscOffset]);
    expect(ts.cpus[0].every((s) => s.scaling === 1n && s.fracBits === 0)).toBe(true);
    expect(host.options.tsc2nsec).toEqual({ mult: Number(DOCA.tsc2nsecMult), shift: Number(DOCA.tsc2nsecShift), offset: 0n });
    expect(guest.buffers[0].bufferClockText).toBe('tsc2nsec');
    expect(guest.buffers[0].clock).toBe('x86-tsc');
  });
});
