/**
 * Outputs that would destroy an input or each other are refused before anything is written: two
 * outputs on standard output, two outputs that are one file, an output that is one of the run's
 * inputs, an output that is a folder. "The same file" is decided by device and inode, so a
 * symbolic or hard link to an input is caught too; an output that does not exist yet is compared
 * by its real path (its folder resolved through links).
 */
import { realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { UserError } from '../model/errors.js';

/** One output of a run: where it goes (`-` for stdout) and what it holds, as a sentence names it. */
export interface OutputTarget {
  path: string;
  /** e.g. "the text output" */
  what: string;
}

/** What a path is: its device and inode when it exists, else its real path. */
function identity(path: string): { key: string; exists: boolean; folder: boolean; charDevice: boolean } {
  try {
    const st = statSync(path);
    return { key: `${st.dev}:${st.ino}`, exists: true, folder: st.isDirectory(), charDevice: st.isCharacterDevice() };
  } catch {
    let dir: string;
    try {
      dir = realpathSync(dirname(path));
    } catch {
      dir = resolve(dirname(path)); // the writer will say that the folder is missing
    }
    return { key: join(dir, basename(path)), exists: false, folder: false, charDevice: false };
  }
}

/** Refuses (with a UserError) outputs that clash with an input or with each other; writes nothing. */
export function checkOutputTargets(outputs: OutputTarget[], inputs: string[]): void {
  const toStdout = outputs.filter((o) => o.path === '-');
  if (toStdout.length > 1)
    throw new UserError(`${toStdout.map((o) => o.what).join(' and ')} would both go to standard output (-): give all but one of them a file`);
  const inputIds = new Map<string, string>();
  for (const f of inputs) {
    const id = identity(f);
    if (id.exists) inputIds.set(id.key, f);
  }
  const seen = new Map<string, OutputTarget>();
  for (const o of outputs) {
    if (o.path === '-') continue;
    const id = identity(o.path);
    if (id.folder) throw new UserError(`${o.path} is a folder: give a file name for ${o.what}`);
    const input = inputIds.get(id.key);
    if (input !== undefined)
      throw new UserError(`${o.path} is an input of this run${input === o.path ? '' : ` (${input})`}: ${o.what} would replace it; give another file`);
    const twin = seen.get(id.key);
    // Two outputs into a character device (/dev/null) do no harm; into one file they would.
    if (twin && !id.charDevice)
      throw new UserError(`${twin.what} and ${o.what} are the same file (${o.path}): give each output its own file`);
    seen.set(id.key, o);
  }
}
