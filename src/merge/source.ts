/**
 * One input of a merge: a trace file with its role, machine name and clock, opened as a stream of
 * event batches whatever its format.
 */
import type { BundleMeta, TraceFormat } from '../model/bundle.js';
import type { TraceClock } from '../model/clock.js';
import type { Diagnostics } from '../model/diagnostics.js';
import { UserError } from '../model/errors.js';
import type { SourceHeader, TraceEvent } from '../model/event.js';
import { detectFormat } from '../parsers/detect.js';
import { readFtraceBlocks } from '../parsers/ftrace-text.js';
import { readFtraceBlocksThreaded, type FtraceTextProgress } from '../parsers/ftrace-text-thread.js';
import { EventBlock, StringTable } from '../model/event-block.js';
import { openTraceDat, readTraceDatEvents, type TraceDat } from '../parsers/trace-dat/index.js';
import { openStap } from '../parsers/stap.js';

/** What the user (or a bundle) says about one input. */
export interface SourceSpec {
  role: 'host' | 'guest';
  /** Machine name on the timeline. */
  machine: string;
  file: string;
  format?: TraceFormat;
  clock?: TraceClock;
  clockFrom?: 'metadata' | 'flag';
  /** The bundle's metadata when the file came from a bundle. */
  meta?: BundleMeta;
  /** A trace.dat file's metadata (options: TRACEID, GUEST, TIME_SHIFT, TSC2NSEC, event formats), read once when it is planned. */
  dat?: TraceDat;
  /** For trace.dat files with several buffers: which one (default: the top-level buffer). */
  buffer?: string;
  /** The CPU count an ftrace text file's header states (`cpus=N`, `#P:N`), read when it is planned. */
  textCpus?: number;
  /** ftrace text parsed on a worker thread (the session gives threads to the largest files). */
  parseThread?: boolean;
}

/** The CPU count an input states: a trace.dat's, its bundle's, or its text header's; undefined when none says. */
export function cpuCount(s: SourceSpec): number | undefined {
  return s.dat?.cpus || s.meta?.cpus || s.textCpus;
}

/** An opened input. `header.base` is set once the first batch has been read. */
export interface OpenSource {
  spec: SourceSpec;
  format: TraceFormat;
  header: SourceHeader;
  /** The events as objects, batch by batch; or read {@link blocks} instead (one of the two, once). */
  batches: AsyncIterable<TraceEvent[]>;
  /** The events as column blocks (what the merge reads). */
  blocks: AsyncIterable<EventBlock>;
  /** Parse statistics for the report (lines, events, bad lines, …). */
  stats(): Record<string, number>;
  /** Ends reading early (or after the end): closes the file and stops a parser thread. */
  close(): Promise<void>;
}

/** Passes over each file's events begun in this process, by file name. */
const passes = new Map<string, number>();

/** How many times `file` has been opened to read its events in this process (the host index's pass, the merge's, estimation's). */
export function readsOf(file: string): number {
  return passes.get(file) ?? 0;
}

/** Opens a source for reading; the format is detected from content when not given. */
export async function openSource(spec: SourceSpec, diags: Diagnostics): Promise<OpenSource> {
  const format = spec.format ?? (await detectFormat(spec.file));
  passes.set(spec.file, readsOf(spec.file) + 1);
  if (format === 'ftrace-text') {
    // A large file may be parsed on a second thread (see ftrace-text-thread.ts); same blocks either way.
    let parser!: FtraceTextProgress;
    const opts = { clock: spec.clock, clockFrom: spec.clockFrom, diags };
    const read = spec.parseThread ? readFtraceBlocksThreaded : readFtraceBlocks;
    const blocks = read(spec.file, opts, (p) => (parser = p));
    // The generator creates its parser on first pull; prime a header object that follows it.
    const header: SourceHeader = {
      file: spec.file,
      clock: spec.clock ?? 'unknown',
      clockFrom: spec.clock ? (spec.clockFrom ?? 'flag') : 'unknown',
      base: undefined,
      lostEvents: 0,
    };
    const follow = async function* (): AsyncGenerator<EventBlock> {
      for await (const b of blocks) {
        Object.assign(header, parser.header);
        yield b;
      }
      if (parser) Object.assign(header, parser.header);
    };
    const followed = follow();
    return {
      spec,
      format,
      header,
      blocks: followed,
      batches: asEvents(followed),
      close: async () => {
        await followed.return(undefined);
        await blocks.return(undefined);
      },
      stats: () => (parser ? { ...parser.stats } : {}),
    };
  }
  if (format === 'trace-dat') {
    // The metadata read when the merge was planned serves every later pass: formats are parsed once.
    const t = spec.dat ?? openTraceDat(spec.file, diags);
    const stream = readTraceDatEvents(t, { diags, buffer: spec.buffer });
    let events = 0;
    const counted = async function* (): AsyncGenerator<TraceEvent[]> {
      try {
        for await (const b of stream.batches) {
          events += b.length;
          yield b;
        }
      } finally {
        t.close();
      }
    };
    // A trace.dat's clock is in its options; bundle metadata or a flag may still override it.
    if (spec.clock) Object.assign(stream.header, { clock: spec.clock, clockFrom: spec.clockFrom ?? 'flag' });
    const batches = counted();
    return {
      spec,
      format,
      header: stream.header,
      batches,
      blocks: asBlocks(batches),
      stats: () => ({ events }),
      close: async () => {
        await batches.return(undefined);
        t.close();
      },
    };
  }
  if (format === 'stap') {
    const { parser, batches } = openStap(spec.file, { clock: spec.clock, clockFrom: spec.clockFrom, diags });
    return {
      spec,
      format,
      header: parser.header,
      batches,
      blocks: asBlocks(batches),
      stats: () => ({ ...parser.stats }),
      close: async () => void (await batches.return(undefined)),
    };
  }
  throw new UserError(`${spec.file}: ${format} input is not supported by this build of kvmtrace yet`);
}

/** Blocks as batches of event objects. */
async function* asEvents(blocks: AsyncIterable<EventBlock>): AsyncGenerator<TraceEvent[]> {
  for await (const b of blocks) yield b.events();
}

/** Batches of event objects as blocks (one string table for the source). */
async function* asBlocks(batches: AsyncIterable<TraceEvent[]>): AsyncGenerator<EventBlock> {
  const table = new StringTable();
  for await (const b of batches) if (b.length) yield EventBlock.fromEvents(b, table);
}
