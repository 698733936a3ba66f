import type { Command } from 'commander';

/** A command module's entry: adds its command to the program. */
export type Register = (program: Command) => void;

/** Every command, in the order `kvmtrace --help` lists them. Add one import and one entry per command. */
export const commands: Register[] = [];
