/**
 * `kvmtrace report [-t] [-R] [--raw-ts] [-i] FILE`: prints a trace.dat the way `trace-cmd report`
 * (3.1.6) does, line for line. The text is rendered into a byte buffer and written to fd 1 with
 * blocking writes (../stdout.ts, which also ends the run when stdout fails). process.stdout is not
 * used, so the descriptor keeps its blocking mode.
 */
import type { Command } from 'commander';
import v8 from 'node:v8';
import { Diagnostics } from '../../model/diagnostics.js';
import { UserError } from '../../model/errors.js';
import { loadFastZstd, openTraceDat, reportBytes, type ReportOptions } from '../../parsers/trace-dat/index.js';
import { writeStdoutSync } from '../stdout.js';

/**
 * The one file to print: `-i FILE` or the argument (trace-cmd takes both), else trace.dat in this
 * folder, as trace-cmd does.
 */
function inputFile(arg: string | undefined, i: string[] | undefined): string {
  const given = [...(i ?? []), ...(arg !== undefined ? [arg] : [])];
  if (given.length > 1)
    throw new UserError(
      `report prints one trace.dat, and was given ${given.length} (${given.join(', ')}); to put a host and its guests on one timeline, use kvmtrace merge HOST GUEST…`,
    );
  return given[0] ?? 'trace.dat';
}

/** Registers `kvmtrace report`. */
export function register(program: Command): void {
  program
    .command('report')
    .summary('print a trace.dat (v6/v7) as `trace-cmd report` does')
    .description('Print a trace.dat (v6/v7) line for line as `trace-cmd report` (3.1.6) does. The file is given as an argument or with -i; without either, trace.dat in this folder is read, as trace-cmd does.')
    .argument('[file]', 'trace.dat file (default: trace.dat)')
    .option('-i <file>', 'the trace.dat file, as trace-cmd report -i', (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    .option('-t', 'nanosecond timestamps (as trace-cmd report -t)')
    .option('-R', 'raw field values (as trace-cmd report -R)')
    .option('--raw-ts', 'raw ring-buffer timestamps (as trace-cmd report --raw-ts)')
    .option('--strict', 'stop at the first damaged event page or compressed chunk instead of skipping it')
    .action(async (arg: string | undefined, o: { i?: string[]; t?: boolean; R?: boolean; rawTs?: boolean; strict?: boolean }) => {
      const file = inputFile(arg, o.i);
      const opts: ReportOptions = { nsec: !!o.t, raw: !!o.R, rawTs: !!o.rawTs };
      // Rendering allocates little, so the young generation need not grow fast (this saved
      // ~12 MB of peak RSS when the reader allocated a buffer per block; ~1 MB since it reuses them).
      v8.setFlagsFromString('--semi-space-growth-factor=1');
      const diags = new Diagnostics(!!o.strict);
      const t = openTraceDat(file, diags);
      try {
        if (t.compression?.name === 'zstd') await loadFastZstd();
        for (const out of reportBytes(t, opts, diags)) {
          writeStdoutSync(out.buf, out.pos);
          out.pos = 0;
        }
      } finally {
        t.close();
      }
      if (diags.count > 0) {
        process.stderr.write(`kvmtrace: ${file}: ${diags.summary()}\n`);
        process.exitCode = 1;
      }
    });
}
