import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Diagnostics } from '../src/model/diagnostics.js';
import { UserError } from '../src/model/errors.js';
import type { TraceEvent } from '../src/model/event.js';
import { detectStap, openStap, parseStap, readStap, StapParser } from '../src/parsers/stap.js';
import { detectFormat } from '../src/parsers/detect.js';

const GUEST = 'fixtures/stap/guest-app.stap';
const BROKEN = 'fixtures/stap/broken.stap';

/** The data lines of a stap file split by tab, with their 1-based line numbers (the oracle). */
function rawLines(path: string): { no: number; cols: string[] }[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .map((l, i) => ({ no: i + 1, cols: l.split('\t') }))
    .filter((r) => r.cols.length >= 7 && !r.cols[0].startsWith('#'));
}

function parseChunked(buf: Buffer, size: number, file: string): { events: TraceEvent[]; parser: StapParser; diags: Diagnostics } {
  const diags = new Diagnostics();
  const parser = new StapParser({ file, diags });
  const events: TraceEvent[] = [];
  for (let i = 0; i < buf.length; i += size) events.push(...parser.write(buf.subarray(i, i + size)));
  events.push(...parser.end());
  return { events, parser, diags };
}

describe('stap parser on recorded guest-app output', () => {
  const text = readFileSync(GUEST, 'utf8');
  const diags = new Diagnostics();
  const { events, parser } = parseStap(text, { file: GUEST, diags });

  it('reads every line as an event, exact to the cycle', () => {
    const raw = rawLines(GUEST);
    expect(raw.length).toBeGreaterThan(40);
    expect(events.length).toBe(raw.length);
    expect(diags.count).toBe(0);
    const base = parser.header.base!;
    expect(base.value).toBe(BigInt(raw[0].cols[0]));
    for (let i = 0; i < raw.length; i++) {
      const e = events[i];
      const c = raw[i].cols;
      expect(base.abs(e.ts)).toBe(BigInt(c[0]));
      expect([e.cpu, e.pid, e.tgid, e.comm, e.name, e.body, e.line]).toEqual([
        Number(c[1]), Number(c[2]), Number(c[3]), c[4], c[5], c.slice(6).join('\t'), raw[i].no,
      ]);
    }
  });

  it('takes the clock and the header fields from the header line', () => {
    expect(parser.header.clock).toBe('x86-tsc');
    expect(parser.header.clockFrom).toBe('header');
    expect(parser.meta).toMatchObject({ side: 'guest', script: 'stamp/guest-app', clock: 'get_cycles' });
    expect(parser.stats).toMatchObject({ events: events.length, headerLines: 1, badLines: 0 });
  });

  it('keeps per-CPU order (each CPU buffer is in TSC order) and both CPUs appear', () => {
    const last = new Map<number, number>();
    for (const e of events) {
      expect(e.ts).toBeGreaterThanOrEqual(last.get(e.cpu) ?? -Infinity);
      last.set(e.cpu, e.ts);
    }
    expect(last.size).toBe(2);
    expect(new Set(events.map((e) => e.comm))).toContain('worker 1');
  });

  it('gives the same events whatever the chunk size, down to one byte', () => {
    const buf = readFileSync(GUEST);
    for (const size of [1, 2, 7, 64, 4096]) {
      const r = parseChunked(buf, size, GUEST);
      expect(r.events).toEqual(events);
      expect(r.diags.count).toBe(0);
    }
  });

  it('streams the file through readStap', async () => {
    const all: TraceEvent[] = [];
    let p: StapParser | undefined;
    for await (const b of readStap(GUEST, { diags: new Diagnostics() }, (x) => (p = x))) all.push(...b);
    expect(all).toEqual(events);
    expect(p!.header.base!.value).toBe(parser.header.base!.value);
  });

  it('opens as a merge source whose header is there before the first batch and fills in while reading', async () => {
    const src = openStap(GUEST, { diags: new Diagnostics() });
    const header = src.parser.header;
    expect(header).toMatchObject({ file: GUEST, clock: 'x86-tsc', clockFrom: 'header', base: undefined });
    const all: TraceEvent[] = [];
    for await (const b of src.batches) all.push(...b);
    expect(all).toEqual(events);
    expect(header.base!.value).toBe(parser.header.base!.value);
    expect(src.parser.stats.events).toBe(events.length);
  });
});

describe('stap parser on bad input', () => {
  const buf = readFileSync(BROKEN);
  const diags = new Diagnostics();
  const { events, parser } = parseStap(buf, { file: BROKEN, diags });

  it('turns each bad line into a diagnostic with file and line, and goes on', () => {
    const lines = diags.list.map((d) => [d.file, d.line]);
    expect(lines).toEqual([
      [BROKEN, 4],
      [BROKEN, 5],
      [BROKEN, 6],
      [BROKEN, 7],
      [BROKEN, 8],
      [BROKEN, 12],
    ]);
    expect(diags.list[0].message).toMatch(/7 tab-separated columns/);
    expect(diags.list[1].message).toMatch(/expected the TSC/);
    expect(diags.list[2].message).toMatch(/CPU number/);
    expect(diags.list[3].message).toMatch(/event name without spaces/);
    expect(diags.list[4].message).toMatch(/systemtap reported: ERROR: read fault/);
    expect(diags.list[5].message).toMatch(/^the last line ends without a newline: it was cut off/);
    expect(events.map((e) => e.line)).toEqual([3, 9, 10]);
  });

  it('keeps UTF-8 names whole even when a chunk splits a character', () => {
    expect(events[1].comm).toBe('qemu-système');
    expect(events[1].body).toBe('func=blk_aio_prwv note=µs');
    const r = parseChunked(buf, 1, BROKEN);
    expect(r.events).toEqual(events);
    expect(r.diags.count).toBe(diags.count);
  });

  it('counts skipped probes from a merged stap warning as lost events; a last line without newline is cut off, not an event', () => {
    expect(parser.header.lostEvents).toBe(3);
    expect(parser.stats.stapMessages).toBe(1);
    expect(events.some((e) => e.line === 12)).toBe(false);
  });

  it('fails on the first bad line when strict, naming file and line', () => {
    expect(() => parseStap(buf, { file: BROKEN, diags: new Diagnostics(true) })).toThrow(UserError);
    expect(() => parseStap(buf, { file: BROKEN, diags: new Diagnostics(true) })).toThrow(`${BROKEN}:4:`);
  });

  it('keeps the scripts\' comment lines with their line numbers', () => {
    expect(parser.comments).toEqual([{ line: 2, text: 'a comment line' }]);
  });

  it('rejects a header of another format version', () => {
    const d = new Diagnostics();
    parseStap('# kvmtrace-stap 2 side=host\n', { file: 'x.stap', diags: d });
    expect(d.list[0]).toMatchObject({ file: 'x.stap', line: 1 });
    expect(d.list[0].message).toMatch(/format 1/);
  });
});

describe('exact TSC values beyond 2^53', () => {
  it('keeps every cycle of u64 TSCs', () => {
    const tscs = ['18446744073709551000', '18446744073709551001', '18446744073709551615'];
    const text = tscs.map((t, i) => `${t}\t0\t1\t1\tx\tev\tn=${i}\n`).join('');
    const { events, parser } = parseStap(text, { file: 'big', diags: new Diagnostics() });
    expect(events.map((e) => parser.header.base!.abs(e.ts))).toEqual(tscs.map(BigInt));
    expect(events.map((e) => e.ts)).toEqual([0, 1, 615]);
  });

  it('refuses a TSC more than 2^53 cycles away from the first one instead of rounding', () => {
    const d = new Diagnostics();
    const { events } = parseStap('1\t0\t1\t1\tx\tev\t\n18446744073709551615\t0\t1\t1\tx\tev\t\n', { file: 'far', diags: d });
    expect(events.length).toBe(1);
    expect(d.list[0]).toMatchObject({ file: 'far', line: 2 });
  });
});

describe('detection', () => {
  it('knows stap output with and without its header line', () => {
    const text = readFileSync(GUEST, 'utf8');
    expect(detectStap(text)).toBe(true);
    expect(detectStap(text.slice(text.indexOf('\n') + 1))).toBe(true);
    expect(detectStap('')).toBe(false);
  });

  it('is chosen by detectFormat from content, and ftrace text is not mistaken for it', async () => {
    expect(await detectFormat(GUEST)).toBe('stap');
    expect(await detectFormat(BROKEN)).toBe('stap');
    const dir = 'fixtures/ftrace-text';
    const files = readdirSync(dir).filter((f) => f.endsWith('.txt'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      expect(detectStap(readFileSync(`${dir}/${f}`, 'utf8').slice(0, 16384))).toBe(false);
      expect(await detectFormat(`${dir}/${f}`)).not.toBe('stap');
    }
  });
});
