/**
 * The kvmtrace program: the commands of commands/index.ts on one commander program, with the help
 * style and one-line usage errors of help.ts. Each command lives in `commands/<name>.ts` and exports
 * `register(program)`.
 */
import { Command } from 'commander';
import { commands } from './commands/index.js';
import { VERSION } from '../model/version.js';
import { writeStdoutSync } from './stdout.js';
import { oneLineErrors, styleProgram } from './help.js';

/**
 * Builds the program. When `only` names a command, only that command's module is loaded (start-up
 * time and memory: `report` need not load the merge); otherwise every command is registered (help,
 * version, unknown commands).
 */
export async function buildProgram(only?: string): Promise<Command> {
  const program = new Command('kvmtrace').description("Put a KVM guest's trace and its host's trace on one timeline, exact to the TSC cycle.").version(VERSION);
  // Help and version text go through the same stdout as everything else (stdout.ts).
  styleProgram(program, (s) => writeStdoutSync(Buffer.from(s)));
  const one = commands.filter((c) => c.name === only);
  for (const c of one.length ? one : commands) (await c.load()).register(program);
  oneLineErrors(program);
  return program;
}
