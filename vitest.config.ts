import { availableParallelism } from 'node:os';
import { configDefaults, defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

// `npm test` runs the fast suite; files named *.full.test.ts (real processes racing for minutes, long soaks, the
// largest clusters) run only in `npm run test:full`, which .ci/run calls after it.
const full = process.env.PATCHPILOT_FULL_SUITE === '1';

/**
 * Files that mostly wait (on real processes, leases running out, scaled wall time) rather than compute. Vitest starts
 * the slowest files first once it has timed them, but a fresh clone has no timings and orders by file size, which
 * put the small race file last and left one worker alone on it for 25 s. These start first, beside the others.
 */
const WAITING_FILES = [
  'test/race/race.test.ts',
  'test/bot/flow.test.ts',
  'test/cli/doctor.test.ts',
  'test/bot/socket.test.ts',
  'test/kube/run-cli.test.ts',
  'test/cli/cli.test.ts',
  'test/bot/kubeconfig.test.ts',
];

class WaitingFilesFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (spec: TestSpecification) => {
      const index = WAITING_FILES.findIndex((path) => spec.moduleId.endsWith(path));
      return index === -1 ? WAITING_FILES.length : index;
    };
    return sorted.map((spec, order) => ({ spec, order })).sort((a, b) => rank(a.spec) - rank(b.spec) || a.order - b.order).map(({ spec }) => spec);
  }
}

export default defineConfig({
  test: {
    include: full ? ['test/**/*.full.test.ts'] : ['test/**/*.test.ts'],
    exclude: full ? configDefaults.exclude : [...configDefaults.exclude, 'test/**/*.full.test.ts'],
    pool: 'forks',
    // Each fork keeps the modules it has loaded from one test file to the next: importing client-node, Bolt and XState
    // again for every file cost about a third of the suite's CPU. No test relies on a fresh module state (none mocks a
    // module; the two that fake timers restore them).
    isolate: false,
    // Vitest's default is one worker fewer than the CPUs: a single one on a 2-core machine, where most of the fast
    // suite's files spend their time waiting on child processes and servers. The heavy suite keeps the default: its
    // race rounds run real processes against 2-second leases and want the CPU to themselves.
    ...(full ? {} : { maxWorkers: Math.max(2, availableParallelism()) }),
    testTimeout: 20_000,
    sequence: { sequencer: WaitingFilesFirst },
  },
});
