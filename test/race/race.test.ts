/**
 * A representative round of the orchestrator race (test/race/race.ts) for the fast suite; the full thirty-odd seeded
 * rounds are in race.full.test.ts. Each round: real `patchpilot run --wait` processes against `patchpilot sandbox`,
 * the holder SIGKILLed or SIGSTOPped past its lease mid-node, and the invariants read from a watch of the API.
 */
import { describe, expect, it } from 'vitest';
import { scratchDirs } from '../helpers/scratch.ts';
import { describeFigures, expectInvariants, raceRound } from './race.ts';

const scratch = scratchDirs('race');

describe('orchestrators racing for one cluster (real processes, over HTTP)', () => {
  it('three on two databases, the holder killed mid-node: one writer at a time, the survivor finishes the trigger', async () => {
    const options = { seed: 1, orchestrators: 3, databases: 2, concurrency: 1, workers: 2, leaseSeconds: 2, kills: 1, pauses: 0 };
    const figures = await raceRound(scratch(), options);
    console.log(describeFigures([figures]));
    expectInvariants(figures, options.concurrency);
    expect(figures.kills).toBe(1);
    expect(figures.takeovers).toBeGreaterThanOrEqual(1);
  }, 120_000);
});
