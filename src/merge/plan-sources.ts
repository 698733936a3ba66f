/**
 * What each source of a vCPU's TSC mapping offers: debugfs snapshots (bundle metadata),
 * kvm_write_tsc_offset events, a guest trace.dat's TIME_SHIFT, and the user's `--tsc-offset`. Each
 * is turned into a mapping of its own, so that where they differ the plan can set them side by side
 * and check each against the evidence (estimate/evidence.ts) instead of trusting one blindly.
 */
import { hostSync, type TimeShift } from '../parsers/trace-dat/index.js';
import type { HostTscWrite } from '../host/index.js';
import { hostTsc, type GuestTsc, type HostTsc } from '../model/units.js';
import type { TscPiece } from './tsc-mapping.js';

/** The start of a piece in force since before the trace. */
export const SINCE_BEFORE = hostTsc(-1n);

/** Which source a mapping comes from. */
export type OfferKind = 'flag' | 'debugfs' | 'writes' | 'timeshift';

/** One source's mapping of a vCPU. */
export interface Offer {
  kind: OfferKind;
  /** As the report names it: `debugfs snapshots`, `kvm_write_tsc_offset events (2)`, … */
  from: string;
  pieces: TscPiece[];
  /** trace-cmd's own formula, when the pieces only describe it (TIME_SHIFT with scaling or interpolation). */
  direct?: (guestTsc: GuestTsc) => HostTsc;
}

/** A debugfs snapshot of one vCPU, as bundle metadata has it. */
export interface Snapshot {
  when: string;
  hostTsc: HostTsc;
  tscOffset: bigint;
  tscScalingRatio?: bigint;
  tscScalingFracBits?: number;
}

/** A stated scaling (`--tsc-scaling`), or none. */
export type Scaling = { ratio?: bigint; fracBits?: number };

const cmp = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);

/** The pieces with repeats dropped (a piece that changes nothing says nothing). */
function effective(ps: TscPiece[]): TscPiece[] {
  const out: TscPiece[] = [];
  for (const p of ps) {
    const l = out[out.length - 1];
    if (l && l.offset === p.offset && l.ratio === p.ratio && (l.fracBits ?? 48) === (p.fracBits ?? 48)) continue;
    out.push(p);
  }
  return out;
}

/** True when two offers map every guest TSC alike (the same effective pieces, and neither is trace-cmd's own formula). */
export function sameMapping(a: Offer, b: Offer): boolean {
  if (a.direct || b.direct) return a === b;
  const [x, y] = [effective(a.pieces), effective(b.pieces)];
  return (
    x.length === y.length &&
    x.every((p, i) => p.offset === y[i].offset && p.ratio === y[i].ratio && (p.fracBits ?? 48) === (y[i].fracBits ?? 48) && (i === 0 || p.fromHostTsc === y[i].fromHostTsc))
  );
}

/** The offsets of an offer for the report: `0`, or `0 → -6245492027656 (from host TSC …)`. */
export function offsetsText(o: Offer): string {
  const ps = effective(o.pieces);
  const scal = (p: TscPiece): string => (p.ratio === undefined ? '' : ` (scaling ${p.ratio}/2^${p.fracBits ?? 48})`);
  return ps.map((p, i) => `${p.offset}${scal(p)}${i > 0 ? ` from host TSC ${p.fromHostTsc}` : ''}`).join(' → ');
}

/**
 * The mapping of a guest trace.dat's TIME_SHIFT samples for one vCPU (trace-cmd: host =
 * ((guest × scaling) >> frac) + offset). A constant, unscaled correction is KVM's offset negated,
 * one piece. Otherwise — scaling, or offsets that change — the map is trace-cmd's own formula,
 * interpolated between samples when the flags say so, applied to each guest timestamp
 * (hostSync), so events land exactly where `trace-cmd report` puts them; the pieces then only
 * describe it.
 */
export function fromTimeShift(t: TimeShift, v: number): Offer {
  const samples = t.cpus[v];
  const pieces: TscPiece[] = [];
  for (const x of samples) {
    const offset = -x.offset;
    if (pieces.length && pieces[pieces.length - 1].offset === offset) continue;
    pieces.push({ fromHostTsc: pieces.length ? hostTsc(x.time + x.offset) : SINCE_BEFORE, offset, source: 'TIME_SHIFT' });
  }
  const scaled = samples.some((x) => x.scaling !== 1n && x.scaling !== 1n << BigInt(x.fracBits));
  const from = `trace.dat TIME_SHIFT (${samples.length} samples`;
  if (!scaled && pieces.length === 1) return { kind: 'timeshift', from: from + ')', pieces };
  const how = [scaled ? 'scaled' : '', pieces.length > 1 ? (t.flags & 1 ? 'interpolated' : 'stepped') : ''].filter(Boolean).join(', ');
  return { kind: 'timeshift', from: `${from}, ${how})`, pieces, direct: (g) => hostTsc(hostSync(g, v, t)) };
}

/** Pieces from kvm_write_tsc_offset events alone: the `prev` offset before the first write, then each `next`. */
export function fromWrites(ws: HostTscWrite[], scaling: Scaling): Offer {
  const pieces: TscPiece[] = [{ fromHostTsc: SINCE_BEFORE, offset: ws[0].prev, ...scaling, source: 'kvm_write_tsc_offset prev' }];
  for (const w of ws) pieces.push({ fromHostTsc: w.hostTsc, offset: w.next, ...scaling, source: `kvm_write_tsc_offset (line ${w.line})` });
  return { kind: 'writes', from: `kvm_write_tsc_offset events (${ws.length})`, pieces };
}

/**
 * Pieces from debugfs snapshots. A snapshot is the truth at its host TSC; a kvm_write_tsc_offset
 * event between two snapshots places a change exactly when its `next` is the later snapshot's
 * value. Events that contradict the snapshots are reported (this machine's kvm-pvm, for one,
 * reports writes the guest never sees); which source is followed is the plan's decision. A stated
 * `--tsc-scaling` replaces the snapshots' scaling.
 */
export function fromSnapshots(v: number, snaps: Snapshot[], ws: HostTscWrite[], notes: string[], scaling: Scaling): Offer {
  const s = [...snaps].sort((a, b) => cmp(a.hostTsc, b.hostTsc));
  const scal = (x: Snapshot): Scaling =>
    scaling.ratio !== undefined
      ? scaling
      : x.tscScalingRatio !== undefined && x.tscScalingRatio !== 1n << BigInt(x.tscScalingFracBits ?? 48)
        ? { ratio: x.tscScalingRatio, fracBits: x.tscScalingFracBits }
        : {};
  const pieces: TscPiece[] = [{ fromHostTsc: SINCE_BEFORE, offset: s[0].tscOffset, ...scal(s[0]), source: `debugfs (${s[0].when})` }];
  for (let i = 1; i < s.length; i++) {
    if (s[i].tscOffset === s[i - 1].tscOffset && s[i].tscScalingRatio === s[i - 1].tscScalingRatio) continue;
    const between = ws.filter((w) => w.hostTsc > s[i - 1].hostTsc && w.hostTsc <= s[i].hostTsc && w.next === s[i].tscOffset);
    const at = between.length ? between[between.length - 1].hostTsc : s[i].hostTsc;
    if (!between.length)
      notes.push(`vCPU ${v}: the TSC offset changed between debugfs readings "${s[i - 1].when}" and "${s[i].when}" with no kvm_write_tsc_offset event to say when; the change is placed at the later reading`);
    pieces.push({ fromHostTsc: at, offset: s[i].tscOffset, ...scal(s[i]), source: `debugfs (${s[i].when})` });
  }
  // Writes whose result no snapshot confirms.
  const contradicting = ws.filter((w) => {
    const after = s.find((x) => x.hostTsc >= w.hostTsc);
    const later = after ? ws.filter((o) => o.hostTsc > w.hostTsc && o.hostTsc <= after.hostTsc) : [];
    return after !== undefined && later.length === 0 && w.next !== after.tscOffset;
  });
  if (contradicting.length) {
    const w = contradicting[0];
    notes.push(
      `vCPU ${v}: ${contradicting.length} kvm_write_tsc_offset event(s) disagree with debugfs — e.g. line ${w.line} (host TSC ${w.hostTsc}) claims offset ${w.next}, debugfs read ${s.find((x) => x.hostTsc >= w.hostTsc)!.tscOffset} afterwards`,
    );
  }
  const before = ws.filter((w) => w.hostTsc < s[0].hostTsc);
  if (before.length && !contradicting.includes(before[before.length - 1]) && before[before.length - 1].next !== s[0].tscOffset)
    notes.push(`vCPU ${v}: the last kvm_write_tsc_offset before the first debugfs reading claims ${before[before.length - 1].next}, debugfs read ${s[0].tscOffset}`);
  return { kind: 'debugfs', from: 'debugfs snapshots', pieces };
}
