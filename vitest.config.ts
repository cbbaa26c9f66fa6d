import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['common/**/*.test.ts', 'proto/**/*.test.ts', 'control-plane/**/*.test.ts', 'sidecar/**/*.test.ts', 'certs/**/*.test.ts', 'cli/**/*.test.ts', 'e2e/**/*.test.ts'],
    // e2e suites start real processes; give them room on a 2-core machine
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
