import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from './helpers/tmp.js';
import { Diagnostics } from '../src/model/diagnostics.js';
import { UserError } from '../src/model/errors.js';
import type { TraceEvent } from '../src/model/event.js';
import { FtraceTextParser, detectFtraceText, readFtraceBlocks, readFtraceText } from '../src/parsers/ftrace-text.js';
import { expectGolden } from './helpers/golden.js';
import { DOCA, externalMissing, reference } from './helpers/external.js';

const FIX = join(import.meta.dirname, '..', 'fixtures', 'ftrace-text');
const fixtures = readdirSync(FIX).filter((f) => f.endsWith('.txt'));

/** Parses bytes fed in chunks of `size` bytes through a UTF-8 decoder, as a file stream does. */
function parseBytes(buf: Buffer, size: number, file = 'x'): { events: TraceEvent[]; parser: FtraceTextParser; diags: Diagnostics } {
  const diags = new Diagnostics();
  const parser = new FtraceTextParser({ file, diags });
  const dec = new StringDecoder('utf8');
  const events: TraceEvent[] = [];
  for (let i = 0; i < buf.length; i += size) events.push(...parser.write(dec.write(buf.subarray(i, i + size))));
  events.push(...parser.write(dec.end()), ...parser.end());
  return { events, parser, diags };
}

const canon = (p: FtraceTextParser, e: TraceEvent): string =>
  `${p.header.base!.abs(e.ts)} ${e.cpu} ${e.comm}|${e.pid}|${e.tgid}|${e.flags}|${e.name}|${e.body}|${e.line}`;

/** The raw timestamp column of each event line, read with an independent regular expression. */
function rawTimestamps(text: string): string[] {
  const out: string[] = [];
  for (const l of text.split('\n')) {
    const m = /\[\d{3}\][^:]*?(\d+(?:\.\d+)?): /.exec(l);
    if (m && !l.startsWith('#')) out.push(m[1]);
  }
  return out;
}

describe('ftrace text fixtures recorded on this machine', () => {
  for (const f of fixtures) {
    describe(f, () => {
      const buf = readFileSync(join(FIX, f));
      const whole = parseBytes(buf, buf.length, f);

      it('parses every line, with no bad lines, and matches its golden summary', () => {
        const { events, parser, diags } = whole;
        expect(diags.count).toBe(0);
        expect(events.length).toBeGreaterThan(100);
        const byName: Record<string, number> = {};
        for (const e of events) byName[e.name] = (byName[e.name] ?? 0) + 1;
        const summary = {
          header: { clock: parser.header.clock, clockFrom: parser.header.clockFrom, cpus: parser.header.cpus, base: String(parser.header.base!.value) },
          stats: parser.stats,
          byName,
          first: events.slice(0, 3).map((e) => canon(parser, e)),
          last: events.slice(-3).map((e) => canon(parser, e)),
        };
        expectGolden(`ftrace-text/${f}.json`, JSON.stringify(summary, null, 1) + '\n');
      });

      it('counts as many events as the kernel says it wrote (trace files with a header)', () => {
        const m = /entries-in-buffer\/entries-written: (\d+)\/(\d+)/.exec(buf.toString());
        if (!m) return expect(f).toMatch(/pipe/); // trace_pipe has no header to compare with
        expect(whole.events.length).toBe(Number(m[1]));
      });

      it('keeps every timestamp exactly as printed', () => {
        const raw = rawTimestamps(buf.toString());
        const mine = whole.events.map((e) => {
          const abs = whole.parser.header.base!.abs(e.ts);
          if (whole.parser.header.clock === 'counter') return String(abs);
          const ns = abs.toString().padStart(10, '0');
          return `${BigInt(ns.slice(0, -9))}.${ns.slice(-9, raw[0].split('.')[1].length === 6 ? -3 : undefined)}`;
        });
        expect(mine).toEqual(raw);
      });

      it('gives the same events when fed 1 byte and 7 bytes at a time', () => {
        const ref = whole.events.map((e) => canon(whole.parser, e));
        for (const size of [1, 7]) {
          const r = parseBytes(buf, size, f);
          expect(r.events.map((e) => canon(r.parser, e))).toEqual(ref);
        }
      });

      it('is detected as ftrace text from its first bytes', () => {
        expect(detectFtraceText(buf.subarray(0, 4096).toString())).toBe(true);
      });
    });
  }
});

describe('edge cases (test/data/ftrace-edge.txt)', () => {
  const buf = readFileSync(join(import.meta.dirname, 'data', 'ftrace-edge.txt'));

  it('reads TSC values past 2^53 exactly, task names with spaces, prefixes, TGID and LOST lines', () => {
    const { events, parser, diags } = parseBytes(buf, 1, 'edge');
    const abs = events.map((e) => parser.header.base!.abs(e.ts));
    expect(abs).toEqual([123456789012345678n, 123456789012345679n, 123456789012349999n, 123456789112345678n, 123456789012345000n]);
    expect(events[0].comm).toBe('CPU 0/KVM');
    expect(events[0].pid).toBe(4242);
    expect(events[2].comm).toBe('<...>');
    expect(events[2].body).toContain('µs ✓');
    expect(events[3].comm).toBe('qemu-system-x86');
    expect(parser.prefixes.has('vm1')).toBe(true);
    expect(events[4]).toMatchObject({ comm: 'kworker/u8:2', pid: 123, tgid: 123, flags: '....' });
    expect(parser.header.lostEvents).toBe(17);
    expect(parser.header.cpus).toBe(4);
    // Bad lines are counted with their line numbers and what was expected; parsing went on.
    expect(diags.count).toBe(4);
    expect(diags.list.map((d) => d.line)).toEqual([9, 11, 12, 13]);
    expect(diags.list[1].message).toMatch(/expected .*timestamp/);
    expect(diags.list[2].message).toMatch(/more than 2\^53/);
  });

  it('stops at the first bad line with --strict', () => {
    const parser = new FtraceTextParser({ file: 'edge.txt', diags: new Diagnostics(true) });
    expect(() => parser.write(buf.toString())).toThrow(UserError);
    expect(() => new FtraceTextParser({ file: 'edge.txt', diags: new Diagnostics(true) }).write(buf.toString())).toThrow(/edge\.txt:9: expected an ftrace event line/);
  });

  it('attaches kernel stack frames to their <stack trace> event', () => {
    const { events } = parseBytes(readFileSync(join(FIX, 'mono-stack.txt')), 4096);
    const st = events.filter((e) => e.name === 'stack_trace');
    expect(st.length).toBeGreaterThan(0);
    for (const e of st) expect(e.body).toMatch(/^=> \S+( => \S+)*$/);
  });
});

describe.skipIf(externalMissing)('trace-cmd report text of the real docA recordings', () => {
  it('reads the guest (raw TSC) with only trace-cmd\'s multi-line continuation lines reported', async () => {
    const diags = new Diagnostics();
    let p!: FtraceTextParser;
    let n = 0;
    for await (const b of readFtraceText(reference('docA-guest-trace-Salamander4.dat.report-rawts.txt'), { diags }, (x) => (p = x))) n += b.length;
    const text = readFileSync(reference('docA-guest-trace-Salamander4.dat.report-rawts.txt'), 'utf8');
    const lines = text.split('\n').filter((l) => l.length);
    // Every line is either the cpus= header, an event, or a reported bad line: nothing silently dropped.
    expect(1 + n + diags.count).toBe(lines.length);
    for (const d of diags.list) expect(lines[d.line! - 1]).toMatch(/^[0-9a-f]{3}: /);
    expect(p.header.cpus).toBe(1);
    expect(DOCA.vcpuThread).toBe(483882);
  });
});

describe('reading files (readFtraceText)', () => {
  it('gives the same events as the byte-fed parser across chunk boundaries, UTF-8 and lines longer than a chunk; a cut-off last line is reported', async () => {
    const dir = tempDir('kvmtrace-read-');
    const lines: string[] = [];
    for (let i = 0; i < 3000; i++)
      lines.push(`        bash-${100 + (i % 7)}   [001] ..... ${1_000_000 + i}: tracing_mark_write: marker ${i} — µs ✓ ${'é'.repeat(i % 40)}`);
    // 600 kB: longer than the reader's 256 KiB chunks.
    lines.push(`        bash-1   [001] ..... 2000000: tracing_mark_write: ${'long '.repeat(120_000)}`);
    // Cut off in its body: its event is not taken with a truncated body, the line is reported.
    lines.push('        bash-1   [001] ..... 2000001: tracing_mark_write: no newline at the e');
    const text = lines.join('\n');
    writeFileSync(join(dir, 'm.txt'), text);
    const ref = parseBytes(Buffer.from(text), 4096, 'm');
    const got: TraceEvent[] = [];
    let p!: FtraceTextParser;
    const diags = new Diagnostics();
    for await (const b of readFtraceText(join(dir, 'm.txt'), { diags }, (x) => (p = x))) got.push(...b);
    expect(got.length).toBe(3001);
    for (const d of [diags, ref.diags]) {
      expect(d.count).toBe(1);
      expect(d.list[0]).toMatchObject({ line: 3002, message: expect.stringMatching(/^the last line ends without a newline: it was cut off/) });
    }
    expect(got.map((e) => canon(p, e))).toEqual(ref.events.map((e) => canon(ref.parser, e)));
    expect(got[2999].body.endsWith('é'.repeat(2999 % 40))).toBe(true);
    expect(got[3000].body).toBe('long '.repeat(120_000));
  });

  it('keeps ASCII bodies as byte ranges of their chunk, the same across chunk boundaries', async () => {
    const dir = tempDir('kvmtrace-read-');
    const lines: string[] = [];
    for (let i = 0; i < 12_000; i++) lines.push(` qemu-system-x86-${4242 + (i % 3)} [00${i % 4}]${64642412873143 + i * 977}: kvm_exit: reason EPT_MISCONFIG rip 0x${i.toString(16)} info 0 0`);
    lines.splice(6000, 0, ` qemu-system-x86-4242 [000]64642418873143: tracing_mark_write: ${'x'.repeat(300_000)}`);
    const text = lines.join('\n') + '\n';
    writeFileSync(join(dir, 'a.txt'), text);
    const ref = parseBytes(Buffer.from(text), 65_537, 'a');
    const got: TraceEvent[] = [];
    let blocks = 0;
    let ranges = 0;
    let p!: FtraceTextParser;
    for await (const b of readFtraceBlocks(join(dir, 'a.txt'), { diags: new Diagnostics() }, (x) => (p = x))) {
      blocks++;
      for (let r = 0; r < b.n; r++) if (b.bodyText?.[r] === undefined) ranges++;
      got.push(...b.events());
    }
    expect(blocks).toBeGreaterThan(2);
    expect(ranges).toBe(12_001);
    expect(got.map((e) => canon(p, e))).toEqual(ref.events.map((e) => canon(ref.parser, e)));
    expect(got[6000].body).toBe('x'.repeat(300_000));
  });
});
