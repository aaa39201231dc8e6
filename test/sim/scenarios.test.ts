/** Every scenario in fixtures/scenarios runs against the simulator with the real engine, and its expectations hold. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runScenario } from '../../src/sim/runner.ts';
import { loadScenario, parseScenario } from '../../src/sim/scenario.ts';

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

describe("the README's example scenario", () => {
  it('is valid and its expectations hold', async () => {
    const readme = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8');
    const example = /A scenario file[^\n]*\n\n```yaml\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(example, 'README.md has no scenario example').toBeDefined();
    const result = await runScenario(parseScenario(example!, 'README.md'));
    expect(result.runs).toHaveLength(2);
    expect(result.failedExpectations).toEqual([]);
  });
});
