#!/usr/bin/env node
// Lab analysis, independent of kvmtrace's merge: are the guest's events inside the host's
// guest-execution windows of their vCPU thread (KVM_RUN = kvm_fpu load..unload, minus the
// thread's sched-out gaps), at a given TSC offset (default 0: guest TSC = host TSC)? Lists the
// events outside with the host's view of the thread around them.
//
// usage: node scripts/lab/windows.mjs [--strict-switches] HOSTDIR GUESTDIR [OFFSET] [MAX_LISTED]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2).filter((a) => a !== '--strict-switches');
const strictSwitches = process.argv.includes('--strict-switches');
const [hostDir, guestDir, offArg = '0', maxArg = '15'] = args;
const offset = BigInt(offArg);
const hostMeta = JSON.parse(readFileSync(join(hostDir, 'meta.json'), 'utf8'));
const guestMeta = JSON.parse(readFileSync(join(guestDir, 'meta.json'), 'utf8'));
const tidOf = new Map(hostMeta.vms[0].vcpus.map((v) => [v.vcpu, v.tid]));
const cpuToVcpu = guestMeta.guest?.cpuToVcpu ? new Map(Object.entries(guestMeta.guest.cpuToVcpu).map(([k, v]) => [Number(k), v])) : undefined;
const re = /^\s*(.+?)-(\d+)\s+\[(\d+)\]\s+\S+\s+(\d+):\s+(\w+):\s?(.*)$/;

function parse(file) {
  const out = [];
  let n = 0;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    n++;
    const m = re.exec(line);
    if (m) out.push({ line: n, comm: m[1], pid: Number(m[2]), cpu: Number(m[3]), ts: BigInt(m[4]), name: m[5], body: m[6], text: line.trim() });
  }
  return out;
}

const host = parse(join(hostDir, 'trace.txt'));
host.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
// Per thread: a list of state changes (ts, running-guest boolean) from fpu and sched_switch.
const timeline = new Map();
for (const tid of tidOf.values()) timeline.set(tid, { changes: [], inRun: false, onCpu: true, events: [] });
for (const e of host) {
  const sw = e.name === 'sched_switch' ? /prev_pid=(\d+) .*==> .* next_pid=(\d+)/.exec(e.body) : null;
  for (const [tid, t] of timeline) {
    const before = t.inRun && t.onCpu;
    let touched = false;
    if (e.pid === tid && e.name === 'kvm_fpu') {
      t.inRun = /load/.test(e.body) && !/unload/.test(e.body);
      t.onCpu = true;
      touched = true;
    }
    if (sw && Number(sw[1]) === tid) (t.onCpu = false), (touched = true);
    if (sw && Number(sw[2]) === tid) (t.onCpu = true), (touched = true);
    // An event the thread itself traced proves it is on a CPU, even when the switch that put it
    // there is missing (see fixtures/pvm-1vcpu/README.md: switches from PID 1's threads are not
    // traced on this host). --strict-switches turns this off.
    if (e.pid === tid && !strictSwitches && !(sw && Number(sw[1]) === tid)) t.onCpu = true;
    if (e.pid === tid) touched = true;
    if (touched) t.events.push(e);
    const after = t.inRun && t.onCpu;
    if (after !== before) t.changes.push({ ts: e.ts, running: after, e });
  }
}

function stateAt(t, ts) {
  // Binary search the last change at or before ts.
  let lo = 0;
  let hi = t.changes.length - 1;
  let idx = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (t.changes[mid].ts <= ts) (idx = mid), (lo = mid + 1);
    else hi = mid - 1;
  }
  return { idx, running: idx >= 0 ? t.changes[idx].running : undefined };
}

const guest = parse(join(guestDir, 'trace.txt'));
const first = host[0].ts;
const last = host[host.length - 1].ts;
let checked = 0;
let inside = 0;
let before = 0;
const outside = [];
for (const g of guest) {
  const vcpu = cpuToVcpu?.get(g.cpu) ?? g.cpu;
  const t = timeline.get(tidOf.get(vcpu));
  const hts = g.ts - offset;
  if (!t || hts < first || hts > last) continue;
  const s = stateAt(t, hts);
  if (s.idx < 0) {
    before++;
    continue;
  }
  checked++;
  if (s.running) inside++;
  else outside.push({ g, s, t, hts });
}
console.log(`offset ${offset}: ${checked} guest events checkable, ${inside} inside (${((100 * inside) / Math.max(checked, 1)).toFixed(2)} %), ${before} before the first window change`);
const kinds = new Map();
for (const o of outside) kinds.set(`${o.g.name} ${o.s.t?.changes[o.s.idx]?.e.name ?? ''}`, 0);
const byCause = new Map();
for (const o of outside) {
  const c = o.t.changes[o.s.idx];
  const key = `${c.e.name}${c.e.name === 'sched_switch' ? ` (${/prev_state=(\S+)/.exec(c.e.body)?.[1]})` : ''}`;
  byCause.set(key, (byCause.get(key) ?? 0) + 1);
}
console.log(`outside, by the host event that closed the window: ${[...byCause].map(([k, v]) => `${k}: ${v}`).join(', ')}`);
for (const o of outside.slice(0, Number(maxArg))) {
  const c = o.t.changes[o.s.idx];
  const next = o.t.changes[o.s.idx + 1];
  console.log(`- guest line ${o.g.line} [cpu ${o.g.cpu}] ${o.g.name} at ${o.g.ts}: ${Number(o.hts - c.ts)} cycles after host line ${c.e.line} ${c.e.name} (${c.e.text.slice(0, 140)})` +
    (next ? `; window reopens ${Number(next.ts - o.hts)} cycles later at host line ${next.e.line} ${next.e.name}` : ''));
}
