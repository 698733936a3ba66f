/**
 * Runs the built CLI on bad input with a time bound, and checks what every such run must hold
 * (the rules are written out in test/bad-input.test.ts's header): the exit status, stderr, and
 * that no file was left behind or changed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from './cli.js';

const MAIN = join(ROOT, 'dist', 'cli', 'main.js');

/**
 * The CLI as users run it: with the node flags of its shebang (its memory caps), read from the
 * source the build copies it from, when a run starts (collecting the tests needs no build).
 */
function cli(): string[] {
  const first = readFileSync(join(ROOT, 'src', 'cli', 'main.ts'), 'utf8').split('\n', 1)[0];
  const flags = /\bnode\b(.*)$/.exec(first)?.[1].trim().split(/\s+/).filter(Boolean) ?? [];
  return [...flags, MAIN];
}

/** What a run did. */
export interface RunResult {
  /** Exit status, or null when a signal ended the process. */
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when the run outlived its time bound and was killed. */
  hung: boolean;
}

/** Keeps at most this much of a run's stdout (a report of a big file is not needed whole). */
const KEEP = 1 << 20;

/**
 * Runs `kvmtrace ARGS…` and kills it (SIGKILL, by its pid) when it outlives `timeoutMs`.
 * `stdout` is captured, or a file descriptor to write to (e.g. /dev/full). `started` gets the
 * child, for tests that signal it.
 */
export function runBounded(
  args: string[],
  o: { timeoutMs: number; stdout?: number; started?: (c: ChildProcess) => void },
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...cli(), ...args], { cwd: ROOT, stdio: ['ignore', o.stdout ?? 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let kept = 0;
    child.stdout?.on('data', (b: Buffer) => {
      if (kept < KEEP) out.push(b);
      kept += b.length;
    });
    child.stderr!.on('data', (b: Buffer) => void err.push(b));
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      child.kill('SIGKILL');
    }, o.timeoutMs);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, hung, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    o.started?.(child);
  });
}

/** A folder's content: relative path → 'dir', 'fifo', 'link → target' or the file's sha256. */
export type Snapshot = Map<string, string>;

/** Lists a folder recursively with a hash of each file (FIFOs and sockets are never opened). */
export function snapshot(dir: string): Snapshot {
  const s: Snapshot = new Map();
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const rel = relative(dir, p);
      const st = lstatSync(p);
      if (st.isDirectory()) {
        s.set(rel, 'dir');
        walk(p);
      } else if (st.isSymbolicLink()) s.set(rel, `link → ${readlinkSync(p)}`);
      else if (st.isFile()) s.set(rel, createHash('sha256').update(readFileSync(p)).digest('hex'));
      else s.set(rel, st.isFIFO() ? 'fifo' : 'special');
    }
  };
  walk(dir);
  return s;
}

/** What a run may do, by exit status (see the rules in test/bad-input.test.ts). */
export type Accept =
  /** Only exit 2: the input cannot be used at all. */
  | 'error'
  /** Exit 2, or 0/1 saying (naming the file) what was skipped. */
  | 'damaged'
  /** As 'damaged', and 0/1 without a word: the damage may leave a valid input (a flipped bit in a value). */
  | 'maybe-valid'
  /**
   * 0/1 saying what was skipped: the file's structure is whole, some of its data is not. Exit 2
   * only when nothing readable is left, with its one sentence saying what was skipped.
   */
  | 'partial'
  /** As 'partial', and 0/1 without a word (damaged data that may still decode). */
  | 'maybe-partial'
  /** Exit 0 with nothing skipped: the input is still a valid trace. */
  | 'valid';

/** One command run on one bad input. */
export interface Run {
  args: string[];
  /** The file or folder a complaint must name. */
  culprit: string;
  accept: Accept;
  /** Files the command was asked to write: they may appear or be replaced when it exits 0 or 1. */
  outputs?: string[];
  /** A known defect of issue 12 this run fails on until its fix is merged (for the report). */
  defect?: string;
  /** Checks of this case beyond the rules; returns the problems. */
  also?: (r: RunResult) => string[];
}

/** Words that say something was left out of a run that still completed. */
const SKIPPED = /unparsable|skipped|damaged|cut off|truncated|out of order|LOST/i;
/** Signs of a crash rather than a sentence: a stack frame, Node's own error print-out. */
const CRASH = /^\s+at |internal error|^\w*Error\b|^Uncaught|^Node\.js v\d|^node:/m;
/** Wording from inside kvmtrace or its libraries, which tells a user nothing: a library's error
 * number, a Buffer's limit, the name of a hidden temporary file. */
const JARGON = /error code \d{5,}|Cannot create a Buffer|\/\.[^/\s]+\.\d+\.tmp\b/;
/** Bytes that have no place in a message: C0 controls other than tab and newline, DEL. */
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/;

/** The first 300 characters of a text, for messages. */
const clip = (s: string): string => JSON.stringify(s.length > 300 ? s.slice(0, 300) + '…' : s);

/** Signs in stderr of a crash (a stack, Node's own print-out) or of raw bytes from an input. */
export function crashProblems(err: string): string[] {
  const p: string[] = [];
  if (CRASH.test(err)) p.push(`a crash, not a sentence: ${clip(err)}`);
  if (CONTROL.test(err)) p.push(`control bytes in stderr: ${clip(err)}`);
  if (JARGON.test(err)) p.push(`internal wording: ${clip(err)}`);
  return p;
}

/**
 * A place in `file` ("FILE at byte N") that lies past its end. In a file that was not cut, such a
 * place can only be a damaged value shown as if it were a place.
 */
export function offsetProblems(file: string, err: string): string[] {
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) return [];
    size = st.size;
  } catch {
    return [];
  }
  const at = `${file} at byte `;
  const past = err
    .split(at)
    .slice(1)
    .map((rest) => Number(/^\d+/.exec(rest)?.[0]))
    .filter((n) => n > size);
  return past.length ? [`"at byte ${past[0]}" lies past the end of ${file} (${size} bytes): ${clip(err)}`] : [];
}

/** Checks the exit status and stderr of a run against its `accept` rule; returns the problems. */
export function outcomeProblems(run: Run, r: RunResult): string[] {
  const p: string[] = [];
  const err = r.stderr;
  if (r.hung) return ['hang: killed after its time bound'];
  if (r.status === null) return [`ended by ${r.signal}: ${clip(err)}`];
  p.push(...crashProblems(err));
  const s = r.status;
  const a = run.accept;
  if (s === 2) {
    // Damaged data may leave nothing at all to read (every chunk of a small file hit): then the run
    // cannot complete, and its one sentence must say what was skipped.
    const lastLine = err.trimEnd().split('\n').pop() ?? '';
    const nothingLeft = (a === 'partial' || a === 'maybe-partial') && SKIPPED.test(lastLine) && lastLine.includes(run.culprit);
    if (a === 'valid' || ((a === 'partial' || a === 'maybe-partial') && !nothingLeft)) p.push(`exit 2, expected the run to complete: ${clip(err)}`);
    // One sentence says why the run stopped: the last line. Before it, only what the run had already
    // reported on its way (a warning or a note), never a second error or part of a stack.
    const lines = err.split('\n').filter((l) => l !== '');
    const last = lines[lines.length - 1] ?? '';
    const before = lines.slice(0, -1).filter((l) => !/^(warning|note): /.test(l));
    if (lines.length === 0 || before.length) p.push(`exit 2 with ${lines.length} lines on stderr, expected one error (after warnings or notes only): ${clip(err)}`);
    else if (!last.startsWith('kvmtrace: ') || !last.includes(run.culprit) || last.length < `kvmtrace: ${run.culprit}`.length + 12)
      p.push(`exit 2: the line must name ${run.culprit} and say what is wrong: ${clip(err)}`);
  } else if (s === 0 || s === 1) {
    const said = err.includes(run.culprit) && SKIPPED.test(err);
    if (a === 'error') p.push(`exit ${s}, expected 2: ${clip(err)}`);
    else if (a === 'valid') {
      if (s !== 0 || SKIPPED.test(err)) p.push(`exit ${s} on a valid input, or something skipped: ${clip(err)}`);
    } else if ((a === 'damaged' || a === 'partial') && !said) p.push(`exit ${s} without saying what was skipped in ${run.culprit}: ${clip(err)}`);
  } else p.push(`exit ${s}, expected 0, 1 or 2: ${clip(err)}`);
  p.push(...(run.also?.(r) ?? []));
  return p;
}

/**
 * Compares a folder's content after a run with before: nothing that existed changed (except a
 * declared output of a run that exited 0 or 1), nothing new but the declared outputs of such a
 * run, no hidden file, no empty folder.
 */
export function leftoverProblems(dir: string, before: Snapshot, after: Snapshot, run: Run, r: RunResult): string[] {
  const p: string[] = [];
  const wrote = !r.hung && (r.status === 0 || r.status === 1);
  const outputs = new Set((wrote ? run.outputs ?? [] : []).map((f) => relative(dir, f)));
  for (const [k, v] of before) {
    const now = after.get(k);
    if (now === undefined) p.push(`${k} was removed`);
    else if (now !== v && !outputs.has(k)) p.push(`${k} was changed`);
  }
  for (const [k, v] of after) {
    if (before.has(k)) continue;
    if (!outputs.has(k)) p.push(`${k} was left behind`);
    if (v === 'dir' && ![...after.keys()].some((x) => x.startsWith(k + '/'))) p.push(`empty folder ${k} was left behind`);
  }
  // A JSON output that was written must be whole.
  for (const k of outputs)
    if (k.endsWith('.json') && after.has(k) && after.get(k) !== before.get(k) && statSync(join(dir, k)).size < 1 << 26)
      try {
        JSON.parse(readFileSync(join(dir, k), 'utf8'));
      } catch (e) {
        p.push(`${k} is not whole JSON: ${(e as Error).message.slice(0, 100)}`);
      }
  return p;
}

/** Makes a FIFO (Node has no mkfifo). */
export function mkfifo(path: string): void {
  const r = spawnSync('mkfifo', [path]);
  if (r.status !== 0) throw new Error(`mkfifo ${path}: ${r.stderr}`);
}
