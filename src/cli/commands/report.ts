/**
 * `kvmtrace report [-t] [-R] [--raw-ts] FILE`: prints a trace.dat the way `trace-cmd report`
 * (3.1.6) does, line for line, streaming to stdout with back-pressure. The text is rendered and
 * written by a worker thread (report-worker.ts) with a small young generation, which keeps peak
 * memory low; without the compiled worker (running from sources) it is rendered and written here.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Diagnostics } from '../../model/diagnostics.js';
import { UserError } from '../../model/errors.js';
import { loadFastZstd, openTraceDat, reportChunks, type ReportOptions } from '../../parsers/trace-dat/index.js';
import type { ReportJob, ReportMsg } from './report-worker.js';

/** Resolves when stdout drains, closes or fails (an EPIPE marks the reader gone). */
function drained(state: { closed: boolean }): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: NodeJS.ErrnoException) => {
      process.stdout.off('drain', onDrain);
      process.stdout.off('close', onClose);
      process.stdout.off('error', done);
      if (err && err.code !== 'EPIPE') reject(err);
      else {
        if (err) state.closed = true;
        resolve();
      }
    };
    const onDrain = () => done();
    const onClose = () => {
      state.closed = true;
      done();
    };
    process.stdout.on('drain', onDrain);
    process.stdout.on('close', onClose);
    process.stdout.on('error', done);
  });
}

/** Writes to stdout, waiting for 'drain' when the pipe is full; false once the reader has gone. */
async function writeOut(text: string | Uint8Array, state: { closed: boolean }): Promise<boolean> {
  if (state.closed) return false;
  // Text holds the file's bytes one char each (latin1), so it is written back the same way.
  const ok = typeof text === 'string' ? process.stdout.write(text, 'latin1') : process.stdout.write(text);
  if (!ok) await drained(state);
  return !state.closed;
}

/** Renders in this thread (used when the compiled worker is not there). */
async function reportHere(file: string, opts: ReportOptions, strict: boolean, state: { closed: boolean }): Promise<Diagnostics> {
  const diags = new Diagnostics(strict);
  const t = openTraceDat(file, diags);
  if (t.compression?.name === 'zstd') await loadFastZstd();
  try {
    for (const chunk of reportChunks(t, opts, diags)) if (!(await writeOut(chunk, state))) break;
  } finally {
    t.close();
  }
  return diags;
}

/**
 * Renders and writes in a worker thread (which writes to fd 1 itself; stdout is not touched here,
 * so the descriptor keeps its blocking mode); resolves with the diagnostics summary.
 */
function reportInWorker(workerUrl: URL, file: string, opts: ReportOptions, strict: boolean): Promise<{ count: number; summary: string }> {
  const job: ReportJob = { file, opts, strict, fd: 1 };
  const w = new Worker(workerUrl, { workerData: job, resourceLimits: { maxYoungGenerationSizeMb: 12 } });
  return new Promise((resolve, reject) => {
    let result: { count: number; summary: string } | undefined;
    w.on('message', (m: ReportMsg) => {
      if (m.t === 'done') result = { count: m.diagCount, summary: m.summary };
      else reject(m.user ? new UserError(m.message) : new Error(m.message));
    });
    w.on('error', reject);
    w.on('exit', () => resolve(result ?? { count: 0, summary: '' }));
  });
}

/** Registers `kvmtrace report`. */
export function register(program: Command): void {
  program
    .command('report')
    .description('Print a trace.dat (v6/v7) as `trace-cmd report` does')
    .argument('<file>', 'trace.dat file')
    .option('-t', 'nanosecond timestamps (as trace-cmd report -t)')
    .option('-R', 'raw field values (as trace-cmd report -R)')
    .option('--raw-ts', 'raw ring-buffer timestamps (as trace-cmd report --raw-ts)')
    .option('--strict', 'stop at the first damaged event page instead of skipping it')
    .action(async (file: string, o: { t?: boolean; R?: boolean; rawTs?: boolean; strict?: boolean }) => {
      const opts: ReportOptions = { nsec: !!o.t, raw: !!o.R, rawTs: !!o.rawTs };
      let count: number;
      let summary: string;
      const workerUrl = new URL('./report-worker.js', import.meta.url);
      if (existsSync(fileURLToPath(workerUrl))) ({ count, summary } = await reportInWorker(workerUrl, file, opts, !!o.strict));
      else {
        const state = { closed: false };
        const onError = (e: NodeJS.ErrnoException) => {
          if (e.code === 'EPIPE') state.closed = true;
          else throw e;
        };
        process.stdout.on('error', onError);
        try {
          const d = await reportHere(file, opts, !!o.strict, state);
          count = d.count;
          summary = d.count > 0 ? d.summary() : '';
        } finally {
          process.stdout.off('error', onError);
        }
      }
      if (count > 0) {
        process.stderr.write(`kvmtrace: ${file}: ${summary}\n`);
        process.exitCode = 1;
      }
    });
}
