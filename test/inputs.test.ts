/**
 * What kvmtrace says about an input it cannot read: every command opens its inputs by one rule
 * (src/parsers/input.ts), so `report` says the same as `merge` about a folder, a FIFO (with or
 * without a writer: never blocking in open) and a kernel file whose read fails.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, constants, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { kvmtrace, ROOT } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

let dir: string;
beforeAll(() => {
  dir = tempDir('kvmtrace-inputs-');
});
const DAT = join(ROOT, 'fixtures', 'tracedat', 'v7-zstd-local.dat');

/** Runs a command with a time limit: one line on stderr, exit 2, no stack, no output. */
function refused(args: string[]): string {
  const r = kvmtrace(args, { timeoutMs: 20_000 });
  expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(2);
  expect(r.stderr).not.toMatch(/\n\s+at |internal error/);
  expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
  expect(r.stdout).toBe('');
  return r.stderr;
}

/** The errno a plain read of the first bytes of `path` fails with, or undefined when it reads. */
function readErrno(path: string): string | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    readSync(fd, Buffer.alloc(64), 0, 64, 0);
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

describe('report opens its input by the rule every command follows', () => {
  it('a folder: says it is a folder', () => {
    expect(refused(['report', dir])).toBe(`kvmtrace: ${dir} is a folder, not a trace file\n`);
  });

  it('a FIFO without a writer: refused at once, not waited on', () => {
    const fifo = join(dir, 'nowriter.fifo');
    spawnSync('mkfifo', [fifo]);
    for (const args of [['report', fifo], ['merge', '--host', fifo, '-o', join(dir, 'o.json')]])
      expect(refused(args)).toMatch(new RegExp(`^kvmtrace: ${fifo} is a pipe: .*write it to a file first\\n$`));
  });

  it('a FIFO with a writer of a valid trace.dat: says it is a pipe, not "not a trace.dat file"', () => {
    const fifo = join(dir, 'writer.fifo');
    spawnSync('mkfifo', [fifo]);
    // This process holds the FIFO open read-write (Linux does not block that) and has written the
    // start of a real trace.dat into it: a writer whose data waits in the pipe.
    const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
    try {
      writeSync(fd, readFileSync(DAT).subarray(0, 32768));
      const msg = refused(['report', fifo]);
      expect(msg).toMatch(new RegExp(`^kvmtrace: ${fifo} is a pipe: .*write it to a file first\\n$`));
      expect(msg).not.toMatch(/not a trace\.dat/);
    } finally {
      closeSync(fd);
    }
  });

  // Kernel files whose read fails: the failure is what is said, not "not a trace.dat file".
  const kernelFiles: [string, string][] = [
    ['/proc/self/mem', 'EIO'],
    ['/proc/self/attr/current', 'EINVAL'],
    ['/proc/self/clear_refs', 'EINVAL'],
  ];
  for (const [path, errno] of kernelFiles) {
    const got = readErrno(path);
    it.skipIf(got !== errno)(`${path} (read fails with ${errno}): says the read failed, with ${errno}`, () => {
      for (const args of [['report', path], ['merge', '--host', path, '-o', join(dir, 'o.json')]]) {
        const msg = refused(args);
        expect(msg).toMatch(new RegExp(`^kvmtrace: cannot read ${path} at byte 0: .*\\(${errno}\\b`));
        expect(msg).not.toMatch(/not a trace\.dat|unknown format/);
      }
    });
    if (got !== errno) console.log(`skipped: reading ${path} here gives ${got ?? 'bytes'}, not ${errno}`);
  }
});
