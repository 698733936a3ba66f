/**
 * `kvmtrace view`: the terminal timeline. Builds the view's index in one pass over the merge, then
 * drives the terminal (alternate screen, raw keys, redraw on resize). Without a terminal, or with
 * --print, prints one screen.
 */
import type { Command } from 'commander';
import { writeSync } from 'node:fs';
import { UserError } from '../../model/errors.js';
import { prepareMerge } from '../../merge/session.js';
import { analyse } from '../../analysis/run.js';
import { IndexBuilder, type TimelineIndex } from '../../view/timeline-index.js';
import { DEFAULT_LANE_CAP } from '../../view/lanes.js';
import { cursorAt, handleKey, initialState, MAX_SCREEN, MIN_SCREEN, type ScreenSize, type ViewState } from '../../view/state.js';
import { renderLines, renderScreen } from '../../view/render.js';
import { parseTimeNs, splitKeys } from '../../view/keys.js';
import { fromNs } from '../../view/time-format.js';
import { INPUTS_HELP, mergeInputOptions, mergeRequest } from './merge.js';
import { analysisOptions, printAnalysisWarnings, vmChoice, type AnalysisFlags } from '../analysis-flags.js';
import { onEarlyExit } from '../exit.js';

interface ViewFlags extends AnalysisFlags {
  print?: boolean;
  size?: string;
  at?: string;
  span?: string;
  keys?: string;
  laneCap: string;
}

/** `--size COLSxROWS`, within the screens the view draws. */
function screenSize(v: string): { cols: number; rows: number } {
  const m = /^(\d+)x(\d+)$/.exec(v);
  if (!m) throw new UserError(`--size ${v}: expected COLSxROWS, e.g. 120x30`);
  const [cols, rows] = [Number(m[1]), Number(m[2])];
  const [lo, hi] = [MIN_SCREEN, MAX_SCREEN];
  if (cols < lo.cols || rows < lo.rows || cols > hi.cols || rows > hi.rows)
    throw new UserError(`--size ${v}: the view draws from ${lo.cols}x${lo.rows} to ${hi.cols}x${hi.rows} (columns x rows)`);
  return { cols, rows };
}

function startState(ix: TimelineIndex, o: ViewFlags): ViewState {
  let st = initialState(ix);
  const time = (v: string, flag: string): number => {
    const ns = parseTimeNs(v);
    if (ns === undefined || ns < 0) throw new UserError(`${flag} ${v}: expected a time like 12.5ms, 300us, 2s or 1500ns`);
    return fromNs(ns, ix.tscKhz);
  };
  if (o.span) st.span = Math.max(1, time(o.span, '--span'));
  if (o.at) st = cursorAt(ix, st, time(o.at, '--at'));
  return st;
}

function interactive(ix: TimelineIndex, st0: ViewState): Promise<void> {
  const out = process.stdout;
  const inp = process.stdin;
  const size = (): ScreenSize => ({ cols: out.columns || 80, rows: out.rows || 24, color: out.hasColors?.() ?? false });
  let st = st0;
  const draw = (): void => void out.write(renderScreen(ix, st, size()));
  // The terminal goes back to how it was also when a signal ends the view (SIGINT, SIGTERM,
  // SIGHUP): cursor shown, main screen, cooked mode. Written synchronously: the process ends next.
  const restore = (): void => {
    inp.setRawMode(false);
    writeSync(1, '\x1b[?25h\x1b[?1049l');
  };
  const undo = onEarlyExit(restore);
  return new Promise((resolve) => {
    const finish = (): void => {
      inp.off('data', onData);
      out.off('resize', draw);
      undo();
      restore();
      inp.pause();
      resolve();
    };
    const onData = (data: string): void => {
      for (const k of splitKeys(data)) {
        const next = handleKey(ix, st, k, size());
        if (next === null) return finish();
        st = next;
      }
      draw();
    };
    out.write('\x1b[?1049h\x1b[?25l');
    inp.setRawMode(true);
    inp.setEncoding('utf8');
    inp.on('data', onData);
    inp.resume();
    out.on('resize', draw);
    draw();
  });
}

/** Registers `kvmtrace view`. */
export function register(program: Command): void {
  analysisOptions(
    mergeInputOptions(
      program
        .command('view')
        .summary('terminal timeline of a merged capture (zoom, pan, jump)')
        .description(
          'A terminal timeline: one lane per host vCPU thread, named after its VM (= guest mode, # in the host, with the ' +
            'exit reason where each exit begins; on KVM_RUN-only hosts . is KVM_RUN switched out and # user space) and one ' +
            'lane per guest CPU (the running task, * markers), a time axis counting from the first event of the merge (as ' +
            'the text and JSON outputs do), and a status line with what is under the cursor. Keys: ←/→ (h/l) cursor, ' +
            '↑/↓ (k/j) lane, +/- zoom, [/] pan, n/N next/previous of the kind under the cursor, e/E next/previous exit, ' +
            'm/M marker, /TEXT Enter the next interval or marker whose name contains TEXT (any lane), z zoom to the ' +
            'interval, f fit, 0/$ start/end, q quit. Memory: the index holds at most --lane-cap intervals per lane (20 ' +
            'bytes each); beyond that adjacent intervals are merged and the lane is marked ×2, ×4, … Takes the same ' +
            'inputs as `kvmtrace merge`.',
        )
        .argument('[inputs...]', INPUTS_HELP),
    ),
  )
    .option('--print', 'print one screen and exit (the default when stdout is not a terminal)')
    .option('--size <COLSxROWS>', 'screen size for --print (default: the terminal, else 120x30)')
    .option('--at <time>', 'put the cursor at this time since the first event (12.5ms, 300us, 2s)')
    .option('--span <time>', 'show this much time across the screen')
    .option('--keys <keys>', 'apply these keys before showing (e.g. "+++n")')
    .option('--lane-cap <n>', 'intervals kept per lane before merging neighbours', String(DEFAULT_LANE_CAP))
    .action(async (inputs: string[], o: ViewFlags) => {
      const cap = Number(o.laneCap);
      if (!Number.isSafeInteger(cap) || cap < 16) throw new UserError(`--lane-cap ${o.laneCap}: expected an integer ≥ 16`);
      let size: ScreenSize = { cols: process.stdout.columns || 120, rows: process.stdout.rows || 30, color: false };
      if (o.size) size = { ...screenSize(o.size), color: false };
      const prepared = await prepareMerge(mergeRequest(inputs, o));
      const sel = vmChoice(prepared, o);
      const run = await analyse(prepared, () => new IndexBuilder(prepared.tscKhz, prepared.index, cap, sel));
      const ix = run.analyzer.index;
      let st = startState(ix, o);
      for (const k of splitKeys(o.keys ?? '')) st = handleKey(ix, st, k, size) ?? st;
      const tty = process.stdout.isTTY && process.stdin.isTTY;
      if (o.print || !tty) process.stdout.write(renderLines(ix, st, size).map((l) => l.trimEnd()).join('\n') + '\n');
      else await interactive(ix, st);
      printAnalysisWarnings(prepared, run.validation, o);
    });
}
