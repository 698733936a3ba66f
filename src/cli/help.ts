/**
 * How every command's help and usage errors look, set once on the program (commander hands the
 * settings down to each command made after them).
 *
 * Help texts follow one style: a command's summary (the line in its parent's list) and every option
 * and argument description start lower-case with no final period, as commander's own lines do; a
 * command's description (the top of its own help) is sentences. Paragraphs are single lines that
 * commander wraps to the terminal; a default is said once, as `(default: X)`, either by commander
 * from the option's default value or in the text when it is worked out at run time.
 *
 * A usage error (an unknown option or command, a missing argument) is one line on stderr naming the
 * command, with a pointer to its --help, and exit status 2 — not the whole help. An option people
 * bring from trace-cmd gets a line that says what kvmtrace means instead (trace-cmd-habits.ts).
 */
import { CommanderError, type Command, type Help, type Option } from 'commander';
import { traceCmdHint } from './trace-cmd-habits.js';

/** Exit status of a usage error (1 is FAILED for `check` and `merge --check`). */
export const USAGE_EXIT = 2;

/** The width help is wrapped to: the terminal's, else $COLUMNS, else 80. */
export function helpWidth(): number {
  const env = Number(process.env.COLUMNS);
  return process.stdout.columns || (Number.isSafeInteger(env) && env > 0 ? env : 80);
}

/** An option's help text: its description, its choices, and its default once (none for repeatable options, whose default is empty). */
function optionDescription(o: Option): string {
  const extra: string[] = [];
  if (o.argChoices) extra.push(`one of: ${o.argChoices.join(', ')}`);
  const d = o.defaultValue as unknown;
  const said = /\(default: /.test(o.description);
  const shown = o.defaultValueDescription ?? (typeof d === 'string' || typeof d === 'number' ? String(d) : undefined);
  if (!said && shown !== undefined && (o.required || o.optional)) extra.push(`default: ${shown}`);
  return extra.length ? `${o.description} (${extra.join('; ')})` : o.description;
}

/** The command's name as typed: `kvmtrace capture host`. */
export function commandPath(c: Command): string {
  const names: string[] = [];
  for (let x: Command | null = c; x; x = x.parent) names.unshift(x.name());
  return names.join(' ');
}

/** Commander's error message (`error: unknown option '--x'\n(Did you mean --y?)`) as one line for `kvmtrace CMD`, with a pointer to its help. */
export function usageErrorLine(message: string, c: Command): string {
  const text = message
    .trim()
    .replace(/^error: /, '')
    .replace(/\s*\n\(Did you mean (.+)\?\)/, ' (did you mean $1?)')
    .replace(/\s*\n\s*/g, ' ');
  const path = commandPath(c);
  return `${path}: ${text}; see ${path} --help`;
}

/** Writes a usage error of command `c`: one line, and a hint when the option is trace-cmd's. */
function outputError(c: Command): (str: string, write: (s: string) => void) => void {
  return (str, write) => {
    write(usageErrorLine(str, c) + '\n');
    const flag = /unknown option '([^']+)'/.exec(str)?.[1];
    const hint = flag !== undefined ? traceCmdHint(flag) : undefined;
    if (hint) write(`hint: ${hint}\n`);
  };
}

/** The program's settings for help and errors; call before any command is added (they are inherited). */
export function styleProgram(program: Command, writeOut: (s: string) => void): void {
  program
    .configureOutput({ writeOut, getOutHelpWidth: helpWidth, getErrHelpWidth: helpWidth })
    .configureHelp({ optionDescription: (o: Option) => optionDescription(o) } as Partial<Help>)
    .showHelpAfterError(false)
    .showSuggestionAfterError(true)
    .exitOverride();
}

/** Gives every command its own one-line usage errors (they name the command); call once all are added. */
export function oneLineErrors(c: Command): void {
  c.configureOutput({ outputError: outputError(c) });
  for (const sub of c.commands) oneLineErrors(sub);
}

/** The exit status for an error commander threw (help and version end with 0; usage errors with {@link USAGE_EXIT}). */
export function commanderExit(e: unknown): number | undefined {
  if (!(e instanceof CommanderError)) return undefined;
  return e.exitCode === 0 ? 0 : e.code === 'commander.help' ? e.exitCode : USAGE_EXIT;
}
