/**
 * What kvmtrace writes about bad input is plain one-line text: bytes of the input (a NUL, a
 * terminal escape) are escaped and long pieces cut short, and a last line cut off mid-field is
 * reported as such instead of being read as an event with a truncated field. Inputs are real
 * fixtures with one thing changed.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/model/errors.js';
import { kvmtrace, ROOT } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

let dir: string;
beforeAll(() => {
  dir = tempDir('kvmtrace-diagtext-');
});
const FTRACE = join(ROOT, 'fixtures', 'ftrace-text', 'x86tsc-trace.txt');
/** Control characters other than the newlines that end stderr's lines. */
const RAW_CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/;

/** The lines of the real x86-tsc ftrace fixture. */
function fixtureLines(): string[] {
  return readFileSync(FTRACE, 'latin1').split('\n');
}

describe('input bytes in messages are escaped and cut short', () => {
  // (A line holding a NUL is damaged as a whole, however the rest parses: the bad-input suite.)
  it('a control byte and a terminal escape in ftrace text timestamps: listed with \\x01 and \\x1b, no raw control byte', () => {
    const lines = fixtureLines();
    const evs = lines.map((l, i) => [l, i] as const).filter(([l]) => /\[\d{3}\] \S+ \d+: /.test(l));
    const [a, ai] = evs[3];
    const [b, bi] = evs[7];
    lines[ai] = a.replace(/ (\d)(\d+): /, ' $1\x01$2: ');
    lines[bi] = b.replace(/ (\d+): /, ' \x1b[2J\x1b[31m$1: ');
    const f = join(dir, 'ctl.txt');
    writeFileSync(f, lines.join('\n'), 'latin1');
    const r = kvmtrace(['merge', '--host', f, '--host-clock', 'x86-tsc', '--text', join(dir, 'ctl.out.txt')]);
    expect(r.stderr).not.toMatch(RAW_CONTROL);
    expect(r.stderr).toContain(`${f}:${ai + 1}: expected a timestamp (integer counter or seconds with 6 or 9 decimals), found "1\\x01`);
    expect(r.stderr).toContain(`${f}:${bi + 1}: expected a timestamp (integer counter or seconds with 6 or 9 decimals), found "\\x1b[2J\\x1b[31m`);
    const s = kvmtrace(['merge', '--strict', '--host', f, '--host-clock', 'x86-tsc', '--text', join(dir, 'ctl.out2.txt')]);
    expect(s.status).toBe(2);
    expect(s.stderr).toBe(`kvmtrace: ${f}:${ai + 1}: expected a timestamp (integer counter or seconds with 6 or 9 decimals), found "1\\x01${a.match(/ \d(\d+): /)![1]}"\n`);
  });

  it('a half-megabyte-long bad field is quoted by its first 80 characters and its length', () => {
    const lines = fixtureLines();
    const i = lines.findIndex((l) => /\[\d{3}\] \S+ \d+: /.test(l));
    lines[i] = lines[i].replace(/ (\d+): /, ` ${'7x'.repeat(1 << 18)}$1: `);
    const f = join(dir, 'longtok.txt');
    writeFileSync(f, lines.join('\n'), 'latin1');
    const r = kvmtrace(['merge', '--strict', '--host', f, '--host-clock', 'x86-tsc', '--text', join(dir, 'longtok.out.txt')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^kvmtrace: ${f}:${i + 1}: expected a timestamp .*found "(7x){40}… \\(${(1 << 19) + lines[i].match(/x(\d+): /)![1].length} bytes\\)"\\n$`));
  });

  it('a trace.dat version string with a terminal escape: quoted with \\x1b', () => {
    const b = Buffer.from(readFileSync(join(ROOT, 'fixtures', 'tracedat', 'v7-zstd-local.dat')));
    // The version string follows the 10-byte magic.
    b.write('\x1b[2J\0', 10, 'latin1');
    const f = join(dir, 'ver.dat');
    writeFileSync(f, b);
    const r = kvmtrace(['report', f]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`kvmtrace: ${f} at byte 10: trace.dat version "\\x1b[2J" is not supported (6 and 7 are)\n`);
  });

  it('every UserError is one line of text', () => {
    expect(new UserError('a\0b\x1b[0m\r\nc').message).toBe('a\\x00b\\x1b[0m\\r\\nc');
  });
});

describe('a last line cut off mid-field', () => {
  it('ftrace text truncated in the middle of its last event: reported as cut off, not read as an event with a short field', () => {
    const text = readFileSync(FTRACE, 'latin1');
    const lines = text.split('\n').filter(Boolean);
    const last = lines[lines.length - 1];
    // Cut inside the last field (next_prio=120 → next_prio=1).
    const cut = text.slice(0, text.lastIndexOf(last) + last.length - 2);
    const f = join(dir, 'cut.txt');
    writeFileSync(f, cut, 'latin1');
    const out = join(dir, 'cut.out.txt');
    const whole = join(dir, 'whole.out.txt');
    const r = kvmtrace(['merge', '--host', f, '--host-clock', 'x86-tsc', '--text', out]);
    expect(r.stderr).toContain(`${f}:${lines.length}: the last line ends without a newline: it was cut off (truncated file, or one still being written?) and is not read`);
    kvmtrace(['merge', '--host', FTRACE, '--host-clock', 'x86-tsc', '--text', whole]);
    const got = readFileSync(out, 'utf8').trimEnd().split('\n');
    const all = readFileSync(whole, 'utf8').trimEnd().split('\n');
    // The merged text of the cut file is that of the whole file without its last event.
    expect(got).toEqual(all.slice(0, -1));
    expect(all.at(-1)).toMatch(/next_prio=120$/);
  });
});
