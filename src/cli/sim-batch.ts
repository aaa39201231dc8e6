/**
 * `patchpilot sim A.yaml B.yaml DIR 'fixtures/**\/*.yaml' [--junit out.xml]`: every scenario in worker threads (one
 * scenario at a time per worker, as many workers as cores unless --jobs says otherwise), one line per scenario as it
 * finishes, a JUnit XML file on request. Exit 0 only when every expectation and invariant holds, 1 when one does not,
 * 2 when an argument names nothing or a file is not a valid scenario (bad input outranks a failed check: the other
 * scenarios still run and are reported, but CI must not read a typo as "an expectation failed").
 */
import { availableParallelism } from 'node:os';
import type { Writable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { allHold, expandScenarioArgs, junitXml, type ScenarioOutcome } from '../sim/batch.ts';
import type { BatchJob } from './sim-batch-worker.ts';
import { paint } from './format.ts';
import { checkOutputFile, writeOutputFile } from './output-file.ts';
import { UserError } from './user-error.ts';

export interface SimBatchOptions {
  junit?: string;
  jobs?: number;
  seed?: number;
  json?: boolean;
}

export async function simBatchCommand(args: readonly string[], options: SimBatchOptions, io: { out: Writable & { isTTY?: boolean }; now?: () => Date }): Promise<number> {
  const { files, unmatched } = expandScenarioArgs(args);
  if (unmatched.length > 0) throw new UserError(`no scenario file matches ${unmatched.map((u) => `"${u}"`).join(', ')}`, 'give scenario files (*.yaml), directories holding them, or a quoted glob such as "fixtures/scenarios/*.yaml"');
  if (options.junit) checkOutputFile(options.junit, '--junit', files.map((path) => ({ path, what: 'one of the scenarios' })));
  const p = paint(!options.json && io.out.isTTY === true);
  const outcomes = await runInWorkers(files, options, (o) => {
    if (options.json) return;
    const failed = o.cases.filter((c) => c.failure !== null);
    const mark = failed.length === 0 ? p('green', '✓') : p('red', '✗');
    io.out.write(`${mark} ${o.scenario} (${o.file}): ${o.cases.length - failed.length}/${o.cases.length} hold\n`);
    for (const c of failed) io.out.write(`    - ${c.name}: ${c.failure?.split('\n').join('\n      ')}\n`);
  });
  if (options.junit) {
    writeOutputFile(options.junit, '--junit', junitXml(outcomes, io.now?.() ?? new Date()));
  }
  const ok = allHold(outcomes);
  const cases = outcomes.flatMap((o) => o.cases);
  const failing = cases.filter((c) => c.failure !== null).length;
  const invalid = outcomes.filter((o) => o.invalid).map((o) => o.file);
  if (options.json) io.out.write(`${JSON.stringify({ ok, scenarios: outcomes }, null, 2)}\n`);
  else io.out.write(`\n${ok ? p('green', '✓') : p('red', '✗')} ${outcomes.length} scenario(s), ${cases.length} check(s), ${failing} failing${options.junit ? `; JUnit: ${options.junit}` : ''}\n`);
  if (invalid.length > 0) {
    process.stderr.write(`error: ${invalid.length === 1 ? 'a file is' : `${invalid.length} files are`} not a valid scenario: ${invalid.join(', ')} (the others ran)\n`);
    return 2;
  }
  return ok ? 0 : 1;
}

/** Runs the files on a pool of worker threads; results come back in the order of `files`. */
async function runInWorkers(files: readonly string[], options: SimBatchOptions, onDone: (o: ScenarioOutcome) => void): Promise<ScenarioOutcome[]> {
  const size = Math.max(1, Math.min(files.length, options.jobs ?? availableParallelism()));
  const results = new Array<ScenarioOutcome>(files.length);
  let next = 0;
  const workers = Array.from({ length: size }, () => new Worker(new URL('./sim-batch-worker.ts', import.meta.url)));
  try {
    await Promise.all(
      workers.map(
        (worker) =>
          new Promise<void>((resolve, reject) => {
            let current = -1;
            const feed = () => {
              if (next >= files.length) return resolve();
              current = next++;
              const job: BatchJob = { file: files[current]!, ...(options.seed === undefined ? {} : { seed: options.seed }) };
              worker.postMessage(job);
            };
            worker.on('message', (outcome: ScenarioOutcome) => {
              results[current] = outcome;
              onDone(outcome);
              feed();
            });
            worker.once('error', reject);
            worker.once('exit', (code) => {
              if (next < files.length || results[current] === undefined) reject(new Error(`a simulator worker exited with code ${code}`));
            });
            feed();
          }),
      ),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return results;
}
