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
    this.width = Math.max(...tl.sources.map((s) => s.machine.length));
    this.names = tl.sources.map((s) => s.machine.padEnd(this.width));
  }

  /** The header line naming the columns. */
  header(): string {
    const rel = this.tscKhz ? '+SECONDS' : '+CYCLES';
    return `# ${this.tscKhz === 1_000_000 ? 'HOST_NS' : 'HOST_TSC'} ${rel} ${'MACHINE'.padEnd(this.width)} [CPU] TASK-PID EVENT: FIELDS\n`;
  }

  /** Formats one batch. */
  format(batch: MergedEvent[]): string {
    let s = '';
    this.formatTo(batch, (x) => (s += x));
    return s;
  }

  /** Formats one batch, handing each line to `put` (see ChromeJsonExporter.formatTo). */
  formatTo(batch: MergedEvent[], put: (text: string) => void): void {
    const { hi, lo } = this.base;
    const khz = this.tscKhz;
    for (const m of batch) {
      const ev = m.ev;
      const rel = khz ? cyclesToSeconds(m.t, khz) : String(m.t);
      put(
        absDecimal(hi, lo, m.t) + (m.t < 0 ? ' ' : ' +') + rel + ' ' + this.names[m.src] + ' [' + cpu3(ev.cpu) + '] ' +
          ev.comm + '-' + ev.pid + ' ' + ev.name + ': ' + ev.body + '\n',
      );
    }
  }
}

/** The CPU number as three digits, like ftrace. */
function cpu3(cpu: number): string {
  return cpu < 10 ? '00' + cpu : cpu < 100 ? '0' + cpu : String(cpu);
}
