/**
 * What the view shows (window, cursor, selected lane) and how keys change it. Pure functions of
 * the index and the state: the CLI feeds keys from the terminal, tests from a headless one.
 */
import type { IntervalLane } from './lanes.js';
import type { TimelineIndex } from './timeline-index.js';

/** The view's state. Times are timeline cycles. */
export interface ViewState {
  /** Left edge of the plot. */
  t0: number;
  /** Cycles across the plot's width. */
  span: number;
  cursor: number;
  /** Selected lane. */
  lane: number;
  /** First lane shown (when there are more lanes than rows). */
  laneTop: number;
  /** A one-off message for the status line (`no later HLT on this lane`). */
  message: string;
  /** While typing a search after `/`: the text so far; undefined otherwise. */
  prompt?: string;
}

/** Terminal size and capabilities. */
export interface ScreenSize {
  cols: number;
  rows: number;
  color: boolean;
}

/** The smallest screen the view draws (a smaller one shows only a line saying so). */
export const MIN_SCREEN = { cols: 40, rows: 8 };
/**
 * The largest screen the view draws: a screen is built in memory as rows × columns cells, so an
 * unbounded `--size` would exhaust the heap. Wider than any real terminal (a 4K monitor holds
 * about 500 columns at a small font).
 */
export const MAX_SCREEN = { cols: 2000, rows: 1000 };

/** Rows and columns of the screen's parts. */
export interface Layout {
  labelW: number;
  plotW: number;
  /** Screen row of the first lane. */
  laneRow0: number;
  /** Lanes that fit. */
  laneRows: number;
}

/** Fixed rows: title, axis labels, ticks above the lanes; key help and status below. */
export const HEADER_ROWS = 3;
/** Rows below the lanes. */
export const FOOTER_ROWS = 2;

/** Where things go on a screen of this size. */
export function layout(size: ScreenSize): Layout {
  const labelW = Math.max(14, Math.min(34, Math.round(size.cols * 0.28)));
  return { labelW, plotW: Math.max(1, size.cols - labelW), laneRow0: HEADER_ROWS, laneRows: Math.max(1, size.rows - HEADER_ROWS - FOOTER_ROWS) };
}

/**
 * Where the lanes have something to show: from the first interval or marker to the last. A capture
 * may begin long before (kvmtrace capture --hold records only TSC offset writes until released).
 */
export function dataExtent(ix: TimelineIndex): [number, number] {
  let a = Infinity;
  let b = -Infinity;
  for (const l of ix.lanes) {
    if (l.n) {
      a = Math.min(a, l.start[0]);
      b = Math.max(b, l.end[l.n - 1]);
    }
    if (l.np) {
      a = Math.min(a, l.pointT[0]);
      b = Math.max(b, l.pointT[l.np - 1]);
    }
  }
  return a < b ? [a, b] : [ix.first, ix.last];
}

/** Everything the lanes show in view, cursor at its start, first lane selected. */
export function initialState(ix: TimelineIndex): ViewState {
  const [a, b] = dataExtent(ix);
  return { t0: a, span: Math.max(1, b - a), cursor: a, lane: 0, laneTop: 0, message: '' };
}

/** The state with the cursor at `sinceZero` cycles after time 0 (`--at`), the window centred on it but not before time 0. */
export function cursorAt(ix: TimelineIndex, st: ViewState, sinceZero: number): ViewState {
  const cursor = ix.zero + sinceZero;
  return { ...st, cursor, t0: Math.max(ix.zero, cursor - st.span / 2) };
}

/** Cycles per column. */
export function cyclesPerCol(st: ViewState, size: ScreenSize): number {
  return st.span / layout(size).plotW;
}

/**
 * The state made consistent: a span of at least a cycle per column and at most twice the trace,
 * the cursor within the trace (from time 0 to its last event) and on screen, the window never
 * before time 0 (nothing is there), the selected lane on screen.
 */
function ensureVisible(st: ViewState, size: ScreenSize, ix: TimelineIndex): ViewState {
  const s = { ...st };
  const full = Math.max(1, ix.last - ix.first);
  s.span = Math.min(Math.max(s.span, layout(size).plotW), full * 2);
  s.cursor = Math.min(Math.max(s.cursor, ix.zero), Math.max(ix.zero, ix.last));
  if (s.cursor < s.t0 || s.cursor >= s.t0 + s.span) s.t0 = s.cursor - s.span / 2;
  s.t0 = Math.max(s.t0, ix.zero);
  const rows = layout(size).laneRows;
  s.lane = Math.max(0, Math.min(s.lane, ix.lanes.length - 1));
  if (s.lane < s.laneTop) s.laneTop = s.lane;
  if (s.lane >= s.laneTop + rows) s.laneTop = s.lane - rows + 1;
  return s;
}

/** The interval index under the cursor in the selected lane, or -1. */
export function underCursor(ix: TimelineIndex, st: ViewState): { lane: IntervalLane | undefined; i: number } {
  const lane = ix.lanes[st.lane];
  return { lane, i: lane ? lane.at(st.cursor) : -1 };
}

/** Next (dir 1) or previous (dir -1) interval start in a lane after/before t whose code passes `ok`. */
function seek(lane: IntervalLane, t: number, dir: 1 | -1, ok: (code: number) => boolean): number | undefined {
  if (dir === 1) {
    for (let i = lane.firstEndingAfter(t); i < lane.n; i++) if (lane.start[i] > t && ok(lane.code[i])) return lane.start[i];
  } else {
    for (let i = Math.min(lane.firstEndingAfter(t), lane.n - 1); i >= 0; i--) if (lane.start[i] < t && ok(lane.code[i])) return lane.start[i];
  }
  return undefined;
}

function seekPoint(ix: TimelineIndex, t: number, dir: 1 | -1): number | undefined {
  let best: number | undefined;
  for (const l of ix.lanes) {
    if (!l.np) continue;
    const i = l.firstPointFrom(t);
    const c = dir === 1 ? (i < l.np && l.pointT[i] === t ? i + 1 : i) : i - 1;
    if (c < 0 || c >= l.np) continue;
    const v = l.pointT[c];
    if (best === undefined || (dir === 1 ? v < best : v > best)) best = v;
  }
  return best;
}

/**
 * The next interval start (any lane) or marker after `t` whose name contains `text` (case-insensitive):
 * `/HLT`, `/bash`, `/kvmsync`. Returns the time and the lane to select.
 */
export function search(ix: TimelineIndex, t: number, text: string): { t: number; lane: number } | undefined {
  const want = text.toLowerCase();
  const hit = ix.names.map((n) => n.toLowerCase().includes(want));
  let best: { t: number; lane: number } | undefined;
  ix.lanes.forEach((lane, li) => {
    const s = seek(lane, t, 1, (c) => hit[c]);
    if (s !== undefined && (!best || s < best.t)) best = { t: s, lane: li };
    for (let p = lane.firstPointFrom(t); p < lane.np; p++)
      if (lane.pointT[p] > t && hit[lane.pointCode[p]]) {
        if (!best || lane.pointT[p] < best.t) best = { t: lane.pointT[p], lane: li };
        break;
      }
  });
  return best;
}

function promptKey(ix: TimelineIndex, st: ViewState, key: string, size: ScreenSize): ViewState {
  const text = st.prompt ?? '';
  if (key === '\x1b') return { ...st, prompt: undefined };
  if (key === '\x7f' || key === '\b') return { ...st, prompt: text.slice(0, -1) };
  if (key === '\r' || key === '\n') {
    if (!text) return { ...st, prompt: undefined };
    const hit = search(ix, st.cursor, text);
    if (!hit) return { ...st, prompt: undefined, message: `no "${text}" after the cursor` };
    return ensureVisible({ ...st, prompt: undefined, cursor: hit.t, lane: hit.lane, message: '' }, size, ix);
  }
  if (key.length === 1 && key >= ' ') return { ...st, prompt: text + key };
  return st;
}

/** Applies one key (as the terminal sends it); returns the new state, or null to quit. */
export function handleKey(ix: TimelineIndex, st: ViewState, key: string, size: ScreenSize): ViewState | null {
  if (st.prompt !== undefined) return promptKey(ix, st, key, size);
  const dt = cyclesPerCol(st, size);
  let s: ViewState = { ...st, message: '' };
  const jump = (to: number | undefined, what: string, where = ' on this lane'): void => {
    if (to === undefined) s.message = `no ${what} ${key === key.toLowerCase() ? 'after' : 'before'} the cursor${where}`;
    else s.cursor = to;
  };
  const { lane, i } = underCursor(ix, s);
  switch (key) {
    case 'q':
    case '\x03':
      return null;
    case '/':
      return { ...s, prompt: '' };
    case '\x1b[C':
    case 'l':
      s.cursor += dt;
      if (s.cursor >= s.t0 + s.span) s.t0 += s.span / 4;
      break;
    case '\x1b[D':
    case 'h':
      s.cursor -= dt;
      if (s.cursor < s.t0) s.t0 -= s.span / 4;
      break;
    case '\x1b[A':
    case 'k':
      s.lane--;
      break;
    case '\x1b[B':
    case 'j':
      s.lane++;
      break;
    case '+':
    case '=':
    case 'i':
      s.t0 = s.cursor - (s.cursor - s.t0) / 2;
      s.span /= 2;
      break;
    case '-':
    case 'o':
      s.t0 = s.cursor - (s.cursor - s.t0) * 2;
      s.span *= 2;
      break;
    case ']':
    case '>':
      s.t0 += s.span / 2;
      s.cursor += s.span / 2;
      break;
    case '[':
    case '<':
      s.t0 -= s.span / 2;
      s.cursor -= s.span / 2;
      break;
    case 'n':
    case 'N':
      if (lane) {
        const code = i >= 0 ? lane.code[i] : -1;
        jump(seek(lane, s.cursor, key === 'n' ? 1 : -1, (c) => code < 0 || c === code), i >= 0 ? ix.names[code] : 'interval');
      }
      break;
    case 'e':
    case 'E':
      if (lane) jump(seek(lane, s.cursor, key === 'e' ? 1 : -1, (c) => ix.classes[c] === 'host'), lane.type === 'vcpu' ? 'exit' : 'interval');
      break;
    case 'm':
    case 'M':
      jump(seekPoint(ix, s.cursor, key === 'm' ? 1 : -1), 'marker', '');
      break;
    case '0':
    case 'g':
    case '\x1b[H':
      s.cursor = ix.first;
      s.t0 = ix.first;
      break;
    case '$':
    case 'G':
    case '\x1b[F':
      s.cursor = ix.last;
      s.t0 = ix.last - s.span;
      break;
    case 'f':
      s = { ...initialState(ix), cursor: s.cursor, lane: s.lane, laneTop: s.laneTop, message: '' };
      break;
    case 'z':
      if (lane && i >= 0) {
        const d = lane.end[i] - lane.start[i];
        s.span = d * 1.25;
        s.t0 = lane.start[i] - d * 0.125;
        s.cursor = lane.start[i];
      }
      break;
    default:
      return st;
  }
  return ensureVisible(s, size, ix);
}
