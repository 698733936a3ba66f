/**
 * The Chrome JSON as its consumers read it, on real captures: the docA pair as trace.dat files (no
 * flags; Intel VMX host + guest) and the kvm-pvm demo capture (fixtures/pvm-1vcpu). Slices are
 * complete X records that nest per thread; every event's fields are structured args (the text
 * output of the same run is the reference for what each event said); every flow end is bound to a
 * slice of its own; and Chrome DevTools' trace engine (the Performance panel's model) loads the
 * file without an error, with every thread named and every arrow found; so does Perfetto's trace
 * processor where one is at hand (KVMTRACE_TRACE_PROCESSOR), with no error stats and every flow kept.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as TraceEngine from '@paulirish/trace_engine/models/trace/trace.js';
import { checkChromeJson, type Ev } from './helpers/chrome-check.js';
import { kvmtrace, ROOT } from './helpers/cli.js';
import { externalMissing, MASTERARBEIT } from './helpers/external.js';
import { tempDir } from './helpers/tmp.js';
import { tpMissing, tpQuery } from './helpers/trace-processor.js';

/** One line of the text output: machine, CPU, event name and its fields as printed. */
interface TextLine {
  machine: string;
  cpu: number;
  name: string;
  fields: string;
}

/** Reads the text output (`HOST_TSC +SECONDS MACHINE [CPU] TASK-PID EVENT: FIELDS`; its header line starts with #). */
function textLines(path: string): TextLine[] {
  const out: TextLine[] = [];
  for (const l of readFileSync(path, 'utf8').split('\n')) {
    const m = /^\d+ \+[\d.]+ (\S+) +\[(\d+)\] .*? ([\w:]+?): ?(.*)$/.exec(l);
    if (m) out.push({ machine: m[1], cpu: Number(m[2]), name: m[3], fields: m[4] });
    // A body of several lines (trace-cmd's printk formats of some events) goes on below its event.
    else if (out.length && l) out[out.length - 1].fields += '\n' + l;
  }
  return out;
}

/** What a merge wrote: the checked JSON, the text lines, the `--flows` counts printed and the sync points validation matched. */
interface Merged {
  json: ReturnType<typeof checkChromeJson>;
  text: TextLine[];
  drawn: number;
  from: number;
  syncMatched: number;
  path: string;
}

/** Runs `kvmtrace merge` with JSON, text and summary outputs. */
function merge(dir: string, inputs: string[], flows: string): Merged {
  const path = join(dir, 'm.json');
  const r = kvmtrace(['merge', ...inputs, '-q', '-o', path, '--text', join(dir, 'm.txt'), '--summary', join(dir, 's.json'), '--flows', flows]);
  expect(r.status, r.stderr).toBe(0);
  const m = /flows: (\d+) arrow\(s\) drawn; \d+ of (\d+) FROM events/.exec(r.stderr)!;
  const summary = JSON.parse(readFileSync(join(dir, 's.json'), 'utf8')) as { guests: { vcpus: { sync: { matched: number } }[] }[] };
  const syncMatched = summary.guests.flatMap((g) => g.vcpus).reduce((a, v) => a + v.sync.matched, 0);
  return { json: checkChromeJson(path), text: textLines(join(dir, 'm.txt')), drawn: Number(m[1]), from: Number(m[2]), syncMatched, path };
}

/** The machine of JSON process `pid`, as the text output names it (the process is named `MACHINE (ROLE)`). */
const machineOf = (r: Merged, pid: number): string => r.json.processes.get(pid)!.replace(/ \((host|guest)\)$/, '');

/** Members the exporter adds to an event's own fields. */
const OWN = new Set(['task', 'cpu', 'text']);

/**
 * Checks an instant's args against the fields its event printed: either the printed text, or
 * fields split from it — each value as printed after its key, a number exactly where it was a
 * plain decimal. Returns whether the body was split.
 */
function expectArgsOf(e: Ev, line: TextLine): boolean {
  const args = e.args!;
  if ('text' in args) {
    expect(args.text).toBe(line.fields);
    return false;
  }
  for (const [k, v] of Object.entries(args)) {
    if (OWN.has(k) || /_\d+$/.test(k)) continue;
    const printed = typeof v === 'number' ? String(v) : (v as string);
    expect(line.fields.includes(`${k}=${printed}`) || line.fields.includes(`${k}: ${printed}`), `${e.name} ${k}=${printed} in "${line.fields}"`).toBe(true);
    if (typeof v === 'string') expect(/^-?(0|[1-9]\d{0,14})$/.test(v), `${e.name} ${k}: a plain decimal is a number`).toBe(false);
  }
  return true;
}

/** Loads the events in Chrome DevTools' trace engine; returns its data and what it printed as errors. */
async function devtools(path: string): Promise<{ data: any; errors: string[] }> {
  const events = (JSON.parse(readFileSync(path, 'utf8')) as { traceEvents: unknown[] }).traceEvents;
  const model = TraceEngine.TraceModel.Model.createWithAllHandlers();
  const errors: string[] = [];
  const error = console.error;
  // The engine reports what it cannot pair (e.g. "Begin/End events mismatch") on the console.
  console.error = (...a: unknown[]) => void errors.push(a.map(String).join(' '));
  try {
    await model.parse(events as never);
  } finally {
    console.error = error;
  }
  return { data: model.parsedTrace()!.data, errors };
}

/** Checks the engine's view: no errors, every thread that has events named as the file names it, every arrow found. */
async function expectDevtools(path: string, threads: Map<string, string>, arrows: number): Promise<void> {
  const { data, errors } = await devtools(path);
  expect(errors).toEqual([]);
  const seen: [string, string][] = [];
  for (const [pid, p] of data.Renderer.processes as Map<number, { threads: Map<number, { name: string | null }> }>)
    for (const [tid, t] of p.threads) seen.push([`${pid}:${tid}`, String(t.name)]);
  expect(seen.length).toBeGreaterThan(1);
  for (const [k, name] of seen) expect(name, `thread ${k}`).toBe(threads.get(k));
  expect(data.Flows.flows.length).toBe(arrows);
}

/** Where a trace processor is at hand: the file loads with no error or data-loss stats, and keeps every flow. */
function expectPerfetto(path: string, arrows: number): void {
  if (tpMissing) return void console.log(`trace processor check skipped: ${tpMissing}`);
  expect(tpQuery(path, "SELECT name, idx, severity, value FROM stats WHERE severity IN ('error', 'data_loss') AND value > 0")).toEqual([]);
  expect(tpQuery(path, 'SELECT COUNT(*) FROM flow')).toEqual([[String(arrows)]]);
}

describe.skipIf(externalMissing)('docA as trace.dat (no flags), with --flows from the guest going idle to the HLT exit', () => {
  if (externalMissing) console.log(`skipped: ${externalMissing}`);
  let r: Merged;
  beforeAll(() => {
    const dat = (f: string): string => join(MASTERARBEIT, f);
    r = merge(tempDir('kvmtrace-chrome-'), ['--host', dat('docA-host-trace.dat'), '--guest', dat('docA-guest-trace-Salamander4.dat')], 'guest:sched_switch~==> swapper/0:host:kvm_exit[reason=HLT]');
  });

  it('writes slices as X records only, and a flow start and end for every arrow drawn', () => {
    const phases = new Set(r.json.events.map((e) => e.ph));
    expect(phases.has('B') || phases.has('E')).toBe(false);
    expect(r.json.slices.get('guest mode')).toBeGreaterThan(5000);
    const flow = r.json.events.filter((e) => e.cat === 'flow');
    expect(flow.filter((e) => e.ph === 's').length).toBe(r.from);
    expect(flow.filter((e) => e.ph === 'f').length).toBe(r.drawn);
    expect(r.drawn).toBeGreaterThan(0);
    // The guest wrote no sync markers: no sync flows.
    expect(r.syncMatched).toBe(0);
    expect(r.json.events.some((e) => e.cat === 'sync')).toBe(false);
  });

  it('gives each kvm_exit (an exit slice on VMX) its reason and host CPU as args, as the text output prints them', () => {
    const json = r.json.events.filter((e) => e.cat === 'kvm_exit').sort((a, b) => a.ts! - b.ts!);
    const text = r.text.filter((l) => l.machine === machineOf(r, 1) && l.name === 'kvm_exit');
    expect(json.length).toBe(text.length);
    json.forEach((e, i) => {
      expect(e.name).toBe(e.args!.reason);
      expect(text[i].fields.startsWith(`reason ${e.args!.reason as string} `)).toBe(true);
      expect(e.args!.cpu).toBe(text[i].cpu);
      expect(e.args!.text).toBe(text[i].fields);
    });
  });

  it("splits each guest event's key=value fields into args, keeping the text where they do not cover it", () => {
    // Guest events are instants but for the task switches (drawn as task slices), in merge order.
    const json = r.json.events.filter((e) => e.ph === 'I' && e.pid === 2);
    const text = r.text.filter((l) => l.machine === machineOf(r, 2) && l.name !== 'sched_switch');
    expect(json.length).toBe(text.length);
    let split = 0;
    json.forEach((e, i) => {
      expect(e.name).toBe(text[i].name);
      if (expectArgsOf(e, text[i])) split++;
    });
    expect(split).toBeGreaterThan(json.length / 2);
  });

  it('loads in Chrome DevTools’ trace engine: no error, every thread named, every arrow found', async () => {
    await expectDevtools(r.path, r.json.threads, r.drawn + r.syncMatched);
    expectPerfetto(r.path, r.drawn + r.syncMatched);
  });
});

describe('the kvm-pvm demo capture (fixtures/pvm-1vcpu), with --flows from each pio sync exit to its marker', () => {
  let r: Merged;
  beforeAll(() => {
    const dir = join(ROOT, 'fixtures', 'pvm-1vcpu');
    r = merge(tempDir('kvmtrace-chrome-'), [join(dir, 'host'), join(dir, 'guest')], 'host:kvm_pio[port=0xe9]:guest:marker~kind=pio');
  });

  it('gives every host instant its host CPU, and kvm_pio its direction and port, as the text output prints them', () => {
    // Host events are instants but for kvm_fpu (drawn as KVM_RUN slices on kvm-pvm), in merge order.
    const json = r.json.events.filter((e) => e.ph === 'I' && e.pid === 1);
    const text = r.text.filter((l) => l.machine === machineOf(r, 1) && l.name !== 'kvm_fpu');
    expect(json.length).toBe(text.length);
    let pio = 0;
    json.forEach((e, i) => {
      expect(e.name).toBe(text[i].name);
      expect(e.args!.cpu).toBe(text[i].cpu);
      expectArgsOf(e, text[i]);
      if (e.name === 'kvm_pio') {
        pio++;
        const m = /^pio_(write|read) at 0x([0-9a-f]+) /.exec(text[i].fields)!;
        expect(e.args).toMatchObject({ dir: m[1] === 'write' ? 'out' : 'in', port: parseInt(m[2], 16) });
      }
      if (e.name === 'kvm_userspace_exit') expect(text[i].fields.startsWith(`reason ${e.args!.reason as string}`)).toBe(true);
    });
    expect(pio).toBe(r.text.filter((l) => l.name === 'kvm_pio').length);
  });

  it('draws a flow for every sync point validation matched: from the host’s sync exit to the guest’s marker', () => {
    expect(r.syncMatched).toBeGreaterThan(0);
    const sync = r.json.events.filter((e) => e.cat === 'sync' && (e.ph === 's' || e.ph === 'f'));
    expect(sync.filter((e) => e.ph === 's').length).toBe(r.syncMatched);
    expect(sync.filter((e) => e.ph === 'f').length).toBe(r.syncMatched);
    // Each end lies at its event: the start at a kvm_pio on the sync port on the vCPU thread, the end at the kvmsync marker.
    const at = new Map(r.json.events.filter((e) => e.ph === 'I').map((e) => [`${e.pid}:${e.tid}:${e.ts}:${e.name!.split(' ')[0]}`, e]));
    for (const e of sync) {
      if (e.ph === 's') expect(at.get(`${e.pid}:${e.tid}:${e.ts}:kvm_pio`)?.args, `sync start ${e.id}`).toMatchObject({ port: 0xe9 });
      else expect(at.has(`${e.pid}:${e.tid}:${e.ts}:kvmsync`), `sync end ${e.id}`).toBe(true);
    }
  });

  it('binds both ends of every arrow (checked by checkChromeJson) and loads in Chrome DevTools’ trace engine', async () => {
    expect(r.json.events.filter((e) => e.cat === 'flow' && e.ph === 'f').length).toBe(r.drawn);
    await expectDevtools(r.path, r.json.threads, r.drawn + r.syncMatched);
    expectPerfetto(r.path, r.drawn + r.syncMatched);
  });
});
