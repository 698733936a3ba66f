/**
 * Where a host event is in the host's files, packed into one number so that the index can keep it
 * beside each segment (kvm/segments.ts) and each causal pair (skew.ts): `line × files + file`, with
 * `line` the event's line column (a 1-based line for text, a byte offset for trace.dat). Exact while
 * below 2^53; -1 when not known (or too large to pack exactly).
 */
import { eventPlace, placeText } from '../model/diagnostics.js';
import type { TraceFormat } from '../model/bundle.js';

/** One host file as the index names it. */
export interface HostFile {
  file: string;
  format: TraceFormat;
}

/** Packs the line column `line` of host file `src` (of `files` host files). */
export function packWhere(line: number, src: number, files: number): number {
  const w = line * files + src;
  return Number.isSafeInteger(w) && line >= 0 ? w : -1;
}

/** The place `where` names, or undefined when it is not known. */
export function hostPlace(files: readonly HostFile[], where: number): { file: string; line?: number; byteOffset?: number } | undefined {
  if (where < 0 || files.length === 0) return undefined;
  const src = where % files.length;
  const f = files[src];
  return eventPlace(f.file, f.format, (where - src) / files.length);
}

/** `file:line` or `file at byte N` of `where`, or `?` when it is not known. */
export function hostPlaceText(files: readonly HostFile[], where: number): string {
  const p = hostPlace(files, where);
  return p ? placeText(p) : '?';
}
