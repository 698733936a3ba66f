/**
 * The merged timeline as text: one line per event —
 * `HOST_TSC  +SECONDS  MACHINE  [CPU]  TASK-PID  EVENT: FIELDS`.
 * HOST_TSC is the absolute host TSC (exact); +SECONDS is the time since the timeline's time 0, the
 * merge's first event (merge.ts Timeline.zero, which the Chrome JSON and the view count from too),
 * to the ns (cycles when the TSC frequency is unknown). The header says where time 0 is.
 */
import { cyclesToNs } from '../model/units.js';
import { TsBase } from '../model/exact.js';
import type { MergedBatch } from '../merge/merged-event.js';
import { zeroHostTsc, type Timeline } from '../merge/merge.js';
import type { MergeConsumer } from '../merge/consumer.js';
import { absDecimal } from './format-time.js';
import type { AtomicWriter } from './atomic-writer.js';
import { FragmentTable, IdFragments } from './fragments.js';

/** Formats merged events as text lines into its writer: a merge consumer (merge/consumer.ts). */
export class TextExporter implements MergeConsumer {
  private base!: TsBase;
  /** The timeline's time 0 (Timeline.zero): the times printed are relative to it. */
  private zero = 0;
  private names: string[] = [];
  private width = 0;

  constructor(
    /** Where the text goes. */
    private readonly out: AtomicWriter,
    private readonly tscKhz: number | undefined,
  ) {}

  /** The timeline is known: writes the header line. */
  async begin(tl: Timeline): Promise<void> {
    this.base = new TsBase(tl.base);
    this.width = Math.max(...tl.sources.map((s) => s.machine.length));
    this.names = tl.sources.map((s) => s.machine.padEnd(this.width));
    this.zero = tl.zero;
    await this.out.write(this.header(tl));
  }

  /** Writes one batch, then waits for the writer (back-pressure). */
  async batch(mb: MergedBatch): Promise<void> {
    this.writeTo(mb, this.out);
    await this.out.settle();
  }

  /** `EVENT: ` as bytes, per event name. */
  private readonly eventNames = new IdFragments((name) => name + ': ');
  /** ` MACHINE [CPU] TASK-PID ` per machine, CPU and task. */
  private readonly tasks = new FragmentTable();

  private task(src: number, cpu: number, pid: number, comm: string): Uint8Array {
    return this.tasks.find(src, cpu, pid, comm) ?? this.tasks.put(src, cpu, pid, comm, ` ${this.names[src]} [${String(cpu).padStart(3, '0')}] ${comm}-${pid} `);
  }

  /** The header: where time 0 is, and the line naming the columns. */
  private header(tl: Timeline): string {
    const rel = this.tscKhz ? '+SECONDS' : '+CYCLES';
    const abs = this.tscKhz === 1_000_000 ? 'HOST_NS' : 'HOST_TSC';
    return (
      `# time 0 (${rel} 0) is the first event of the merge, at ${abs} ${zeroHostTsc(tl)}\n` +
      `# ${abs} ${rel} ${'MACHINE'.padEnd(this.width)} [CPU] TASK-PID EVENT: FIELDS\n`
    );
  }

  /** Writes one batch into `w` byte by byte (no string per line: see AtomicWriter.text). */
  writeTo(mb: MergedBatch, w: AtomicWriter): void {
    const { hi, lo } = this.base;
    const khz = this.tscKhz;
    for (let k = 0; k < mb.n; k++) {
      const blk = mb.blk[k];
      const r = mb.row[k];
      const t = mb.t[k];
      // Absolute host TSC = base + t, split at 1e9 so every part is exact.
      let l = lo + t;
      let h = hi;
      if (l >= 1e9 || l < 0) {
        const carry = Math.floor(l / 1e9);
        h += carry;
        l -= carry * 1e9;
      }
      if (h > 0) {
        w.uint(h);
        w.pad(l, 9);
      } else if (h === 0) w.uint(l);
      else w.text(absDecimal(hi, lo, t));
      w.byte(32);
      const rel = t - this.zero;
      w.byte(43);
      if (khz) {
        const ns = Math.round(cyclesToNs(rel, khz));
        const sec = Math.floor(ns / 1e9);
        w.uint(sec);
        w.byte(46);
        w.pad(ns - sec * 1e9, 9);
      } else w.uint(rel);
      w.bytes(this.task(mb.src[k], blk.cpu[r], blk.pid[r], blk.commOf(r)));
      w.bytes(this.eventNames.get(blk.table, blk.name[r]));
      const text = blk.bodyText?.[r];
      if (text !== undefined) w.put(text);
      else w.range(blk.bytes, blk.bodyStart[r], blk.bodyEnd[r]);
      w.byte(10);
    }
  }
}
