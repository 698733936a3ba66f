/**
 * Input text in messages: a byte of the input must never act on the user's terminal (a NUL, an
 * escape sequence, a carriage return) nor turn one sentence into many lines, and a damaged field
 * may be megabytes long. The one rule for both: control characters are written as escapes, and a
 * quoted piece of input is cut to a few dozen characters.
 */

/** `s` with its control characters (C0, DEL, C1) written as `\n`, `\r`, `\t` or `\xNN`. */
export function escapeControl(s: string): string {
  return s.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    return '\\x' + c.charCodeAt(0).toString(16).padStart(2, '0');
  });
}

/** A piece of input for a message, escaped and cut to `max` characters (saying how long it was). */
export function clipInput(s: string, max = 80): string {
  if (s.length <= max) return escapeControl(s);
  return `${escapeControl(s.slice(0, max))}… (${s.length} characters)`;
}

/** A piece of input in double quotes for a message (see {@link clipInput}). */
export function quoteInput(s: string, max = 80): string {
  return `"${clipInput(s, max)}"`;
}
