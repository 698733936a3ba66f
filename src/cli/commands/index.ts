import type { Command } from 'commander';

/** A command module's entry: adds its command to the program. */
export type Register = (program: Command) => void;

/** A command: its name on the command line and how to load its module (loaded only when needed). */
export interface CommandEntry {
  name: string;
  load: () => Promise<{ register: Register }>;
}

/** Every command, in the order `kvmtrace --help` lists them. Add one entry per command. */
export const commands: CommandEntry[] = [
  { name: 'demo', load: () => import('./demo.js') },
  { name: 'capture', load: () => import('./capture.js') },
  { name: 'guest-script', load: () => import('./guest-script.js') },
  { name: 'merge', load: () => import('./merge.js') },
  { name: 'check', load: () => import('./check.js') },
  { name: 'exits', load: () => import('./exits.js') },
  { name: 'latency', load: () => import('./latency.js') },
  { name: 'view', load: () => import('./view.js') },
  { name: 'stap', load: () => import('./stap.js') },
  { name: 'inspect', load: () => import('./inspect.js') },
  { name: 'bench', load: () => import('./bench-overhead.js') },
  { name: 'report', load: () => import('./report.js') },
];
