import { defineConfig } from 'vitest/config';

// End-to-end tests boot a real guest under QEMU/KVM (minutes each): `npm run e2e`, never part of
// `npm test` (whose include, test/**/*.test.ts, does not match *.e2e.ts).
export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/e2e/**/*.e2e.ts'],
    testTimeout: 15 * 60_000,
    hookTimeout: 40 * 60_000,
    pool: 'forks',
  },
});
