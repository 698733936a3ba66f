/**
 * Temporary folders for a test file, removed when the file's tests are done.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

const made: string[] = [];

/**
 * A new empty folder under the system's temporary folder, removed after this file's tests. Call it
 * in a test or a `beforeAll` hook, never at module level or in a `describe` body: those run when
 * the tests are collected (`vitest list` too), and the hooks that remove it do not.
 */
export function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
}

afterAll(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});
