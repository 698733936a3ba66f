/**
 * Standard output that fails, for every command in one place. A reader that went away (EPIPE:
 * `kvmtrace … | head`) ends the run quietly with status 0, as for any Unix filter; any other
 * failure (a full disk, `> /dev/full`, EIO) is one sentence on stderr and status 2. Both go through
 * the early-exit cleanups, so no temporary output is left behind.
 */
import { writeSync } from 'node:fs';
import { errnoText } from '../model/errors.js';
import { exitNow } from './exit.js';

/** Ends the run for a failed write to standard output. */
export function stdoutFailed(e: unknown): never {
  if ((e as NodeJS.ErrnoException).code === 'EPIPE') exitNow(0);
  process.stderr.write(`kvmtrace: cannot write to standard output: ${errnoText(e)}\n`);
  exitNow(2);
}

/**
 * Sends process.stdout's write errors to {@link stdoutFailed}. A stderr that fails (its reader
 * gone, as when a parent stops reading after a timeout) is ignored: there is nowhere left to say
 * anything, and the run must still end as it would (a capture still removes its ftrace instance).
 */
export function watchStdout(): void {
  process.stdout.on('error', stdoutFailed);
  process.stderr.on('error', () => undefined);
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Writes `buf[0, len)` (default: all of it) to fd 1 with blocking writes (a full pipe makes the writer wait: that is the
 * back-pressure), waiting out EAGAIN on a non-blocking descriptor; failures end the run as above.
 */
export function writeStdoutSync(buf: Buffer, len = buf.length): void {
  let off = 0;
  while (off < len) {
    try {
      off += writeSync(1, buf, off, len - off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') Atomics.wait(pause, 0, 0, 1);
      else stdoutFailed(e);
    }
  }
}
