/**
 * ftrace text parsed on a second thread. Parsing is a third of a merge's work, and its blocks are
 * typed arrays and a byte chunk, so a worker thread can run {@link readFtraceBlocks} and hand each
 * block over by transferring its buffers (no copy, no object per event). New strings of the
 * source's table travel with the first block that uses them.
 *
 * The worker runs at most {@link CREDITS} blocks ahead of the merge (memory stays bounded),
 * forwards its diagnostics with the block they belong to (so `--strict` stops at the same line),
 * and its header and counts follow each block.
 *
 * This module is both the worker's entry point and the merge thread's side; it starts a worker
 * only when it runs compiled (`.js`): under a TypeScript test runner the parse stays in-thread.
 */
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { Diagnostics, type Diagnostic } from '../model/diagnostics.js';
import { isUserError, UserError } from '../model/errors.js';
import { EventBlock, StringTable, type BlockParts } from '../model/event-block.js';
import type { SourceHeader } from '../model/event.js';
import { TsBase } from '../model/exact.js';
import { readFtraceBlocks, type FtraceTextOptions, type FtraceTextParser, type FtraceTextStats } from './ftrace-text.js';

/** Blocks the worker may have posted and the merge not yet taken. */
const CREDITS = 8;
/** Credits go back to the worker this many at a time (a message per block cost more than the rest of taking it). */
const CREDIT_BATCH = 4;
/** Diagnostics forwarded in full; beyond these only the count travels (the merge keeps 200). */
const FORWARD_DIAGS = 200;

/** What the merge reads about a parse while it runs: its header, its counts and its string table. */
export interface FtraceTextProgress {
  readonly header: SourceHeader;
  readonly stats: FtraceTextStats;
}

interface WorkerInput {
  kvmtraceFtraceText: true;
  path: string;
  file: string;
  clock: FtraceTextOptions['clock'];
  clockFrom: FtraceTextOptions['clockFrom'];
}

interface BlockMessage {
  kind: 'block';
  parts: BlockParts;
  /** Strings the worker's table gained since the last message, in id order. */
  strings: string[];
  diags: Diagnostic[];
  moreDiags: number;
  header: Omit<SourceHeader, 'base'> & { base: bigint | undefined };
  stats: FtraceTextStats;
}

type WorkerMessage = BlockMessage | { kind: 'end' } | { kind: 'error'; user: boolean; message: string };

/**
 * How parsing on worker threads is asked for: `KVMTRACE_PARSE_THREADS=never|always|auto` (auto:
 * the merge session gives threads to the largest files; see assignParseThreads). Only when running
 * compiled (`.js`): under a TypeScript test runner the parse stays in-thread.
 */
export function parseThreadsMode(): 'never' | 'always' | 'auto' {
  if (!import.meta.url.endsWith('.js')) return 'never';
  const mode = process.env.KVMTRACE_PARSE_THREADS ?? 'auto';
  return mode === 'never' || mode === 'always' ? mode : 'auto';
}

/**
 * Reads an ftrace text file on a worker thread; yields the same blocks as `readFtraceBlocks`.
 * `progressOut` receives the header and counts, kept up to date as blocks arrive. The worker
 * starts at once (not on the first pull), so its first blocks are ready when the merge begins.
 */
export function readFtraceBlocksThreaded(
  path: string,
  opts: Omit<FtraceTextOptions, 'file'> & { file?: string },
  progressOut?: (p: FtraceTextProgress) => void,
): AsyncGenerator<EventBlock> {
  const file = opts.file ?? path;
  const progress: { header: SourceHeader; stats: FtraceTextStats } = {
    header: { file, clock: opts.clock ?? 'unknown', clockFrom: opts.clock ? (opts.clockFrom ?? 'flag') : 'unknown', base: undefined, lostEvents: 0 },
    stats: { lines: 0, events: 0, headerLines: 0, stackLines: 0, lostLines: 0, badLines: 0 },
  };
  progressOut?.(progress);
  const input: WorkerInput = { kvmtraceFtraceText: true, path, file, clock: opts.clock, clockFrom: opts.clockFrom };
  const worker = new Worker(fileURLToPath(import.meta.url), { workerData: input, resourceLimits: { maxOldGenerationSizeMb: 64 } });
  const queue: WorkerMessage[] = [];
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  let exited = false;
  const poke = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  worker.on('message', (m: WorkerMessage) => {
    queue.push(m);
    poke();
  });
  worker.on('error', (e: Error) => {
    failure = e;
    poke();
  });
  worker.on('exit', () => {
    exited = true;
    poke();
  });
  worker.unref();
  const gen = takeBlocks();
  // Ending the reader ends the worker, even when no block was ever pulled (a generator that
  // never started would skip its finally).
  const end = gen.return.bind(gen);
  gen.return = async (v) => {
    await worker.terminate();
    return end(v);
  };
  return gen;

  async function* takeBlocks(): AsyncGenerator<EventBlock> {
    const table = new StringTable();
    let owed = 0;
    try {
      for (;;) {
        if (queue.length === 0 && !failure && !exited) {
          // Held only while waiting: a reader abandoned mid-file never keeps the process alive.
          worker.ref();
          while (queue.length === 0 && !failure && !exited) await new Promise<void>((res) => (wake = res));
          worker.unref();
        }
        const m = queue.shift();
        if (m === undefined) throw failure ?? new Error(`the parser thread for ${file} stopped without finishing`);
        if (m.kind === 'end') break;
        if (m.kind === 'error') throw m.user ? new UserError(m.message) : new Error(m.message);
        for (const d of m.diags) opts.diags.add(d);
        opts.diags.count += m.moreDiags;
        const { base, ...rest } = m.header;
        Object.assign(progress.header, rest);
        if (base !== undefined && progress.header.base === undefined) progress.header.base = new TsBase(base);
        Object.assign(progress.stats, m.stats);
        // The worker's table gives ids in first-seen order; so does this one, fed in the same order.
        for (const s of m.strings) table.id(s);
        if (++owed === CREDIT_BATCH) {
          worker.postMessage(owed);
          owed = 0;
        }
        if (m.parts.n) yield EventBlock.fromParts(m.parts, table);
      }
    } finally {
      await worker.terminate();
    }
  }
}

/** The worker: parses the file and posts its blocks while it has credit. */
async function runWorker(input: WorkerInput): Promise<void> {
  const port = parentPort!;
  let credits = CREDITS;
  let resume: (() => void) | undefined;
  port.on('message', (n: number) => {
    credits += n;
    const r = resume;
    resume = undefined;
    r?.();
  });
  let pendingDiags: Diagnostic[] = [];
  let forwarded = 0;
  let moreDiags = 0;
  const diags = new Diagnostics(false, 0);
  diags.add = (d: Diagnostic): void => {
    if (forwarded < FORWARD_DIAGS) {
      forwarded++;
      pendingDiags.push(d);
    } else moreDiags++;
  };
  let parser: FtraceTextParser | undefined;
  let sent = 0;
  const post = async (blk: EventBlock | undefined): Promise<void> => {
    while (credits === 0) await new Promise<void>((res) => (resume = res));
    credits--;
    const parts = blk ? blk.parts() : new EventBlock(parser!.table, Buffer.alloc(0), 0).parts();
    // A chunk's bytes own their buffer (see readFtraceBlocks); a view into a shared one is copied.
    if (parts.bytes.byteOffset !== 0 || parts.bytes.byteLength !== parts.bytes.buffer.byteLength) parts.bytes = new Uint8Array(parts.bytes);
    const list = parser!.table.list;
    const h = parser!.header;
    const msg: BlockMessage = {
      kind: 'block',
      parts,
      strings: list.slice(sent),
      diags: pendingDiags,
      moreDiags,
      header: { file: h.file, clock: h.clock, clockFrom: h.clockFrom, base: h.base?.value, cpus: h.cpus, lostEvents: h.lostEvents, unit: h.unit },
      stats: { ...parser!.stats },
    };
    sent = list.length;
    port.postMessage(msg, EventBlock.transfer(parts));
    pendingDiags = [];
    moreDiags = 0;
  };
  try {
    const opts = { file: input.file, clock: input.clock, clockFrom: input.clockFrom, diags };
    for await (const blk of readFtraceBlocks(input.path, opts, (p) => (parser = p))) await post(blk);
    // The last message also carries the final header, counts and diagnostics.
    await post(undefined);
    port.postMessage({ kind: 'end' });
  } catch (e) {
    port.postMessage({ kind: 'error', user: isUserError(e), message: e instanceof Error ? (isUserError(e) ? e.message : (e.stack ?? e.message)) : String(e) });
  }
}

if (!isMainThread && (workerData as WorkerInput | undefined)?.kvmtraceFtraceText) void runWorker(workerData as WorkerInput);
