/**
 * A text file as chunks of whole lines: each chunk is a buffer of its own (the caller may keep or
 * move it) that ends at a line end, except the last one when the file does not end with a newline.
 * Reads are 256 KiB; the next read runs on libuv's thread pool while the caller parses a chunk.
 *
 * Work and memory stay linear in the file whatever its lines: only the bytes of each new read are
 * searched for a line end (the bytes held have none), and a line longer than
 * {@link MAX_LINE_BYTES} is never assembled: once a read without a line end takes the unfinished
 * line past it, the line is only measured up to its end, and the next chunk says how long it was
 * (`longLine`), for the parser to report. So any file, one 64 MB line included, costs two read
 * buffers and at most 1 MiB of held line.
 */
import { read } from 'node:fs';
import { inputError } from './input.js';
import { MAX_LINE_BYTES } from './line-parser.js';

/** Bytes read from a file at a time. */
const CHUNK = 1 << 18;

/**
 * A chunk of whole lines: `buf[0, end)`; `last` when it is the end of the file (its last line may
 * lack a newline). `longLine`: the length of a line before these, too long to read (not in `buf`).
 */
export interface LineChunk {
  buf: Buffer;
  end: number;
  last: boolean;
  longLine?: number;
}

/** Reads `path` (open as `fd`) as chunks of whole lines; see the module comment. */
export async function* lineChunks(fd: number, path: string): AsyncGenerator<LineChunk> {
  // Two read buffers: one being filled by the thread pool, one being looked at. Reads name
  // their file position, so nothing depends on the descriptor's own.
  const raw = [Buffer.allocUnsafeSlow(CHUNK), Buffer.allocUnsafeSlow(CHUNK)];
  let pos = 0;
  const readInto = (b: Buffer, at: number): Promise<number> =>
    new Promise((res, rej) => {
      read(fd, b, 0, b.length, at, (e, n) => (e ? rej(inputError(path, e, at)) : res(n)));
    });
  let ahead: Promise<number> | undefined = readInto(raw[0], 0);
  let which = 0;
  // The unfinished line: held in `held`, or, past MAX_LINE_BYTES, only measured (`dropped`).
  let held: Buffer[] = [];
  let heldBytes = 0;
  let dropped = -1;
  /** One buffer: the held start of the line, then `got[from, n)`. */
  const assemble = (got: Buffer, from: number, n: number): Buffer => {
    const out = Buffer.allocUnsafeSlow(heldBytes + n - from);
    let at = 0;
    for (const p of held) at += p.copy(out, at);
    got.copy(out, at, from, n);
    held = [];
    heldBytes = 0;
    return out;
  };
  try {
    for (;;) {
      const n = await ahead!;
      ahead = undefined;
      pos += n;
      const gotAt = which;
      const got = raw[gotAt];
      which ^= 1;
      if (n > 0) ahead = readInto(raw[which], pos);
      if (n === 0) {
        if (dropped >= 0) {
          yield { buf: Buffer.alloc(0), end: 0, last: true, longLine: dropped };
          return;
        }
        const buf = assemble(got, 0, 0);
        yield { buf, end: buf.length, last: true };
        return;
      }
      const nl = got.lastIndexOf(10, n - 1);
      if (nl < 0) {
        // The whole read continues a line.
        if (dropped >= 0) dropped += n;
        else if (heldBytes + n > MAX_LINE_BYTES) {
          dropped = heldBytes + n;
          held = [];
          heldBytes = 0;
        } else {
          held.push(got.subarray(0, n));
          heldBytes += n;
          raw[gotAt] = Buffer.allocUnsafeSlow(CHUNK);
        }
        continue;
      }
      // A line too long to read ends at the first line end of this read; the chunk starts after it.
      let longLine: number | undefined;
      let from = 0;
      if (dropped >= 0) {
        from = got.indexOf(10) + 1;
        longLine = dropped + from - 1;
        dropped = -1;
      }
      const buf = assemble(got, from, n);
      const cut = buf.length - (n - nl - 1);
      // The bytes after the last line end start the next line; copied, as the chunk is handed on.
      if (cut < buf.length) {
        held = [Buffer.from(buf.subarray(cut))];
        heldBytes = buf.length - cut;
      }
      yield longLine === undefined ? { buf, end: cut, last: false } : { buf, end: cut, last: false, longLine };
    }
  } finally {
    // A read still under way (the reader was left early) finishes before the caller closes the file.
    await ahead?.catch(() => undefined);
  }
}
