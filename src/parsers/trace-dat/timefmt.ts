/**
 * The timestamps `trace-cmd report` prints: raw ring-buffer values run through the file's
 * corrections (TIME_SHIFT guest → host, TSC2NSEC cycles → ns, DATE/OFFSET), then printed as
 * `secs.nsecs` (-t), `secs.usecs` or a bare 12-wide counter, as trace-cmd 3.1.6 decides.
 */
import type { TraceDat } from './open.js';
import type { TimeShift } from './types.js';
import type { Out } from './out.js';

/** Clocks trace-cmd prints in seconds (`extract_trace_clock`). */
const TIME_CLOCKS = new Set(['local', 'global', 'uptime', 'perf', 'tsc2nsec', 'tai']);

const ZEROS = '000000000';

/** How a report prints times. */
export interface TimeOptions {
  /** `-t`: nanoseconds instead of rounded microseconds. */
  nsec: boolean;
  /** `--raw-ts`: raw ring-buffer values, no corrections. */
  rawTs: boolean;
}

/** Converts raw timestamps (relative to `base`) into the values trace-cmd orders and prints by. */
export class TimeConverter {
  /** True when corrections change the raw value (bigint path). */
  readonly converts: boolean;
  /** True when printed as seconds (trace-cmd's TRACECMD_FL_IN_USECS). */
  readonly inSeconds: boolean;
  private readonly mult: bigint;
  private readonly shift: bigint;
  private readonly offsetNs: bigint;
  private readonly baseHi: number;
  private readonly baseLo: number;

  constructor(
    t: TraceDat,
    readonly base: bigint,
    readonly opts: TimeOptions,
  ) {
    const o = t.options;
    const tsc = !opts.rawTs && o.tsc2nsec && o.tsc2nsec.mult !== 0 ? o.tsc2nsec : undefined;
    this.mult = BigInt(tsc?.mult ?? 0);
    this.shift = BigInt(tsc?.shift ?? 0);
    this.offsetNs = opts.rawTs ? 0n : (o.date?.offsetNs ?? 0n) + (o.offset?.value ?? 0n);
    this.timeShift = opts.rawTs ? undefined : o.timeShift;
    this.converts = !!tsc || !!this.timeShift || this.offsetNs !== 0n;
    // trace-cmd starts in seconds and drops to counters when any clock text it parses (the
    // TRACECLOCK option, and in v6 the text after the flyrecord table) names a non-time clock.
    const isTime = (c: string | undefined) => c === undefined || TIME_CLOCKS.has(c) || c.startsWith('mono');
    this.inSeconds = !opts.rawTs && (!!tsc || (isTime(o.traceClock) && isTime(o.v6FlyrecordClock)));
    this.baseHi = Number(base / 1_000_000_000n);
    this.baseLo = Number(base % 1_000_000_000n);
  }

  private readonly timeShift: TimeShift | undefined;
  private lastHi = -1;
  private lastSecBytesFor = -1;
  private lastSecBytes = Buffer.alloc(0);
  private lastSec = '';

  /** The corrected absolute value of a raw timestamp (bigint; used when {@link converts}). */
  value(rel: number, cpu: number): bigint {
    let ts = this.base + BigInt(rel);
    if (!this.converts) return ts;
    if (this.timeShift) ts = hostSync(ts, cpu, this.timeShift);
    if (this.mult !== 0n) ts = (ts * this.mult) >> this.shift;
    return BigInt.asUintN(64, ts + this.offsetNs);
  }

  /** Writes the time column (as {@link format} gives it) into `out` as bytes. */
  writeTo(out: Out, rel: number, cpu: number): void {
    if (this.converts || !this.inSeconds) {
      out.str(this.format(rel, cpu));
      return;
    }
    const l = this.baseLo + rel;
    const carry = Math.floor(l / 1_000_000_000);
    let sec = this.baseHi + carry;
    const ns = l - carry * 1_000_000_000;
    if (this.opts.nsec) {
      if (sec !== this.lastSecBytesFor) {
        this.lastSecBytesFor = sec;
        this.lastSecBytes = Buffer.from(sec.toString().padStart(5) + '.', 'latin1');
      }
      out.put(this.lastSecBytes);
      out.dec9(ns);
      return;
    }
    let us = Math.floor((ns + 500) / 1000);
    if (us >= 1_000_000) {
      us -= 1_000_000;
      sec += 1;
    }
    if (sec !== this.lastSecBytesFor) {
      this.lastSecBytesFor = sec;
      this.lastSecBytes = Buffer.from(sec.toString().padStart(5) + '.', 'latin1');
    }
    out.put(this.lastSecBytes);
    out.dec6(us);
  }

  /** The printed time column (without the trailing colon). */
  format(rel: number, cpu: number): string {
    let hi: number;
    let lo: number;
    if (this.converts) {
      const v = this.value(rel, cpu);
      hi = Number(v / 1_000_000_000n);
      lo = Number(v % 1_000_000_000n);
    } else {
      const l = this.baseLo + rel;
      const carry = Math.floor(l / 1_000_000_000);
      hi = this.baseHi + carry;
      lo = l - carry * 1_000_000_000;
    }
    if (!this.inSeconds) {
      const s = hi > 0 ? hi.toString() + lo.toString().padStart(9, '0') : lo.toString();
      return s.padStart(12);
    }
    if (this.opts.nsec) {
      if (hi !== this.lastHi) {
        this.lastHi = hi;
        this.lastSec = hi.toString().padStart(5) + '.';
      }
      const l = String(lo);
      return this.lastSec + (l.length >= 9 ? l : ZEROS.slice(0, 9 - l.length) + l);
    }
    // (ts + 500) / 1000, then seconds and microseconds.
    let us = Math.floor((lo + 500) / 1000);
    let sec = hi;
    if (us >= 1_000_000) {
      us -= 1_000_000;
      sec += 1;
    }
    return sec.toString().padStart(5) + '.' + us.toString().padStart(6, '0');
  }
}

/** trace-cmd's `timestamp_host_sync`: a guest timestamp on the host's clock. */
export function hostSync(ts: bigint, cpu: number, ts_: TimeShift): bigint {
  if (cpu >= ts_.cpus.length) return ts;
  const s = ts_.cpus[cpu];
  if (s.length === 0) return ts;
  if (s.length === 1) return BigInt.asUintN(64, ts + s[0].offset);
  const interpolate = (ts_.flags & 1) !== 0;
  const calc = (a: number, b: number): bigint => {
    const min = s[a];
    const max = s[b];
    let cor: bigint;
    if (interpolate) {
      const delta = max.time - min.time;
      const off = BigInt.asIntN(64, (ts - min.time) * (max.offset - min.offset));
      cor = delta === 0n ? min.offset : min.offset + (off + delta / 2n) / delta;
    } else cor = min.offset;
    const scaled = BigInt.asUintN(64, ts * min.scaling) >> BigInt(min.fracBits);
    return BigInt.asUintN(64, scaled + cor);
  };
  if (s.length === 2) return calc(0, 1);
  if (ts <= s[0].time) return calc(0, 1);
  if (ts >= s[s.length - 1].time) return calc(s.length - 2, s.length - 1);
  let min = 0;
  let max = s.length - 1;
  let mid = (min + max) >> 1;
  while (min <= max) {
    if (ts < s[mid].time) max = mid - 1;
    else if (ts > s[mid].time) min = mid + 1;
    else break;
    mid = (min + max) >> 1;
  }
  return calc(mid, mid + 1);
}
