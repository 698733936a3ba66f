/**
 * Golden outputs: `expectGolden(name, text)` compares with `test/golden/NAME`; run the tests with
 * UPDATE_GOLDEN=1 to (re)write them after a reviewed change of behaviour.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { expect } from 'vitest';

const ROOT = join(import.meta.dirname, '..', 'golden');

/** Asserts that `actual` equals the golden file (or writes it under UPDATE_GOLDEN=1). */
export function expectGolden(name: string, actual: string): void {
  const path = join(ROOT, name);
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(path)) {
    if (process.env.CI && !existsSync(path)) throw new Error(`golden file ${name} is missing (run the tests with UPDATE_GOLDEN=1 and commit it)`);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, actual);
  }
  expect(actual).toBe(readFileSync(path, 'utf8'));
}
