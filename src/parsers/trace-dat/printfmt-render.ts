/**
 * Renderers of a whole print fmt, built from the per-piece renderers of printfmt-fast.ts (compiled
 * pieces, falling back to printfmt-eval.ts's interpreter): pretty text, and `trace-cmd report -R`'s
 * raw `name=value` text. Kept apart so that the interpreter and the compiled pieces depend one way
 * only (fast → eval).
 */
import type { FieldFormat } from './format.js';
import { rawFieldText, type Rec, type RenderEnv } from './printfmt-eval.js';
import { pieceRenderer } from './printfmt-fast.js';
import type { Piece, PrintFmt } from './printfmt-parse.js';

/** Renders a whole print fmt (pretty mode). */
export function renderPretty(env: RenderEnv, r: Rec, pf: PrintFmt): string {
  let s = '';
  for (const p of pf.pieces) s += pieceRenderer(env, p)(r);
  return s;
}

/**
 * A compiled renderer of a whole print fmt that also drops one trailing newline (as trace-cmd
 * does), looking only at the last piece's text so the line is not flattened.
 */
export function prettyRenderer(env: RenderEnv, pf: PrintFmt): (r: Rec) => string {
  const fns = pf.pieces.map((p) => pieceRenderer(env, p));
  const n = fns.length;
  if (n === 0) return () => '';
  return (r) => {
    let s = '';
    for (let i = 0; i < n - 1; i++) s += fns[i](r);
    let t = fns[n - 1](r);
    if (t === '') {
      s += t;
      return s.endsWith('\n') ? s.slice(0, -1) : s;
    }
    if (t.charCodeAt(t.length - 1) === 10) t = t.slice(0, -1);
    return s + t;
  };
}

/** The field a piece prints, if its argument (under casts) is exactly a field. */
function pieceField(p: Piece): FieldFormat | undefined {
  if (p.t === 'text') return undefined;
  let a = p.arg;
  while (a.k === 'cast') a = a.x;
  return a.k === 'field' ? a.f : undefined;
}

/**
 * `trace-cmd report -R` text of an event: ` name=value` for each of its own fields, each value
 * printed with the print-fmt conversion that prints that field when there is one (searched
 * circularly from the last match, with the `0x` of a preceding literal), else raw.
 */
export function renderRaw(env: RenderEnv, r: Rec, fields: FieldFormat[], pf: PrintFmt | undefined): string {
  let s = '';
  const pieces = pf && !pf.failed ? pf.pieces : [];
  let at = 0;
  for (const f of fields) {
    s += ` ${f.name}=`;
    let done = false;
    if (pieces.length && at >= 0 && !f.isArray && !f.isString) {
      let hasOx = false;
      for (let k = 0; k < pieces.length; k++) {
        const idx = (at + k) % pieces.length;
        const p = pieces[idx];
        if (p.t === 'text') {
          hasOx = p.s.length > 1 && p.s.endsWith('0x');
          continue;
        }
        if (pieceField(p) !== f) {
          hasOx = false;
          continue;
        }
        if (hasOx) s += '0x';
        s += pieceRenderer(env, p)(r);
        // libtraceevent keeps a pointer to the next piece; past the last one it is NULL and every
        // later field prints raw.
        at = idx + 1 < pieces.length ? idx + 1 : -1;
        done = true;
        break;
      }
    }
    if (!done) s += rawFieldText(env, r, f);
  }
  return s;
}
