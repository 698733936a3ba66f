/**
 * Structural checks of a Chrome trace event JSON file, as Perfetto's importer needs it: events in
 * timestamp order, every pid and tid named, B/E slices balanced and nested per thread, `ts` with at
 * most 3 decimals.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';

interface Ev {
  ph: string;
  name?: string;
  ts?: number;
  pid: number;
  tid: number;
  args?: Record<string, unknown>;
}

/** Checks the file and returns counts for further assertions. */
export function checkChromeJson(path: string): { events: Ev[]; slices: Map<string, number>; threads: Map<string, string>; processes: Map<number, string> } {
  const text = readFileSync(path, 'utf8');
  const doc = JSON.parse(text) as { traceEvents: Ev[] };
  const processes = new Map<number, string>();
  const threads = new Map<string, string>();
  for (const e of doc.traceEvents) {
    if (e.ph === 'M' && e.name === 'process_name') processes.set(e.pid, String(e.args!.name));
    if (e.ph === 'M' && e.name === 'thread_name') threads.set(`${e.pid}:${e.tid}`, String(e.args!.name));
  }
  let lastTs = -Infinity;
  const open = new Map<string, string[]>();
  const slices = new Map<string, number>();
  // Problems are collected and asserted once (an expect per event would dominate the run time).
  const problems: string[] = [];
  const bad = (m: string): void => void (problems.length < 20 && problems.push(m));
  for (const e of doc.traceEvents) {
    if (e.ph === 'M') continue;
    const key = `${e.pid}:${e.tid}`;
    if (!processes.has(e.pid)) bad(`pid ${e.pid} has no process_name`);
    if (!threads.has(key)) bad(`thread ${key} has no thread_name`);
    if (!(e.ts! >= lastTs)) bad(`not sorted: ts ${e.ts} after ${lastTs}`);
    lastTs = e.ts!;
    if (Math.round(e.ts! * 1000) / 1000 !== e.ts) bad(`ts ${e.ts} has more than 3 decimals`);
    let stack = open.get(key);
    if (!stack) open.set(key, (stack = []));
    if (e.ph === 'B') {
      stack.push(e.name!);
      slices.set(e.name!, (slices.get(e.name!) ?? 0) + 1);
    } else if (e.ph === 'E') {
      if (stack.length === 0) bad(`E on ${key} at ${e.ts} closes no open slice`);
      stack.pop();
    } else if (!['i', 's', 't', 'f', 'C'].includes(e.ph)) bad(`unexpected phase ${e.ph}`);
  }
  for (const [k, s] of open) if (s.length) bad(`slices left open on ${k}: ${s.join(', ')}`);
  expect(problems).toEqual([]);
  // The raw text keeps ts to 3 decimals too (no float noise such as 0.30000000000000004).
  expect(/"ts":-?\d+\.\d{4,}/.test(text)).toBe(false);
  return { events: doc.traceEvents, slices, threads, processes };
}
