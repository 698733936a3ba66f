/**
 * `kvmtrace report [-t] [-R] [--raw-ts] FILE`: prints a trace.dat the way `trace-cmd report`
 * (3.1.6) does, line for line, streaming to stdout with back-pressure.
 */
import type { Command } from 'commander';
import { Diagnostics } from '../../model/diagnostics.js';
import { openTraceDat, reportChunks } from '../../parsers/trace-dat/index.js';

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
async function writeOut(text: string, state: { closed: boolean }): Promise<boolean> {
  if (state.closed) return false;
  // The text holds the file's bytes one char each (latin1), so it is written back the same way.
  if (!process.stdout.write(text, 'latin1')) await drained(state);
  return !state.closed;
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
      const diags = new Diagnostics(!!o.strict);
      const t = openTraceDat(file, diags);
      const state = { closed: false };
      const onError = (e: NodeJS.ErrnoException) => {
        if (e.code === 'EPIPE') state.closed = true;
        else throw e;
      };
      process.stdout.on('error', onError);
      try {
        for (const chunk of reportChunks(t, { nsec: !!o.t, raw: !!o.R, rawTs: !!o.rawTs }, diags)) {
          if (!(await writeOut(chunk, state))) break;
        }
      } finally {
        t.close();
        process.stdout.off('error', onError);
      }
      if (diags.count > 0) {
        process.stderr.write(`kvmtrace: ${file}: ${diags.summary()}\n`);
        process.exitCode = 1;
      }
    });
}
