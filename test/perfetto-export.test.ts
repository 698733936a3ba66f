/**
 * The Perfetto output (.pftrace) on real captures, decoded with protobufjs against the message
 * subset in test/data (Perfetto's field numbers) and checked structurally: machines, per-CPU
 * bundles, every event at its time with its fields, thread names, the vCPU state slices on the
 * vCPU thread, flows bound to instants, interned names, and the trace's attributes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportMerge, type MergeReport } from '../src/export/export-merge.js';
import { prepareMerge, type MergeRequest } from '../src/merge/session.js';
import { flowHook } from '../src/analysis/flows.js';
import { bodyFields, typedValue } from '../src/parsers/body-fields.js';
import { schedSwitchText } from '../src/parsers/event-fields.js';
import { prevStateBits, layoutFor } from '../src/export/perfetto/task-state.js';
import { ROOT } from './helpers/cli.js';
import { externalMissing, MASTERARBEIT } from './helpers/external.js';
import { readPftrace, type Pf, type PfEvent } from './helpers/pftrace.js';
import { tempDir } from './helpers/tmp.js';
import type { HostIndex } from '../src/host/index.js';
import { stateSliceName } from '../src/export/perfetto/host-tracks.js';
import { EXIT, USERSPACE } from '../src/kvm/states.js';

/** One line of the text timeline: the merge's own account of every event. */
interface TextEvent {
  hostTsc: bigint;
  machine: string;
  cpu: number;
  pid: number;
  task: string;
  name: string;
  body: string;
}

const LINE = /^(\d+) \+\S+ (\S+)\s+\[(\d+)\] (.*?)-(\d+) ([\w]+): ?(.*)$/;

function textEvents(path: string): TextEvent[] {
  const out: TextEvent[] = [];
  for (const l of readFileSync(path, 'utf8').split('\n')) {
    const m = LINE.exec(l);
    if (m) out.push({ hostTsc: BigInt(m[1]), machine: m[2], cpu: Number(m[3]), task: m[4], pid: Number(m[5]), name: m[6], body: m[7] });
  }
  return out;
}

async function merge(req: MergeRequest, dir: string, flows?: string): Promise<{ pf: Pf; text: TextEvent[]; report: MergeReport; khz: number; summary: any; index: HostIndex | undefined }> {
  const p = await prepareMerge(req);
  const khz = p.tscKhz!;
  const hook = flows ? flowHook(flows) : undefined;
  const report = await exportMerge(p, { perfetto: join(dir, 'o.pftrace'), text: join(dir, 'o.txt'), summary: join(dir, 's.json'), flows: hook?.make });
  return { pf: readPftrace(join(dir, 'o.pftrace')), text: textEvents(join(dir, 'o.txt')), report, khz, summary: JSON.parse(readFileSync(join(dir, 's.json'), 'utf8')), index: p.index };
}

const key = (ns: bigint, cpu: number, pid: number, name: string): string => `${ns}|${cpu}|${pid}|${name}`;
/** The name an input event has in the output (typed messages are named by their field). */
const outName = (n: string): string => (n === 'tracing_mark_write' ? 'print' : n);

/** Every input event is in its machine's bundles at ns = ⌊host TSC × 10^6 / kHz⌋ (bigints), and nothing else is. */
function expectSameEvents(pf: Pf, text: TextEvent[], machineIds: Map<string, number>, khz: number): void {
  const want = new Map<number, string[]>();
  const got = new Map<number, string[]>();
  for (const e of text) {
    const m = machineIds.get(e.machine)!;
    const l = want.get(m) ?? [];
    l.push(key((e.hostTsc * 1_000_000n) / BigInt(khz), e.cpu, e.pid, e.name));
    want.set(m, l);
  }
  for (const e of pf.events) {
    const l = got.get(e.machine) ?? [];
    l.push(key(e.ts, e.cpu, e.pid, e.name));
    got.set(e.machine, l);
  }
  for (const [m, l] of want) {
    const g = (got.get(m) ?? []).sort();
    const w = l.map((k) => k.replace(/\|tracing_mark_write$/, '|print')).sort();
    // Typed events are named by their message; compare names only where the output is generic.
    const norm = (k: string): string => k.replace(/\|[^|]+$/, '');
    expect(g.length).toBe(w.length);
    expect(g.map(norm)).toEqual(w.map(norm));
  }
}

/** Generic events carry exactly the fields the body has, typed; typed sched_switch the switch's fields. */
function expectFields(pf: Pf, text: TextEvent[], machineIds: Map<string, number>, khz: number, releases: Map<number, string | undefined>): number {
  const byKey = new Map<string, PfEvent[]>();
  for (const e of pf.events) {
    const k = `${e.machine}|${e.ts}|${e.cpu}|${e.pid}`;
    const l = byKey.get(k) ?? [];
    l.push(e);
    byKey.set(k, l);
  }
  const bad: string[] = [];
  let generic = 0;
  for (const t of text) {
    const m = machineIds.get(t.machine)!;
    const cands = byKey.get(`${m}|${(t.hostTsc * 1_000_000n) / BigInt(khz)}|${t.cpu}|${t.pid}`) ?? [];
    const e = cands.find((c) => (c.generic ? c.name === t.name : c.name === outName(t.name)));
    if (!e) {
      bad.push(`${t.machine} ${t.name} ${t.body}: not found`);
      continue;
    }
    if (e.generic) {
      generic++;
      const want: Record<string, unknown> = {};
      for (const f of bodyFields(t.body)) {
        const v = typedValue(f.text);
        want[f.name] = v.kind === 'str' ? v.value : BigInt.asUintN(v.kind === 'uint' ? 64 : 65, BigInt(v.value));
      }
      const gotF: Record<string, unknown> = {};
      // The text timeline has the first line of a body of several lines (9p_protocol_dump): compare that much.
      for (const [k, v] of Object.entries(e.fields)) gotF[k] = typeof v === 'bigint' && v < 0n ? BigInt.asUintN(65, v) : typeof v === 'string' ? v.split('\n')[0] : v;
      if (JSON.stringify(gotF, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) !== JSON.stringify(want, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)))
        bad.push(`${t.name} ${t.body}: ${JSON.stringify(gotF, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))}`);
    } else if (e.name === 'sched_switch') {
      const s = schedSwitchText(t.body)!;
      const f = e.fields as Record<string, unknown>;
      const want = { prevComm: s.prevComm, prevPid: s.prevPid, prevState: String(prevStateBits(s.prevState, layoutFor(releases.get(m)))), nextComm: s.nextComm, nextPid: s.nextPid };
      for (const [k, v] of Object.entries(want)) if (String(f[k] ?? (k === 'prevState' ? '0' : '')) !== String(v)) bad.push(`sched_switch ${t.body}: ${k} ${f[k]} ≠ ${v}`);
    }
    cands.splice(cands.indexOf(e), 1);
  }
  expect(bad.slice(0, 10)).toEqual([]);
  return generic;
}

/**
 * Every thread that ran an event is named on its machine: by a ProcessTree entry, or (a task the
 * tracer printed as `<...>`) by a sched event that names it, as Perfetto's importer does. Tasks
 * the input never names (always `<...>`) are the exception.
 */
function expectThreadsNamed(pf: Pf, text: TextEvent[], machineIds: Map<string, number>): void {
  const named = new Set(text.filter((t) => t.task !== '<...>').map((t) => `${machineIds.get(t.machine)}:${t.pid}`));
  const bySched = new Set<string>();
  for (const e of pf.events) {
    const f = e.fields as Record<string, unknown>;
    if (e.name === 'sched_switch') for (const p of [f.prevPid, f.nextPid]) bySched.add(`${e.machine}:${p}`);
    if (e.name.startsWith('sched_wak')) bySched.add(`${e.machine}:${f.pid}`);
  }
  const unnamed = new Set<string>();
  for (const e of pf.events) {
    const k = `${e.machine}:${e.pid}`;
    if (e.pid > 0 && named.has(k) && !pf.threads.get(e.machine)?.has(e.pid) && !bySched.has(k)) unnamed.add(k);
  }
  expect([...unnamed]).toEqual([]);
}

/** Slices on each track are balanced and nested (in time order, ties in file order as Perfetto sorts). */
/**
 * The slices the KVM-run tracker's segments of thread `tid` give (the host index, the very states
 * validation judged by): [ns, name] of each start whose name differs from the one before.
 */
function trackerSlices(index: HostIndex, tid: number, khz: number): [bigint, string][] {
  const segs = index.threads.get(tid)!.segments;
  const out: [bigint, string][] = [];
  for (let i = 0; i < segs.n; i++) {
    const st = segs.state(i);
    const arg = segs.arg(i);
    const name = stateSliceName(st, (st === EXIT || st === USERSPACE) && arg >= 0 ? index.names[arg] : '');
    if (out.length && out[out.length - 1][1] === name) continue;
    out.push([((index.base + BigInt(segs.time(i))) * 1_000_000n) / BigInt(khz), name]);
  }
  return out;
}

function expectNested(pf: Pf): Map<number, { name: string; args: Record<string, unknown> }[]> {
  const byTrack = new Map<number, typeof pf.trackEvents>();
  for (const e of pf.trackEvents) {
    if (!pf.tracks.has(e.uuid)) throw new Error(`track event on undescribed track ${e.uuid}`);
    const l = byTrack.get(e.uuid) ?? [];
    l.push(e);
    byTrack.set(e.uuid, l);
  }
  const begins = new Map<number, { name: string; args: Record<string, unknown> }[]>();
  for (const [uuid, l] of byTrack) {
    const sorted = l.map((e, i) => ({ e, i })).sort((a, b) => (a.e.ts < b.e.ts ? -1 : a.e.ts > b.e.ts ? 1 : a.i - b.i));
    let depth = 0;
    const bs: { name: string; args: Record<string, unknown> }[] = [];
    for (const { e } of sorted) {
      if (e.type === 1) (depth++, bs.push({ name: e.name!, args: e.args }));
      else if (e.type === 2) {
        depth--;
        expect(depth).toBeGreaterThanOrEqual(0);
      } else expect(e.type).toBe(3);
      expect(depth).toBeLessThanOrEqual(1);
    }
    expect(depth).toBe(0);
    begins.set(uuid, bs);
  }
  return begins;
}

/** Each flow id starts on one instant and ends on one, later or at the same time. */
function expectFlows(pf: Pf): { id: bigint; from: (typeof pf.trackEvents)[number]; to: (typeof pf.trackEvents)[number] }[] {
  const starts = new Map<bigint, (typeof pf.trackEvents)[number]>();
  const ends = new Map<bigint, (typeof pf.trackEvents)[number]>();
  for (const e of pf.trackEvents) {
    for (const id of e.flowIds) (expect(starts.has(id)).toBe(false), starts.set(id, e));
    for (const id of e.terminating) (expect(ends.has(id)).toBe(false), ends.set(id, e));
  }
  const out = [];
  for (const [id, to] of ends) {
    const from = starts.get(id);
    expect(from, `flow ${id} ends without a start`).toBeDefined();
    expect(from!.type).toBe(3);
    expect(to.type).toBe(3);
    expect(from!.ts <= to.ts).toBe(true);
    out.push({ id, from: from!, to });
  }
  return out;
}

describe('Perfetto output of the pvm fixture (kvm-pvm host: KVM_RUN spans, 1 vCPU)', () => {
  let r: Awaited<ReturnType<typeof merge>>;
  const fx = join(ROOT, 'fixtures', 'pvm-1vcpu');
  beforeAll(async () => {
    r = await merge({ bundles: [join(fx, 'host'), join(fx, 'guest')], hostFiles: [], guestFiles: [], overrides: {} }, tempDir('kvmtrace-pft-'));
  });

  it('describes the host as the default machine and the guest as machine 1, named after the VM, with its kernel', () => {
    expect(r.pf.problems).toEqual([]);
    expect([...r.pf.machines]).toEqual([
      [0, { name: 'host', release: '6.18.44-fc-v669', cpus: 2 }],
      [1, { name: 'kvmlab', release: '6.1.192-kvmlab', cpus: 1 }],
    ]);
  });

  it('puts every merged event in its machine’s per-CPU bundles, at host TSC converted to ns, as the text timeline has it', () => {
    const ids = new Map([
      ['host', 0],
      ['kvmlab', 1],
    ]);
    expectSameEvents(r.pf, r.text, ids, r.khz);
    expect(new Set(r.pf.bundles.map((b) => `${b.machine}:${b.cpu}`))).toEqual(new Set(['0:0', '0:1', '1:0']));
    // Perfetto reads the input's sched_switch events as its own: one typed message each.
    const count = (m: number): number => r.pf.events.filter((e) => e.machine === m && e.name === 'sched_switch' && !e.generic).length;
    const lines = (f: string): number => readFileSync(join(fx, f, 'trace.txt'), 'utf8').split('\n').filter((l) => / sched_switch: /.test(l)).length;
    expect(count(0)).toBe(lines('host'));
    expect(count(1)).toBe(lines('guest'));
    expect(count(0)).toBeGreaterThan(1000);
  });

  it('keeps every field of the events without a typed message, typed (numbers as numbers), and the switches’ fields', () => {
    const releases = new Map([...r.pf.machines].map(([id, m]) => [id, m.release]));
    const generic = expectFields(r.pf, r.text, new Map([['host', 0], ['kvmlab', 1]]), r.khz, releases);
    expect(generic).toBeGreaterThan(3000);
    const fpu = r.pf.events.find((e) => e.name === 'kvm_fpu')!;
    expect(fpu.generic).toBe(true);
    expect(fpu.fields).toEqual({ text: expect.stringMatching(/^(load|unload)$/) });
    const msr = r.pf.events.find((e) => e.name === 'kvm_write_tsc_offset')!;
    expect(msr.fields).toEqual({ vcpu: 0n, prev: 0n, next: 18446737828217523960n });
  });

  it('names every thread that ran an event, the vCPU thread in the QEMU process', () => {
    expectThreadsNamed(r.pf, r.text, new Map([['host', 0], ['kvmlab', 1]]));
    expect(r.pf.threads.get(0)!.get(26619)).toEqual({ name: 'CPU 0/KVM', tgid: 26614 });
  });

  it('draws the vCPU state on the host vCPU thread: slices as the validator saw the thread, nested and balanced', () => {
    const vcpuTrack = [...r.pf.tracks].find(([, t]) => t.tid === 26619)!;
    expect(vcpuTrack[1]).toMatchObject({ pid: 26614, threadName: 'CPU 0/KVM' });
    const begins = expectNested(r.pf).get(vcpuTrack[0])!;
    // Exactly the tracker's states of the thread, at their times.
    const slices = r.pf.trackEvents.filter((e) => e.uuid === vcpuTrack[0] && e.type === 1).map((e) => [e.ts, e.name]);
    expect(slices).toEqual(trackerSlices(r.index!, 26619, r.khz));
    expect(new Set(begins.map((b) => b.name))).toContain('preempted');
    expect(begins[0].args).toEqual({ guest: 'kvmlab', vcpu: 0 });
    // States alternate: no slice follows one of the same name.
    for (let i = 1; i < begins.length; i++) expect(begins[i].name).not.toBe(begins[i - 1].name);
  });

  it('binds a flow to each matched sync point: host exit instant → guest marker instant, 40 of them', () => {
    const flows = expectFlows(r.pf);
    expect(flows.length).toBe(r.summary.guests[0].vcpus[0].sync.matched);
    expect(flows.length).toBe(40);
    const vcpu = [...r.pf.tracks].find(([, t]) => t.tid === 26619)![0];
    for (const f of flows) {
      expect(f.from.uuid).toBe(vcpu);
      expect(r.pf.tracks.get(f.to.uuid)).toMatchObject({ name: 'kvmlab vCPU 0 (guest events)', parent: vcpu });
      expect(f.to.name).toMatch(/^kvmsync seq=\d+$/);
    }
  });

  it('records the verdict, the mapping and its source per vCPU, and the whole summary, as trace attributes', () => {
    const a = r.pf.attributes;
    expect(a.get('kvmtrace.validation')).toBe('passed');
    expect(a.get('kvmtrace.tsc_khz')).toBe(2596136);
    expect(a.get('kvmtrace.guest.kvmlab.vcpu0.mapping_from')).toBe('debugfs snapshots');
    expect(a.get('kvmtrace.guest.kvmlab.vcpu0.tsc_offsets')).toMatch(/^0 /);
    expect(a.get('kvmtrace.guest.kvmlab.vcpu0.checked')).toBe(r.summary.guests[0].vcpus[0].checked);
    expect(JSON.parse(String(a.get('kvmtrace.validation_json')))).toMatchObject({ ok: true, guests: [{ name: 'kvmlab' }] });
  });
});

describe.skipIf(externalMissing)('Perfetto output of the docA pair (trace.dat, no flags; Intel VMX host)', () => {
  if (externalMissing) console.log(`skipped: ${externalMissing}`);
  let r: Awaited<ReturnType<typeof merge>>;
  const spec = 'guest:sched_switch~==> swapper/0:host:kvm_exit[reason=HLT]';
  beforeAll(async () => {
    r = await merge(
      { bundles: [], hostFiles: [join(MASTERARBEIT, 'docA-host-trace.dat')], guestFiles: [join(MASTERARBEIT, 'docA-guest-trace-Salamander4.dat')], overrides: {} },
      tempDir('kvmtrace-pft-doca-'),
      spec,
    );
  }, 120_000);

  it('has the host and the guest as machines, every event in place with its fields, every thread named', () => {
    expect(r.pf.problems).toEqual([]);
    const names = [...r.pf.machines].map(([id, m]) => [id, m.name, m.release]);
    // The host's GUEST option names no VM (its name field is empty): the guest takes the name trace-cmd
    // wrote its file under (trace-NAME.dat).
    expect(r.report.perSource[1].machine).toBe('Salamander4');
    expect(names).toEqual([
      [0, 'host', '6.5.0-21-generic'],
      [1, 'Salamander4', '5.15.94'],
    ]);
    const ids = new Map([
      ['host', 0],
      [r.report.perSource[1].machine, 1],
    ]);
    expectSameEvents(r.pf, r.text, ids, r.khz);
    const releases = new Map([...r.pf.machines].map(([id, m]) => [id, m.release]));
    expect(expectFields(r.pf, r.text, ids, r.khz, releases)).toBeGreaterThan(80_000);
    expectThreadsNamed(r.pf, r.text, ids);
    const sw = r.text.filter((e) => e.machine !== 'host' && e.name === 'sched_switch').length;
    expect(r.pf.events.filter((e) => e.machine === 1 && e.name === 'sched_switch' && !e.generic).length).toBe(sw);
    expect(sw).toBe(3835);
  });

  it('draws one exit slice per kvm_exit of the vCPU thread, named by its reason, between guest slices', () => {
    const vcpu = [...r.pf.tracks].find(([, t]) => t.tid === 483882)![0];
    const begins = expectNested(r.pf).get(vcpu)!;
    const exits = begins.filter((b) => b.name.startsWith('exit: '));
    const kvmExits = r.text.filter((e) => e.machine === 'host' && e.name === 'kvm_exit' && e.pid === 483882);
    expect(exits.length).toBe(kvmExits.length);
    expect(exits.map((b) => b.name)).toEqual(kvmExits.map((e) => `exit: ${/reason (\S+)/.exec(e.body)![1]}`));
    expect(begins.filter((b) => b.name === 'guest').length).toBe(r.text.filter((e) => e.name === 'kvm_entry' && e.pid === 483882).length);
  });

  it('binds every --flows match to an instant at each end, host exits on the vCPU thread', () => {
    const flows = expectFlows(r.pf);
    const vcpu = [...r.pf.tracks].find(([, t]) => t.tid === 483882)![0];
    expect(flows.length).toBeGreaterThan(600);
    for (const f of flows) {
      expect(f.from.name).toBe('sched_switch');
      expect(f.to.name).toBe('kvm_exit');
      expect(f.to.uuid).toBe(vcpu);
      expect(f.from.args.flow).toBe('guest:sched_switch~==> swapper/0 → host:kvm_exit[reason=HLT]');
    }
  });

  it('records the verdict and TIME_SHIFT mapping of vCPU 0 as attributes', () => {
    const g = r.report.perSource[1].machine;
    expect(r.pf.attributes.get('kvmtrace.validation')).toBe('passed');
    expect(r.pf.attributes.get(`kvmtrace.guest.${g}.vcpu0.tsc_offsets`)).toMatch(/^-63430235715905/);
    expect(r.pf.attributes.get(`kvmtrace.guest.${g}.vcpu0.host_tid`)).toBe(483882);
  });
});

describe.skipIf(externalMissing)('Perfetto output of a host-only trace (lts-trace.dat: x86-tsc, 4 CPUs)', () => {
  if (externalMissing) console.log(`skipped: ${externalMissing}`);
  it('has the host alone, every event in its CPU bundle, every thread named, and the tracker\'s states on each vCPU thread', async () => {
    const r = await merge({ bundles: [], hostFiles: [join(MASTERARBEIT, 'lts-trace.dat')], guestFiles: [], overrides: {}, tscKhz: 2_000_000 }, tempDir('kvmtrace-pft-lts-'));
    expect(r.pf.problems).toEqual([]);
    expect([...r.pf.machines.keys()]).toEqual([0]);
    expectSameEvents(r.pf, r.text, new Map([['host', 0]]), r.khz);
    expectFields(r.pf, r.text, new Map([['host', 0]]), r.khz, new Map([[0, r.pf.machines.get(0)!.release]]));
    expectThreadsNamed(r.pf, r.text, new Map([['host', 0]]));
    // No guest trace, yet each vCPU thread the host index tracks carries its states, named by VM and vCPU.
    const tracked = [...r.index!.threads.values()].filter((t) => t.segments.n > 0);
    expect(tracked.length).toBeGreaterThan(0);
    const begins = expectNested(r.pf);
    for (const th of tracked) {
      const track = [...r.pf.tracks].find(([, t]) => t.tid === th.tid)!;
      const slices = r.pf.trackEvents.filter((e) => e.uuid === track[0] && e.type === 1).map((e) => [e.ts, e.name]);
      expect(slices).toEqual(trackerSlices(r.index!, th.tid, r.khz));
      if (th.vcpu >= 0) expect(begins.get(track[0])![0].args).toMatchObject({ vcpu: th.vcpu });
    }
    // No guest: nothing was checked, so validation did not apply (it did not pass).
    expect(r.pf.attributes.get('kvmtrace.validation')).toBe('not applicable');
  }, 120_000);
});
