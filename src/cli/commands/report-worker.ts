/**
 * The worker thread of `kvmtrace report`: reads the trace.dat and renders the text in chunks,
 * posted to the main thread, which writes them. A small young generation (set by the main thread)
 * keeps peak memory low, and rendering overlaps with writing. At most {@link MAX_INFLIGHT} chunks
 * wait in the main thread at a time: the worker blocks on a shared counter until one is written.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Diagnostics } from '../../model/diagnostics.js';
import { isUserError } from '../../model/errors.js';
import { loadFastZstd, openTraceDat, reportChunks, type ReportOptions } from '../../parsers/trace-dat/index.js';

/** Chunks allowed in flight between the worker and the writer. */
export const MAX_INFLIGHT = 4;

/** What the main thread passes in. */
export interface ReportJob {
  file: string;
  opts: ReportOptions;
  strict: boolean;
  /** inflight[0]: chunks posted and not yet written. */
  inflight: SharedArrayBuffer;
}

/** Messages to the main thread. */
export type ReportMsg =
  | { t: 'chunk'; text: string }
  | { t: 'done'; diagCount: number; summary: string }
  | { t: 'error'; message: string; user: boolean };

async function run(job: ReportJob): Promise<void> {
  const port = parentPort!;
  const inflight = new Int32Array(job.inflight);
  const diags = new Diagnostics(job.strict);
  try {
    const t = openTraceDat(job.file, diags);
    if (t.compression?.name === 'zstd') await loadFastZstd();
    try {
      for (const text of reportChunks(t, job.opts, diags)) {
        // Wait while the writer is MAX_INFLIGHT chunks behind (a -1 means it stopped: reader gone).
        for (let n = Atomics.load(inflight, 0); n >= MAX_INFLIGHT; n = Atomics.load(inflight, 0)) Atomics.wait(inflight, 0, n);
        if (Atomics.load(inflight, 0) < 0) break;
        Atomics.add(inflight, 0, 1);
        // Sent as text: moving encoded ArrayBuffers instead was measured to raise peak RSS by 60 MB.
        port.postMessage({ t: 'chunk', text } satisfies ReportMsg);
      }
    } finally {
      t.close();
    }
    const summary = diags.count > 0 ? diags.summary() : '';
    port.postMessage({ t: 'done', diagCount: diags.count, summary } satisfies ReportMsg);
  } catch (e) {
    const user = isUserError(e);
    const message = user ? (e as Error).message : e instanceof Error ? (e.stack ?? e.message) : String(e);
    port.postMessage({ t: 'error', message, user } satisfies ReportMsg);
  }
}

if (parentPort && workerData) void run(workerData as ReportJob);

