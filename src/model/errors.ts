/**
 * Errors a user can act on. The CLI prints `message` alone (no stack) and exits non-zero;
 * anything else that escapes is a bug in kvmtrace and is reported as such.
 */
export class UserError extends Error {
  override readonly name = 'UserError';
  /** @param message one sentence naming the file (and line or byte offset) and what was expected */
  constructor(message: string) {
    super(message);
  }
}

/** True for errors whose message is meant for the user as it is. */
export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}

/**
 * Text taken from an input, made fit for a one-line message: control characters (NUL, newline,
 * escape, DEL …) written as `\u0000`, `\u000a`, so a damaged file can neither break the sentence
 * over lines nor send bytes to the terminal.
 */
export function printable(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
