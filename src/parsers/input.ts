/**
 * Opening an input file: the one rule every command follows for what it can read, and the one
 * sentence for each way opening or reading fails. kvmtrace reads its inputs at chosen positions
 * and more than once (format detection, then the parse; trace.dat sections anywhere in the file),
 * so an input must be a file (or a device) that can be read at any position: a folder, a pipe or a
 * socket is refused before it is opened — opening a FIFO that has no writer would block forever.
 */
import { openSync, readSync, statSync, type Stats } from 'node:fs';
import { UserError } from '../model/errors.js';

/** What kvmtrace says about an input that is a pipe (a FIFO, `<(…)`, a socket). */
function pipeSentence(path: string): string {
  return `${path} is a pipe: kvmtrace reads each input more than once and at chosen positions (to detect its format, to plan the merge, to find trace.dat sections); write it to a file first`;
}

/**
 * The sentence for an error of the system while opening or reading `path`: the errno in words,
 * with its name (`EIO`) so that it can be looked up. `at` names the byte offset of a failed read.
 */
export function inputError(path: string, e: unknown, at?: number, folderHint?: string): UserError {
  const err = e as NodeJS.ErrnoException;
  const where = at === undefined ? '' : ` at byte ${at}`;
  switch (err.code) {
    case 'ENOENT':
      return new UserError(`cannot read ${path}: no such file`);
    case 'EISDIR':
      return new UserError(`${path} is a folder, not a trace file${folderHint ? ` (${folderHint})` : ''}`);
    case 'ESPIPE':
      return new UserError(pipeSentence(path));
    case 'EACCES':
    case 'EPERM':
      return new UserError(`cannot read ${path}: permission denied (${err.code})`);
    case 'EINVAL':
      return new UserError(`cannot read ${path}${where}: the system refuses to read it (EINVAL, invalid argument): not a file that holds a trace`);
    case 'EIO':
      return new UserError(`cannot read ${path}${where}: the read failed with an input/output error (EIO)`);
    case undefined:
      return new UserError(`cannot read ${path}${where}: ${err.message}`);
    default: {
      // Node's message is "CODE: description, syscall 'path'": keep the description.
      const what = /^[A-Z0-9]+: ([^,]+)/.exec(err.message)?.[1] ?? err.message;
      return new UserError(`cannot read ${path}${where}: ${what} (${err.code})`);
    }
  }
}

/**
 * Checks that `path` can be an input, without opening it: it exists, and it is not a folder, a
 * pipe or a socket. Returns its stat. A UserError (one sentence) otherwise.
 */
export function checkInput(path: string, folderHint?: string): Stats {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    throw inputError(path, e, undefined, folderHint);
  }
  if (st.isDirectory()) throw inputError(path, { code: 'EISDIR' }, undefined, folderHint);
  if (st.isFIFO() || st.isSocket()) throw new UserError(pipeSentence(path));
  return st;
}

/** Opens an input for reading after {@link checkInput}; returns the descriptor. */
export function openInput(path: string, folderHint?: string): number {
  checkInput(path, folderHint);
  try {
    return openSync(path, 'r');
  } catch (e) {
    throw inputError(path, e, undefined, folderHint);
  }
}

/**
 * Reads up to `n` bytes at the start of an open input, whatever size the system gives for it (a
 * `/proc` file says 0 and still has bytes, or fails the read: the failure is what is reported).
 */
export function readHeadOf(fd: number, path: string, n: number): Buffer {
  const buf = Buffer.alloc(n);
  let got = 0;
  try {
    while (got < n) {
      const k = readSync(fd, buf, got, n - got, got);
      if (k === 0) break;
      got += k;
    }
  } catch (e) {
    throw inputError(path, e, got);
  }
  return buf.subarray(0, got);
}
