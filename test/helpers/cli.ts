/**
 * Runs the built CLI (`dist/cli/main.js`, built by `npm test` before vitest) as a user would.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

/** The repository root. */
export const ROOT = join(import.meta.dirname, '..', '..');

/**
 * Runs `kvmtrace ARGS…` and returns its exit status and output. With `timeoutMs`, a run that
 * takes longer is killed (status -1), so a hang fails the test instead of stalling it.
 */
export function kvmtrace(args: string[], opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'dist', 'cli', 'main.js'), ...args], {
    cwd: opts.cwd ?? ROOT,
    env: opts.env ? { ...process.env, ...opts.env } : undefined,
    encoding: 'utf8',
    maxBuffer: 1 << 28,
    timeout: opts.timeoutMs,
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
