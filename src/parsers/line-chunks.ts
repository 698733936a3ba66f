/**
 * A text file as chunks of whole lines: each chunk is a buffer of its own (the caller may keep or
 * move it) that ends at a line end, except the last one when the file does not end with a newline.
 * Reads are 256 KiB; the next read runs on libuv's thread pool while the caller parses a chunk.
 *
 * Work and memory stay linear in the file whatever its lines: only the bytes of each new read are
 * searched for a line end (the bytes held have none), and a line longer than {@link HOLD} is not
 * held piece by piece and then copied: its start is remembered, and once its end is seen it is
 * read again from the file in one piece, straight into the buffer that holds it. So a 64 MB line
 * costs 64 MB plus two read buffers, and no copy in JavaScript. (Inputs are files that can be
 * read at any position: see `input.ts`.)
 */
import { read } from 'node:fs';
import { inputError } from './input.js';

/** Bytes read from a file at a time. */
const CHUNK = 1 << 18;
/** The longest unfinished line kept in memory while waiting for its end; longer ones are read again. */
const HOLD = 1 << 20;

/** A chunk of whole lines: `buf[0, end)`; `last` when it is the end of the file (its last line may lack a newline). */
export interface LineChunk {
  buf: Buffer;
  end: number;
  last: boolean;
}

/** Reads `path` (open as `fd`) as chunks of whole lines; see the module comment. */
export async function* lineChunks(fd: number, path: string): AsyncGenerator<LineChunk> {
  // Two read buffers: one being filled by the thread pool, one being looked at. Reads name
  // their file position, so nothing depends on the descriptor's own.
  const raw = [Buffer.allocUnsafeSlow(CHUNK), Buffer.allocUnsafeSlow(CHUNK)];
  let pos = 0;
  const readInto = (b: Buffer, at: number, from = 0, len = b.length - from): Promise<number> =>
    new Promise((res, rej) => {
      read(fd, b, from, len, at, (e, n) => (e ? rej(inputError(path, e, at)) : res(n)));
    });
  let ahead: Promise<number> | undefined = readInto(raw[0], 0);
  let which = 0;
  // The unfinished line: from file offset `lineAt`, held in `held` unless longer than HOLD.
  let lineAt = 0;
  let held: Buffer[] = [];
  let heldBytes = 0;
  let tooLong = false;
  /** One buffer: the unfinished line (held, or read again from the file) and then `got[0, n)`. */
  const assemble = async (readAt: number, got: Buffer, n: number): Promise<Buffer> => {
    const before = readAt - lineAt;
    const out = Buffer.allocUnsafeSlow(before + n);
    if (tooLong) {
      for (let at = 0; at < before; ) {
        const k = await readInto(out, lineAt + at, at, before - at);
        if (k === 0) throw inputError(path, { message: 'the file got shorter while it was read' }, lineAt + at);
        at += k;
      }
    } else {
      let at = 0;
      for (const p of held) at += p.copy(out, at);
    }
    got.copy(out, before, 0, n);
    held = [];
    heldBytes = 0;
    tooLong = false;
    return out;
  };
  try {
    for (;;) {
      const n = await ahead!;
      ahead = undefined;
      const readAt = pos;
      pos += n;
      const gotAt = which;
      const got = raw[gotAt];
      which ^= 1;
      if (n > 0) ahead = readInto(raw[which], pos);
      if (n === 0) {
        const buf = await assemble(readAt, got, 0);
        yield { buf, end: buf.length, last: true };
        return;
      }
      const nl = got.lastIndexOf(10, n - 1);
      if (nl < 0) {
        // The whole read continues a line.
        if (!tooLong && heldBytes + n <= HOLD) {
          held.push(got.subarray(0, n));
          heldBytes += n;
          raw[gotAt] = Buffer.allocUnsafeSlow(CHUNK);
        } else {
          held = [];
          heldBytes = 0;
          tooLong = true;
        }
        continue;
      }
      const buf = await assemble(readAt, got, n);
      const cut = buf.length - n + nl + 1;
      // The bytes after the last line end start the next line; copied, as the chunk is handed on.
      if (cut < buf.length) {
        held = [Buffer.from(buf.subarray(cut))];
        heldBytes = buf.length - cut;
      }
      lineAt = readAt + nl + 1;
      yield { buf, end: cut, last: false };
    }
  } finally {
    // A read still under way (the reader was left early) finishes before the caller closes the file.
    await ahead?.catch(() => undefined);
  }
}
