/**
 * Outputs through the built CLI on the real fixtures: a standard output that fills up, an output
 * that is one of the inputs or another output, and a merge ended by a signal half-way. Each run
 * must end in one sentence (or by the signal), leave no temporary file and change no input.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, constants, copyFileSync, cpSync, existsSync, linkSync, openSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './helpers/tmp.js';
import { kvmtrace, ROOT } from './helpers/cli.js';

const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const PVM = join(ROOT, 'fixtures', 'pvm-1vcpu');
const HOST = join(PVM, 'host');
const GUEST = join(PVM, 'guest');
let dir: string;
beforeAll(() => {
  dir = tempDir('kvmtrace-outputs-');
});
const noStack = (s: string): void => expect(s).not.toMatch(/\n\s+at .+:\d+:\d+|internal error/);
/** Hidden temporary outputs (`.NAME.PID.tmp`) left in a folder. */
const leftovers = (d: string): string[] => readdirSync(d).filter((f) => /^\..*\.\d+\.tmp$/.test(f));

/** Runs kvmtrace with its standard output on /dev/full (every write fails with ENOSPC). */
function toFullDevice(args: string[]): { status: number | null; stderr: string } {
  const full = openSync('/dev/full', 'w');
  try {
    const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', full, 'pipe'], encoding: 'utf8' });
    return { status: r.status, stderr: r.stderr };
  } finally {
    closeSync(full);
  }
}

describe('a standard output that fills up ends every command with one sentence and status 2', () => {
  const FULL = 'kvmtrace: cannot write to standard output: no space left on device\n';
  const commands: [string, string[]][] = [
    ['report', ['report', join(ROOT, 'fixtures', 'tracedat', 'v7-kvm.dat')]],
    ['exits', ['exits', HOST, GUEST]],
    ['check', ['check', HOST, GUEST]],
    ['latency', ['latency', HOST, GUEST, '--from', 'guest:marker', '--to', 'host:kvm_pio']],
    ['view --print', ['view', HOST, GUEST, '--print']],
    ['merge --text -', ['merge', HOST, GUEST, '--text', '-']],
    ['guest-script', ['guest-script']],
    ['--help', ['merge', '--help']],
  ];
  it.each(commands)('%s', (_name, args) => {
    const r = toFullDevice(args);
    expect(r.status).toBe(2);
    expect(r.stderr.endsWith(FULL)).toBe(true);
    noStack(r.stderr);
  });

  it('merge -o FILE --text -: the file output is not written and no temporary file is left', () => {
    const out = join(dir, 'full.json');
    const r = toFullDevice(['merge', HOST, GUEST, '-o', out, '--text', '-']);
    expect(r.status).toBe(2);
    expect(r.stderr.endsWith(FULL)).toBe(true);
    expect(readdirSync(dir).filter((f) => f.includes('full.json'))).toEqual([]);
  });

  it('an output file on a full device is named as given', () => {
    const r = kvmtrace(['merge', HOST, GUEST, '--text', '/dev/full']);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('kvmtrace: cannot write /dev/full: no space left on device\n');
  });
});

describe('outputs that would destroy an input or each other are refused before anything is written', () => {
  /** A copy of the bundled capture, and a fingerprint of every file in it. */
  function bundleCopy(name: string): { host: string; guest: string; unchanged: () => void } {
    const d = join(dir, name);
    cpSync(PVM, d, { recursive: true });
    const files = ['host/trace.txt', 'host/meta.json', 'guest/trace.txt', 'guest/meta.json'].map((f) => join(d, f));
    const before = files.map((f) => [readFileSync(f, 'latin1'), statSync(f).mtimeMs]);
    return {
      host: join(d, 'host'),
      guest: join(d, 'guest'),
      unchanged: () => {
        expect(files.map((f) => [readFileSync(f, 'latin1'), statSync(f).mtimeMs])).toEqual(before);
        for (const s of ['', 'host', 'guest']) expect(leftovers(join(d, s))).toEqual([]);
      },
    };
  }

  it('an output that is a bare input file (--host h.txt --text h.txt)', () => {
    const h = join(dir, 'h.txt');
    copyFileSync(join(ROOT, 'fixtures', 'ftrace-text', 'x86tsc-trace.txt'), h);
    const before = readFileSync(h, 'latin1');
    const r = kvmtrace(['merge', '--host', h, '--text', h]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`kvmtrace: ${h} is an input of this run: the text output would replace it; give another file\n`);
    expect(readFileSync(h, 'latin1')).toBe(before);
    expect(leftovers(dir)).toEqual([]);
  });

  it("an output that is one of a bundle's files: its trace, its meta.json, a link to it", () => {
    const b = bundleCopy('b1');
    const sym = join(dir, 'sym.txt');
    const hard = join(dir, 'hard.txt');
    symlinkSync(join(b.guest, 'trace.txt'), sym);
    linkSync(join(b.host, 'trace.txt'), hard);
    const cases: [string[], RegExp][] = [
      [['--text', join(b.host, 'trace.txt')], /host\/trace\.txt is an input of this run: the text output would replace it/],
      [['-o', join(b.guest, 'meta.json')], /guest\/meta\.json is an input of this run: the Chrome JSON output would replace it/],
      [['--summary', sym], /sym\.txt is an input of this run \(.*b1\/guest\/trace\.txt\): the validation summary would replace it/],
      [['--text', hard], /hard\.txt is an input of this run \(.*b1\/host\/trace\.txt\): the text output would replace it/],
    ];
    for (const [outs, re] of cases) {
      const r = kvmtrace(['merge', b.host, b.guest, ...outs]);
      expect(r.status, outs.join(' ')).toBe(2);
      expect(r.stderr).toMatch(re);
      expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    }
    b.unchanged();
  });

  it('two outputs on standard output (-o - --text -)', () => {
    const r = kvmtrace(['merge', HOST, GUEST, '-o', '-', '--text', '-']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('kvmtrace: the Chrome JSON output and the text output would both go to standard output (-): give all but one of them a file\n');
  });

  it('two outputs that are one file (-o x --text x), also through a link', () => {
    const x = join(dir, 'same.out');
    const r = kvmtrace(['merge', HOST, GUEST, '-o', x, '--text', x]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`kvmtrace: the Chrome JSON output and the text output are the same file (${x}): give each output its own file\n`);
    writeFileSync(join(dir, 'target.out'), 'keep');
    symlinkSync(join(dir, 'target.out'), join(dir, 'alias.out'));
    const l = kvmtrace(['merge', HOST, GUEST, '--text', join(dir, 'target.out'), '--summary', join(dir, 'alias.out')]);
    expect(l.status).toBe(2);
    expect(l.stderr).toMatch(/the text output and the validation summary are the same file .*alias\.out/);
    expect(readFileSync(join(dir, 'target.out'), 'utf8')).toBe('keep');
    expect(readdirSync(dir).filter((f) => f.startsWith('same.out') || /^\.(same|target|alias)\.out/.test(f))).toEqual([]);
  });

  it('an output that is a folder, and an output in a missing folder, are named as given (never the temporary file)', () => {
    const f = kvmtrace(['merge', HOST, GUEST, '-o', dir]);
    expect(f.status).toBe(2);
    expect(f.stderr).toBe(`kvmtrace: ${dir} is a folder: give a file name for the Chrome JSON output\n`);
    const missing = join(dir, 'no-such-folder', 't.txt');
    const m = kvmtrace(['merge', HOST, GUEST, '--text', missing]);
    expect(m.status).toBe(2);
    expect(m.stderr).toBe(`kvmtrace: cannot write ${missing}: no such file or directory\n`);
  });
});

/**
 * An input large enough to merge for a while: the real tracefs capture `x86tsc-pipe.txt` replayed
 * `copies` times, each copy's timestamps moved past the previous copy's (the file stays in order).
 */
function replay(copies: number): string {
  const out = join(dir, `replay-${copies}.txt`);
  if (existsSync(out)) return out;
  const lines = readFileSync(join(ROOT, 'fixtures', 'ftrace-text', 'x86tsc-pipe.txt'), 'latin1').split('\n').filter(Boolean);
  const re = /^(.*?\]\s+\S+\s+)(\d+)(: .*)$/;
  const ts = lines.flatMap((l) => (re.exec(l) ? [BigInt(re.exec(l)![2])] : []));
  const span = ts.reduce((a, b) => (b > a ? b : a)) - ts.reduce((a, b) => (b < a ? b : a)) + 1n;
  const fd = openSync(out, 'w');
  for (let k = 0n; k < BigInt(copies); k++) {
    const text = lines.map((l) => {
      const m = re.exec(l);
      return m ? `${m[1]}${BigInt(m[2]) + k * span}${m[3]}` : l;
    });
    writeFileSync(fd, text.join('\n') + '\n');
  }
  closeSync(fd);
  return out;
}

describe('a merge ended by SIGINT or SIGTERM half-way', () => {
  it.each(['SIGINT', 'SIGTERM'] as const)('%s: removes its temporary files and dies of the signal (status 128 + N in a shell)', async (sig) => {
    const input = replay(10); // ~124,000 events
    const d = tempDir('kvmtrace-signal-');
    const fifo = join(d, 'text.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    // The text goes into a FIFO whose reader never reads: once the pipe is full the merge waits
    // there, half-way, for as long as it takes; no race with the end of the merge.
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const child = spawn(process.execPath, [CLI, 'merge', '--host', input, '--tsc-khz', '2000000', '-o', join(d, 'out.json'), '--text', fifo], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
      const ended = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_code, signal) => r(signal)));
      // Wait until the JSON output's temporary file exists and has grown.
      for (;;) {
        const tmp = readdirSync(d).find((f) => f.startsWith(`.out.json.${child.pid}.`));
        if (tmp && statSync(join(d, tmp)).size >= 1 << 20) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      child.kill(sig);
      expect(await ended).toBe(sig);
      expect(readdirSync(d).sort()).toEqual(['text.fifo']); // no temporary file, no half output
      noStack(stderr);
    } finally {
      closeSync(reader);
    }
  }, 120_000);
});
