/**
 * The merged timeline as text: one line per event —
 * `HOST_TSC  +SECONDS  MACHINE  [CPU]  TASK-PID  EVENT: FIELDS`.
 * HOST_TSC is the absolute host TSC (exact); +SECONDS is the time since the timeline's start
 * (ns precision; cycles when the TSC frequency is unknown).
 */
import { TsBase } from '../model/exact.js';
import type { MergedEvent } from '../merge/merged-event.js';
import type { Timeline } from '../merge/merge.js';
import { absDecimal, cyclesToSeconds } from './format-time.js';

/** Formats merged events as text lines. */
export class TextExporter {
  private readonly base: TsBase;
  private readonly names: string[];
  private readonly width: number;

  constructor(
    tl: Timeline,
    private readonly tscKhz: number | undefined,
  ) {
    this.base = new TsBase(tl.base);
    this.names = tl.sources.map((s) => s.machine);
    this.width = Math.max(...this.names.map((n) => n.length));
  }

  /** The header line naming the columns. */
  header(): string {
    const rel = this.tscKhz ? '+SECONDS' : '+CYCLES';
    return `# HOST_TSC ${rel} ${'MACHINE'.padEnd(this.width)} [CPU] TASK-PID EVENT: FIELDS\n`;
  }

  /** Formats one batch. */
  format(batch: MergedEvent[]): string {
    let s = '';
    const { hi, lo } = this.base;
    for (const m of batch) {
      const ev = m.ev;
      const rel = this.tscKhz ? cyclesToSeconds(m.t, this.tscKhz) : String(m.t);
      s +=
        absDecimal(hi, lo, m.t) +
        (m.t < 0 ? ' ' : ' +') +
        rel +
        ' ' +
        this.names[m.src].padEnd(this.width) +
        ' [' +
        String(ev.cpu).padStart(3, '0') +
        '] ' +
        ev.comm +
        '-' +
        ev.pid +
        ' ' +
        ev.name +
        ': ' +
        ev.body +
        '\n';
    }
    return s;
  }
}
