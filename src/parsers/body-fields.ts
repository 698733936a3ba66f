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

const KEY_EQ = /(^|[\s[(,])([A-Za-z_][\w.]*)=/g;
const KEY_COLON = /(^|,? )([A-Za-z_][\w/]*): /g;
const LOWER_WORD = /^[a-z_][a-z0-9_]*$/;
const NUMBERISH = /^(-?\d+|0x[0-9a-fA-F]+)$/;
/** At most this many fields per event (Perfetto's generic descriptors take field numbers 1–31). */
export const MAX_BODY_FIELDS = 31;

/** The fields of a printed event body (see the module header for the shapes read). */
export function bodyFields(body: string): BodyField[] {
  const s = body.trim();
  if (s === '') return [];
  const out = keyEquals(s) ?? colonPairs(s) ?? wordPairs(s) ?? [{ name: 'text', text: s }];
  return unique(out);
}

function keyEquals(s: string): BodyField[] | undefined {
  return keyed(s, KEY_EQ, false);
}

/** `key: value, key: value` or `key: value key: value` (every key followed by `: `, the first at the start). */
function colonPairs(s: string): BodyField[] | undefined {
  const out = keyed(s, KEY_COLON, true);
  return out && out[0].name !== 'text' ? out : undefined;
}

/**
 * Fields whose keys `re` finds (group 1: the separator before, group 2: the key); a value runs up
 * to the next key. Text before the first key is a `text` field unless `strict` (then none).
 */
function keyed(s: string, re: RegExp, strict: boolean): BodyField[] | undefined {
  const keys: { name: string; sep: number; val: number; bracket: boolean }[] = [];
  re.lastIndex = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) keys.push({ name: m[2], sep: m.index, val: re.lastIndex, bracket: m[1] === '[' });
  if (!keys.length || (strict && keys[0].sep !== 0)) return undefined;
  const out: BodyField[] = [];
  const lead = s.slice(0, keys[0].sep).trim();
  if (lead) out.push({ name: 'text', text: lead });
  keys.forEach((k, i) => {
    let v = s.slice(k.val, i + 1 < keys.length ? keys[i + 1].sep : s.length).trim();
    if (v.endsWith(' ==>')) v = v.slice(0, -4).trimEnd();
    // `pid=421, prio=99`: the comma separates, it is not part of the value.
    else if (v.endsWith(',')) v = v.slice(0, -1);
    if (k.bracket && v.endsWith(']')) v = v.slice(0, -1);
    out.push({ name: k.name, text: v });
  });
  return out;
}

function wordPairs(s: string): BodyField[] | undefined {
  const t = s.split(/\s+/);
  const out: BodyField[] = [];
  const loose: string[] = [];
  for (let i = 0; i < t.length; i++) {
    if (LOWER_WORD.test(t[i]) && i + 1 < t.length && !LOWER_WORD.test(t[i + 1])) {
      out.push({ name: t[i], text: t[++i] });
    } else if (out.length && NUMBERISH.test(t[i])) {
      out[out.length - 1].text += ' ' + t[i];
    } else loose.push(t[i]);
  }
  if (!out.length) return undefined;
  if (loose.length) out.unshift({ name: 'text', text: loose.join(' ') });
  return out;
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

const DEC = /^-?\d{1,20}$/;
const HEX = /^0x[0-9a-fA-F]{1,16}$/;
const WITH_UNIT = /^(-?\d{1,20}) \[\w+\]$/;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;
const U64_MAX = (1n << 64n) - 1n;

/** Types a printed value: decimal → signed integer, 0x… → unsigned, anything else (or out of range) → text. */
export function typedValue(text: string): TypedValue {
  const u = WITH_UNIT.exec(text);
  const d = u ? u[1] : text;
  if (DEC.test(d)) {
    const n = Number(d);
    if (Number.isSafeInteger(n)) return { kind: 'int', value: n };
    const b = BigInt(d);
    if (b >= I64_MIN && b <= I64_MAX) return { kind: 'int', value: b };
    // The kernel prints u64 fields with %llu: above int64 they are unsigned.
    if (b > I64_MAX && b <= U64_MAX) return { kind: 'uint', value: b };
  } else if (HEX.test(text)) {
    const n = parseInt(text, 16);
    return { kind: 'uint', value: Number.isSafeInteger(n) ? n : BigInt(text) };
  }
  return { kind: 'str', value: text };
}
