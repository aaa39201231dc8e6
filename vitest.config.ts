import { configDefaults, defineConfig } from 'vitest/config';

// `npm test` runs the fast suite; files named *.full.test.ts (real processes racing for minutes, long soaks, the
// largest clusters) run only in `npm run test:full`, which .ci/run calls after it.
const full = process.env.PATCHPILOT_FULL_SUITE === '1';

export default defineConfig({
  test: {
    include: full ? ['test/**/*.full.test.ts'] : ['test/**/*.test.ts'],
    exclude: full ? configDefaults.exclude : [...configDefaults.exclude, 'test/**/*.full.test.ts'],
    pool: 'forks',
    testTimeout: 20_000,
  },
});
