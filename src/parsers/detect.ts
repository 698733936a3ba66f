/**
 * Format detection from content alone (never the file name): the first bytes of a file decide.
 */
import { closeSync } from 'node:fs';
import { UserError } from '../model/errors.js';
import type { TraceFormat } from '../model/bundle.js';
import { detectFtraceText } from './ftrace-text.js';
import { openInput, readHeadOf } from './input.js';

/** trace-cmd's trace.dat magic: 0x17 0x08 0x44 "tracing". */
const TRACE_DAT_MAGIC = Buffer.from([0x17, 0x08, 0x44, ...Buffer.from('tracing')]);

/**
 * Reads up to `n` bytes from the start of a file, through the input rule every command shares
 * ({@link openInput}); a UserError when it cannot be read.
 */
export async function readHead(path: string, n = 16384): Promise<Buffer> {
  const fd = openInput(path, 'give a bundle folder without --host/--guest');
  try {
    return readHeadOf(fd, path, n);
  } finally {
    closeSync(fd);
  }
}

/** Extra detectors registered by parsers that live elsewhere (trace.dat, stap). */
const detectors: { format: TraceFormat; detect: (head: Buffer) => boolean }[] = [
  { format: 'trace-dat', detect: (h) => h.subarray(0, TRACE_DAT_MAGIC.length).equals(TRACE_DAT_MAGIC) },
];

/** Adds a detector (used by parsers for formats with their own module). Checked before ftrace text. */
export function registerDetector(format: TraceFormat, detect: (head: Buffer) => boolean): void {
  detectors.push({ format, detect });
}

/** Decides a file's format from its first bytes; a UserError naming the file when none fits. */
export async function detectFormat(path: string): Promise<TraceFormat> {
  const head = await readHead(path);
  if (head.length === 0) throw new UserError(`${path} is empty: expected a trace (ftrace text, trace.dat or systemtap output)`);
  for (const d of detectors) if (d.detect(head)) return d.format;
  if (detectFtraceText(head.toString('utf8'))) return 'ftrace-text';
  throw new UserError(
    `${path}: unknown format — expected ftrace text (tracefs trace/trace_pipe or trace-cmd report), a trace-cmd trace.dat, or kvmtrace systemtap output`,
  );
}
