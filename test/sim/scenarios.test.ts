/** Every scenario in fixtures/scenarios runs against the simulator with the real engine, and its expectations hold. */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runScenario } from '../../src/sim/runner.ts';
import { loadScenario } from '../../src/sim/scenario.ts';

const DIR = join(import.meta.dirname, '../../fixtures/scenarios');
const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml')).sort();

describe('fixtures/scenarios', () => {
  it('has at least twenty scenarios, each named after its file and stating expectations', () => {
    expect(files.length).toBeGreaterThanOrEqual(20);
    for (const file of files) {
      const scenario = loadScenario(join(DIR, file));
      expect(`${scenario.name}.yaml`).toBe(file);
      expect(scenario.expect.length, `${file} states no expectations`).toBeGreaterThan(0);
      expect(scenario.description.length, `${file} has no description`).toBeGreaterThan(20);
    }
  });

  it.each(files)('%s', async (file) => {
    const result = await runScenario(loadScenario(join(DIR, file)));
    expect(result.failedExpectations).toEqual([]);
    expect(result.ok).toBe(true);
  });
});
