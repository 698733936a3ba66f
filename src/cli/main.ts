#!/usr/bin/env -S node --max-old-space-size=128
/**
 * kvmtrace command line: commander wiring only. (The shebang caps V8's old space at 128 MB: the
 * streaming pipeline keeps ~25 MB live, and without a cap V8 lets garbage grow the heap far past
 * that before collecting it, so peak RSS would follow the input's size.) This file builds the
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
