import { defineConfig } from 'vitest/config';

// `make conformance`: the public corpora in ../shared/conformance (or $STRATA_CONFORMANCE_DIR).
export default defineConfig({
  test: {
    include: ['test/conformance/**/*.test.ts'],
    testTimeout: 120_000,
    pool: 'forks',
  },
});
