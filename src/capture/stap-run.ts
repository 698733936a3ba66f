/**
 * Running systemtap: a syntax/elaboration check (`stap -pN`) and a real run whose output (the
 * kvmtrace-stap line format) goes whole to a file. Also the stand-in build directory stap needs
 * for its early passes on machines without kernel headers.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { UserError } from '../model/errors.js';

/** True when a `stap` binary is on PATH. */
export function haveStap(): boolean {
  return spawnSync('stap', ['-V'], { stdio: 'ignore' }).status === 0;
}

/**
 * Fills `dir` with what stap's passes 1–2 read from a kernel build tree when no headers are
 * installed: `.config` (from /proc/config.gz), `kernel.release`, an empty `Module.symvers` and a
 * `System.map` made from /proc/kallsyms (module symbols left out). Pass it with `stap -r DIR`.
 * Passes 3–5 (compiling a module) still need the real build tree.
 */
export function makeFakeBuildDir(dir: string, root = '/'): string {
  mkdirSync(dir, { recursive: true });
  const read = (p: string): Buffer | undefined => {
    try {
      return readFileSync(join(root, p));
    } catch {
      return undefined;
    }
  };
  const gz = read('proc/config.gz');
  writeFileSync(join(dir, '.config'), gz ? gunzipSync(gz) : '# no /proc/config.gz on this machine\n');
  const release = read('proc/sys/kernel/osrelease')?.toString().trim() ?? 'unknown';
  writeFileSync(join(dir, 'kernel.release'), release + '\n');
  mkdirSync(join(dir, 'include', 'config'), { recursive: true });
  writeFileSync(join(dir, 'include', 'config', 'kernel.release'), release + '\n');
  writeFileSync(join(dir, 'Module.symvers'), '');
  const kallsyms = read('proc/kallsyms')?.toString() ?? '';
  const map = kallsyms
    .split('\n')
    .filter((l) => l.length > 0 && !l.includes('['))
    .join('\n');
  writeFileSync(join(dir, 'System.map'), map ? map + '\n' : '');
  return dir;
}

/** The outcome of a stap pass check. */
export interface StapCheck {
  ok: boolean;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `stap -p<pass>` on a script (no probes are run); `args` become @1, @2, … */
export function checkStap(
  script: string,
  o: { pass: 1 | 2 | 3; buildDir: string; includeDir?: string; guru?: boolean; args?: string[] },
): StapCheck {
  const argv = ['-r', o.buildDir, `-p${o.pass}`];
  if (o.guru) argv.push('-g');
  if (o.includeDir) argv.push('-I', o.includeDir);
  argv.push(script, ...(o.args ?? []));
  const r = spawnSync('stap', argv, { encoding: 'utf8', timeout: 300_000 });
  if (r.error) throw new UserError(`cannot run stap: ${r.error.message} (install systemtap)`);
  return { ok: r.status === 0, code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Runs a script with `stap [-g]` until it exits (Ctrl-C ends stap, which prints its end probes).
 * Its stdout goes to `out` through a temporary file renamed at the end (to stdout when `out` is
 * '-'), with the script's `#` lines also shown on stderr as they come; its stderr is passed
 * through. Resolves to stap's exit code.
 */
export async function runStap(script: string, o: { guru: boolean; out: string; args?: string[] }): Promise<number> {
  if (!existsSync(script)) throw new UserError(`${script}: no such script`);
  const argv = [...(o.guru ? ['-g'] : []), script, ...(o.args ?? [])];
  const tmp = o.out === '-' ? undefined : join(dirname(o.out), `.${basename(o.out)}.${process.pid}.tmp`);
  const sink = tmp ? createWriteStream(tmp, { flags: 'wx' }) : process.stdout;
  const child = spawn('stap', argv, { stdio: ['inherit', 'pipe', 'inherit'] });
  child.stdout.pipe(sink as NodeJS.WritableStream, { end: false });
  // The script's own `#` lines ("# zeroing armed: start the guest now", cross-check results) are
  // what the user waits for: when the output goes to a file, show them on stderr as they come.
  if (tmp) {
    let rest = '';
    child.stdout.on('data', (b: Buffer) => {
      const lines = (rest + b.toString('utf8')).split('\n');
      rest = lines.pop() ?? '';
      for (const l of lines) if (l.startsWith('# ') && !l.startsWith('# kvmtrace-stap ')) process.stderr.write(`stap: ${l}\n`);
    });
  }
  // Ctrl-C reaches stap through the terminal's process group; kvmtrace waits for its end probes.
  const ignore = (): void => {};
  process.on('SIGINT', ignore);
  try {
    const code = await new Promise<number>((resolve, reject) => {
      child.on('error', (e) => reject(new UserError(`cannot run stap: ${e.message} (install systemtap)`)));
      child.on('close', (c) => resolve(c ?? 1));
    });
    if (tmp) {
      await new Promise<void>((resolve, reject) => (sink as ReturnType<typeof createWriteStream>).end((e?: Error | null) => (e ? reject(e) : resolve())));
      await rename(tmp, o.out);
    }
    return code;
  } catch (e) {
    if (tmp) await unlink(tmp).catch(() => undefined);
    throw e;
  } finally {
    process.off('SIGINT', ignore);
  }
}
