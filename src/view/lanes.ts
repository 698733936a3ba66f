/**
 * A lane of the terminal view: non-overlapping intervals [start, end) in timeline cycles with a
 * kind code, in typed arrays (20 bytes an interval), plus point marks (markers). Memory is
 * bounded: a lane holds at most `cap` intervals; when it would hold more, adjacent pairs are merged
 * (the merged interval takes the kind that covered more of it) and the lane remembers it is
 * coarsened by 2^k — the screen says so. Points are halved the same way.
 */

/** Default interval budget per lane: 1 Mi intervals ≈ 20 MiB. */
export const DEFAULT_LANE_CAP = 1 << 20;

/** One lane's intervals and points. */
export class IntervalLane {
  start = new Float64Array(256);
  end = new Float64Array(256);
  code = new Uint32Array(256);
  n = 0;
  pointT = new Float64Array(64);
  pointCode = new Uint32Array(64);
  np = 0;
  /** How many original intervals each stored one may stand for (1, 2, 4, …). */
  coarsening = 1;
  pointCoarsening = 1;
  private openStart = NaN;
  private openCode = 0;

  constructor(
    /** Text in the lane's label column. */
    public label: string,
    /** 'vcpu' lanes show guest mode and exits; 'cpu' lanes the guest CPU's running task. */
    readonly type: 'vcpu' | 'cpu',
    /** Sort key of the lane on screen. */
    public order: number,
    private readonly cap = DEFAULT_LANE_CAP,
  ) {}

  /** Closes the open interval (if any) at `t` and opens one of kind `code` (or none when code < 0). */
  switchTo(t: number, code: number): void {
    if (!Number.isNaN(this.openStart) && t > this.openStart) this.push(this.openStart, t, this.openCode);
    if (code < 0) this.openStart = NaN;
    else {
      this.openStart = t;
      this.openCode = code;
    }
  }

  /** The kind of the open interval, or -1. */
  openKind(): number {
    return Number.isNaN(this.openStart) ? -1 : this.openCode;
  }

  /** Relabels the open interval (a kvm_userspace_exit names the span that began at the unload). */
  relabelOpen(code: number): void {
    if (!Number.isNaN(this.openStart)) this.openCode = code;
  }

  /** Closes the open interval at the end of the trace. */
  close(t: number): void {
    this.switchTo(t, -1);
    this.flushGroup();
  }

  /** Adds a point mark. */
  point(t: number, code: number): void {
    if (this.np === this.pointT.length) {
      if (this.np >= this.cap >> 2) this.halvePoints();
      else {
        this.pointT = grow(this.pointT);
        this.pointCode = growU(this.pointCode);
      }
    }
    this.pointT[this.np] = t;
    this.pointCode[this.np++] = code;
  }

  // Once coarsened by k, incoming intervals are grouped k at a time before they are stored.
  private gN = 0;
  private gStart = 0;
  private gEnd = 0;
  private gCode = 0;
  private gLongest = -1;

  private push(s: number, e: number, c: number): void {
    if (this.coarsening === 1) return this.store(s, e, c);
    if (this.gN === 0) {
      this.gStart = s;
      this.gLongest = -1;
    }
    this.gEnd = e;
    if (e - s > this.gLongest) {
      this.gLongest = e - s;
      this.gCode = c;
    }
    if (++this.gN >= this.coarsening) this.flushGroup();
  }

  private flushGroup(): void {
    if (this.gN === 0) return;
    this.gN = 0;
    this.store(this.gStart, this.gEnd, this.gCode);
  }

  private store(s: number, e: number, c: number): void {
    if (this.n === this.start.length) {
      if (this.n >= this.cap) this.coarsen();
      else {
        this.start = grow(this.start);
        this.end = grow(this.end);
        this.code = growU(this.code);
      }
    }
    this.start[this.n] = s;
    this.end[this.n] = e;
    this.code[this.n++] = c;
  }

  /** Merges adjacent pairs (the longer one's kind wins): half the intervals, each covering what two did. */
  private coarsen(): void {
    let w = 0;
    for (let i = 0; i + 1 < this.n; i += 2) {
      const a = this.end[i] - this.start[i];
      const b = this.end[i + 1] - this.start[i + 1];
      this.start[w] = this.start[i];
      this.end[w] = this.end[i + 1];
      this.code[w++] = a >= b ? this.code[i] : this.code[i + 1];
    }
    if (this.n % 2) {
      this.start[w] = this.start[this.n - 1];
      this.end[w] = this.end[this.n - 1];
      this.code[w++] = this.code[this.n - 1];
    }
    this.n = w;
    this.coarsening *= 2;
  }

  private halvePoints(): void {
    let w = 0;
    for (let i = 0; i < this.np; i += 2) {
      this.pointT[w] = this.pointT[i];
      this.pointCode[w++] = this.pointCode[i];
    }
    this.np = w;
    this.pointCoarsening *= 2;
  }

  /** Index of the first interval whose end is after `t` (n when none). */
  firstEndingAfter(t: number): number {
    let lo = 0;
    let hi = this.n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.end[mid] > t) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Index of the interval containing `t`, or -1. */
  at(t: number): number {
    const i = this.firstEndingAfter(t);
    return i < this.n && this.start[i] <= t ? i : -1;
  }

  /** Index of the first point at or after `t`. */
  firstPointFrom(t: number): number {
    let lo = 0;
    let hi = this.np;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.pointT[mid] >= t) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Bytes held by the typed arrays (for the documented bound). */
  bytes(): number {
    return this.start.byteLength + this.end.byteLength + this.code.byteLength + this.pointT.byteLength + this.pointCode.byteLength;
  }
}

function grow(a: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> {
  const b = new Float64Array(a.length * 2);
  b.set(a);
  return b;
}

function growU(a: Uint32Array<ArrayBuffer>): Uint32Array<ArrayBuffer> {
  const b = new Uint32Array(a.length * 2);
  b.set(a);
  return b;
}
