/**
 * The inputs of a merge: capture bundles (docs/bundle.md) or bare files with flags.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { validateMeta, type BundleMeta } from '../model/bundle.js';
import { parseClock, type TraceClock } from '../model/clock.js';
import { UserError } from '../model/errors.js';
import { clipInput } from '../model/quote.js';
import type { SourceSpec } from './source.js';

/** A loaded bundle: its metadata and one source per trace file. */
export interface Bundle {
  dir: string;
  /** The bundle's meta.json. */
  metaFile: string;
  meta: BundleMeta;
  specs: SourceSpec[];
}

/** Reads and validates a bundle folder. */
export async function loadBundle(dir: string): Promise<Bundle> {
  const st = await stat(dir).catch(() => undefined);
  if (!st) throw new UserError(`${dir}: no such bundle folder or file`);
  if (!st.isDirectory()) throw new UserError(`${dir} is a file, not a bundle folder: give trace files with --host/--guest`);
  const metaPath = join(dir, 'meta.json');
  let text: string;
  try {
    text = await readFile(metaPath, 'utf8');
  } catch {
    throw new UserError(`${dir} is not a kvmtrace bundle: ${metaPath} is missing (see docs/bundle.md)`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${metaPath}: not valid JSON (${clipInput((e as Error).message, 200)})`);
  }
  const meta = validateMeta(raw, metaPath);
  const specs: SourceSpec[] = meta.traces.map((t) => ({
    role: meta.role,
    machine: meta.name,
    file: join(dir, t.file),
    format: t.format,
    clock: meta.traceClock,
    clockFrom: 'metadata',
    meta,
  }));
  return { dir, metaFile: metaPath, meta, specs };
}

/** Parses a clock flag value; a UserError for unknown names. */
export function clockFlag(name: string | undefined, flag: string): TraceClock | undefined {
  if (name === undefined) return undefined;
  const c = parseClock(name);
  if (!c) throw new UserError(`${flag} ${name}: not a trace clock (x86-tsc, counter, local, global, mono, boot, …)`);
  return c;
}
