/**
 * Lines between two point sets, by the convex-hull method (Duda et al.; Trace Compass fits its
 * clock offsets this way): every line y = s·x + c with each `below` point on or under it and each
 * `above` point on or over it. Used for sync points under drift (estimate/from-sync.ts) and for
 * time clocks through kvmsync markers (clock-sync.ts).
 *
 * The feasible lines form a convex polygon in (s, c); its vertices are lines through two hull
 * vertices (the upper hull of the `below` points, the lower hull of the `above` points). The
 * steepest and the flattest line each rest on one vertex of each hull (the gradient (±1, 0) lies in
 * the cone of one constraint of each kind); the central line is their bisector. The range of values
 * the feasible lines take at any x is spanned by the polygon's vertices, so that range — the
 * uncertainty of the central line there — is exact, not a guess.
 */

/** A point. */
export interface Pt {
  x: number;
  y: number;
}

/** A line y = s·x + c. */
export interface Line {
  s: number;
  c: number;
}

/** The lines that separate the two sets. */
export interface Separation {
  /** Flattest and steepest feasible lines. */
  min: Line;
  max: Line;
  /** The bisector of the two (Trace Compass's choice). */
  central: Line;
  /** Every vertex of the feasible polygon (lines through two hull vertices that fit). */
  vertices: Line[];
}

const at = (l: Line, x: number): number => l.s * x + l.c;

/**
 * The lines with every `below` point on or under them and every `above` point on or over them;
 * undefined when none fits, or when the points do not span two distinct x (the slope is free).
 * `tol` absorbs floating-point error (in y units).
 */
export function separate(below: Pt[], above: Pt[], tol = 1e-3): Separation | undefined {
  if (below.length === 0 || above.length === 0) return undefined;
  // At equal x only the binding point matters: the highest of `below`, the lowest of `above` (sorted last, so it pops the others).
  const lo = hull([...below].sort((a, b) => a.x - b.x || a.y - b.y), 'upper');
  const hi = hull([...above].sort((a, b) => a.x - b.x || b.y - a.y), 'lower');
  const fits = (l: Line): boolean => lo.every((p) => p.y <= at(l, p.x) + tol) && hi.every((p) => p.y >= at(l, p.x) - tol);
  const through = (p: Pt, q: Pt): Line | undefined => {
    if (p.x === q.x) return undefined;
    const s = (q.y - p.y) / (q.x - p.x);
    return { s, c: p.y - s * p.x };
  };
  let min: Line | undefined;
  let max: Line | undefined;
  const vertices: Line[] = [];
  const consider = (l: Line | undefined, mixed: boolean): void => {
    if (!l || !fits(l)) return;
    vertices.push(l);
    if (!mixed) return;
    if (!min || l.s < min.s) min = l;
    if (!max || l.s > max.s) max = l;
  };
  for (const l of lo) for (const u of hi) consider(through(l, u), true);
  for (let i = 0; i + 1 < lo.length; i++) consider(through(lo[i], lo[i + 1]), false);
  for (let i = 0; i + 1 < hi.length; i++) consider(through(hi[i], hi[i + 1]), false);
  if (!min || !max) return undefined;
  return { min, max, central: { s: (min.s + max.s) / 2, c: (min.c + max.c) / 2 }, vertices };
}

/** How far the feasible lines stray from the central one at x (the central line's uncertainty there). */
export function strayAt(f: Separation, x: number): number {
  const mid = at(f.central, x);
  let d = 0;
  for (const v of f.vertices) d = Math.max(d, Math.abs(at(v, x) - mid));
  return d;
}

/** The value of a line at x. */
export function lineAt(l: Line, x: number): number {
  return at(l, x);
}

const cross = (o: Pt, a: Pt, b: Pt): number => (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x);

/** Monotone-chain half hull of points sorted by x: 'upper' (for points that must lie below a line) or 'lower'. */
function hull(pts: Pt[], side: 'upper' | 'lower'): Pt[] {
  const out: Pt[] = [];
  for (const p of pts) {
    while (out.length >= 2) {
      const c = cross(out[out.length - 2], out[out.length - 1], p);
      if ((side === 'upper' && c >= 0) || (side === 'lower' && c <= 0)) out.pop();
      else break;
    }
    out.push(p);
  }
  return out;
}
