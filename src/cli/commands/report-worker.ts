/**
 * The worker thread of `kvmtrace report`: reads the trace.dat, renders the text in chunks and
 * writes them itself to the output file descriptor with blocking writes (a full pipe makes it
 * wait: that is the back-pressure). It runs with a small young generation set by the main thread,
 * which keeps peak memory low; the main thread only waits for the outcome.
 */
import { writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { Diagnostics } from '../../model/diagnostics.js';
import { isUserError } from '../../model/errors.js';
import { loadFastZstd, openTraceDat, reportBytes, type ReportOptions } from '../../parsers/trace-dat/index.js';

/** What the main thread passes in. */
export interface ReportJob {
  file: string;
  opts: ReportOptions;
  strict: boolean;
  /** File descriptor to write to (1: stdout). */
  fd: number;
}

/** The outcome, posted once to the main thread. */
export type ReportMsg =
  | { t: 'done'; diagCount: number; summary: string; readerGone: boolean }
  | { t: 'error'; message: string; user: boolean };

const pause = new Int32Array(new SharedArrayBuffer(4));

/** Writes all of `buf` to `fd`, waiting out EAGAIN (a non-blocking fd); false once the reader has gone. */
function writeAll(fd: number, buf: Buffer, len: number): boolean {
  let off = 0;
  while (off < len) {
    try {
      off += writeSync(fd, buf, off, len - off);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') Atomics.wait(pause, 0, 0, 1);
      else if (code === 'EPIPE') return false;
      else throw e;
    }
  }
  return true;
}

async function run(job: ReportJob): Promise<void> {
  const port = parentPort!;
  const diags = new Diagnostics(job.strict);
  let readerGone = false;
  try {
    const t = openTraceDat(job.file, diags);
    if (t.compression?.name === 'zstd') await loadFastZstd();
    try {
      for (const out of reportBytes(t, job.opts, diags)) {
        const ok = writeAll(job.fd, out.buf, out.pos);
        out.pos = 0;
        if (!ok) {
          readerGone = true;
          break;
        }
      }
    } finally {
      t.close();
    }
    const summary = diags.count > 0 ? diags.summary() : '';
    port.postMessage({ t: 'done', diagCount: diags.count, summary, readerGone } satisfies ReportMsg);
  } catch (e) {
    const user = isUserError(e);
    const message = user ? (e as Error).message : e instanceof Error ? (e.stack ?? e.message) : String(e);
    port.postMessage({ t: 'error', message, user } satisfies ReportMsg);
  }
}

if (parentPort && workerData) void run(workerData as ReportJob);
