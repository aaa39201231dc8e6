/**
 * A representative round of the orchestrator race (test/race/race.ts) for the fast suite; the full thirty-odd seeded
 * rounds are in race.full.test.ts. Each round: real `patchpilot run --wait` processes against `patchpilot sandbox`,
 * the holder SIGKILLed or SIGSTOPped past its lease mid-node, and the invariants read from a watch of the API.
 */
import { describe, expect, it } from 'vitest';
import { scratchDirs } from '../helpers/scratch.ts';
import { describeFigures, raceRound, type RaceFigures } from './race.ts';

const scratch = scratchDirs('race');

export function expectInvariants(figures: RaceFigures, concurrency: number): void {
  const context = JSON.stringify(figures);
  expect(figures.maxInFlight, context).toBeLessThanOrEqual(concurrency);
  expect(figures.maxControlPlanesInFlight, context).toBeLessThanOrEqual(1);
  expect(Object.values(figures.jobsPerNode).every((n) => n === 1), context).toBe(true);
  expect(figures.cordonedAtEnd, context).toEqual([]);
  expect(figures.unpatched, context).toEqual([]);
  expect(figures.auditProblems, context).toEqual([]);
  // Every orchestrator finished (0), was refused or stopped for another holder (3), or was killed by the monkey.
  expect(figures.exitCodes.every((code) => code === 0 || code === 3 || code === 'SIGKILL'), context).toBe(true);
}

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
