/**
 * Structural checks of a Chrome trace event JSON file, as its consumers read it: every pid and tid
 * named; `ts` and `dur` with at most 3 decimals; records in the order they were streamed (an X
 * slice is written when it ends, so its end — ts + dur — is what is ordered, every other record's
 * ts; a sync point's start, written when validation matches it, lies behind); slices nested per thread (X by their spans; B/E, if any, by a stack, each E naming its B);
 * and every flow record (`s`, `f`) bound the way Perfetto and Chrome DevTools bind it: right after
 * a zero-length X of its own category on its thread at its ts (Perfetto binds a flow to the
 * innermost slice open on its track, which that X then is; DevTools to the event with the same
 * pid, tid, ts and cat), each `f` ending a flow some earlier `s` started.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';

/** One trace event as the checks read it. */
export interface Ev {
  ph: string;
  name?: string;
  cat?: string;
  ts?: number;
  dur?: number;
  id?: number;
  pid: number;
  tid: number;
  bp?: string;
  args?: Record<string, unknown>;
}

/** µs with 3 decimals as integer ns (exact for the values the exporter writes). */
const ns = (us: number): number => Math.round(us * 1000);

/** Checks the nesting of one thread's X slices; problems go to `bad`. */
function checkNesting(key: string, xs: Ev[], bad: (m: string) => void): void {
  const spans = xs.map((e) => ({ e, a: ns(e.ts!), z: ns(e.ts!) + ns(e.dur!) })).sort((p, q) => p.a - q.a || q.z - p.z);
  const stack: typeof spans = [];
  for (const s of spans) {
    while (stack.length && stack[stack.length - 1].z <= s.a) stack.pop();
    const top = stack[stack.length - 1];
    if (top && s.z > top.z) bad(`${key}: slice ${s.e.name} [${s.e.ts}, +${s.e.dur}] overlaps ${top.e.name} [${top.e.ts}, +${top.e.dur}] without nesting`);
    stack.push(s);
  }
}

/** Checks the file and returns its events, slice counts by name, and the names of threads and processes. */
export function checkChromeJson(path: string): { events: Ev[]; slices: Map<string, number>; threads: Map<string, string>; processes: Map<number, string> } {
  const text = readFileSync(path, 'utf8');
  const doc = JSON.parse(text) as { traceEvents: Ev[] };
  const processes = new Map<number, string>();
  const threads = new Map<string, string>();
  for (const e of doc.traceEvents) {
    if (e.ph === 'M' && e.name === 'process_name') processes.set(e.pid, String(e.args!.name));
    if (e.ph === 'M' && e.name === 'thread_name') threads.set(`${e.pid}:${e.tid}`, String(e.args!.name));
  }
  let lastEmit = -Infinity;
  const open = new Map<string, Ev[]>();
  const xs = new Map<string, Ev[]>();
  /** Per thread, the last slice record (X, B, E or instant) written. */
  const lastSlice = new Map<string, Ev>();
  const started = new Map<string, Ev>();
  const slices = new Map<string, number>();
  // Problems are collected and asserted once (an expect per event would dominate the run time).
  const problems: string[] = [];
  const bad = (m: string): void => void (problems.length < 20 && problems.push(m));
  for (const e of doc.traceEvents) {
    if (e.ph === 'M') continue;
    const key = `${e.pid}:${e.tid}`;
    if (!processes.has(e.pid)) bad(`pid ${e.pid} has no process_name`);
    if (!threads.has(key)) bad(`thread ${key} has no thread_name`);
    if (typeof e.name !== 'string') bad(`a ${e.ph} record at ${e.ts} on ${key} has no name`);
    if (ns(e.ts!) / 1000 !== e.ts) bad(`ts ${e.ts} has more than 3 decimals`);
    const emit = e.ph === 'X' ? ns(e.ts!) + ns(e.dur!) : ns(e.ts!);
    // A sync point's start is written when validation matches it, at the guest's marker: behind its time.
    if (e.cat === 'sync' && (e.ph === 'X' || e.ph === 's')) {
      if (emit > lastEmit) bad(`sync point start at ${e.ts} written ahead of its time`);
    } else {
      if (!(emit >= lastEmit)) bad(`not in stream order: ${e.ph} ${e.name} at ts ${e.ts}${e.ph === 'X' ? ` + ${e.dur}` : ''} after ${lastEmit / 1000}`);
      lastEmit = emit;
    }
    if (e.ph === 'X') {
      if (typeof e.dur !== 'number' || e.dur < 0 || ns(e.dur) / 1000 !== e.dur) bad(`X ${e.name} at ${e.ts} has dur ${e.dur}`);
      let l = xs.get(key);
      if (!l) xs.set(key, (l = []));
      l.push(e);
      if (e.cat !== 'flow') slices.set(e.name!, (slices.get(e.name!) ?? 0) + 1);
      lastSlice.set(key, e);
    } else if (e.ph === 'B' || e.ph === 'E') {
      let stack = open.get(key);
      if (!stack) open.set(key, (stack = []));
      if (e.ph === 'B') {
        stack.push(e);
        slices.set(e.name!, (slices.get(e.name!) ?? 0) + 1);
      } else {
        const b = stack.pop();
        if (!b) bad(`E on ${key} at ${e.ts} closes no open slice`);
        else if (b.name !== e.name || b.cat !== e.cat) bad(`E ${e.name}/${e.cat} on ${key} at ${e.ts} closes B ${b.name}/${b.cat}`);
      }
      lastSlice.set(key, e);
    } else if (e.ph === 'I' || e.ph === 'i') lastSlice.set(key, e);
    else if (e.ph === 's' || e.ph === 'f') {
      const x = lastSlice.get(key);
      if (!x || x.ph !== 'X' || x.dur !== 0 || x.ts !== e.ts || x.cat !== e.cat) bad(`flow ${e.ph} ${e.id} on ${key} at ${e.ts} is not bound to a zero-length slice of its own (last slice there: ${x?.ph} ${x?.name} at ${x?.ts})`);
      const flow = `${e.cat}\u0000${e.name}\u0000${e.id}`;
      if (e.ph === 's') {
        if (started.has(flow)) bad(`flow ${e.id} (${e.name}) starts twice`);
        started.set(flow, e);
      } else {
        if (!started.has(flow)) bad(`flow ${e.id} (${e.name}) ends at ${e.ts} without a start`);
        if (e.bp !== 'e') bad(`flow end ${e.id} does not bind its enclosing slice ("bp":"e")`);
      }
    } else if (!['t', 'C'].includes(e.ph)) bad(`unexpected phase ${e.ph}`);
  }
  for (const [k, s] of open) if (s.length) bad(`slices left open on ${k}: ${s.map((e) => e.name).join(', ')}`);
  for (const [k, l] of xs) checkNesting(k, l, bad);
  expect(problems).toEqual([]);
  // The raw text keeps ts and dur to 3 decimals too (no float noise such as 0.30000000000000004).
  expect(/"(ts|dur)":-?\d+\.\d{4,}/.test(text)).toBe(false);
  return { events: doc.traceEvents, slices, threads, processes };
}

/**
 * The innermost slice (X, other than flow carriers) enclosing time `ts` on a thread, by the half-open
 * span [ts, ts + dur) Perfetto gives slices; undefined when none does.
 */
export function sliceAt(events: Ev[]): (pid: number, tid: number, ts: number) => Ev | undefined {
  const byThread = new Map<string, Ev[]>();
  for (const e of events) {
    if (e.ph !== 'X' || e.cat === 'flow') continue;
    const k = `${e.pid}:${e.tid}`;
    (byThread.get(k) ?? byThread.set(k, []).get(k)!).push(e);
  }
  return (pid, tid, ts) => {
    let best: Ev | undefined;
    const t = ns(ts);
    for (const e of byThread.get(`${pid}:${tid}`) ?? []) {
      const a = ns(e.ts!);
      if (a <= t && t < a + ns(e.dur!) && (!best || a > ns(best.ts!) || (a === ns(best.ts!) && e.dur! < best.dur!))) best = e;
    }
    return best;
  };
}
