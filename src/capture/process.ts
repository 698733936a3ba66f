/**
 * Child processes for captures: short helper runs whose output is collected, and the long-running
 * trace_pipe reader whose output goes straight into a file.
 */
import { spawn } from 'node:child_process';
import { closeSync, constants as fsConstants, openSync, readSync, writeSync } from 'node:fs';
import { UserError } from '../model/errors.js';

/** Output of a finished helper. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion; a UserError when it cannot start or exits with another code. */
export function run(cmd: string, args: string[], opts: { okCodes?: number[]; input?: string } = {}): Promise<RunResult> {
  const ok = opts.okCodes ?? [0];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    child.on('error', (e) => reject(new UserError(`cannot run ${cmd}: ${e.message}`)));
    child.on('close', (code, signal) => {
      const c = code ?? 128;
      if (ok.includes(c)) resolve({ code: c, stdout, stderr });
      else reject(new UserError(`${cmd} ${args.join(' ')} failed (${signal ?? `exit ${c}`}): ${stderr.trim()}`));
    });
  });
}

/**
 * Copies trace_pipe into a file by polling it without blocking (O_NONBLOCK; EAGAIN when empty).
 *
 * A blocking reader is woken by every event; where the reader shares a CPU with the traced vCPU
 * thread, each wake-up preempts the vCPU and is itself traced (sched_switch), which wakes the
 * reader again: a feedback loop measured here at ~250,000 switches/s. So the poller sleeps
 * `periodMs` between polls and drains the pipe with synchronous reads on one thread (trace_pipe
 * gives at most a page per read; asynchronous reads would hop to the thread pool for each page,
 * and those hops were themselves ~300 traced vCPU preemptions per second).
 */
export class TracePipePoller {
  private fd: number | undefined;
  private stopping = false;
  private readonly loop: Promise<void>;
  private failure: string | undefined;
  private wake: (() => void) | undefined;
  /** Bytes copied so far. */
  bytes = 0;

  private constructor(
    private readonly source: string,
    fd: number,
    private readonly out: number,
    private readonly periodMs: number,
  ) {
    this.fd = fd;
    this.loop = this.run();
  }

  /** Opens SOURCE (non-blocking) and starts copying it into the open descriptor `out`. */
  static start(source: string, out: number, periodMs = 100): TracePipePoller {
    let fd: number;
    try {
      fd = openSync(source, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    } catch (e) {
      throw new UserError(`cannot open ${source}: ${(e as Error).message}`);
    }
    return new TracePipePoller(source, fd, out, periodMs);
  }

  /** Reads until the pipe is empty; returns the bytes copied. */
  private drainOnce(buf: Buffer): number {
    let total = 0;
    for (;;) {
      let n: number;
      try {
        n = readSync(this.fd!, buf, 0, buf.length, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return total;
        throw e;
      }
      if (n === 0) return total;
      let off = 0;
      while (off < n) off += writeSync(this.out, buf, off, n - off);
      total += n;
    }
  }

  private async run(): Promise<void> {
    const buf = Buffer.alloc(1 << 16);
    let emptyAfterStop = 0;
    while (this.fd !== undefined) {
      let n: number;
      try {
        n = this.drainOnce(buf);
      } catch (e) {
        this.failure = `copying ${this.source} failed: ${(e as Error).message}`;
        return;
      }
      this.bytes += n;
      // After stop() tracing is off: two empty polls in a row mean everything is out.
      if (this.stopping) {
        emptyAfterStop = n === 0 ? emptyAfterStop + 1 : 0;
        if (emptyAfterStop >= 2) return;
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, this.stopping ? 20 : this.periodMs);
        this.wake = () => (clearTimeout(t), r());
      });
      this.wake = undefined;
    }
  }

  /** Why the copy stopped by itself, if it did. */
  get error(): string | undefined {
    return this.failure;
  }

  /** Reads what is left (call after tracing_on=0), then closes trace_pipe. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.loop;
    if (this.fd !== undefined) {
      closeSync(this.fd);
      this.fd = undefined;
    }
  }
}
