/**
 * The bundle folder a capture writes: refused when it already holds a bundle (or anything)
 * unless forced; files are written whole (temporary name in the same folder, then rename), and
 * meta.json is written last, so a folder with a meta.json holds a complete bundle.
 */
import { mkdir, readdir, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../model/errors.js';

/**
 * Makes `dir` ready for a new bundle; refuses a non-empty folder unless `force`. Returns whether
 * it created the folder (see {@link dropCreatedDir}).
 */
export async function prepareBundleDir(dir: string, force: boolean): Promise<boolean> {
  const entries = await readdir(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    if (e.code === 'ENOTDIR') throw new UserError(`${dir} is a file, not a folder for a bundle`);
    throw new UserError(`cannot read ${dir}: ${e.message}`);
  });
  if (entries && entries.length > 0 && !force) {
    const what = entries.includes('meta.json') ? 'a bundle' : 'files';
    throw new UserError(`${dir} already holds ${what}; not overwriting it (give --force to write into it anyway)`);
  }
  await mkdir(dir, { recursive: true }).catch((e: Error) => {
    throw new UserError(`cannot create ${dir}: ${e.message}`);
  });
  // A forced capture replaces the old bundle: its meta.json goes first, so that no moment has a
  // meta.json next to a trace it does not describe.
  if (force) await rm(join(dir, 'meta.json'), { force: true });
  return entries === undefined;
}

/** After a failed capture: removes `dir` when this run created it and it is empty (never a folder the user had). */
export async function dropCreatedDir(dir: string, created: boolean): Promise<void> {
  if (created) await rmdir(dir).catch(() => undefined); // not empty: someone else's files are in it now
}

/** The temporary name a bundle file is written under before it is renamed into place. */
export function partName(file: string): string {
  return `${file}.part`;
}

/** Renames `<file>.part` to `<file>` in `dir`. */
export async function commitPart(dir: string, file: string): Promise<void> {
  await rename(join(dir, partName(file)), join(dir, file));
}

/** Writes a file whole: to `<file>.part`, then renamed. */
export async function writeWhole(dir: string, file: string, text: string): Promise<void> {
  await writeFile(join(dir, partName(file)), text);
  await commitPart(dir, file);
}

/** Removes a half-written `<file>.part` (after an error). */
export async function dropPart(dir: string, file: string): Promise<void> {
  await rm(join(dir, partName(file)), { force: true });
}
