/**
 * Guest TSC ↔ host TSC for one vCPU, exact to the cycle.
 *
 * KVM computes a guest's TSC as `guest = ((host × ratio) >> fracBits) + offset` (arch/x86/kvm/x86.c,
 * kvm_scale_tsc + the VMCS/VMCB offset); ratio is 1 << fracBits when the TSC is not scaled, with
 * fracBits 48 on Intel and 32 on AMD. The offset may change over time (kvm_write_tsc_offset), so a
 * mapping is a list of pieces, each in force from a host TSC on.
 */

import { guestTsc, hostTsc, type GuestTsc, type HostTsc } from '../model/units.js';

const U64_MASK = (1n << 64n) - 1n;

/** One piece: the scaling and offset in force from `fromHostTsc` (inclusive) on. */
export interface TscPiece {
  /** Host TSC at which this piece starts; -1n for "since before the trace". */
  fromHostTsc: HostTsc;
  /** Signed offset added after scaling. */
  offset: bigint;
  /** Scaling ratio (fixed point), undefined when not scaled. */
  ratio?: bigint;
  /** Fraction bits of `ratio`. */
  fracBits?: number;
  /** Where the piece came from, for the report ("debugfs start", "kvm_write_tsc_offset", "--tsc-offset", …). */
  source: string;
}

/** The guest TSC a piece gives for a host TSC (the kernel's formula, u64 wrap-around included). */
export function hostToGuest(p: TscPiece, host: HostTsc): GuestTsc {
  const scaled = p.ratio === undefined ? host : ((host * p.ratio) >> BigInt(p.fracBits ?? 0)) & U64_MASK;
  return guestTsc((scaled + p.offset) & U64_MASK);
}

/**
 * The host TSC at which a piece's guest TSC reaches `guestTsc`: the largest host value h with
 * hostToGuest(h) ≤ guestTsc (floor inverse; exact, so hostToGuest(result) ≤ guestTsc <
 * hostToGuest(result + 1)). Without scaling that is simply guest − offset.
 */
export function guestToHost(p: TscPiece, guest: GuestTsc): HostTsc {
  // The value of (host × ratio) >> frac: offsets are added modulo 2^64, so subtract modulo 2^64.
  const unscaled = (guest - p.offset) & U64_MASK;
  if (p.ratio === undefined) return hostTsc(unscaled);
  const frac = BigInt(p.fracBits ?? 0);
  // (h × r) >> f ≤ u  ⇔  h × r < (u + 1) << f  ⇔  h ≤ (((u + 1) << f) − 1) / r
  return hostTsc((((unscaled + 1n) << frac) - 1n) / p.ratio);
}

/** A per-vCPU piecewise mapping; pieces sorted by `fromHostTsc`. */
export class VcpuMapping {
  readonly pieces: TscPiece[];
  private cursor = 0;

  /**
   * @param pieces the offsets in force (for reports, and the map itself unless `direct` is given)
   * @param direct a guest → host map that is not a list of KVM pieces (trace-cmd's TIME_SHIFT
   *   with scaling or interpolation: host = ((guest × scaling) >> frac) + offset(guest))
   */
  constructor(
    pieces: TscPiece[],
    readonly direct?: (guest: GuestTsc) => HostTsc,
  ) {
    if (pieces.length === 0) throw new Error('a mapping needs at least one piece');
    this.pieces = [...pieces].sort((a, b) => (a.fromHostTsc < b.fromHostTsc ? -1 : a.fromHostTsc > b.fromHostTsc ? 1 : 0));
  }

  /** True when one offset and no scaling covers all time (the fast path: a constant shift). */
  get isConstantShift(): boolean {
    return this.direct === undefined && this.pieces.length === 1 && this.pieces[0].ratio === undefined;
  }

  /**
   * Maps a guest TSC to host TSC with the piece in force at the resulting host time. Guest
   * timestamps arrive nearly in order, so the search starts at the last piece used.
   */
  toHost(guest: GuestTsc): HostTsc {
    if (this.direct) return this.direct(guest);
    const ps = this.pieces;
    if (ps.length === 1) return guestToHost(ps[0], guest);
    let k = this.cursor;
    for (let tries = 0; tries < ps.length; tries++) {
      const h = guestToHost(ps[k], guest);
      if (h < ps[k].fromHostTsc && k > 0) k--;
      else if (k + 1 < ps.length && h >= ps[k + 1].fromHostTsc) k++;
      else {
        this.cursor = k;
        return h;
      }
    }
    // The guest value falls where the offset jumped (no host time maps to it): use the piece found.
    this.cursor = k;
    return guestToHost(ps[k], guest);
  }
}
