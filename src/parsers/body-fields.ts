/**
 * An event's fields read back from its printed text, for exporters that want fields by name when
 * no reader knows the event (the Perfetto output's generic ftrace events). The kernel's print fmts
 * come in a few shapes, each read here:
 *  - `key=value …` (most tracepoints; a value runs up to the next ` key=`, so comms and irq names
 *    with spaces stay whole; `[key=value]` and a trailing ` [unit]` are unwrapped);
 *  - `key: value, key: value` (syscall enter events), or with spaces only (x86_fpu);
 *  - `key value key value` (kvm_exit `reason HLT rip 0x…`, kvm_pio `at 0xe9 size 1`, fib/neigh);
 *  - anything else is one `text` field (`Start context switch`).
 * Words that belong to no key (kvm_pio's `pio_write`, a `(caller+0x18)` prefix) are kept in a
 * `text` field. This reads printed text, so it is a best effort: trace.dat events carry their
 * binary fields, and decoding those by their `format` is what should replace it for that input.
 */

/** One field of a printed body, its value as printed. */
export interface BodyField {
  name: string;
  text: string;
}

/** A field value typed for output: a signed or unsigned integer, or text. */
export type TypedValue = { kind: 'int'; value: number | bigint } | { kind: 'uint'; value: number | bigint } | { kind: 'str'; value: string };

/** At most this many fields per event (Perfetto's generic descriptors take field numbers 1–31). */
export const MAX_BODY_FIELDS = 31;
const MAX_SPANS = 64;

/**
 * Where the fields of one body lie: key and value ranges (half-open, indices into the body), and
 * the range of the text that belongs to no key (`lead`, empty when start = end). Reused from
 * event to event, so scanning allocates nothing.
 */
export class FieldSpans {
  n = 0;
  leadStart = 0;
  leadEnd = 0;
  readonly ks = new Int32Array(MAX_SPANS);
  readonly ke = new Int32Array(MAX_SPANS);
  readonly vs = new Int32Array(MAX_SPANS);
  readonly ve = new Int32Array(MAX_SPANS);
  /** More keys than MAX_SPANS: the last value runs to the end. */
  overflow = false;
}

const isSpace = (c: number): boolean => c === 32 || c === 9 || c === 10 || c === 13;
const isAlpha = (c: number): boolean => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95;
const isWord = (c: number): boolean => isAlpha(c) || (c >= 48 && c <= 57);
const isLower = (c: number): boolean => (c >= 97 && c <= 122) || c === 95;
const isLowerWord = (c: number): boolean => isLower(c) || (c >= 48 && c <= 57);

/** Scans the body s[start, end) (UTF-8 or ASCII bytes) into `sp` (see the module header for the shapes). */
export function scanFields(s: Uint8Array, start: number, end: number, sp: FieldSpans): void {
  let b = start;
  let e = end;
  while (b < e && isSpace(s[b])) b++;
  while (e > b && isSpace(s[e - 1])) e--;
  sp.n = 0;
  sp.overflow = false;
  sp.leadStart = sp.leadEnd = b;
  if (b === e) return;
  if (keyEquals(s, b, e, sp) || colonPairs(s, b, e, sp) || wordPairs(s, b, e, sp)) return;
  sp.n = 0;
  sp.leadStart = b;
  sp.leadEnd = e;
}

/** Records a key whose separator (or start) is at `sep`; the previous value ends there. */
function pushKey(sp: FieldSpans, ks: number, ke: number, vs: number, sep: number): void {
  if (sp.n > 0) sp.ve[sp.n - 1] = sep;
  if (sp.n === MAX_SPANS) {
    sp.overflow = true;
    return;
  }
  sp.ks[sp.n] = ks;
  sp.ke[sp.n] = ke;
  sp.vs[sp.n] = vs;
  sp.n++;
}

/** Trims each value; drops a trailing ` ==>` or `,`, and the `]` of a `[key=value]`. */
function finishValues(s: Uint8Array, sp: FieldSpans, end: number): void {
  if (sp.n > 0) sp.ve[sp.n - 1] = end;
  for (let i = 0; i < sp.n; i++) {
    let a = sp.vs[i];
    let z = sp.ve[i];
    while (a < z && isSpace(s[a])) a++;
    while (z > a && isSpace(s[z - 1])) z--;
    if (z - a >= 4 && s[z - 4] === 32 && s[z - 3] === 61 && s[z - 2] === 61 && s[z - 1] === 62) {
      z -= 4;
      while (z > a && isSpace(s[z - 1])) z--;
    } else if (z > a && s[z - 1] === 44) z--;
    if (sp.ks[i] > 0 && s[sp.ks[i] - 1] === 91 && z > a && s[z - 1] === 93) z--;
    sp.vs[i] = a;
    sp.ve[i] = z;
  }
}

/** `key=value …`: a key is [A-Za-z_][\w.]* right before `=`, at the start or after a space, `[`, `(` or `,`. */
function keyEquals(s: Uint8Array, b: number, e: number, sp: FieldSpans): boolean {
  for (let i = b; i < e; i++) {
    if (s[i] !== 61) continue;
    let k = i;
    while (k > b && (isWord(s[k - 1]) || s[k - 1] === 46)) k--;
    if (k === i || !isAlpha(s[k])) continue;
    const before = k > b ? s[k - 1] : -1;
    if (k > b && !(isSpace(before) || before === 91 || before === 40 || before === 44)) continue;
    if (sp.n === 0) sp.leadEnd = k > b ? k - 1 : b;
    pushKey(sp, k, i, i + 1, k > b ? k - 1 : b);
  }
  if (sp.n === 0) return false;
  // The lead: the text before the first key's separator, trimmed.
  let z = sp.leadEnd;
  while (z > b && isSpace(s[z - 1])) z--;
  sp.leadStart = b;
  sp.leadEnd = z;
  finishValues(s, sp, e);
  return true;
}

/** `key: value, key: value` or `key: value key: value`: the first key at the start. */
function colonPairs(s: Uint8Array, b: number, e: number, sp: FieldSpans): boolean {
  for (let i = b; i + 1 < e; i++) {
    if (s[i] !== 58 || s[i + 1] !== 32) continue;
    let k = i;
    while (k > b && (isWord(s[k - 1]) || s[k - 1] === 47)) k--;
    if (k === i || !isAlpha(s[k])) continue;
    if (k > b && s[k - 1] !== 32) continue;
    if (sp.n === 0 && k !== b) return (sp.n = 0), false;
    // The value ends before ` ` or `, `.
    const sep = k === b ? b : k - 2 >= b && s[k - 2] === 44 ? k - 2 : k - 1;
    pushKey(sp, k, i, i + 2, sep);
  }
  if (sp.n === 0) return false;
  sp.leadStart = sp.leadEnd = b;
  finishValues(s, sp, e);
  return true;
}

/** True when s[a, z) is a lowercase word [a-z_][a-z0-9_]*. */
function lowerWord(s: Uint8Array, a: number, z: number): boolean {
  if (!isLower(s[a])) return false;
  for (let i = a + 1; i < z; i++) if (!isLowerWord(s[i])) return false;
  return true;
}

/** End of the token at s[from, …). */
function tokenEnd(s: Uint8Array, from: number, e: number): number {
  while (from < e && !isSpace(s[from])) from++;
  return from;
}

/** End of the spaces at s[from, …). */
function spaceEnd(s: Uint8Array, from: number, e: number): number {
  while (from < e && isSpace(s[from])) from++;
  return from;
}

/**
 * `key value key value`: a lowercase word followed by a token that is not one is a key. Words
 * before the first key are the lead; a token after a value that starts no key extends that value.
 */
function wordPairs(s: Uint8Array, b: number, e: number, sp: FieldSpans): boolean {
  let i = b;
  let looseEnd = -1;
  while (i < e) {
    const z = tokenEnd(s, i, e);
    const n = spaceEnd(s, z, e);
    const nz = n < e ? tokenEnd(s, n, e) : n;
    if (lowerWord(s, i, z) && n < e && !lowerWord(s, n, nz) && sp.n < MAX_SPANS) {
      sp.ks[sp.n] = i;
      sp.ke[sp.n] = z;
      sp.vs[sp.n] = n;
      sp.ve[sp.n] = nz;
      sp.n++;
      i = spaceEnd(s, nz, e);
      continue;
    }
    if (sp.n > 0) sp.ve[sp.n - 1] = z;
    else looseEnd = z;
    i = n;
  }
  if (sp.n === 0) return false;
  sp.leadStart = b;
  sp.leadEnd = looseEnd < 0 ? b : looseEnd;
  return true;
}

const isDigit = (c: number): boolean => c >= 48 && c <= 57;

const scratch = new FieldSpans();

/** The fields of a printed event body (see the module header for the shapes read). */
export function bodyFields(body: string): BodyField[] {
  const b = Buffer.from(body, 'utf8');
  scanFields(b, 0, b.length, scratch);
  return fieldsOf(b, scratch);
}

/** s[a, z) as text. */
const text = (s: Uint8Array, a: number, z: number): string => Buffer.from(s.buffer, s.byteOffset + a, z - a).toString('utf8');

/** The fields of a scanned body as strings: the lead as `text`, then each key (repeated names renamed, at most MAX_BODY_FIELDS). */
export function fieldsOf(s: Uint8Array, sp: FieldSpans): BodyField[] {
  const out: BodyField[] = [];
  if (sp.leadEnd > sp.leadStart) out.push({ name: 'text', text: text(s, sp.leadStart, sp.leadEnd) });
  for (let i = 0; i < sp.n; i++) out.push({ name: text(s, sp.ks[i], sp.ke[i]), text: text(s, sp.vs[i], sp.ve[i]) });
  return unique(out);
}

/** Repeated names get a suffix (`_2`, …); past MAX_BODY_FIELDS the rest joins one `rest` field. */
function unique(fields: BodyField[]): BodyField[] {
  const seen = new Map<string, number>();
  const out: BodyField[] = [];
  for (const f of fields) {
    const n = (seen.get(f.name) ?? 0) + 1;
    seen.set(f.name, n);
    out.push(n === 1 ? f : { name: `${f.name}_${n}`, text: f.text });
  }
  if (out.length <= MAX_BODY_FIELDS) return out;
  const rest = out.splice(MAX_BODY_FIELDS - 1);
  out.push({ name: 'rest', text: rest.map((f) => `${f.name}=${f.text}`).join(' ') });
  return out;
}

const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;
const U64_MAX = (1n << 64n) - 1n;
const isHex = (c: number): boolean => isDigit(c) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);

/** End of the number in s[a, z) when it is `-?\d{1,20}`, optionally followed by ` [unit]`; else -1. */
export function decimalEnd(s: Uint8Array, a: number, z: number): number {
  let i = s[a] === 45 ? a + 1 : a;
  const d0 = i;
  while (i < z && isDigit(s[i])) i++;
  if (i === d0 || i - d0 > 20) return -1;
  if (i === z) return i;
  // ` [ns]`: a unit after the number.
  return unitAt(s, i, z) ? i : -1;
}

/** A value read by {@link readSpan}: its kind, and its value when that is a safe integer read in the same pass (else NaN). */
export class SpanRead {
  kind: TypedValue['kind'] = 'str';
  num = NaN;
}

/** Reads a ` [unit]` after a number at s[i, z): true when s[i, z) is one. */
function unitAt(s: Uint8Array, i: number, z: number): boolean {
  if (z - i < 4 || s[i] !== 32 || s[i + 1] !== 91 || s[z - 1] !== 93) return false;
  for (let k = i + 2; k < z - 1; k++) if (!isWord(s[k])) return false;
  return true;
}

/**
 * Types the printed value s[a, z) in one pass (see {@link spanKind}) into `out`; `out.num` is its
 * value when it is a decimal of at most 15 digits or `0x` and at most 13 hex digits, else NaN.
 */
export function readSpan(s: Uint8Array, a: number, z: number, out: SpanRead): SpanRead {
  out.num = NaN;
  out.kind = 'str';
  if (a >= z) return out;
  if (s[a] === 48 && s[a + 1] === 120 && z - a >= 3) {
    // `0x` and 1–16 hex digits (a decimal never starts so: its `0` would be followed by `x`).
    if (z - a > 18) return out;
    let v = 0;
    for (let i = a + 2; i < z; i++) {
      const c = s[i];
      if (!isHex(c)) return out;
      v = v * 16 + (c <= 57 ? c - 48 : (c | 32) - 87);
    }
    out.kind = 'uint';
    if (z - a - 2 <= 13) out.num = v;
    return out;
  }
  // `-?\d{1,20}`, optionally followed by ` [unit]`.
  const neg = s[a] === 45;
  let i = neg ? a + 1 : a;
  const d0 = i;
  let v = 0;
  for (; i < z; i++) {
    const c = s[i] - 48;
    if (c < 0 || c > 9) break;
    v = v * 10 + c;
  }
  const digits = i - d0;
  if (digits === 0 || digits > 20 || (i < z && !unitAt(s, i, z))) return out;
  if (digits <= 15) {
    out.kind = 'int';
    out.num = neg ? -v : v;
    return out;
  }
  const b = BigInt(text(s, a, i));
  out.kind = b >= I64_MIN && b <= I64_MAX ? 'int' : !neg && b <= U64_MAX ? 'uint' : 'str';
  return out;
}

const spanScratch = new SpanRead();

/**
 * The kind of the printed value s[a, z): a decimal is a signed integer (a %llu beyond int64 is
 * unsigned), `0x…` is unsigned, anything else (or out of range) is text.
 */
export function spanKind(s: Uint8Array, a: number, z: number): TypedValue['kind'] {
  return readSpan(s, a, z, spanScratch).kind;
}

/** The value of s[a, z) as {@link spanKind} types it (a number when safe, else a bigint). */
export function spanValue(s: Uint8Array, a: number, z: number): TypedValue {
  const { kind, num } = readSpan(s, a, z, spanScratch);
  if (kind === 'str') return { kind, value: text(s, a, z) };
  if (!Number.isNaN(num)) return { kind, value: num };
  if (s[a + 1] === 120 && s[a] === 48) return { kind, value: BigInt(text(s, a, z)) };
  return { kind, value: BigInt(text(s, a, decimalEnd(s, a, z))) };
}

/** -?digits (at most 15) as a number. */
export function decimalNumber(s: Uint8Array, a: number, z: number): number {
  const neg = s[a] === 45;
  let v = 0;
  for (let i = neg ? a + 1 : a; i < z; i++) v = v * 10 + (s[i] - 48);
  return neg ? -v : v;
}

/** Hex digits (at most 13) as a number. */
export function hexNumber(s: Uint8Array, a: number, z: number): number {
  let v = 0;
  for (let i = a; i < z; i++) {
    const c = s[i];
    v = v * 16 + (c <= 57 ? c - 48 : (c | 32) - 87);
  }
  return v;
}

/** Types a printed value (see {@link spanKind}). */
export function typedValue(value: string): TypedValue {
  const b = Buffer.from(value, 'utf8');
  return spanValue(b, 0, b.length);
}
