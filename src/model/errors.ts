import { escapeControl } from './quote.js';

/**
 * Errors a user can act on. The CLI prints `message` alone (no stack) and exits non-zero;
 * anything else that escapes is a bug in kvmtrace and is reported as such.
 */
export class UserError extends Error {
  override readonly name = 'UserError';
  /**
   * @param message one sentence naming the file (and line or byte offset) and what was expected;
   * control characters (from input bytes or file names) are escaped, so it stays one line of text
   */
  constructor(message: string) {
    super(escapeControl(message));
  }
}

/** True for errors whose message is meant for the user as it is. */
export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}

/**
 * What a system call's error says, without Node's decoration: `no space left on device` for
 * "ENOSPC: no space left on device, write '/x/.y.123.tmp'" (the path a call used may be a
 * temporary name the user never gave; the caller names the file).
 */
export function errnoText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (typeof err?.code !== 'string' || typeof err.message !== 'string') return String((e as Error)?.message ?? e);
  const m = /^[A-Z0-9_]+: (.*?)(?:, [a-z_]+(?: '.*')?)?$/s.exec(err.message);
  return m ? m[1] : err.message;
}
