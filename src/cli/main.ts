#!/usr/bin/env -S node --max-old-space-size=128 --max-semi-space-size=8
/**
 * kvmtrace command line: commander wiring only. (The shebang caps V8's old space at 128 MB: the
 * streaming pipeline keeps ~25 MB live, and without a cap V8 lets garbage grow the heap far past
 * that before collecting it, so peak RSS would follow the input's size. It caps each half of the
 * young generation at 8 MB: V8 doubles it, up to 16 MB by default, once enough has survived since
 * it last grew, so a long merge ended with 16 MB more heap than a short one — docA ×20 → JSON
 * already had it, → .pftrace not yet — at no measurable cost in time.) This file builds the
 * program with the command the command line names (program.ts; all of them for help), runs it,
 * turns UserErrors into one sentence on stderr with a non-zero exit code (usage errors are one line
 * too, help.ts), and reports anything else as a bug.
 */
import { isUserError } from '../model/errors.js';
import { removeTemporaryFiles } from '../export/atomic-writer.js';
import { endOnSignals, onEarlyExit } from './exit.js';
import { watchStdout } from './stdout.js';
import { commanderExit } from './help.js';
import { buildProgram } from './program.js';

async function main(): Promise<void> {
  // A run that ends early (a signal, a failed stdout) leaves no temporary output file behind.
  onEarlyExit(removeTemporaryFiles);
  endOnSignals();
  watchStdout();
  try {
    await (await buildProgram(process.argv[2])).parseAsync(process.argv);
  } catch (e) {
    const usage = commanderExit(e);
    if (usage !== undefined) process.exitCode = usage; // commander printed the help, the version or the one-line error
    else if (isUserError(e)) {
      process.stderr.write(`kvmtrace: ${e.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`kvmtrace: internal error (please report): ${e instanceof Error ? e.stack : String(e)}\n`);
      process.exitCode = 70;
    }
  }
}

await main();
