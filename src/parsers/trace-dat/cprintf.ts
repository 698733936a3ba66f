/**
 * C printf conversions for one directive (`%-08llx`, `%5.3s`, …), as glibc prints them. Used to
 * render an event's `print fmt` exactly as trace-cmd (libtraceevent → vsnprintf) does.
 */

/** A parsed printf directive. */
export interface Directive {
  left: boolean;
  plus: boolean;
  space: boolean;
  alt: boolean;
  zero: boolean;
  /** Field width; -1 = none; -2 = from the `*` argument. */
  width: number;
  /** Precision; -1 = none; -2 = from the `*` argument. */
  prec: number;
  /** The conversion character (d i u x X o s p c …). */
  conv: string;
}

/** Parses one directive starting at `%` (the text is the whole directive). */
export function parseDirective(text: string): Directive {
  const d: Directive = { left: false, plus: false, space: false, alt: false, zero: false, width: -1, prec: -1, conv: '' };
  let i = 1;
  for (; i < text.length; i++) {
    const ch = text[i];
    if (ch === '-') d.left = true;
    else if (ch === '+') d.plus = true;
    else if (ch === ' ') d.space = true;
    else if (ch === '#') d.alt = true;
    else if (ch === '0') d.zero = true;
    else break;
  }
  if (text[i] === '*') {
    d.width = -2;
    i++;
  } else {
    let w = '';
    while (i < text.length && text[i] >= '0' && text[i] <= '9') w += text[i++];
    if (w) d.width = Number(w);
  }
  if (text[i] === '.') {
    i++;
    if (text[i] === '*') {
      d.prec = -2;
      i++;
    } else {
      let p = '';
      while (i < text.length && text[i] >= '0' && text[i] <= '9') p += text[i++];
      d.prec = p ? Number(p) : 0;
    }
  }
  d.conv = text[text.length - 1];
  return d;
}

function pad(d: Directive, body: string, sign: string, width: number, zeroOk: boolean): string {
  const len = sign.length + body.length;
  if (width <= len) return sign + body;
  const n = width - len;
  if (d.left) return sign + body + ' '.repeat(n);
  if (d.zero && zeroOk) return sign + '0'.repeat(n) + body;
  return ' '.repeat(n) + sign + body;
}

/**
 * Formats an integer conversion. `v` is already cast to the C type: a signed value for d/i,
 * a non-negative one for u/x/X/o.
 */
export function formatInt(d: Directive, v: bigint | number, starArg = -1): string {
  const width = d.width === -2 ? starArg : d.width;
  const prec = d.prec === -2 ? starArg : d.prec;
  let left = d.left;
  let w = width;
  if (w < -1) w = -1;
  if (d.width === -2 && starArg < 0) {
    left = true;
    w = -starArg;
  }
  const neg = typeof v === 'bigint' ? v < 0n : v < 0;
  const mag = neg ? (typeof v === 'bigint' ? -v : -v) : v;
  let body: string;
  let prefix = '';
  switch (d.conv) {
    case 'x':
      body = mag.toString(16);
      if (d.alt && mag !== 0 && mag !== 0n) prefix = '0x';
      break;
    case 'X':
      body = mag.toString(16).toUpperCase();
      if (d.alt && mag !== 0 && mag !== 0n) prefix = '0X';
      break;
    case 'o':
      body = mag.toString(8);
      if (d.alt && body[0] !== '0') body = '0' + body;
      break;
    default:
      body = mag.toString(10);
  }
  if (prec >= 0) {
    if (prec === 0 && (mag === 0 || mag === 0n)) body = '';
    else if (body.length < prec) body = '0'.repeat(prec - body.length) + body;
  }
  let sign = '';
  if (d.conv === 'd' || d.conv === 'i') sign = neg ? '-' : d.plus ? '+' : d.space ? ' ' : '';
  const dd = left !== d.left ? { ...d, left } : d;
  return pad(dd, body, sign + prefix, w, prec < 0);
}

/** Formats a `%s` conversion (width and precision as in C). */
export function formatStr(d: Directive, s: string, starArg = -1): string {
  let width = d.width === -2 ? starArg : d.width;
  const prec = d.prec === -2 ? starArg : d.prec;
  let left = d.left;
  if (d.width === -2 && starArg < 0) {
    left = true;
    width = -starArg;
  }
  let body = s;
  if (prec >= 0 && body.length > prec) body = body.slice(0, prec);
  if (width <= body.length) return body;
  return left ? body + ' '.repeat(width - body.length) : ' '.repeat(width - body.length) + body;
}
