/**
 * The sandbox's promise: the engine with the real Kubernetes adapter, talking HTTP to the sandbox, does what it does
 * against the simulator directly. Every scenario runs both ways; any difference in outcomes is a bug in one of them.
 * The scenarios are split over two test files so that both cores work on them.
 */
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadScenario } from '../../src/sim/scenario.ts';
import { runScenario, type SimResult } from '../../src/sim/runner.ts';
import { throughKubeApi } from '../helpers/kube-through.ts';

const DIR = 'fixtures/scenarios';

function outcomes(result: SimResult) {
  return result.runs.map((run) => ({
    trigger: run.trigger,
    outcome: run.outcome,
    nodes: Object.fromEntries(run.nodes.map((n) => [n.name, { result: n.result, error: n.error, step: n.failedStep, rebooted: n.rebooted, cordoned: n.cordonedAtEnd }])),
  }));
}

/**
 * Defines the tests for every `of`-th scenario file, starting with the `part`-th (EQUIVALENCE_ONLY=a,b narrows them;
 * `files` names them instead: `npm test` runs a representative few, `npm run test:full` every file). With `chaos`, the sandbox fails that share of API requests transiently and drops
 * watches (src/sim/kube-api/chaos.ts): the node outcomes must not change.
 */
export function equivalenceTests(part: number, of: number, options: { chaos?: number; files?: readonly string[] } = {}): void {
  const only = options.files ?? process.env.EQUIVALENCE_ONLY?.split(',');
  const files = readdirSync(DIR)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .filter((_, i) => i % of === part)
    .filter((f) => !only || only.some((o) => f.startsWith(o)));
  const chaos = options.chaos ? ` under ${Math.round(options.chaos * 100)}% API chaos` : '';
  describe(`the engine through the Kubernetes adapter and the sandbox matches the simulator${chaos} (part ${part + 1} of ${of})`, () => {
    for (const file of files) {
      it(file, { timeout: options.chaos ? 300_000 : 120_000 }, async () => {
        const scenario = loadScenario(`${DIR}/${file}`);
        const direct = await runScenario(scenario);
        const through = throughKubeApi(scenario, options.chaos === undefined ? {} : { chaos: options.chaos });
        const viaKube = await runScenario(scenario, { through });
        expect(through.requests()).toBeGreaterThan(0);
        // Chaos has struck (a scenario of a few dozen requests may be spared by the draw).
        if (options.chaos && through.requests() * options.chaos >= 10) {
          const injected = through.chaos();
          expect(injected.tooManyRequests + injected.internalError + injected.conflict).toBeGreaterThan(0);
        }
        expect(outcomes(viaKube)).toEqual(outcomes(direct));
        expect(viaKube.failedExpectations).toEqual([]);
      });
    }
  });
}
