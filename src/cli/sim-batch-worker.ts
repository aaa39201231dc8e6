/**
 * One worker thread of `patchpilot sim A.yaml B.yaml ...`: it is sent scenario files one at a time and answers each
 * with its test cases. Every failure to load or finish a scenario becomes an error case, never a dead worker.
 */
import { parentPort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { scenarioCases, type ScenarioOutcome } from '../sim/batch.ts';
import { runScenario } from '../sim/runner.ts';
import { loadScenario, ScenarioError } from '../sim/scenario.ts';
import { StalledRunError } from '../service/drive.ts';
import { capHeapGrowthFor } from './heap.ts';

export interface BatchJob {
  file: string;
  seed?: number;
}

async function runOne(job: BatchJob): Promise<ScenarioOutcome> {
  const started = performance.now();
  const seconds = () => (performance.now() - started) / 1000;
  let name = job.file;
  try {
    const scenario = loadScenario(job.file, job.seed === undefined ? {} : { seed: job.seed });
    name = scenario.name;
    capHeapGrowthFor(scenario.nodes.length);
    const result = await runScenario(scenario);
    return { file: job.file, scenario: name, cases: scenarioCases(scenario, result), seconds: seconds() };
  } catch (err) {
    const message = err instanceof ScenarioError || err instanceof StalledRunError ? err.message : `the simulator failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
    return { file: job.file, scenario: name, cases: [{ scenario: name, name: err instanceof ScenarioError ? 'loads' : 'runs to the end', failure: message, error: message }], seconds: seconds(), ...(err instanceof ScenarioError ? { invalid: true as const } : {}) };
  }
}

parentPort?.on('message', (job: BatchJob) => {
  void runOne(job).then((outcome) => parentPort?.postMessage(outcome));
});
