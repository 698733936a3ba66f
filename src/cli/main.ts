#!/usr/bin/env -S node --max-old-space-size=128
/**
 * kvmtrace command line: commander wiring only. (The shebang caps V8's old space at 128 MB: the
 * streaming pipeline keeps ~25 MB live, and without a cap V8 lets garbage grow the heap far past
 * that before collecting it, so peak RSS would follow the input's size.) Each command lives in
 * `commands/<name>.ts` and exports `register(program)`; this file loads the one the command line
 * names (all of them for help), turns UserErrors into one sentence on stderr with a non-zero exit
 * code, and reports anything else as a bug.
 */
import { Command } from 'commander';
import { isUserError } from '../model/errors.js';
import { commands } from './commands/index.js';
import { VERSION } from '../model/version.js';
import { removeTemporaryFiles } from '../export/atomic-writer.js';
import { endOnSignals, onEarlyExit } from './exit.js';
import { watchStdout, writeStdoutSync } from './stdout.js';

/**
 * Builds the program. When `only` names a command, only that command's module is loaded (start-up
 * time and memory: `report` need not load the merge); otherwise every command is registered (help,
 * version, unknown commands).
 */
export async function buildProgram(only?: string): Promise<Command> {
  const program = new Command('kvmtrace')
    .description("Put a KVM guest's trace and its host's trace on one timeline, exact to the TSC cycle.")
    .version(VERSION)
    .showHelpAfterError()
    // Help and version text go through the same stdout as everything else (stdout.ts).
    .configureOutput({ writeOut: (s) => writeStdoutSync(Buffer.from(s)) });
  const one = commands.filter((c) => c.name === only);
  for (const c of one.length ? one : commands) (await c.load()).register(program);
  return program;
}

async function main(): Promise<void> {
  // A run that ends early (a signal, a failed stdout) leaves no temporary output file behind.
  onEarlyExit(removeTemporaryFiles);
  endOnSignals();
  watchStdout();
  try {
    await (await buildProgram(process.argv[2])).parseAsync(process.argv);
  } catch (e) {
    if (isUserError(e)) {
      process.stderr.write(`kvmtrace: ${e.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`kvmtrace: internal error (please report): ${e instanceof Error ? e.stack : String(e)}\n`);
      process.exitCode = 70;
    }
  }
}

await main();
