import type { Command } from 'commander';
import { register as merge } from './merge.js';
import { register as exits } from './exits.js';
import { register as latency } from './latency.js';
import { register as view } from './view.js';
import { register as demo } from './demo.js';
import { register as stap } from './stap.js';
import { register as inspect } from './inspect.js';
import { register as benchOverhead } from './bench-overhead.js';
import { register as capture } from './capture.js';
import { register as guestScript } from './guest-script.js';
import { register as report } from './report.js';
import { register as check } from './check.js';

/** A command module's entry: adds its command to the program. */
export type Register = (program: Command) => void;

/** Every command, in the order `kvmtrace --help` lists them. Add one import and one entry per command. */
export const commands: Register[] = [demo, capture, guestScript, merge, check, exits, latency, view, stap, inspect, benchOverhead, report];
