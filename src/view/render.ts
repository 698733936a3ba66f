/**
 * Renders one screen of the view as a string (the CLI writes it; tests feed it to a headless
 * terminal). Rows: title, axis labels, ticks (with `^` at the cursor), one row per lane, key help,
 * status line. A lane row's column shows what covered most of its time span:
 *   `=` guest mode (vCPU lanes) or a running task (guest CPU lanes), `#` in the host (an exit, or
 *   user space on KVM_RUN-only hosts), `.` KVM_RUN with the thread switched out, `?` switched out
 *   but seen running again with no switch-in traced (not checkable), `:` mostly idle
 *   but not empty, ` ` nothing; the exit reason or task name is written where it begins (its first
 *   letter when there is no room), and `*` marks a marker. Colour, when the terminal has it, only
 *   adds to this.
 */
import type { IntervalLane } from './lanes.js';
import { GUEST_MODE } from './timeline-index.js';
import type { TimelineIndex } from './timeline-index.js';
import { fmtDuration, fmtTime, niceStep, toNs } from './time-format.js';
import { layout, MIN_SCREEN, type ScreenSize, type ViewState } from './state.js';

const CSI = '\x1b[';
const SGR = {
  guest: '32',
  host: '31',
  hostLabel: '1;33',
  off: '2',
  sparse: '2',
  marker: '1;35',
  selected: '7',
  axis: '36',
  status: '7',
};
const TASK_COLOURS = ['36', '34', '33', '32', '35', '37'];

/** A row being drawn: characters and their SGR codes. */
class Row {
  readonly ch: string[];
  readonly sgr: string[];
  constructor(readonly w: number) {
    this.ch = new Array<string>(w).fill(' ');
    this.sgr = new Array<string>(w).fill('');
  }
  put(col: number, text: string, sgr = ''): void {
    for (let k = 0; k < text.length && col + k < this.w; k++) {
      if (col + k < 0) continue;
      this.ch[col + k] = text[k];
      this.sgr[col + k] = sgr;
    }
  }
  toString(color: boolean): string {
    if (!color) return this.ch.join('');
    let s = '';
    let cur = '';
    for (let i = 0; i < this.w; i++) {
      if (this.sgr[i] !== cur) {
        s += CSI + '0m' + (this.sgr[i] ? CSI + this.sgr[i] + 'm' : '');
        cur = this.sgr[i];
      }
      s += this.ch[i];
    }
    return s + (cur ? CSI + '0m' : '');
  }
}

const clip = (s: string, w: number): string => (s.length <= w ? s.padEnd(w) : s.slice(0, Math.max(0, w - 1)) + '…');

/** The screen as lines of plain text (no colour): what a person reads. */
export function renderLines(ix: TimelineIndex, st: ViewState, size: ScreenSize): string[] {
  return renderRows(ix, st, { ...size, color: false });
}

/** The screen as one string to write to a terminal: cursor home, each line cleared to its end. */
export function renderScreen(ix: TimelineIndex, st: ViewState, size: ScreenSize): string {
  return CSI + 'H' + renderRows(ix, st, size).map((l) => l + CSI + 'K').join('\r\n') + CSI + 'J';
}

function renderRows(ix: TimelineIndex, st: ViewState, size: ScreenSize): string[] {
  const { cols, rows, color } = size;
  if (cols < MIN_SCREEN.cols || rows < MIN_SCREEN.rows) return [clip(`terminal too small (${cols}x${rows}); kvmtrace view needs ${MIN_SCREEN.cols}x${MIN_SCREEN.rows}`, cols)];
  const L = layout(size);
  const dt = st.span / L.plotW;
  const cyc = !ix.tscKhz;
  const ns = (t: number): number => toNs(t, ix.tscKhz);
  const out: string[] = [];

  // Title: what is shown, and where time 0 is.
  const vm = ix.vm !== undefined ? ` of VM ${ix.vm}` : '';
  const zero = ix.zeroHostTsc !== undefined ? ` — 0 = first event, ${ix.tscKhz === 1_000_000 ? 'host ns' : 'host TSC'} ${ix.zeroHostTsc}` : '';
  const title = `kvmtrace view — ${ix.lanes.length} lane(s)${vm}, ${ix.events.toLocaleString('en-US')} events — window ${fmtTime(ns(st.t0 - ix.zero), magnitude(ix, st), ns(dt), cyc)} + ${fmtDuration(ns(st.span), cyc)}${zero}`;
  out.push(color ? CSI + '1m' + clip(title, cols) + CSI + '0m' : clip(title, cols));

  // Axis labels and ticks.
  const labels = new Row(cols);
  const ticks = new Row(cols);
  labels.put(0, clip(cyc ? 'cycles since 1st event' : 'since first event', L.labelW - 1), SGR.axis);
  ticks.put(0, ''.padEnd(L.labelW - 1) + '+', SGR.axis);
  for (let c = 0; c < L.plotW; c++) ticks.put(L.labelW + c, '-', SGR.axis);
  const stepNs = niceStep(ns(dt) * 14);
  const magnitudeNs = Math.max(magnitude(ix, st), stepNs);
  const step = cyc ? stepNs : (stepNs * ix.tscKhz!) / 1e6;
  let lastEnd = -1;
  // Ticks at whole steps from time 0.
  for (let k = Math.ceil((st.t0 - ix.zero) / step); ix.zero + k * step < st.t0 + st.span; k++) {
    const col = Math.round((ix.zero + k * step - st.t0) / dt);
    if (col < 0 || col >= L.plotW) continue;
    ticks.put(L.labelW + col, '|', SGR.axis);
    const text = fmtTime(k * stepNs, magnitudeNs, stepNs, cyc);
    if (col > lastEnd && col + text.length <= L.plotW) {
      labels.put(L.labelW + col, text, SGR.axis);
      lastEnd = col + text.length;
    }
  }
  const curCol = Math.floor((st.cursor - st.t0) / dt);
  if (curCol >= 0 && curCol < L.plotW) ticks.put(L.labelW + curCol, '^', '1;33');
  out.push(labels.toString(color), ticks.toString(color));

  // Lanes.
  for (let r = 0; r < L.laneRows; r++) {
    const li = st.laneTop + r;
    const lane = ix.lanes[li];
    const row = new Row(cols);
    if (lane) {
      const sel = li === st.lane;
      const mark = lane.coarsening > 1 ? ` ×${lane.coarsening}` : '';
      row.put(0, (sel ? '>' : ' ') + clip(lane.label, L.labelW - 2 - mark.length) + mark, sel ? SGR.selected : '');
      row.put(L.labelW - 1, '|');
      drawLane(row, L.labelW, L.plotW, lane, ix, st.t0, dt);
      if (color && curCol >= 0 && curCol < L.plotW) row.sgr[L.labelW + curCol] = (row.sgr[L.labelW + curCol] ? row.sgr[L.labelW + curCol] + ';' : '') + '7';
    }
    out.push(row.toString(color));
  }

  // Key help and status.
  out.push(clip('keys: ←/→ cursor  ↑/↓ lane  +/- zoom  [/] pan  n/N same kind  e/E exit  m/M marker  /text⏎ find  z zoom to it  f fit  0/$ ends  q quit', cols));
  const status = clip(st.prompt !== undefined ? `find (next interval or marker whose name contains): /${st.prompt}_` : statusText(ix, st, dt), cols);
  out.push(color ? CSI + SGR.status + 'm' + status + CSI + '0m' : status);
  return out;
}

/**
 * The size of the times on screen (since time 0), in ns: times are printed in its unit (191.7648 s,
 * not 191764800 µs), with as many decimals as the zoom needs.
 */
function magnitude(ix: TimelineIndex, st: ViewState): number {
  return Math.max(Math.abs(toNs(st.t0 - ix.zero, ix.tscKhz)), Math.abs(toNs(st.t0 + st.span - ix.zero, ix.tscKhz)), 1);
}

/** Fills a lane row's plot columns. */
function drawLane(row: Row, x0: number, w: number, lane: IntervalLane, ix: TimelineIndex, t0: number, dt: number): void {
  const t1 = t0 + dt * w;
  const cover = new Float64Array(5); // none, guest/task, host, off, not checkable
  let i = lane.firstEndingAfter(t0);
  const first = i;
  for (let c = 0; c < w; c++) {
    const a = t0 + c * dt;
    const b = a + dt;
    cover.fill(0);
    let j = i;
    while (j < lane.n && lane.start[j] < b) {
      const ov = Math.min(b, lane.end[j]) - Math.max(a, lane.start[j]);
      if (ov > 0) {
        const cls = ix.classes[lane.code[j]];
        cover[cls === 'host' ? 2 : cls === 'off' ? 3 : cls === 'unknown' ? 4 : 1] += ov;
      }
      if (lane.end[j] <= b) j++;
      else break;
    }
    i = j;
    const covered = cover[1] + cover[2] + cover[3] + cover[4];
    if (covered === 0) continue;
    if (covered < dt / 2 && lane.type === 'cpu') {
      row.put(x0 + c, ':', SGR.sparse);
      continue;
    }
    const k = cover[2] >= cover[1] && cover[2] >= cover[3] && cover[2] >= cover[4] ? 2 : cover[3] > cover[1] && cover[3] >= cover[4] ? 3 : cover[4] > cover[1] ? 4 : 1;
    if (k === 2) row.put(x0 + c, '#', SGR.host);
    else if (k === 3) row.put(x0 + c, '.', SGR.off);
    else if (k === 4) row.put(x0 + c, '?', SGR.off);
    else row.put(x0 + c, '=', lane.type === 'vcpu' ? SGR.guest : '');
  }
  // Names where intervals begin: exits (and user space) on vCPU lanes, tasks on CPU lanes.
  let lastCol = -1;
  for (let j = first; j < lane.n && lane.start[j] < t1; j++) {
    const code = lane.code[j];
    const cls = ix.classes[code];
    if (lane.type === 'vcpu' ? cls !== 'host' : cls !== 'task') continue;
    const col = Math.max(0, Math.floor((lane.start[j] - t0) / dt));
    if (col <= lastCol) continue;
    // Room: up to the next labelled interval's column.
    let next = w;
    for (let k = j + 1; k < lane.n && lane.start[k] < t1; k++) {
      if (ix.classes[lane.code[k]] === cls || (lane.type === 'vcpu' && lane.code[k] === GUEST_MODE && lane.end[k] - lane.start[k] > dt)) {
        next = Math.floor((lane.start[k] - t0) / dt);
        if (ix.classes[lane.code[k]] === cls) break;
      }
    }
    const name = lane.type === 'cpu' ? ix.names[code].replace(/-\d+$/, '') : ix.names[code];
    const room = Math.max(1, Math.min(next, Math.ceil((lane.end[j] - t0) / dt)) - col);
    // The whole name where it fits, its first letter where the interval is at least a column wide;
    // shorter intervals keep the column's coverage character, so zoomed out the pattern stays readable.
    const text = room >= name.length + 1 ? name : lane.end[j] - lane.start[j] >= dt ? name[0] : '';
    if (!text) continue;
    const sgr = lane.type === 'vcpu' ? SGR.hostLabel : '1;' + TASK_COLOURS[code % TASK_COLOURS.length];
    row.put(x0 + col, text, sgr);
    lastCol = col + text.length - 1;
    if (lane.type === 'cpu') for (let c = col + text.length; c < Math.min(w, col + room); c++) row.sgr[x0 + c] = TASK_COLOURS[code % TASK_COLOURS.length];
  }
  // Markers.
  for (let p = lane.firstPointFrom(t0); p < lane.np && lane.pointT[p] < t1; p++) row.put(x0 + Math.floor((lane.pointT[p] - t0) / dt), '*', SGR.marker);
}

/** The status line: cursor time, what is under the cursor on the selected lane, and that lane. */
export function statusText(ix: TimelineIndex, st: ViewState, dt: number): string {
  const cyc = !ix.tscKhz;
  const ns = (t: number): number => toNs(t, ix.tscKhz);
  const mag = magnitude(ix, st);
  const at = (t: number, res: number): string => fmtTime(ns(t - ix.zero), mag, res, cyc);
  let s = (st.message ? st.message + ' | ' : '') + `@ ${at(st.cursor, ns(dt) / 10)} | `;
  // A marker in the cursor's column on any lane (what `m` jumps to), first: it is what was asked for.
  for (const l of ix.lanes) {
    const p = l.firstPointFrom(st.cursor - dt / 2);
    if (p < l.np && l.pointT[p] < st.cursor + dt / 2) {
      s += `marker "${ix.names[l.pointCode[p]]}" | `;
      break;
    }
  }
  const lane = ix.lanes[st.lane];
  if (!lane) return s + 'no lanes: the capture has no vCPU threads and no guest CPUs';
  const i = lane.at(st.cursor);
  if (i < 0) s += lane.type === 'cpu' ? 'idle' : 'no data';
  else {
    const code = lane.code[i];
    const cls = ix.classes[code];
    const what = lane.type === 'vcpu' ? (cls === 'host' ? (ix.windowKind === 'kvm-run' ? `in user space: ${ix.names[code]}` : `exit ${ix.names[code]}`) : ix.names[code]) : `running ${ix.names[code]}`;
    const dur = ns(lane.end[i] - lane.start[i]);
    const res = Math.min(ns(dt), dur) / 10;
    s += `${what}, ${fmtDuration(dur, cyc)} [${at(lane.start[i], res)} → ${at(lane.end[i], res)}]`;
    if (lane.coarsening > 1) s += ` (index coarsened: merged from up to ${lane.coarsening} intervals)`;
  }
  return s + ` | on ${lane.label}`;
}
