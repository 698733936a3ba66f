/**
 * A very long line costs work in proportion to its length, not to its square, and memory bounded
 * whatever its length: no trace event line is longer than a page, so a line past 1 MiB
 * (MAX_LINE_BYTES) is reported with its file, line and length, and skipped, never assembled.
 * Timing belongs in `npm run bench` (16, 32 and 64 MB lines); here the work itself is counted,
 * which does not depend on the machine: the bytes the file reader allocates and the bytes searched
 * for line ends, for the byte reader (readFtraceBlocks) and the text parsers' `write()` (ftrace
 * text, stap). Before the fix every chunk recopied and rescanned the unfinished line (8 MB line:
 * ~130 MB allocated), and a 64 MB line then ran a 128 MB heap out of memory.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Diagnostics } from '../src/model/diagnostics.js';
import type { TraceEvent } from '../src/model/event.js';
import { FtraceTextParser, readFtraceText } from '../src/parsers/ftrace-text.js';
import { MAX_LINE_BYTES } from '../src/parsers/line-parser.js';
import { StapParser } from '../src/parsers/stap.js';
import { ROOT } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

let dir: string;
beforeAll(() => {
  dir = tempDir('kvmtrace-long-');
});
const MB = 1 << 20;
const FIXTURE = join(ROOT, 'fixtures', 'ftrace-text', 'x86tsc-trace.txt');

/** The real x86-tsc fixture with its first tracing_mark_write line's body made `extra` bytes longer. */
function withLongLine(extra: number): { text: Buffer; longBody: string; lineNo: number; lineBytes: number } {
  const lines = readFileSync(FIXTURE, 'latin1').split('\n');
  const i = lines.findIndex((l) => l.includes('tracing_mark_write: '));
  const body = lines[i].slice(lines[i].indexOf('tracing_mark_write: ') + 'tracing_mark_write: '.length);
  const longBody = body + ' ' + 'x'.repeat(extra);
  lines[i] = lines[i].slice(0, lines[i].length - body.length) + longBody;
  return { text: Buffer.from(lines.join('\n'), 'latin1'), longBody, lineNo: i + 1, lineBytes: lines[i].length };
}

/** The events of the unchanged fixture (name, CPU, pid, body: timestamps are relative to the first event read). */
const key = (e: TraceEvent): string => `${e.name} ${e.cpu} ${e.pid} ${e.body}`;

async function fixtureEvents(): Promise<string[]> {
  const out: string[] = [];
  for await (const b of readFtraceText(FIXTURE, { diags: new Diagnostics() })) for (const e of b) out.push(key(e));
  return out;
}

afterEach(() => vi.restoreAllMocks());

describe('a long line is read in linear work and bounded memory', () => {
  it('readFtraceBlocks: an 8 MB line is reported with its line and length, skipped unassembled, and searched for its end once', async () => {
    const { text, lineNo, lineBytes } = withLongLine(8 * MB);
    const f = join(dir, 'long.txt');
    writeFileSync(f, text);
    const allocs: number[] = [];
    const alloc = Buffer.allocUnsafeSlow.bind(Buffer);
    vi.spyOn(Buffer, 'allocUnsafeSlow').mockImplementation((n: number) => (allocs.push(n), alloc(n)));
    let searched = 0;
    const lastIndexOf = Buffer.prototype.lastIndexOf;
    vi.spyOn(Buffer.prototype, 'lastIndexOf').mockImplementation(function (this: Buffer, ...args: unknown[]) {
      const from = args[1];
      const r = lastIndexOf.call(this, args[0] as number, from as number);
      const start = typeof from === 'number' ? Math.min(from, this.length - 1) : this.length - 1;
      searched += start - Math.max(r, 0) + 1;
      return r;
    });
    const events: TraceEvent[] = [];
    const diags = new Diagnostics();
    for await (const b of readFtraceText(f, { diags })) events.push(...b);
    vi.restoreAllMocks();
    expect(diags.list.map((d) => [d.line, d.message])).toEqual([[lineNo, `the line is ${lineBytes} bytes long, longer than any trace event line (at most 1 MiB): not read`]]);
    // Every other event is read, in order, exactly as from the unchanged file.
    const want = await fixtureEvents();
    const got = events.map(key);
    expect(got.length).toBe(want.length - 1);
    expect(got).toEqual(want.filter((x) => got.includes(x)));
    // The reader held at most 1 MiB of the line: it allocated read buffers and chunks, not the line.
    const allocated = allocs.reduce((a, b) => a + b, 0);
    expect(allocated, `allocated ${allocated} bytes for a ${text.length}-byte file`).toBeLessThan(text.length - 8 * MB + 4 * MB);
    expect(searched, `searched ${searched} bytes for line ends`).toBeLessThanOrEqual(text.length);
  });

  it('readFtraceBlocks: a line just under the bound is read whole', async () => {
    const { text, longBody } = withLongLine(MAX_LINE_BYTES - 4096);
    const f = join(dir, 'under.txt');
    writeFileSync(f, text);
    const diags = new Diagnostics();
    const events: TraceEvent[] = [];
    for await (const b of readFtraceText(f, { diags })) events.push(...b);
    expect(diags.count).toBe(0);
    expect(events.find((e) => e.name === 'tracing_mark_write')!.body).toBe(longBody);
  });

  /** Feeds `text` to `write()` in 64 KiB pieces, counting the characters String searches look at. */
  function feed(write: (s: string) => TraceEvent[], end: () => TraceEvent[], text: string): { events: TraceEvent[]; searched: number } {
    let searched = 0;
    const indexOf = String.prototype.indexOf;
    const lastIndexOf = String.prototype.lastIndexOf;
    vi.spyOn(String.prototype, 'indexOf').mockImplementation(function (this: string, ...args: unknown[]) {
      const [s, from] = args as [string, number | undefined];
      const r = indexOf.call(this, s, from);
      if (s === '\n') searched += (r < 0 ? this.length : r + 1) - (from ?? 0);
      return r;
    });
    vi.spyOn(String.prototype, 'lastIndexOf').mockImplementation(function (this: string, ...args: unknown[]) {
      const [s, from] = args as [string, number | undefined];
      const r = lastIndexOf.call(this, s, from);
      if (s === '\n') searched += (from ?? this.length) - Math.max(r, 0);
      return r;
    });
    const events: TraceEvent[] = [];
    try {
      for (let i = 0; i < text.length; i += 65536) events.push(...write(text.slice(i, i + 65536)));
      events.push(...end());
    } finally {
      vi.restoreAllMocks();
    }
    return { events, searched };
  }

  it('FtraceTextParser.write: a 4 MB line written in 64 KiB pieces is reported, skipped and searched once', async () => {
    const { text, lineNo, lineBytes } = withLongLine(4 * MB);
    const diags = new Diagnostics();
    const p = new FtraceTextParser({ file: 'long', diags });
    const { events, searched } = feed((s) => p.write(s), () => p.end(), text.toString('latin1'));
    expect(diags.list.map((d) => [d.line, d.message])).toEqual([[lineNo, `the line is ${lineBytes} bytes long, longer than any trace event line (at most 1 MiB): not read`]]);
    expect(events.length).toBe((await fixtureEvents()).length - 1);
    expect(searched).toBeLessThanOrEqual(2 * text.length);
  });

  it('the stap parser (LineParser.write): a 4 MB line written in 64 KiB pieces is reported, skipped and searched once', () => {
    const orig = readFileSync(join(ROOT, 'fixtures', 'stap', 'guest-app.stap'), 'utf8');
    const want = new StapParser({ file: 'orig.stap', diags: new Diagnostics() });
    const all = [...want.write(orig), ...want.end()];
    const stap = orig.split('\n');
    const i = stap.findIndex((l) => /^\d+\t/.test(l));
    stap[i] += ' ' + 'y'.repeat(4 * MB);
    const text = stap.join('\n');
    const diags = new Diagnostics();
    const p = new StapParser({ file: 'long.stap', diags });
    const { events, searched } = feed((s) => p.write(s), () => p.end(), text);
    expect(diags.list.map((d) => [d.line, d.message])).toEqual([[i + 1, `the line is ${stap[i].length} bytes long, longer than any trace event line (at most 1 MiB): not read`]]);
    expect(events.length).toBe(all.length - 1);
    expect(searched).toBeLessThanOrEqual(2 * text.length);
  });
});
