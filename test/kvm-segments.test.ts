/**
 * The packed segment store (kvm/segments.ts, kvm/segment-pack.ts): what the host index keeps of
 * every vCPU thread reads back exactly as the tracker gave it. On the real docA host, each
 * segment's time, state, arg and place are checked against the host event its `where` names in
 * the file, in any order of reading (the readers of a merge interleave); crafted values a host can
 * give (gaps past 2^32 cycles, byte offsets past 4 GiB, times out of order) round-trip too.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildHostIndex, type HostIndex } from '../src/host/index.js';
import { Diagnostics } from '../src/model/diagnostics.js';
import { ThreadSegments } from '../src/kvm/segments.js';
import { EXIT, GUEST } from '../src/kvm/states.js';
import { DOCA, externalMissing, reference } from './helpers/external.js';
import { rng } from './helpers/rng.js';

interface Seg {
  t: number;
  ord: number;
  state: number;
  arg: number;
  where: number;
}

function read(s: ThreadSegments, i: number): Seg {
  return { t: s.time(i), ord: s.ord(i), state: s.state(i), arg: s.arg(i), where: s.where(i) };
}

/** The index of the last segment at or before t, by a linear scan. */
function lastAtOrBefore(list: Seg[], t: number): number {
  let k = -1;
  for (let i = 0; i < list.length; i++) if (list[i].t <= t) k = i;
  return k;
}

describe.skipIf(externalMissing)('the packed segments of a real host (docA, ftrace text)', () => {
  if (externalMissing) console.log(`skipped: ${externalMissing}`);
  let ix: HostIndex;
  let lines: string[];
  const file = (): string => reference('docA-host-trace.dat.report-rawts.txt');

  it('read in order, each names its host event: that line, at that time, the thread’s kvm_entry or kvm_exit for GUEST and EXIT', async () => {
    ix = await buildHostIndex([{ role: 'host', machine: 'host', file: file(), clock: 'x86-tsc', clockFrom: 'flag' }], {
      diags: new Diagnostics(false, 0),
      vcpuTids: [DOCA.vcpuThread],
    });
    lines = readFileSync(file(), 'utf8').split('\n');
    const th = ix.threads.get(DOCA.vcpuThread)!;
    const s = th.segments;
    expect(s.n).toBeGreaterThan(10_000);
    // Packed (before any read unpacks a chunk): well under the 20 bytes a segment took as plain columns.
    expect(s.bytes() / s.n).toBeLessThan(8);
    let guest = 0;
    let prevOrd = 0;
    for (let i = 0; i < s.n; i++) {
      const g = read(s, i);
      expect(g.ord).toBeGreaterThanOrEqual(prevOrd);
      prevOrd = g.ord;
      const m = / (\S+)-(\d+) +\[(\d+)\] ?(\d+): (\w+):\s+(.*)$/.exec(lines[g.where - 1])!;
      expect(BigInt(m[4]) - ix.base).toBe(BigInt(g.t));
      if (g.state === GUEST) {
        guest++;
        expect([m[2], m[5], g.arg]).toEqual([String(DOCA.vcpuThread), 'kvm_entry', Number(/vcpu (\d+)/.exec(m[6])![1])]);
      }
      if (g.state === EXIT) expect([m[2], m[5], ix.names[g.arg]]).toEqual([String(DOCA.vcpuThread), 'kvm_exit', /reason (\S+)/.exec(m[6])![1]]);
    }
    expect(guest).toBeGreaterThan(5000);
  });

  it('read backwards, at random and interleaved far apart, the same; at(t) finds what a scan finds', () => {
    const s = ix.threads.get(DOCA.vcpuThread)!.segments;
    const fresh = (): Seg[] => Array.from({ length: s.n }, (_, i) => read(s, i));
    const inOrder = fresh();
    const back: Seg[] = [];
    for (let i = s.n - 1; i >= 0; i--) back[i] = read(s, i);
    expect(back).toEqual(inOrder);
    const rnd = rng(7);
    for (let k = 0; k < 5000; k++) {
      const i = Math.floor(rnd() * s.n);
      const j = (i + 1 + Math.floor(rnd() * 8) * 997) % s.n;
      expect([read(s, i), read(s, j)]).toEqual([inOrder[i], inOrder[j]]);
    }
    const probe = [inOrder[0].t - 1, ...[0, 1, 255, 256, 257, 1000, s.n - 1].flatMap((i) => [inOrder[i].t - 1, inOrder[i].t, inOrder[i].t + 1]), inOrder[s.n - 1].t + 1e9];
    for (let k = 0; k < 200; k++) probe.push(inOrder[0].t + rnd() * (inOrder[s.n - 1].t - inOrder[0].t));
    for (const t of probe) expect(s.at(t)).toBe(lastAtOrBefore(inOrder, t));
  });
});

describe('the packed segments round-trip the values a host can give', () => {
  it('gaps past 2^32 cycles, times out of order or not whole, byte offsets past 4 GiB, places past 2^33, args from -1 up', () => {
    const given: Seg[] = [];
    const rnd = rng(11);
    let t = 5_000_000_000_000;
    let ord = 0;
    let where = 100;
    for (let i = 0; i < 2000; i++) {
      const kind = i % 97;
      t += kind === 3 ? 2 ** 33 + 17 : kind === 5 ? -40 : Math.floor(rnd() * 100_000);
      ord += kind === 7 ? 2 ** 33 : 1 + Math.floor(rnd() * 5);
      where = kind === 11 ? -1 : kind === 13 ? 2 ** 40 + i : where < 0 ? 100 + i : where + Math.floor(rnd() * 300);
      const time = kind === 17 ? t + 0.5 : t;
      given.push({ t: time, ord, state: i % 7, arg: kind === 19 ? 1_000_000 : (i % 3) - 1, where });
    }
    const s = new ThreadSegments();
    for (const g of given) s.segment(g.t, g.ord, g.state, g.arg, g.where);
    s.trim();
    expect(Array.from({ length: s.n }, (_, i) => read(s, i))).toEqual(given);
  });
});
