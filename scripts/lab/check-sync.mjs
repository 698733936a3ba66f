#!/usr/bin/env node
// Quick lab check, independent of kvmtrace's merge: do the guest's kvmsync brackets [t0, t1]
// contain the host's kvm_pio (port 0xe9) events on the vCPU thread, for a given TSC offset
// (guest TSC = host TSC + offset)? Tries offset 0 (debugfs) and every kvm_write_tsc_offset `next`.
//
// usage: node scripts/lab/check-sync.mjs HOSTDIR GUESTDIR
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const [hostDir, guestDir] = process.argv.slice(2);
if (!hostDir || !guestDir) {
  console.error('usage: check-sync.mjs HOSTDIR GUESTDIR');
  process.exit(1);
}
const hostMeta = JSON.parse(readFileSync(join(hostDir, 'meta.json'), 'utf8'));
const vcpuTids = new Map(hostMeta.vms[0].vcpus.map((v) => [v.tid, v.vcpu]));
const lineRe = /^\s*(.+?)-(\d+)\s+\[(\d+)\]\s+\S+\s+(\d+):\s+(\w+):\s?(.*)$/;

function* events(file) {
  const text = readFileSync(file, 'utf8');
  let n = 0;
  for (const line of text.split('\n')) {
    n++;
    const m = lineRe.exec(line);
    if (m) yield { line: n, comm: m[1], pid: Number(m[2]), cpu: Number(m[3]), ts: BigInt(m[4]), name: m[5], body: m[6] };
  }
}

const hostPio = []; // { ts, tid }
const writes = [];
const kinds = new Map();
for (const e of events(join(hostDir, 'trace.txt'))) {
  kinds.set(e.name, (kinds.get(e.name) ?? 0) + 1);
  if (e.name === 'kvm_pio' && / at 0xe9 /.test(e.body) && vcpuTids.has(e.pid)) hostPio.push({ ts: e.ts, tid: e.pid });
  if (e.name === 'kvm_write_tsc_offset') {
    const m = /vcpu=(\d+) prev=(\d+) next=(\d+)/.exec(e.body);
    const s = (x) => { const v = BigInt(x); return v >= 1n << 63n ? v - (1n << 64n) : v; };
    writes.push({ ts: e.ts, vcpu: Number(m[1]), prev: s(m[2]), next: s(m[3]), line: e.line, pid: e.pid });
  }
}
const points = [];
for (const e of events(join(guestDir, 'trace.txt'))) {
  const m = /kvmsync seq=(\d+) cpu=(\d+) kind=(\w+) t0=(\d+) t1=(\d+)/.exec(e.body);
  if (e.name === 'tracing_mark_write' && m) points.push({ seq: Number(m[1]), cpu: Number(m[2]), kind: m[3], t0: BigInt(m[4]), t1: BigInt(m[5]) });
}

console.log(`host: ${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}`);
console.log(`host kvm_pio on port 0xe9 on vCPU threads: ${hostPio.length}`);
console.log(`kvm_write_tsc_offset: ${writes.map((w) => `line ${w.line} vcpu=${w.vcpu} prev=${w.prev} next=${w.next} (thread ${w.pid}, host TSC ${w.ts})`).join('; ') || 'none'}`);
for (const v of hostMeta.vms[0].vcpus) console.log(`debugfs vcpu${v.vcpu} (thread ${v.tid}): ${v.snapshots.map((s) => `${s.when} tsc-offset=${s.tscOffset} at host TSC ${s.hostTsc}`).join('; ')}`);
console.log(`guest sync points: ${points.length} (${['pio', 'cpuid'].map((k) => `${k} ${points.filter((p) => p.kind === k).length}`).join(', ')})`);

const offsets = [['debugfs tsc-offset 0', 0n], ...writes.map((w) => [`kvm_write_tsc_offset next (line ${w.line})`, w.next])];
const seen = new Set();
for (const [label, off] of offsets) {
  if (seen.has(off)) continue;
  seen.add(off);
  for (const kind of ['pio', 'cpuid']) {
    const ps = points.filter((p) => p.kind === kind);
    if (ps.length === 0) continue;
    let inside = 0;
    let multi = 0;
    let minSlack = null;
    for (const p of ps) {
      const hits = hostPio.filter((h) => h.ts + off >= p.t0 && h.ts + off <= p.t1);
      if (hits.length > 0) inside++;
      if (hits.length > 1) multi++;
      for (const h of hits) {
        const slack = [h.ts + off - p.t0, p.t1 - (h.ts + off)].reduce((a, b) => (a < b ? a : b));
        if (minSlack === null || slack < minSlack) minSlack = slack;
      }
    }
    console.log(`offset ${off} (${label}): ${kind} points with a host kvm_pio(0xe9) inside [t0,t1]: ${inside}/${ps.length}` +
      (multi ? `, ${multi} with more than one` : '') + (minSlack !== null ? `, smallest margin ${minSlack} cycles` : ''));
  }
}
