/**
 * What a user acts on when validation fails, or wants to know when it passes — per vCPU:
 *  - the guest events it did not accept, listed up to a bound in timeline order (the rest counted):
 *    each with its place in the guest file, its CPU, its mapped host TSC, the rule that judged it
 *    (kvm/states.ts stateRule, or why it could not be judged) and, when outside, the host events at
 *    the edges of the nearest windows;
 *  - residuals, how close the mapping came to failing: the smallest margin of a checked guest event
 *    to the nearer edge of its window (negative: outside by that much), and of a sync point's host
 *    event to the nearer end of its mapped [t0, t1] bracket (negative: missed by that much).
 * The validator (validate.ts) judges; this records what it judged, and names places.
 */
import type { HostIndex } from '../host/index.js';
import { hostPlaceText } from '../host/where.js';
import type { SegmentCursor } from '../kvm/cursor.js';
import type { ThreadSegments } from '../kvm/segments.js';
import { eventPlace, placeText } from '../model/diagnostics.js';
import { cyclesToNs } from '../model/units.js';
import type { Timeline } from './merge.js';

/** How many events of each list `check --violations` and the summary give per vCPU unless told. */
export const DEFAULT_LISTED = 20;

/** A host event at the edge of a window: where it is, its host TSC, and how far from the guest event (cycles). */
export interface HostEdge {
  at: string;
  hostTsc: string;
  cycles: number;
}

/** One guest event validation did not accept. */
export interface ListedEvent {
  /** `file:line` (text) or `file at byte N` (trace.dat). */
  guest: string;
  cpu: number;
  /** The mapped host TSC (exact, decimal). */
  hostTsc: string;
  /** The rule that judged it. */
  rule: string;
  /** Outside: the distance to the nearest moment inside, cycles and ns. */
  distanceCycles?: number;
  distanceNs?: number | null;
  /** Outside: the host event that ended the window before it, and the one that starts the window after it. */
  windowEnded?: HostEdge;
  windowStarts?: HostEdge;
  /** Not checkable stretches of the host thread: the host event the stretch starts at. */
  since?: HostEdge;
}

/** Listed events, and how many more there were. */
export interface EventList {
  events: ListedEvent[];
  more: number;
}

/** A residual: the smallest margin (cycles, ns), the guest event or marker it belongs to, and the host event it was measured to. */
export interface Residual {
  cycles: number;
  ns: number | null;
  guest: string;
  host: HostEdge | null;
}

/**
 * The two residuals of a vCPU (null: nothing measured, or no edge counts). The window's `host` is
 * the edge the margin was measured to; the sync point's is its host exit, `cycles` from the nearer
 * end of the marker's mapped bracket [t0, t1] (given as host TSCs).
 */
export interface Residuals {
  window: Residual | null;
  sync: (Residual & { seq: number; bracket: [string, string] }) | null;
}

/** What is being gathered for one vCPU. */
export class VcpuDetail {
  readonly outside: EventList = { events: [], more: 0 };
  readonly unchecked: EventList = { events: [], more: 0 };
  /** The smallest signed window margin so far, and where (segment of the edge, -1: none). */
  windowMin = Infinity;
  private windowAt = { t: 0, src: 0, line: 0, seg: -1 };
  /** The smallest signed sync slack so far, and where (host time and place of the exit; NaN: none). */
  syncMin = Infinity;
  private syncAt = { src: 0, line: 0, hostT: NaN, hostWhere: -1, seq: 0, h0: 0, h1: 0 };

  constructor(
    private readonly ctx: DetailContext,
    /** The vCPU thread's segments, when the index has them. */
    private readonly segs: ThreadSegments | undefined,
  ) {}

  /** A guest event inside (margin ≥ 0 from the cursor). */
  inside(c: SegmentCursor, t: number, src: number, line: number): void {
    if (c.margin < this.windowMin) {
      this.windowMin = c.margin;
      this.windowAt = { t, src, line, seg: c.edge };
    }
  }

  /** A guest event outside (the cursor's distance and edges), rule from its segment. */
  outsideAt(c: SegmentCursor, rule: string, t: number, src: number, line: number, cpu: number): void {
    if (-c.distance < this.windowMin) {
      this.windowMin = -c.distance;
      const toBefore = c.before >= 0 ? t - this.segs!.time(c.before) : Infinity;
      this.windowAt = { t, src, line, seg: toBefore <= c.distance ? c.before : c.after };
    }
    if (this.outside.events.length >= this.ctx.limit) return void this.outside.more++;
    this.outside.events.push({
      ...this.ctx.event(t, src, line, cpu, rule),
      distanceCycles: c.distance,
      distanceNs: this.ctx.ns(c.distance),
      ...(c.before >= 0 ? { windowEnded: this.edge(c.before, t) } : {}),
      ...(c.after >= 0 ? { windowStarts: this.edge(c.after, t) } : {}),
    });
  }

  /** A guest event not checkable, for `rule`; `since` the segment its stretch starts at (-1: none). */
  notCheckable(rule: string, since: number, t: number, src: number, line: number, cpu: number): void {
    if (this.unchecked.events.length >= this.ctx.limit) return void this.unchecked.more++;
    this.unchecked.events.push({ ...this.ctx.event(t, src, line, cpu, rule), ...(since >= 0 ? { since: this.edge(since, t) } : {}) });
  }

  /**
   * A checkable sync point: its mapped bracket [h0, h1] and the host exit measured to it (time and
   * place); the slack is the exit's distance to the nearer end, negative outside.
   */
  syncPoint(h0: number, h1: number, hostT: number, hostWhere: number, src: number, line: number, seq: number): void {
    const slack = Math.min(hostT - h0, h1 - hostT);
    if (slack < this.syncMin) {
      this.syncMin = slack;
      this.syncAt = { src, line, hostT, hostWhere, seq, h0, h1 };
    }
  }

  /** The residuals gathered. */
  residuals(): Residuals {
    const ctx = this.ctx;
    const w = this.windowAt;
    const window = Number.isFinite(this.windowMin)
      ? { cycles: this.windowMin, ns: ctx.ns(this.windowMin), guest: ctx.guestPlace(w.src, w.line), host: w.seg >= 0 ? this.edge(w.seg, w.t) : null }
      : null;
    const y = this.syncAt;
    const sync = Number.isFinite(this.syncMin)
      ? {
          cycles: this.syncMin,
          ns: ctx.ns(this.syncMin),
          guest: ctx.guestPlace(y.src, y.line),
          host: { at: ctx.hostPlace(y.hostWhere), hostTsc: ctx.hostTsc(y.hostT), cycles: Math.abs(this.syncMin) },
          seq: y.seq,
          bracket: [ctx.hostTsc(y.h0), ctx.hostTsc(y.h1)] as [string, string],
        }
      : null;
    return { window, sync };
  }

  /** Segment i's host event, seen from a guest event at t. */
  private edge(i: number, t: number): HostEdge {
    const st = this.segs!.time(i);
    return { at: this.ctx.hostPlace(this.segs!.where(i)), hostTsc: this.ctx.hostTsc(st), cycles: Math.abs(t - st) };
  }
}

/** Names places and converts units for the details of one merge. */
export class DetailContext {
  constructor(
    private readonly tl: Timeline,
    private readonly index: HostIndex | undefined,
    private readonly tscKhz: number | undefined,
    /** Events listed per vCPU and list. */
    readonly limit: number,
  ) {}

  /** Cycles as ns (rounded), when the TSC frequency is known. */
  ns(cycles: number): number | null {
    return this.tscKhz && Number.isFinite(cycles) ? Math.round(cyclesToNs(cycles, this.tscKhz)) : null;
  }

  /** The absolute host TSC of timeline time t (exact, decimal; timeline times are whole cycles, rounding only guards BigInt). */
  hostTsc(t: number): string {
    return (this.tl.base + BigInt(Math.round(t))).toString();
  }

  /** Where a guest event of timeline source `src` is. */
  guestPlace(src: number, line: number): string {
    const open = this.tl.sources[src].open;
    return placeText(eventPlace(open.spec.file, open.format, line));
  }

  /** Where a host event is, from its packed place. */
  hostPlace(where: number): string {
    return hostPlaceText(this.index?.files ?? [], where);
  }

  /** The fields every listed event has. */
  event(t: number, src: number, line: number, cpu: number, rule: string): ListedEvent {
    return { guest: this.guestPlace(src, line), cpu, hostTsc: this.hostTsc(t), rule };
  }
}
