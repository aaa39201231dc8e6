/**
 * The orchestrator race at length (CI: `npm run test:full`): at least thirty seeded rounds of three or four real
 * `patchpilot run --wait` processes against `patchpilot sandbox`, on one shared, two, or separate databases, with
 * seeded SIGKILLs of the holder and SIGSTOP/SIGCONT pauses longer than the lease. PATCHPILOT_RACE_ROUNDS=N soaks
 * longer; PATCHPILOT_RACE_SEED=S starts the seeds elsewhere (a failing round prints its seed).
 */
import { describe, expect, it } from 'vitest';
import { scratchDirs } from '../helpers/scratch.ts';
import { describeFigures, expectInvariants, raceRound, roundOptions, type RaceFigures } from './race.ts';

const scratch = scratchDirs('race-full');
const ROUNDS = Math.max(30, Number(process.env.PATCHPILOT_RACE_ROUNDS ?? 30));
const FIRST_SEED = Number(process.env.PATCHPILOT_RACE_SEED ?? 100);

describe(`the orchestrator race, ${ROUNDS} seeded rounds`, () => {
  const figures: RaceFigures[] = [];

  it.each(Array.from({ length: ROUNDS }, (_, i) => FIRST_SEED + i))(
    'round with seed %i: at most concurrency nodes cordoned, one control plane, one patch Job per node, nothing left cordoned, every audit log intact',
    async (seed) => {
      const options = roundOptions(seed);
      const round = await raceRound(scratch(), options);
      figures.push(round);
      console.log(`seed ${seed}: ${JSON.stringify({ ...options, ...round })}`);
      expectInvariants(round, options.concurrency);
    },
    300_000,
  );

  it('printed its figures, with chaos in them', () => {
    console.log(describeFigures(figures));
    expect(figures.reduce((a, r) => a + r.kills, 0)).toBeGreaterThan(0);
    expect(figures.reduce((a, r) => a + r.pauses, 0)).toBeGreaterThan(0);
  });
});
