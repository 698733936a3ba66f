/**
 * A very long line costs work in proportion to its length, not to its square. Timing belongs in
 * `npm run bench` (16, 32 and 64 MB lines); here the work itself is counted, which does not depend
 * on the machine: the bytes the file reader allocates and the bytes searched for line ends, for
 * the byte reader (readFtraceBlocks) and the text parsers' `write()` (ftrace text, stap). Before
 * the fix every chunk recopied and rescanned the unfinished line (8 MB line: ~130 MB allocated).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Diagnostics } from '../src/model/diagnostics.js';
import type { TraceEvent } from '../src/model/event.js';
import { FtraceTextParser, readFtraceText } from '../src/parsers/ftrace-text.js';
import { StapParser } from '../src/parsers/stap.js';
import { ROOT } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

const dir = tempDir('kvmtrace-long-');
const MB = 1 << 20;

/** The real x86-tsc fixture with its first tracing_mark_write line's body made `extra` bytes longer. */
function withLongLine(extra: number): { text: Buffer; longBody: string; lines: number } {
  const lines = readFileSync(join(ROOT, 'fixtures', 'ftrace-text', 'x86tsc-trace.txt'), 'latin1').split('\n');
  const i = lines.findIndex((l) => l.includes('tracing_mark_write: '));
  const body = lines[i].slice(lines[i].indexOf('tracing_mark_write: ') + 'tracing_mark_write: '.length);
  const longBody = body + ' ' + 'x'.repeat(extra);
  lines[i] = lines[i].slice(0, lines[i].length - body.length) + longBody;
  return { text: Buffer.from(lines.join('\n'), 'latin1'), longBody, lines: lines.length };
}

afterEach(() => vi.restoreAllMocks());

describe('a long line is read in linear work', () => {
  it('readFtraceBlocks: an 8 MB line allocates about its size once and is searched for its end once', async () => {
    const { text, longBody } = withLongLine(8 * MB);
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
    expect(diags.count).toBe(0);
    expect(events.find((e) => e.name === 'tracing_mark_write')!.body).toBe(longBody);
    const allocated = allocs.reduce((a, b) => a + b, 0);
    expect(allocated, `allocated ${allocated} bytes for a ${text.length}-byte file`).toBeLessThan(text.length + 4 * MB);
    expect(searched, `searched ${searched} bytes for line ends`).toBeLessThanOrEqual(text.length);
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

  it('FtraceTextParser.write: a 4 MB line written in 64 KiB pieces is searched once', () => {
    const { text, longBody } = withLongLine(4 * MB);
    const p = new FtraceTextParser({ file: 'long', diags: new Diagnostics() });
    const { events, searched } = feed((s) => p.write(s), () => p.end(), text.toString('latin1'));
    expect(events.find((e) => e.name === 'tracing_mark_write')!.body).toBe(longBody);
    expect(searched).toBeLessThanOrEqual(2 * text.length);
  });

  it('the stap parser (LineParser.write): a 4 MB line written in 64 KiB pieces is searched once', () => {
    const stap = readFileSync(join(ROOT, 'fixtures', 'stap', 'guest-app.stap'), 'utf8').split('\n');
    const i = stap.findIndex((l) => /^\d+\t/.test(l));
    stap[i] += ' ' + 'y'.repeat(4 * MB);
    const text = stap.join('\n');
    const p = new StapParser({ file: 'long.stap', diags: new Diagnostics() });
    const { events, searched } = feed((s) => p.write(s), () => p.end(), text);
    expect(events[0].body.endsWith('y'.repeat(4 * MB))).toBe(true);
    expect(searched).toBeLessThanOrEqual(2 * text.length);
  });
});
