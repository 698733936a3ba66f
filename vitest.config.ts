import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Parsers and merges over the real recordings take a few seconds each.
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
  },
});
